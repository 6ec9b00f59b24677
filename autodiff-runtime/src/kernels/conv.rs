//! 2-D convolution over NCHW inputs with OIHW weights (im2col + GEMM).
//!
//! With `K = C·KH·KW` and `L = OH·OW`, the input patches of `nb` samples are laid
//! out as a `K × (nb·L)` matrix `col` (im2col), the weight is viewed as an `O × K`
//! matrix, and then
//! - forward:      `y = W · col` (+ bias),
//! - grad_input:   `dcol = Wᵀ · g`, then col2im adds each patch entry back to its pixel,
//! - grad_weight:  `dW = Σ_chunks g · colᵀ`,
//! - grad_bias:    `g` summed over N, OH, OW.
//!
//! Memory: the patch matrix is `KH·KW` times larger than the input, so it is never
//! built for the whole batch at once (8×64×56×56 with a 3×3 kernel would need a
//! 576 × 25088 matrix, 58 MB in f32). Samples are processed in chunks whose patch
//! matrix holds at most [`COL_BUDGET`] elements (8 MB in f32), and one buffer is reused
//! for every chunk. Large images get one sample per chunk (576 × 3136 there, 7 MB in
//! f32), which is still a GEMM big enough to run at full speed; small images are
//! batched so that the GEMM is not starved by a tiny `L`.

use ndarray::{
    s, Array1, Array2, Array4, ArrayBase, ArrayView2, ArrayViewMut2, Axis, Data, Ix1, Ix4,
};

use super::gemm::gemm;
use crate::Float;

/// The most elements the im2col buffer of one chunk may hold (unless one sample alone needs more).
pub const COL_BUDGET: usize = 1 << 21;

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
    let geo = Geometry::new("conv2d", x.dim(), w.dim(), stride, padding);
    if let Some(bias) = bias {
        assert_eq!(
            bias.len(),
            geo.o,
            "conv2d: bias shape {:?} does not match the {} output channels of weight shape {:?}",
            bias.shape(),
            geo.o,
            w.shape()
        );
    }
    let x = x.as_standard_layout();
    let x = x
        .as_slice()
        .unwrap_or_else(|| unreachable!("standard layout is contiguous"));
    let w_mat = weight_matrix(w);
    let (l, k, o) = (geo.l(), geo.k(), geo.o);
    let mut y = Array4::zeros((geo.n, o, geo.oh, geo.ow));
    let chunk = geo.chunk();
    let mut col = vec![F::zero(); k * chunk * l];
    let mut product = if chunk > 1 {
        Array2::zeros((o, chunk * l))
    } else {
        Array2::zeros((0, 0))
    };
    for n0 in (0..geo.n).step_by(chunk) {
        let nb = chunk.min(geo.n - n0);
        let col = &mut col[..k * nb * l];
        geo.im2col(x, n0, nb, col);
        let col = ArrayView2::from_shape((k, nb * l), col)
            .unwrap_or_else(|_| unreachable!("buffer has k·nb·l elements"));
        if nb == 1 {
            // One sample: its output plane stack is exactly the O × L product, write it in place.
            let mut out = y.index_axis_mut(Axis(0), n0);
            let out = out
                .view_mut()
                .into_shape_with_order((o, l))
                .unwrap_or_else(|_| unreachable!("fresh output is contiguous"));
            gemm(F::one(), w_mat.view(), col, F::zero(), out);
        } else {
            // Several samples: the product's columns run (n, oh, ow), the output's axes
            // (n, o, oh, ow), so the product goes through a buffer and is scattered.
            let mut product = product.slice_mut(s![.., ..nb * l]);
            gemm(F::one(), w_mat.view(), col, F::zero(), product.view_mut());
            for b in 0..nb {
                let mut out = y.index_axis_mut(Axis(0), n0 + b);
                let mut out = out
                    .view_mut()
                    .into_shape_with_order((o, l))
                    .unwrap_or_else(|_| unreachable!("fresh output is contiguous"));
                out.assign(&product.slice(s![.., b * l..(b + 1) * l]));
            }
        }
    }
    if let Some(bias) = bias {
        for mut sample in y.outer_iter_mut() {
            for (mut plane, &b) in sample.outer_iter_mut().zip(bias.iter()) {
                plane.mapv_inplace(|v| v + b);
            }
        }
    }
    y
}

/// Adjoint of `x` in [`conv2d`], given the weight and the input's shape `x_dim`.
pub fn conv2d_grad_input<F: Float, S: Data<Elem = F>>(
    g: &Array4<F>,
    w: &ArrayBase<S, Ix4>,
    x_dim: &ndarray::Ix4,
    stride: usize,
    padding: usize,
) -> Array4<F> {
    let (n, c, h, wd) = (x_dim[0], x_dim[1], x_dim[2], x_dim[3]);
    let geo = Geometry::new("conv2d_grad_input", (n, c, h, wd), w.dim(), stride, padding);
    geo.check_grad("conv2d_grad_input", g.shape());
    let g = g.as_standard_layout();
    let w_mat = weight_matrix(w);
    let (l, k, o) = (geo.l(), geo.k(), geo.o);
    let mut dx = vec![F::zero(); n * c * h * wd];
    let chunk = geo.chunk();
    let mut dcol_buffer = vec![F::zero(); k * chunk * l];
    let mut g_chunk = if chunk > 1 {
        Array2::zeros((o, chunk * l))
    } else {
        Array2::zeros((0, 0))
    };
    for n0 in (0..n).step_by(chunk) {
        let nb = chunk.min(n - n0);
        let dcol_slice = &mut dcol_buffer[..k * nb * l];
        let dcol = ArrayViewMut2::from_shape((k, nb * l), &mut *dcol_slice)
            .unwrap_or_else(|_| unreachable!("buffer has k·nb·l elements"));
        if nb == 1 {
            let g_n = g
                .index_axis(Axis(0), n0)
                .into_shape_with_order((o, l))
                .unwrap_or_else(|_| unreachable!("standard layout"));
            gemm(F::one(), w_mat.t(), g_n, F::zero(), dcol);
        } else {
            // Gather the chunk's adjoint as O × (nb·L), the column order of the patch matrix.
            let mut g_chunk = g_chunk.slice_mut(s![.., ..nb * l]);
            for b in 0..nb {
                let g_n = g
                    .index_axis(Axis(0), n0 + b)
                    .into_shape_with_order((o, l))
                    .unwrap_or_else(|_| unreachable!("standard layout"));
                g_chunk.slice_mut(s![.., b * l..(b + 1) * l]).assign(&g_n);
            }
            gemm(F::one(), w_mat.t(), g_chunk.view(), F::zero(), dcol);
        }
        geo.col2im(dcol_slice, n0, nb, &mut dx);
    }
    Array4::from_shape_vec((n, c, h, wd), dx)
        .unwrap_or_else(|_| unreachable!("buffer has n·c·h·w elements"))
}

/// Adjoint of `w` in [`conv2d`], given the input and the weight's shape `w_dim`.
pub fn conv2d_grad_weight<F: Float, S: Data<Elem = F>>(
    g: &Array4<F>,
    x: &ArrayBase<S, Ix4>,
    w_dim: &ndarray::Ix4,
    stride: usize,
    padding: usize,
) -> Array4<F> {
    let w_shape = (w_dim[0], w_dim[1], w_dim[2], w_dim[3]);
    let geo = Geometry::new("conv2d_grad_weight", x.dim(), w_shape, stride, padding);
    geo.check_grad("conv2d_grad_weight", g.shape());
    let g = g.as_standard_layout();
    let x = x.as_standard_layout();
    let x = x
        .as_slice()
        .unwrap_or_else(|| unreachable!("standard layout is contiguous"));
    let (l, k, o) = (geo.l(), geo.k(), geo.o);
    let mut dw = Array2::zeros((o, k));
    let chunk = geo.chunk();
    let mut col = vec![F::zero(); k * chunk * l];
    let mut g_chunk = if chunk > 1 {
        Array2::zeros((o, chunk * l))
    } else {
        Array2::zeros((0, 0))
    };
    for n0 in (0..geo.n).step_by(chunk) {
        let nb = chunk.min(geo.n - n0);
        let col = &mut col[..k * nb * l];
        geo.im2col(x, n0, nb, col);
        let col = ArrayView2::from_shape((k, nb * l), col)
            .unwrap_or_else(|_| unreachable!("buffer has k·nb·l elements"));
        // The first chunk overwrites dW, later ones accumulate into it.
        let beta = if n0 == 0 { F::zero() } else { F::one() };
        if nb == 1 {
            let g_n = g
                .index_axis(Axis(0), n0)
                .into_shape_with_order((o, l))
                .unwrap_or_else(|_| unreachable!("standard layout"));
            gemm(F::one(), g_n, col.t(), beta, dw.view_mut());
        } else {
            let mut g_chunk = g_chunk.slice_mut(s![.., ..nb * l]);
            for b in 0..nb {
                let g_n = g
                    .index_axis(Axis(0), n0 + b)
                    .into_shape_with_order((o, l))
                    .unwrap_or_else(|_| unreachable!("standard layout"));
                g_chunk.slice_mut(s![.., b * l..(b + 1) * l]).assign(&g_n);
            }
            gemm(F::one(), g_chunk.view(), col.t(), beta, dw.view_mut());
        }
    }
    dw.into_shape_with_order(w_shape)
        .unwrap_or_else(|_| unreachable!("O × K has O·C·KH·KW elements"))
}

/// Adjoint of the bias in [`conv2d`]: `g` summed over N, OH, OW.
pub fn conv2d_grad_bias<F: Float>(g: &Array4<F>) -> Array1<F> {
    let mut db = Array1::zeros(g.dim().1);
    for sample in g.outer_iter() {
        for (db, plane) in db.iter_mut().zip(sample.outer_iter()) {
            *db += plane.sum();
        }
    }
    db
}

/// The weight as an owned, row-major `O × (C·KH·KW)` matrix.
fn weight_matrix<F: Float, S: Data<Elem = F>>(w: &ArrayBase<S, Ix4>) -> Array2<F> {
    let (o, c, kh, kw) = w.dim();
    // Weights are small next to activations, so one copy keeps this simple and owned.
    w.as_standard_layout()
        .into_owned()
        .into_shape_with_order((o, c * kh * kw))
        .unwrap_or_else(|_| unreachable!("standard layout reshapes"))
}

/// The sizes of one convolution, checked once; all index arithmetic lives here.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    padding: usize,
    oh: usize,
    ow: usize,
}

impl Geometry {
    /// Checks channels, stride and kernel fit, panicking with `op` and both shapes.
    fn new(
        op: &str,
        x: (usize, usize, usize, usize),
        w: (usize, usize, usize, usize),
        stride: usize,
        padding: usize,
    ) -> Self {
        let (n, c, h, wd) = x;
        let (o, wc, kh, kw) = w;
        let (xs, ws) = ([n, c, h, wd], [o, wc, kh, kw]);
        assert_eq!(
            c, wc,
            "{op}: input shape {xs:?} has {c} channels but weight shape {ws:?} expects {wc}"
        );
        assert!(
            stride >= 1,
            "{op}: stride must be at least 1 (input shape {xs:?}, weight shape {ws:?})"
        );
        assert!(
            h + 2 * padding >= kh && wd + 2 * padding >= kw && kh > 0 && kw > 0,
            "{op}: kernel of weight shape {ws:?} does not fit input shape {xs:?} with padding {padding}"
        );
        Geometry {
            n,
            c,
            h,
            w: wd,
            o,
            kh,
            kw,
            stride,
            padding,
            oh: (h + 2 * padding - kh) / stride + 1,
            ow: (wd + 2 * padding - kw) / stride + 1,
        }
    }

    /// Panics unless `g` has the output's shape.
    fn check_grad(&self, op: &str, g: &[usize]) {
        let expected = [self.n, self.o, self.oh, self.ow];
        assert_eq!(
            g, expected,
            "{op}: gradient shape {g:?} differs from the output shape {expected:?}"
        );
    }

    /// Output pixels per channel.
    fn l(&self) -> usize {
        self.oh * self.ow
    }

    /// Rows of the patch matrix: one per (channel, kernel row, kernel column).
    fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Samples per chunk: as many as fit in [`COL_BUDGET`], at least one.
    fn chunk(&self) -> usize {
        (COL_BUDGET / (self.k() * self.l()).max(1)).clamp(1, self.n.max(1))
    }

    /// For kernel column `kj`: the output columns `ox` whose input column
    /// `ox·stride + kj - padding` lies inside the image, as `lo..hi`.
    fn valid_ox(&self, kj: usize) -> (usize, usize) {
        let lo = if self.padding > kj {
            (self.padding - kj).div_ceil(self.stride)
        } else {
            0
        };
        let hi = if self.w + self.padding > kj {
            ((self.w + self.padding - kj - 1) / self.stride + 1).min(self.ow)
        } else {
            0
        };
        (lo.min(hi), hi)
    }

    /// The input row of output row `oy` under kernel row `ki`, if inside the image.
    fn input_row(&self, oy: usize, ki: usize) -> Option<usize> {
        (oy * self.stride + ki)
            .checked_sub(self.padding)
            .filter(|&iy| iy < self.h)
    }

    /// Writes the patches of samples `n0..n0+nb` of `x` (N×C×H×W, row-major) into
    /// `col`, a row-major `K × (nb·L)` matrix; padding reads as zero.
    fn im2col<F: Float>(&self, x: &[F], n0: usize, nb: usize, col: &mut [F]) {
        let (l, hw, ow) = (self.l(), self.h * self.w, self.ow);
        let row_len = nb * l;
        for ci in 0..self.c {
            for ki in 0..self.kh {
                for kj in 0..self.kw {
                    let r = (ci * self.kh + ki) * self.kw + kj;
                    let row = &mut col[r * row_len..(r + 1) * row_len];
                    let (lo, hi) = self.valid_ox(kj);
                    for b in 0..nb {
                        let plane = &x[((n0 + b) * self.c + ci) * hw..][..hw];
                        for oy in 0..self.oh {
                            let dst = &mut row[b * l + oy * ow..][..ow];
                            let Some(iy) = self.input_row(oy, ki) else {
                                dst.fill(F::zero());
                                continue;
                            };
                            let src = &plane[iy * self.w..][..self.w];
                            dst[..lo].fill(F::zero());
                            dst[hi..].fill(F::zero());
                            // First input column read by output column `lo`.
                            let ix0 = lo * self.stride + kj - self.padding;
                            if self.stride == 1 {
                                dst[lo..hi].copy_from_slice(&src[ix0..ix0 + (hi - lo)]);
                            } else {
                                for (d, s) in dst[lo..hi]
                                    .iter_mut()
                                    .zip(src[ix0..].iter().step_by(self.stride))
                                {
                                    *d = *s;
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of [`Geometry::im2col`]: adds every entry of `dcol` (row-major
    /// `K × (nb·L)`) to the input pixel it was read from.
    fn col2im<F: Float>(&self, dcol: &[F], n0: usize, nb: usize, dx: &mut [F]) {
        let (l, hw, ow) = (self.l(), self.h * self.w, self.ow);
        for ci in 0..self.c {
            for ki in 0..self.kh {
                for kj in 0..self.kw {
                    let r = (ci * self.kh + ki) * self.kw + kj;
                    let row = &dcol[r * nb * l..][..nb * l];
                    let (lo, hi) = self.valid_ox(kj);
                    if lo >= hi {
                        continue;
                    }
                    for b in 0..nb {
                        let plane = &mut dx[((n0 + b) * self.c + ci) * hw..][..hw];
                        for oy in 0..self.oh {
                            let Some(iy) = self.input_row(oy, ki) else {
                                continue;
                            };
                            let src = &row[b * l + oy * ow..][..ow];
                            let dst = &mut plane[iy * self.w..][..self.w];
                            let ix0 = lo * self.stride + kj - self.padding;
                            for (d, s) in
                                dst[ix0..].iter_mut().step_by(self.stride).zip(&src[lo..hi])
                            {
                                *d += *s;
                            }
                        }
                    }
                }
            }
        }
    }
}
