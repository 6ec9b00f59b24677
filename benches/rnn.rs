//! A recurrent network written as a `for` loop, `#[differentiate]`d, against the
//! same forward and backward written by hand in idiomatic ndarray.
//!
//! `h ← tanh(h·W + x_t·U)` over 50 steps, loss `sum(h)`, gradient w.r.t. `h0`,
//! the weights (a slice holding `[W, U]`) and the inputs (a slice of `x_t`), in
//! f64, at two shapes: small (batch 4, hidden 8, input 4), where per-step
//! overhead shows, and medium (batch 16, hidden 64, input 32), where the GEMMs
//! start to dominate.
//!
//! Hand-written variants, both the loop a careful human writes: the forward
//! keeps every `h` in a `Vec`; the backward walks it in reverse, turns `dh` into
//! `dz` in place, accumulates `dW += h_{t-1}ᵀ·dz` and `dU += x_tᵀ·dz` into one
//! buffer each (GEMM with β = 1, no temporary), and writes `dx_t = dz·Uᵀ` and
//! the next `dh = dz·Wᵀ` into fresh arrays.
//! - `hand`: ndarray's own `dot` / `general_mat_mul` (the `matrixmultiply` crate);
//! - `hand_gemm`: the same code calling the runtime's GEMM
//!   (`autodiff::runtime::kernels::gemm::gemm`, which the generated code uses),
//!   so that `generated / hand_gemm` is the cost of the generated code itself
//!   and not of a different matrix-product backend.
//!
//! Timed as criterion groups (`rnn_{small,medium}`: `full/*` the whole gradient,
//! `backward/*` backward alone on a context prepared untimed), then alternately
//! call by call (`common::paired`), printing median ratios; set `SKIP_PAIRED=1`
//! to leave that out. Before anything is timed, every variant's value and
//! gradients are checked against the generated ones (max relative error
//! <= 1e-9), so the comparison is between equal results.
//!
//! `RNN_ABLATION=1` adds an ablation: the generated code transcribed by hand
//! with the same kernels, then with each of its extra per-step costs removed in
//! turn, timed alternately against the transcription, so that each ratio says
//! what one generated step costs.
//!
//! Run: `cargo bench --bench rnn -- --warm-up-time 1 --measurement-time 3`.
//! `PRINT_GRAD_SOURCE=1` prints `rnn_grad_source()` first.

mod common;

use std::time::Duration;

use autodiff::ndarray::linalg::general_mat_mul;
use autodiff::ndarray::{Array, ArrayView2, ArrayViewMut2, Dimension, Zip};
use autodiff::prelude::*;
use autodiff::runtime::gradcheck::max_relative_error;
use autodiff::runtime::kernels::gemm::gemm;
use autodiff::runtime::kernels::{binary, matmul, reduce, unary};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, SamplingMode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use common::{paired, report, timed, timed_backward};

/// Recurrent steps.
const STEPS: usize = 50;

/// The agreement required between the variants' gradients (f64; they differ only
/// in summation order inside the GEMMs, ~1e-14).
const TOLERANCE: f64 = 1e-9;

// ---- the network, as a user writes it -----------------------------------------------

/// `sum(h_T)` for `h_t = tanh(h_{t-1}·W + x_t·U)`, `ws = [W, U]`, `xs = [x_1, …, x_T]`.
#[differentiate]
pub fn rnn(h0: &Array2<f64>, ws: &[Array2<f64>], xs: &[Array2<f64>]) -> f64 {
    let mut h = h0.to_owned();
    for x in xs {
        h = (h.dot(&ws[0]) + x.dot(&ws[1])).tanh();
    }
    h.sum()
}

// ---- the same network by hand ----------------------------------------------------------

/// `c ← alpha·a·b + beta·c`: the matrix product a hand-written variant calls.
type Gemm = fn(f64, ArrayView2<'_, f64>, ArrayView2<'_, f64>, f64, ArrayViewMut2<'_, f64>);

/// ndarray's GEMM (`matrixmultiply`), as `dot` uses it.
fn ndarray_gemm(alpha: f64, a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>, beta: f64, mut c: ArrayViewMut2<'_, f64>) {
    general_mat_mul(alpha, &a, &b, beta, &mut c);
}

/// The runtime's GEMM, which the generated code calls.
fn runtime_gemm(alpha: f64, a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>, beta: f64, c: ArrayViewMut2<'_, f64>) {
    gemm(alpha, a, b, beta, c);
}

/// The loss and every state `h_0, …, h_T` (the backward reads all of them).
fn rnn_hand_forward(
    mm: Gemm,
    h0: &Array2<f64>,
    w: &Array2<f64>,
    u: &Array2<f64>,
    xs: &[Array2<f64>],
) -> (f64, Vec<Array2<f64>>) {
    let mut hs = Vec::with_capacity(xs.len() + 1);
    hs.push(h0.to_owned());
    for x in xs {
        let h = &hs[hs.len() - 1];
        // z = h·W + x·U in one buffer: the second product accumulates (β = 1).
        let mut z = Array2::zeros((h.nrows(), w.ncols()));
        mm(1.0, h.view(), w.view(), 0.0, z.view_mut());
        mm(1.0, x.view(), u.view(), 1.0, z.view_mut());
        z.mapv_inplace(f64::tanh);
        hs.push(z);
    }
    let value = hs[hs.len() - 1].sum();
    (value, hs)
}

/// Gradients `(dh0, [dW, dU], dxs)` from the states of [`rnn_hand_forward`].
fn rnn_hand_backward(
    mm: Gemm,
    hs: Vec<Array2<f64>>,
    w: &Array2<f64>,
    u: &Array2<f64>,
    xs: &[Array2<f64>],
) -> (Array2<f64>, Vec<Array2<f64>>, Vec<Array2<f64>>) {
    let mut dw = Array2::zeros(w.raw_dim());
    let mut du = Array2::zeros(u.raw_dim());
    let mut dxs: Vec<Array2<f64>> = xs.iter().map(|x| Array2::zeros(x.raw_dim())).collect();
    // The adjoint of `sum`.
    let mut dh = Array2::ones(hs[hs.len() - 1].raw_dim());
    for t in (0..xs.len()).rev() {
        // dz = dh ∘ (1 − h_{t+1}²), in dh's buffer.
        Zip::from(&mut dh).and(&hs[t + 1]).for_each(|d, &h| *d *= 1.0 - h * h);
        let dz = dh;
        mm(1.0, hs[t].t(), dz.view(), 1.0, dw.view_mut());
        mm(1.0, xs[t].t(), dz.view(), 1.0, du.view_mut());
        mm(1.0, dz.view(), u.t(), 0.0, dxs[t].view_mut());
        dh = Array2::zeros(hs[t].raw_dim());
        mm(1.0, dz.view(), w.t(), 0.0, dh.view_mut());
    }
    (dh, vec![dw, du], dxs)
}

/// The whole hand-written gradient: `(value, (dh0, [dW, dU], dxs))`, shaped like `rnn_grad`'s.
#[allow(clippy::type_complexity)]
fn rnn_hand_grad(
    mm: Gemm,
    h0: &Array2<f64>,
    ws: &[Array2<f64>],
    xs: &[Array2<f64>],
) -> (f64, (Array2<f64>, Vec<Array2<f64>>, Vec<Array2<f64>>)) {
    let (value, hs) = rnn_hand_forward(mm, h0, &ws[0], &ws[1], xs);
    (value, rnn_hand_backward(mm, hs, &ws[0], &ws[1], xs))
}

// ---- inputs and the agreement check ------------------------------------------------------

/// One shape of the benchmark.
#[derive(Clone, Copy)]
struct Shape {
    name: &'static str,
    batch: usize,
    hidden: usize,
    input: usize,
}

const SHAPES: [Shape; 2] = [
    Shape {
        name: "small",
        batch: 4,
        hidden: 8,
        input: 4,
    },
    Shape {
        name: "medium",
        batch: 16,
        hidden: 64,
        input: 32,
    },
];

struct Inputs {
    h0: Array2<f64>,
    /// `[W (hidden × hidden), U (input × hidden)]`.
    ws: Vec<Array2<f64>>,
    /// `STEPS` inputs, batch × input.
    xs: Vec<Array2<f64>>,
}

fn uniform(rng: &mut StdRng, shape: (usize, usize), bound: f64) -> Array2<f64> {
    Array2::from_shape_simple_fn(shape, || rng.gen_range(-bound..bound))
}

impl Inputs {
    fn new(shape: Shape) -> Self {
        let Shape {
            batch, hidden, input, ..
        } = shape;
        let mut rng = StdRng::seed_from_u64(50);
        // Weights scaled by 1/√fan_in keep the pre-activations of order one, so
        // tanh neither saturates nor vanishes over the 50 steps.
        Inputs {
            h0: uniform(&mut rng, (batch, hidden), 1.0),
            ws: vec![
                uniform(&mut rng, (hidden, hidden), 1.0 / (hidden as f64).sqrt()),
                uniform(&mut rng, (input, hidden), 1.0 / (input as f64).sqrt()),
            ],
            xs: (0..STEPS).map(|_| uniform(&mut rng, (batch, input), 1.0)).collect(),
        }
    }
}

/// Panics unless `other` agrees with `generated` to [`TOLERANCE`].
fn agree<D: Dimension>(what: &str, other: &Array<f64, D>, generated: &Array<f64, D>) {
    let error = max_relative_error(other, generated);
    assert!(
        error <= TOLERANCE,
        "{what}: gradient differs from the generated one, max relative error {error:e}"
    );
}

/// Every variant against the generated gradient, at `shape`.
fn check_agreement(shape: Shape) {
    let Inputs { h0, ws, xs } = &Inputs::new(shape);
    let (value, (dh0, dws, dxs)) = rnn_grad(h0, ws, xs);
    assert_eq!((dws.len(), dxs.len()), (2, STEPS), "one gradient per slice element");
    let hand = [("hand", ndarray_gemm as Gemm), ("hand_gemm", runtime_gemm as Gemm)];
    let others = hand
        .map(|(name, mm)| (name, rnn_hand_grad(mm, h0, ws, xs)))
        .into_iter()
        .chain([("tape", rnn_tape_grad(h0, ws, xs))]);
    for (name, (v, (o_h0, o_ws, o_xs))) in others {
        let what = |g: &str| format!("rnn {} {name} {g}", shape.name);
        agree(
            &what("value"),
            &autodiff::ndarray::arr0(v),
            &autodiff::ndarray::arr0(value),
        );
        agree(&what("dh0"), &o_h0, &dh0);
        agree(&what("dW"), &o_ws[0], &dws[0]);
        agree(&what("dU"), &o_ws[1], &dws[1]);
        for (t, (o, g)) in o_xs.iter().zip(&dxs).enumerate() {
            agree(&what(&format!("dx[{t}]")), o, g);
        }
    }
}

// ---- benches -------------------------------------------------------------------------

fn bench_shape(c: &mut Criterion, shape: Shape) {
    let Inputs { h0, ws, xs } = &Inputs::new(shape);
    let (w, u) = (&ws[0], &ws[1]);
    let mut g: BenchmarkGroup<'_, WallTime> = c.benchmark_group(format!("rnn_{}", shape.name));
    g.sampling_mode(SamplingMode::Flat).sample_size(20);
    g.bench_function("full/generated", |b| b.iter(|| rnn_grad(h0, ws, xs)));
    g.bench_function("full/hand", |b| b.iter(|| rnn_hand_grad(ndarray_gemm, h0, ws, xs)));
    g.bench_function("full/hand_gemm", |b| b.iter(|| rnn_hand_grad(runtime_gemm, h0, ws, xs)));
    g.bench_function("full/tape", |b| b.iter(|| rnn_tape_grad(h0, ws, xs)));
    g.bench_function("backward/generated", |b| {
        b.iter_batched(
            || rnn_forward(h0, ws, xs).1,
            |ctx| rnn_backward(ctx, 1.0),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("backward/hand", |b| {
        b.iter_batched(
            || rnn_hand_forward(ndarray_gemm, h0, w, u, xs).1,
            |hs| rnn_hand_backward(ndarray_gemm, hs, w, u, xs),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn rnn_benches(c: &mut Criterion) {
    if std::env::var_os("PRINT_GRAD_SOURCE").is_some() {
        println!("==== rnn_grad_source() ====\n{}", rnn_grad_source());
    }
    for shape in SHAPES {
        check_agreement(shape);
    }
    for shape in SHAPES {
        bench_shape(c, shape);
    }
}

/// Generated vs each hand-written variant (full and backward) and tape vs
/// generated, at every shape, alternating call by call.
fn paired_summary(_: &mut Criterion) {
    if std::env::var_os("SKIP_PAIRED").is_some() {
        return;
    }
    let budget = Duration::from_millis(3000);
    println!("\npaired medians (f64, {STEPS} steps), ratio = median over rounds of first/second");
    println!(
        "{:<18} {:<28} {:>13} {:>13}",
        "case", "first vs second", "first", "second"
    );
    for shape in SHAPES {
        let Inputs { h0, ws, xs } = &Inputs::new(shape);
        let (w, u) = (&ws[0], &ws[1]);
        let case = format!("rnn_{}", shape.name);
        let generated = || timed(|| rnn_grad(h0, ws, xs));
        let generated_backward = || timed_backward(|| rnn_forward(h0, ws, xs).1, |ctx| rnn_backward(ctx, 1.0));
        for (name, mm) in [("hand", ndarray_gemm as Gemm), ("hand_gemm", runtime_gemm as Gemm)] {
            report(
                &case,
                &format!("full gen vs {name}"),
                paired(generated(), timed(|| rnn_hand_grad(mm, h0, ws, xs)), budget),
            );
            report(
                &case,
                &format!("backward gen vs {name}"),
                paired(
                    generated_backward(),
                    timed_backward(
                        || rnn_hand_forward(mm, h0, w, u, xs).1,
                        |hs| rnn_hand_backward(mm, hs, w, u, xs),
                    ),
                    budget,
                ),
            );
            report(
                &case,
                &format!("forward gen vs {name}"),
                paired(
                    timed(|| rnn_forward(h0, ws, xs)),
                    timed(|| rnn_hand_forward(mm, h0, w, u, xs)),
                    budget,
                ),
            );
        }
        report(
            &case,
            "full tape vs gen",
            paired(timed(|| rnn_tape_grad(h0, ws, xs)), generated(), budget),
        );
    }
}

// ---- where the difference goes: the generated code transcribed, one fix at a time ----

/// Which of the generated code's per-step costs a transcription removes (all
/// `false`: the generated `rnn_forward` / `rnn_backward`, statement by statement,
/// with the same kernels; all `true`: `hand_gemm`).
#[derive(Clone, Copy, Default)]
struct Fixes {
    /// Forward: keep each state once (`hs`) instead of saving the iteration's
    /// input and output and cloning the output to carry it (`l3__next0 = h.clone()`).
    no_state_clone: bool,
    /// Forward: `z = h·W; z += x·U` in one buffer (GEMM with β = 1) and tanh in
    /// place, instead of two products, an `add` into a third array, and tanh into a fourth.
    fused_forward: bool,
    /// Backward: both products read `dz` by reference instead of `add_grad_lhs(dz.clone())`.
    no_add_clone: bool,
    /// Backward: `dW += hᵀ·dz` and `dU += xᵀ·dz` by GEMM with β = 1, instead of a
    /// fresh `matmul_grad_rhs` array per step then `accumulate`.
    gemm_accumulate: bool,
    /// Backward: `dx_t` is the fresh `matmul_grad_lhs` array itself, instead of
    /// accumulated into a `dxs` zero-filled up front.
    direct_dx: bool,
}

impl Fixes {
    const ALL: Fixes = Fixes {
        no_state_clone: true,
        fused_forward: true,
        no_add_clone: true,
        gemm_accumulate: true,
        direct_dx: true,
    };

    /// The fixes of `self` and of `other`.
    fn with(self, other: Fixes) -> Fixes {
        Fixes {
            no_state_clone: self.no_state_clone || other.no_state_clone,
            fused_forward: self.fused_forward || other.fused_forward,
            no_add_clone: self.no_add_clone || other.no_add_clone,
            gemm_accumulate: self.gemm_accumulate || other.gemm_accumulate,
            direct_dx: self.direct_dx || other.direct_dx,
        }
    }

    /// Each fix alone, named.
    fn each() -> [(&'static str, Fixes); 5] {
        let none = Fixes::default();
        [
            (
                "fwd: no h clone",
                Fixes {
                    no_state_clone: true,
                    ..none
                },
            ),
            (
                "fwd: fused h·W+x·U",
                Fixes {
                    fused_forward: true,
                    ..none
                },
            ),
            (
                "bwd: no add_grad clone",
                Fixes {
                    no_add_clone: true,
                    ..none
                },
            ),
            (
                "bwd: GEMM-acc dW,dU",
                Fixes {
                    gemm_accumulate: true,
                    ..none
                },
            ),
            (
                "bwd: direct dx_t",
                Fixes {
                    direct_dx: true,
                    ..none
                },
            ),
        ]
    }
}

/// The states a transcription keeps: per step (input, output), or each state once.
enum States {
    Pairs(Vec<(Array2<f64>, Array2<f64>)>),
    Chain(Vec<Array2<f64>>),
}

impl States {
    /// Step `t`'s input and output states.
    fn step(&self, t: usize) -> (&Array2<f64>, &Array2<f64>) {
        match self {
            States::Pairs(pairs) => (&pairs[t].0, &pairs[t].1),
            States::Chain(hs) => (&hs[t], &hs[t + 1]),
        }
    }
}

fn transcribed_forward(
    f: Fixes,
    h0: &Array2<f64>,
    w: &Array2<f64>,
    u: &Array2<f64>,
    xs: &[Array2<f64>],
) -> (f64, States) {
    let step = |h: &Array2<f64>, x: &Array2<f64>| {
        if f.fused_forward {
            let mut z = Array2::zeros((h.nrows(), w.ncols()));
            gemm(1.0, h.view(), w.view(), 0.0, z.view_mut());
            gemm(1.0, x.view(), u.view(), 1.0, z.view_mut());
            z.mapv_inplace(f64::tanh);
            z
        } else {
            let a = matmul::matmul(h, w);
            let b = matmul::matmul(x, u);
            let z = binary::add(&a, &b);
            drop((a, b));
            unary::tanh(&z)
        }
    };
    if f.no_state_clone {
        let mut hs = Vec::with_capacity(xs.len() + 1);
        hs.push(h0.to_owned());
        for x in xs {
            let next = step(&hs[hs.len() - 1], x);
            hs.push(next);
        }
        (hs[hs.len() - 1].sum(), States::Chain(hs))
    } else {
        let mut h = h0.to_owned();
        let mut pairs = Vec::with_capacity(xs.len());
        for x in xs {
            let out = step(&h, x);
            let next = out.clone();
            pairs.push((h, out));
            h = next;
        }
        (h.sum(), States::Pairs(pairs))
    }
}

fn transcribed_backward(
    f: Fixes,
    states: States,
    w: &Array2<f64>,
    u: &Array2<f64>,
    xs: &[Array2<f64>],
) -> (Array2<f64>, Vec<Array2<f64>>, Vec<Array2<f64>>) {
    let mut dw = Array2::zeros(w.raw_dim());
    let mut du = Array2::zeros(u.raw_dim());
    let mut dxs: Vec<Array2<f64>> = if f.direct_dx {
        Vec::with_capacity(xs.len())
    } else {
        xs.iter().map(|x| Array2::zeros(x.raw_dim())).collect()
    };
    let mut dh = reduce::sum_grad(1.0, &states.step(xs.len() - 1).1.raw_dim());
    for t in (0..xs.len()).rev() {
        let (h_in, h_out) = states.step(t);
        let dz = unary::tanh_grad(dh, h_out);
        let dz_copy = (!f.no_add_clone).then(|| binary::add_grad_lhs(dz.clone(), &dz.raw_dim()));
        let dz_w = dz_copy.as_ref().unwrap_or(&dz);
        let dx = matmul::matmul_grad_lhs(&dz, u);
        if f.gemm_accumulate {
            gemm(1.0, xs[t].t(), dz.view(), 1.0, du.view_mut());
        } else {
            binary::accumulate(&mut du, matmul::matmul_grad_rhs(&xs[t], &dz));
        }
        dh = matmul::matmul_grad_lhs(dz_w, w);
        if f.gemm_accumulate {
            gemm(1.0, h_in.t(), dz_w.view(), 1.0, dw.view_mut());
        } else {
            binary::accumulate(&mut dw, matmul::matmul_grad_rhs(h_in, dz_w));
        }
        if f.direct_dx {
            dxs.push(dx);
        } else {
            binary::accumulate(&mut dxs[t], dx);
        }
    }
    if f.direct_dx {
        dxs.reverse();
    }
    (dh, vec![dw, du], dxs)
}

#[allow(clippy::type_complexity)]
fn transcribed_grad(
    f: Fixes,
    h0: &Array2<f64>,
    ws: &[Array2<f64>],
    xs: &[Array2<f64>],
) -> (f64, (Array2<f64>, Vec<Array2<f64>>, Vec<Array2<f64>>)) {
    let (value, states) = transcribed_forward(f, h0, &ws[0], &ws[1], xs);
    (value, transcribed_backward(f, states, &ws[0], &ws[1], xs))
}

/// With `RNN_ABLATION=1`: the generated code transcribed (checked to agree), then
/// paired ratios, full gradient: transcription / transcription with one fix (what
/// that generated step costs, as a fraction of the whole), the fixes added one by
/// one, and all fixes against `hand_gemm` (nothing else is left).
fn ablation(_: &mut Criterion) {
    if std::env::var_os("RNN_ABLATION").is_none() {
        return;
    }
    let budget = Duration::from_millis(3000);
    println!("\nablation (f64, {STEPS} steps): full gradient, paired medians");
    for shape in SHAPES {
        let Inputs { h0, ws, xs } = &Inputs::new(shape);
        let case = format!("rnn_{}", shape.name);
        let (value, (dh0, dws, dxs)) = rnn_grad(h0, ws, xs);
        for f in Fixes::each()
            .map(|(_, f)| f)
            .into_iter()
            .chain([Fixes::default(), Fixes::ALL])
        {
            let (v, (o_h0, o_ws, o_xs)) = transcribed_grad(f, h0, ws, xs);
            agree(
                "transcribed value",
                &autodiff::ndarray::arr0(v),
                &autodiff::ndarray::arr0(value),
            );
            agree("transcribed dh0", &o_h0, &dh0);
            for (o, g) in o_ws.iter().chain(&o_xs).zip(dws.iter().chain(&dxs)) {
                agree("transcribed dW, dU, dx", o, g);
            }
        }
        let transcription = || timed(|| transcribed_grad(Fixes::default(), h0, ws, xs));
        report(
            &case,
            "gen vs transcription",
            paired(timed(|| rnn_grad(h0, ws, xs)), transcription(), budget),
        );
        // Each fix alone (order-free), then the fixes added one by one (the ratios
        // multiply to transcription / all fixes).
        for (name, f) in Fixes::each() {
            report(
                &case,
                &format!("only {name}"),
                paired(transcription(), timed(|| transcribed_grad(f, h0, ws, xs)), budget),
            );
        }
        let mut before = Fixes::default();
        for (name, f) in Fixes::each() {
            let after = before.with(f);
            report(
                &case,
                &format!("+ {name}"),
                paired(
                    timed(|| transcribed_grad(before, h0, ws, xs)),
                    timed(|| transcribed_grad(after, h0, ws, xs)),
                    budget,
                ),
            );
            before = after;
        }
        report(
            &case,
            "transcription vs all fixes",
            paired(
                transcription(),
                timed(|| transcribed_grad(Fixes::ALL, h0, ws, xs)),
                budget,
            ),
        );
        report(
            &case,
            "all fixes vs hand_gemm",
            paired(
                timed(|| transcribed_grad(Fixes::ALL, h0, ws, xs)),
                timed(|| rnn_hand_grad(runtime_gemm, h0, ws, xs)),
                budget,
            ),
        );
    }
}

criterion_group!(benches, rnn_benches, paired_summary, ablation);
criterion_main!(benches);
