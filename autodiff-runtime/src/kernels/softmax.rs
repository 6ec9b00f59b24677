//! `softmax` and `log_softmax` along an axis, stable for large logits.

use ndarray::{Array, ArrayBase, Axis, Data, RemoveAxis};

use crate::Float;

/// `exp(a - max) / Σ exp(a - max)` along `axis`; finite for logits of ±1000.
pub fn softmax<F: Float, S: Data<Elem = F>, D: RemoveAxis>(a: &ArrayBase<S, D>, axis: Axis) -> Array<F, D> {
    todo!()
}

/// Backward of [`softmax`] from its output `y`: `y ⊙ (g - Σ_axis g⊙y)`.
pub fn softmax_grad<F: Float, S: Data<Elem = F>, D: RemoveAxis>(g: Array<F, D>, y: &ArrayBase<S, D>, axis: Axis) -> Array<F, D> {
    todo!()
}

/// `a - max - ln Σ exp(a - max)` along `axis`.
pub fn log_softmax<F: Float, S: Data<Elem = F>, D: RemoveAxis>(a: &ArrayBase<S, D>, axis: Axis) -> Array<F, D> {
    todo!()
}

/// Backward of [`log_softmax`] from its output `y`: `g - exp(y) ⊙ Σ_axis g`.
pub fn log_softmax_grad<F: Float, S: Data<Elem = F>, D: RemoveAxis>(g: Array<F, D>, y: &ArrayBase<S, D>, axis: Axis) -> Array<F, D> {
    todo!()
}
