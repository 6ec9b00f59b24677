//! Batch normalisation in training mode over NCHW inputs: per-channel batch
//! statistics over N, H, W, then `gamma · x̂ + beta`.
//!
//! The backward functions recompute the statistics from `x` rather than saving
//! them: two passes over one channel are cheap next to the convolution that
//! precedes a batch norm, and the signatures stay free of saved intermediates.

use ndarray::{s, Array1, Array4, ArrayBase, Axis, Data, Ix1, Ix4};

use crate::Float;

/// `gamma[c] · (x - mean_c) / sqrt(var_c + eps) + beta[c]` with biased batch variance.
/// Panics naming the shapes if gamma or beta do not have one entry per channel.
pub fn batch_norm<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>, S3: Data<Elem = F>>(
    x: &ArrayBase<S1, Ix4>,
    gamma: &ArrayBase<S2, Ix1>,
    beta: &ArrayBase<S3, Ix1>,
    eps: F,
) -> Array4<F> {
    check_params("batch_norm", x.shape(), gamma.shape(), Some(beta.shape()));
    let mut y = x.as_standard_layout().into_owned();
    let stats = ChannelStats::of(&y, eps);
    for (c, mut channel) in y.axis_iter_mut(Axis(1)).enumerate() {
        let (mean, scale, shift) = (stats.mean[c], gamma[c] * stats.invstd[c], beta[c]);
        channel.mapv_inplace(|v| (v - mean) * scale + shift);
    }
    y
}

/// Adjoint of `x` in [`batch_norm`] (statistics recomputed from `x`).
pub fn batch_norm_grad_input<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>>(
    g: &Array4<F>,
    x: &ArrayBase<S1, Ix4>,
    gamma: &ArrayBase<S2, Ix1>,
    eps: F,
) -> Array4<F> {
    check_params("batch_norm_grad_input", x.shape(), gamma.shape(), None);
    check_grad("batch_norm_grad_input", g.shape(), x.shape());
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
        // dx = gamma·invstd/M · (M·g - Σg - x̂·Σ(g·x̂)).
        let k = gamma[c] * invstd / m;
        for n in 0..x.dim().0 {
            let mut out = dx.slice_mut(s![n, c, .., ..]);
            let out = out
                .as_slice_mut()
                .unwrap_or_else(|| unreachable!("a new array is in standard layout"));
            let (g, x) = (slab(&g, n, c), slab(&x, n, c));
            for ((dx, &g), &x) in out.iter_mut().zip(g).zip(x) {
                let xhat = (x - mean) * invstd;
                *dx = k * (m * g - sum_g - xhat * sum_g_xhat);
            }
        }
    }
    dx
}

/// Adjoint of `gamma` in [`batch_norm`]: `Σ g · x̂` per channel.
pub fn batch_norm_grad_gamma<F: Float, S: Data<Elem = F>>(g: &Array4<F>, x: &ArrayBase<S, Ix4>, eps: F) -> Array1<F> {
    check_grad("batch_norm_grad_gamma", g.shape(), x.shape());
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

/// Adjoint of `beta` in [`batch_norm`]: `Σ g` per channel.
pub fn batch_norm_grad_beta<F: Float>(g: &Array4<F>) -> Array1<F> {
    let g = g.as_standard_layout();
    Array1::from_shape_fn(g.dim().1, |c| slabs(&g, c).map(|g| sum_lanes(g, |g| g)).sum())
}

/// Per-channel batch mean and `1/sqrt(var + eps)` over N, H, W.
struct ChannelStats<F> {
    mean: Vec<F>,
    invstd: Vec<F>,
    /// Elements per channel, `N·H·W`.
    count: usize,
}

impl<F: Float> ChannelStats<F> {
    /// Two passes per channel (mean, then squared deviations) so that the variance
    /// does not suffer the cancellation of `E[x²] - E[x]²`; `x` in standard layout.
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

/// The `H×W` block of sample `n`, channel `c`, of an array in standard layout: contiguous.
fn slab<'a, F: 'a, S: Data<Elem = F>>(x: &'a ArrayBase<S, Ix4>, n: usize, c: usize) -> &'a [F] {
    let (_, channels, h, w) = x.dim();
    let start = (n * channels + c) * h * w;
    let all = x.as_slice().unwrap_or_else(|| unreachable!("standard layout"));
    &all[start..start + h * w]
}

/// The `H×W` blocks of channel `c`, one per sample.
fn slabs<'a, F: 'a, S: Data<Elem = F>>(x: &'a ArrayBase<S, Ix4>, c: usize) -> impl Iterator<Item = &'a [F]> + 'a {
    (0..x.dim().0).map(move |n| slab(x, n, c))
}

/// Independent partial sums: a reduction over a channel with one accumulator waits on the
/// floating-point adder's latency at every element (the order of a float sum is fixed, so
/// the compiler may not split it); eight run in parallel and vectorise.
const LANES: usize = 8;

/// `Σ f(x)` over `xs`, in [`LANES`] partial sums.
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

/// `Σ f(a, b)` over `a` and `b` element by element (equal lengths), in [`LANES`] partial sums.
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

/// Panics naming the shapes unless gamma (and beta) have one entry per channel of `x`.
fn check_params(op: &str, x: &[usize], gamma: &[usize], beta: Option<&[usize]>) {
    let channels = x[1];
    assert_eq!(
        gamma,
        [channels],
        "{op}: gamma shape {gamma:?} does not match the {channels} channels of input shape {x:?}"
    );
    if let Some(beta) = beta {
        assert_eq!(
            beta,
            [channels],
            "{op}: beta shape {beta:?} does not match the {channels} channels of input shape {x:?}"
        );
    }
}

/// Panics naming both shapes unless the adjoint has the input's shape.
fn check_grad(op: &str, g: &[usize], x: &[usize]) {
    assert_eq!(g, x, "{op}: gradient shape {g:?} differs from input shape {x:?}");
}
