//! 2-D max pooling over NCHW inputs.

use ndarray::{Array4, ArrayBase, Data, Ix4};

use crate::Float;

/// Max over `kernel`×`kernel` windows moved by `stride`, no padding.
/// Panics naming the shape if the window does not fit.
pub fn max_pool2d<F: Float, S: Data<Elem = F>>(x: &ArrayBase<S, Ix4>, kernel: usize, stride: usize) -> Array4<F> {
    let (n, c, h, w) = x.dim();
    let (oh, ow) = output_size("max_pool2d", x.shape(), kernel, stride);
    let x = x.as_standard_layout();
    let x = x
        .as_slice()
        .unwrap_or_else(|| unreachable!("standard layout is contiguous"));
    let mut y = vec![F::zero(); n * c * oh * ow];
    // Each (sample, channel) plane is pooled on its own, from contiguous slices.
    for (plane, out) in x.chunks_exact(h * w).zip(y.chunks_exact_mut(oh * ow)) {
        for oy in 0..oh {
            for ox in 0..ow {
                out[oy * ow + ox] = plane[argmax(plane, w, oy * stride, ox * stride, kernel)];
            }
        }
    }
    Array4::from_shape_vec((n, c, oh, ow), y).unwrap_or_else(|_| unreachable!("buffer has n·c·oh·ow elements"))
}

/// Adjoint of `x` in [`max_pool2d`]: each window's gradient goes to its (first) maximum.
pub fn max_pool2d_grad<F: Float, S: Data<Elem = F>>(
    g: &Array4<F>,
    x: &ArrayBase<S, Ix4>,
    kernel: usize,
    stride: usize,
) -> Array4<F> {
    let (n, c, h, w) = x.dim();
    let (oh, ow) = output_size("max_pool2d_grad", x.shape(), kernel, stride);
    let expected = [n, c, oh, ow];
    assert_eq!(
        g.shape(),
        expected,
        "max_pool2d_grad: gradient shape {:?} differs from the output shape {expected:?} of input shape {:?}",
        g.shape(),
        x.shape()
    );
    let x = x.as_standard_layout();
    let x = x
        .as_slice()
        .unwrap_or_else(|| unreachable!("standard layout is contiguous"));
    let g = g.as_standard_layout();
    let g = g
        .as_slice()
        .unwrap_or_else(|| unreachable!("standard layout is contiguous"));
    let mut dx = vec![F::zero(); n * c * h * w];
    for ((plane, g_plane), dx_plane) in x
        .chunks_exact(h * w)
        .zip(g.chunks_exact(oh * ow))
        .zip(dx.chunks_exact_mut(h * w))
    {
        for oy in 0..oh {
            for ox in 0..ow {
                // Overlapping windows (stride < kernel) may pick the same pixel: accumulate.
                let at = argmax(plane, w, oy * stride, ox * stride, kernel);
                dx_plane[at] += g_plane[oy * ow + ox];
            }
        }
    }
    Array4::from_shape_vec((n, c, h, w), dx).unwrap_or_else(|_| unreachable!("buffer has n·c·h·w elements"))
}

/// The output height and width, or a panic naming `op` and the input shape.
fn output_size(op: &str, shape: &[usize], kernel: usize, stride: usize) -> (usize, usize) {
    let (h, w) = (shape[2], shape[3]);
    assert!(stride >= 1, "{op}: stride must be at least 1 (input shape {shape:?})");
    assert!(
        kernel >= 1 && kernel <= h && kernel <= w,
        "{op}: a {kernel}×{kernel} window does not fit input shape {shape:?}"
    );
    ((h - kernel) / stride + 1, (w - kernel) / stride + 1)
}

/// The index in `plane` (row length `w`) of the first maximum, in row-major order, of the
/// `kernel`×`kernel` window whose top-left corner is `(top, left)`.
fn argmax<F: Float>(plane: &[F], w: usize, top: usize, left: usize, kernel: usize) -> usize {
    let mut best = top * w + left;
    for iy in top..top + kernel {
        for ix in left..left + kernel {
            // Strictly greater: ties keep the earlier element.
            if plane[iy * w + ix] > plane[best] {
                best = iy * w + ix;
            }
        }
    }
    best
}
