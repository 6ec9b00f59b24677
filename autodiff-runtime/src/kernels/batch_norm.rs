//! Batch normalisation in training mode over NCHW inputs: per-channel batch
//! statistics over N, H, W, then `gamma · x̂ + beta`.

use ndarray::{Array1, Array4, ArrayBase, Data, Ix1, Ix4};

use crate::Float;

/// `gamma[c] · (x - mean_c) / sqrt(var_c + eps) + beta[c]` with biased batch variance.
/// Panics naming the shapes if gamma or beta do not have one entry per channel.
pub fn batch_norm<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>, S3: Data<Elem = F>>(
    x: &ArrayBase<S1, Ix4>,
    gamma: &ArrayBase<S2, Ix1>,
    beta: &ArrayBase<S3, Ix1>,
    eps: F,
) -> Array4<F> {
    todo!()
}

/// Adjoint of `x` in [`batch_norm`] (statistics recomputed from `x`).
pub fn batch_norm_grad_input<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>>(g: &Array4<F>, x: &ArrayBase<S1, Ix4>, gamma: &ArrayBase<S2, Ix1>, eps: F) -> Array4<F> {
    todo!()
}

/// Adjoint of `gamma` in [`batch_norm`]: `Σ g · x̂` per channel.
pub fn batch_norm_grad_gamma<F: Float, S: Data<Elem = F>>(g: &Array4<F>, x: &ArrayBase<S, Ix4>, eps: F) -> Array1<F> {
    todo!()
}

/// Adjoint of `beta` in [`batch_norm`]: `Σ g` per channel.
pub fn batch_norm_grad_beta<F: Float>(g: &Array4<F>) -> Array1<F> {
    todo!()
}
