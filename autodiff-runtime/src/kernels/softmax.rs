//! `softmax` and `log_softmax` along an axis, stable for large logits.
//!
//! Every function works lane by lane (a lane is one 1-D slice along `axis`, a
//! row for `Axis(1)` of a matrix): the forward functions copy the input once and
//! then rewrite each lane in place, and the backward functions rewrite `g`'s
//! buffer, so each call allocates at most one array.

use ndarray::{Array, ArrayBase, Axis, Data, RemoveAxis, Zip};

use super::vector::VectorFn;
use crate::Float;

/// Panics naming `op`, the axis and the shape if `axis` is out of bounds.
fn check_axis(op: &str, shape: &[usize], axis: Axis) {
    assert!(
        axis.index() < shape.len(),
        "{op}: axis {} is out of bounds for shape {:?}",
        axis.index(),
        shape
    );
}

/// Panics naming `op` and both shapes if the adjoint and the saved output differ.
fn check_same_shape(op: &str, g: &[usize], y: &[usize]) {
    assert_eq!(g, y, "{op}: gradient shape {g:?} differs from output shape {y:?}");
}

/// The largest element of a lane. Subtracting it before `exp` keeps every
/// exponent `<= 0`, which is what makes logits of ±1000 safe.
#[inline]
fn lane_max<F: Float, S: Data<Elem = F>>(lane: &ArrayBase<S, ndarray::Ix1>) -> F {
    lane.fold(F::neg_infinity(), |m, &v| m.max(v))
}

/// `exp(a - max) / Σ exp(a - max)` along `axis`; finite for logits of ±1000.
///
/// # Panics
/// If `axis` is out of bounds; the message names the axis and the shape.
pub fn softmax<F: Float, S: Data<Elem = F>, D: RemoveAxis>(a: &ArrayBase<S, D>, axis: Axis) -> Array<F, D> {
    check_axis("softmax", a.shape(), axis);
    let mut y = a.to_owned();
    for mut lane in y.lanes_mut(axis) {
        if let Some(values) = lane.as_slice_mut() {
            if softmax_in_place(values) {
                continue;
            }
        }
        let max = lane_max(&lane);
        let mut total = F::zero();
        lane.mapv_inplace(|v| {
            let e = (v - max).exp();
            total += e;
            e
        });
        // The max element contributes exp(0) = 1, so `total >= 1` and the
        // reciprocal is finite.
        let inv = total.recip();
        lane.mapv_inplace(|e| e * inv);
    }
    y
}

/// [`softmax`] of a contiguous lane in place, through the vectorised `exp` of `F` (`f32`).
/// Returns false, with `lane` untouched, for a type without one (`f64`, duals), whose
/// callers then run the scalar loop, so that those types compute exactly what they did before.
pub(crate) fn softmax_in_place<F: Float>(lane: &mut [F]) -> bool {
    let Some((_, total)) = exp_shifted_by_max(lane) else {
        return false;
    };
    // The max element contributes exp(0) = 1, so the total is at least 1.
    let inv = total.recip();
    lane.iter_mut().for_each(|e| *e *= inv);
    true
}

/// `max` and `ln Σ exp(x - max)` of a contiguous lane, through the vectorised `exp` of `F`
/// (`f32`), `exp(x - max)` written into `scratch`; `None` for a type without one (`f64`,
/// duals), whose callers then run the scalar loop. For `log_softmax` and cross-entropy.
pub(crate) fn max_and_log_sum_exp<F: Float>(xs: &[F], scratch: &mut Vec<F>) -> Option<(F, F)> {
    F::vectorised(VectorFn::Exp)?;
    scratch.clear();
    scratch.extend_from_slice(xs);
    exp_shifted_by_max(scratch).map(|(max, total)| (max, total.ln()))
}

/// The lane's max, then `exp(v - max)` over it in place (one vectorised pass) and their
/// total, in blocks: the common part of [`softmax_in_place`] and [`max_and_log_sum_exp`].
/// `None`, with `lane` untouched, for a type without a vectorised `exp`.
fn exp_shifted_by_max<F: Float>(lane: &mut [F]) -> Option<(F, F)> {
    let exp = F::vectorised(VectorFn::Exp)?;
    // The max exactly as `lane_max` finds it (`max` ignores NaN either way; the order of
    // the comparisons does not change the result).
    let max = in_blocks(lane, F::neg_infinity(), |m, v| m.max(v));
    lane.iter_mut().for_each(|v| *v -= max);
    exp.map_in_place(lane);
    Some((max, in_blocks(lane, F::zero(), |total, e| total + e)))
}

/// The reduction of `xs` by `op` (a sum, a max) with 16 running values combined at the
/// end: the compiler keeps them in one SIMD register, where one running value is a chain
/// of dependent operations that cost as much as the vectorised `exp` of the same lane
/// (softmax of 128×128 `f32`: 25 µs with one, against 4 for the `exp`). Only the
/// vectorised path reduces this way: the order of additions changes their rounding, which
/// `f32` allows and `f64` must not see.
#[inline]
fn in_blocks<F: Float>(xs: &[F], init: F, op: impl Fn(F, F) -> F) -> F {
    const LANES: usize = 16;
    let mut running = [init; LANES];
    let blocks = xs.chunks_exact(LANES);
    let tail = blocks.remainder();
    for block in blocks {
        for (r, &x) in running.iter_mut().zip(block) {
            *r = op(*r, x);
        }
    }
    let combined = running.iter().fold(init, |acc, &r| op(acc, r));
    tail.iter().fold(combined, |acc, &x| op(acc, x))
}

/// Backward of [`softmax`] from its output `y`: `y ⊙ (g - Σ_axis g⊙y)`.
///
/// # Panics
/// If `g` and `y` have different shapes or `axis` is out of bounds.
pub fn softmax_grad<F: Float, S: Data<Elem = F>, D: RemoveAxis>(
    mut g: Array<F, D>,
    y: &ArrayBase<S, D>,
    axis: Axis,
) -> Array<F, D> {
    check_same_shape("softmax_grad", g.shape(), y.shape());
    check_axis("softmax_grad", y.shape(), axis);
    Zip::from(g.lanes_mut(axis))
        .and(y.lanes(axis))
        .for_each(|mut g_lane, y_lane| {
            let dot = Zip::from(&g_lane)
                .and(&y_lane)
                .fold(F::zero(), |acc, &g, &y| acc + g * y);
            Zip::from(&mut g_lane)
                .and(&y_lane)
                .for_each(|g, &y| *g = y * (*g - dot));
        });
    g
}

/// `a - max - ln Σ exp(a - max)` along `axis`.
///
/// # Panics
/// If `axis` is out of bounds; the message names the axis and the shape.
pub fn log_softmax<F: Float, S: Data<Elem = F>, D: RemoveAxis>(a: &ArrayBase<S, D>, axis: Axis) -> Array<F, D> {
    check_axis("log_softmax", a.shape(), axis);
    let mut y = a.to_owned();
    // `exp(v - max)` of a contiguous lane, where `F` has a vectorised `exp`: reused by every
    // lane, so the call allocates once more than it did.
    let mut scratch = Vec::new();
    for mut lane in y.lanes_mut(axis) {
        if let Some(values) = lane.as_slice_mut() {
            if let Some((max, log_total)) = max_and_log_sum_exp(values, &mut scratch) {
                values.iter_mut().for_each(|v| *v = (*v - max) - log_total);
                continue;
            }
        }
        let max = lane_max(&lane);
        let total = lane.fold(F::zero(), |acc, &v| acc + (v - max).exp());
        // `(v - max) - ln total`, not `v - (max + ln total)`: adding `ln total`
        // to a large `max` first would round it away (1e-13 absolute at 1000).
        let log_total = total.ln();
        lane.mapv_inplace(|v| (v - max) - log_total);
    }
    y
}

/// Backward of [`log_softmax`] from its output `y`: `g - exp(y) ⊙ Σ_axis g`.
///
/// # Panics
/// If `g` and `y` have different shapes or `axis` is out of bounds.
pub fn log_softmax_grad<F: Float, S: Data<Elem = F>, D: RemoveAxis>(
    mut g: Array<F, D>,
    y: &ArrayBase<S, D>,
    axis: Axis,
) -> Array<F, D> {
    check_same_shape("log_softmax_grad", g.shape(), y.shape());
    check_axis("log_softmax_grad", y.shape(), axis);
    Zip::from(g.lanes_mut(axis))
        .and(y.lanes(axis))
        .for_each(|mut g_lane, y_lane| {
            let total = g_lane.sum();
            Zip::from(&mut g_lane)
                .and(&y_lane)
                .for_each(|g, &y| *g -= y.exp() * total);
        });
    g
}
