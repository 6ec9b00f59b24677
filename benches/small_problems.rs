//! Small problems, where every kernel call's fixed cost shows: the generated gradient
//! against the same gradient written by hand in idiomatic ndarray, as a new user would
//! write it (`x.dot(&w)`, `x.t().dot(&gz)`, `mapv`, `sum_axis`), not with this crate's
//! kernels.
//!
//! Cases (f64):
//! - `tanh_layer_16x8x4`: `sum(tanh(x·W + b))` for `x` 16×8, `W` 8×4, gradient with
//!   respect to `W` and `b`;
//! - `mlp_16x8x16x4`: `sum((tanh(x·W1 + b1)·W2 + b2)²)` for `x` 16×8, hidden width 16,
//!   4 outputs, gradient with respect to all four parameters;
//! - `tanh_layer_256x128x64`: the tanh layer at `x` 256×128, `W` 128×64, where the
//!   kernels dominate and the fixed costs vanish (the large case must not regress).
//!
//! The machine these run on is shared, so beside criterion's groups `paired_summary`
//! times generated and hand-written alternately, call by call (`common::paired`), and
//! prints the median of the per-round ratios. Each round times a batch of calls, so
//! that the clock's own cost is small against a call of a few microseconds.
//!
//! Before anything is timed, the generated and hand-written gradients of every case are
//! compared (max relative error ≤ 1e-10), so the comparison is between equal results.
//!
//! Run: `cargo bench --bench small_problems -- --warm-up-time 1 --measurement-time 3`.
//! Set `PRINT_GRAD_SOURCE=1` to print the generated static code of each case first,
//! `SKIP_PAIRED=1` to leave out the paired summary.

// Not every helper of the shared harness is used here.
#[allow(dead_code)]
mod common;

use std::time::{Duration, Instant};

use autodiff::ndarray::{Array, Axis, ShapeBuilder, Zip};
use autodiff::prelude::*;
use autodiff::runtime::gradcheck::max_relative_error;
use criterion::{criterion_group, criterion_main, Criterion};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use common::{paired, report};

// ---- the cases, as a user writes them ---------------------------------------------

/// `sum(tanh(x·W + b))`: one dense tanh layer, summed.
#[differentiate(wrt(w, b))]
pub fn tanh_layer(x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>) -> f64 {
    (x.dot(w) + b).tanh().sum()
}

/// `sum((tanh(x·W1 + b1)·W2 + b2)²)`: a two-layer perceptron with a squared output.
#[differentiate(wrt(w1, b1, w2, b2))]
pub fn mlp(x: &Array2<f64>, w1: &Array2<f64>, b1: &Array1<f64>, w2: &Array2<f64>, b2: &Array1<f64>) -> f64 {
    let h = (x.dot(w1) + b1).tanh();
    let out = h.dot(w2) + b2;
    (&out * &out).sum()
}

// ---- the same gradients in idiomatic ndarray ----------------------------------------

/// The tanh layer's value and `(dW, db)`, as a user writes them with ndarray alone.
fn tanh_layer_hand(x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>) -> (f64, (Array2<f64>, Array1<f64>)) {
    let y = (x.dot(w) + b).mapv(f64::tanh);
    let value = y.sum();
    let gz = y.mapv(|y| 1.0 - y * y);
    (value, (x.t().dot(&gz), gz.sum_axis(Axis(0))))
}

/// The MLP's value and `(dW1, db1, dW2, db2)`, as a user writes them with ndarray alone.
#[allow(clippy::type_complexity)]
fn mlp_hand(
    x: &Array2<f64>,
    w1: &Array2<f64>,
    b1: &Array1<f64>,
    w2: &Array2<f64>,
    b2: &Array1<f64>,
) -> (f64, (Array2<f64>, Array1<f64>, Array2<f64>, Array1<f64>)) {
    let h = (x.dot(w1) + b1).mapv(f64::tanh);
    let out = h.dot(w2) + b2;
    let value = out.iter().map(|v| v * v).sum();
    let g_out = out * 2.0;
    let d_w2 = h.t().dot(&g_out);
    let d_b2 = g_out.sum_axis(Axis(0));
    let mut g_z = g_out.dot(&w2.t());
    Zip::from(&mut g_z).and(&h).for_each(|g, &h| *g *= 1.0 - h * h);
    (value, (x.t().dot(&g_z), g_z.sum_axis(Axis(0)), d_w2, d_b2))
}

// ---- inputs --------------------------------------------------------------------------

/// Uniform in `[-bound, bound)`.
fn uniform<Sh: ShapeBuilder>(rng: &mut StdRng, shape: Sh, bound: f64) -> Array<f64, Sh::Dim> {
    Array::from_shape_simple_fn(shape, || rng.gen_range(-bound..bound))
}

/// The inputs of a tanh layer of `batch × inputs → outputs`.
struct LayerInputs {
    x: Array2<f64>,
    w: Array2<f64>,
    b: Array1<f64>,
}

impl LayerInputs {
    fn new(batch: usize, inputs: usize, outputs: usize) -> Self {
        let mut rng = StdRng::seed_from_u64(1);
        // Weights scaled by 1/√fan_in keep tanh away from saturation.
        LayerInputs {
            x: uniform(&mut rng, (batch, inputs), 1.0),
            w: uniform(&mut rng, (inputs, outputs), 1.0 / (inputs as f64).sqrt()),
            b: uniform(&mut rng, outputs, 0.1),
        }
    }
}

/// The inputs of the MLP of `batch × inputs → hidden → outputs`.
struct MlpInputs {
    x: Array2<f64>,
    w1: Array2<f64>,
    b1: Array1<f64>,
    w2: Array2<f64>,
    b2: Array1<f64>,
}

impl MlpInputs {
    fn new(batch: usize, inputs: usize, hidden: usize, outputs: usize) -> Self {
        let mut rng = StdRng::seed_from_u64(2);
        MlpInputs {
            x: uniform(&mut rng, (batch, inputs), 1.0),
            w1: uniform(&mut rng, (inputs, hidden), 1.0 / (inputs as f64).sqrt()),
            b1: uniform(&mut rng, hidden, 0.1),
            w2: uniform(&mut rng, (hidden, outputs), 1.0 / (hidden as f64).sqrt()),
            b2: uniform(&mut rng, outputs, 0.1),
        }
    }
}

/// The small layer, the small MLP and the large layer.
fn small_layer() -> LayerInputs {
    LayerInputs::new(16, 8, 4)
}
fn small_mlp() -> MlpInputs {
    MlpInputs::new(16, 8, 16, 4)
}
fn large_layer() -> LayerInputs {
    LayerInputs::new(256, 128, 64)
}

// ---- agreement -------------------------------------------------------------------------

/// Panics unless generated and hand-written values and gradients agree to 1e-10.
fn check_agreement() {
    let check = |case: &str, what: &str, error: f64| {
        assert!(error <= 1e-10, "{case}: {what} differs by {error:e}");
    };
    for (case, LayerInputs { x, w, b }) in [("tanh_layer small", small_layer()), ("tanh_layer large", large_layer())] {
        let (value, (d_w, d_b)) = tanh_layer_grad(&x, &w, &b);
        let (hand_value, (hand_w, hand_b)) = tanh_layer_hand(&x, &w, &b);
        check(case, "value", ((value - hand_value) / hand_value).abs());
        check(case, "dW", max_relative_error(&d_w, &hand_w));
        check(case, "db", max_relative_error(&d_b, &hand_b));
    }
    let MlpInputs { x, w1, b1, w2, b2 } = small_mlp();
    let (value, (d_w1, d_b1, d_w2, d_b2)) = mlp_grad(&x, &w1, &b1, &w2, &b2);
    let (hand_value, (hand_w1, hand_b1, hand_w2, hand_b2)) = mlp_hand(&x, &w1, &b1, &w2, &b2);
    check("mlp", "value", ((value - hand_value) / hand_value).abs());
    for (what, generated, hand) in [("dW1", &d_w1, &hand_w1), ("dW2", &d_w2, &hand_w2)] {
        check("mlp", what, max_relative_error(generated, hand));
    }
    for (what, generated, hand) in [("db1", &d_b1, &hand_b1), ("db2", &d_b2, &hand_b2)] {
        check("mlp", what, max_relative_error(generated, hand));
    }
}

// ---- timing --------------------------------------------------------------------------

/// Times `calls` calls of `run` in a row (results dropped inside the timing, as a user's
/// loop would): a call of a few microseconds is too short to time alone against the clock.
fn batched<R>(calls: usize, mut run: impl FnMut() -> R) -> impl FnMut() -> Duration {
    move || {
        let start = Instant::now();
        for _ in 0..calls {
            std::hint::black_box(run());
        }
        start.elapsed()
    }
}

/// Criterion groups: generated and hand-written, full gradient, each case.
fn criterion_groups(c: &mut Criterion) {
    if std::env::var_os("PRINT_GRAD_SOURCE").is_some() {
        println!("==== tanh_layer_grad_source() ====\n{}", tanh_layer_grad_source());
        println!("==== mlp_grad_source() ====\n{}", mlp_grad_source());
    }
    check_agreement();
    for (name, inputs) in [
        ("tanh_layer_16x8x4", small_layer()),
        ("tanh_layer_256x128x64", large_layer()),
    ] {
        let LayerInputs { x, w, b } = &inputs;
        let mut group = c.benchmark_group(name);
        group.bench_function("generated", |bench| bench.iter(|| tanh_layer_grad(x, w, b)));
        group.bench_function("handwritten", |bench| bench.iter(|| tanh_layer_hand(x, w, b)));
        group.finish();
    }
    let MlpInputs { x, w1, b1, w2, b2 } = &small_mlp();
    let mut group = c.benchmark_group("mlp_16x8x16x4");
    group.bench_function("generated", |bench| bench.iter(|| mlp_grad(x, w1, b1, w2, b2)));
    group.bench_function("handwritten", |bench| bench.iter(|| mlp_hand(x, w1, b1, w2, b2)));
    group.finish();
}

/// Generated against hand-written, alternated batch by batch: the median ratio per case.
fn paired_summary(_: &mut Criterion) {
    if std::env::var_os("SKIP_PAIRED").is_some() {
        return;
    }
    // Under `--test` (a smoke run) eleven rounds per case suffice.
    let smoke = std::env::args().any(|arg| arg == "--test");
    let budget = Duration::from_millis(if smoke { 0 } else { 3000 });
    println!("\npaired medians (f64), ratio = median over rounds of generated/handwritten");
    println!(
        "{:<18} {:<28} {:>13} {:>13}",
        "case", "what (per batch)", "generated", "handwritten"
    );
    let LayerInputs { x, w, b } = &small_layer();
    report(
        "tanh 16x8x4",
        "full gradient, 100 calls",
        paired(
            batched(100, || tanh_layer_grad(x, w, b)),
            batched(100, || tanh_layer_hand(x, w, b)),
            budget,
        ),
    );
    let MlpInputs { x, w1, b1, w2, b2 } = &small_mlp();
    report(
        "mlp 16x8x16x4",
        "full gradient, 100 calls",
        paired(
            batched(100, || mlp_grad(x, w1, b1, w2, b2)),
            batched(100, || mlp_hand(x, w1, b1, w2, b2)),
            budget,
        ),
    );
    let LayerInputs { x, w, b } = &large_layer();
    report(
        "tanh 256x128x64",
        "full gradient, 1 call",
        paired(
            batched(1, || tanh_layer_grad(x, w, b)),
            batched(1, || tanh_layer_hand(x, w, b)),
            budget,
        ),
    );
}

criterion_group!(benches, criterion_groups, paired_summary);
criterion_main!(benches);
