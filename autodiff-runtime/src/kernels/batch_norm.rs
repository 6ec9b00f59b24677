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
//!
//! Where the static code keeps `x` rounded (`residuals = "bf16"`) while the statistics
//! describe the unrounded `x`, it runs the sums' twin [`batch_norm_sums_measuring`], whose
//! pass also measures the mean and spread of the `x` it reads against the kept statistics,
//! so that backward normalises by the rounded input's own: the exact derivative at the
//! rounded input. Normalising a rounded `x` by the unrounded one's statistics breaks the
//! cancellation in the input's adjoint (`M·g − Σg − x̂·Σg·x̂` is a projection only when `x̂`
//! has mean 0 and variance 1): the gradient of a bias before the norm, 0 in exact arithmetic,
//! came out 4e-2 where rounding leaves 1e-6 (a small convolutional block in f32). The
//! measuring pass keeps four sums instead of two, which costs it 1.3 to 3 times the plain
//! pass at the study's shape (1.34 against 1.07 ms, 1.47 against 0.49, in two builds);
//! only rounded residuals pay it.

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
    /// The `eps` added to the variances.
    eps: F,
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
        BatchStats { values, count, eps }
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
/// the adjoints of beta and gamma, and what the input's adjoint reads; with the
/// normalisation of the `x` they were taken of, relative to the kept statistics (the
/// identity, unless [`batch_norm_sums_measuring`] measured another).
#[derive(Clone, Debug, PartialEq)]
pub struct BatchSums<F> {
    /// Per channel, in blocks of C: `Σg`, `Σg·x̂`, and the shift and scale taking `x`
    /// normalised by the kept statistics to `x̂` (`x̂ = (x̂_kept − shift)·scale`).
    values: Vec<F>,
}

impl<F> BatchSums<F> {
    /// The number of channels, C.
    fn channels(&self) -> usize {
        self.values.len() / 4
    }

    /// `Σg` per channel.
    pub fn sum_g(&self) -> &[F] {
        &self.values[..self.channels()]
    }

    /// `Σg·x̂` per channel.
    pub fn sum_g_xhat(&self) -> &[F] {
        &self.values[self.channels()..2 * self.channels()]
    }

    /// Per channel, the mean of `x` normalised by the kept statistics (0 for the `x` they
    /// were taken of).
    fn shift(&self) -> &[F] {
        &self.values[2 * self.channels()..3 * self.channels()]
    }

    /// Per channel, the factor making `x` normalised by the kept statistics and shifted of
    /// variance 1 (1 for the `x` they were taken of).
    fn scale(&self) -> &[F] {
        &self.values[3 * self.channels()..]
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
/// ([`batch_norm_grad_input`]) read. `x` is the input the statistics were taken of (for an
/// `x` kept rounded, [`batch_norm_sums_measuring`]).
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
    // The kept normalisation as it is: no shift, scale 1.
    let sums = pairs
        .into_iter()
        .map(|(sum_g, sum_g_xhat)| [sum_g, sum_g_xhat, F::zero(), F::one()]);
    BatchSums::of(sums.collect())
}

/// [`batch_norm_sums`] for an `x` that may differ from the one the statistics were taken of
/// (kept rounded): the same pass also takes the mean and variance of the `x` it reads, in
/// units of the kept statistics (an exact shift, so one pass loses nothing to
/// cancellation), and the sums (and the input's adjoint, through them) normalise by those:
/// the exact adjoints at the `x` read. For the `x` the statistics were taken of, they are
/// [`batch_norm_sums`]'s to rounding.
pub fn batch_norm_sums_measuring<F: Float, S: Data<Elem = F>>(
    g: &Array4<F>,
    x: &ArrayBase<S, Ix4>,
    stats: &BatchStats<F>,
) -> BatchSums<F> {
    check_grad("batch_norm_sums_measuring", g.shape(), x.shape());
    check_stats("batch_norm_sums_measuring", x.shape(), stats);
    let (x, g) = (x.as_standard_layout(), g.as_standard_layout());
    let inv_count = F::one() / F::of_usize(stats.count);
    let sums = per_channel(x.len(), stats.channels(), |channel| {
        let (mean, invstd) = (stats.mean()[channel], stats.invstd()[channel]);
        // Σg, Σg·d, Σd, Σd² with d = (x - mean)·invstd.
        let mut sums = [F::zero(); 4];
        for (g, x) in slabs(&g, channel).zip(slabs(&x, channel)) {
            let slab = sum_lanes4(g, x, |x| (x - mean) * invstd);
            for (total, part) in sums.iter_mut().zip(slab) {
                *total += part;
            }
        }
        let [sum_g, sum_g_d, sum_d, sum_d2] = sums;
        // The normalised input's own mean and variance; `eps` in the kept units is
        // `eps·invstd²`.
        let shift = sum_d * inv_count;
        let variance = sum_d2 * inv_count - shift * shift;
        let scale = F::one() / (variance + stats.eps * invstd * invstd).sqrt();
        [sum_g, (sum_g_d - shift * sum_g) * scale, shift, scale]
    });
    BatchSums::of(sums)
}

impl<F: Float> BatchSums<F> {
    /// The sums from their values per channel: `Σg`, `Σg·x̂`, shift, scale.
    fn of(per_channel: Vec<[F; 4]>) -> Self {
        let c = per_channel.len();
        let mut values = vec![F::zero(); 4 * c];
        for (channel, sums) in per_channel.into_iter().enumerate() {
            for (k, value) in sums.into_iter().enumerate() {
                values[k * c + channel] = value;
            }
        }
        BatchSums { values }
    }
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
    let (sum_g, sum_g_xhat, shifts, scales) = (sums.sum_g(), sums.sum_g_xhat(), sums.shift(), sums.scale());
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
            // x̂ = ((x - mean)·invstd - shift)·scale = (x - center)·invstd' (the kept mean and
            // invstd as they are where the sums did not measure another normalisation).
            let invstd = stats.invstd()[c];
            let (mean, invstd) = (stats.mean()[c] + shifts[c] / invstd, invstd * scales[c]);
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
fn per_channel<T: Copy + Default + Send>(elements: usize, channels: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let mut out = vec![T::default(); channels];
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

/// `(Σ a, Σ a·d, Σ d, Σ d²)` with `d = f(b)`, over `a` and `b` element by element (equal
/// lengths), in one pass of [`LANES`] partial sums each.
fn sum_lanes4<F: Float>(a: &[F], b: &[F], f: impl Fn(F) -> F) -> [F; 4] {
    let mut acc = [[F::zero(); 4]; LANES];
    let add = |sums: &mut [F; 4], x: F, d: F| {
        sums[0] += x;
        sums[1] += x * d;
        sums[2] += d;
        sums[3] += d * d;
    };
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let mut rest = [F::zero(); 4];
    for (&x, &y) in ca.remainder().iter().zip(cb.remainder()) {
        add(&mut rest, x, f(y));
    }
    for (xa, xb) in ca.zip(cb) {
        for ((sums, &x), &y) in acc.iter_mut().zip(xa).zip(xb) {
            add(sums, x, f(y));
        }
    }
    let mut total = rest;
    for (k, total) in total.iter_mut().enumerate() {
        *total = acc.iter().fold(*total, |s, lane| s + lane[k]);
    }
    total
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
