//! Loss functions: mean squared error and softmax cross-entropy.
//!
//! The forward functions return a scalar without allocating; each backward
//! function allocates exactly its result.

use ndarray::{Array, Array2, ArrayBase, Data, Dimension, Ix2, Zip};

use crate::Float;

/// Panics naming both shapes if `pred` and `target` differ, or the shape if they are empty
/// (the mean of no elements is undefined). Returns the element count.
fn check_mse(op: &str, pred: &[usize], target: &[usize]) -> usize {
    assert_eq!(
        pred, target,
        "{op}: prediction shape {pred:?} differs from target shape {target:?}"
    );
    let n: usize = pred.iter().product();
    assert!(n > 0, "{op}: the prediction of shape {pred:?} is empty");
    n
}

/// Mean squared error `mean((pred - target)²)`. Panics naming both shapes if they differ.
///
/// # Panics
/// Also if the arrays are empty.
pub fn mse<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>, D: Dimension>(
    pred: &ArrayBase<S1, D>,
    target: &ArrayBase<S2, D>,
) -> F {
    let n = check_mse("mse", pred.shape(), target.shape());
    let same_layout = pred.strides() == target.strides();
    let total = match (pred.as_slice_memory_order(), target.as_slice_memory_order()) {
        (Some(p), Some(t)) if same_layout => sum_squared_difference(p, t),
        _ => Zip::from(pred).and(target).fold(F::zero(), |acc, &p, &t| {
            let d = p - t;
            acc + d * d
        }),
    };
    total / F::of_usize(n)
}

/// `Σ (p - t)²` over two slices of equal length, with eight independent
/// accumulators: one accumulator makes every addition wait for the previous one
/// (float addition is not reassociated by the compiler), which is ~4× slower.
fn sum_squared_difference<F: Float>(pred: &[F], target: &[F]) -> F {
    const LANES: usize = 8;
    let mut acc = [F::zero(); LANES];
    let pred_chunks = pred.chunks_exact(LANES);
    let target_chunks = target.chunks_exact(LANES);
    let mut total = pred_chunks
        .remainder()
        .iter()
        .zip(target_chunks.remainder())
        .fold(F::zero(), |acc, (&p, &t)| acc + (p - t) * (p - t));
    for (p, t) in pred_chunks.zip(target_chunks) {
        for k in 0..LANES {
            let d = p[k] - t[k];
            acc[k] += d * d;
        }
    }
    for partial in acc {
        total += partial;
    }
    total
}

/// Adjoint of `pred` in [`mse`]: `2g(pred - target)/n`. (The adjoint of `target` is its negation.)
///
/// # Panics
/// If the shapes differ or are empty.
pub fn mse_grad_pred<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>, D: Dimension>(
    g: F,
    pred: &ArrayBase<S1, D>,
    target: &ArrayBase<S2, D>,
) -> Array<F, D> {
    let n = check_mse("mse_grad_pred", pred.shape(), target.shape());
    let scale = (g + g) / F::of_usize(n);
    Zip::from(pred).and(target).map_collect(|&p, &t| scale * (p - t))
}

/// Adjoint of `target` in [`mse`]: `-2g(pred - target)/n`.
///
/// # Panics
/// If the shapes differ or are empty.
pub fn mse_grad_target<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>, D: Dimension>(
    g: F,
    pred: &ArrayBase<S1, D>,
    target: &ArrayBase<S2, D>,
) -> Array<F, D> {
    let n = check_mse("mse_grad_target", pred.shape(), target.shape());
    let scale = (g + g) / F::of_usize(n);
    Zip::from(pred).and(target).map_collect(|&p, &t| scale * (t - p))
}

/// Panics naming the batch size and the label count if they differ, the first
/// out-of-range label (with its row and the class count), or an empty batch.
fn check_labels(op: &str, shape: &[usize], labels: &[usize]) {
    let (batch, classes) = (shape[0], shape[1]);
    assert_eq!(
        batch,
        labels.len(),
        "{op}: logits of shape {shape:?} have batch size {batch} but {} labels were given",
        labels.len()
    );
    assert!(batch > 0, "{op}: the batch of logits of shape {shape:?} is empty");
    if let Some((row, &label)) = labels.iter().enumerate().find(|&(_, &label)| label >= classes) {
        panic!("{op}: label {label} of row {row} is out of range for {classes} classes (logits shape {shape:?})");
    }
}

/// Softmax cross-entropy of `logits` (batch × classes) against integer class
/// `labels` (one per row), averaged over the batch. Stable for large logits.
/// Panics if the batch sizes differ or a label is out of range, naming them.
///
/// Each row contributes `logsumexp(row) - row[label]`, with the row's maximum
/// subtracted inside the `exp` so that no exponent is positive.
pub fn cross_entropy<F: Float, S: Data<Elem = F>>(logits: &ArrayBase<S, Ix2>, labels: &[usize]) -> F {
    check_labels("cross_entropy", logits.shape(), labels);
    let mut total = F::zero();
    // `exp(v - max)` of a contiguous row where `F` has a vectorised `exp` (softmax's lane).
    let mut scratch = Vec::new();
    for (row, &label) in logits.rows().into_iter().zip(labels) {
        if let Some(values) = row.as_slice() {
            if let Some((max, log_total)) = super::softmax::max_and_log_sum_exp(values, &mut scratch) {
                total = total + log_total - (row[label] - max);
                continue;
            }
        }
        let max = row.fold(F::neg_infinity(), |m, &v| m.max(v));
        let sum_exp = row.fold(F::zero(), |acc, &v| acc + (v - max).exp());
        // logsumexp - row[label] = ln Σ exp(v - max) - (row[label] - max); both terms are small.
        total = total + sum_exp.ln() - (row[label] - max);
    }
    total / F::of_usize(labels.len())
}

/// Adjoint of `logits` in [`cross_entropy`]: `g (softmax(logits) - onehot(labels)) / batch`.
///
/// # Panics
/// As [`cross_entropy`].
pub fn cross_entropy_grad<F: Float, S: Data<Elem = F>>(
    g: F,
    logits: &ArrayBase<S, Ix2>,
    labels: &[usize],
) -> Array2<F> {
    check_labels("cross_entropy_grad", logits.shape(), labels);
    let scale = g / F::of_usize(labels.len());
    let mut grad = logits.to_owned();
    for (mut row, &label) in grad.rows_mut().into_iter().zip(labels) {
        // Rows of the owned copy are contiguous: softmax's vectorised lane where `F` has one.
        if let Some(values) = row.as_slice_mut() {
            if super::softmax::softmax_in_place(values) {
                row.mapv_inplace(|p| p * scale);
                row[label] -= scale;
                continue;
            }
        }
        let max = row.fold(F::neg_infinity(), |m, &v| m.max(v));
        let mut sum_exp = F::zero();
        row.mapv_inplace(|v| {
            let e = (v - max).exp();
            sum_exp += e;
            e
        });
        let factor = scale / sum_exp;
        row.mapv_inplace(|e| e * factor);
        row[label] -= scale;
    }
    grad
}
