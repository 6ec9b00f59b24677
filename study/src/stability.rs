//! Gradient stability at extreme inputs, in both modes and both float types:
//! softmax cross-entropy of logits ±1000, sigmoid at ±100, the attention case
//! with its attention logits `Q·Kᵀ/√d` scaled up to ±1000, a deep `tanh` chain
//! (from the depth experiment's generated functions) where gradients vanish,
//! and a product that overflows in `f32`. Each row says whether the value and
//! the gradient are finite, and how far the gradient is from the `f64` one.
//!
//! Beside it, the residual-precision rows ([`residual_precision`]): for every case of
//! the study, at the timed shapes and in both wrt modes, the `f32` static gradient with
//! its array residuals kept as computed, in bfloat16 and in IEEE half
//! (`#[differentiate(residuals = ..)]`), and the tape's `f32` gradient as computed and with
//! bf16 residuals (`Tape::with_residuals`), each against the `f64` gradient, with the bytes
//! the context (the tape) holds, so that the cost in accuracy stands beside the saving.

use autodiff::ndarray::{Array1, Array2, ArrayD, Ix1, Ix2};
use autodiff::prelude::*;
use autodiff::runtime::gradcheck::max_relative_error;
use num_traits::ToPrimitive;
use serde::{Deserialize, Serialize};

use crate::accuracy::{error_of_largest, worst_error};
use crate::cases::{attention_grad, attention_tape_grad, Case, Inputs, Shapes, Wrt};
use crate::depth;
use crate::runs::{residual_modes, tape_mode_of, ModeRun};
use autodiff::runtime::kernels::packed::Half;

/// Softmax cross-entropy, averaged over the batch.
#[differentiate]
pub fn softmax_ce<F: Float>(logits: &Array2<F>, labels: &[usize]) -> F {
    cross_entropy(logits, labels)
}

/// `sum(sigmoid(x))`.
#[differentiate]
pub fn sigmoid_sum<F: Float>(x: &Array1<F>) -> F {
    sigmoid(x).sum()
}

/// `sum(x⁴)` as a product of four factors: overflows `f32` for `|x| > 4.3e9`.
#[differentiate]
pub fn product4<F: Float>(x: &Array1<F>) -> F {
    (x * x * x * x).sum()
}

/// One row of the stability table.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StabilityResult {
    /// Which experiment.
    pub test: String,
    /// The inputs, in words.
    pub input: String,
    /// `"static"` or `"tape"`.
    pub mode: String,
    /// `"f32"` or `"f64"`.
    pub dtype: String,
    /// The loss.
    pub value: f64,
    /// Whether the loss is finite.
    pub value_finite: bool,
    /// Whether every gradient component is finite.
    pub grad_finite: bool,
    /// The largest gradient component in magnitude.
    pub max_abs_grad: f64,
    /// Worst relative error against the static mode's `f64` gradient
    /// (`gradcheck::max_relative_error`; infinite when anything is non-finite).
    pub rel_err_vs_f64: f64,
}

fn to_f64<F: Float>(a: ArrayD<F>) -> ArrayD<f64> {
    a.mapv(|v| v.to_f64().unwrap_or(f64::NAN))
}

/// Both modes in one float type for a function of one array (plus
/// non-differentiated extra arguments): `[(mode, value, gradient)]`.
macro_rules! both_modes {
    ($F:ty, $dim:ty; $grad:ident, $on_tape:ident; $x:expr $(, $extra:expr)*) => {{
        let x = $x;
        let (value, (g,)) = $grad(&x $(, $extra)*);
        let static_row = ("static", value.to_f64().unwrap_or(f64::NAN), to_f64(g.into_dyn()));
        let tape = Tape::<$F>::new();
        let leaf = tape.param(&x);
        let y = $on_tape(&leaf $(, $extra)*);
        let tape_value = y.scalar().to_f64().unwrap_or(f64::NAN);
        let mut grads = tape.backward(&y);
        let tape_grad = to_f64(grads.take_as::<$dim>(&leaf).into_dyn());
        vec![static_row, ("tape", tape_value, tape_grad)]
    }};
}

/// The attention case's gradients in both modes, every gradient (inputs'
/// and weights') flattened into one vector: `[(mode, value, gradient)]`.
fn attention_modes<F: Float>(inputs: &Inputs<F>) -> Vec<(&'static str, f64, ArrayD<f64>)> {
    let Inputs::Attention {
        xs,
        wq,
        wk,
        wv,
        wo,
        targets,
    } = inputs
    else {
        unreachable!("attention_modes takes the attention case's inputs")
    };
    let flat = |dxs: Vec<Array2<F>>, weights: [Array2<F>; 4]| {
        let all = dxs.iter().chain(&weights).flat_map(|a| a.iter().copied());
        Array1::from_iter(all.map(|v| v.to_f64().unwrap_or(f64::NAN))).into_dyn()
    };
    let (value, (dxs, dwq, dwk, dwv, dwo)) = attention_grad(xs, wq, wk, wv, wo, targets);
    let static_row = (
        "static",
        value.to_f64().unwrap_or(f64::NAN),
        flat(dxs, [dwq, dwk, dwv, dwo]),
    );
    let (value, (dxs, dwq, dwk, dwv, dwo)) = attention_tape_grad(xs, wq, wk, wv, wo, targets);
    let tape_row = (
        "tape",
        value.to_f64().unwrap_or(f64::NAN),
        flat(dxs, [dwq, dwk, dwv, dwo]),
    );
    vec![static_row, tape_row]
}

/// Inputs of the attention case (2 sequences 16×32) with `Wq` scaled so that
/// the largest attention logit `|Q·Kᵀ/√d|` is `target`.
fn attention_inputs(target: f64) -> Inputs<f64> {
    let mut inputs = Inputs::random(
        Shapes::Attention {
            batch: 2,
            seq: 16,
            width: 32,
        },
        7,
    );
    if let Inputs::Attention { xs, wq, wk, .. } = &mut inputs {
        let scale = (wq.ncols() as f64).sqrt();
        let largest = xs
            .iter()
            .map(|x| x.dot(wq).dot(&x.dot(wk).t()).fold(0.0, |m: f64, v| m.max(v.abs())) / scale)
            .fold(0.0, f64::max);
        // The logits are linear in Wq.
        *wq *= target / largest;
    }
    inputs
}

fn rows(
    test: &str,
    input: &str,
    wide: Vec<(&str, f64, ArrayD<f64>)>,
    narrow: Vec<(&str, f64, ArrayD<f64>)>,
) -> Vec<StabilityResult> {
    let reference = wide[0].2.clone();
    let make = |dtype: &str, (mode, value, grad): (&str, f64, ArrayD<f64>)| StabilityResult {
        test: test.to_string(),
        input: input.to_string(),
        mode: mode.to_string(),
        dtype: dtype.to_string(),
        value,
        value_finite: value.is_finite(),
        grad_finite: grad.iter().all(|v| v.is_finite()),
        max_abs_grad: grad.iter().fold(0.0, |m: f64, v| m.max(v.abs())),
        rel_err_vs_f64: max_relative_error(&grad, &reference),
    };
    let mut out: Vec<StabilityResult> = wide.into_iter().map(|row| make("f64", row)).collect();
    out.extend(narrow.into_iter().map(|row| make("f32", row)));
    out
}

/// Runs every stability experiment.
pub fn run() -> Vec<StabilityResult> {
    let mut out = Vec::new();

    // Logits of ±1000: a naive softmax overflows exp(1000); the kernel subtracts the max.
    let logits = Array2::from_shape_fn((4, 10), |(i, j)| {
        if (i + j) % 3 == 0 {
            1000.0
        } else {
            -1000.0 + (i * j) as f64
        }
    });
    let labels = [0usize, 3, 5, 9];
    out.extend(rows(
        "softmax_ce",
        "logits 4×10 of ±1000",
        both_modes!(f64, Ix2; softmax_ce_grad, softmax_ce_on_tape; logits.clone(), &labels[..]),
        both_modes!(f32, Ix2; softmax_ce_grad, softmax_ce_on_tape; logits.mapv(|v| v as f32), &labels[..]),
    ));

    // Sigmoid at ±100: exp(100) overflows f32; the derivative ~ e^-100 underflows f32.
    let x = Array1::<f64>::from_vec(vec![-100.0, -30.0, 0.0, 30.0, 100.0]);
    out.extend(rows(
        "sigmoid",
        "x = -100, -30, 0, 30, 100",
        both_modes!(f64, Ix1; sigmoid_sum_grad, sigmoid_sum_on_tape; x.clone()),
        both_modes!(f32, Ix1; sigmoid_sum_grad, sigmoid_sum_on_tape; x.mapv(|v| v as f32)),
    ));

    // Attention logits of ±1000: softmax subtracts each row's max, so exp never overflows;
    // the rows are one-hot to rounding and their gradients vanish, but stay finite.
    let inputs = attention_inputs(1000.0);
    out.extend(rows(
        "attention",
        "2 sequences 16×32, Wq scaled to max |Q·Kᵀ/√d| = 1000",
        attention_modes(&inputs),
        attention_modes(&inputs.cast::<f32>()),
    ));

    // Deep tanh chains: the gradient is a product of `depth` factors 1 - h².
    let x = Array1::<f64>::from_vec(vec![-2.0, -0.5, 0.1, 0.5, 2.0]);
    for depth in [10usize, 100, 1000] {
        if let Some((v64, g64, v32, g32)) = depth::tanh_chain_gradients(depth, &x) {
            out.extend(rows(
                "tanh_chain",
                &format!("depth {depth}, x = -2, -0.5, 0.1, 0.5, 2 (static only)"),
                vec![("static", v64, g64.into_dyn())],
                vec![("static", v32 as f64, to_f64(g32.into_dyn()))],
            ));
        }
    }

    // x⁴ with x up to 1e10: the value (1e40) overflows f32 (max 3.4e38), the gradient 4x³ (4e30) does not.
    let x = Array1::<f64>::from_vec(vec![1e10, -3e9, 1.0]);
    out.extend(rows(
        "product_overflow",
        "sum(x·x·x·x), x = 1e10, -3e9, 1",
        both_modes!(f64, Ix1; product4_grad, product4_on_tape; x.clone()),
        both_modes!(f32, Ix1; product4_grad, product4_on_tape; x.mapv(|v| v as f32)),
    ));
    out
}

/// One residual-precision row: a case's `f32` static (or tape) gradient with its array
/// residuals in one precision, against the `f64` static gradient (residuals as computed) on
/// the same inputs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResidualPrecisionResult {
    /// The case.
    pub case: String,
    /// `"all"` or `"params"`.
    pub wrt: String,
    /// `"static"` (the generated code) or `"tape"` (`Tape::new()` as computed,
    /// `Tape::with_residuals(Half::Bf16)` for bf16).
    #[serde(default = "static_mode")]
    pub mode: String,
    /// The precision of the array residuals: `"full"` (as computed, the default), `"bf16"`
    /// or `"f16"` (`#[differentiate(residuals = ..)]`).
    pub residuals: String,
    /// The float type the gradient is computed in: `"f32"`.
    pub dtype: String,
    /// Heap bytes live between forward and backward (the context), from the allocator.
    pub held_bytes: usize,
    /// What the context itself says it holds (`Context::held_bytes`).
    #[serde(default)]
    pub held_bytes_reported: usize,
    /// Whether every gradient component is finite.
    pub grad_finite: bool,
    /// The largest gradient component in magnitude.
    pub max_abs_grad: f64,
    /// Worst relative error against the `f64` gradient, the gradients judged as one vector
    /// (`accuracy::worst_error`, the accuracy table's "f32 vs f64"; infinite when anything
    /// is non-finite).
    pub rel_err_vs_f64: f64,
    /// Each gradient's largest difference from the `f64` one relative to its largest entry,
    /// worst over the gradients (`accuracy::error_of_largest`, the ablation's measure;
    /// infinite when anything is non-finite).
    pub err_of_largest_vs_f64: f64,
}

fn static_mode() -> String {
    "static".to_string()
}

/// The residual-precision rows of `cases` at the timed shapes (`Shapes::published` at
/// `scale`, inputs from `seed`): per case and wrt mode, the `f32` static gradient with
/// full, bf16 and f16 residuals, then the tape's with full and bf16 residuals, against the
/// `f64` one.
pub fn residual_precision(cases: &[Case], scale: f64, seed: u64) -> Vec<ResidualPrecisionResult> {
    let mut out = Vec::new();
    for &case in cases {
        let wide = Inputs::random(Shapes::published(case, scale), seed);
        let narrow: Inputs<f32> = wide.cast();
        for wrt in Wrt::BOTH {
            out.extend(residual_rows(&wide, &narrow, wrt));
        }
    }
    out
}

/// The rows of one case and wrt mode: the static code's in [`crate::runs::RESIDUAL_PRECISIONS`]
/// order, then the tape's as computed and in bf16.
pub fn residual_rows(wide: &Inputs<f64>, narrow: &Inputs<f32>, wrt: Wrt) -> Vec<ResidualPrecisionResult> {
    let reference = {
        let mut runs = residual_modes(wide, wrt);
        (runs[0].1.gradients)().1
    };
    let statics = residual_modes(narrow, wrt)
        .into_iter()
        .map(|(residuals, run)| ("static", residuals, run));
    let tapes = [("full", None), ("bf16", Some(Half::Bf16))]
        .map(|(residuals, format)| ("tape", residuals, tape_mode_of(narrow, wrt, format)));
    statics
        .chain(tapes)
        .map(|(mode, residuals, run)| residual_row(wide.case(), wrt, mode, residuals, run, &reference))
        .collect()
}

/// One row: `run`'s gradient against `reference`, and the bytes it holds.
fn residual_row(
    case: Case,
    wrt: Wrt,
    mode: &str,
    residuals: &str,
    mut run: ModeRun<'_>,
    reference: &[ArrayD<f64>],
) -> ResidualPrecisionResult {
    let (_, grads) = (run.gradients)();
    let memory = (run.memory)();
    ResidualPrecisionResult {
        case: case.name().to_string(),
        wrt: wrt.name().to_string(),
        mode: mode.to_string(),
        residuals: residuals.to_string(),
        dtype: "f32".to_string(),
        held_bytes: memory.held_bytes,
        held_bytes_reported: memory.held_bytes_reported,
        grad_finite: grads.iter().all(|g| g.iter().all(|v| v.is_finite())),
        max_abs_grad: grads
            .iter()
            .flat_map(|g| g.iter())
            .fold(0.0, |m: f64, v| m.max(v.abs())),
        rel_err_vs_f64: worst_error(&grads, reference),
        err_of_largest_vs_f64: error_of_largest(&grads, reference),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of one case at its finite-difference shapes, by precision: the static
    /// code's three, then the tape's two.
    fn rows_of(case: Case, wrt: Wrt) -> Vec<ResidualPrecisionResult> {
        let wide = Inputs::random(Shapes::tiny(case), 11);
        let rows = residual_rows(&wide, &wide.cast(), wrt);
        let names: Vec<(&str, &str)> = rows.iter().map(|r| (r.mode.as_str(), r.residuals.as_str())).collect();
        assert_eq!(
            names,
            [
                ("static", "full"),
                ("static", "bf16"),
                ("static", "f16"),
                ("tape", "full"),
                ("tape", "bf16")
            ]
        );
        rows
    }

    /// Where the context keeps arrays (conv2d, attention, the RNN), 16-bit residuals hold
    /// less and cost accuracy: finite gradients, further from f64 than full precision's,
    /// bf16 (8 significant bits) further than f16 (11), within the formats' rounding.
    #[test]
    fn sixteen_bit_residuals_hold_less_and_cost_accuracy() {
        for case in [Case::Conv2d, Case::Attention, Case::Rnn] {
            for wrt in Wrt::BOTH {
                let rows = rows_of(case, wrt);
                let (full, bf16, f16) = (&rows[0], &rows[1], &rows[2]);
                let what = format!("{} wrt {}", case.name(), wrt.name());
                assert!(rows.iter().all(|r| r.grad_finite), "{what}: {rows:?}");
                assert!(full.err_of_largest_vs_f64 < 1e-4, "{what}: {full:?}");
                assert!(
                    bf16.err_of_largest_vs_f64 > full.err_of_largest_vs_f64,
                    "{what}: bf16 {bf16:?} full {full:?}"
                );
                assert!(
                    f16.err_of_largest_vs_f64 > full.err_of_largest_vs_f64,
                    "{what}: f16 {f16:?} full {full:?}"
                );
                assert!(
                    bf16.err_of_largest_vs_f64 > f16.err_of_largest_vs_f64,
                    "{what}: bf16 {bf16:?} f16 {f16:?}"
                );
                assert!(bf16.err_of_largest_vs_f64 < 5e-2, "{what}: {bf16:?}");
                // The context's own account: the allocator's counts every test thread.
                assert!(bf16.held_bytes_reported < full.held_bytes_reported, "{what}: {rows:?}");
                assert_eq!(bf16.held_bytes_reported, f16.held_bytes_reported, "{what}");
                // The tape in bf16: within the format's rounding, holding less than as computed.
                let (tape, tape_bf16) = (&rows[3], &rows[4]);
                assert!(tape.err_of_largest_vs_f64 < 1e-4, "{what}: {tape:?}");
                assert!(
                    tape_bf16.err_of_largest_vs_f64 > tape.err_of_largest_vs_f64,
                    "{what}: {tape_bf16:?} {tape:?}"
                );
                assert!(tape_bf16.err_of_largest_vs_f64 < 5e-2, "{what}: {tape_bf16:?}");
                // The tape's index of its packed copies costs 16 bytes a value, what packing
                // saves on the tiny RNN's 8-element states: less held only elsewhere.
                assert!(
                    tape_bf16.held_bytes_reported <= tape.held_bytes_reported,
                    "{what}: {rows:?}"
                );
                if case != Case::Rnn {
                    assert!(
                        tape_bf16.held_bytes_reported < tape.held_bytes_reported,
                        "{what}: {rows:?}"
                    );
                }
            }
        }
    }

    /// Where the context keeps no array (nothing, relu's bits, column sums), the 16-bit rows
    /// are full precision's: same bytes, same gradients.
    #[test]
    fn nothing_to_pack_changes_nothing() {
        for case in [Case::SimpleQuadratic, Case::SmallMlp, Case::MatmulChain] {
            for wrt in Wrt::BOTH {
                let rows = rows_of(case, wrt);
                for row in &rows[1..3] {
                    assert_eq!(row.held_bytes_reported, rows[0].held_bytes_reported, "{row:?}");
                    assert_eq!(row.err_of_largest_vs_f64, rows[0].err_of_largest_vs_f64, "{row:?}");
                }
            }
        }
    }

    /// `residual_precision` gives both wrt modes of each case, every input first, the three
    /// static precisions and the two tapes each.
    #[test]
    fn both_wrt_modes_have_rows() {
        let rows = residual_precision(&[Case::Rnn], 0.05, 3);
        let wrts: Vec<&str> = rows.iter().map(|r| r.wrt.as_str()).collect();
        assert_eq!(wrts, [["all"; 5], ["params"; 5]].concat());
        assert!(rows.iter().all(|r| r.case == "rnn" && r.dtype == "f32"));
    }
}
