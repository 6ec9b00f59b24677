//! Loss functions: mean squared error and softmax cross-entropy.

use ndarray::{Array, Array2, ArrayBase, Data, Dimension, Ix2};

use crate::Float;

/// Mean squared error `mean((pred - target)²)`. Panics naming both shapes if they differ.
pub fn mse<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>, D: Dimension>(pred: &ArrayBase<S1, D>, target: &ArrayBase<S2, D>) -> F {
    todo!()
}

/// Adjoint of `pred` in [`mse`]: `2g(pred - target)/n`. (The adjoint of `target` is its negation.)
pub fn mse_grad_pred<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>, D: Dimension>(g: F, pred: &ArrayBase<S1, D>, target: &ArrayBase<S2, D>) -> Array<F, D> {
    todo!()
}

/// Adjoint of `target` in [`mse`]: `-2g(pred - target)/n`.
pub fn mse_grad_target<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>, D: Dimension>(g: F, pred: &ArrayBase<S1, D>, target: &ArrayBase<S2, D>) -> Array<F, D> {
    todo!()
}

/// Softmax cross-entropy of `logits` (batch × classes) against integer class
/// `labels` (one per row), averaged over the batch. Stable for large logits.
/// Panics if the batch sizes differ or a label is out of range, naming them.
pub fn cross_entropy<F: Float, S: Data<Elem = F>>(logits: &ArrayBase<S, Ix2>, labels: &[usize]) -> F {
    todo!()
}

/// Adjoint of `logits` in [`cross_entropy`]: `g (softmax(logits) - onehot(labels)) / batch`.
pub fn cross_entropy_grad<F: Float, S: Data<Elem = F>>(g: F, logits: &ArrayBase<S, Ix2>, labels: &[usize]) -> Array2<F> {
    todo!()
}
