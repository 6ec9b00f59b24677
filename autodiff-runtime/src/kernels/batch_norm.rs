//! Batch normalisation in training mode over NCHW inputs: per-channel batch
//! statistics over N, H, W, then `gamma · x̂ + beta`.
//!
//! Forward hands back what it computed besides its output, the per-channel mean and
//! `1/sqrt(var + eps)` ([`BatchStats`], 2·C floats), which both engines keep as the op's
//! residual ([`batch_norm_keeping`]): backward reads them instead of computing them again
//! from `x` (two passes over it). Backward then makes one pass over the adjoint and `x`
//! for the per-channel sums `Σg` and `Σg·x̂` ([`batch_norm_sums`]), which are the adjoints
//! of beta and gamma and what the input's adjoint needs, and one more for the input's
//! adjoint itself ([`batch_norm_grad_input`], in place in the adjoint's buffer): two passes
//! over the large arrays for all three adjoints.

use ndarray::{Array1, Array4, ArrayBase, Axis, Data, Ix1, Ix4};

use super::team;
use crate::Float;

/// The per-channel batch statistics forward computed: the mean and `1/sqrt(var + eps)` of
/// each channel over N, H, W. 2·C floats, in one buffer (what a context or a tape node
/// holds of them: [`BatchStats::bytes`]).
#[derive(Clone, Debug, PartialEq)]
pub struct BatchStats<F> {
    /// The C means, then the C inverse standard deviations.
    values: Vec<F>,
    /// Elements per channel, `N·H·W`.
    count: usize,
}

impl<F: Float> BatchStats<F> {
    /// Two passes per channel (mean, then squared deviations) so that the variance
    /// does not suffer the cancellation of `E[x²] - E[x]²`; `x` in standard layout.
    fn of<S: Data<Elem = F>>(x: &ArrayBase<S, Ix4>, eps: F) -> Self {
        let (n, c, h, w) = x.dim();
        let count = n * h * w;
        let inv_count = F::one() / F::of_usize(count);
        let x = x.view();
        let pairs = per_channel(x.len(), c, |channel| {
            let mu = slabs(&x, channel).map(|s| sum_lanes(s, |v| v)).sum::<F>() * inv_count;
            let sq: F = slabs(&x, channel).map(|s| sum_lanes(s, |v| (v - mu) * (v - mu))).sum();
            (mu, F::one() / (sq * inv_count + eps).sqrt())
        });
        // Allocated at its final length: its capacity is what `bytes` says.
        let mut values = vec![F::zero(); 2 * c];
        for (channel, (mu, invstd)) in pairs.into_iter().enumerate() {
            values[channel] = mu;
            values[c + channel] = invstd;
        }
        BatchStats { values, count }
    }
}

impl<F> BatchStats<F> {
    /// The channels' means.
    pub fn mean(&self) -> &[F] {
        &self.values[..self.channels()]
    }

    /// The channels' `1/sqrt(var + eps)`.
    pub fn invstd(&self) -> &[F] {
        &self.values[self.channels()..]
    }

    /// The number of channels, C.
    pub fn channels(&self) -> usize {
        self.values.len() / 2
    }

    /// Heap bytes held: 2·C floats.
    pub fn bytes(&self) -> usize {
        self.values.len() * std::mem::size_of::<F>()
    }
}

/// The per-channel sums of backward, `Σg` and `Σg·x̂` over N, H, W ([`batch_norm_sums`]):
/// the adjoints of beta and gamma, and what the input's adjoint reads.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchSums<F> {
    /// The C sums of `g`, then the C sums of `g·x̂`.
    values: Vec<F>,
}

impl<F> BatchSums<F> {
    /// `Σg` per channel.
    pub fn sum_g(&self) -> &[F] {
        &self.values[..self.values.len() / 2]
    }

    /// `Σg·x̂` per channel.
    pub fn sum_g_xhat(&self) -> &[F] {
        &self.values[self.values.len() / 2..]
    }
}

/// `gamma[c] · (x - mean_c) / sqrt(var_c + eps) + beta[c]` with biased batch variance.
/// Panics naming the shapes if gamma or beta do not have one entry per channel.
pub fn batch_norm<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>, S3: Data<Elem = F>>(
    x: &ArrayBase<S1, Ix4>,
    gamma: &ArrayBase<S2, Ix1>,
    beta: &ArrayBase<S3, Ix1>,
    eps: F,
) -> Array4<F> {
    batch_norm_keeping(x, gamma, beta, eps).0
}

/// [`batch_norm`], and the statistics it computed on the way, which its backward reads.
pub fn batch_norm_keeping<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>, S3: Data<Elem = F>>(
    x: &ArrayBase<S1, Ix4>,
    gamma: &ArrayBase<S2, Ix1>,
    beta: &ArrayBase<S3, Ix1>,
    eps: F,
) -> (Array4<F>, BatchStats<F>) {
    check_params("batch_norm", x.shape(), gamma.shape(), Some(beta.shape()));
    let mut y = x.as_standard_layout().into_owned();
    let stats = BatchStats::of(&y, eps);
    let (means, invstds) = (stats.mean(), stats.invstd());
    for (c, mut channel) in y.axis_iter_mut(Axis(1)).enumerate() {
        let (mean, scale, shift) = (means[c], gamma[c] * invstds[c], beta[c]);
        channel.mapv_inplace(|v| (v - mean) * scale + shift);
    }
    (y, stats)
}

/// The per-channel sums `Σg` and `Σg·x̂` of [`batch_norm`]'s backward, in one pass over the
/// adjoint `g` and the input `x`, with the statistics forward kept: what the adjoints of
/// beta ([`batch_norm_grad_beta`]), gamma ([`batch_norm_grad_gamma`]) and the input
/// ([`batch_norm_grad_input`]) read.
pub fn batch_norm_sums<F: Float, S: Data<Elem = F>>(
    g: &Array4<F>,
    x: &ArrayBase<S, Ix4>,
    stats: &BatchStats<F>,
) -> BatchSums<F> {
    check_grad("batch_norm_sums", g.shape(), x.shape());
    check_stats("batch_norm_sums", x.shape(), stats);
    let (x, g) = (x.as_standard_layout(), g.as_standard_layout());
    let c = stats.channels();
    let pairs = per_channel(x.len(), c, |channel| {
        let (mean, invstd) = (stats.mean()[channel], stats.invstd()[channel]);
        let (mut sum_g, mut sum_g_xhat) = (F::zero(), F::zero());
        for (g, x) in slabs(&g, channel).zip(slabs(&x, channel)) {
            let (sg, sgx) = sum_lanes_pair(g, x, |g, x| g * (x - mean));
            sum_g += sg;
            sum_g_xhat += sgx;
        }
        (sum_g, sum_g_xhat * invstd)
    });
    let mut values = vec![F::zero(); 2 * c];
    for (channel, (sum_g, sum_g_xhat)) in pairs.into_iter().enumerate() {
        values[channel] = sum_g;
        values[c + channel] = sum_g_xhat;
    }
    BatchSums { values }
}

/// Adjoint of `x` in [`batch_norm`], in place in `g`'s buffer, from the statistics forward
/// kept and the sums of [`batch_norm_sums`]:
/// `gamma·invstd/M · (M·g - Σg - x̂·Σ(g·x̂))` per channel, `M = N·H·W`.
pub fn batch_norm_grad_input<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>>(
    g: Array4<F>,
    x: &ArrayBase<S1, Ix4>,
    gamma: &ArrayBase<S2, Ix1>,
    stats: &BatchStats<F>,
    sums: &BatchSums<F>,
) -> Array4<F> {
    check_params("batch_norm_grad_input", x.shape(), gamma.shape(), None);
    check_grad("batch_norm_grad_input", g.shape(), x.shape());
    check_stats("batch_norm_grad_input", x.shape(), stats);
    let x = x.as_standard_layout();
    let mut dx = if g.is_standard_layout() {
        g
    } else {
        g.as_standard_layout().into_owned()
    };
    let m = F::of_usize(stats.count);
    let (sum_g, sum_g_xhat) = (sums.sum_g(), sums.sum_g_xhat());
    let (_, channels, h, w) = x.dim();
    let sample = channels * h * w;
    let xs = x.as_slice().unwrap_or_else(|| unreachable!("standard layout"));
    let elements = xs.len();
    let out = dx.as_slice_mut().unwrap_or_else(|| unreachable!("standard layout"));
    let gamma = gamma.view();
    // In place, whole samples per thread (their H×W blocks are contiguous).
    team::for_chunks_mut(elements, out, sample.max(1), |offset, out| {
        for (i, out) in out.chunks_mut(h * w).enumerate() {
            let c = (offset / (h * w) + i) % channels;
            let (mean, invstd) = (stats.mean()[c], stats.invstd()[c]);
            let (sum_g, sum_g_xhat) = (sum_g[c], sum_g_xhat[c]);
            let k = gamma[c] * invstd / m;
            let start = offset + i * h * w;
            for (dx, &x) in out.iter_mut().zip(&xs[start..start + h * w]) {
                let xhat = (x - mean) * invstd;
                *dx = k * (m * *dx - sum_g - xhat * sum_g_xhat);
            }
        }
    });
    dx
}

/// Adjoint of `gamma` in [`batch_norm`]: `Σ g · x̂` per channel, from [`batch_norm_sums`].
pub fn batch_norm_grad_gamma<F: Float>(sums: &BatchSums<F>) -> Array1<F> {
    Array1::from(sums.sum_g_xhat().to_vec())
}

/// Adjoint of `beta` in [`batch_norm`]: `Σ g` per channel, from [`batch_norm_sums`].
pub fn batch_norm_grad_beta<F: Float>(sums: &BatchSums<F>) -> Array1<F> {
    Array1::from(sums.sum_g().to_vec())
}

/// Adjoint of `beta` in [`batch_norm`], `Σ g` per channel, from `g` alone: when no other
/// adjoint is needed, one pass over `g` instead of the sums' pass over `g` and `x` (and
/// neither `x` nor the statistics kept).
pub fn batch_norm_grad_beta_direct<F: Float>(g: &Array4<F>) -> Array1<F> {
    let g = g.as_standard_layout();
    Array1::from_shape_fn(g.dim().1, |c| slabs(&g, c).map(|g| sum_lanes(g, |g| g)).sum())
}

/// `f(channel)` for every channel, in order; on the kernel team's threads (channel ranges)
/// when the pass over `elements` elements is large enough. Each channel's sums run as on
/// one thread, so the results do not depend on the thread count.
fn per_channel<F: Float>(elements: usize, channels: usize, f: impl Fn(usize) -> (F, F) + Sync) -> Vec<(F, F)> {
    let mut out = vec![(F::zero(), F::zero()); channels];
    team::for_chunks_mut(elements, &mut out, 1, |first, out| {
        for (i, o) in out.iter_mut().enumerate() {
            *o = f(first + i);
        }
    });
    out
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

/// `(Σ a, Σ f(a, b))` over `a` and `b` element by element (equal lengths), in one pass of
/// [`LANES`] partial sums each (each sum adds in the order [`sum_lanes`] would).
fn sum_lanes_pair<F: Float>(a: &[F], b: &[F], f: impl Fn(F, F) -> F) -> (F, F) {
    let (mut acc_a, mut acc_f) = ([F::zero(); LANES], [F::zero(); LANES]);
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (mut rest_a, mut rest_f) = (F::zero(), F::zero());
    for (&x, &y) in ca.remainder().iter().zip(cb.remainder()) {
        rest_a += x;
        rest_f += f(x, y);
    }
    for (xa, xb) in ca.zip(cb) {
        for (((acc_a, acc_f), &x), &y) in acc_a.iter_mut().zip(acc_f.iter_mut()).zip(xa).zip(xb) {
            *acc_a += x;
            *acc_f += f(x, y);
        }
    }
    (
        acc_a.iter().fold(rest_a, |s, &a| s + a),
        acc_f.iter().fold(rest_f, |s, &a| s + a),
    )
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

/// Panics naming the shapes unless `stats` were taken of an input with `x`'s channels and
/// elements per channel.
fn check_stats<F: Float>(op: &str, x: &[usize], stats: &BatchStats<F>) {
    let (channels, count) = (x[1], x[0] * x[2] * x[3]);
    assert!(
        stats.channels() == channels && stats.count == count,
        "{op}: statistics of {} channels of {} elements do not match input shape {x:?}",
        stats.channels(),
        stats.count
    );
}
