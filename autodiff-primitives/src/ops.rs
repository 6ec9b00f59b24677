//! The ops that are not elementwise functions of one value: arithmetic with broadcasting,
//! products, reductions, softmax, losses, convolution, batch norm and pooling. Each row
//! holds its vector-Jacobian product as a small typed backward program: one kernel call per
//! input (and steps that several inputs share), with arguments drawn from a fixed
//! vocabulary, so that both engines expand the same program (the macro into `GradCall`s of
//! its typed `Kernel`s, the tape into its derivative rule) and neither writes the rule a
//! second time. A row may also keep a residual its forward kernel computed on the way
//! (`aux`): batch norm's statistics, max-pooling's window indices.

/// Calls `$callback! { rows }` with one row per op form:
///
/// ```text
/// /// doc
/// Variant name "written as" (inputs) -> adjoint
///     forward module::kernel([in x] | [opt x] | [const k], ..) [keeping module::twin];
///     keeps { field: kind(source), .. }
///     vjp {
///         [let step = module::kernel([arg], ..) [rounded module::twin];] ..
///         input = module::kernel([arg], ..) [or module::borrowing_twin] [else module::kernel([arg], ..)]; ..
///     }
///     example (input: ArrayN (shape) domain, ..) => { a float function using the op };
/// ```
///
/// - `name` is the op's name in the tape's node listings and the plan; "written as" is the
///   form users write, for the docs.
/// - `inputs` name the op's differentiable operands, in the order the tape numbers them.
/// - `adjoint` is the type the output's adjoint `g` has in the rule: `scalar` (the op gives
///   one float), or the ndarray dimension its kernels take (`Ix1`, `Ix2`, `Ix4`, `IxDyn`).
/// - `forward` is the kernel computing the op, with its inputs (`[in x]`; `[opt x]` for an
///   optional one, passed as an `Option`) and constants (`[const k]`, named in `keeps`).
///   `keeping module::twin` names its twin that also returns what forward computed on the
///   way and backward reads (the row's `aux` entry): the same arguments, `(output, aux)`
///   returned. Both engines call the twin only where backward reads the aux, the plain
///   kernel elsewhere.
/// - `keeps` is what backward reads, and so what a tape node holds: `saved(x)` (the value
///   of input `x`, or `out`, the op's own output; the tape keeps it only when an input whose
///   line reads it needs a gradient), `aux(module::Type; size)` (the residual the `keeping`
///   twin returns, at most one per row, kept under the same rule; `Type<F>` when it is
///   generic over the float type `F`; it has a `bytes()` method, and `size` states those
///   bytes as a product, `*`, of integer literals, `x[k]` (the length of input `x`'s axis
///   `k`), `out` (the output's element count), `float` (the bytes of one float) and
///   `module::function(k)` (bytes per element, a function of the kept constant `k`), which
///   the residual manifest prints and evaluates), `dim(x)` / `dim4(x)` (a shape), and the
///   op's constant arguments in the order users write them: `axis`, `usize`, `float`,
///   `int`, `labels`.
/// - `vjp` has one line per input: the kernel of `kernels::module` that computes its
///   adjoint contribution, and its arguments: `[g]` (the adjoint by value: its buffer is
///   reused), `[&g]` (borrowed), `[val k]` / `[val k: Ix2]` (a kept value, viewed at that
///   rank), `[aux k]` (the kept aux, borrowed), `[dim k]` (a kept shape), `[const k]` and
///   `[ref k]` (a kept constant, by value or by reference), `[step s]` (a shared step's
///   result, borrowed). `or module::twin` names the kernel's out-of-place form, which takes
///   `&g` instead of `g`: it runs when another input's line still needs `g` afterwards, so
///   that no copy of `g` is made.
/// - A `let s = module::kernel(..);` before the lines is a *shared step*: a kernel whose
///   result several lines read (`[step s]`), run once, before them, when an input needing a
///   gradient has a line reading it; its arguments borrow (`[&g]`, not `[g]`). After it,
///   `rounded module::twin` names the kernel's twin for when the static code keeps a value
///   it reads rounded (`residuals = "bf16"`) while the aux it reads describes the value as
///   forward computed it: the same arguments, not assuming the two agree (batch norm's
///   measures the statistics of the `x` it reads). The tape keeps values as computed. A line that
///   reads a step may give `else module::kernel(..)`: what it runs instead when no other
///   line needed runs the step (batch norm's beta: `Σg` from the sums that gamma's and the
///   input's lines share, or from `g` alone, keeping neither `x` nor the statistics, when
///   beta's is the only adjoint asked for). A line without `else` runs the steps it reads.
///
/// - `example` is a small function of the subset built around the op, with the shape and
///   the domain (`all` or `positive`) of each input: the tests differentiate it with the
///   macro and on the tape and check both against finite differences, so no row ships
///   untested.
///
/// The elementwise functions of one value and the pairwise ones are the other tables
/// (`for_each_unary!`, `for_each_binary!`). Forms that exist only in the static code (an
/// operand that is a float, an adjoint that stays a symbolic fill) are specialisations of
/// these rows, written with the same kernels in `autodiff-macros/src/rules.rs`.
#[macro_export]
macro_rules! for_each_op {
    ($callback:path) => {
        $callback! {
            /// `a + b`, broadcasting.
            Add add "a + b" (a, b) -> IxDyn
                forward binary::add([in a], [in b]);
                keeps { a_dim: dim(a), b_dim: dim(b) }
                vjp {
                    a = binary::add_grad_lhs([g], [dim a_dim]);
                    b = binary::add_grad_rhs([g], [dim b_dim]);
                }
                example (a: Array2 (3, 4) all, b: Array1 (4,) all) => { (a + b).mapv(|v| v * v).sum() };
            /// `a - b`, broadcasting.
            Sub sub "a - b" (a, b) -> IxDyn
                forward binary::sub([in a], [in b]);
                keeps { a_dim: dim(a), b_dim: dim(b) }
                vjp {
                    a = binary::sub_grad_lhs([g], [dim a_dim]);
                    b = binary::sub_grad_rhs([g], [dim b_dim]);
                }
                example (a: Array2 (3, 4) all, b: Array1 (4,) all) => { (a - b).mapv(|v| v * v).sum() };
            /// `a * b`, broadcasting.
            Mul mul "a * b" (a, b) -> IxDyn
                forward binary::mul([in a], [in b]);
                keeps { a_dim: dim(a), b_dim: dim(b), a_value: saved(a), b_value: saved(b) }
                vjp {
                    a = binary::mul_grad_lhs([g], [val b_value], [dim a_dim]) or binary::mul_grad_lhs_ref;
                    b = binary::mul_grad_rhs([g], [val a_value], [dim b_dim]) or binary::mul_grad_rhs_ref;
                }
                example (a: Array2 (3, 4) all, b: Array1 (4,) all) => { (a * b).mapv(|v| v * v).sum() };
            /// `a / b`, broadcasting.
            Div div "a / b" (a, b) -> IxDyn
                forward binary::div([in a], [in b]);
                keeps { a_dim: dim(a), a_value: saved(a), b_value: saved(b) }
                vjp {
                    a = binary::div_grad_lhs([g], [val b_value], [dim a_dim]) or binary::div_grad_lhs_ref;
                    b = binary::div_grad_rhs([g], [val a_value], [val b_value]);
                }
                example (a: Array2 (3, 4) all, b: Array1 (4,) positive) => { (a / b).mapv(|v| v * v).sum() };
            /// `-a`.
            Neg neg "-a" (a) -> IxDyn
                forward binary::neg([in a]);
                keeps {}
                vjp {
                    a = binary::neg_grad([g]);
                }
                example (a: Array2 (3, 4) all) => { (-a).mapv(|v| v * v * v).sum() };
            /// `a.powi(n)`, elementwise.
            Powi powi "a.powi(n)" (a) -> IxDyn
                forward unary::powi([in a], [const n]);
                keeps { x: saved(a), n: int() }
                vjp {
                    a = unary::powi_grad([g], [val x], [const n]);
                }
                example (a: Array2 (3, 4) all) => { a.powi(3).mapv(|v| v * v).sum() };
            /// `a.powf(p)`, elementwise.
            Powf powf "a.powf(p)" (a) -> IxDyn
                forward unary::powf([in a], [const p]);
                keeps { x: saved(a), p: float() }
                vjp {
                    a = unary::powf_grad([g], [val x], [const p]);
                }
                example (a: Array2 (3, 4) positive) => { a.powf(1.5).mapv(|v| v * v).sum() };
            /// `a.dot(b)` of two matrices.
            MatMul matmul "a.dot(b) (matrix · matrix)" (a, b) -> Ix2
                forward matmul::matmul([in a], [in b]);
                keeps { a_value: saved(a), b_value: saved(b) }
                vjp {
                    a = matmul::matmul_grad_lhs([&g], [val b_value: Ix2]);
                    b = matmul::matmul_grad_rhs([val a_value: Ix2], [&g]);
                }
                example (a: Array2 (3, 4) all, b: Array2 (4, 2) all) => { a.dot(b).mapv(|v| v * v).sum() };
            /// `a.dot(x)` of a matrix and a vector.
            MatVec matvec "a.dot(x) (matrix · vector)" (a, x) -> Ix1
                forward matmul::matvec([in a], [in x]);
                keeps { a_value: saved(a), x_value: saved(x) }
                vjp {
                    a = matmul::matvec_grad_lhs([&g], [val x_value: Ix1]);
                    x = matmul::matvec_grad_rhs([val a_value: Ix2], [&g]);
                }
                example (a: Array2 (3, 4) all, x: Array1 (4,) all) => { a.dot(x).mapv(|v| v * v).sum() };
            /// `x.dot(b)` of a vector and a matrix.
            VecMat vecmat "x.dot(b) (vector · matrix)" (x, b) -> Ix1
                forward matmul::vecmat([in x], [in b]);
                keeps { x_value: saved(x), b_value: saved(b) }
                vjp {
                    x = matmul::vecmat_grad_lhs([&g], [val b_value: Ix2]);
                    b = matmul::vecmat_grad_rhs([val x_value: Ix1], [&g]);
                }
                example (x: Array1 (3,) all, b: Array2 (3, 4) all) => { x.dot(b).mapv(|v| v * v).sum() };
            /// `x.dot(y)` of two vectors: a float.
            VecDot vecdot "x.dot(y) (vector · vector)" (x, y) -> scalar
                forward matmul::vecdot([in x], [in y]);
                keeps { x_value: saved(x), y_value: saved(y) }
                vjp {
                    x = matmul::vecdot_grad([g], [val y_value: Ix1]);
                    y = matmul::vecdot_grad([g], [val x_value: Ix1]);
                }
                example (x: Array1 (4,) all, y: Array1 (4,) all) => { let s = x.dot(y); s * s };
            /// `a.t()`.
            Transpose transpose "a.t()" (a) -> IxDyn
                forward matmul::transpose([in a]);
                keeps {}
                vjp {
                    a = matmul::transpose_grad([g]);
                }
                example (a: Array2 (3, 4) all, b: Array2 (4, 3) all) => { (&a.t() * b).mapv(|v| v * v).sum() };
            /// `a.sum()`: a float.
            Sum sum "a.sum()" (a) -> scalar
                forward reduce::sum([in a]);
                keeps { shape: dim(a) }
                vjp {
                    a = reduce::sum_grad([g], [dim shape]);
                }
                example (a: Array2 (3, 4) all) => { let s = a.sum(); s * s };
            /// `a.mean().unwrap()` (or `mean(&a)`): a float.
            Mean mean "a.mean().unwrap()" (a) -> scalar
                forward reduce::mean([in a]);
                keeps { shape: dim(a) }
                vjp {
                    a = reduce::mean_grad([g], [dim shape]);
                }
                example (a: Array2 (3, 4) all) => { let m = a.mean().unwrap(); m * m };
            /// `a.sum_axis(axis)`.
            SumAxis sum_axis "a.sum_axis(axis)" (a) -> IxDyn
                forward reduce::sum_axis([in a], [const axis]);
                keeps { axis: axis(), shape: dim(a) }
                vjp {
                    a = reduce::sum_axis_grad([g], [const axis], [dim shape]);
                }
                example (a: Array2 (3, 4) all) => { a.sum_axis(Axis(0)).mapv(|v| v * v).sum() };
            /// `a.mean_axis(axis).unwrap()`.
            MeanAxis mean_axis "a.mean_axis(axis).unwrap()" (a) -> IxDyn
                forward reduce::mean_axis([in a], [const axis]);
                keeps { axis: axis(), shape: dim(a) }
                vjp {
                    a = reduce::mean_axis_grad([g], [const axis], [dim shape]);
                }
                example (a: Array2 (3, 4) all) => { a.mean_axis(Axis(1)).unwrap().mapv(|v| v * v).sum() };
            /// `softmax(&a, axis)`: backward reads the output.
            Softmax softmax "softmax(&a, axis)" (a) -> IxDyn
                forward softmax::softmax([in a], [const axis]);
                keeps { y: saved(out), axis: axis() }
                vjp {
                    a = softmax::softmax_grad([g], [val y], [const axis]);
                }
                example (a: Array2 (3, 4) all) => { softmax(a, Axis(1)).mapv(|v| v * v).sum() };
            /// `log_softmax(&a, axis)`: backward reads the output.
            LogSoftmax log_softmax "log_softmax(&a, axis)" (a) -> IxDyn
                forward softmax::log_softmax([in a], [const axis]);
                keeps { y: saved(out), axis: axis() }
                vjp {
                    a = softmax::log_softmax_grad([g], [val y], [const axis]);
                }
                example (a: Array2 (3, 4) all) => { log_softmax(a, Axis(1)).mapv(|v| v * v).sum() };
            /// `mse(&pred, &target)`: the mean squared error, a float.
            Mse mse "mse(&pred, &target)" (pred, target) -> scalar
                forward loss::mse([in pred], [in target]);
                keeps { p: saved(pred), t: saved(target) }
                vjp {
                    pred = loss::mse_grad_pred([g], [val p], [val t]);
                    target = loss::mse_grad_target([g], [val p], [val t]);
                }
                example (pred: Array2 (3, 4) all, target: Array2 (3, 4) all) => { let l = mse(pred, target); l * l };
            /// `cross_entropy(&logits, labels)`: mean softmax cross-entropy over rows, a float.
            CrossEntropy cross_entropy "cross_entropy(&logits, labels)" (logits) -> scalar
                forward loss::cross_entropy([in logits], [const labels]);
                keeps { z: saved(logits), labels: labels() }
                vjp {
                    logits = loss::cross_entropy_grad([g], [val z: Ix2], [ref labels]);
                }
                example (logits: Array2 (3, 4) all) => { cross_entropy(logits, &[0, 2, 1]) };
            /// `conv2d(&x, &w, bias, stride, padding)` (NCHW; the bias is `Some(&b)` or `None`).
            Conv2d conv2d "conv2d(&x, &w, Some(&b), stride, padding)" (x, w, b) -> Ix4
                forward conv::conv2d([in x], [in w], [opt b], [const stride], [const padding]);
                keeps { x_value: saved(x), w_value: saved(w), x_dim: dim4(x), w_dim: dim4(w), stride: usize(), padding: usize() }
                vjp {
                    x = conv::conv2d_grad_input([&g], [val w_value: Ix4], [dim x_dim], [const stride], [const padding]);
                    w = conv::conv2d_grad_weight([&g], [val x_value: Ix4], [dim w_dim], [const stride], [const padding]);
                    b = conv::conv2d_grad_bias([&g]);
                }
                example (x: Array4 (2, 3, 5, 5) all, w: Array4 (4, 3, 3, 3) all, b: Array1 (4,) all) => { conv2d(x, w, Some(b), 1, 1).mapv(|v| v * v).sum() };
            /// `batch_norm(&x, &gamma, &beta, eps)`: training-mode batch norm over channels
            /// (NCHW). Forward keeps the per-channel statistics (2·C floats); backward's one
            /// pass for the per-channel sums serves all three adjoints (where `x` is kept
            /// rounded, a pass that also measures the statistics of the `x` it reads).
            BatchNorm batch_norm "batch_norm(&x, &gamma, &beta, eps)" (x, gamma, beta) -> Ix4
                forward batch_norm::batch_norm([in x], [in gamma], [in beta], [const eps]) keeping batch_norm::batch_norm_keeping;
                keeps { x_value: saved(x), gamma_value: saved(gamma), stats: aux(batch_norm::BatchStats<F>; 2 * x[1] * float), eps: float() }
                vjp {
                    let sums = batch_norm::batch_norm_sums([&g], [val x_value: Ix4], [aux stats]) rounded batch_norm::batch_norm_sums_measuring;
                    x = batch_norm::batch_norm_grad_input([g], [val x_value: Ix4], [val gamma_value: Ix1], [aux stats], [step sums]);
                    gamma = batch_norm::batch_norm_grad_gamma([step sums]);
                    beta = batch_norm::batch_norm_grad_beta([step sums]) else batch_norm::batch_norm_grad_beta_direct([&g]);
                }
                example (x: Array4 (3, 2, 3, 3) all, gamma: Array1 (2,) all, beta: Array1 (2,) all) => { batch_norm(x, gamma, beta, 1e-5).mapv(|v| v * v * v).sum() };
            /// `max_pool2d(&x, kernel, stride)` (NCHW). Forward keeps where each window's
            /// maximum is (an index within the window, a byte for windows of up to 256
            /// elements), not the input.
            MaxPool2d max_pool2d "max_pool2d(&x, kernel, stride)" (x) -> Ix4
                forward pool::max_pool2d([in x], [const kernel], [const stride]) keeping pool::max_pool2d_keeping;
                keeps { argmax: aux(pool::WindowArgmax; out * pool::index_bytes(kernel)), kernel: usize(), stride: usize() }
                vjp {
                    x = pool::max_pool2d_grad([&g], [aux argmax]);
                }
                example (x: Array4 (2, 2, 4, 4) all) => { max_pool2d(x, 2, 2).mapv(|v| v * v).sum() };
        }
    };
}
