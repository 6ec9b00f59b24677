//! Winograd F(2×2, 3×3) for 3×3, stride-1 convolutions: the fast path of [`super::conv`].
//!
//! Each 2×2 block of output pixels (a *tile*) is computed from the 4×4 input patch
//! `d` under it as `Aᵀ [Σ_c (G w Gᵀ) ⊙ (Bᵀ d B)] A` (Lavin & Gray, 2015): after the
//! transforms, the sum over input channels is, for each of the 16 positions `ξ` of the
//! 4×4 transformed tile, one matrix product `M[ξ] = U[ξ] · V[ξ]` of the transformed
//! filter (`O × C`) and the transformed patches (`C × tiles`). That is 16·O·C
//! multiply-adds per 4 output pixels instead of 36·O·C, i.e. 2.25× fewer flops than
//! im2col; the transforms themselves are additions (and halvings of the filter).
//!
//! - forward: [`forward`] with `U = G w Gᵀ`.
//! - grad_input: for stride 1, the adjoint of a correlation with padding `p` is the
//!   correlation of `g` with the filter flipped in space and transposed in channels,
//!   padding `2 - p`; so it is [`forward`] again, on `g`, with [`transform_weight`]'s `flip`.
//! - grad_weight: the exact adjoint of the forward in `U`: `dU[ξ] = Σ_tiles dM[ξ] · V[ξ]ᵀ`
//!   with `dM = A g Aᵀ` ([`grad_weight_partial`]), then `dw = Gᵀ dU G` ([`weight_from_transformed`]).
//!
//! Memory and speed: tiles are processed in blocks of whole tile rows (about
//! [`TARGET_TILES`] tiles, [`GRAD_WEIGHT_TARGET_TILES`] for grad_weight), so the
//! transformed patches `V` and products `M` of one block (16·C·tiles and 16·O·tiles
//! values, ~0.5 MB each in f32 at 64 channels) stay in cache between the transform, the
//! 16 GEMMs and the inverse transform. The transforms run over whole rows of tiles, so
//! they vectorise across tiles: the input's rows are combined first, straight from the
//! image (whole rows, no padded copy), then across each row; `g`'s tiles are read straight
//! from `g`. [`forward`] and [`grad_weight_partial`] are compiled three times, for
//! AVX-512F, for AVX2 + FMA and for the baseline, and pick the best the CPU has at run time
//! (the GEMMs dispatch by themselves, in the `gemm` crate): this, with the row-first input
//! transform, made all three products 1.31× faster at the study's shape (one thread). What
//! is left at that shape (one thread, `perf`): the GEMMs take about 45 % of forward's time
//! with the `gemm` crate's AVX-512 kernels and 65 % with its AVX2 ones, and grad_weight's
//! `dM·Vᵀ`, whose operands are both contiguous along the sum, spends another ~14 % in
//! the crate's packing. Accuracy: the transforms only add
//! and halve, so in f32 the results differ from im2col's by a few ulps of the sums
//! (see `tests/kernels_conv.rs`, which measures it against f64).

use ndarray::{ArrayView2, ArrayViewMut2};

use crate::kernels::gemm::gemm_with_threads;
use crate::Float;

/// Tiles per block of [`forward`] (rounded down to whole tile rows, at least one row);
/// measured with `benches/conv.rs` at the study's shape (28 tiles a row: 4 rows, 112 tiles,
/// beat 2, 3, 6, 8 and 12 rows by 2-20 % on forward and grad_input).
pub const TARGET_TILES: usize = 128;

/// Tiles per block of [`grad_weight_partial`], which also holds the output adjoint's
/// transform in cache: 3 rows (84 tiles) at the study's shape, 1.09-1.11× faster than
/// 4 rows there (AVX2 and AVX-512 GEMMs alike; 2 rows 1.04×, 6 rows 0.98×).
pub const GRAD_WEIGHT_TARGET_TILES: usize = 96;

/// The sizes of one Winograd pass over `n` samples of a `c × h × w` input with
/// padding `p`, producing `oh × ow` outputs in `th × tw` tiles of 2×2.
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub p: usize,
    pub oh: usize,
    pub ow: usize,
    th: usize,
    tw: usize,
}

impl Dims {
    /// The sizes of a 3×3, stride-1 convolution of an `n × c × h × w` input with padding `p`;
    /// the caller has checked that the kernel fits (`h + 2p ≥ 3`, `w + 2p ≥ 3`).
    pub fn new(n: usize, c: usize, h: usize, w: usize, p: usize) -> Self {
        let (oh, ow) = (h + 2 * p - 2, w + 2 * p - 2);
        Dims {
            n,
            c,
            h,
            w,
            p,
            oh,
            ow,
            th: oh.div_ceil(2),
            tw: ow.div_ceil(2),
        }
    }

    /// The same pass over `n` samples.
    pub fn with_samples(self, n: usize) -> Self {
        Dims { n, ..self }
    }

    /// Tile rows per block (about `target` tiles) and the blocks `r0..r1` over the `n·th` tile rows.
    fn blocks(&self, target: usize) -> impl Iterator<Item = (usize, usize)> {
        let rows = (target / self.tw).max(1);
        let total = self.n * self.th;
        (0..total).step_by(rows).map(move |r0| (r0, (r0 + rows).min(total)))
    }

    fn max_block_tiles(&self, target: usize) -> usize {
        (target / self.tw).max(1).min(self.n * self.th) * self.tw
    }
}

/// The transformed filter `G w Gᵀ` of a standard-layout `o × c × 3 × 3` weight, as 16
/// row-major `o × c` matrices; with `flip`, of the spatially flipped filter with the
/// channels swapped, as 16 `c × o` matrices (the filter of grad_input).
pub fn transform_weight<F: Float>(w: &[F], o: usize, c: usize, flip: bool) -> Vec<F> {
    let half = F::of(0.5);
    let mut u = vec![F::zero(); 16 * o * c];
    for oc in 0..o {
        for ci in 0..c {
            let f = &w[(oc * c + ci) * 9..][..9];
            let tap = |i: usize, j: usize| if flip { f[(2 - i) * 3 + 2 - j] } else { f[i * 3 + j] };
            // G applied to the columns (4 × 3), then to the rows of that (4 × 4).
            let cols: [[F; 4]; 3] = std::array::from_fn(|j| g_times([tap(0, j), tap(1, j), tap(2, j)], half));
            let at = if flip { ci * o + oc } else { oc * c + ci };
            for i in 0..4 {
                let row = g_times([cols[0][i], cols[1][i], cols[2][i]], half);
                for (j, v) in row.into_iter().enumerate() {
                    u[(i * 4 + j) * o * c + at] = v;
                }
            }
        }
    }
    u
}

/// `G · [a, b, c]` with `G = [[1, 0, 0], [½, ½, ½], [½, -½, ½], [0, 0, 1]]`.
fn g_times<F: Float>([a, b, c]: [F; 3], half: F) -> [F; 4] {
    [a, half * (a + b + c), half * (a - b + c), c]
}

/// Scratch buffers of one worker, sized for the largest block.
struct Scratch<F> {
    /// Transformed patches: 16 matrices `c × tiles` (row stride `tiles` of the block).
    v: Vec<F>,
    /// Products (or output adjoints): 16 matrices `o × tiles`.
    m: Vec<F>,
    /// The output transform's `Aᵀ M` of one row of tiles (8 × tw).
    h: Vec<F>,
    /// The four padded rows of [`input_transform`] (`2·tw + 2` each).
    t: Vec<F>,
}

impl<F: Float> Scratch<F> {
    fn new(d: &Dims, o: usize, target: usize) -> Self {
        let t = d.max_block_tiles(target);
        Scratch {
            v: vec![F::zero(); 16 * d.c * t],
            m: vec![F::zero(); 16 * o * t],
            h: vec![F::zero(); 8 * d.tw],
            t: vec![F::zero(); 4 * (2 * d.tw + 2)],
        }
    }
}

/// `Bᵀ d B` of every tile of tile rows `r0..r1` of `x` (n × c × h × w) into `v`
/// (16 × c × tiles, tiles = (r1 - r0)·tw).
///
/// Rows first: the four input rows under a row of tiles are combined (`Bᵀ` on the left)
/// straight from the image, whole rows at a time, into four padded rows `t` (zero outside
/// the image, where nothing is ever written); then `B` on the right, across each padded
/// row, writes the 16 transformed values of every tile of the row to `v`.
#[inline(always)]
fn input_transform<F: Float>(d: &Dims, x: &[F], r0: usize, r1: usize, s: &mut Scratch<F>) {
    let tw = d.tw;
    let tiles = (r1 - r0) * tw;
    let plane_len = d.h * d.w;
    let width = 2 * tw + 2;
    let stride = d.c * tiles;
    // The padded rows' margins are zero from Scratch::new and never written.
    let (t0, rest) = s.t.split_at_mut(width);
    let (t1, rest) = rest.split_at_mut(width);
    let (t2, t3) = rest.split_at_mut(width);
    let cols = d.p..d.p + d.w;
    for r in r0..r1 {
        let (sample, ty) = (r / d.th, r % d.th);
        let offset = (r - r0) * tw;
        for ci in 0..d.c {
            let plane = &x[(sample * d.c + ci) * plane_len..][..plane_len];
            let row = |i: usize| {
                (2 * ty + i)
                    .checked_sub(d.p)
                    .filter(|&iy| iy < d.h)
                    .map(|iy| &plane[iy * d.w..][..d.w])
            };
            let (d0, d1, d2, d3) = (row(0), row(1), row(2), row(3));
            line(&mut t0[cols.clone()], d0, d2, F::neg);
            line(&mut t1[cols.clone()], d1, d2, |v| v);
            line(&mut t2[cols.clone()], d2, d1, F::neg);
            line(&mut t3[cols.clone()], d1, d3, F::neg);
            let base = ci * tiles + offset;
            for (a, t) in [&*t0, &*t1, &*t2, &*t3].into_iter().enumerate() {
                let v = &mut s.v[a * 4 * stride..][..4 * stride];
                let (v0, rest) = v.split_at_mut(stride);
                let (v1, rest) = rest.split_at_mut(stride);
                let (v2, v3) = rest.split_at_mut(stride);
                let (v0, v1) = (&mut v0[base..][..tw], &mut v1[base..][..tw]);
                let (v2, v3) = (&mut v2[base..][..tw], &mut v3[base..][..tw]);
                let quads = t[..2 * tw].chunks_exact(2).zip(t[2..].chunks_exact(2));
                for ((((q01, q23), v0), v1), (v2, v3)) in quads.zip(v0).zip(v1).zip(v2.iter_mut().zip(v3)) {
                    *v0 = q01[0] - q23[0];
                    *v1 = q01[1] + q23[0];
                    *v2 = q23[0] - q01[1];
                    *v3 = q01[1] - q23[1];
                }
            }
        }
    }
}

/// `dst = a + sign(b)` elementwise, where `sign` is the identity or negation and a
/// missing row (outside the image) reads as zero.
#[inline(always)]
fn line<F: Float>(dst: &mut [F], a: Option<&[F]>, b: Option<&[F]>, sign: impl Fn(F) -> F) {
    match (a, b) {
        (Some(a), Some(b)) => {
            for (d, (&a, &b)) in dst.iter_mut().zip(a.iter().zip(b)) {
                *d = a + sign(b);
            }
        }
        (Some(a), None) => dst.copy_from_slice(a),
        (None, Some(b)) => {
            for (d, &b) in dst.iter_mut().zip(b) {
                *d = sign(b);
            }
        }
        (None, None) => dst.fill(F::zero()),
    }
}

/// The Winograd convolution of `x` (n × c × h × w, row-major) with the transformed
/// filter `u` (16 × o × c) into `out` (n × o × oh × ow), every GEMM on `threads` threads.
pub fn forward<F: Float>(d: &Dims, x: &[F], u: &[F], o: usize, out: &mut [F], threads: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has the features this copy was compiled for (checked just above).
            return unsafe { forward_avx512(d, x, u, o, out, threads) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: as above.
            return unsafe { forward_avx2(d, x, u, o, out, threads) };
        }
    }
    forward_body(d, x, u, o, out, threads);
}

/// [`forward_body`] compiled for AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn forward_avx512<F: Float>(d: &Dims, x: &[F], u: &[F], o: usize, out: &mut [F], threads: usize) {
    forward_body(d, x, u, o, out, threads);
}

/// [`forward_body`] compiled for AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn forward_avx2<F: Float>(d: &Dims, x: &[F], u: &[F], o: usize, out: &mut [F], threads: usize) {
    forward_body(d, x, u, o, out, threads);
}

/// [`forward`] for whichever instruction set it is inlined into.
#[inline(always)]
fn forward_body<F: Float>(d: &Dims, x: &[F], u: &[F], o: usize, out: &mut [F], threads: usize) {
    let mut s = Scratch::new(d, o, TARGET_TILES);
    let (tw, c) = (d.tw, d.c);
    let out_plane = d.oh * d.ow;
    for (r0, r1) in d.blocks(TARGET_TILES) {
        let tiles = (r1 - r0) * tw;
        input_transform(d, x, r0, r1, &mut s);
        for xi in 0..16 {
            let u_view = ArrayView2::from_shape((o, c), &u[xi * o * c..][..o * c])
                .unwrap_or_else(|_| unreachable!("u holds 16 o × c matrices"));
            let v_view = ArrayView2::from_shape((c, tiles), &s.v[xi * c * tiles..][..c * tiles])
                .unwrap_or_else(|_| unreachable!("v holds 16 c × tiles matrices"));
            let m_view = ArrayViewMut2::from_shape((o, tiles), &mut s.m[xi * o * tiles..][..o * tiles])
                .unwrap_or_else(|_| unreachable!("m holds 16 o × tiles matrices"));
            gemm_with_threads(threads, F::one(), u_view, v_view, F::zero(), m_view);
        }
        // Aᵀ M A: columns first (over the 4 rows of M, across the row of tiles), then rows,
        // written straight to `out`.
        for r in r0..r1 {
            let (sample, ty) = (r / d.th, r % d.th);
            let offset = (r - r0) * tw;
            for oc in 0..o {
                let mrow = |i: usize, j: usize| &s.m[((i * 4 + j) * o + oc) * tiles + offset..][..tw];
                // cols[a][j] = row a of Aᵀ applied to column j of M.
                for j in 0..4 {
                    let (m0, m1, m2, m3) = (mrow(0, j), mrow(1, j), mrow(2, j), mrow(3, j));
                    let (c0, c1) = s.h.split_at_mut(4 * tw);
                    let (c0, c1) = (&mut c0[j * tw..][..tw], &mut c1[j * tw..][..tw]);
                    for tx in 0..tw {
                        c0[tx] = m0[tx] + m1[tx] + m2[tx];
                        c1[tx] = m1[tx] - m2[tx] - m3[tx];
                    }
                }
                let plane = &mut out[(sample * o + oc) * out_plane..][..out_plane];
                for a in 0..2 {
                    let oy = 2 * ty + a;
                    if oy >= d.oh {
                        continue;
                    }
                    let cols = &s.h[a * 4 * tw..][..4 * tw];
                    let (s0, rest) = cols.split_at(tw);
                    let (s1, rest) = rest.split_at(tw);
                    let (s2, s3) = rest.split_at(tw);
                    let dst = &mut plane[oy * d.ow..][..d.ow];
                    let mut pairs = dst.chunks_exact_mut(2);
                    for (tx, pair) in (&mut pairs).enumerate() {
                        pair[0] = s0[tx] + s1[tx] + s2[tx];
                        pair[1] = s1[tx] - s2[tx] - s3[tx];
                    }
                    if let [last] = pairs.into_remainder() {
                        let tx = tw - 1;
                        *last = s0[tx] + s1[tx] + s2[tx];
                    }
                }
            }
        }
    }
}

/// `dU = Σ_tiles (A g Aᵀ)[ξ] · V[ξ]ᵀ` over the samples of `x` (n × c × h × w) and the
/// output adjoint `g` (n × o × oh × ow): 16 row-major `o × c` matrices.
pub fn grad_weight_partial<F: Float>(d: &Dims, x: &[F], g: &[F], o: usize, threads: usize) -> Vec<F> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has the features this copy was compiled for (checked just above).
            return unsafe { grad_weight_partial_avx512(d, x, g, o, threads) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: as above.
            return unsafe { grad_weight_partial_avx2(d, x, g, o, threads) };
        }
    }
    grad_weight_partial_body(d, x, g, o, threads)
}

/// [`grad_weight_partial_body`] compiled for AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn grad_weight_partial_avx512<F: Float>(d: &Dims, x: &[F], g: &[F], o: usize, threads: usize) -> Vec<F> {
    grad_weight_partial_body(d, x, g, o, threads)
}

/// [`grad_weight_partial_body`] compiled for AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn grad_weight_partial_avx2<F: Float>(d: &Dims, x: &[F], g: &[F], o: usize, threads: usize) -> Vec<F> {
    grad_weight_partial_body(d, x, g, o, threads)
}

/// [`grad_weight_partial`] for whichever instruction set it is inlined into.
#[inline(always)]
fn grad_weight_partial_body<F: Float>(d: &Dims, x: &[F], g: &[F], o: usize, threads: usize) -> Vec<F> {
    let mut s = Scratch::new(d, o, GRAD_WEIGHT_TARGET_TILES);
    let (tw, c) = (d.tw, d.c);
    let mut du = vec![F::zero(); 16 * o * c];
    let zeros = vec![F::zero(); d.ow];
    for (r0, r1) in d.blocks(GRAD_WEIGHT_TARGET_TILES) {
        let tiles = (r1 - r0) * tw;
        input_transform(d, x, r0, r1, &mut s);
        output_adjoint_transform(d, g, o, r0, r1, &mut s.m, &zeros);
        for xi in 0..16 {
            let dm = ArrayView2::from_shape((o, tiles), &s.m[xi * o * tiles..][..o * tiles])
                .unwrap_or_else(|_| unreachable!("m holds 16 o × tiles matrices"));
            let v = ArrayView2::from_shape((c, tiles), &s.v[xi * c * tiles..][..c * tiles])
                .unwrap_or_else(|_| unreachable!("v holds 16 c × tiles matrices"));
            let du_view = ArrayViewMut2::from_shape((o, c), &mut du[xi * o * c..][..o * c])
                .unwrap_or_else(|_| unreachable!("du holds 16 o × c matrices"));
            gemm_with_threads(threads, F::one(), dm, v.t(), F::one(), du_view);
        }
    }
    du
}

/// `dM = A g Aᵀ` (the adjoint of the output transform) of every tile of tile rows `r0..r1`
/// of the output adjoint `g` (n × o × oh × ow) into `m` (16 × o × tiles): for each of the
/// four columns `j` of the 4×4 result, `Aᵀ`'s row `j` across the two rows of the 2×2 tile
/// (`q`), then its rows down them, read straight from `g` (a row or column beyond the
/// output's edge reads as zero: `zeros` has `ow` of them).
#[inline(always)]
fn output_adjoint_transform<F: Float>(d: &Dims, g: &[F], o: usize, r0: usize, r1: usize, m: &mut [F], zeros: &[F]) {
    let tw = d.tw;
    let tiles = (r1 - r0) * tw;
    let stride = o * tiles;
    let out_plane = d.oh * d.ow;
    for r in r0..r1 {
        let (sample, ty) = (r / d.th, r % d.th);
        let offset = (r - r0) * tw;
        for oc in 0..o {
            let plane = &g[(sample * o + oc) * out_plane..][..out_plane];
            let row0 = &plane[2 * ty * d.ow..][..d.ow];
            let row1 = if 2 * ty + 1 < d.oh {
                &plane[(2 * ty + 1) * d.ow..][..d.ow]
            } else {
                &zeros[..d.ow]
            };
            // Column j of the result, row i, lives at m[(i·4 + j)·stride + at..][..tw].
            let at = oc * tiles + offset;
            dm_column(m, at, stride, tw, row0, row1, |a, _| a);
            dm_column(m, at + stride, stride, tw, row0, row1, |a, b| a + b);
            dm_column(m, at + 2 * stride, stride, tw, row0, row1, |a, b| a - b);
            dm_column(m, at + 3 * stride, stride, tw, row0, row1, |_, b| -b);
        }
    }
}

/// One column `j` of `dM` for a row of tiles: `q(g[2t], g[2t+1])` on each of the two
/// rows (`q` is `Aᵀ`'s row `j`; a missing last column reads as zero), then the four rows
/// `q₀, q₀ + q₁, q₀ - q₁, -q₁` into `m[at + 4·i·stride..][..tw]`.
#[inline(always)]
fn dm_column<F: Float>(
    m: &mut [F],
    at: usize,
    stride: usize,
    tw: usize,
    row0: &[F],
    row1: &[F],
    q: impl Fn(F, F) -> F,
) {
    let (m0, rest) = m[at..].split_at_mut(4 * stride);
    let (m1, rest) = rest.split_at_mut(4 * stride);
    let (m2, m3) = rest.split_at_mut(4 * stride);
    let (m0, m1, m2, m3) = (&mut m0[..tw], &mut m1[..tw], &mut m2[..tw], &mut m3[..tw]);
    let pairs = row0.chunks_exact(2).zip(row1.chunks_exact(2));
    let dsts = m0.iter_mut().zip(m1.iter_mut()).zip(m2.iter_mut().zip(m3.iter_mut()));
    for ((p0, p1), ((d0, d1), (d2, d3))) in pairs.zip(dsts) {
        let (x0, x1) = (q(p0[0], p0[1]), q(p1[0], p1[1]));
        *d0 = x0;
        *d1 = x0 + x1;
        *d2 = x0 - x1;
        *d3 = -x1;
    }
    if row0.len() % 2 == 1 {
        let (last, z) = (row0.len() - 1, F::zero());
        let (x0, x1) = (q(row0[last], z), q(row1[last], z));
        m0[tw - 1] = x0;
        m1[tw - 1] = x0 + x1;
        m2[tw - 1] = x0 - x1;
        m3[tw - 1] = -x1;
    }
}

/// `dw = Gᵀ dU G` for every (o, c): the standard-layout `o × c × 3 × 3` weight adjoint.
pub fn weight_from_transformed<F: Float>(du: &[F], o: usize, c: usize) -> Vec<F> {
    let half = F::of(0.5);
    let apply = |u: [F; 4]| {
        [
            u[0] + half * (u[1] + u[2]),
            half * (u[1] - u[2]),
            half * (u[1] + u[2]) + u[3],
        ]
    };
    let mut dw = vec![F::zero(); o * c * 9];
    for oc in 0..o {
        for ci in 0..c {
            let at = |xi: usize| du[xi * o * c + oc * c + ci];
            let rows: [[F; 3]; 4] = std::array::from_fn(|i| apply(std::array::from_fn(|j| at(i * 4 + j))));
            let dst = &mut dw[(oc * c + ci) * 9..][..9];
            for b in 0..3 {
                let col = apply(std::array::from_fn(|i| rows[i][b]));
                for a in 0..3 {
                    dst[a * 3 + b] = col[a];
                }
            }
        }
    }
    dw
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<F: Float>(len: usize, seed: usize) -> Vec<F> {
        (0..len)
            .map(|i| F::of(((i * 7 + seed * 13) % 23) as f64 * 0.17 - 1.9))
            .collect()
    }

    /// The copies compiled for AVX-512F and AVX2 + FMA (whichever this CPU runs: the
    /// dispatching entry points) give the same bits as the baseline copy (the `_body`
    /// functions called directly): the transforms only add and subtract, elementwise, so
    /// the vector width changes no rounding. Odd sizes, padding 0-2, 1-3 samples.
    fn variants_agree<F: Float>() {
        for (n, c, h, w, o, p) in [
            (1, 3, 5, 7, 2, 1),
            (3, 5, 6, 9, 4, 0),
            (2, 9, 7, 4, 3, 2),
            (1, 17, 11, 10, 5, 1),
        ] {
            let d = Dims::new(n, c, h, w, p);
            let x = values::<F>(n * c * h * w, 1);
            let u = values::<F>(16 * o * c, 2);
            let g = values::<F>(n * o * d.oh * d.ow, 3);
            let mut dispatched = vec![F::zero(); n * o * d.oh * d.ow];
            let mut baseline = vec![F::nan(); n * o * d.oh * d.ow];
            forward(&d, &x, &u, o, &mut dispatched, 1);
            forward_body(&d, &x, &u, o, &mut baseline, 1);
            assert_eq!(dispatched, baseline, "forward {:?}", (n, c, h, w, o, p));
            let dispatched = grad_weight_partial(&d, &x, &g, o, 1);
            let baseline = grad_weight_partial_body(&d, &x, &g, o, 1);
            assert_eq!(dispatched, baseline, "grad_weight {:?}", (n, c, h, w, o, p));
        }
    }

    #[test]
    fn instruction_set_variants_agree_f32() {
        variants_agree::<f32>();
    }

    #[test]
    fn instruction_set_variants_agree_f64() {
        variants_agree::<f64>();
    }
}
