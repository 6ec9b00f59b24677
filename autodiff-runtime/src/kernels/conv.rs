//! 2-D convolution over NCHW inputs with OIHW weights (im2col + GEMM).
//!
//! With `K = C·KH·KW` and `L = OH·OW`, the input patches of `nb` samples are laid
//! out as a `K × (nb·L)` matrix `col` (im2col), the weight is viewed as an `O × K`
//! matrix, and then
//! - forward:      `y = W · col` (+ bias),
//! - grad_input:   `dcol = Wᵀ · g`, then col2im adds each patch entry back to its pixel,
//! - grad_weight:  `dW = Σ_tiles g · colᵀ`,
//! - grad_bias:    `g` summed over N, OH, OW.
//!
//! Memory and speed: the patch matrix is `KH·KW` times larger than the input, so it
//! is never built whole (8×64×56×56 with a 3×3 kernel would need a 576 × 25088
//! matrix, 58 MB in f32). Its columns, which run over (sample, output pixel), are
//! produced in tiles of [`tile_columns`] columns (about 256 for that shape, 0.6 MB in
//! f32) into one reused buffer, and each tile is multiplied at once, while it is still
//! in cache. Measured on the study machine (single thread, f32), the same GEMM runs at
//! ~77 GFLOP/s on 64×576·576×256 tiles but ~20-27 GFLOP/s as one 64×576·576×3136
//! product per sample, whose 7 MB operand streams from memory. A tile may span
//! samples, so small images still give full-width GEMMs.
//!
//! 3×3, stride-1 convolutions with at least [`WINOGRAD_MIN_CHANNELS`] channels take the
//! Winograd path instead (`conv/winograd.rs`): 2.25× fewer flops, no col2im. Measured at
//! the study's shape (f32, one thread, `benches/conv.rs -- alternate`, alternating calls,
//! 2026-12-02, Intel Xeon with AVX-512, the `gemm` crate's AVX2 kernels), Winograd is
//! 1.8× (forward), 2.4× (grad_input, where col2im's scattered adds cost as much as the
//! GEMM) and 1.9× (grad_weight) faster than im2col (1.2×, 1.7× and 1.3× before its
//! transforms were compiled for AVX2/AVX-512), with f32 errors of the same order (about
//! 1e-6 of the largest value, against f64: 8.8e-7, 7.2e-7 and 3.8e-6 for Winograd,
//! 8.5e-7, 5.4e-7 and 3.3e-6 for im2col).
//!
//! Against PyTorch (`benches/pytorch/kernels_vs_pytorch.py conv`, whose doc has the
//! command and the table: oneDNN's convolution and `convolution_backward` with one
//! adjoint asked for, both sides timed in alternating rounds), at the study's shape, each of
//! forward, grad_input and grad_weight runs faster than PyTorch's at 1 and 2 threads.
//!
//! Threads ([`super::gemm::set_num_threads`]) split the batch, not the GEMMs: see
//! `sample_chunks`. At the study's shape (8 samples, 4 per thread) two threads run
//! 1.8-2.0× as fast as one (measured on a quiet moment of the shared machine), so no
//! finer split (batch × output-channel tiles) is needed there.

use ndarray::{Array1, Array2, Array4, ArrayBase, ArrayView2, ArrayViewMut2, Data, Ix1, Ix4};

use super::gemm::gemm_with_threads;
use crate::Float;

mod winograd;

/// Target elements of one patch tile (`K × columns`): 128 Ki, i.e. 512 KB in f32.
const TILE_ELEMENTS: usize = 1 << 17;

/// Columns of the patch matrix per tile for `k` rows: about `TILE_ELEMENTS` / `k`,
/// but never fewer than 256, where the GEMM would lose efficiency to its own overhead.
pub fn tile_columns(k: usize) -> usize {
    (TILE_ELEMENTS / k.max(1)).max(256)
}

/// Which algorithm computes a convolution. The plain functions ([`conv2d`] and its
/// adjoints) use [`ConvAlgorithm::Auto`]; the `_with` forms exist so that the bench and
/// the tests can compare the paths on the same inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvAlgorithm {
    /// Winograd where [`winograd_applies`] and both channel counts reach
    /// [`WINOGRAD_MIN_CHANNELS`], im2col elsewhere.
    Auto,
    /// im2col + GEMM, any shape.
    Im2col,
    /// Winograd F(2×2, 3×3); panics unless [`winograd_applies`].
    Winograd,
}

/// Fewest input and output channels for which [`ConvAlgorithm::Auto`] takes Winograd.
///
/// Below it the 16 GEMMs have inner dimension `C` (or `O`) too small to amortise the
/// transforms, and Winograd's extra rounding (2-3× im2col's in f32, measured in
/// `tests/kernels_conv.rs` and `benches/conv.rs`) buys nothing. A conservative choice: the
/// crossover has not been measured finely (the study's conv, 64 channels, is well above it).
pub const WINOGRAD_MIN_CHANNELS: usize = 16;

/// Whether the Winograd path can compute a convolution with this kernel, stride and
/// padding: 3×3, stride 1, padding at most 2 (grad_input runs it with padding `2 - p`).
pub fn winograd_applies(kh: usize, kw: usize, stride: usize, padding: usize) -> bool {
    kh == 3 && kw == 3 && stride == 1 && padding <= 2
}

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
    conv2d_with(ConvAlgorithm::Auto, x, w, bias, stride, padding)
}

/// [`conv2d`] with an explicitly chosen algorithm.
pub fn conv2d_with<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>, S3: Data<Elem = F>>(
    algorithm: ConvAlgorithm,
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
    let o = geo.o;
    let mut y = vec![F::zero(); geo.n * o * geo.l()];
    if geo.winograd(algorithm) {
        let w_std = w_mat
            .as_slice()
            .unwrap_or_else(|| unreachable!("weight_matrix is standard layout"));
        let u = winograd::transform_weight(w_std, o, geo.c, false);
        let dims = winograd::Dims::new(geo.n, geo.c, geo.h, geo.w, geo.padding);
        let x_len = geo.c * geo.h * geo.w;
        for_sample_chunks(geo.n, x, x_len, &mut y, o * geo.l(), |nb, x, y, threads| {
            winograd::forward(&dims.with_samples(nb), x, &u, o, y, threads)
        });
    } else {
        let x_len = geo.c * geo.h * geo.w;
        for_sample_chunks(geo.n, x, x_len, &mut y, o * geo.l(), |nb, x, y, threads| {
            geo.with_samples(nb).im2col_forward(x, w_mat.view(), y, threads)
        });
    }
    let mut y = Array4::from_shape_vec((geo.n, o, geo.oh, geo.ow), y)
        .unwrap_or_else(|_| unreachable!("buffer has n·o·oh·ow elements"));
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
    conv2d_grad_input_with(ConvAlgorithm::Auto, g, w, x_dim, stride, padding)
}

/// [`conv2d_grad_input`] with an explicitly chosen algorithm.
pub fn conv2d_grad_input_with<F: Float, S: Data<Elem = F>>(
    algorithm: ConvAlgorithm,
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
    let g = g
        .as_slice()
        .unwrap_or_else(|| unreachable!("standard layout is contiguous"));
    let w_mat = weight_matrix(w);
    let o = geo.o;
    let mut dx = vec![F::zero(); n * c * h * wd];
    let g_len = o * geo.l();
    if geo.winograd(algorithm) {
        // For stride 1: the correlation of g with the flipped, channel-transposed filter,
        // padding 2 - p, whose output has exactly the input's size.
        let w_std = w_mat
            .as_slice()
            .unwrap_or_else(|| unreachable!("weight_matrix is standard layout"));
        let u = winograd::transform_weight(w_std, o, c, true);
        let dims = winograd::Dims::new(n, o, geo.oh, geo.ow, 2 - padding);
        for_sample_chunks(n, g, g_len, &mut dx, c * h * wd, |nb, g, dx, threads| {
            winograd::forward(&dims.with_samples(nb), g, &u, c, dx, threads)
        });
    } else {
        // Samples never share input pixels, so chunks of whole samples scatter-add apart.
        for_sample_chunks(n, g, g_len, &mut dx, c * h * wd, |nb, g, dx, threads| {
            geo.with_samples(nb).im2col_grad_input(g, w_mat.view(), dx, threads)
        });
    }
    Array4::from_shape_vec((n, c, h, wd), dx).unwrap_or_else(|_| unreachable!("buffer has n·c·h·w elements"))
}

/// Adjoint of `w` in [`conv2d`], given the input and the weight's shape `w_dim`.
pub fn conv2d_grad_weight<F: Float, S: Data<Elem = F>>(
    g: &Array4<F>,
    x: &ArrayBase<S, Ix4>,
    w_dim: &ndarray::Ix4,
    stride: usize,
    padding: usize,
) -> Array4<F> {
    conv2d_grad_weight_with(ConvAlgorithm::Auto, g, x, w_dim, stride, padding)
}

/// [`conv2d_grad_weight`] with an explicitly chosen algorithm.
pub fn conv2d_grad_weight_with<F: Float, S: Data<Elem = F>>(
    algorithm: ConvAlgorithm,
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
    let g = g
        .as_slice()
        .unwrap_or_else(|| unreachable!("standard layout is contiguous"));
    let x = x.as_standard_layout();
    let x = x
        .as_slice()
        .unwrap_or_else(|| unreachable!("standard layout is contiguous"));
    let (x_len, g_len) = (geo.c * geo.h * geo.w, geo.o * geo.l());
    let dw = if geo.winograd(algorithm) {
        let dims = winograd::Dims::new(geo.n, geo.c, geo.h, geo.w, geo.padding);
        let du = sum_sample_chunks(geo.n, x, x_len, g, g_len, |nb, x, g, threads| {
            winograd::grad_weight_partial(&dims.with_samples(nb), x, g, geo.o, threads)
        });
        winograd::weight_from_transformed(&du, geo.o, geo.c)
    } else {
        sum_sample_chunks(geo.n, x, x_len, g, g_len, |nb, x, g, threads| {
            geo.with_samples(nb).im2col_grad_weight(x, g, threads)
        })
    };
    Array4::from_shape_vec(w_shape, dw).unwrap_or_else(|_| unreachable!("O × K has O·C·KH·KW elements"))
}

/// How `n` samples are shared among the threads of [`super::gemm::num_threads`]:
/// `(samples per chunk, chunks, GEMM threads inside each chunk)`.
///
/// Why at the convolution level: the tile GEMMs are small (64×576·576×256 takes
/// ~0.3 ms), and splitting each of them over threads costs more in
/// synchronisation than it gains; measured at the study's shape, 2 threads made conv2d
/// slower than 1 (see `benches/conv.rs`). Whole samples per thread, each thread with its
/// own buffers and single-threaded GEMMs, need no synchronisation until the end, and the
/// chunks are contiguous and fixed, so results do not depend on scheduling. With fewer
/// samples than threads, the leftover threads go to each GEMM.
fn sample_chunks(n: usize) -> (usize, usize, usize) {
    let threads = super::gemm::num_threads();
    let workers = threads.min(n).max(1);
    let per_chunk = n.div_ceil(workers).max(1);
    let chunks = n.div_ceil(per_chunk).max(1);
    (per_chunk, chunks, (threads / chunks).max(1))
}

/// Runs `f(samples, input chunk, output chunk, gemm threads)` over contiguous chunks of
/// whole samples (`a_len` and `out_len` elements per sample), on the kernel team's threads
/// when there are several.
fn for_sample_chunks<F: Float>(
    n: usize,
    a: &[F],
    a_len: usize,
    out: &mut [F],
    out_len: usize,
    f: impl Fn(usize, &[F], &mut [F], usize) + Sync,
) {
    let (per_chunk, chunks, threads) = sample_chunks(n);
    if chunks <= 1 || a_len == 0 || out_len == 0 {
        f(n, a, out, threads);
        return;
    }
    let ins: Vec<&[F]> = a.chunks(per_chunk * a_len).collect();
    super::team::for_each_part(out.chunks_mut(per_chunk * out_len).collect(), &|i, out| {
        f(out.len() / out_len, ins[i], out, threads);
    });
}

/// Sums `f(samples, x chunk, g chunk, gemm threads)` (equal-length vectors) over
/// contiguous chunks of whole samples, in chunk order.
fn sum_sample_chunks<F: Float>(
    n: usize,
    x: &[F],
    x_len: usize,
    g: &[F],
    g_len: usize,
    f: impl Fn(usize, &[F], &[F], usize) -> Vec<F> + Sync,
) -> Vec<F> {
    let (per_chunk, chunks, threads) = sample_chunks(n);
    if chunks <= 1 || x_len == 0 || g_len == 0 {
        return f(n, x, g, threads);
    }
    let pairs: Vec<(&[F], &[F])> = x.chunks(per_chunk * x_len).zip(g.chunks(per_chunk * g_len)).collect();
    let parts = super::team::for_each_part(vec![Vec::new(); pairs.len()], &|i, part| {
        let (x, g) = pairs[i];
        *part = f(x.len() / x_len, x, g, threads);
    });
    let mut parts = parts.into_iter();
    let mut total = parts.next().unwrap_or_default();
    for part in parts {
        total.iter_mut().zip(&part).for_each(|(t, &p)| *t += p);
    }
    total
}

/// Adjoint of the bias in [`conv2d`]: `g` summed over N, OH, OW.
pub fn conv2d_grad_bias<F: Float>(g: &Array4<F>) -> Array1<F> {
    let mut db = vec![F::zero(); g.dim().1];
    // Channels split across threads; each channel's planes are added in sample order.
    super::team::for_chunks_mut(g.len(), &mut db, 1, |first, db| {
        for (c, db) in db.iter_mut().enumerate() {
            for sample in g.outer_iter() {
                *db += sample.index_axis(ndarray::Axis(0), first + c).sum();
            }
        }
    });
    Array1::from_vec(db)
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

    /// The same convolution over `n` samples (a chunk of the batch).
    fn with_samples(self, n: usize) -> Self {
        Geometry { n, ..self }
    }

    /// Whether `algorithm` means the Winograd path here (panics if it cannot apply).
    fn winograd(&self, algorithm: ConvAlgorithm) -> bool {
        let applies = winograd_applies(self.kh, self.kw, self.stride, self.padding);
        match algorithm {
            ConvAlgorithm::Auto => applies && self.c.min(self.o) >= WINOGRAD_MIN_CHANNELS,
            ConvAlgorithm::Im2col => false,
            ConvAlgorithm::Winograd => {
                assert!(
                    applies,
                    "conv2d: Winograd needs a 3×3 kernel, stride 1 and padding ≤ 2, not {}×{}, stride {}, padding {}",
                    self.kh, self.kw, self.stride, self.padding
                );
                true
            }
        }
    }

    /// The forward by im2col + GEMM: `x` (n × c × h × w) into `out` (n × o × oh × ow).
    fn im2col_forward<F: Float>(&self, x: &[F], w_mat: ArrayView2<F>, out: &mut [F], threads: usize) {
        let (k, o) = (self.k(), self.o);
        let tile = tile_columns(k);
        let mut col = vec![F::zero(); k * tile];
        let mut product = vec![F::zero(); o * tile];
        for (j0, j1) in self.tiles(tile) {
            let width = j1 - j0;
            let col = &mut col[..k * width];
            self.im2col(x, j0, j1, col);
            let col = ArrayView2::from_shape((k, width), &*col)
                .unwrap_or_else(|_| unreachable!("buffer has k·width elements"));
            let product = &mut product[..o * width];
            let product_view = ArrayViewMut2::from_shape((o, width), &mut *product)
                .unwrap_or_else(|_| unreachable!("buffer has o·width elements"));
            gemm_with_threads(threads, F::one(), w_mat, col, F::zero(), product_view);
            self.scatter(product, j0, j1, out);
        }
    }

    /// grad_input by GEMM + col2im: `g` (n × o × oh × ow) into `dx` (n × c × h × w, zeroed).
    fn im2col_grad_input<F: Float>(&self, g: &[F], w_mat: ArrayView2<F>, dx: &mut [F], threads: usize) {
        let (k, o) = (self.k(), self.o);
        let tile = tile_columns(k);
        let mut dcol = vec![F::zero(); k * tile];
        let mut g_tile = vec![F::zero(); o * tile];
        for (j0, j1) in self.tiles(tile) {
            let width = j1 - j0;
            let g_tile = &mut g_tile[..o * width];
            self.gather(g, j0, j1, g_tile);
            let g_view = ArrayView2::from_shape((o, width), &*g_tile)
                .unwrap_or_else(|_| unreachable!("buffer has o·width elements"));
            let dcol = &mut dcol[..k * width];
            let dcol_view = ArrayViewMut2::from_shape((k, width), &mut *dcol)
                .unwrap_or_else(|_| unreachable!("buffer has k·width elements"));
            gemm_with_threads(threads, F::one(), w_mat.t(), g_view, F::zero(), dcol_view);
            self.col2im(dcol, j0, j1, dx);
        }
    }

    /// grad_weight by im2col + GEMM: the `o × k` weight adjoint, row-major.
    fn im2col_grad_weight<F: Float>(&self, x: &[F], g: &[F], threads: usize) -> Vec<F> {
        let (k, o) = (self.k(), self.o);
        let mut dw = Array2::zeros((o, k));
        let tile = tile_columns(k);
        let mut col = vec![F::zero(); k * tile];
        let mut g_tile = vec![F::zero(); o * tile];
        for (j0, j1) in self.tiles(tile) {
            let width = j1 - j0;
            let col = &mut col[..k * width];
            self.im2col(x, j0, j1, col);
            let col = ArrayView2::from_shape((k, width), &*col)
                .unwrap_or_else(|_| unreachable!("buffer has k·width elements"));
            let g_tile = &mut g_tile[..o * width];
            self.gather(g, j0, j1, g_tile);
            let g_view = ArrayView2::from_shape((o, width), &*g_tile)
                .unwrap_or_else(|_| unreachable!("buffer has o·width elements"));
            // dW accumulates over tiles (it starts as zeros, so the first tile may add too).
            gemm_with_threads(threads, F::one(), g_view, col.t(), F::one(), dw.view_mut());
        }
        dw.into_raw_vec_and_offset().0
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

    /// The column ranges `j0..j1` of the tiles of the `N·L`-column patch matrix.
    fn tiles(&self, tile: usize) -> impl Iterator<Item = (usize, usize)> {
        let total = self.n * self.l();
        (0..total)
            .step_by(tile.max(1))
            .map(move |j0| (j0, (j0 + tile).min(total)))
    }

    /// Splits columns `j0..j1` into runs inside one sample: `(sample, first pixel,
    /// length, offset in the tile)`. Pixels of one sample are contiguous in NCHW.
    fn runs(&self, j0: usize, j1: usize) -> Vec<(usize, usize, usize, usize)> {
        let l = self.l();
        let mut runs = Vec::new();
        let mut j = j0;
        while j < j1 {
            let (sample, pixel) = (j / l, j % l);
            let len = (l - pixel).min(j1 - j);
            runs.push((sample, pixel, len, j - j0));
            j += len;
        }
        runs
    }

    /// Writes columns `j0..j1` of the patch matrix of `x` (N×C×H×W, row-major) into
    /// `col`, a row-major `K × (j1 - j0)` tile; padding reads as zero.
    fn im2col<F: Float>(&self, x: &[F], j0: usize, j1: usize, col: &mut [F]) {
        let (width, hw, ow) = (j1 - j0, self.h * self.w, self.ow);
        let runs = self.runs(j0, j1);
        for ci in 0..self.c {
            for ki in 0..self.kh {
                for kj in 0..self.kw {
                    let r = (ci * self.kh + ki) * self.kw + kj;
                    let row = &mut col[r * width..][..width];
                    let (lo, hi) = self.valid_ox(kj);
                    for &(sample, pixel, len, offset) in &runs {
                        let plane = &x[(sample * self.c + ci) * hw..][..hw];
                        // Walk the run one output row (or part of one) at a time.
                        let mut p = pixel;
                        while p < pixel + len {
                            let (oy, ox0) = (p / ow, p % ow);
                            let ox1 = ow.min(ox0 + pixel + len - p);
                            let dst = &mut row[offset + p - pixel..][..ox1 - ox0];
                            p += ox1 - ox0;
                            let Some(iy) = self.input_row(oy, ki) else {
                                dst.fill(F::zero());
                                continue;
                            };
                            let src = &plane[iy * self.w..][..self.w];
                            // Valid output columns of this piece, relative to ox0.
                            let (a, b) = (lo.clamp(ox0, ox1) - ox0, hi.clamp(ox0, ox1) - ox0);
                            dst[..a].fill(F::zero());
                            dst[b.max(a)..].fill(F::zero());
                            if a >= b {
                                continue;
                            }
                            let ix0 = (ox0 + a) * self.stride + kj - self.padding;
                            if self.stride == 1 {
                                dst[a..b].copy_from_slice(&src[ix0..ix0 + (b - a)]);
                            } else {
                                for (d, s) in dst[a..b].iter_mut().zip(src[ix0..].iter().step_by(self.stride)) {
                                    *d = *s;
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of [`Geometry::im2col`]: adds every entry of the `K × (j1 - j0)`
    /// tile `dcol` to the input pixel it was read from.
    fn col2im<F: Float>(&self, dcol: &[F], j0: usize, j1: usize, dx: &mut [F]) {
        let (width, hw, ow) = (j1 - j0, self.h * self.w, self.ow);
        let runs = self.runs(j0, j1);
        for ci in 0..self.c {
            for ki in 0..self.kh {
                for kj in 0..self.kw {
                    let r = (ci * self.kh + ki) * self.kw + kj;
                    let row = &dcol[r * width..][..width];
                    let (lo, hi) = self.valid_ox(kj);
                    for &(sample, pixel, len, offset) in &runs {
                        let plane = &mut dx[(sample * self.c + ci) * hw..][..hw];
                        let mut p = pixel;
                        while p < pixel + len {
                            let (oy, ox0) = (p / ow, p % ow);
                            let ox1 = ow.min(ox0 + pixel + len - p);
                            let src = &row[offset + p - pixel..][..ox1 - ox0];
                            p += ox1 - ox0;
                            let Some(iy) = self.input_row(oy, ki) else {
                                continue;
                            };
                            let (a, b) = (lo.clamp(ox0, ox1) - ox0, hi.clamp(ox0, ox1) - ox0);
                            if a >= b {
                                continue;
                            }
                            let dst = &mut plane[iy * self.w..][..self.w];
                            let ix0 = (ox0 + a) * self.stride + kj - self.padding;
                            for (d, s) in dst[ix0..].iter_mut().step_by(self.stride).zip(&src[a..b]) {
                                *d += *s;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Copies an `O × (j1 - j0)` tile of the product into the N×O×OH×OW output.
    fn scatter<F: Float>(&self, tile: &[F], j0: usize, j1: usize, out: &mut [F]) {
        let (width, l) = (j1 - j0, self.l());
        for (sample, pixel, len, offset) in self.runs(j0, j1) {
            for oc in 0..self.o {
                let dst = &mut out[(sample * self.o + oc) * l + pixel..][..len];
                dst.copy_from_slice(&tile[oc * width + offset..][..len]);
            }
        }
    }

    /// Copies columns `j0..j1` of the output-shaped `g` into an `O × (j1 - j0)` tile.
    fn gather<F: Float>(&self, g: &[F], j0: usize, j1: usize, tile: &mut [F]) {
        let (width, l) = (j1 - j0, self.l());
        for (sample, pixel, len, offset) in self.runs(j0, j1) {
            for oc in 0..self.o {
                let src = &g[(sample * self.o + oc) * l + pixel..][..len];
                tile[oc * width + offset..][..len].copy_from_slice(src);
            }
        }
    }
}
