//! 2-D max pooling over NCHW inputs.

use ndarray::{Array4, ArrayBase, Data, Ix4};

use crate::Float;

/// Max over `kernel`×`kernel` windows moved by `stride`, no padding.
/// Panics naming the shape if the window does not fit.
pub fn max_pool2d<F: Float, S: Data<Elem = F>>(x: &ArrayBase<S, Ix4>, kernel: usize, stride: usize) -> Array4<F> {
    todo!()
}

/// Adjoint of `x` in [`max_pool2d`]: each window's gradient goes to its (first) maximum.
pub fn max_pool2d_grad<F: Float, S: Data<Elem = F>>(g: &Array4<F>, x: &ArrayBase<S, Ix4>, kernel: usize, stride: usize) -> Array4<F> {
    todo!()
}
