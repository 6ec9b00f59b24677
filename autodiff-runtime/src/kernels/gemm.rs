//! The one general matrix multiply that `matmul` and `conv2d` call:
//! `c ← alpha·a·b + beta·c` on strided views, and the process-wide thread count.
//!
//! Backend choice (measured on the study's shapes, see `benches/gemm.rs`): the
//! `gemm` crate (pure Rust) beats ndarray's default `dot` (the `matrixmultiply` crate)
//! on every shape we measured, most on the large im2col product of `conv2d`. The crate
//! picks its kernels at run time (`feature_detected!` in `gemm-common`): AVX2 + FMA
//! where the CPU has them, and AVX-512 only if it was built with its `x86-v4` feature
//! (`gemm-common/src/gemm.rs`: the `avx512f` branch is behind `cfg(feature = "x86-v4")`),
//! which needs no nightly and no `target-cpu` flag; this crate's dependency enables it
//! (`autodiff-runtime/Cargo.toml`). On an AVX-512 machine
//! (Intel Xeon, 2 cores, one thread) that doubles f32 rates: 105-115 to 185-220 GFLOP/s
//! on the small_mlp and matmul_chain products, 47-56 % of MKL's rate to 84-110 %
//! (`benches/pytorch/kernels_vs_pytorch.py gemm`, whose doc has both tables); on a
//! CPU without AVX-512 the same build runs the AVX2 kernels. Tiny products (at most 2048 multiply-adds, 4096
//! in the `a·bᵀ` layout) of some shapes go to `matrixmultiply` instead, which has the
//! lower fixed cost there (`benches/gemm_small.rs`, measured figures at `takes_small_path`). Both accept arbitrary (even negative)
//! strides, so transposed views are multiplied without a copy. OpenBLAS is not an
//! option from crates alone here (`openblas-src` downloads its sources at build time).
//!
//! Every product goes through [`Float::gemm`], so that a type can say how it multiplies
//! matrices. `f32`/`f64` take the real path below ([`gemm_real`]). A matrix of dual
//! numbers is split into its value and tangent matrices, and the product is three real
//! GEMMs, `A·B` for the values and `A'·B + A·B'` for the tangents ([`gemm_dual`]), so a
//! JVP or HVP runs at the real backend's speed rather than through a scalar loop. Other
//! types (the `Float` trait is public, so a user could add one) fall back to
//! `matrixmultiply` through ndarray's `general_mat_mul`.

use std::any::TypeId;
use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::{Array2, ArrayView2, ArrayViewMut2, ShapeBuilder};

use crate::dual::{parts, parts_mut, Dual};
use crate::Float;

/// Threads the GEMM backend may use; 1 (single-threaded) unless [`set_num_threads`] says otherwise.
static NUM_THREADS: AtomicUsize = AtomicUsize::new(1);

/// Sets how many threads every later GEMM call may use (process-wide; `0` is taken as 1).
///
/// With `n > 1`, a product of at least `PARALLEL_WORK` (2²⁰) multiply-adds is split into
/// `n` blocks of output rows or columns, one on the calling thread and the others on the
/// worker threads of `kernels::team` (started on first use; they spin for a couple of
/// milliseconds between calls, then sleep), and conv2d splits its batch the same way.
/// Smaller products stay on the calling thread: they would gain less than the
/// synchronisation costs.
pub fn set_num_threads(n: usize) {
    NUM_THREADS.store(n.max(1), Ordering::Relaxed);
}

/// The thread count set by [`set_num_threads`] (default 1).
pub fn num_threads() -> usize {
    NUM_THREADS.load(Ordering::Relaxed)
}

/// Which library performs a matrix product. [`gemm()`] uses [`Backend::Gemm`] except for
/// tiny products of some shapes, where [`Backend::MatrixMultiply`] has the lower fixed
/// cost (see `takes_small_path` in this file); [`gemm_with_backend`] forces one, so that
/// the benches and the tests can compare them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The `gemm` crate (the default).
    Gemm,
    /// ndarray's `general_mat_mul`, i.e. the `matrixmultiply` crate behind `dot`.
    MatrixMultiply,
}

/// `c ← alpha·a·b + beta·c` for views with any strides, on the fastest backend.
///
/// When `beta` is zero, `c` is not read (so its old contents, even NaN, do not leak in).
///
/// # Panics
/// If the shapes are not `m×k`, `k×n` and `m×n`; the message names all three.
pub fn gemm<F: Float>(alpha: F, a: ArrayView2<F>, b: ArrayView2<F>, beta: F, c: ArrayViewMut2<F>) {
    gemm_with_threads(num_threads(), alpha, a, b, beta, c);
}

/// [`gemm()`] on `threads` threads whatever [`set_num_threads`] says: for callers that
/// split their work across threads themselves (conv2d runs one GEMM per thread).
pub(crate) fn gemm_with_threads<F: Float>(
    threads: usize,
    alpha: F,
    a: ArrayView2<F>,
    b: ArrayView2<F>,
    beta: F,
    c: ArrayViewMut2<F>,
) {
    F::gemm(None, threads, alpha, a, b, beta, c);
}

/// Products with at most this many multiply-adds (`m·n·k`) may take the small path.
pub(crate) const SMALL_WORK: usize = 2048;

/// In the `a·bᵀ` layout (`matmul_grad_lhs`), the small path reaches this many
/// multiply-adds (16³): there `matrixmultiply` still wins 1.5–1.7× (see below).
const SMALL_WORK_DOT_LAYOUT: usize = 4096;

/// In the `a·bᵀ` layout, outputs of at most this many elements stay with the `gemm`
/// crate, whose dot-product kernel is the cheaper one there (see below).
const DOT_KERNEL_MAX_OUTPUT: usize = 64;

/// Whether [`gemm_with_threads`] hands `a·b` to `matrixmultiply` rather than the `gemm` crate.
///
/// Measured with `benches/gemm_small.rs` (both libraries called in turn, batch by batch,
/// 201 rounds, median ns per call; single-threaded, f32 and f64, C-order operands used
/// as `a·b`, `aᵀ·b` and `a·bᵀ`; 2-core AMD EPYC with AVX2/FMA, other jobs running):
/// - up to 2048 multiply-adds each call costs a fixed 200–800 ns, and which library is
///   cheaper depends on the shape, not on the size. For `a·b` and `aᵀ·b`,
///   `matrixmultiply` wins when the output is at least as tall as wide, `m ≥ n` (16×8·8×4,
///   16×4·4×16, 32×4·4×16, 64×8·8×4: 1.2–2×), i.e. the forward product and
///   `matmul_grad_rhs` of a small dense layer; the `gemm` crate wins when `m < n`
///   (4×16·16×8 1.4–1.5×, 8×16·16×16 1.05–1.2×);
/// - in the `a·bᵀ` layout (both operands contiguous along `k`: `matmul_grad_lhs`) the
///   `gemm` crate runs a dot-product kernel, which wins while the output is tiny, at most
///   64 elements (16×8·8×4, 8×16·16×4, 16×16·16×4, 4×16·16×8: 1.2–2.4×), and loses from
///   128 elements on (16×4·4×16, 16×8·8×16, 32×4·4×16, 64×8·8×4, 16×16·16×8: `matrixmultiply`
///   1.1–2.6× faster), up to 16³ (1.5–1.7×; the one exception measured, 16×4·4×8 in f64,
///   is 1.13× the other way while f32 is 1.8× this way);
/// - at 16³ the `gemm` crate already wins `a·b` and `aᵀ·b` by 1.0–1.25×; at 24³ and 32³
///   they are within ±20% with no clear winner; from 64³ on the `gemm` crate is as fast or
///   up to 30% faster.
///
/// A plain triple loop (and a row-wise axpy loop) measured slower than one of the two
/// libraries on every shape, even 16×8·8×4, so neither is used.
fn takes_small_path<F: Float>(a: &ArrayView2<F>, b: &ArrayView2<F>) -> bool {
    let (m, k) = a.dim();
    let n = b.ncols();
    let work = m.saturating_mul(n).saturating_mul(k);
    let contiguous_along_k = a.strides()[1] == 1 && b.strides()[0] == 1;
    if contiguous_along_k {
        work <= SMALL_WORK_DOT_LAYOUT && m.saturating_mul(n) > DOT_KERNEL_MAX_OUTPUT
    } else {
        work <= SMALL_WORK && m >= n
    }
}

/// [`gemm()`] on an explicitly chosen backend.
///
/// # Panics
/// If the shapes are not `m×k`, `k×n` and `m×n`; the message names all three.
pub fn gemm_with_backend<F: Float>(
    backend: Backend,
    alpha: F,
    a: ArrayView2<F>,
    b: ArrayView2<F>,
    beta: F,
    c: ArrayViewMut2<F>,
) {
    F::gemm(Some(backend), num_threads(), alpha, a, b, beta, c);
}

/// Panics unless the shapes are `m×k`, `k×n` and `m×n`, naming all three; returns `(m, k, n)`.
fn check_shapes<A, B, C>(a: &ArrayView2<A>, b: &ArrayView2<B>, c: &ArrayView2<C>) -> (usize, usize, usize) {
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    assert!(
        k == k2 && c.dim() == (m, n),
        "gemm: shapes {:?} · {:?} do not give the output shape {:?}",
        a.shape(),
        b.shape(),
        c.shape()
    );
    (m, k, n)
}

/// The real product behind [`Float::gemm`]'s default: `backend` (or, for `None`, the
/// small-path choice of [`takes_small_path`]) for `f32`/`f64`, ndarray's generic loop
/// for other types.
pub(crate) fn gemm_real<F: Float>(
    backend: Option<Backend>,
    threads: usize,
    alpha: F,
    a: ArrayView2<F>,
    b: ArrayView2<F>,
    beta: F,
    mut c: ArrayViewMut2<F>,
) {
    let (m, k, n) = check_shapes(&a, &b, &c.view());
    if m == 0 || n == 0 {
        return;
    }
    let backend = backend.unwrap_or(if takes_small_path(&a, &b) {
        Backend::MatrixMultiply
    } else {
        Backend::Gemm
    });
    if k == 0 {
        // An empty sum: only the `beta·c` term is left (and `c` is not read when beta is 0).
        if beta == F::zero() {
            c.fill(F::zero());
        } else {
            c.mapv_inplace(|v| v * beta);
        }
        return;
    }
    let is_native = TypeId::of::<F>() == TypeId::of::<f32>() || TypeId::of::<F>() == TypeId::of::<f64>();
    if backend == Backend::MatrixMultiply || !is_native {
        if beta == F::zero() && !is_native {
            // For f32/f64, general_mat_mul calls matrixmultiply's sgemm/dgemm, which do not
            // read `c` when beta is 0 (documented there, and tested below with a NaN `c`);
            // ndarray's fallback loop for other types does (0·NaN = NaN), so clear it first.
            c.fill(F::zero());
        }
        ndarray::linalg::general_mat_mul(alpha, &a, &b, beta, &mut c);
        return;
    }
    // A matrix-vector product is split along its output (below), so each block reads whole
    // rows of the matrix when the matrix is contiguous along k.
    let rows_contiguous = if n == 1 {
        a.strides()[1] == 1
    } else {
        b.strides()[0] == 1
    };
    let parts = parts_for(threads, m, k, n, rows_contiguous);
    if parts <= 1 {
        gemm_crate(alpha, a, b, beta, c);
        return;
    }
    // Split the output into `parts` blocks of whole rows or columns (along its longer
    // side, rows when square: the RNN's 256×32·32×256 `hᵀ·g` ran 1.06× as fast on two
    // threads split by columns, 1.67× by rows; in multiples of a SIMD register's 16 f32
    // lanes) and multiply each block on
    // its own thread; each block reads all of the other operand, which is cheap next to
    // the product (packing it costs O(k·n), the block O(m·k·n / parts)).
    let by_columns = n > m;
    let long = if by_columns { n } else { m };
    let block = long.div_ceil(parts).next_multiple_of(16);
    let axis = ndarray::Axis(if by_columns { 1 } else { 0 });
    super::team::for_each_part(c.axis_chunks_iter_mut(axis, block).collect(), &|i, out| {
        let range = i * block..(i * block + block).min(long);
        if by_columns {
            gemm_crate(alpha, a, b.slice(ndarray::s![.., range]), beta, out.view_mut());
        } else {
            gemm_crate(alpha, a.slice(ndarray::s![range, ..]), b, beta, out.view_mut());
        }
    });
}

/// Products with fewer multiply-adds (`m·k·n`) than this run on one thread whatever
/// [`set_num_threads`] says: below it, splitting gains little or loses. Measured with
/// `benches/gemm.rs threads` (one thread against two in alternating rounds, f32, Intel Xeon
/// with AVX-512, 2 vCPUs, 2026-12-02): 32×64·64×64 (2¹⁷) ran 0.51× as fast on two
/// threads, 32×128·128×128 (2¹⁹) 1.16×, 64×128·128×128 (2²⁰) 1.45×, and every product of
/// the study's backward passes (2²¹ and up) 1.6–1.8×.
const PARALLEL_WORK: usize = 1 << 20;

/// Matrix-vector products (an output of one row or one column) whose blocks each read
/// whole rows of the matrix (`M·x` with `M` contiguous along `k`, or `xᵀ·M` with `M`
/// contiguous along `k`: the static code's `factors_times`) split from this many
/// multiply-adds. They read each matrix element once, so they are bound by how fast a
/// core reads memory, not by its multipliers, and two cores read twice as much. Measured
/// (Intel Xeon, AVX-512, 2 vCPUs, 2026-12-02 17:15 UTC, f32, one thread against two in
/// alternating rounds of 100 calls, each after 20 µs of other work, median over 11 rounds):
/// `M·x` for M 128×256 (2¹⁵) ran 0.91× as fast on two threads, 256×256 and 512×128 (2¹⁶)
/// 1.18× and 1.36×, 256×512 (2¹⁷) 1.43×. Split the same way (blocks of output rows),
/// `Mᵀ·x` (each block reading part of every row: `factors_t_times`) ran 0.48–0.69× as fast
/// at the same sizes, so it keeps [`PARALLEL_WORK`].
const PARALLEL_MATVEC_WORK: usize = 1 << 16;

/// How many threads `gemm_real` splits an `m×k·k×n` product over: 1 below
/// [`PARALLEL_WORK`] (below [`PARALLEL_MATVEC_WORK`] for a matrix-vector product whose
/// blocks read whole rows, `rows_contiguous`), else up to `threads`, with blocks of at
/// least 16 rows or columns.
fn parts_for(threads: usize, m: usize, k: usize, n: usize, rows_contiguous: bool) -> usize {
    let least = if m.min(n) == 1 && rows_contiguous {
        PARALLEL_MATVEC_WORK
    } else {
        PARALLEL_WORK
    };
    if threads <= 1 || m.saturating_mul(k).saturating_mul(n) < least {
        return 1;
    }
    threads.min(m.max(n).div_ceil(16))
}

/// `c ← alpha·a·b + beta·c` by the `gemm` crate, on the calling thread. `F` must be f32 or
/// f64 and the shapes checked (`gemm_real` does both).
fn gemm_crate<F: Float>(alpha: F, a: ArrayView2<F>, b: ArrayView2<F>, beta: F, c: ArrayViewMut2<F>) {
    if short_output_of_dot_layout(&a, &b, &c) {
        // The crate works on a column-major output: for a row-major `c` it multiplies
        // `cᵀ = bᵀ·aᵀ`, whose left operand `bᵀ` is then row-major and packed element by
        // element (slowly) into the kernel's column panels. When `b` is the larger operand
        // (a·bᵀ with few output rows: `dh·w1ᵀ` of a dense layer's backward), let the crate
        // write a column-major temporary instead, so that it packs only the small `a`, and
        // transpose that into `c` in 8×8 tiles. Measured (Intel Xeon, AVX-512, one thread,
        // f32, `benches/gemm.rs threads`): 32×128·128×784 62 → 53–55 µs, 32×256·256×256
        // 47 → 32–36 µs; against MKL (`kernels_vs_pytorch.py gemm`, same run) 71 → 82 %,
        // 84 → 90 % (64×256·256×128) and 94 % (32×256·256×256). 128×256·256×128, where
        // the rule below keeps the crate's own path, would go 54 → 59 µs.
        //
        // The transpose itself then took about 8.5 of the 32×128·128×784 product's 46 µs
        // in scalar code; in registers (`add_transposed_tiles`) it takes 61 → 42 µs
        // (`benches/gemm.rs threads`, one thread; 36 → 29 µs for 32×256·256×256).
        // Against MKL (`kernels_vs_pytorch.py gemm --forms nt`, 2026-12-02 17:00 UTC, the
        // same binary with the scalar transpose forced and not, two runs each, each % against
        // the MKL of its own run), f32: 32×128·128×784 78–83 → 102–103 %, 64×256·256×128
        // 87 → 96 %, 32×256·256×256 93–95 → 107 %; f64: 95–98 → 111 %, 94 → 95 %,
        // 94–117 → 113–114 %.
        let shape = (c.nrows(), c.ncols()).f();
        let mut product = Array2::<F>::uninit(shape);
        // SAFETY: the view covers exactly the temporary's m·n column-major elements; the
        // crate writes every one of them and, with `beta = 0`, reads none, so all are
        // initialised before `assume_init`.
        let product = unsafe {
            let out = ArrayViewMut2::from_shape_ptr(shape, product.as_mut_ptr().cast::<F>());
            gemm_raw(alpha, a, b, F::zero(), out);
            product.assume_init()
        };
        add_transposed_tiles(&product, beta, c);
        return;
    }
    gemm_raw(alpha, a, b, beta, c);
}

/// Whether `a·b` is `a·bᵀ`-shaped (both operands contiguous along `k`, `c` row-major) with
/// an output short enough that transposing it plus packing `a` (`m·(n + k)` elements)
/// costs less than the crate packing the transposed `b` (`n·k`).
fn short_output_of_dot_layout<F>(a: &ArrayView2<F>, b: &ArrayView2<F>, c: &ArrayViewMut2<F>) -> bool {
    let (m, k) = a.dim();
    let n = b.ncols();
    let dot_layout = a.strides()[1] == 1 && b.strides()[0] == 1 && c.strides()[1] == 1 && c.strides()[0] >= 0;
    dot_layout && m.saturating_mul(n.saturating_add(k)) < n.saturating_mul(k)
}

/// `c ← product + beta·c` for a column-major `product` (`c` not read when beta is 0).
///
/// f32 and f64 on x86-64 transpose whole tiles in registers (8×8 f32, 4×4 f64: unpack,
/// shuffle, lane permute; [`add_transposed_avx512`] / [`add_transposed_avx2`], chosen at
/// run time), the rest (other CPUs and types, the ragged edges) in
/// [`add_transposed_tiles_scalar`]; both give the same bits (a copy, or one product and
/// one sum per element, unfused). The figures are at [`gemm_crate`]'s call.
fn add_transposed_tiles<F: Float>(product: &Array2<F>, beta: F, mut c: ArrayViewMut2<F>) {
    #[cfg(target_arch = "x86_64")]
    {
        let (m, n) = c.dim();
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        let avx2 = std::arch::is_x86_feature_detected!("avx2");
        let source = product
            .as_slice_memory_order()
            .unwrap_or_else(|| unreachable!("an owned temporary"));
        // A row stride that is not a usize (negative) is excluded by
        // `short_output_of_dot_layout`; with one row it is never used.
        let ldc = usize::try_from(c.strides()[0]).unwrap_or(0);
        if (avx512 || avx2) && product.dim() == (m, n) && c.strides()[1] == 1 && (m <= 1 || ldc >= n) {
            let destination = c.as_mut_ptr();
            if TypeId::of::<F>() == TypeId::of::<f32>() {
                // SAFETY: F is f32 (checked), so the casts reinterpret f32 as f32.
                let (source, beta) = unsafe {
                    (
                        &*(source as *const [F] as *const [f32]),
                        *(&beta as *const F).cast::<f32>(),
                    )
                };
                let destination = destination.cast::<f32>();
                // SAFETY: `source` holds m·n column-major elements; `destination` is the
                // first element of the live m×n view `c` with unit column stride and row
                // stride `ldc` ≥ n, so rows i < m and columns j < n stay inside it. The
                // CPU has the features of the copy chosen (checked just above).
                unsafe {
                    if avx512 {
                        add_transposed_avx512_f32(source, m, n, beta, destination, ldc);
                    } else {
                        add_transposed_avx2_f32(source, m, n, beta, destination, ldc);
                    }
                }
                return;
            }
            if TypeId::of::<F>() == TypeId::of::<f64>() {
                // SAFETY: as above, for f64.
                let (source, beta) = unsafe {
                    (
                        &*(source as *const [F] as *const [f64]),
                        *(&beta as *const F).cast::<f64>(),
                    )
                };
                let destination = destination.cast::<f64>();
                // SAFETY: as above.
                unsafe {
                    if avx512 {
                        add_transposed_avx512_f64(source, m, n, beta, destination, ldc);
                    } else {
                        add_transposed_avx2_f64(source, m, n, beta, destination, ldc);
                    }
                }
                return;
            }
        }
    }
    add_transposed_tiles_scalar(product, beta, c);
}

/// [`add_transposed_tiles`] without SIMD: in 8×8 tiles, so that reads and writes both stay
/// within a few cache lines. The baseline the SIMD copies are tested against.
fn add_transposed_tiles_scalar<F: Float>(product: &Array2<F>, beta: F, mut c: ArrayViewMut2<F>) {
    const TILE: usize = 8;
    let (m, n) = c.dim();
    let product = product
        .as_slice_memory_order()
        .unwrap_or_else(|| unreachable!("an owned temporary"));
    let mut rows: Vec<&mut [F]> = c
        .rows_mut()
        .into_iter()
        .map(|row| row.into_slice().unwrap_or_else(|| unreachable!("row-major c")))
        .collect();
    for i0 in (0..m).step_by(TILE) {
        let height = TILE.min(m - i0);
        for j0 in (0..n).step_by(TILE) {
            let width = TILE.min(n - j0);
            // Column j of the tile is contiguous in the column-major product.
            let mut tile = [[F::zero(); TILE]; TILE];
            for (j, column) in tile.iter_mut().enumerate().take(width) {
                let start = (j0 + j) * m + i0;
                column[..height].copy_from_slice(&product[start..start + height]);
            }
            for (i, row) in rows[i0..i0 + height].iter_mut().enumerate() {
                let out = &mut row[j0..j0 + width];
                if beta == F::zero() {
                    out.iter_mut().zip(&tile).for_each(|(o, column)| *o = column[i]);
                } else {
                    out.iter_mut()
                        .zip(&tile)
                        .for_each(|(o, column)| *o = column[i] + beta * *o);
                }
            }
        }
    }
}

/// `c[i][j] ← p[j·m + i] (+ beta·c[i][j])` for `i` in `rows`, `j` in `cols`: the ragged
/// edges of the SIMD copies, with the scalar path's arithmetic.
///
/// # Safety
/// `p` holds m·n elements; rows `i < m` of `c` (stride `ldc`) hold columns `j < n`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn add_transposed_edge<T: Float>(
    p: &[T],
    m: usize,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    beta: T,
    c: *mut T,
    ldc: usize,
) {
    for i in rows {
        for j in cols.clone() {
            let v = p[j * m + i];
            let out = c.add(i * ldc + j);
            *out = if beta == T::zero() { v } else { v + beta * *out };
        }
    }
}

/// The f32 SIMD copy: 8×8 tiles through 256-bit registers, the 8 columns of a tile
/// loaded (contiguous in the column-major product), transposed (`unpacklo/hi`,
/// `shuffle`, `permute2f128`: 24 shuffles per 64 elements) and stored as 8 row pieces.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn add_transposed_body_f32(p: &[f32], m: usize, n: usize, beta: f32, c: *mut f32, ldc: usize) {
    use std::arch::x86_64::*;
    const T: usize = 8;
    let (full_m, full_n) = (m - m % T, n - n % T);
    let vbeta = _mm256_set1_ps(beta);
    for j0 in (0..full_n).step_by(T) {
        for i0 in (0..full_m).step_by(T) {
            // No closure here: it would not inherit the caller's target features.
            let first = p.as_ptr().add(j0 * m + i0);
            let r0 = _mm256_loadu_ps(first);
            let r1 = _mm256_loadu_ps(first.add(m));
            let r2 = _mm256_loadu_ps(first.add(2 * m));
            let r3 = _mm256_loadu_ps(first.add(3 * m));
            let r4 = _mm256_loadu_ps(first.add(4 * m));
            let r5 = _mm256_loadu_ps(first.add(5 * m));
            let r6 = _mm256_loadu_ps(first.add(6 * m));
            let r7 = _mm256_loadu_ps(first.add(7 * m));
            let t0 = _mm256_unpacklo_ps(r0, r1);
            let t1 = _mm256_unpackhi_ps(r0, r1);
            let t2 = _mm256_unpacklo_ps(r2, r3);
            let t3 = _mm256_unpackhi_ps(r2, r3);
            let t4 = _mm256_unpacklo_ps(r4, r5);
            let t5 = _mm256_unpackhi_ps(r4, r5);
            let t6 = _mm256_unpacklo_ps(r6, r7);
            let t7 = _mm256_unpackhi_ps(r6, r7);
            let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            let rows = [
                _mm256_permute2f128_ps::<0x20>(s0, s4),
                _mm256_permute2f128_ps::<0x20>(s1, s5),
                _mm256_permute2f128_ps::<0x20>(s2, s6),
                _mm256_permute2f128_ps::<0x20>(s3, s7),
                _mm256_permute2f128_ps::<0x31>(s0, s4),
                _mm256_permute2f128_ps::<0x31>(s1, s5),
                _mm256_permute2f128_ps::<0x31>(s2, s6),
                _mm256_permute2f128_ps::<0x31>(s3, s7),
            ];
            for (i, row) in rows.into_iter().enumerate() {
                let out = c.add((i0 + i) * ldc + j0);
                if beta == 0.0 {
                    _mm256_storeu_ps(out, row);
                } else {
                    _mm256_storeu_ps(out, _mm256_add_ps(row, _mm256_mul_ps(vbeta, _mm256_loadu_ps(out))));
                }
            }
        }
    }
    add_transposed_edge(p, m, full_m..m, 0..n, beta, c, ldc);
    add_transposed_edge(p, m, 0..full_m, full_n..n, beta, c, ldc);
}

/// The f64 SIMD copy: 4×4 tiles through 256-bit registers (`unpacklo/hi`, `permute2f128`).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn add_transposed_body_f64(p: &[f64], m: usize, n: usize, beta: f64, c: *mut f64, ldc: usize) {
    use std::arch::x86_64::*;
    const T: usize = 4;
    let (full_m, full_n) = (m - m % T, n - n % T);
    let vbeta = _mm256_set1_pd(beta);
    for j0 in (0..full_n).step_by(T) {
        for i0 in (0..full_m).step_by(T) {
            let first = p.as_ptr().add(j0 * m + i0);
            let r0 = _mm256_loadu_pd(first);
            let r1 = _mm256_loadu_pd(first.add(m));
            let r2 = _mm256_loadu_pd(first.add(2 * m));
            let r3 = _mm256_loadu_pd(first.add(3 * m));
            let t0 = _mm256_unpacklo_pd(r0, r1);
            let t1 = _mm256_unpackhi_pd(r0, r1);
            let t2 = _mm256_unpacklo_pd(r2, r3);
            let t3 = _mm256_unpackhi_pd(r2, r3);
            let rows = [
                _mm256_permute2f128_pd::<0x20>(t0, t2),
                _mm256_permute2f128_pd::<0x20>(t1, t3),
                _mm256_permute2f128_pd::<0x31>(t0, t2),
                _mm256_permute2f128_pd::<0x31>(t1, t3),
            ];
            for (i, row) in rows.into_iter().enumerate() {
                let out = c.add((i0 + i) * ldc + j0);
                if beta == 0.0 {
                    _mm256_storeu_pd(out, row);
                } else {
                    _mm256_storeu_pd(out, _mm256_add_pd(row, _mm256_mul_pd(vbeta, _mm256_loadu_pd(out))));
                }
            }
        }
    }
    add_transposed_edge(p, m, full_m..m, 0..n, beta, c, ldc);
    add_transposed_edge(p, m, 0..full_m, full_n..n, beta, c, ldc);
}

/// [`add_transposed_body_f32`] compiled for AVX-512F (same 256-bit shuffles, EVEX-encoded).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2")]
unsafe fn add_transposed_avx512_f32(p: &[f32], m: usize, n: usize, beta: f32, c: *mut f32, ldc: usize) {
    add_transposed_body_f32(p, m, n, beta, c, ldc);
}

/// [`add_transposed_body_f32`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn add_transposed_avx2_f32(p: &[f32], m: usize, n: usize, beta: f32, c: *mut f32, ldc: usize) {
    add_transposed_body_f32(p, m, n, beta, c, ldc);
}

/// [`add_transposed_body_f64`] compiled for AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2")]
unsafe fn add_transposed_avx512_f64(p: &[f64], m: usize, n: usize, beta: f64, c: *mut f64, ldc: usize) {
    add_transposed_body_f64(p, m, n, beta, c, ldc);
}

/// [`add_transposed_body_f64`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn add_transposed_avx2_f64(p: &[f64], m: usize, n: usize, beta: f64, c: *mut f64, ldc: usize) {
    add_transposed_body_f64(p, m, n, beta, c, ldc);
}

/// The `gemm` crate's product on strided views, as [`gemm_crate`] describes.
fn gemm_raw<F: Float>(alpha: F, a: ArrayView2<F>, b: ArrayView2<F>, beta: F, mut c: ArrayViewMut2<F>) {
    let (m, k) = a.dim();
    let n = b.ncols();
    let (a_rs, a_cs) = (a.strides()[0], a.strides()[1]);
    let (b_rs, b_cs) = (b.strides()[0], b.strides()[1]);
    let (c_rs, c_cs) = (c.strides()[0], c.strides()[1]);
    // SAFETY: the three pointers and strides come from live ndarray views whose shapes
    // were checked (by `gemm_real`) to be m×k, k×n and m×n, so every offset the backend
    // forms stays inside its view. `c` is borrowed mutably, so it overlaps neither input.
    // `F` is f32 or f64 (checked by `gemm_real`'s `is_native`), the types `gemm::gemm`
    // supports. The crate computes `dst ← alpha·dst + beta·lhs·rhs`: its alpha is our beta.
    unsafe {
        gemm::gemm::<F>(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_cs,
            c_rs,
            beta != F::zero(),
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            beta,
            alpha,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `c ← alpha·a·b + beta·c` for dual numbers, as real products of the parts.
///
/// With `x = x₀ + x₁ε`: the value is `α₀·(a₀·b₀) + β₀·c₀`, the tangent
/// `α₀·(a₁·b₀ + a₀·b₁) + α₁·(a₀·b₀) + β₀·c₁ + β₁·c₀`. That is three real GEMMs (the two
/// tangent products accumulate into `c₁` with β = 1) when `alpha` is a constant, as in
/// every kernel; a fourth term, `α₁·(a₀·b₀)`, reuses the value product otherwise. An
/// operand whose tangents are all zero (a constant: the data of an HVP) drops its tangent
/// product, so `x·w` with a constant `x` is two GEMMs. The parts are strided views of the
/// dual matrices ([`crate::dual::parts`]): the real GEMMs read the operands and write `c`
/// in place, with no copy and no temporary. `c` is not read when `beta` is zero (both
/// parts).
pub(crate) fn gemm_dual<F: Float>(
    backend: Option<Backend>,
    threads: usize,
    alpha: Dual<F>,
    a: ArrayView2<Dual<F>>,
    b: ArrayView2<Dual<F>>,
    beta: Dual<F>,
    c: ArrayViewMut2<Dual<F>>,
) {
    let (m, _, n) = check_shapes(&a, &b, &c.view());
    if m == 0 || n == 0 {
        return;
    }
    let varies = |x: &ArrayView2<Dual<F>>| x.iter().any(|d| d.tangent != F::zero());
    let (a_varies, b_varies) = (varies(&a), varies(&b));
    let reads_c = beta != Dual::constant(F::zero());
    let ((a0, a1), (b0, b1)) = (parts(a), parts(b));
    let (mut c0, mut c1) = parts_mut(c);
    // Tangent first (its β₁ term reads the old c₀): c₁ ← α₀·a₁·b₀ + β₀·c₁, then
    // += α₀·a₀·b₁ (each left out for a constant operand), then += β₁·c₀.
    let mut c1_beta = beta.value;
    if a_varies {
        F::gemm(backend, threads, alpha.value, a1, b0, c1_beta, c1.view_mut());
        c1_beta = F::one();
    }
    if b_varies {
        F::gemm(backend, threads, alpha.value, a0, b1, c1_beta, c1.view_mut());
        c1_beta = F::one();
    }
    if c1_beta == F::zero() {
        // No product was written and β₀ = 0: c₁ is not read (it may be NaN).
        c1.fill(F::zero());
    } else if c1_beta != F::one() {
        c1.mapv_inplace(|t| t * c1_beta);
    }
    if reads_c && beta.tangent != F::zero() {
        c1.scaled_add(beta.tangent, &c0);
    }
    // Value: c₀ ← α₀·a₀·b₀ + β₀·c₀; with a varying alpha, the product a₀·b₀ also feeds c₁.
    if alpha.tangent == F::zero() {
        F::gemm(backend, threads, alpha.value, a0, b0, beta.value, c0);
    } else {
        let mut product = Array2::zeros((m, n));
        F::gemm(backend, threads, F::one(), a0, b0, F::zero(), product.view_mut());
        c1.scaled_add(alpha.tangent, &product);
        if beta.value == F::zero() {
            c0.assign(&product);
            c0.mapv_inplace(|v| v * alpha.value);
        } else {
            c0.zip_mut_with(&product, |c, &p| *c = alpha.value * p + beta.value * *c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, ShapeBuilder};

    fn naive(a: &ArrayView2<f64>, b: &ArrayView2<f64>) -> Array2<f64> {
        let (m, k) = a.dim();
        let n = b.ncols();
        Array2::from_shape_fn((m, n), |(i, j)| (0..k).map(|p| a[[i, p]] * b[[p, j]]).sum())
    }

    #[test]
    fn both_backends_match_naive_on_transposed_and_strided_views() {
        let a = Array2::from_shape_fn((7, 5), |(i, j)| (i * 5 + j) as f64 * 0.37 - 3.0);
        let b = Array2::from_shape_fn((9, 5), |(i, j)| ((i + 2 * j) % 7) as f64 - 2.5);
        // b is used transposed (column-major view), a through a negative-stride slice.
        let a_view = a.slice(ndarray::s![..;-1, ..]);
        let bt = b.t();
        let expected = naive(&a_view, &bt);
        for backend in [Backend::Gemm, Backend::MatrixMultiply] {
            let mut c = Array2::from_elem((7, 9).f(), f64::NAN);
            gemm_with_backend(backend, 1.0, a_view, bt, 0.0, c.view_mut());
            let err = (&c - &expected).mapv(f64::abs).fold(0.0, |m: f64, &v| m.max(v));
            assert!(err < 1e-12, "{backend:?}: max error {err}");
            // Accumulate: c ← 2·a·b + 0.5·c = 2.5·a·b.
            gemm_with_backend(backend, 2.0, a_view, bt, 0.5, c.view_mut());
            let err = (&c - &(&expected * 2.5))
                .mapv(f64::abs)
                .fold(0.0, |m: f64, &v| m.max(v));
            assert!(err < 1e-11, "{backend:?}: max error after accumulate {err}");
        }
    }

    /// `alpha·op(a)·op(b) + beta·c0` by a naive loop in f64, on any views.
    fn naive_axpby<F: Float>(alpha: F, a: &ArrayView2<F>, b: &ArrayView2<F>, beta: F, c0: &Array2<F>) -> Array2<f64> {
        let (m, k) = a.dim();
        let n = b.ncols();
        let to = |v: F| v.to_f64().unwrap();
        Array2::from_shape_fn((m, n), |(i, j)| {
            let s: f64 = (0..k).map(|p| to(a[[i, p]]) * to(b[[p, j]])).sum();
            let old = if beta == F::zero() {
                0.0
            } else {
                to(beta) * to(c0[[i, j]])
            };
            to(alpha) * s + old
        })
    }

    /// The dispatched `gemm()` (small path or not) against the `gemm` crate and a naive
    /// loop, on random shapes around the small-path threshold, in all four transposition
    /// forms and with a negative-stride operand, beta 0 (over a NaN `c`), 1 and 0.5.
    fn small_path_matches_gemm_crate_and_naive<F: Float>(tol: f64) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut small_taken = 0;
        for case in 0..300 {
            let (m, k, n) = if case < 8 {
                // Shapes of the bench, all forms.
                [
                    (16, 8, 4),
                    (8, 16, 4),
                    (4, 16, 8),
                    (16, 4, 8),
                    (8, 8, 8),
                    (64, 8, 4),
                    (1, 7, 1),
                    (33, 62, 1),
                ][case]
            } else {
                (rng.gen_range(1..40), rng.gen_range(1..40), rng.gen_range(1..24))
            };
            let mut random = |r: usize, c: usize| Array2::from_shape_fn((r, c), |_| F::of(rng.gen_range(-1.0..1.0)));
            let a_n = random(m, k);
            let a_t = random(k, m);
            let b_n = random(k, n);
            let b_t = random(n, k);
            let a_rev = a_n.slice(ndarray::s![..;-1, ..]);
            let a_views = [a_n.view(), a_t.t(), a_rev];
            let b_views = [b_n.view(), b_t.t()];
            let c0 = random(m, n);
            for a in &a_views {
                for b in &b_views {
                    small_taken += usize::from(takes_small_path(a, b));
                    for beta in [0.0, 1.0, 0.5] {
                        let (alpha, beta) = (F::of(1.5), F::of(beta));
                        let expected = naive_axpby(alpha, a, b, beta, &c0);
                        let start = |c: &mut Array2<F>| {
                            if beta == F::zero() {
                                c.fill(F::nan());
                            }
                        };
                        let mut dispatched = c0.clone();
                        start(&mut dispatched);
                        gemm(alpha, *a, *b, beta, dispatched.view_mut());
                        let mut crate_path = c0.clone();
                        start(&mut crate_path);
                        gemm_with_backend(Backend::Gemm, alpha, *a, *b, beta, crate_path.view_mut());
                        // Column-major output too (c through a transposed view).
                        let mut dispatched_f = Array2::<F>::from_elem((n, m), F::nan());
                        if beta != F::zero() {
                            dispatched_f.assign(&c0.t());
                        }
                        gemm(alpha, *a, *b, beta, dispatched_f.view_mut().reversed_axes());
                        for (name, got) in [
                            ("gemm()", dispatched.view()),
                            ("gemm crate", crate_path.view()),
                            ("gemm() into a column-major c", dispatched_f.t()),
                        ] {
                            let err = got
                                .iter()
                                .zip(expected.iter())
                                .map(|(&g, &e)| (g.to_f64().unwrap() - e).abs())
                                .fold(0.0, f64::max);
                            assert!(
                                err <= tol * (k as f64 + 1.0),
                                "{} {m}×{k}×{n}, strides {:?}·{:?}, beta {}: {name} off by {err}",
                                F::NAME,
                                a.strides(),
                                b.strides(),
                                beta.to_f64().unwrap()
                            );
                        }
                    }
                }
            }
        }
        // The random shapes really straddle the threshold.
        assert!(small_taken > 50, "small path taken only {small_taken} times");
    }

    #[test]
    fn small_path_matches_gemm_crate_and_naive_f64() {
        small_path_matches_gemm_crate_and_naive::<f64>(1e-14);
    }

    #[test]
    fn small_path_matches_gemm_crate_and_naive_f32() {
        small_path_matches_gemm_crate_and_naive::<f32>(1e-6);
    }

    #[test]
    fn small_path_is_taken_for_the_shapes_it_was_measured_on() {
        let a = Array2::<f32>::zeros((16, 8));
        let b = Array2::<f32>::zeros((8, 4));
        let w = Array2::<f32>::zeros((4, 8));
        assert!(takes_small_path(&a.view(), &b.view()));
        // aᵀ·g of a 16×8 → 4 layer's backward (a stored 16×8, g 16×4).
        let g = Array2::<f32>::zeros((16, 4));
        assert!(takes_small_path(&a.t(), &g.view()));
        // g·wᵀ: both contiguous along k, a 16×8 output: the gemm crate's dot kernel.
        assert!(!takes_small_path(&g.view(), &w.t()));
        // The same layout with a 16×16 output (a 16 → 4 layer's input adjoint): matrixmultiply.
        let w_wide = Array2::<f32>::zeros((16, 4));
        assert!(takes_small_path(&g.view(), &w_wide.t()));
        // m < n, and a big product.
        assert!(!takes_small_path(&b.t(), &a.t()));
        let big = Array2::<f32>::zeros((64, 64));
        assert!(!takes_small_path(&big.view(), &big.view()));
    }

    #[test]
    fn short_output_of_the_dot_layout_goes_through_a_transposed_temporary() {
        // a·bᵀ with few rows (odd sizes, not multiples of the 8×8 tiles), written into a
        // column block of a wider matrix (row stride ≠ width), with and without beta.
        let (m, k, n) = (13, 70, 45);
        let a = Array2::from_shape_fn((m, k), |(i, j)| ((i * 7 + j * 3) % 11) as f64 - 5.0);
        let b_stored = Array2::from_shape_fn((n, k), |(i, j)| ((i + 5 * j) % 13) as f64 - 6.0);
        let bt = b_stored.t();
        let mut wide = Array2::from_elem((m, n + 9), f64::NAN);
        assert!(short_output_of_dot_layout(
            &a.view(),
            &bt,
            &wide.slice_mut(ndarray::s![.., 4..4 + n])
        ));
        gemm(1.5, a.view(), bt, 0.0, wide.slice_mut(ndarray::s![.., 4..4 + n]));
        let expected = naive(&a.view(), &bt) * 1.5;
        assert_eq!(wide.slice(ndarray::s![.., 4..4 + n]), expected);
        assert!(
            wide.slice(ndarray::s![.., ..4]).iter().all(|v| v.is_nan()),
            "outside the block untouched"
        );
        let c0 = Array2::from_shape_fn((m, n), |(i, j)| ((i * j) % 7) as f64);
        let mut c = c0.clone();
        gemm(1.0, a.view(), bt, -2.0, c.view_mut());
        assert_eq!(c, naive(&a.view(), &bt) - c0 * 2.0);
        // A square output keeps the crate's own path.
        let sq = Array2::<f64>::zeros((70, 70));
        assert!(!short_output_of_dot_layout(
            &sq.view(),
            &sq.t(),
            &Array2::zeros((70, 70)).view_mut()
        ));
    }

    /// The transposes compiled for AVX-512F and AVX2 (whichever this CPU runs: the
    /// dispatching [`add_transposed_tiles`]) give the scalar tiles' bits, on ragged shapes
    /// (not multiples of 8 or 4), beta 0 (over a NaN `c`), 1 and an inexact one, into a
    /// column block of a wider matrix (row stride ≠ width) whose other columns stay untouched.
    fn transposed_tiles_match_scalar<F: Float>() {
        let value = |i: usize, j: usize, s: usize| F::of(((i * 131 + j * 71 + s * 17) % 97) as f64 / 7.0 - 6.3);
        for (m, n) in [
            (1, 1),
            (1, 19),
            (7, 1),
            (4, 4),
            (8, 8),
            (9, 17),
            (13, 45),
            (16, 24),
            (31, 33),
            (32, 784),
        ] {
            let product = Array2::from_shape_fn((m, n).f(), |(i, j)| value(i, j, 1));
            for beta in [0.0, 1.0, -0.37] {
                let beta = F::of(beta);
                let start =
                    Array2::from_shape_fn(
                        (m, n + 9),
                        |(i, j)| {
                            if beta == F::zero() {
                                F::nan()
                            } else {
                                value(i, j, 2)
                            }
                        },
                    );
                let (mut dispatched, mut scalar) = (start.clone(), start.clone());
                add_transposed_tiles(&product, beta, dispatched.slice_mut(ndarray::s![.., 4..4 + n]));
                add_transposed_tiles_scalar(&product, beta, scalar.slice_mut(ndarray::s![.., 4..4 + n]));
                let bits = |a: &Array2<F>| a.iter().map(|v| v.to_f64().unwrap().to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&dispatched),
                    bits(&scalar),
                    "{} {m}×{n}, beta {}",
                    F::NAME,
                    beta.to_f64().unwrap()
                );
                let block = dispatched.slice(ndarray::s![.., 4..4 + n]);
                assert!(
                    block.iter().all(|v| !v.is_nan()),
                    "{} {m}×{n}: every element written",
                    F::NAME
                );
            }
        }
    }

    #[test]
    fn transposed_tiles_match_scalar_f32() {
        transposed_tiles_match_scalar::<f32>();
    }

    #[test]
    fn transposed_tiles_match_scalar_f64() {
        transposed_tiles_match_scalar::<f64>();
    }

    #[test]
    fn threaded_product_matches_single_threaded() {
        // Above PARALLEL_WORK, so two threads really split the work: by columns (n ≥ m),
        // by rows (m > n, through transposed views), and accumulating into `c` (beta ≠ 0).
        for (m, k, n) in [(96, 200, 130), (130, 200, 96)] {
            assert!(m * k * n >= PARALLEL_WORK && parts_for(2, m, k, n, false) == 2);
            let a_stored = Array2::from_shape_fn((k, m), |(i, j)| ((i * 7 + j * 3) % 11) as f64 - 5.0);
            let b = Array2::from_shape_fn((k, n), |(i, j)| ((i + 5 * j) % 13) as f64 - 6.0);
            let a = a_stored.t();
            let c0 = Array2::from_shape_fn((m, n), |(i, j)| ((i * j) % 7) as f64);
            let mut single = c0.clone();
            gemm(2.0, a, b.view(), 0.5, single.view_mut());
            set_num_threads(2);
            let mut threaded = c0.clone();
            gemm(2.0, a, b.view(), 0.5, threaded.view_mut());
            set_num_threads(1);
            // Integer-valued inputs: every partial sum is exact, whatever the split.
            assert_eq!(single, threaded);
            assert_eq!(single, naive(&a, &b.view()) * 2.0 + c0 * 0.5);
        }
    }

    #[test]
    fn threaded_matrix_vector_products_match_single_threaded() {
        // M·x with M contiguous along k (split from PARALLEL_MATVEC_WORK), xᵀ·M through a
        // column-major M (the same access), and Mᵀ·x (blocks would read part of every row:
        // not split below PARALLEL_WORK), with beta 0 and not.
        let (m, k) = (301, 257);
        assert!(m * k >= PARALLEL_MATVEC_WORK && m * k < PARALLEL_WORK);
        let mat = Array2::from_shape_fn((m, k), |(i, j)| ((i * 7 + j * 3) % 11) as f64 - 5.0);
        let x = Array2::from_shape_fn((k, 1), |(i, _)| (i % 5) as f64 - 2.0);
        let xt = Array2::from_shape_fn((1, m), |(_, j)| (j % 3) as f64 - 1.0);
        assert_eq!(parts_for(2, m, k, 1, true), 2);
        assert_eq!(parts_for(2, k, m, 1, false), 1);
        for beta in [0.0, 0.5] {
            let column = |threads: usize| {
                set_num_threads(threads);
                let mut y = Array2::from_elem((m, 1), if beta == 0.0 { f64::NAN } else { 1.0 });
                gemm(2.0, mat.view(), x.view(), beta, y.view_mut());
                let mut yt = Array2::from_elem((1, k), if beta == 0.0 { f64::NAN } else { 1.0 });
                // xᵀ·M as (1×m)·(m×k) with the right operand seen column-major.
                let mat_f = mat.t().as_standard_layout().into_owned();
                gemm(2.0, xt.view(), mat_f.t(), beta, yt.view_mut());
                let mut z = Array2::from_elem((k, 1), if beta == 0.0 { f64::NAN } else { 1.0 });
                gemm(2.0, mat.t(), xt.t(), beta, z.view_mut());
                set_num_threads(1);
                (y, yt, z)
            };
            let (single, threaded) = (column(1), column(2));
            // Integer-valued inputs: every partial sum is exact, whatever the split.
            assert_eq!(single, threaded, "beta {beta}");
            let old = if beta == 0.0 { 0.0 } else { beta };
            assert_eq!(single.0, naive(&mat.view(), &x.view()) * 2.0 + old);
            assert_eq!(single.2, naive(&mat.t(), &xt.t()) * 2.0 + old);
        }
    }

    /// `alpha·a·b + beta·c0` by the scalar definition: dual arithmetic in a triple loop.
    fn naive_dual(
        alpha: Dual<f64>,
        a: &ArrayView2<Dual<f64>>,
        b: &ArrayView2<Dual<f64>>,
        beta: Dual<f64>,
        c0: &Array2<Dual<f64>>,
    ) -> Array2<Dual<f64>> {
        let (m, k) = a.dim();
        Array2::from_shape_fn((m, b.ncols()), |(i, j)| {
            let s: Dual<f64> = (0..k).map(|p| a[[i, p]] * b[[p, j]]).sum();
            let old = if beta == Dual::constant(0.0) {
                Dual::constant(0.0)
            } else {
                beta * c0[[i, j]]
            };
            alpha * s + old
        })
    }

    /// The dual GEMM (three real products) against the scalar definition, on random
    /// shapes on both sides of the small-path threshold, transposed and negative-stride
    /// operands, both backends, and `alpha`/`beta` with and without tangents (`beta` zero
    /// over a NaN `c`, which must not be read).
    #[test]
    fn dual_gemm_matches_the_scalar_definition() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for case in 0..60 {
            let (m, k, n) = if case == 0 {
                (40, 70, 30)
            } else {
                (rng.gen_range(1..20), rng.gen_range(1..20), rng.gen_range(1..12))
            };
            let mut random = |r: usize, c: usize| {
                Array2::from_shape_fn((r, c), |_| {
                    Dual::new(rng.gen_range(-1.0..1.0), rng.gen_range(-1.0..1.0))
                })
            };
            let (mut a_n, a_t, b_n, mut b_t, c0) =
                (random(m, k), random(k, m), random(k, n), random(n, k), random(m, n));
            // Constant operands (zero tangents) drop their tangent product: cover them too.
            if case % 3 == 1 {
                a_n.mapv_inplace(|d| Dual::constant(d.value));
            }
            if case % 5 == 1 {
                b_t.mapv_inplace(|d| Dual::constant(d.value));
            }
            let a_views = [a_n.view(), a_t.t(), a_n.slice(ndarray::s![..;-1, ..])];
            let b_views = [b_n.view(), b_t.t()];
            let scalars = [
                (Dual::constant(1.0), Dual::constant(0.0)),
                (Dual::constant(1.5), Dual::constant(1.0)),
                (Dual::new(0.5, 2.0), Dual::new(0.25, -1.0)),
                (Dual::new(2.0, 0.5), Dual::new(0.0, 3.0)),
            ];
            for a in &a_views {
                for b in &b_views {
                    for (alpha, beta) in scalars {
                        let expected = naive_dual(alpha, a, b, beta, &c0);
                        for backend in [None, Some(Backend::Gemm), Some(Backend::MatrixMultiply)] {
                            let mut c = c0.clone();
                            if beta == Dual::constant(0.0) {
                                c.fill(Dual::new(f64::NAN, f64::NAN));
                            }
                            match backend {
                                None => gemm(alpha, *a, *b, beta, c.view_mut()),
                                Some(backend) => gemm_with_backend(backend, alpha, *a, *b, beta, c.view_mut()),
                            }
                            let err = c
                                .iter()
                                .zip(expected.iter())
                                .map(|(g, e)| (g.value - e.value).abs().max((g.tangent - e.tangent).abs()))
                                .fold(0.0, f64::max);
                            assert!(
                                err <= 1e-13 * (k as f64 + 1.0),
                                "{m}×{k}×{n}, strides {:?}·{:?}, alpha {alpha}, beta {beta}, {backend:?}: off by {err}",
                                a.strides(),
                                b.strides(),
                            );
                        }
                        // A column-major `c`, and one seen through a negative stride.
                        let mut c_f = Array2::from_elem((n, m), Dual::new(f64::NAN, f64::NAN));
                        let mut c_rev = Array2::from_elem((m, n), Dual::new(f64::NAN, f64::NAN));
                        if beta != Dual::constant(0.0) {
                            c_f.assign(&c0.t());
                            c_rev.assign(&c0.slice(ndarray::s![..;-1, ..]));
                        }
                        gemm(alpha, *a, *b, beta, c_f.view_mut().reversed_axes());
                        gemm(alpha, *a, *b, beta, c_rev.slice_mut(ndarray::s![..;-1, ..]));
                        for got in [c_f.t(), c_rev.slice(ndarray::s![..;-1, ..])] {
                            let err = got
                                .iter()
                                .zip(expected.iter())
                                .map(|(g, e)| (g.value - e.value).abs().max((g.tangent - e.tangent).abs()))
                                .fold(0.0, f64::max);
                            assert!(err <= 1e-13 * (k as f64 + 1.0), "{m}×{k}×{n}, strided c: off by {err}");
                        }
                    }
                }
            }
        }
    }

    /// A dual of duals (second order) multiplies through the same path, recursively.
    #[test]
    fn dual_of_dual_gemm_matches_the_scalar_definition() {
        type D2 = Dual<Dual<f64>>;
        let x = |i: usize, j: usize| {
            let f = (i * 7 + j * 3) as f64 * 0.1;
            Dual::new(Dual::new(f, f.sin()), Dual::new(f.cos(), 0.5 - f))
        };
        let a = Array2::from_shape_fn((5, 4), |(i, j)| x(i, j));
        let b = Array2::from_shape_fn((4, 3), |(i, j)| x(j, i + 1));
        let mut c = Array2::from_elem((5, 3), D2::of(0.0));
        gemm(D2::of(1.0), a.view(), b.view(), D2::of(0.0), c.view_mut());
        for ((i, j), got) in c.indexed_iter() {
            let expected: D2 = (0..4).map(|p| a[[i, p]] * b[[p, j]]).sum();
            let parts = |d: D2| [d.value.value, d.value.tangent, d.tangent.value, d.tangent.tangent];
            for (g, e) in parts(*got).into_iter().zip(parts(expected)) {
                assert!((g - e).abs() < 1e-13, "({i}, {j}): {got} vs {expected}");
            }
        }
    }

    #[test]
    fn empty_inner_dimension_gives_zeros() {
        let a = Array2::<f32>::zeros((3, 0));
        let b = Array2::<f32>::zeros((0, 4));
        let mut c = Array2::from_elem((3, 4), f32::NAN);
        gemm(1.0, a.view(), b.view(), 0.0, c.view_mut());
        assert!(c.iter().all(|&v| v == 0.0));
    }

    #[test]
    #[should_panic(expected = "[2, 3] · [4, 5]")]
    fn shape_mismatch_names_the_shapes() {
        let a = Array2::<f64>::zeros((2, 3));
        let b = Array2::<f64>::zeros((4, 5));
        let mut c = Array2::<f64>::zeros((2, 5));
        gemm(1.0, a.view(), b.view(), 0.0, c.view_mut());
    }
}
