//! Generated gradients against the same math written by hand with the same
//! runtime kernels (`autodiff::runtime::kernels`).
//!
//! The hand-written code is the floor a careful human reaches with the kernel
//! API: the forward keeps only what the backward reads, the backward calls the
//! `_grad` kernels, takes the `_filled` path where the adjoint of a `sum` is a
//! constant, and hands a dead buffer on to the next adjoint instead of cloning.
//! Each case is timed as
//! - `full/*`: the whole gradient, `f_grad` vs hand-written forward + backward,
//!   and `f_tape_grad` (the dynamic tape) for reference;
//! - `backward/*`: backward alone, on a context prepared untimed (`iter_batched`).
//!
//! The machine these run on is shared, so criterion's separate runs of two
//! variants can see different loads. `paired_summary` (after criterion's groups)
//! therefore also times the variants alternately, call by call, and prints the
//! median of the per-round ratios, which load drift affects far less (the
//! harness, `common::paired`, is shared with the RNN bench). Set `SKIP_PAIRED=1`
//! to leave it out.
//!
//! Before anything is timed, the generated, hand-written and tape gradients of
//! every case are compared once (max relative error <= 1e-5 in f64, 1e-4 in
//! f32, see [`tolerance`]), so the comparison is between equal results.
//!
//! Run: `cargo bench --bench generated_vs_handwritten -- --warm-up-time 1 --measurement-time 3`.
//! Set `PRINT_GRAD_SOURCE=1` to print the generated static code of every case first,
//! `PRINT_AGREEMENT=1` to print every error of the agreement check.

mod common;

use std::time::Duration;

use autodiff::ndarray::{Array, Dimension, Ix1, ShapeBuilder};
use autodiff::prelude::*;
use autodiff::runtime::gradcheck::max_relative_error;
use autodiff::runtime::kernels::{binary, matmul, reduce, unary};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, SamplingMode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use common::{paired, report, timed, timed_backward};

/// The agreement required between generated and hand-written (or tape) gradients.
///
/// 1e-5 in f64, where the variants agree to ~1e-13. In f32 the hand-written MLP
/// (and the tape's matmul chain) sums the constant adjoint of `sum` in a different
/// order than the generated code (column sums instead of a GEMM), which leaves up
/// to ~7e-5 of f32 rounding; 1e-4 still catches any wrong term.
fn tolerance<F: Float>() -> f64 {
    if F::NAME == "f64" {
        1e-5
    } else {
        1e-4
    }
}

/// Elements of the vectors of the elementwise case.
const ELEMENTWISE_LEN: usize = 1 << 20;

// ---- the cases, as a user writes them ---------------------------------------------

/// `sum(relu(x·w1 + b1)·w2 + b2)`: a two-layer perceptron on a batch.
#[differentiate]
#[differentiate(wrt(w1, b1, w2, b2), name = mlp_params)]
pub fn mlp<F: Float>(x: &Array2<F>, w1: &Array2<F>, b1: &Array1<F>, w2: &Array2<F>, b2: &Array1<F>) -> F {
    (relu(&(x.dot(w1) + b1)).dot(w2) + b2).sum()
}

/// `sum(sigmoid(2·tanh(x∘w) + eˣ))`: a chain of elementwise ops on long vectors,
/// where memory traffic (allocations, extra passes) is all there is to measure.
#[differentiate]
pub fn elementwise<F: Float>(x: &Array1<F>, w: &Array1<F>) -> F {
    ((x * w).tanh() * F::of(2.0) + x.exp()).sigmoid().sum()
}

/// `sum(A·B·C·D)`: three matrix products, where the kernels dominate.
#[differentiate]
pub fn matmul_chain<F: Float>(a: &Array2<F>, b: &Array2<F>, c: &Array2<F>, d: &Array2<F>) -> F {
    a.dot(b).dot(c).dot(d).sum()
}

// ---- the same math by hand ---------------------------------------------------------

/// What the hand-written MLP backward reads.
struct MlpSaved<'a, F: Float> {
    x: &'a Array2<F>,
    w1: &'a Array2<F>,
    w2: &'a Array2<F>,
    /// The relu output: relu's backward reads it, and it is `w2`'s left factor.
    h: Array2<F>,
    n_rows: usize,
    n_outputs: usize,
}

fn mlp_hand_forward<'a, F: Float>(
    x: &'a Array2<F>,
    w1: &'a Array2<F>,
    b1: &Array1<F>,
    w2: &'a Array2<F>,
    b2: &Array1<F>,
) -> (F, MlpSaved<'a, F>) {
    let z1 = matmul::matmul(x, w1);
    let a1 = binary::add(&z1, b1);
    drop(z1);
    let h = unary::relu(&a1);
    drop(a1);
    let z2 = matmul::matmul(&h, w2);
    let out = binary::add(&z2, b2);
    drop(z2);
    let value = reduce::sum(&out);
    let (n_rows, n_outputs) = out.dim();
    (
        value,
        MlpSaved {
            x,
            w1,
            w2,
            h,
            n_rows,
            n_outputs,
        },
    )
}

/// Gradients `(dx if wanted, dw1, db1, dw2, db2)`.
#[allow(clippy::type_complexity)]
fn mlp_hand_backward<F: Float>(
    saved: MlpSaved<'_, F>,
    seed: F,
    want_dx: bool,
) -> (Option<Array2<F>>, Array2<F>, Array1<F>, Array2<F>, Array1<F>) {
    let MlpSaved {
        x,
        w1,
        w2,
        h,
        n_rows,
        n_outputs,
    } = saved;
    // The output's adjoint is `seed` everywhere (the adjoint of a sum), so the
    // last product takes the filled path and `db2` is a column sum of a constant.
    let d_b2 = reduce::sum_grad(seed * F::of_usize(n_rows), &Ix1(n_outputs));
    let d_h = matmul::matmul_grad_lhs_filled(seed, n_rows, w2);
    let d_w2 = matmul::matmul_grad_rhs_filled(&h, seed, n_outputs);
    let d_a1 = unary::relu_grad(d_h, &h);
    drop(h);
    // `a1 = z1 + b1`: `dz1` is `da1` itself (same shape), `db1` its column sums.
    let d_b1 = reduce::sum_axis(&d_a1, Axis(0));
    let d_w1 = matmul::matmul_grad_rhs(x, &d_a1);
    let d_x = want_dx.then(|| matmul::matmul_grad_lhs(&d_a1, w1));
    (d_x, d_w1, d_b1, d_w2, d_b2)
}

/// What the hand-written elementwise backward reads.
struct ElementwiseSaved<'a, F: Float> {
    x: &'a Array1<F>,
    w: &'a Array1<F>,
    /// `tanh(x∘w)`, read by tanh's backward.
    t: Array1<F>,
    /// `eˣ`, read by exp's backward (and then reused as `dx`'s buffer).
    e: Array1<F>,
    /// The sigmoid output, read by sigmoid's backward.
    y: Array1<F>,
}

fn elementwise_hand_forward<'a, F: Float>(x: &'a Array1<F>, w: &'a Array1<F>) -> (F, ElementwiseSaved<'a, F>) {
    let a = binary::mul(x, w);
    let t = unary::tanh(&a);
    drop(a);
    let s = binary::mul_scalar(&t, F::of(2.0));
    let e = unary::exp(x);
    let u = binary::add(&s, &e);
    drop(s);
    let y = unary::sigmoid(&u);
    drop(u);
    let value = reduce::sum(&y);
    (value, ElementwiseSaved { x, w, t, e, y })
}

/// Gradients `(dx, dw)`.
fn elementwise_hand_backward<F: Float>(saved: ElementwiseSaved<'_, F>, seed: F) -> (Array1<F>, Array1<F>) {
    let ElementwiseSaved { x, w, t, e, y } = saved;
    let d_u = unary::sigmoid_grad(reduce::sum_grad(seed, &y.raw_dim()), &y);
    drop(y);
    // `u = s + e` hands `du` to both operands. exp's adjoint `du·e` is computed in
    // `e`'s buffer (dead after this), so `du` itself moves on to `s` without a clone.
    let mut d_x = binary::mul_grad_lhs(e, &d_u, &x.raw_dim());
    let d_t = binary::scale_grad(d_u, F::of(2.0));
    let d_a = unary::tanh_grad(d_t, &t);
    drop(t);
    // `a = x∘w` needs `da` twice: `dw = da·x` in a fresh buffer (one pass, where a
    // clone and an in-place product would be two), then `da`'s buffer becomes `da·w`.
    let d_w = binary::mul(&d_a, x);
    binary::accumulate(&mut d_x, binary::mul_grad_lhs(d_a, w, &x.raw_dim()));
    (d_x, d_w)
}

/// What the hand-written matmul-chain backward reads.
struct ChainSaved<'a, F: Float> {
    a: &'a Array2<F>,
    b: &'a Array2<F>,
    c: &'a Array2<F>,
    d: &'a Array2<F>,
    /// `A·B`, the left factor of `C`.
    p: Array2<F>,
    /// `A·B·C`, the left factor of `D`.
    q: Array2<F>,
    n_rows: usize,
    n_cols: usize,
}

fn chain_hand_forward<'a, F: Float>(
    a: &'a Array2<F>,
    b: &'a Array2<F>,
    c: &'a Array2<F>,
    d: &'a Array2<F>,
) -> (F, ChainSaved<'a, F>) {
    let p = matmul::matmul(a, b);
    let q = matmul::matmul(&p, c);
    let r = matmul::matmul(&q, d);
    let value = reduce::sum(&r);
    let (n_rows, n_cols) = r.dim();
    (
        value,
        ChainSaved {
            a,
            b,
            c,
            d,
            p,
            q,
            n_rows,
            n_cols,
        },
    )
}

/// Gradients `(dA, dB, dC, dD)`.
fn chain_hand_backward<F: Float>(saved: ChainSaved<'_, F>, seed: F) -> (Array2<F>, Array2<F>, Array2<F>, Array2<F>) {
    let ChainSaved {
        a,
        b,
        c,
        d,
        p,
        q,
        n_rows,
        n_cols,
    } = saved;
    let d_q = matmul::matmul_grad_lhs_filled(seed, n_rows, d);
    let d_d = matmul::matmul_grad_rhs_filled(&q, seed, n_cols);
    drop(q);
    let d_p = matmul::matmul_grad_lhs(&d_q, c);
    let d_c = matmul::matmul_grad_rhs(&p, &d_q);
    drop((p, d_q));
    let d_a = matmul::matmul_grad_lhs(&d_p, b);
    let d_b = matmul::matmul_grad_rhs(a, &d_p);
    (d_a, d_b, d_c, d_d)
}

// ---- inputs --------------------------------------------------------------------------

/// Uniform in `[-bound, bound)`, drawn in f64 and rounded to `F`, so that both
/// float types see the same values.
fn uniform<F: Float, Sh: ShapeBuilder>(rng: &mut StdRng, shape: Sh, bound: f64) -> Array<F, Sh::Dim> {
    Array::from_shape_simple_fn(shape, || F::of(rng.gen_range(-bound..bound)))
}

struct MlpInputs<F> {
    x: Array2<F>,
    w1: Array2<F>,
    b1: Array1<F>,
    w2: Array2<F>,
    b2: Array1<F>,
}

impl<F: Float> MlpInputs<F> {
    fn new() -> Self {
        let mut rng = StdRng::seed_from_u64(1);
        // Weights scaled by 1/√fan_in keep the activations of order one.
        MlpInputs {
            x: uniform(&mut rng, (32, 784), 1.0),
            w1: uniform(&mut rng, (784, 128), 1.0 / 784f64.sqrt()),
            b1: uniform(&mut rng, 128, 0.1),
            w2: uniform(&mut rng, (128, 10), 1.0 / 128f64.sqrt()),
            b2: uniform(&mut rng, 10, 0.1),
        }
    }
}

struct ElementwiseInputs<F> {
    x: Array1<F>,
    w: Array1<F>,
}

impl<F: Float> ElementwiseInputs<F> {
    fn new() -> Self {
        let mut rng = StdRng::seed_from_u64(2);
        ElementwiseInputs {
            x: uniform(&mut rng, ELEMENTWISE_LEN, 2.0),
            w: uniform(&mut rng, ELEMENTWISE_LEN, 2.0),
        }
    }
}

struct ChainInputs<F> {
    a: Array2<F>,
    b: Array2<F>,
    c: Array2<F>,
    d: Array2<F>,
}

impl<F: Float> ChainInputs<F> {
    fn new() -> Self {
        let mut rng = StdRng::seed_from_u64(3);
        ChainInputs {
            a: uniform(&mut rng, (64, 128), 1.0),
            b: uniform(&mut rng, (128, 256), 1.0 / 128f64.sqrt()),
            c: uniform(&mut rng, (256, 512), 1.0 / 256f64.sqrt()),
            d: uniform(&mut rng, (512, 128), 1.0 / 512f64.sqrt()),
        }
    }
}

// ---- the agreement check, once, before timing --------------------------------------------

/// Panics unless `generated` and `reference` agree to [`tolerance`]; `what` names the gradient.
fn agree<F: Float, D: Dimension>(what: &str, generated: &Array<F, D>, reference: &Array<F, D>) {
    let error = max_relative_error(generated, reference);
    if std::env::var_os("PRINT_AGREEMENT").is_some() {
        println!("{what} ({}): max relative error {error:.1e}", F::NAME);
    }
    assert!(
        error <= tolerance::<F>(),
        "{what} ({}): generated and reference gradients differ, max relative error {error:e}",
        F::NAME
    );
}

fn agree_value<F: Float>(what: &str, generated: F, reference: F) {
    agree(
        what,
        &autodiff::ndarray::arr0(generated),
        &autodiff::ndarray::arr0(reference),
    );
}

/// Generated vs hand-written (and the tape vs generated) for every case at `F`.
fn check_agreement<F: Float>() {
    let one = F::one();

    let MlpInputs { x, w1, b1, w2, b2 } = &MlpInputs::<F>::new();
    let (value, (gx, gw1, gb1, gw2, gb2)) = mlp_grad(x, w1, b1, w2, b2);
    let (hand_value, saved) = mlp_hand_forward(x, w1, b1, w2, b2);
    let (hx, hw1, hb1, hw2, hb2) = mlp_hand_backward(saved, one, true);
    agree_value("mlp value", value, hand_value);
    agree("mlp dx", &gx, &hx.expect("dx was asked for"));
    agree("mlp dw1", &gw1, &hw1);
    agree("mlp db1", &gb1, &hb1);
    agree("mlp dw2", &gw2, &hw2);
    agree("mlp db2", &gb2, &hb2);
    let (_, (tx, tw1, tb1, tw2, tb2)) = mlp_tape_grad(x, w1, b1, w2, b2);
    agree("mlp tape dx", &tx, &gx);
    agree("mlp tape dw1", &tw1, &gw1);
    agree("mlp tape db1", &tb1, &gb1);
    agree("mlp tape dw2", &tw2, &gw2);
    agree("mlp tape db2", &tb2, &gb2);
    let (_, (pw1, pb1, pw2, pb2)) = mlp_params_grad(x, w1, b1, w2, b2);
    agree("mlp_params dw1", &pw1, &hw1);
    agree("mlp_params db1", &pb1, &hb1);
    agree("mlp_params dw2", &pw2, &hw2);
    agree("mlp_params db2", &pb2, &hb2);

    let ElementwiseInputs { x, w } = &ElementwiseInputs::<F>::new();
    let (value, (gx, gw)) = elementwise_grad(x, w);
    let (hand_value, saved) = elementwise_hand_forward(x, w);
    let (hx, hw) = elementwise_hand_backward(saved, one);
    agree_value("elementwise value", value, hand_value);
    agree("elementwise dx", &gx, &hx);
    agree("elementwise dw", &gw, &hw);
    let (_, (tx, tw)) = elementwise_tape_grad(x, w);
    agree("elementwise tape dx", &tx, &gx);
    agree("elementwise tape dw", &tw, &gw);

    let ChainInputs { a, b, c, d } = &ChainInputs::<F>::new();
    let (value, (ga, gb, gc, gd)) = matmul_chain_grad(a, b, c, d);
    let (hand_value, saved) = chain_hand_forward(a, b, c, d);
    let (ha, hb, hc, hd) = chain_hand_backward(saved, one);
    agree_value("matmul_chain value", value, hand_value);
    agree("matmul_chain dA", &ga, &ha);
    agree("matmul_chain dB", &gb, &hb);
    agree("matmul_chain dC", &gc, &hc);
    agree("matmul_chain dD", &gd, &hd);
    let (_, (ta, tb, tc, td)) = matmul_chain_tape_grad(a, b, c, d);
    agree("matmul_chain tape dA", &ta, &ga);
    agree("matmul_chain tape dB", &tb, &gb);
    agree("matmul_chain tape dC", &tc, &gc);
    agree("matmul_chain tape dD", &td, &gd);
}

// ---- benches -----------------------------------------------------------------------------

/// Times `run` called repeatedly (its result is dropped inside the timing, for every variant alike).
fn bench_full<R>(group: &mut BenchmarkGroup<'_, WallTime>, id: &str, mut run: impl FnMut() -> R) {
    group.bench_function(id, |bencher| bencher.iter(&mut run));
}

/// Times `backward` alone on contexts made by `prepare` outside the timing.
fn bench_backward<C, R>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    mut prepare: impl FnMut() -> C,
    mut backward: impl FnMut(C) -> R,
) {
    // LargeInput keeps about one context alive at a time, so the 12 MB contexts of
    // the elementwise case do not pile up and evict each other from the cache.
    group.bench_function(id, |bencher| {
        bencher.iter_batched(&mut prepare, &mut backward, BatchSize::LargeInput)
    });
}

fn group<'c>(c: &'c mut Criterion, name: String) -> BenchmarkGroup<'c, WallTime> {
    let mut group = c.benchmark_group(name);
    // Flat sampling: the slowest variants (the tape at 1M elements) fit the short runs.
    group.sampling_mode(SamplingMode::Flat).sample_size(20);
    group
}

/// Every case at `F`; with `full_only`, only the full gradient, generated vs hand-written.
fn bench_all<F: Float>(c: &mut Criterion, full_only: bool) {
    let one = F::one();
    let name = F::NAME;

    let MlpInputs { x, w1, b1, w2, b2 } = &MlpInputs::<F>::new();
    let mut g = group(c, format!("mlp_all_{name}"));
    bench_full(&mut g, "full/generated", || mlp_grad(x, w1, b1, w2, b2));
    bench_full(&mut g, "full/handwritten", || {
        let (value, saved) = mlp_hand_forward(x, w1, b1, w2, b2);
        (value, mlp_hand_backward(saved, one, true))
    });
    if !full_only {
        bench_full(&mut g, "full/tape", || mlp_tape_grad(x, w1, b1, w2, b2));
        bench_backward(
            &mut g,
            "backward/generated",
            || mlp_forward(x, w1, b1, w2, b2).1,
            |ctx| mlp_backward(ctx, one),
        );
        bench_backward(
            &mut g,
            "backward/handwritten",
            || mlp_hand_forward(x, w1, b1, w2, b2).1,
            |saved| mlp_hand_backward(saved, one, true),
        );
    }
    g.finish();

    let mut g = group(c, format!("mlp_params_{name}"));
    bench_full(&mut g, "full/generated", || mlp_params_grad(x, w1, b1, w2, b2));
    bench_full(&mut g, "full/handwritten", || {
        let (value, saved) = mlp_hand_forward(x, w1, b1, w2, b2);
        (value, mlp_hand_backward(saved, one, false))
    });
    if !full_only {
        bench_full(&mut g, "full/tape", || mlp_params_tape_grad(x, w1, b1, w2, b2));
        bench_backward(
            &mut g,
            "backward/generated",
            || mlp_params_forward(x, w1, b1, w2, b2).1,
            |ctx| mlp_params_backward(ctx, one),
        );
        bench_backward(
            &mut g,
            "backward/handwritten",
            || mlp_hand_forward(x, w1, b1, w2, b2).1,
            |saved| mlp_hand_backward(saved, one, false),
        );
    }
    g.finish();

    let ElementwiseInputs { x, w } = &ElementwiseInputs::<F>::new();
    let mut g = group(c, format!("elementwise_{name}"));
    bench_full(&mut g, "full/generated", || elementwise_grad(x, w));
    bench_full(&mut g, "full/handwritten", || {
        let (value, saved) = elementwise_hand_forward(x, w);
        (value, elementwise_hand_backward(saved, one))
    });
    if !full_only {
        bench_full(&mut g, "full/tape", || elementwise_tape_grad(x, w));
        bench_backward(
            &mut g,
            "backward/generated",
            || elementwise_forward(x, w).1,
            |ctx| elementwise_backward(ctx, one),
        );
        bench_backward(
            &mut g,
            "backward/handwritten",
            || elementwise_hand_forward(x, w).1,
            |saved| elementwise_hand_backward(saved, one),
        );
    }
    g.finish();

    let ChainInputs { a, b, c: cm, d } = &ChainInputs::<F>::new();
    let mut g = group(c, format!("matmul_chain_{name}"));
    bench_full(&mut g, "full/generated", || matmul_chain_grad(a, b, cm, d));
    bench_full(&mut g, "full/handwritten", || {
        let (value, saved) = chain_hand_forward(a, b, cm, d);
        (value, chain_hand_backward(saved, one))
    });
    if !full_only {
        bench_full(&mut g, "full/tape", || matmul_chain_tape_grad(a, b, cm, d));
        bench_backward(
            &mut g,
            "backward/generated",
            || matmul_chain_forward(a, b, cm, d).1,
            |ctx| matmul_chain_backward(ctx, one),
        );
        bench_backward(
            &mut g,
            "backward/handwritten",
            || chain_hand_forward(a, b, cm, d).1,
            |saved| chain_hand_backward(saved, one),
        );
    }
    g.finish();
}

// ---- paired timings (the harness is in `common`) -------------------------------------

/// Generated vs hand-written (full and backward) and tape vs generated, every case at f32, paired.
fn paired_summary(_: &mut Criterion) {
    if std::env::var_os("SKIP_PAIRED").is_some() {
        return;
    }
    let budget = Duration::from_millis(1500);
    let one = 1.0f32;
    println!("\npaired medians (f32), ratio = median over rounds of first/second");
    println!(
        "{:<18} {:<28} {:>13} {:>13}",
        "case", "first vs second", "first", "second"
    );

    let MlpInputs { x, w1, b1, w2, b2 } = &MlpInputs::<f32>::new();
    let hand_full = |want_dx| {
        timed(move || {
            let (value, saved) = mlp_hand_forward(x, w1, b1, w2, b2);
            (value, mlp_hand_backward(saved, one, want_dx))
        })
    };
    let hand_backward = |want_dx| {
        timed_backward(
            || mlp_hand_forward(x, w1, b1, w2, b2).1,
            move |saved| mlp_hand_backward(saved, one, want_dx),
        )
    };
    report(
        "mlp_all",
        "full gen vs hand",
        paired(timed(|| mlp_grad(x, w1, b1, w2, b2)), hand_full(true), budget),
    );
    report(
        "mlp_all",
        "backward gen vs hand",
        paired(
            timed_backward(|| mlp_forward(x, w1, b1, w2, b2).1, |ctx| mlp_backward(ctx, one)),
            hand_backward(true),
            budget,
        ),
    );
    report(
        "mlp_all",
        "full tape vs gen",
        paired(
            timed(|| mlp_tape_grad(x, w1, b1, w2, b2)),
            timed(|| mlp_grad(x, w1, b1, w2, b2)),
            budget,
        ),
    );
    report(
        "mlp_params",
        "full gen vs hand",
        paired(timed(|| mlp_params_grad(x, w1, b1, w2, b2)), hand_full(false), budget),
    );
    report(
        "mlp_params",
        "backward gen vs hand",
        paired(
            timed_backward(
                || mlp_params_forward(x, w1, b1, w2, b2).1,
                |ctx| mlp_params_backward(ctx, one),
            ),
            hand_backward(false),
            budget,
        ),
    );
    report(
        "mlp_params",
        "full tape vs gen",
        paired(
            timed(|| mlp_params_tape_grad(x, w1, b1, w2, b2)),
            timed(|| mlp_params_grad(x, w1, b1, w2, b2)),
            budget,
        ),
    );

    let ElementwiseInputs { x, w } = &ElementwiseInputs::<f32>::new();
    report(
        "elementwise",
        "full gen vs hand",
        paired(
            timed(|| elementwise_grad(x, w)),
            timed(|| {
                let (value, saved) = elementwise_hand_forward(x, w);
                (value, elementwise_hand_backward(saved, one))
            }),
            budget,
        ),
    );
    report(
        "elementwise",
        "backward gen vs hand",
        paired(
            timed_backward(|| elementwise_forward(x, w).1, |ctx| elementwise_backward(ctx, one)),
            timed_backward(
                || elementwise_hand_forward(x, w).1,
                |saved| elementwise_hand_backward(saved, one),
            ),
            budget,
        ),
    );
    report(
        "elementwise",
        "full tape vs gen",
        paired(
            timed(|| elementwise_tape_grad(x, w)),
            timed(|| elementwise_grad(x, w)),
            budget,
        ),
    );

    let ChainInputs { a, b, c, d } = &ChainInputs::<f32>::new();
    report(
        "matmul_chain",
        "full gen vs hand",
        paired(
            timed(|| matmul_chain_grad(a, b, c, d)),
            timed(|| {
                let (value, saved) = chain_hand_forward(a, b, c, d);
                (value, chain_hand_backward(saved, one))
            }),
            budget,
        ),
    );
    report(
        "matmul_chain",
        "backward gen vs hand",
        paired(
            timed_backward(
                || matmul_chain_forward(a, b, c, d).1,
                |ctx| matmul_chain_backward(ctx, one),
            ),
            timed_backward(
                || chain_hand_forward(a, b, c, d).1,
                |saved| chain_hand_backward(saved, one),
            ),
            budget,
        ),
    );
    report(
        "matmul_chain",
        "full tape vs gen",
        paired(
            timed(|| matmul_chain_tape_grad(a, b, c, d)),
            timed(|| matmul_chain_grad(a, b, c, d)),
            budget,
        ),
    );
}

fn generated_vs_handwritten(c: &mut Criterion) {
    if std::env::var_os("PRINT_GRAD_SOURCE").is_some() {
        for (name, source) in [
            ("mlp", mlp_grad_source()),
            ("mlp_params", mlp_params_grad_source()),
            ("elementwise", elementwise_grad_source()),
            ("matmul_chain", matmul_chain_grad_source()),
        ] {
            println!("==== {name}_grad_source() ====\n{source}");
        }
    }
    check_agreement::<f32>();
    check_agreement::<f64>();
    bench_all::<f32>(c, false);
    bench_all::<f64>(c, true);
}

criterion_group!(benches, generated_vs_handwritten, paired_summary);
criterion_main!(benches);
