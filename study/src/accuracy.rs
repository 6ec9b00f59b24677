//! Gradient accuracy: each mode against central finite differences in `f64` at
//! reduced shapes (`Shapes::tiny`), each mode against the static mode at the
//! shapes being timed, and each mode's `f32` gradient against its `f64` one.

use autodiff::ndarray::{Array1, ArrayD};
use autodiff::runtime::gradcheck::{max_relative_error, numeric_gradient};

use crate::cases::{Case, Inputs, Shapes, Wrt};
use crate::runs::{modes, Mode};

/// The seed of the finite-difference inputs (independent of the timed inputs).
const FD_SEED: u64 = 0xFD;

/// Worst relative error over a list of gradients, judged as ONE vector
/// (`gradcheck::max_relative_error` on the concatenation), so that every
/// component is measured against the scale of the whole gradient. This matters
/// for conv2d's bias, whose exact gradient is zero (batch norm removes any
/// per-channel shift): on its own, its rounding noise would be "100 % wrong".
/// `f64::INFINITY` if anything is non-finite or the shapes differ.
pub fn worst_error(analytic: &[ArrayD<f64>], reference: &[ArrayD<f64>]) -> f64 {
    if analytic.len() != reference.len() || analytic.iter().zip(reference).any(|(a, r)| a.shape() != r.shape()) {
        return f64::INFINITY;
    }
    let flat = |arrays: &[ArrayD<f64>]| Array1::from_iter(arrays.iter().flat_map(|a| a.iter().copied()));
    max_relative_error(&flat(analytic), &flat(reference))
}

/// Worst difference over a list of gradients, each gradient's largest difference divided
/// by its own largest entry (f32 summation order alone moves small entries by more than
/// their own size, so a per-element relative error would measure those), or by a
/// thousandth of the largest entry of all the gradients when a gradient is zero up to
/// rounding (conv2d's bias, which batch norm cancels), whose rounding noise relative to
/// itself says nothing. The ablation's measure, and the residual-precision rows'.
/// `f64::INFINITY` if anything is non-finite or the shapes differ.
pub fn error_of_largest(analytic: &[ArrayD<f64>], reference: &[ArrayD<f64>]) -> f64 {
    if analytic.len() != reference.len() || analytic.iter().zip(reference).any(|(a, r)| a.shape() != r.shape()) {
        return f64::INFINITY;
    }
    if analytic
        .iter()
        .chain(reference)
        .any(|a| a.iter().any(|v| !v.is_finite()))
    {
        return f64::INFINITY;
    }
    let largest = |g: &ArrayD<f64>| g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let overall = reference.iter().map(largest).fold(0.0f64, f64::max);
    analytic
        .iter()
        .zip(reference)
        .map(|(a, b)| {
            let scale = largest(b).max(1e-3 * overall).max(f64::MIN_POSITIVE);
            a.iter().zip(b.iter()).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale
        })
        .fold(0.0, f64::max)
}

/// The finite-difference gradients of a case's loss at `inputs`, for the
/// inputs named by `wrt`, in `Inputs::wrt_names` order.
pub fn numeric_gradients(inputs: &Inputs<f64>, wrt: Wrt) -> Vec<ArrayD<f64>> {
    let arrays = inputs.to_dyn();
    let wanted = inputs.wrt_names(wrt);
    let plain: Vec<ArrayD<f64>> = arrays.iter().map(|(_, a)| a.clone()).collect();
    arrays
        .iter()
        .enumerate()
        .filter(|(_, (name, _))| wanted.contains(name))
        .map(|(index, (_, array))| {
            let mut probe = plain.clone();
            numeric_gradient(
                |perturbed: &ArrayD<f64>| {
                    probe[index] = perturbed.clone();
                    inputs.with_arrays(&probe).loss()
                },
                array,
                1e-6,
            )
        })
        .collect()
}

/// For every mode, the worst relative error of its `f64` gradient against
/// finite differences, at the case's tiny shapes.
pub fn fd_errors(case: Case, wrt: Wrt) -> Vec<(Mode, f64)> {
    let inputs = Inputs::random(Shapes::tiny(case), FD_SEED);
    let reference = numeric_gradients(&inputs, wrt);
    modes(&inputs, wrt)
        .into_iter()
        .map(|(mode, mut run)| {
            let (_, grads) = (run.gradients)();
            (mode, worst_error(&grads, &reference))
        })
        .collect()
}

/// For every mode, the worst relative error of its `f32` gradient against its
/// own `f64` gradient, on the same inputs (given in `f64`, rounded to `f32`).
pub fn f32_vs_f64(inputs: &Inputs<f64>, wrt: Wrt) -> Vec<(Mode, f64)> {
    let single: Inputs<f32> = inputs.cast();
    let mut wide = modes(inputs, wrt);
    let mut narrow = modes(&single, wrt);
    wide.iter_mut()
        .zip(narrow.iter_mut())
        .map(|((mode, w), (_, n))| {
            let (_, g64) = (w.gradients)();
            let (_, g32) = (n.gradients)();
            (*mode, worst_error(&g32, &g64))
        })
        .collect()
}
