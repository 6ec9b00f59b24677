//! The three modes of every case (static, tape, floor) behind one interface:
//! samplers for forward, backward and forward+backward, a memory probe, and the
//! gradients as `f64` arrays for the correctness checks.
//!
//! The wiring is identical for every case, so it is written once per mode as
//! a `macro_rules!`, then instantiated with each case's generated names:
//! - static: `p_forward` (untimed setup) then `p_backward(ctx, 1)` timed;
//! - tape: leaves (`param` or `constant` per wrt mode) and `p_on_tape` recorded
//!   untimed, then `tape.backward(&y)` timed on that freshly recorded graph;
//! - floor: `floor::*_forward` untimed, then `floor::*_backward` timed.
//!
//! Results are dropped after the clock stopped in every mode.

use autodiff::ndarray::{Array, ArrayD, Dimension, Ix1, Ix2, Ix4};
use autodiff::runtime::kernels::packed::Half;
use autodiff::runtime::tape::{Gradients, Tape, Var};
use autodiff::Float;

use crate::cases::*;
use crate::floor;
use crate::measure::{time, Memory, MemoryProbe, Sampler};

/// The modes, as named in the JSON and the tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The code `#[differentiate]` generated.
    Static,
    /// The runtime's dynamic tape.
    Tape,
    /// The hand-written kernel sequence (see `floor.rs`).
    Floor,
}

impl Mode {
    /// `"static"`, `"tape"` or `"floor"`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Static => "static",
            Mode::Tape => "tape",
            Mode::Floor => "floor",
        }
    }
}

/// One mode of one case, ready to sample.
pub struct ModeRun<'a> {
    /// Times the forward pass alone (for the tape: recording it).
    pub forward: Sampler<'a>,
    /// Times the backward pass alone, on a freshly prepared context or graph.
    pub backward: Sampler<'a>,
    /// Times forward and backward together.
    pub forward_backward: Sampler<'a>,
    /// Runs forward+backward once under the counting allocator.
    pub memory: Box<dyn FnMut() -> Memory + 'a>,
    /// Runs forward+backward once and returns the loss and the gradients, in
    /// `Inputs::wrt_names` order, converted to `f64`.
    pub gradients: Box<dyn FnMut() -> (f64, Vec<ArrayD<f64>>) + 'a>,
}

/// A gradient as one `f64` array: an array's, or a slice's [`stack`]ed.
trait GradientF64 {
    fn into_f64(self) -> ArrayD<f64>;
}

impl<F: Float, D: Dimension> GradientF64 for Array<F, D> {
    fn into_f64(self) -> ArrayD<f64> {
        self.mapv(|v| v.to_f64().unwrap_or(f64::NAN)).into_dyn()
    }
}

impl<F: Float, D: Dimension> GradientF64 for Vec<Array<F, D>> {
    fn into_f64(self) -> ArrayD<f64> {
        stack(&self).into_f64()
    }
}

impl<F: Float> GradientF64 for floor::Gradient<F> {
    fn into_f64(self) -> ArrayD<f64> {
        match self {
            floor::Gradient::Array(g) => g.into_f64(),
            floor::Gradient::Slice(g) => g.into_f64(),
        }
    }
}

fn to_f64(gradient: impl GradientF64) -> ArrayD<f64> {
    gradient.into_f64()
}

/// A tape leaf (`Var`) or a slice's leaves (`Vec<Var>`), whose gradient is taken
/// from the tape's [`Gradients`] as `D`-dimensional arrays.
trait Leaf<F: Float> {
    fn gradient_f64<D: Dimension>(&self, grads: &mut Gradients<F>) -> ArrayD<f64>;
}

impl<F: Float> Leaf<F> for Var<'_, '_, F> {
    fn gradient_f64<D: Dimension>(&self, grads: &mut Gradients<F>) -> ArrayD<f64> {
        to_f64(grads.take_as::<D>(self))
    }
}

impl<F: Float> Leaf<F> for Vec<Var<'_, '_, F>> {
    fn gradient_f64<D: Dimension>(&self, grads: &mut Gradients<F>) -> ArrayD<f64> {
        to_f64(self.iter().map(|leaf| grads.take_as::<D>(leaf)).collect::<Vec<_>>())
    }
}

fn scalar_f64<F: Float>(v: F) -> f64 {
    v.to_f64().unwrap_or(f64::NAN)
}

/// The static mode from a `#[differentiate]` expansion's generated functions.
macro_rules! static_mode {
    ($F:ty; $grad:path, $forward:path, $backward:path; ($($arg:ident),*); ($($g:ident),*)) => {
        ModeRun {
            forward: Box::new(move || {
                let (out, elapsed) = time(|| $forward($($arg),*));
                std::hint::black_box(out);
                elapsed
            }),
            backward: static_backward!($F; $forward, $backward; ($($arg),*)),
            forward_backward: Box::new(move || {
                let (out, elapsed) = time(|| $grad($($arg),*));
                std::hint::black_box(out);
                elapsed
            }),
            memory: static_memory!($F; $forward, $backward; ($($arg),*)),
            gradients: Box::new(move || {
                let (value, ($($g,)*)) = $grad($($arg),*);
                (scalar_f64(value), vec![$(to_f64($g)),*])
            }),
        }
    };
}

/// The tape mode from a `#[differentiate]` expansion's `p_on_tape`.
/// `$kind` is `param` or `constant` for each argument (`params` or `constants`
/// for a slice, see `wiring.rs`); `$dim` is a gradient's (or a slice element's) dimension.
/// After `$F,` the tape's residual precision (`Option<Half>`: `Tape::with_residuals`).
macro_rules! tape_mode {
    ($F:ty; $on_tape:path; $args:tt; $grads:tt) => {
        tape_mode!($F, None; $on_tape; $args; $grads)
    };
    ($F:ty, $residuals:expr; $on_tape:path; ($($arg:ident : $kind:ident),*); ($($g:ident : $dim:ty),*)) => {
        ModeRun {
            forward: Box::new(move || {
                let tape = new_tape::<$F>($residuals);
                let (out, elapsed) = time(|| {
                    $(let $arg = tape_leaf!(tape, $kind, $arg);)*
                    $on_tape($(tape_arg!($kind, $arg)),*)
                });
                std::hint::black_box(out);
                elapsed
            }),
            backward: tape_backward!($F, new_tape::<$F>($residuals); $on_tape; ($($arg : $kind),*)),
            forward_backward: Box::new(move || {
                let tape = new_tape::<$F>($residuals);
                let (grads, elapsed) = time(|| {
                    $(let $arg = tape_leaf!(tape, $kind, $arg);)*
                    let y = $on_tape($(tape_arg!($kind, $arg)),*);
                    tape.backward(&y)
                });
                std::hint::black_box(grads);
                elapsed
            }),
            memory: tape_memory!($F, new_tape::<$F>($residuals); $on_tape; ($($arg : $kind),*)),
            gradients: Box::new(move || {
                let tape = new_tape::<$F>($residuals);
                $(let $arg = tape_leaf!(tape, $kind, $arg);)*
                let y = $on_tape($(tape_arg!($kind, $arg)),*);
                let value = y.scalar();
                let mut grads = tape.backward(&y);
                (scalar_f64(value), vec![$($g.gradient_f64::<$dim>(&mut grads)),*])
            }),
        }
    };
}

/// A tape keeping its saved computed arrays as computed (`None`) or in 16 bits.
fn new_tape<'a, F: Float>(residuals: Option<Half>) -> Tape<'a, F> {
    residuals.map_or_else(Tape::new, Tape::with_residuals)
}

/// The floor from `floor.rs`'s hand-written forward and backward.
macro_rules! floor_mode {
    ($F:ty; $forward:path, $backward:expr; ($($arg:ident),*)) => {
        ModeRun {
            forward: Box::new(move || {
                let (out, elapsed) = time(|| $forward($($arg),*));
                std::hint::black_box(out);
                elapsed
            }),
            backward: Box::new(move || {
                let (_, saved) = $forward($($arg),*);
                let (grads, elapsed) = time(move || $backward(saved));
                std::hint::black_box(grads);
                elapsed
            }),
            forward_backward: Box::new(move || {
                let (grads, elapsed) = time(|| {
                    let (_, saved) = $forward($($arg),*);
                    $backward(saved)
                });
                std::hint::black_box(grads);
                elapsed
            }),
            memory: Box::new(move || {
                let mut probe = MemoryProbe::start();
                let (value, saved) = $forward($($arg),*);
                probe.after_forward();
                let reported = saved.held_bytes();
                let grads = $backward(saved);
                let memory = probe.finish(reported);
                std::hint::black_box((value, grads));
                memory
            }),
            gradients: Box::new(move || {
                let (value, saved) = $forward($($arg),*);
                (scalar_f64(value), $backward(saved).into_iter().map(to_f64).collect())
            }),
        }
    };
}

/// The three modes of one case and wrt mode, in [`Mode::ALL`] order.
pub fn modes<F: Float>(inputs: &Inputs<F>, wrt: Wrt) -> Vec<(Mode, ModeRun<'_>)> {
    let one = F::one();
    let (static_run, floor_run) = match (inputs, wrt) {
        (Inputs::SimpleQuadratic { x }, Wrt::All) => (
            static_mode!(F; simple_quadratic_grad, simple_quadratic_forward, simple_quadratic_backward; (x); (dx)),
            floor_mode!(F; floor::simple_quadratic_forward, |s| floor::simple_quadratic_backward(s, one); (x)),
        ),
        (Inputs::SimpleQuadratic { x }, Wrt::Params) => (
            static_mode!(F; simple_quadratic_params_grad, simple_quadratic_params_forward, simple_quadratic_params_backward; (x); (dx)),
            floor_mode!(F; floor::simple_quadratic_forward, |s| floor::simple_quadratic_backward(s, one); (x)),
        ),
        (Inputs::SmallMlp { x, w1, b1, w2, b2 }, Wrt::All) => (
            static_mode!(F; small_mlp_grad, small_mlp_forward, small_mlp_backward; (x, w1, b1, w2, b2); (dx, dw1, db1, dw2, db2)),
            floor_mode!(F; floor::small_mlp_forward, |s| floor::small_mlp_backward(s, one, Wrt::All); (x, w1, b1, w2, b2)),
        ),
        (Inputs::SmallMlp { x, w1, b1, w2, b2 }, Wrt::Params) => (
            static_mode!(F; small_mlp_params_grad, small_mlp_params_forward, small_mlp_params_backward; (x, w1, b1, w2, b2); (dw1, db1, dw2, db2)),
            floor_mode!(F; floor::small_mlp_forward, |s| floor::small_mlp_backward(s, one, Wrt::Params); (x, w1, b1, w2, b2)),
        ),
        (Inputs::MatmulChain { a, b, c, d }, Wrt::All) => (
            static_mode!(F; matmul_chain_grad, matmul_chain_forward, matmul_chain_backward; (a, b, c, d); (da, db, dc, dd)),
            floor_mode!(F; floor::matmul_chain_forward, |s| floor::matmul_chain_backward(s, one, Wrt::All); (a, b, c, d)),
        ),
        (Inputs::MatmulChain { a, b, c, d }, Wrt::Params) => (
            static_mode!(F; matmul_chain_params_grad, matmul_chain_params_forward, matmul_chain_params_backward; (a, b, c, d); (db, dc, dd)),
            floor_mode!(F; floor::matmul_chain_forward, |s| floor::matmul_chain_backward(s, one, Wrt::Params); (a, b, c, d)),
        ),
        (
            Inputs::Conv2d {
                x,
                w,
                bias,
                gamma,
                beta,
            },
            Wrt::All,
        ) => (
            static_mode!(F; conv2d_block_grad, conv2d_block_forward, conv2d_block_backward; (x, w, bias, gamma, beta);
                (dx, dw, dbias, dgamma, dbeta)),
            floor_mode!(F; floor::conv2d_block_forward, |s| floor::conv2d_block_backward(s, one, Wrt::All); (x, w, bias, gamma, beta)),
        ),
        (
            Inputs::Conv2d {
                x,
                w,
                bias,
                gamma,
                beta,
            },
            Wrt::Params,
        ) => (
            static_mode!(F; conv2d_block_params_grad, conv2d_block_params_forward, conv2d_block_params_backward;
                (x, w, bias, gamma, beta); (dw, dbias, dgamma, dbeta)),
            floor_mode!(F; floor::conv2d_block_forward, |s| floor::conv2d_block_backward(s, one, Wrt::Params); (x, w, bias, gamma, beta)),
        ),
        (
            Inputs::Attention {
                xs,
                wq,
                wk,
                wv,
                wo,
                targets,
            },
            Wrt::All,
        ) => (
            static_mode!(F; attention_grad, attention_forward, attention_backward; (xs, wq, wk, wv, wo, targets);
                (dxs, dwq, dwk, dwv, dwo)),
            floor_mode!(F; floor::attention_forward, |s| floor::attention_backward(s, one, Wrt::All); (xs, wq, wk, wv, wo, targets)),
        ),
        (
            Inputs::Attention {
                xs,
                wq,
                wk,
                wv,
                wo,
                targets,
            },
            Wrt::Params,
        ) => (
            static_mode!(F; attention_params_grad, attention_params_forward, attention_params_backward;
                (xs, wq, wk, wv, wo, targets); (dwq, dwk, dwv, dwo)),
            floor_mode!(F; floor::attention_forward, |s| floor::attention_backward(s, one, Wrt::Params); (xs, wq, wk, wv, wo, targets)),
        ),
        (Inputs::Rnn { h0, w, u, xs, target }, Wrt::All) => (
            static_mode!(F; rnn_grad, rnn_forward, rnn_backward; (h0, w, u, xs, target); (dh0, dw, du, dxs)),
            floor_mode!(F; floor::rnn_forward, |s| floor::rnn_backward(s, one, Wrt::All); (h0, w, u, xs, target)),
        ),
        (Inputs::Rnn { h0, w, u, xs, target }, Wrt::Params) => (
            static_mode!(F; rnn_params_grad, rnn_params_forward, rnn_params_backward; (h0, w, u, xs, target); (dw, du)),
            floor_mode!(F; floor::rnn_forward, |s| floor::rnn_backward(s, one, Wrt::Params); (h0, w, u, xs, target)),
        ),
    };
    vec![
        (Mode::Static, static_run),
        (Mode::Tape, tape_mode_of(inputs, wrt, None)),
        (Mode::Floor, floor_run),
    ]
}

/// The tape mode of one case and wrt mode, keeping its saved computed arrays as computed
/// (`residuals` `None`) or in 16 bits (`Tape::with_residuals`).
pub fn tape_mode_of<F: Float>(inputs: &Inputs<F>, wrt: Wrt, residuals: Option<Half>) -> ModeRun<'_> {
    match (inputs, wrt) {
        (Inputs::SimpleQuadratic { x }, Wrt::All) => {
            tape_mode!(F, residuals; simple_quadratic_on_tape; (x: param); (x: Ix1))
        }
        (Inputs::SimpleQuadratic { x }, Wrt::Params) => {
            tape_mode!(F, residuals; simple_quadratic_params_on_tape; (x: param); (x: Ix1))
        }
        (Inputs::SmallMlp { x, w1, b1, w2, b2 }, Wrt::All) => {
            tape_mode!(F, residuals; small_mlp_on_tape; (x: param, w1: param, b1: param, w2: param, b2: param);
                (x: Ix2, w1: Ix2, b1: Ix1, w2: Ix2, b2: Ix1))
        }
        (Inputs::SmallMlp { x, w1, b1, w2, b2 }, Wrt::Params) => {
            tape_mode!(F, residuals; small_mlp_params_on_tape; (x: constant, w1: param, b1: param, w2: param, b2: param);
                (w1: Ix2, b1: Ix1, w2: Ix2, b2: Ix1))
        }
        (Inputs::MatmulChain { a, b, c, d }, Wrt::All) => {
            tape_mode!(F, residuals; matmul_chain_on_tape; (a: param, b: param, c: param, d: param); (a: Ix2, b: Ix2, c: Ix2, d: Ix2))
        }
        (Inputs::MatmulChain { a, b, c, d }, Wrt::Params) => {
            tape_mode!(F, residuals; matmul_chain_params_on_tape; (a: constant, b: param, c: param, d: param); (b: Ix2, c: Ix2, d: Ix2))
        }
        (
            Inputs::Conv2d {
                x,
                w,
                bias,
                gamma,
                beta,
            },
            Wrt::All,
        ) => {
            tape_mode!(F, residuals; conv2d_block_on_tape; (x: param, w: param, bias: param, gamma: param, beta: param);
                (x: Ix4, w: Ix4, bias: Ix1, gamma: Ix1, beta: Ix1))
        }
        (
            Inputs::Conv2d {
                x,
                w,
                bias,
                gamma,
                beta,
            },
            Wrt::Params,
        ) => {
            tape_mode!(F, residuals; conv2d_block_params_on_tape; (x: constant, w: param, bias: param, gamma: param, beta: param);
                (w: Ix4, bias: Ix1, gamma: Ix1, beta: Ix1))
        }
        (
            Inputs::Attention {
                xs,
                wq,
                wk,
                wv,
                wo,
                targets,
            },
            Wrt::All,
        ) => {
            tape_mode!(F, residuals; attention_on_tape; (xs: params, wq: param, wk: param, wv: param, wo: param, targets: constants);
                (xs: Ix2, wq: Ix2, wk: Ix2, wv: Ix2, wo: Ix2))
        }
        (
            Inputs::Attention {
                xs,
                wq,
                wk,
                wv,
                wo,
                targets,
            },
            Wrt::Params,
        ) => tape_mode!(F, residuals; attention_params_on_tape;
                (xs: constants, wq: param, wk: param, wv: param, wo: param, targets: constants);
                (wq: Ix2, wk: Ix2, wv: Ix2, wo: Ix2)),
        (Inputs::Rnn { h0, w, u, xs, target }, Wrt::All) => {
            tape_mode!(F, residuals; rnn_on_tape; (h0: param, w: param, u: param, xs: params, target: constant);
                (h0: Ix2, w: Ix2, u: Ix2, xs: Ix2))
        }
        (Inputs::Rnn { h0, w, u, xs, target }, Wrt::Params) => {
            tape_mode!(F, residuals; rnn_params_on_tape; (h0: constant, w: param, u: param, xs: constants, target: constant);
                (w: Ix2, u: Ix2))
        }
    }
}

/// The samplers of one phase for every mode, in mode order (for
/// [`crate::measure::interleaved`]).
pub fn phase_samplers<'r, 'a>(runs: &'r mut [(Mode, ModeRun<'a>)], phase: Phase) -> Vec<Sampler<'r>> {
    runs.iter_mut()
        .map(|(_, run)| {
            let sampler: &'r mut Sampler<'a> = match phase {
                Phase::Forward => &mut run.forward,
                Phase::Backward => &mut run.backward,
                Phase::ForwardBackward => &mut run.forward_backward,
            };
            Box::new(sampler) as Sampler<'r>
        })
        .collect()
}

/// Which part of a run is timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Forward alone.
    Forward,
    /// Backward alone.
    Backward,
    /// Forward and backward.
    ForwardBackward,
}

/// Static modes of several expansions of one function, taking the same arguments and
/// returning the same gradients: `variants!(F; (args); (gradients); grad, forward, backward; ...)`.
macro_rules! variants {
    ($F:ty; $args:tt; $grads:tt; $($grad:ident, $forward:ident, $backward:ident;)*) => {
        vec![$(variants!(@one $F; $grad, $forward, $backward; $args; $grads)),*]
    };
    (@one $F:ty; $grad:ident, $forward:ident, $backward:ident; ($($arg:ident),*); ($($g:ident),*)) => {
        static_mode!($F; $grad, $forward, $backward; ($($arg),*); ($($g),*))
    };
}

/// The analyses of the ablation, in table order: each variant's label and the expansion
/// (`cases.rs`) whose static code it times. The last two are another function: the case's
/// dense-seed twin (`<case>_dense`; attention and the RNN, already mse losses, are their own
/// twins), with and without the seed algebra.
pub const ABLATION_VARIANTS: [&str; 12] = [
    "all on",
    "no fusion",
    "no liveness",
    "no reuse",
    "no seed",
    "no dead-gradient elim.",
    "all off",
    "save = all",
    "save = min",
    "bf16 residuals",
    "dense seed",
    "dense seed, no seed algebra",
];

/// The tape's rows after the static code's in the ablation and per policy: the tape as it
/// is, and the tape keeping its saved computed arrays in bf16 (`Tape::with_residuals`, the
/// tape's side of `residuals = "bf16"`).
pub const TAPE_VARIANTS: [&str; 2] = ["tape", "tape, bf16 residuals"];

/// The static code of one case with each analysis switched off (`#[differentiate(opt(..))]`)
/// in [`ABLATION_VARIANTS`] order, then the tapes ([`TAPE_VARIANTS`]), all with respect to the parameters (the
/// data constant, as a model is trained: where dead-gradient elimination has work to do).
pub fn ablation_modes<F: Float>(inputs: &Inputs<F>) -> Vec<(&'static str, ModeRun<'_>)> {
    // The twelve static variants of a case (`grad, forward, backward` of each expansion).
    let (mut statics, tape) = match inputs {
        Inputs::SimpleQuadratic { x } => (
            variants!(F; (x); (dx);
                simple_quadratic_params_grad, simple_quadratic_params_forward, simple_quadratic_params_backward;
                simple_quadratic_no_fusion_grad, simple_quadratic_no_fusion_forward, simple_quadratic_no_fusion_backward;
                simple_quadratic_no_liveness_grad, simple_quadratic_no_liveness_forward, simple_quadratic_no_liveness_backward;
                simple_quadratic_no_reuse_grad, simple_quadratic_no_reuse_forward, simple_quadratic_no_reuse_backward;
                simple_quadratic_no_seed_grad, simple_quadratic_no_seed_forward, simple_quadratic_no_seed_backward;
                simple_quadratic_no_dge_grad, simple_quadratic_no_dge_forward, simple_quadratic_no_dge_backward;
                simple_quadratic_naive_grad, simple_quadratic_naive_forward, simple_quadratic_naive_backward;
                simple_quadratic_save_all_grad, simple_quadratic_save_all_forward, simple_quadratic_save_all_backward;
                simple_quadratic_save_min_grad, simple_quadratic_save_min_forward, simple_quadratic_save_min_backward;
                simple_quadratic_bf16_grad, simple_quadratic_bf16_forward, simple_quadratic_bf16_backward;
                simple_quadratic_dense_grad, simple_quadratic_dense_forward, simple_quadratic_dense_backward;
                simple_quadratic_dense_no_seed_grad, simple_quadratic_dense_no_seed_forward, simple_quadratic_dense_no_seed_backward;
            ),
            tape_mode!(F; simple_quadratic_params_on_tape; (x: param); (x: Ix1)),
        ),
        Inputs::SmallMlp { x, w1, b1, w2, b2 } => (
            variants!(F; (x, w1, b1, w2, b2); (dw1, db1, dw2, db2);
                small_mlp_params_grad, small_mlp_params_forward, small_mlp_params_backward;
                small_mlp_no_fusion_grad, small_mlp_no_fusion_forward, small_mlp_no_fusion_backward;
                small_mlp_no_liveness_grad, small_mlp_no_liveness_forward, small_mlp_no_liveness_backward;
                small_mlp_no_reuse_grad, small_mlp_no_reuse_forward, small_mlp_no_reuse_backward;
                small_mlp_no_seed_grad, small_mlp_no_seed_forward, small_mlp_no_seed_backward;
                small_mlp_no_dge_grad, small_mlp_no_dge_forward, small_mlp_no_dge_backward;
                small_mlp_naive_grad, small_mlp_naive_forward, small_mlp_naive_backward;
                small_mlp_save_all_grad, small_mlp_save_all_forward, small_mlp_save_all_backward;
                small_mlp_save_min_grad, small_mlp_save_min_forward, small_mlp_save_min_backward;
                small_mlp_bf16_grad, small_mlp_bf16_forward, small_mlp_bf16_backward;
                small_mlp_dense_grad, small_mlp_dense_forward, small_mlp_dense_backward;
                small_mlp_dense_no_seed_grad, small_mlp_dense_no_seed_forward, small_mlp_dense_no_seed_backward;
            ),
            tape_mode!(F; small_mlp_params_on_tape; (x: constant, w1: param, b1: param, w2: param, b2: param); (w1: Ix2, b1: Ix1, w2: Ix2, b2: Ix1)),
        ),
        Inputs::MatmulChain { a, b, c, d } => (
            variants!(F; (a, b, c, d); (db, dc, dd);
                matmul_chain_params_grad, matmul_chain_params_forward, matmul_chain_params_backward;
                matmul_chain_no_fusion_grad, matmul_chain_no_fusion_forward, matmul_chain_no_fusion_backward;
                matmul_chain_no_liveness_grad, matmul_chain_no_liveness_forward, matmul_chain_no_liveness_backward;
                matmul_chain_no_reuse_grad, matmul_chain_no_reuse_forward, matmul_chain_no_reuse_backward;
                matmul_chain_no_seed_grad, matmul_chain_no_seed_forward, matmul_chain_no_seed_backward;
                matmul_chain_no_dge_grad, matmul_chain_no_dge_forward, matmul_chain_no_dge_backward;
                matmul_chain_naive_grad, matmul_chain_naive_forward, matmul_chain_naive_backward;
                matmul_chain_save_all_grad, matmul_chain_save_all_forward, matmul_chain_save_all_backward;
                matmul_chain_save_min_grad, matmul_chain_save_min_forward, matmul_chain_save_min_backward;
                matmul_chain_bf16_grad, matmul_chain_bf16_forward, matmul_chain_bf16_backward;
                matmul_chain_dense_grad, matmul_chain_dense_forward, matmul_chain_dense_backward;
                matmul_chain_dense_no_seed_grad, matmul_chain_dense_no_seed_forward, matmul_chain_dense_no_seed_backward;
            ),
            tape_mode!(F; matmul_chain_params_on_tape; (a: constant, b: param, c: param, d: param); (b: Ix2, c: Ix2, d: Ix2)),
        ),
        Inputs::Conv2d {
            x,
            w,
            bias,
            gamma,
            beta,
        } => (
            variants!(F; (x, w, bias, gamma, beta); (dw, dbias, dgamma, dbeta);
                conv2d_block_params_grad, conv2d_block_params_forward, conv2d_block_params_backward;
                conv2d_block_no_fusion_grad, conv2d_block_no_fusion_forward, conv2d_block_no_fusion_backward;
                conv2d_block_no_liveness_grad, conv2d_block_no_liveness_forward, conv2d_block_no_liveness_backward;
                conv2d_block_no_reuse_grad, conv2d_block_no_reuse_forward, conv2d_block_no_reuse_backward;
                conv2d_block_no_seed_grad, conv2d_block_no_seed_forward, conv2d_block_no_seed_backward;
                conv2d_block_no_dge_grad, conv2d_block_no_dge_forward, conv2d_block_no_dge_backward;
                conv2d_block_naive_grad, conv2d_block_naive_forward, conv2d_block_naive_backward;
                conv2d_block_save_all_grad, conv2d_block_save_all_forward, conv2d_block_save_all_backward;
                conv2d_block_save_min_grad, conv2d_block_save_min_forward, conv2d_block_save_min_backward;
                conv2d_block_bf16_grad, conv2d_block_bf16_forward, conv2d_block_bf16_backward;
                conv2d_block_dense_grad, conv2d_block_dense_forward, conv2d_block_dense_backward;
                conv2d_block_dense_no_seed_grad, conv2d_block_dense_no_seed_forward, conv2d_block_dense_no_seed_backward;
            ),
            tape_mode!(F; conv2d_block_params_on_tape; (x: constant, w: param, bias: param, gamma: param, beta: param); (w: Ix4, bias: Ix1, gamma: Ix1, beta: Ix1)),
        ),
        Inputs::Attention {
            xs,
            wq,
            wk,
            wv,
            wo,
            targets,
        } => (
            variants!(F; (xs, wq, wk, wv, wo, targets); (dwq, dwk, dwv, dwo);
                attention_params_grad, attention_params_forward, attention_params_backward;
                attention_no_fusion_grad, attention_no_fusion_forward, attention_no_fusion_backward;
                attention_no_liveness_grad, attention_no_liveness_forward, attention_no_liveness_backward;
                attention_no_reuse_grad, attention_no_reuse_forward, attention_no_reuse_backward;
                attention_no_seed_grad, attention_no_seed_forward, attention_no_seed_backward;
                attention_no_dge_grad, attention_no_dge_forward, attention_no_dge_backward;
                attention_naive_grad, attention_naive_forward, attention_naive_backward;
                attention_save_all_grad, attention_save_all_forward, attention_save_all_backward;
                attention_save_min_grad, attention_save_min_forward, attention_save_min_backward;
                attention_bf16_grad, attention_bf16_forward, attention_bf16_backward;
                attention_params_grad, attention_params_forward, attention_params_backward;
                attention_no_seed_grad, attention_no_seed_forward, attention_no_seed_backward;
            ),
            tape_mode!(F; attention_params_on_tape; (xs: constants, wq: param, wk: param, wv: param, wo: param, targets: constants); (wq: Ix2, wk: Ix2, wv: Ix2, wo: Ix2)),
        ),
        Inputs::Rnn { h0, w, u, xs, target } => (
            variants!(F; (h0, w, u, xs, target); (dw, du);
                rnn_params_grad, rnn_params_forward, rnn_params_backward;
                rnn_no_fusion_grad, rnn_no_fusion_forward, rnn_no_fusion_backward;
                rnn_no_liveness_grad, rnn_no_liveness_forward, rnn_no_liveness_backward;
                rnn_no_reuse_grad, rnn_no_reuse_forward, rnn_no_reuse_backward;
                rnn_no_seed_grad, rnn_no_seed_forward, rnn_no_seed_backward;
                rnn_no_dge_grad, rnn_no_dge_forward, rnn_no_dge_backward;
                rnn_naive_grad, rnn_naive_forward, rnn_naive_backward;
                rnn_save_all_grad, rnn_save_all_forward, rnn_save_all_backward;
                rnn_save_min_grad, rnn_save_min_forward, rnn_save_min_backward;
                rnn_bf16_grad, rnn_bf16_forward, rnn_bf16_backward;
                rnn_params_grad, rnn_params_forward, rnn_params_backward;
                rnn_no_seed_grad, rnn_no_seed_forward, rnn_no_seed_backward;
            ),
            tape_mode!(F; rnn_params_on_tape; (h0: constant, w: param, u: param, xs: constants, target: constant); (w: Ix2, u: Ix2)),
        ),
    };
    statics.push(tape);
    statics.push(tape_mode_of(inputs, Wrt::Params, Some(Half::Bf16)));
    ABLATION_VARIANTS
        .iter()
        .copied()
        .chain(TAPE_VARIANTS)
        .zip(statics)
        .collect()
}

/// The memory plan's policies with respect to every input, in table order: each variant's
/// label (as in [`ABLATION_VARIANTS`]) and the expansion whose static code it times.
pub const POLICY_VARIANTS: [&str; 4] = ["all on", "save = all", "save = min", "bf16 residuals"];

/// The static code of one case under each memory-plan policy (`save = "auto"`, the default
/// and "all on"; `save = "all"`; `save = "min"`; `residuals = "bf16"`) in
/// [`POLICY_VARIANTS`] order, then the tapes ([`TAPE_VARIANTS`]), all with respect to every input, data included
/// (the published script's gradients). simple_quadratic's only input is its parameter, so
/// its parameter expansions serve.
pub fn policy_modes<F: Float>(inputs: &Inputs<F>) -> Vec<(&'static str, ModeRun<'_>)> {
    let (mut statics, tape) = match inputs {
        Inputs::SimpleQuadratic { x } => (
            variants!(F; (x); (dx);
                simple_quadratic_grad, simple_quadratic_forward, simple_quadratic_backward;
                simple_quadratic_save_all_grad, simple_quadratic_save_all_forward, simple_quadratic_save_all_backward;
                simple_quadratic_save_min_grad, simple_quadratic_save_min_forward, simple_quadratic_save_min_backward;
                simple_quadratic_bf16_grad, simple_quadratic_bf16_forward, simple_quadratic_bf16_backward;
            ),
            tape_mode!(F; simple_quadratic_on_tape; (x: param); (x: Ix1)),
        ),
        Inputs::SmallMlp { x, w1, b1, w2, b2 } => (
            variants!(F; (x, w1, b1, w2, b2); (dx, dw1, db1, dw2, db2);
                small_mlp_grad, small_mlp_forward, small_mlp_backward;
                small_mlp_all_inputs_save_all_grad, small_mlp_all_inputs_save_all_forward, small_mlp_all_inputs_save_all_backward;
                small_mlp_all_inputs_save_min_grad, small_mlp_all_inputs_save_min_forward, small_mlp_all_inputs_save_min_backward;
                small_mlp_all_inputs_bf16_grad, small_mlp_all_inputs_bf16_forward, small_mlp_all_inputs_bf16_backward;
            ),
            tape_mode!(F; small_mlp_on_tape; (x: param, w1: param, b1: param, w2: param, b2: param);
                (x: Ix2, w1: Ix2, b1: Ix1, w2: Ix2, b2: Ix1)),
        ),
        Inputs::MatmulChain { a, b, c, d } => (
            variants!(F; (a, b, c, d); (da, db, dc, dd);
                matmul_chain_grad, matmul_chain_forward, matmul_chain_backward;
                matmul_chain_all_inputs_save_all_grad, matmul_chain_all_inputs_save_all_forward, matmul_chain_all_inputs_save_all_backward;
                matmul_chain_all_inputs_save_min_grad, matmul_chain_all_inputs_save_min_forward, matmul_chain_all_inputs_save_min_backward;
                matmul_chain_all_inputs_bf16_grad, matmul_chain_all_inputs_bf16_forward, matmul_chain_all_inputs_bf16_backward;
            ),
            tape_mode!(F; matmul_chain_on_tape; (a: param, b: param, c: param, d: param); (a: Ix2, b: Ix2, c: Ix2, d: Ix2)),
        ),
        Inputs::Conv2d {
            x,
            w,
            bias,
            gamma,
            beta,
        } => (
            variants!(F; (x, w, bias, gamma, beta); (dx, dw, dbias, dgamma, dbeta);
                conv2d_block_grad, conv2d_block_forward, conv2d_block_backward;
                conv2d_block_all_inputs_save_all_grad, conv2d_block_all_inputs_save_all_forward, conv2d_block_all_inputs_save_all_backward;
                conv2d_block_all_inputs_save_min_grad, conv2d_block_all_inputs_save_min_forward, conv2d_block_all_inputs_save_min_backward;
                conv2d_block_all_inputs_bf16_grad, conv2d_block_all_inputs_bf16_forward, conv2d_block_all_inputs_bf16_backward;
            ),
            tape_mode!(F; conv2d_block_on_tape; (x: param, w: param, bias: param, gamma: param, beta: param);
                (x: Ix4, w: Ix4, bias: Ix1, gamma: Ix1, beta: Ix1)),
        ),
        Inputs::Attention {
            xs,
            wq,
            wk,
            wv,
            wo,
            targets,
        } => (
            variants!(F; (xs, wq, wk, wv, wo, targets); (dxs, dwq, dwk, dwv, dwo);
                attention_grad, attention_forward, attention_backward;
                attention_all_inputs_save_all_grad, attention_all_inputs_save_all_forward, attention_all_inputs_save_all_backward;
                attention_all_inputs_save_min_grad, attention_all_inputs_save_min_forward, attention_all_inputs_save_min_backward;
                attention_all_inputs_bf16_grad, attention_all_inputs_bf16_forward, attention_all_inputs_bf16_backward;
            ),
            tape_mode!(F; attention_on_tape; (xs: params, wq: param, wk: param, wv: param, wo: param, targets: constants);
                (xs: Ix2, wq: Ix2, wk: Ix2, wv: Ix2, wo: Ix2)),
        ),
        Inputs::Rnn { h0, w, u, xs, target } => (
            variants!(F; (h0, w, u, xs, target); (dh0, dw, du, dxs);
                rnn_grad, rnn_forward, rnn_backward;
                rnn_all_inputs_save_all_grad, rnn_all_inputs_save_all_forward, rnn_all_inputs_save_all_backward;
                rnn_all_inputs_save_min_grad, rnn_all_inputs_save_min_forward, rnn_all_inputs_save_min_backward;
                rnn_all_inputs_bf16_grad, rnn_all_inputs_bf16_forward, rnn_all_inputs_bf16_backward;
            ),
            tape_mode!(F; rnn_on_tape; (h0: param, w: param, u: param, xs: params, target: constant);
                (h0: Ix2, w: Ix2, u: Ix2, xs: Ix2)),
        ),
    };
    statics.push(tape);
    statics.push(tape_mode_of(inputs, Wrt::All, Some(Half::Bf16)));
    POLICY_VARIANTS
        .iter()
        .copied()
        .chain(TAPE_VARIANTS)
        .zip(statics)
        .collect()
}

/// The precisions the residual-precision rows compare, as `residuals = ..` spells them.
pub const RESIDUAL_PRECISIONS: [&str; 3] = ["full", "bf16", "f16"];

/// The static code of one case with its array residuals kept as computed, in bfloat16 and
/// in IEEE half (`#[differentiate(residuals = ..)]`), in [`RESIDUAL_PRECISIONS`] order, for
/// the gradients named by `wrt`.
pub fn residual_modes<F: Float>(inputs: &Inputs<F>, wrt: Wrt) -> Vec<(&'static str, ModeRun<'_>)> {
    let statics = match (inputs, wrt) {
        (Inputs::SimpleQuadratic { x }, _) => variants!(F; (x); (dx);
            simple_quadratic_params_grad, simple_quadratic_params_forward, simple_quadratic_params_backward;
            simple_quadratic_bf16_grad, simple_quadratic_bf16_forward, simple_quadratic_bf16_backward;
            simple_quadratic_f16_grad, simple_quadratic_f16_forward, simple_quadratic_f16_backward;
        ),
        (Inputs::SmallMlp { x, w1, b1, w2, b2 }, Wrt::All) => {
            variants!(F; (x, w1, b1, w2, b2); (dx, dw1, db1, dw2, db2);
                small_mlp_grad, small_mlp_forward, small_mlp_backward;
                small_mlp_all_inputs_bf16_grad, small_mlp_all_inputs_bf16_forward, small_mlp_all_inputs_bf16_backward;
                small_mlp_all_inputs_f16_grad, small_mlp_all_inputs_f16_forward, small_mlp_all_inputs_f16_backward;
            )
        }
        (Inputs::SmallMlp { x, w1, b1, w2, b2 }, Wrt::Params) => {
            variants!(F; (x, w1, b1, w2, b2); (dw1, db1, dw2, db2);
                small_mlp_params_grad, small_mlp_params_forward, small_mlp_params_backward;
                small_mlp_bf16_grad, small_mlp_bf16_forward, small_mlp_bf16_backward;
                small_mlp_f16_grad, small_mlp_f16_forward, small_mlp_f16_backward;
            )
        }
        (Inputs::MatmulChain { a, b, c, d }, Wrt::All) => variants!(F; (a, b, c, d); (da, db, dc, dd);
            matmul_chain_grad, matmul_chain_forward, matmul_chain_backward;
            matmul_chain_all_inputs_bf16_grad, matmul_chain_all_inputs_bf16_forward, matmul_chain_all_inputs_bf16_backward;
            matmul_chain_all_inputs_f16_grad, matmul_chain_all_inputs_f16_forward, matmul_chain_all_inputs_f16_backward;
        ),
        (Inputs::MatmulChain { a, b, c, d }, Wrt::Params) => variants!(F; (a, b, c, d); (db, dc, dd);
            matmul_chain_params_grad, matmul_chain_params_forward, matmul_chain_params_backward;
            matmul_chain_bf16_grad, matmul_chain_bf16_forward, matmul_chain_bf16_backward;
            matmul_chain_f16_grad, matmul_chain_f16_forward, matmul_chain_f16_backward;
        ),
        (
            Inputs::Conv2d {
                x,
                w,
                bias,
                gamma,
                beta,
            },
            Wrt::All,
        ) => variants!(F; (x, w, bias, gamma, beta); (dx, dw, dbias, dgamma, dbeta);
            conv2d_block_grad, conv2d_block_forward, conv2d_block_backward;
            conv2d_block_all_inputs_bf16_grad, conv2d_block_all_inputs_bf16_forward, conv2d_block_all_inputs_bf16_backward;
            conv2d_block_all_inputs_f16_grad, conv2d_block_all_inputs_f16_forward, conv2d_block_all_inputs_f16_backward;
        ),
        (
            Inputs::Conv2d {
                x,
                w,
                bias,
                gamma,
                beta,
            },
            Wrt::Params,
        ) => variants!(F; (x, w, bias, gamma, beta); (dw, dbias, dgamma, dbeta);
            conv2d_block_params_grad, conv2d_block_params_forward, conv2d_block_params_backward;
            conv2d_block_bf16_grad, conv2d_block_bf16_forward, conv2d_block_bf16_backward;
            conv2d_block_f16_grad, conv2d_block_f16_forward, conv2d_block_f16_backward;
        ),
        (
            Inputs::Attention {
                xs,
                wq,
                wk,
                wv,
                wo,
                targets,
            },
            Wrt::All,
        ) => variants!(F; (xs, wq, wk, wv, wo, targets); (dxs, dwq, dwk, dwv, dwo);
            attention_grad, attention_forward, attention_backward;
            attention_all_inputs_bf16_grad, attention_all_inputs_bf16_forward, attention_all_inputs_bf16_backward;
            attention_all_inputs_f16_grad, attention_all_inputs_f16_forward, attention_all_inputs_f16_backward;
        ),
        (
            Inputs::Attention {
                xs,
                wq,
                wk,
                wv,
                wo,
                targets,
            },
            Wrt::Params,
        ) => variants!(F; (xs, wq, wk, wv, wo, targets); (dwq, dwk, dwv, dwo);
            attention_params_grad, attention_params_forward, attention_params_backward;
            attention_bf16_grad, attention_bf16_forward, attention_bf16_backward;
            attention_f16_grad, attention_f16_forward, attention_f16_backward;
        ),
        (Inputs::Rnn { h0, w, u, xs, target }, Wrt::All) => variants!(F; (h0, w, u, xs, target); (dh0, dw, du, dxs);
            rnn_grad, rnn_forward, rnn_backward;
            rnn_all_inputs_bf16_grad, rnn_all_inputs_bf16_forward, rnn_all_inputs_bf16_backward;
            rnn_all_inputs_f16_grad, rnn_all_inputs_f16_forward, rnn_all_inputs_f16_backward;
        ),
        (Inputs::Rnn { h0, w, u, xs, target }, Wrt::Params) => variants!(F; (h0, w, u, xs, target); (dw, du);
            rnn_params_grad, rnn_params_forward, rnn_params_backward;
            rnn_bf16_grad, rnn_bf16_forward, rnn_bf16_backward;
            rnn_f16_grad, rnn_f16_forward, rnn_f16_backward;
        ),
    };
    RESIDUAL_PRECISIONS.into_iter().zip(statics).collect()
}
