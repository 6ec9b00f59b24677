//! What one recorded node holds and its derivative rule: an [`Op`] variant per
//! kernel, holding exactly the tensors that kernel's backward reads, and one
//! exhaustive `match` (no `_ =>` arm: a new op does not compile until it has a rule).
//!
//! Every rule is a call into `crate::kernels`; this file writes no math.

use std::rc::Rc;

use ndarray::{arr0, ArrayBase, ArrayD, ArrayViewD, Axis, Data, Dimension, Ix1, Ix2, Ix4, IxDyn};

use crate::kernels::unary::Saves;
use crate::kernels::{batch_norm, binary, conv, loss, matmul, pairwise, pool, reduce, softmax, unary};
use crate::Float;

/// A value on the tape: a leaf borrowed from the caller (never copied) or an
/// array the tape computed. Shared through `Rc` by `Var`s and saved-tensor slots.
pub(crate) enum Value<'a, F> {
    /// Leaf data borrowed for the tape's lifetime `'a`.
    Borrowed(ArrayViewD<'a, F>),
    /// An array owned by the tape (an op's output or an owned leaf).
    Owned(ArrayD<F>),
}

/// A tensor kept from the forward pass for a node's backward.
pub(crate) type Saved<'a, F> = Rc<Value<'a, F>>;

impl<F: Float> Value<'_, F> {
    /// A view of the data, whichever way it is held.
    pub(crate) fn view(&self) -> ArrayViewD<'_, F> {
        match self {
            Value::Borrowed(view) => view.view(),
            Value::Owned(array) => array.view(),
        }
    }

    /// The shape of the data.
    pub(crate) fn shape(&self) -> &[usize] {
        match self {
            Value::Borrowed(view) => view.shape(),
            Value::Owned(array) => array.shape(),
        }
    }

    /// The shape as a dimension, cloned from the array's own: cheaper than `IxDyn(shape)`,
    /// which rebuilds one from a slice.
    pub(crate) fn raw_dim(&self) -> IxDyn {
        match self {
            Value::Borrowed(view) => view.raw_dim(),
            Value::Owned(array) => array.raw_dim(),
        }
    }

    /// Heap bytes of the data that the tape owns (borrowed leaves cost it nothing).
    pub(crate) fn owned_bytes(&self) -> usize {
        match self {
            Value::Borrowed(_) => 0,
            Value::Owned(array) => array.len() * std::mem::size_of::<F>(),
        }
    }

    /// A fixed-rank view for a rank-specific kernel; panics naming `op` and the shape.
    pub(crate) fn view_as<D: Dimension>(&self, op: &str) -> ndarray::ArrayView<'_, F, D> {
        let rank = D::NDIM.unwrap_or(0);
        self.view()
            .into_dimensionality::<D>()
            .unwrap_or_else(|_| panic!("{op}: expected a rank-{rank} operand, got shape {:?}", self.shape()))
    }
}

/// Evaluates `$body` with `$x` bound to the array a [`Value`] holds, by reference, owned or
/// borrowed alike (the body is expanded once per case: kernels are generic over the storage).
///
/// Why not `value.view()`: a view of a dynamic-rank array clones its shape and strides, a
/// few nanoseconds that count per node in a chain of cheap elementwise ops.
macro_rules! with_array {
    ($value:expr, |$x:ident| $body:expr) => {
        match $value {
            Value::Borrowed($x) => $body,
            Value::Owned($x) => $body,
        }
    };
}
pub(crate) use with_array;

/// The tape's side of the unary rows of the primitive table: the `Unary` enum and its
/// dispatch to the row's kernels.
macro_rules! tape_unary {
    ($(
        $(#[$doc:meta])*
        $variant:ident $name:ident ($grad:ident, $scalar:ident, $grad_scalar:ident, $saves_const:ident)
            forms($($form:ident),*), domain $domain:ident,
            forward |$x:ident| $forward:expr,
            saves $saves:ident,
            derivative |$s:ident| $derivative:expr;
    )*) => {
        /// The elementwise functions of `kernels::unary` that take no parameter: one
        /// variant per row of `autodiff_primitives::for_each_unary`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum Unary {
            $($variant,)*
        }

        impl Unary {
            /// The kernel's name, shown by `Tape::nodes` and `Tape::to_dot`.
            pub(crate) fn name(self) -> &'static str {
                match self {
                    $(Unary::$variant => stringify!($name),)*
                }
            }

            /// Which value the backward reads (the kernel's own `*_SAVES` constant).
            pub(crate) fn saves(self) -> Saves {
                match self {
                    $(Unary::$variant => unary::$saves_const,)*
                }
            }

            /// The forward kernel.
            pub(crate) fn forward<F: Float, S: Data<Elem = F>>(self, x: &ArrayBase<S, IxDyn>) -> ArrayD<F> {
                match self {
                    $(Unary::$variant => unary::$name(x),)*
                }
            }

            /// The backward kernel, in place in `g`'s buffer.
            fn grad<F: Float, S: Data<Elem = F>>(self, g: ArrayD<F>, saved: &ArrayBase<S, IxDyn>) -> ArrayD<F> {
                match self {
                    $(Unary::$variant => unary::$grad(g, saved),)*
                }
            }
        }
    };
}

autodiff_primitives::for_each_unary!(tape_unary);

/// The tape's side of the pairwise rows of the primitive table (`maximum`, ...).
macro_rules! tape_pairwise {
    ($(
        $(#[$doc:meta])*
        $variant:ident $name:ident ($grad_lhs:ident, $grad_rhs:ident) domain $domain:ident,
            forward |$a:ident, $b:ident| $forward:expr,
            derivative_lhs |$la:ident, $lb:ident| $lhs:expr,
            derivative_rhs |$ra:ident, $rb:ident| $rhs:expr;
    )*) => {
        /// The elementwise functions of two arrays of `kernels::pairwise`: one variant per
        /// row of `autodiff_primitives::for_each_binary`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum Pairwise {
            $($variant,)*
        }

        impl Pairwise {
            /// The kernel's name, shown by `Tape::nodes` and `Tape::to_dot`.
            pub(crate) fn name(self) -> &'static str {
                match self {
                    $(Pairwise::$variant => stringify!($name),)*
                }
            }

            /// The forward kernel.
            pub(crate) fn forward<F: Float>(self, a: &ArrayViewD<'_, F>, b: &ArrayViewD<'_, F>) -> ArrayD<F> {
                match self {
                    $(Pairwise::$variant => pairwise::$name(a, b),)*
                }
            }

            /// The adjoints of both operands.
            fn grads<F: Float>(self, g: ArrayD<F>, a: &ArrayViewD<'_, F>, b: &ArrayViewD<'_, F>, needs: [bool; 2]) -> [Option<ArrayD<F>>; 2] {
                match self {
                    $(Pairwise::$variant => match needs {
                        [true, true] => [Some(pairwise::$grad_lhs(g.clone(), a, b)), Some(pairwise::$grad_rhs(g, a, b))],
                        [true, false] => [Some(pairwise::$grad_lhs(g, a, b)), None],
                        [false, true] => [None, Some(pairwise::$grad_rhs(g, a, b))],
                        [false, false] => [None, None],
                    },)*
                }
            }
        }
    };
}

autodiff_primitives::for_each_binary!(tape_pairwise);

/// One recorded op with the tensors its backward reads. Inputs are numbered as
/// in the `Var` method (`self` is input 0); `Option` slots are filled only when
/// the adjoint that reads them is needed (e.g. `x.dot(w)` with a constant `x`
/// saves `x` for `w`'s adjoint, and not `w`).
pub(crate) enum Op<'a, F: Float> {
    Add {
        a: IxDyn,
        b: IxDyn,
    },
    Sub {
        a: IxDyn,
        b: IxDyn,
    },
    /// `a_value` is read by `b`'s adjoint, `b_value` by `a`'s.
    Mul {
        a: IxDyn,
        b: IxDyn,
        a_value: Option<Saved<'a, F>>,
        b_value: Option<Saved<'a, F>>,
    },
    /// `b` is read by both adjoints, `a` only by `b`'s.
    Div {
        a: IxDyn,
        a_value: Option<Saved<'a, F>>,
        b_value: Saved<'a, F>,
    },
    Neg,
    AddScalar,
    SubScalar,
    ScalarSub,
    MulScalar(F),
    DivScalar(F),
    ScalarDiv {
        s: F,
        x: Saved<'a, F>,
    },
    Unary {
        kind: Unary,
        saved: Saved<'a, F>,
    },
    /// `maximum(a, b)` and the other pairwise rows: both operands are read by both adjoints.
    Pairwise {
        kind: Pairwise,
        a: Saved<'a, F>,
        b: Saved<'a, F>,
    },
    Powi {
        x: Saved<'a, F>,
        n: i32,
    },
    Powf {
        x: Saved<'a, F>,
        p: F,
    },
    /// The derivative closure of `Var::map` (the one boxed rule).
    Map {
        x: Saved<'a, F>,
        df: Box<dyn Fn(F) -> F + 'a>,
    },
    MatMul {
        a: Option<Saved<'a, F>>,
        b: Option<Saved<'a, F>>,
    },
    MatVec {
        a: Option<Saved<'a, F>>,
        x: Option<Saved<'a, F>>,
    },
    VecMat {
        x: Option<Saved<'a, F>>,
        b: Option<Saved<'a, F>>,
    },
    VecDot {
        x: Option<Saved<'a, F>>,
        y: Option<Saved<'a, F>>,
    },
    Transpose,
    Sum {
        shape: IxDyn,
    },
    Mean {
        shape: IxDyn,
    },
    SumAxis {
        axis: Axis,
        shape: IxDyn,
    },
    MeanAxis {
        axis: Axis,
        shape: IxDyn,
    },
    Softmax {
        y: Saved<'a, F>,
        axis: Axis,
    },
    LogSoftmax {
        y: Saved<'a, F>,
        axis: Axis,
    },
    Mse {
        pred: Saved<'a, F>,
        target: Saved<'a, F>,
    },
    CrossEntropy {
        logits: Saved<'a, F>,
        labels: Box<[usize]>,
    },
    /// Inputs: x, w, and the bias if any. `x` is read by `w`'s adjoint, `w` by `x`'s.
    Conv2d {
        x: Option<Saved<'a, F>>,
        w: Option<Saved<'a, F>>,
        x_dim: Ix4,
        w_dim: Ix4,
        stride: usize,
        padding: usize,
    },
    /// Inputs: x, gamma, beta. `x` is read by x's and gamma's adjoints, `gamma` by x's.
    BatchNorm {
        x: Option<Saved<'a, F>>,
        gamma: Option<Saved<'a, F>>,
        eps: F,
    },
    MaxPool2d {
        x: Saved<'a, F>,
        kernel: usize,
        stride: usize,
    },
    /// A node of a custom rule (`Tape::custom`): the user's VJP, and what it owns.
    Custom(Box<super::custom::Custom<'a, F>>),
    /// A node whose saved tensors a non-retaining backward has already freed, with the
    /// name of the op it was (for `Tape::nodes`, `Tape::to_dot` and the error of a second backward).
    Freed {
        name: &'static str,
    },
}

/// Where a rule sends the adjoint of input `k`: straight into the slot it accumulates in,
/// so that a rule returns nothing (an array of three optional adjoints, a few hundred
/// bytes, was moved twice per node).
pub(crate) type Emit<'e, F> = dyn FnMut(usize, ArrayD<F>) + 'e;

/// Sends the adjoints a rule computed (`None` for an input that needs none).
fn send<F: Float, const N: usize>(emit: &mut Emit<'_, F>, adjoints: [Option<ArrayD<F>>; N]) {
    for (k, adjoint) in adjoints.into_iter().enumerate() {
        if let Some(adjoint) = adjoint {
            emit(k, adjoint);
        }
    }
}

/// The single element of a 0-d (or one-element) adjoint.
fn scalar_of<F: Float>(g: &ArrayD<F>) -> F {
    *g.first()
        .unwrap_or_else(|| panic!("backward: a scalar op got an empty adjoint of shape {:?}", g.shape()))
}

/// Reshapes an adjoint to a fixed rank (no copy); a mismatch is a tape bug.
fn fixed<F: Float, D: Dimension>(g: ArrayD<F>, op: &str) -> ndarray::Array<F, D> {
    let shape = g.shape().to_vec();
    g.into_dimensionality::<D>()
        .unwrap_or_else(|_| panic!("{op} backward: adjoint of shape {shape:?} has the wrong rank"))
}

/// Adjoints of a two-input op whose kernels take `g` by value: `g` is cloned
/// only when both inputs need it, and moved into the last consumer.
fn pair<F: Float>(
    g: ArrayD<F>,
    needs: [bool; 3],
    emit: &mut Emit<'_, F>,
    lhs: impl FnOnce(ArrayD<F>) -> ArrayD<F>,
    rhs: impl FnOnce(ArrayD<F>) -> ArrayD<F>,
) {
    match (needs[0], needs[1]) {
        (true, true) => {
            emit(0, lhs(g.clone()));
            emit(1, rhs(g));
        }
        (true, false) => emit(0, lhs(g)),
        (false, true) => emit(1, rhs(g)),
        (false, false) => {}
    }
}

/// The slot saved for an adjoint that is needed; its absence is a recording bug.
fn needed<'s, 'a, F: Float>(slot: &'s Option<Saved<'a, F>>, what: &str) -> &'s Value<'a, F> {
    slot.as_deref()
        .unwrap_or_else(|| unreachable!("{what} was not saved although its reader needs a gradient"))
}

impl<'a, F: Float> Op<'a, F> {
    /// The op's name, as the `Var` method that records it (also once freed).
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::Add { .. } => "add",
            Op::Sub { .. } => "sub",
            Op::Mul { .. } => "mul",
            Op::Div { .. } => "div",
            Op::Neg => "neg",
            Op::AddScalar => "add_scalar",
            Op::SubScalar => "sub_scalar",
            Op::ScalarSub => "scalar_sub",
            Op::MulScalar(_) => "mul_scalar",
            Op::DivScalar(_) => "div_scalar",
            Op::ScalarDiv { .. } => "scalar_div",
            Op::Unary { kind, .. } => kind.name(),
            Op::Pairwise { kind, .. } => kind.name(),
            Op::Powi { .. } => "powi",
            Op::Powf { .. } => "powf",
            Op::Map { .. } => "map",
            Op::MatMul { .. } => "matmul",
            Op::MatVec { .. } => "matvec",
            Op::VecMat { .. } => "vecmat",
            Op::VecDot { .. } => "vecdot",
            Op::Transpose => "transpose",
            Op::Sum { .. } => "sum",
            Op::Mean { .. } => "mean",
            Op::SumAxis { .. } => "sum_axis",
            Op::MeanAxis { .. } => "mean_axis",
            Op::Softmax { .. } => "softmax",
            Op::LogSoftmax { .. } => "log_softmax",
            Op::Mse { .. } => "mse",
            Op::CrossEntropy { .. } => "cross_entropy",
            Op::Conv2d { .. } => "conv2d",
            Op::BatchNorm { .. } => "batch_norm",
            Op::MaxPool2d { .. } => "max_pool2d",
            Op::Custom(_) => "custom",
            Op::Freed { name } => name,
        }
    }

    /// The tensors this node keeps for its backward (at most two), for memory accounting.
    pub(crate) fn saved(&self) -> [Option<&Saved<'a, F>>; 2] {
        match self {
            Op::Mul {
                a_value: p, b_value: q, ..
            }
            | Op::MatMul { a: p, b: q }
            | Op::MatVec { a: p, x: q }
            | Op::VecMat { x: p, b: q }
            | Op::VecDot { x: p, y: q }
            | Op::Conv2d { x: p, w: q, .. }
            | Op::BatchNorm { x: p, gamma: q, .. } => [p.as_ref(), q.as_ref()],
            Op::Div { a_value, b_value, .. } => [a_value.as_ref(), Some(b_value)],
            Op::Mse { pred, target } | Op::Pairwise { a: pred, b: target, .. } => [Some(pred), Some(target)],
            Op::ScalarDiv { x: saved, .. }
            | Op::Unary { saved, .. }
            | Op::Powi { x: saved, .. }
            | Op::Powf { x: saved, .. }
            | Op::Map { x: saved, .. }
            | Op::Softmax { y: saved, .. }
            | Op::LogSoftmax { y: saved, .. }
            | Op::CrossEntropy { logits: saved, .. }
            | Op::MaxPool2d { x: saved, .. } => [Some(saved), None],
            Op::Add { .. }
            | Op::Sub { .. }
            | Op::Neg
            | Op::AddScalar
            | Op::SubScalar
            | Op::ScalarSub
            | Op::MulScalar(_)
            | Op::DivScalar(_)
            | Op::Transpose
            | Op::Sum { .. }
            | Op::Mean { .. }
            | Op::SumAxis { .. }
            | Op::MeanAxis { .. }
            | Op::Custom(_)
            | Op::Freed { .. } => [None, None],
        }
    }

    /// Heap bytes the node holds besides its saved tensors (labels, a boxed closure).
    pub(crate) fn extra_bytes(&self) -> usize {
        match self {
            Op::CrossEntropy { labels, .. } => std::mem::size_of_val(&**labels),
            Op::Map { df, .. } => std::mem::size_of_val(&**df),
            _ => 0,
        }
    }

    /// The derivative rule: given the output's adjoint `g` and which inputs need
    /// a gradient, the adjoint of each input (with that input's shape), computed
    /// by the kernels' backward functions and sent to `emit` with the input's
    /// position. Adjoints of inputs that do not need one are never computed.
    pub(crate) fn backward(&self, g: ArrayD<F>, needs: [bool; 3], emit: &mut Emit<'_, F>) {
        match self {
            Op::Add { a, b } => pair(
                g,
                needs,
                emit,
                |g| binary::add_grad_lhs(g, a),
                |g| binary::add_grad_rhs(g, b),
            ),
            Op::Sub { a, b } => pair(
                g,
                needs,
                emit,
                |g| binary::sub_grad_lhs(g, a),
                |g| binary::sub_grad_rhs(g, b),
            ),
            // When both operands need an adjoint, the first is computed out of place from the
            // borrowed `g` (one pass) and the second reuses `g`'s buffer, instead of a clone.
            Op::Mul { a, b, a_value, b_value } if needs[0] && needs[1] => {
                emit(0, binary::mul_grad_lhs_ref(&g, &needed(b_value, "mul rhs").view(), a));
                emit(1, binary::mul_grad_rhs(g, &needed(a_value, "mul lhs").view(), b));
            }
            Op::Mul { a, b, a_value, b_value } => pair(
                g,
                needs,
                emit,
                |g| binary::mul_grad_lhs(g, &needed(b_value, "mul rhs").view(), a),
                |g| binary::mul_grad_rhs(g, &needed(a_value, "mul lhs").view(), b),
            ),
            Op::Div { a, a_value, b_value } if needs[0] && needs[1] => {
                emit(0, binary::div_grad_lhs_ref(&g, &b_value.view(), a));
                emit(
                    1,
                    binary::div_grad_rhs(g, &needed(a_value, "div lhs").view(), &b_value.view()),
                );
            }
            Op::Div { a, a_value, b_value } => pair(
                g,
                needs,
                emit,
                |g| binary::div_grad_lhs(g, &b_value.view(), a),
                |g| binary::div_grad_rhs(g, &needed(a_value, "div lhs").view(), &b_value.view()),
            ),
            Op::Neg | Op::ScalarSub => emit(0, binary::neg_grad(g)),
            Op::AddScalar | Op::SubScalar => emit(0, g),
            Op::MulScalar(s) => emit(0, binary::scale_grad(g, *s)),
            Op::DivScalar(s) => emit(0, binary::div_scalar_grad_array(g, *s)),
            Op::ScalarDiv { s, x } => emit(0, with_array!(&**x, |x| binary::scalar_div_grad_array(g, *s, x))),
            Op::Unary { kind, saved } => emit(0, with_array!(&**saved, |y| kind.grad(g, y))),
            Op::Pairwise { kind, a, b } => {
                send(emit, kind.grads(g, &a.view(), &b.view(), [needs[0], needs[1]]));
            }
            Op::Powi { x, n } => emit(0, with_array!(&**x, |x| unary::powi_grad(g, x, *n))),
            Op::Powf { x, p } => emit(0, with_array!(&**x, |x| unary::powf_grad(g, x, *p))),
            Op::Map { x, df } => emit(0, with_array!(&**x, |x| unary::map_grad(g, x, &**df))),
            Op::MatMul { a, b } => {
                let g = fixed::<F, Ix2>(g, "matmul");
                let da =
                    needs[0].then(|| matmul::matmul_grad_lhs(&g, &needed(b, "matmul rhs").view_as::<Ix2>("matmul")));
                let db =
                    needs[1].then(|| matmul::matmul_grad_rhs(&needed(a, "matmul lhs").view_as::<Ix2>("matmul"), &g));
                send(emit, [da.map(|d| d.into_dyn()), db.map(|d| d.into_dyn())]);
            }
            Op::MatVec { a, x } => {
                let g = fixed::<F, Ix1>(g, "matvec");
                let da =
                    needs[0].then(|| matmul::matvec_grad_lhs(&g, &needed(x, "matvec rhs").view_as::<Ix1>("matvec")));
                let dx =
                    needs[1].then(|| matmul::matvec_grad_rhs(&needed(a, "matvec lhs").view_as::<Ix2>("matvec"), &g));
                send(emit, [da.map(|d| d.into_dyn()), dx.map(|d| d.into_dyn())]);
            }
            Op::VecMat { x, b } => {
                let g = fixed::<F, Ix1>(g, "vecmat");
                let dx =
                    needs[0].then(|| matmul::vecmat_grad_lhs(&g, &needed(b, "vecmat rhs").view_as::<Ix2>("vecmat")));
                let db =
                    needs[1].then(|| matmul::vecmat_grad_rhs(&needed(x, "vecmat lhs").view_as::<Ix1>("vecmat"), &g));
                send(emit, [dx.map(|d| d.into_dyn()), db.map(|d| d.into_dyn())]);
            }
            Op::VecDot { x, y } => {
                let g = scalar_of(&g);
                let dx = needs[0].then(|| matmul::vecdot_grad(g, &needed(y, "vecdot rhs").view_as::<Ix1>("vecdot")));
                let dy = needs[1].then(|| matmul::vecdot_grad(g, &needed(x, "vecdot lhs").view_as::<Ix1>("vecdot")));
                send(emit, [dx.map(|d| d.into_dyn()), dy.map(|d| d.into_dyn())]);
            }
            Op::Transpose => emit(0, matmul::transpose_grad(g)),
            Op::Sum { shape } => emit(0, reduce::sum_grad(scalar_of(&g), shape)),
            Op::Mean { shape } => emit(0, reduce::mean_grad(scalar_of(&g), shape)),
            Op::SumAxis { axis, shape } => emit(0, reduce::sum_axis_grad(g, *axis, shape)),
            Op::MeanAxis { axis, shape } => emit(0, reduce::mean_axis_grad(g, *axis, shape)),
            Op::Softmax { y, axis } => emit(0, softmax::softmax_grad(g, &y.view(), *axis)),
            Op::LogSoftmax { y, axis } => emit(0, softmax::log_softmax_grad(g, &y.view(), *axis)),
            Op::Mse { pred, target } => {
                let g = scalar_of(&g);
                let (pred, target) = (pred.view(), target.view());
                let dp = needs[0].then(|| loss::mse_grad_pred(g, &pred, &target));
                let dt = needs[1].then(|| loss::mse_grad_target(g, &pred, &target));
                send(emit, [dp, dt]);
            }
            Op::CrossEntropy { logits, labels } => {
                let logits = logits.view_as::<Ix2>("cross_entropy");
                emit(0, loss::cross_entropy_grad(scalar_of(&g), &logits, labels).into_dyn());
            }
            Op::Conv2d {
                x,
                w,
                x_dim,
                w_dim,
                stride,
                padding,
            } => {
                let g = fixed::<F, Ix4>(g, "conv2d");
                let dx = needs[0].then(|| {
                    let w = needed(w, "conv2d weight").view_as::<Ix4>("conv2d");
                    conv::conv2d_grad_input(&g, &w, x_dim, *stride, *padding).into_dyn()
                });
                let dw = needs[1].then(|| {
                    let x = needed(x, "conv2d input").view_as::<Ix4>("conv2d");
                    conv::conv2d_grad_weight(&g, &x, w_dim, *stride, *padding).into_dyn()
                });
                let db = needs[2].then(|| conv::conv2d_grad_bias(&g).into_dyn());
                send(emit, [dx, dw, db]);
            }
            Op::BatchNorm { x, gamma, eps } => {
                let g = fixed::<F, Ix4>(g, "batch_norm");
                let dx = needs[0].then(|| {
                    let x = needed(x, "batch_norm input").view_as::<Ix4>("batch_norm");
                    let gamma = needed(gamma, "batch_norm gamma").view_as::<Ix1>("batch_norm");
                    batch_norm::batch_norm_grad_input(&g, &x, &gamma, *eps).into_dyn()
                });
                let dgamma = needs[1].then(|| {
                    let x = needed(x, "batch_norm input").view_as::<Ix4>("batch_norm");
                    batch_norm::batch_norm_grad_gamma(&g, &x, *eps).into_dyn()
                });
                let dbeta = needs[2].then(|| batch_norm::batch_norm_grad_beta(&g).into_dyn());
                send(emit, [dx, dgamma, dbeta]);
            }
            Op::MaxPool2d { x, kernel, stride } => {
                let g = fixed::<F, Ix4>(g, "max_pool2d");
                let x = x.view_as::<Ix4>("max_pool2d");
                emit(0, pool::max_pool2d_grad(&g, &x, *kernel, *stride).into_dyn());
            }
            Op::Custom(custom) => custom.backward(g, needs, emit),
            Op::Freed { .. } => unreachable!("the backward engine never runs the rule of a freed node"),
        }
    }
}

/// A 0-d array holding `value`: how the tape represents scalars.
pub(crate) fn scalar_array<F: Float>(value: F) -> ArrayD<F> {
    arr0(value).into_dyn()
}
