//! AdamW: Adam with decoupled weight decay.

use super::adam::{adam_methods, impl_optimizer, AdamCore};
use super::{Optimizer, Params};
use crate::Float;

/// AdamW (Loshchilov & Hutter, 2019), as PyTorch's `torch.optim.AdamW` (without
/// `amsgrad`): Adam whose weight decay shrinks the parameters directly instead of
/// entering the gradient, so the moments see the loss's gradient alone.
///
/// With learning rate γ, betas (β₁, β₂), ε and weight decay λ, step `t` (from 1)
/// updates each parameter θ with gradient g as
///
/// ```text
/// θ ← θ − γ λ θ                     (decoupled weight decay)
/// m ← β₁ m + (1 − β₁) g
/// v ← β₂ v + (1 − β₂) g²
/// θ ← θ − γ m̂ / (√v̂ + ε)    with  m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)
/// ```
///
/// computed as [`Adam`](super::Adam) is. Defaults are PyTorch's: γ = 10⁻³,
/// β = (0.9, 0.999), ε = 10⁻⁸, λ = 10⁻².
///
/// ```
/// use autodiff_runtime::optim::AdamW;
/// let (mut w, mut opt) = (2.0_f64, AdamW::new(0.1).weight_decay(0.5));
/// // With a zero gradient only the decay acts: w ← (1 − γλ) w.
/// opt.step(&mut w, &0.0);
/// assert!((w - 2.0 * 0.95).abs() < 1e-15);
/// ```
#[derive(Clone, Debug)]
pub struct AdamW<F: Float> {
    core: AdamCore<F>,
}

impl<F: Float> AdamW<F> {
    /// AdamW with learning rate `lr` and PyTorch's other defaults (β = (0.9, 0.999),
    /// ε = 10⁻⁸, weight decay 10⁻²).
    ///
    /// # Panics
    /// If `lr` is negative or not finite.
    pub fn new(lr: F) -> Self {
        AdamW {
            core: AdamCore::new("AdamW", lr, F::of(1e-2), true),
        }
    }

    /// Sets the decoupled weight decay λ: each step first multiplies the parameters by
    /// `1 − γλ` (default 10⁻²).
    ///
    /// # Panics
    /// If `weight_decay` is negative.
    pub fn weight_decay(mut self, weight_decay: F) -> Self {
        assert!(
            weight_decay >= F::zero(),
            "AdamW: weight decay must be ≥ 0, got {weight_decay:?}"
        );
        self.core.weight_decay = weight_decay;
        self
    }

    adam_methods!("AdamW");
}

/// PyTorch's default learning rate, 10⁻³.
impl<F: Float> Default for AdamW<F> {
    fn default() -> Self {
        AdamW::new(F::of(1e-3))
    }
}

impl_optimizer!(AdamW);
