//! 2-D convolution over NCHW inputs with OIHW weights (im2col + GEMM).

use ndarray::{Array1, Array4, ArrayBase, Data, Ix1, Ix4};

use crate::Float;

/// `conv2d(x, w, bias, stride, padding)`: x is N×C×H×W, w is O×C×KH×KW, bias is O.
/// Output N×O×OH×OW with `OH = (H + 2·padding - KH)/stride + 1`.
/// Panics naming the shapes if channels or bias length disagree.
pub fn conv2d<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>, S3: Data<Elem = F>>(
    x: &ArrayBase<S1, Ix4>,
    w: &ArrayBase<S2, Ix4>,
    bias: Option<&ArrayBase<S3, Ix1>>,
    stride: usize,
    padding: usize,
) -> Array4<F> {
    todo!()
}

/// Adjoint of `x` in [`conv2d`], given the weight and the input's shape `x_dim`.
pub fn conv2d_grad_input<F: Float, S: Data<Elem = F>>(g: &Array4<F>, w: &ArrayBase<S, Ix4>, x_dim: &ndarray::Ix4, stride: usize, padding: usize) -> Array4<F> {
    todo!()
}

/// Adjoint of `w` in [`conv2d`], given the input and the weight's shape `w_dim`.
pub fn conv2d_grad_weight<F: Float, S: Data<Elem = F>>(g: &Array4<F>, x: &ArrayBase<S, Ix4>, w_dim: &ndarray::Ix4, stride: usize, padding: usize) -> Array4<F> {
    todo!()
}

/// Adjoint of the bias in [`conv2d`]: `g` summed over N, OH, OW.
pub fn conv2d_grad_bias<F: Float>(g: &Array4<F>) -> Array1<F> {
    todo!()
}
