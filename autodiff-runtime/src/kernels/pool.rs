//! 2-D max pooling over NCHW inputs.
//!
//! Backward sends each output's adjoint to the input element its window's maximum came
//! from, which is all it needs of the input: forward keeps that position, as an index
//! within the window ([`WindowArgmax`], [`max_pool2d_keeping`]), rather than the input
//! itself. One byte per output element for windows of up to 256 elements (a 2×2 window with
//! stride 2 keeps 1 byte where the input is 4 floats per output element).

use ndarray::{Array4, ArrayBase, Data, Dimension, Ix4};

use crate::Float;

/// Where each output element of a max-pooling came from: the row-major index of its
/// window's (first) maximum within the window, with the input's shape and the window's
/// geometry. An index takes one byte when a window has at most 256 elements
/// ([`index_bytes`]), else four.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowArgmax {
    indices: WindowIndices,
    input: Ix4,
    kernel: usize,
    stride: usize,
}

/// The indices, in the narrowest of two widths that holds `kernel²` positions.
#[derive(Clone, Debug, PartialEq, Eq)]
enum WindowIndices {
    Narrow(Vec<u8>),
    Wide(Vec<u32>),
}

/// The bytes one index of a `kernel`×`kernel` window takes in a [`WindowArgmax`]: 1 when the
/// window has at most 256 elements, else 4.
pub fn index_bytes(kernel: usize) -> usize {
    if kernel.saturating_mul(kernel) <= 1 << u8::BITS {
        1
    } else {
        4
    }
}

impl WindowArgmax {
    /// Heap bytes held: one index per output element, of [`index_bytes`] each.
    pub fn bytes(&self) -> usize {
        match &self.indices {
            WindowIndices::Narrow(v) => v.len(),
            WindowIndices::Wide(v) => v.len() * std::mem::size_of::<u32>(),
        }
    }

    /// The shape of the pooled input.
    pub fn input_dim(&self) -> Ix4 {
        self.input
    }
}

/// Max over `kernel`×`kernel` windows moved by `stride`, no padding.
/// Panics naming the shape if the window does not fit.
pub fn max_pool2d<F: Float, S: Data<Elem = F>>(x: &ArrayBase<S, Ix4>, kernel: usize, stride: usize) -> Array4<F> {
    // The same loop as `max_pool2d_keeping`'s, which keeps its indices in a slice of `()`,
    // which holds nothing: the same comparisons, so the same values.
    let (oh, ow) = output_size("max_pool2d", x.shape(), kernel, stride);
    let mut nothing = vec![(); x.dim().0 * x.dim().1 * oh * ow];
    pool(x, kernel, stride, &mut nothing, |_| ())
}

/// [`max_pool2d`], and where each output element came from, which its backward reads.
pub fn max_pool2d_keeping<F: Float, S: Data<Elem = F>>(
    x: &ArrayBase<S, Ix4>,
    kernel: usize,
    stride: usize,
) -> (Array4<F>, WindowArgmax) {
    let (oh, ow) = output_size("max_pool2d", x.shape(), kernel, stride);
    let len = x.dim().0 * x.dim().1 * oh * ow;
    // Allocated at their final length: the capacity is what `bytes` says. A window index is
    // below `kernel²`, which the chosen width holds.
    let (y, indices) = if index_bytes(kernel) == 1 {
        let mut indices = vec![0u8; len];
        let y = pool(x, kernel, stride, &mut indices, |index| index as u8);
        (y, WindowIndices::Narrow(indices))
    } else {
        assert!(
            kernel.checked_mul(kernel).is_some_and(|k| k - 1 <= u32::MAX as usize),
            "max_pool2d: a {kernel}×{kernel} window has more positions than a u32 index holds"
        );
        let mut indices = vec![0u32; len];
        let y = pool(x, kernel, stride, &mut indices, |index| index as u32);
        (y, WindowIndices::Wide(indices))
    };
    let argmax = WindowArgmax {
        indices,
        input: x.raw_dim(),
        kernel,
        stride,
    };
    (y, argmax)
}

/// Adjoint of `x` in [`max_pool2d`]: each output's adjoint goes to its window's (first)
/// maximum, the position forward kept.
pub fn max_pool2d_grad<F: Float>(g: &Array4<F>, argmax: &WindowArgmax) -> Array4<F> {
    let (n, c, h, w) = argmax.input.into_pattern();
    let (kernel, stride) = (argmax.kernel, argmax.stride);
    let (oh, ow) = output_size("max_pool2d_grad", argmax.input.slice(), kernel, stride);
    let expected = [n, c, oh, ow];
    assert_eq!(
        g.shape(),
        expected,
        "max_pool2d_grad: gradient shape {:?} differs from the output shape {expected:?} of input shape {:?}",
        g.shape(),
        argmax.input.slice()
    );
    let g = g.as_standard_layout();
    let g = g
        .as_slice()
        .unwrap_or_else(|| unreachable!("standard layout is contiguous"));
    let mut dx = vec![F::zero(); n * c * h * w];
    let geometry = Geometry {
        w,
        oh,
        ow,
        kernel,
        stride,
    };
    match &argmax.indices {
        WindowIndices::Narrow(indices) => scatter(&mut dx, g, indices, h * w, &geometry),
        WindowIndices::Wide(indices) => scatter(&mut dx, g, indices, h * w, &geometry),
    }
    Array4::from_shape_vec((n, c, h, w), dx).unwrap_or_else(|_| unreachable!("buffer has n·c·h·w elements"))
}

/// The row length of the input and the output's size, and the window's.
struct Geometry {
    w: usize,
    oh: usize,
    ow: usize,
    kernel: usize,
    stride: usize,
}

/// Adds each output's adjoint into `dx` at the input position its window index names, plane
/// by plane in the order forward visited the windows (overlapping windows, stride < kernel,
/// may name the same element: they accumulate in that order).
fn scatter<F: Float, I: Copy + Into<u32>>(dx: &mut [F], g: &[F], indices: &[I], plane: usize, at: &Geometry) {
    let outputs = at.oh * at.ow;
    for ((dx_plane, g_plane), index_plane) in dx
        .chunks_exact_mut(plane)
        .zip(g.chunks_exact(outputs))
        .zip(indices.chunks_exact(outputs))
    {
        for oy in 0..at.oh {
            for ox in 0..at.ow {
                let o = oy * at.ow + ox;
                let index = index_plane[o].into() as usize;
                let (ky, kx) = (index / at.kernel, index % at.kernel);
                dx_plane[(oy * at.stride + ky) * at.w + ox * at.stride + kx] += g_plane[o];
            }
        }
    }
}

/// Pools `x`, writing in `indices` (one per output element, in the output's order) the
/// row-major index within its window of each output element's maximum, as `index` makes it.
///
/// A row of windows at a time: each element of a window, in row-major order, is compared
/// with the row's running maxima (strictly greater: ties keep the earlier element, and a NaN
/// never replaces the running maximum), in a loop over the row's windows written as two
/// selects (a branch on the comparison, which the data decide, would be mispredicted half
/// the time).
fn pool<F: Float, S: Data<Elem = F>, I: Copy>(
    x: &ArrayBase<S, Ix4>,
    kernel: usize,
    stride: usize,
    indices: &mut [I],
    index: impl Fn(usize) -> I,
) -> Array4<F> {
    let (n, c, h, w) = x.dim();
    let (oh, ow) = output_size("max_pool2d", x.shape(), kernel, stride);
    let x = x.as_standard_layout();
    let x = x
        .as_slice()
        .unwrap_or_else(|| unreachable!("standard layout is contiguous"));
    let mut y = vec![F::zero(); n * c * oh * ow];
    // Each (sample, channel) plane is pooled on its own, from contiguous slices.
    for ((plane, out), kept) in x
        .chunks_exact(h * w)
        .zip(y.chunks_exact_mut(oh * ow))
        .zip(indices.chunks_exact_mut(oh * ow))
    {
        for ((oy, max), best) in out.chunks_exact_mut(ow).enumerate().zip(kept.chunks_exact_mut(ow)) {
            let top = oy * stride;
            for ky in 0..kernel {
                let row = &plane[(top + ky) * w..(top + ky + 1) * w];
                for kx in 0..kernel {
                    let k = ky * kernel + kx;
                    let (at, candidate) = (index(k), row[kx..].iter().step_by(stride));
                    if k == 0 {
                        for ((max, best), &v) in max.iter_mut().zip(best.iter_mut()).zip(candidate) {
                            (*max, *best) = (v, at);
                        }
                        continue;
                    }
                    for ((max, best), &v) in max.iter_mut().zip(best.iter_mut()).zip(candidate) {
                        let better = v > *max;
                        *max = if better { v } else { *max };
                        *best = if better { at } else { *best };
                    }
                }
            }
        }
    }
    Array4::from_shape_vec((n, c, oh, ow), y).unwrap_or_else(|_| unreachable!("buffer has n·c·oh·ow elements"))
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
