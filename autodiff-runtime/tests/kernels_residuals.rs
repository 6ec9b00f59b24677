//! The kernels that read residuals forward kept (batch norm's statistics, max-pooling's
//! window indices) against the kernels they replace, which recomputed what they needed from
//! the input: the previous kernels are copied here verbatim (`old`) as the reference. In f64
//! on odd shapes (channels not a multiple of 8, H·W not a multiple of 8, non-square planes,
//! strides smaller and larger than the window), on inputs with ties, and (batch norm) on an
//! input rounded after its statistics were kept.

use autodiff_runtime::kernels::batch_norm::*;
use autodiff_runtime::kernels::pool::*;
use ndarray::{Array, Array1, Array4, Dimension, ShapeBuilder};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The kernels as they were before forward kept residuals.
mod old {
    use autodiff_runtime::Float;
    use ndarray::{s, Array1, Array4, ArrayBase, Data, Ix1, Ix4};

    struct ChannelStats<F> {
        mean: Vec<F>,
        invstd: Vec<F>,
        count: usize,
    }

    impl<F: Float> ChannelStats<F> {
        fn of<S: Data<Elem = F>>(x: &ArrayBase<S, Ix4>, eps: F) -> Self {
            let (n, c, h, w) = x.dim();
            let count = n * h * w;
            let inv_count = F::one() / F::of_usize(count);
            let mut mean = Vec::with_capacity(c);
            let mut invstd = Vec::with_capacity(c);
            for channel in 0..c {
                let mu = slabs(x, channel).map(|s| sum_lanes(s, |v| v)).sum::<F>() * inv_count;
                let sq: F = slabs(x, channel).map(|s| sum_lanes(s, |v| (v - mu) * (v - mu))).sum();
                mean.push(mu);
                invstd.push(F::one() / (sq * inv_count + eps).sqrt());
            }
            ChannelStats { mean, invstd, count }
        }
    }

    pub fn batch_norm_grad_input<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>>(
        g: &Array4<F>,
        x: &ArrayBase<S1, Ix4>,
        gamma: &ArrayBase<S2, Ix1>,
        eps: F,
    ) -> Array4<F> {
        let (x, g) = (x.as_standard_layout(), g.as_standard_layout());
        let stats = ChannelStats::of(&x, eps);
        let m = F::of_usize(stats.count);
        let mut dx = Array4::zeros(x.raw_dim());
        for c in 0..stats.mean.len() {
            let (mean, invstd) = (stats.mean[c], stats.invstd[c]);
            let (mut sum_g, mut sum_g_xhat) = (F::zero(), F::zero());
            for (g, x) in slabs(&g, c).zip(slabs(&x, c)) {
                sum_g += sum_lanes(g, |g| g);
                sum_g_xhat += sum_lanes_zip(g, x, |g, x| g * (x - mean));
            }
            sum_g_xhat *= invstd;
            let k = gamma[c] * invstd / m;
            for n in 0..x.dim().0 {
                let mut out = dx.slice_mut(s![n, c, .., ..]);
                let out = out.as_slice_mut().unwrap_or_else(|| unreachable!());
                let (g, x) = (slab(&g, n, c), slab(&x, n, c));
                for ((dx, &g), &x) in out.iter_mut().zip(g).zip(x) {
                    let xhat = (x - mean) * invstd;
                    *dx = k * (m * g - sum_g - xhat * sum_g_xhat);
                }
            }
        }
        dx
    }

    pub fn batch_norm_grad_gamma<F: Float, S: Data<Elem = F>>(
        g: &Array4<F>,
        x: &ArrayBase<S, Ix4>,
        eps: F,
    ) -> Array1<F> {
        let (x, g) = (x.as_standard_layout(), g.as_standard_layout());
        let stats = ChannelStats::of(&x, eps);
        Array1::from_shape_fn(stats.mean.len(), |c| {
            let mean = stats.mean[c];
            let sum: F = slabs(&g, c)
                .zip(slabs(&x, c))
                .map(|(g, x)| sum_lanes_zip(g, x, |g, x| g * (x - mean)))
                .sum();
            sum * stats.invstd[c]
        })
    }

    pub fn batch_norm_grad_beta<F: Float>(g: &Array4<F>) -> Array1<F> {
        let g = g.as_standard_layout();
        Array1::from_shape_fn(g.dim().1, |c| slabs(&g, c).map(|g| sum_lanes(g, |g| g)).sum())
    }

    fn slab<'a, F: 'a, S: Data<Elem = F>>(x: &'a ArrayBase<S, Ix4>, n: usize, c: usize) -> &'a [F] {
        let (_, channels, h, w) = x.dim();
        let start = (n * channels + c) * h * w;
        let all = x.as_slice().unwrap_or_else(|| unreachable!());
        &all[start..start + h * w]
    }

    fn slabs<'a, F: 'a, S: Data<Elem = F>>(x: &'a ArrayBase<S, Ix4>, c: usize) -> impl Iterator<Item = &'a [F]> + 'a {
        (0..x.dim().0).map(move |n| slab(x, n, c))
    }

    const LANES: usize = 8;

    fn sum_lanes<F: Float>(xs: &[F], f: impl Fn(F) -> F) -> F {
        let mut acc = [F::zero(); LANES];
        let chunks = xs.chunks_exact(LANES);
        let rest = chunks.remainder().iter().fold(F::zero(), |a, &x| a + f(x));
        for chunk in chunks {
            for (a, &x) in acc.iter_mut().zip(chunk) {
                *a += f(x);
            }
        }
        acc.iter().fold(rest, |s, &a| s + a)
    }

    fn sum_lanes_zip<F: Float>(a: &[F], b: &[F], f: impl Fn(F, F) -> F) -> F {
        let mut acc = [F::zero(); LANES];
        let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let rest = ca
            .remainder()
            .iter()
            .zip(cb.remainder())
            .fold(F::zero(), |s, (&x, &y)| s + f(x, y));
        for (xa, xb) in ca.zip(cb) {
            for ((acc, &x), &y) in acc.iter_mut().zip(xa).zip(xb) {
                *acc += f(x, y);
            }
        }
        acc.iter().fold(rest, |s, &a| s + a)
    }

    pub fn max_pool2d<F: Float, S: Data<Elem = F>>(x: &ArrayBase<S, Ix4>, kernel: usize, stride: usize) -> Array4<F> {
        let (n, c, h, w) = x.dim();
        let (oh, ow) = ((h - kernel) / stride + 1, (w - kernel) / stride + 1);
        let x = x.as_standard_layout();
        let x = x.as_slice().unwrap_or_else(|| unreachable!());
        let mut y = vec![F::zero(); n * c * oh * ow];
        for (plane, out) in x.chunks_exact(h * w).zip(y.chunks_exact_mut(oh * ow)) {
            for oy in 0..oh {
                for ox in 0..ow {
                    out[oy * ow + ox] = plane[argmax(plane, w, oy * stride, ox * stride, kernel)];
                }
            }
        }
        Array4::from_shape_vec((n, c, oh, ow), y).unwrap_or_else(|_| unreachable!())
    }

    pub fn max_pool2d_grad<F: Float, S: Data<Elem = F>>(
        g: &Array4<F>,
        x: &ArrayBase<S, Ix4>,
        kernel: usize,
        stride: usize,
    ) -> Array4<F> {
        let (n, c, h, w) = x.dim();
        let (oh, ow) = ((h - kernel) / stride + 1, (w - kernel) / stride + 1);
        let x = x.as_standard_layout();
        let x = x.as_slice().unwrap_or_else(|| unreachable!());
        let g = g.as_standard_layout();
        let g = g.as_slice().unwrap_or_else(|| unreachable!());
        let mut dx = vec![F::zero(); n * c * h * w];
        for ((plane, g_plane), dx_plane) in x
            .chunks_exact(h * w)
            .zip(g.chunks_exact(oh * ow))
            .zip(dx.chunks_exact_mut(h * w))
        {
            for oy in 0..oh {
                for ox in 0..ow {
                    let at = argmax(plane, w, oy * stride, ox * stride, kernel);
                    dx_plane[at] += g_plane[oy * ow + ox];
                }
            }
        }
        Array4::from_shape_vec((n, c, h, w), dx).unwrap_or_else(|_| unreachable!())
    }

    fn argmax<F: Float>(plane: &[F], w: usize, top: usize, left: usize, kernel: usize) -> usize {
        let mut best = top * w + left;
        for iy in top..top + kernel {
            for ix in left..left + kernel {
                if plane[iy * w + ix] > plane[best] {
                    best = iy * w + ix;
                }
            }
        }
        best
    }
}

fn random<D: Dimension>(rng: &mut StdRng, shape: impl ShapeBuilder<Dim = D>) -> Array<f64, D> {
    Array::from_shape_simple_fn(shape, || rng.gen_range(-1.0..1.0))
}

/// Batch norm's shapes: channels 5 and 3 (not multiples of the 8 partial sums), planes of
/// 21, 81 and 10 elements (remainders after the 8 lanes), and a plane of exactly 8.
const BATCH_NORM_SHAPES: [(usize, usize, usize, usize); 4] = [(2, 5, 7, 3), (1, 3, 9, 9), (3, 4, 5, 2), (4, 9, 2, 4)];

/// The largest difference between `a` and `b`, relative to `b`'s largest entry.
fn error_of_largest<D: Dimension>(a: &Array<f64, D>, b: &Array<f64, D>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn batch_norm_backward_from_kept_statistics_equals_the_recomputing_kernels() {
    let mut rng = StdRng::seed_from_u64(101);
    let eps = 1e-5;
    for shape in BATCH_NORM_SHAPES {
        // A mean far from 0 against the spread (7 against 0.3): normalising is ill-conditioned.
        for (mean, spread) in [(0.7, 3.0), (7.0, 0.3)] {
            let x = random(&mut rng, shape).mapv(|v| spread * v + mean);
            let (gamma, beta) = (random(&mut rng, shape.1), random(&mut rng, shape.1));
            let g = random(&mut rng, shape);
            let (y, stats) = batch_norm_keeping(&x, &gamma, &beta, eps);
            assert_eq!(y, batch_norm(&x, &gamma, &beta, eps));
            let sums = batch_norm_sums(&g, &x, &stats);
            // The same sums in the same order: equal to the last bit.
            let what = format!("{shape:?}, mean {mean}, spread {spread}");
            assert_eq!(batch_norm_grad_beta(&sums), old::batch_norm_grad_beta(&g), "{what}");
            assert_eq!(batch_norm_grad_beta_direct(&g), old::batch_norm_grad_beta(&g), "{what}");
            assert_eq!(
                batch_norm_grad_gamma(&sums),
                old::batch_norm_grad_gamma(&g, &x, eps),
                "{what}"
            );
            let dx = batch_norm_grad_input(g.clone(), &x, &gamma, &stats, &sums);
            assert_eq!(dx, old::batch_norm_grad_input(&g, &x, &gamma, eps), "{what}");
            // The measuring twin, on the x the statistics describe: the same to rounding.
            let measured = batch_norm_sums_measuring(&g, &x, &stats);
            let error = error_of_largest(&batch_norm_grad_gamma(&measured), &batch_norm_grad_gamma(&sums));
            assert!(error < 1e-13, "gamma, {what}: {error:.1e}");
            let error = error_of_largest(&batch_norm_grad_input(g.clone(), &x, &gamma, &stats, &measured), &dx);
            assert!(error < 1e-13, "input, {what}: {error:.1e}");
        }
    }
}

/// `x` rounded to 8 significant bits, as `residuals = "bf16"` keeps it (to nearest, ties away).
fn rounded_to_bf16(x: &Array4<f64>) -> Array4<f64> {
    x.mapv(|v| (v as f32).to_bits())
        .mapv(|bits| f64::from(f32::from_bits((bits + 0x8000) & 0xffff_0000)))
}

#[test]
fn batch_norm_backward_of_a_rounded_input_is_the_rounded_inputs() {
    // Backward reads `x` rounded while the kept statistics are the unrounded x's: with the
    // measuring sums, its adjoints are the exact ones at the rounded input (what the
    // recomputing kernels gave), not a mix that normalises one by the other's statistics,
    // which the plain sums give (and which is far off: the cancellation in the input's
    // adjoint no longer holds).
    let mut rng = StdRng::seed_from_u64(106);
    let eps = 1e-5;
    for shape in BATCH_NORM_SHAPES {
        let x = random(&mut rng, shape).mapv(|v| 0.5 * v + 3.0);
        let rounded = rounded_to_bf16(&x);
        assert!(rounded != x);
        let (gamma, beta) = (random(&mut rng, shape.1), random(&mut rng, shape.1));
        // An adjoint correlated with x̂ (relu's after the norm), as in a network: the input's
        // adjoint is then a small difference of large terms.
        let y = batch_norm(&x, &gamma, &beta, eps);
        let g = y.mapv(|v| if v > 0.0 { 1.0 } else { 0.0 }) + random(&mut rng, shape) * 0.01;
        let (_, stats) = batch_norm_keeping(&x, &gamma, &beta, eps);
        let sums = batch_norm_sums_measuring(&g, &rounded, &stats);
        let dx = batch_norm_grad_input(g.clone(), &rounded, &gamma, &stats, &sums);
        let exact = old::batch_norm_grad_input(&g, &rounded, &gamma, eps);
        let error = error_of_largest(&dx, &exact);
        assert!(error < 1e-10, "input, {shape:?}: {error:.1e}");
        let mixed = batch_norm_sums(&g, &rounded, &stats);
        let mixed = batch_norm_grad_input(g.clone(), &rounded, &gamma, &stats, &mixed);
        let error = error_of_largest(&mixed, &exact);
        assert!(
            error > 1e-4,
            "input, {shape:?}: the unmeasured sums are off by only {error:.1e}"
        );
        let error = error_of_largest(
            &batch_norm_grad_gamma(&sums),
            &old::batch_norm_grad_gamma(&g, &rounded, eps),
        );
        assert!(error < 1e-10, "gamma, {shape:?}: {error:.1e}");
    }
}

#[test]
fn batch_norm_backward_reads_views_and_other_layouts() {
    let mut rng = StdRng::seed_from_u64(102);
    let eps = 1e-3;
    // x and g as the transposes of arrays of another shape: neither in standard layout.
    let x = random(&mut rng, (3, 4, 5, 2)).reversed_axes();
    let g = random(&mut rng, (3, 4, 5, 2)).reversed_axes();
    assert!(!x.is_standard_layout() && !g.is_standard_layout());
    let (gamma, beta) = (random(&mut rng, 5), random(&mut rng, 5));
    let (_, stats) = batch_norm_keeping(&x.view(), &gamma, &beta, eps);
    let sums = batch_norm_sums(&g, &x.view(), &stats);
    let dx = batch_norm_grad_input(g.clone(), &x.view(), &gamma.view(), &stats, &sums);
    assert!(dx.is_standard_layout());
    assert_eq!(dx, old::batch_norm_grad_input(&g, &x, &gamma, eps));
    assert_eq!(batch_norm_grad_gamma(&sums), old::batch_norm_grad_gamma(&g, &x, eps));
}

#[test]
fn batch_norm_statistics_are_two_floats_per_channel() {
    let x = Array4::from_shape_fn((2, 3, 4, 4), |(n, c, i, j)| (n + 2 * c + i * j) as f32);
    let (_, stats) = batch_norm_keeping(&x, &Array1::ones(3), &Array1::zeros(3), 1e-5);
    assert_eq!(stats.bytes(), 2 * 3 * 4);
    assert_eq!(stats.channels(), 3);
    for (c, &mean) in stats.mean().iter().enumerate() {
        let channel = x.index_axis(ndarray::Axis(1), c);
        assert!((mean - channel.mean().unwrap_or(f32::NAN)).abs() < 1e-5);
    }
}

/// Values drawn from {-1, 0, 1, 2}: most windows hold ties.
fn with_ties(rng: &mut StdRng, shape: (usize, usize, usize, usize)) -> Array4<f64> {
    Array4::from_shape_simple_fn(shape, || f64::from(rng.gen_range(-1i32..3)))
}

#[test]
fn max_pool_backward_from_kept_indices_equals_the_recomputing_kernel() {
    let mut rng = StdRng::seed_from_u64(103);
    // (kernel, stride) on non-square planes with 5 channels: disjoint windows, overlapping
    // ones (stride < kernel: several windows send their adjoint to one element), gaps
    // (stride > kernel), a window of one element, and a 17×17 window (289 positions: indices
    // of four bytes).
    let cases = [
        ((2, 5, 7, 6), 2, 2),
        ((2, 5, 7, 6), 3, 2),
        ((1, 5, 9, 7), 3, 1),
        ((2, 5, 7, 6), 2, 3),
        ((1, 5, 4, 3), 1, 1),
        ((1, 5, 5, 5), 5, 1),
        ((1, 2, 20, 18), 17, 1),
        ((1, 2, 21, 19), 17, 3),
    ];
    for (shape, kernel, stride) in cases {
        for x in [with_ties(&mut rng, shape), random(&mut rng, shape)] {
            let y = max_pool2d(&x, kernel, stride);
            let (kept, argmax) = max_pool2d_keeping(&x, kernel, stride);
            assert_eq!(kept, y);
            assert_eq!(y, old::max_pool2d(&x, kernel, stride));
            assert_eq!(argmax.bytes(), y.len() * index_bytes(kernel));
            assert_eq!(argmax.input_dim(), x.raw_dim());
            let g = random(&mut rng, y.raw_dim());
            assert_eq!(
                max_pool2d_grad(&g, &argmax),
                old::max_pool2d_grad(&g, &x, kernel, stride),
                "{shape:?}, kernel {kernel}, stride {stride}"
            );
        }
    }
}

#[test]
fn max_pool_indices_take_a_byte_up_to_256_positions() {
    assert_eq!((index_bytes(1), index_bytes(2), index_bytes(16)), (1, 1, 1));
    assert_eq!((index_bytes(17), index_bytes(100)), (4, 4));
    // A view in another layout pools as its standard-layout copy.
    let mut rng = StdRng::seed_from_u64(104);
    let x = with_ties(&mut rng, (6, 5, 3, 2)).reversed_axes();
    let (y, argmax) = max_pool2d_keeping(&x.view(), 2, 1);
    assert_eq!(y, max_pool2d(&x.as_standard_layout(), 2, 1));
    let g = random(&mut rng, y.raw_dim());
    assert_eq!(max_pool2d_grad(&g, &argmax), old::max_pool2d_grad(&g, &x, 2, 1));
}

#[test]
fn max_pool_keeps_the_old_choice_among_signed_zeros_and_nans() {
    // Windows mixing -0, +0 and NaN: the value (to the bit) and the element chosen are the
    // old kernels' (the first of equal values; a NaN first stays, a NaN later never wins).
    let values = [-0.0, 0.0, f64::NAN, -1.0, 0.0, -0.0, 2.0, f64::NAN];
    let mut rng = StdRng::seed_from_u64(105);
    for (kernel, stride) in [(2, 2), (3, 1), (2, 1)] {
        let x = Array4::from_shape_simple_fn((2, 3, 6, 5), || values[rng.gen_range(0..values.len())]);
        let bits = |a: &Array4<f64>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let (y, argmax) = max_pool2d_keeping(&x, kernel, stride);
        assert_eq!(bits(&y), bits(&old::max_pool2d(&x, kernel, stride)));
        assert_eq!(bits(&max_pool2d(&x, kernel, stride)), bits(&y));
        let g = random(&mut rng, y.raw_dim());
        assert_eq!(
            max_pool2d_grad(&g, &argmax),
            old::max_pool2d_grad(&g, &x, kernel, stride),
            "kernel {kernel}, stride {stride}"
        );
    }
}
