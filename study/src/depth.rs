//! Graph depth: backward time and held bytes per node as graphs grow deep, in
//! both modes, for a chain of `tanh` on a 16-element vector (depth 1 to 10000)
//! and an MLP of growing layer count (width 32, batch 16).
//!
//! The chain comes in two forms. *Straight*: one function per depth, generated
//! by `build.rs` as an ordinary `#[differentiate]` function of `depth`
//! statements and included here, so the static mode's deep graphs come from the
//! macro exactly like the four cases; its compile time grows with the depth, so
//! `STUDY_MAX_DEPTH` caps it. *Loop*: [`chain_loop`], one `for` loop whose
//! iteration count is a run-time argument; it compiles once, so it always runs
//! up to 10000. Measured in `f32`.

use autodiff::ndarray::{Array1, Array2};
use autodiff::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::measure::{interleaved, Budget, Memory, Sampler, Stats};
use crate::runs::Mode;

/// One mode of one generated deep function.
pub struct DepthRun<'a> {
    /// `Mode::Static` or `Mode::Tape`.
    pub mode: Mode,
    /// Times backward alone on a freshly prepared context or graph.
    pub backward: Sampler<'a>,
    /// Runs forward+backward once under the counting allocator.
    pub memory: Box<dyn FnMut() -> Memory + 'a>,
}

/// Both modes of a generated function, with the same closures as the four cases
/// (`wiring.rs`).
macro_rules! depth_run {
    ($F:ty; $forward:ident, $backward:ident, $on_tape:ident; ($($arg:ident : $kind:ident),*)) => {
        [
            DepthRun {
                mode: Mode::Static,
                backward: static_backward!($F; $forward, $backward; ($($arg),*)),
                memory: static_memory!($F; $forward, $backward; ($($arg),*)),
            },
            DepthRun {
                mode: Mode::Tape,
                backward: tape_backward!($F; $on_tape; ($($arg : $kind),*)),
                memory: tape_memory!($F; $on_tape; ($($arg : $kind),*)),
            },
        ]
    };
}

/// The functions `build.rs` generated. The macro emits more than the study
/// calls (plans, `_tape_grad`, the plain functions), hence the `allow`.
#[allow(dead_code, clippy::too_many_arguments)]
mod generated {
    use super::*;
    include!(concat!(env!("OUT_DIR"), "/depth_cases.rs"));
}
use generated::*;

/// The `tanh` chain written as a loop: the same ops as the straight chain of
/// `depth` (`depth` tanh, then a sum), but one loop body whose forward pushes
/// each iteration's saved values on a `Vec` and whose backward pops them.
#[differentiate]
pub fn chain_loop<F: Float>(x: &Array1<F>, depth: usize) -> F {
    let mut h = x.to_owned();
    for _ in 0..depth {
        h = tanh(&h);
    }
    h.sum()
}

/// Depths of the loop chain: the straight chain's, never capped (the loop costs
/// no compile time per depth).
pub const LOOP_DEPTHS: [usize; 5] = [1, 10, 100, 1000, 10000];

/// The length of the chain's vector.
const CHAIN_WIDTH: usize = 16;
/// The MLP's width and batch.
const MLP_WIDTH: usize = 32;
const MLP_BATCH: usize = 16;

/// One row of the depth experiment, as stored in the JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DepthResult {
    /// `"static"` or `"tape"`.
    pub mode: String,
    /// `"tanh_chain"` (straight-line, from `build.rs`), `"tanh_chain_loop"`
    /// ([`chain_loop`]) or `"mlp"`.
    pub kind: String,
    /// Chain length, or MLP layer count.
    pub depth: usize,
    /// Ops in the graph (chain: `depth` tanh + 1 sum; MLP: 3 per layer + 1 sum).
    pub nodes: usize,
    /// Backward alone.
    pub backward_us: Stats,
    /// Median backward time divided by `nodes`, in nanoseconds.
    pub backward_ns_per_node: f64,
    /// Bytes live between forward and backward (counting allocator).
    pub held_bytes: usize,
    /// `held_bytes / nodes`.
    pub held_bytes_per_node: f64,
    /// Peak bytes over forward+backward.
    pub peak_bytes: usize,
}

fn rows(kind: &str, depth: usize, nodes: usize, runs: [DepthRun<'_>; 2], budget: Budget) -> Vec<DepthResult> {
    let [mut a, mut b] = runs;
    let memories = [(a.memory)(), (b.memory)()];
    let stats = {
        let mut samplers: Vec<Sampler<'_>> = vec![Box::new(&mut a.backward), Box::new(&mut b.backward)];
        interleaved(&mut samplers, budget, || {})
    };
    [(a.mode, stats[0], memories[0]), (b.mode, stats[1], memories[1])]
        .into_iter()
        .map(|(mode, backward_us, memory)| DepthResult {
            mode: mode.name().to_string(),
            kind: kind.to_string(),
            depth,
            nodes,
            backward_us,
            backward_ns_per_node: backward_us.median * 1e3 / nodes as f64,
            held_bytes: memory.held_bytes,
            held_bytes_per_node: memory.held_bytes as f64 / nodes as f64,
            peak_bytes: memory.peak_bytes,
        })
        .collect()
}

/// Both modes of the loop chain of `depth` iterations on `x`.
fn chain_loop_runs<F: Float>(depth: usize, x: &Array1<F>) -> [DepthRun<'_>; 2] {
    depth_run!(F; chain_loop_forward, chain_loop_backward, chain_loop_on_tape; (x: param, depth: plain))
}

/// How far each part of the depth experiment goes.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Deepest straight-line chain (also capped by what `build.rs` compiled in).
    pub max_depth: usize,
    /// Deepest loop chain.
    pub max_loop_depth: usize,
    /// Most MLP layers.
    pub max_layers: usize,
}

/// How many depths [`run`] measures within `limits` (for the progress bar).
pub fn units(limits: Limits) -> usize {
    CHAIN_DEPTHS.iter().filter(|&&d| d <= limits.max_depth).count()
        + LOOP_DEPTHS.iter().filter(|&&d| d <= limits.max_loop_depth).count()
        + MLP_LAYERS.iter().filter(|&&l| l <= limits.max_layers).count()
}

/// Runs the depth experiment within `limits`, calling `tick` after each depth.
pub fn run(budget: Budget, limits: Limits, mut tick: impl FnMut(&str)) -> Vec<DepthResult> {
    let mut rng = StdRng::seed_from_u64(0xDE9);
    let mut results = Vec::new();
    let x: Array1<f32> = Array1::from_shape_simple_fn(CHAIN_WIDTH, || rng.gen_range(-1.0..1.0));
    for &depth in CHAIN_DEPTHS.iter().filter(|&&d| d <= limits.max_depth) {
        tick(&format!("depth: tanh chain {depth}"));
        results.extend(rows("tanh_chain", depth, depth + 1, chain_runs(depth, &x), budget));
    }
    // Same input, same op count (`depth` tanh + 1 sum) as the straight chain.
    for &depth in LOOP_DEPTHS.iter().filter(|&&d| d <= limits.max_loop_depth) {
        tick(&format!("depth: tanh chain loop {depth}"));
        results.extend(rows(
            "tanh_chain_loop",
            depth,
            depth + 1,
            chain_loop_runs(depth, &x),
            budget,
        ));
    }
    let scale = 1.0 / (MLP_WIDTH as f32).sqrt();
    let input: Array2<f32> = Array2::from_shape_simple_fn((MLP_BATCH, MLP_WIDTH), || rng.gen_range(-1.0..1.0));
    let params: Vec<(Array2<f32>, Array1<f32>)> = (0..*MLP_LAYERS.last().unwrap_or(&1))
        .map(|_| {
            (
                Array2::from_shape_simple_fn((MLP_WIDTH, MLP_WIDTH), || rng.gen_range(-scale..scale)),
                Array1::from_shape_simple_fn(MLP_WIDTH, || rng.gen_range(-0.1..0.1)),
            )
        })
        .collect();
    for &layers in MLP_LAYERS.iter().filter(|&&l| l <= limits.max_layers) {
        tick(&format!("depth: mlp {layers} layers"));
        results.extend(rows(
            "mlp",
            layers,
            3 * layers + 1,
            mlp_runs(layers, &input, &params),
            budget,
        ));
    }
    results
}

/// The deepest chain compiled into this build.
pub fn deepest_chain() -> usize {
    CHAIN_DEPTHS.last().copied().unwrap_or(0)
}

/// The generated `tanh` chains are also the stability experiment's "deep tanh
/// chain": value and static gradient in `f64` and `f32`, if `depth` is compiled in.
pub fn tanh_chain_gradients(depth: usize, x: &Array1<f64>) -> Option<(f64, Array1<f64>, f32, Array1<f32>)> {
    let (v64, g64) = chain_grad(depth, x)?;
    let (v32, g32) = chain_grad(depth, &x.mapv(|v| v as f32))?;
    Some((v64, g64, v32, g32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use autodiff::runtime::gradcheck::max_relative_error;

    /// The loop chain computes what the straight chain of the same depth computes,
    /// in both modes, so the two rows of the table compare equal work.
    #[test]
    fn loop_chain_matches_straight_chain() {
        let x: Array1<f64> = Array1::from_vec(vec![-2.0, -0.5, 0.1, 0.5, 2.0]);
        for &depth in CHAIN_DEPTHS {
            let (value, grad) = chain_grad(depth, &x).expect("compiled in");
            let (loop_value, (loop_grad,)) = chain_loop_grad(&x, depth);
            let (tape_value, (tape_grad,)) = chain_loop_tape_grad(&x, depth);
            assert_eq!(loop_value, value, "depth {depth}");
            assert!(max_relative_error(&loop_grad, &grad) < 1e-12, "depth {depth}");
            assert!((tape_value - value).abs() < 1e-12, "depth {depth}");
            assert!(max_relative_error(&tape_grad, &grad) < 1e-12, "depth {depth}");
        }
    }
}
