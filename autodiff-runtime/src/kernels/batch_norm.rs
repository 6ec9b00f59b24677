//! Batch normalisation in training mode over NCHW inputs: per-channel batch
//! statistics over N, H, W, then `gamma · x̂ + beta`.
//!
//! The backward functions recompute the statistics from `x` rather than saving
//! them: two passes over one channel are cheap next to the convolution that
//! precedes a batch norm, and the signatures stay free of saved intermediates.

use ndarray::{Array1, Array4, ArrayBase, Axis, Data, Ix1, Ix4, Zip};

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
    let stats = ChannelStats::of(x, eps);
    let mut y = x.as_standard_layout().into_owned();
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
    let stats = ChannelStats::of(x, eps);
    let m = F::of_usize(stats.count);
    let mut dx = Array4::zeros(x.raw_dim());
    for c in 0..stats.mean.len() {
        let (mean, invstd) = (stats.mean[c], stats.invstd[c]);
        let (g_c, x_c) = (g.index_axis(Axis(1), c), x.index_axis(Axis(1), c));
        let (mut sum_g, mut sum_g_xhat) = (F::zero(), F::zero());
        Zip::from(&g_c).and(&x_c).for_each(|&g, &x| {
            sum_g += g;
            sum_g_xhat += g * (x - mean) * invstd;
        });
        // dx = gamma·invstd/M · (M·g - Σg - x̂·Σ(g·x̂)).
        let k = gamma[c] * invstd / m;
        Zip::from(dx.index_axis_mut(Axis(1), c))
            .and(&g_c)
            .and(&x_c)
            .for_each(|dx, &g, &x| {
                let xhat = (x - mean) * invstd;
                *dx = k * (m * g - sum_g - xhat * sum_g_xhat);
            });
    }
    dx
}

/// Adjoint of `gamma` in [`batch_norm`]: `Σ g · x̂` per channel.
pub fn batch_norm_grad_gamma<F: Float, S: Data<Elem = F>>(g: &Array4<F>, x: &ArrayBase<S, Ix4>, eps: F) -> Array1<F> {
    check_grad("batch_norm_grad_gamma", g.shape(), x.shape());
    let stats = ChannelStats::of(x, eps);
    Array1::from_shape_fn(stats.mean.len(), |c| {
        let (mean, invstd) = (stats.mean[c], stats.invstd[c]);
        let mut acc = F::zero();
        Zip::from(g.index_axis(Axis(1), c))
            .and(x.index_axis(Axis(1), c))
            .for_each(|&g, &x| acc += g * (x - mean) * invstd);
        acc
    })
}

/// Adjoint of `beta` in [`batch_norm`]: `Σ g` per channel.
pub fn batch_norm_grad_beta<F: Float>(g: &Array4<F>) -> Array1<F> {
    Array1::from_shape_fn(g.dim().1, |c| g.index_axis(Axis(1), c).sum())
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
    /// does not suffer the cancellation of `E[x²] - E[x]²`.
    fn of<S: Data<Elem = F>>(x: &ArrayBase<S, Ix4>, eps: F) -> Self {
        let (n, c, h, w) = x.dim();
        let count = n * h * w;
        let inv_count = F::one() / F::of_usize(count);
        let mut mean = Vec::with_capacity(c);
        let mut invstd = Vec::with_capacity(c);
        for channel in x.axis_iter(Axis(1)) {
            let mu = channel.sum() * inv_count;
            let mut sq = F::zero();
            channel.for_each(|&v| sq += (v - mu) * (v - mu));
            mean.push(mu);
            invstd.push(F::one() / (sq * inv_count + eps).sqrt());
        }
        ChannelStats { mean, invstd, count }
    }
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
