//! Adam, and the update it shares with [`AdamW`](super::AdamW).

use super::{step_leaves, FlatState, Optimizer, Params};
use crate::Float;
use ndarray::Zip;

/// Adam (Kingma & Ba, 2015), as PyTorch's `torch.optim.Adam` (without `amsgrad`):
/// weight decay is L2 regularisation added to the gradient. For decoupled weight
/// decay, use [`AdamW`](super::AdamW).
///
/// With learning rate γ, betas (β₁, β₂), ε and weight decay λ, step `t` (from 1)
/// updates each parameter θ with gradient g as
///
/// ```text
/// g ← g + λ θ                       (if λ ≠ 0)
/// m ← β₁ m + (1 − β₁) g             (first moment, m₀ = 0)
/// v ← β₂ v + (1 − β₂) g²            (second moment, v₀ = 0)
/// θ ← θ − γ m̂ / (√v̂ + ε)    with  m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)
/// ```
///
/// computed as PyTorch does: `θ ← θ − (γ / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)`.
/// The moments (two per parameter element) are created on the first step.
/// Defaults are PyTorch's: γ = 10⁻³, β = (0.9, 0.999), ε = 10⁻⁸, λ = 0.
///
/// ```
/// use autodiff_runtime::optim::Adam;
/// use ndarray::{array, Array1};
/// let target = array![1.0, -2.0, 3.0];
/// let mut x = Array1::<f64>::zeros(3);
/// let mut opt = Adam::new(0.1);
/// for _ in 0..500 {
///     let grad = &x - &target; // the gradient of ½‖x − target‖²
///     opt.step(&mut x, &grad);
/// }
/// assert!((&x - &target).iter().all(|d| d.abs() < 1e-3));
/// ```
#[derive(Clone, Debug)]
pub struct Adam<F: Float> {
    pub(super) core: AdamCore<F>,
}

/// What Adam and AdamW share: the hyperparameters, the step count and the moments.
#[derive(Clone, Debug)]
pub(super) struct AdamCore<F: Float> {
    pub(super) lr: F,
    pub(super) beta1: F,
    pub(super) beta2: F,
    pub(super) eps: F,
    pub(super) weight_decay: F,
    /// AdamW's decay `θ ← θ − γλθ` before the update, rather than `g ← g + λθ`.
    pub(super) decoupled: bool,
    pub(super) steps: u64,
    /// The first and second moments, `[m, v]`.
    pub(super) moments: Option<FlatState<F, 2>>,
}

impl<F: Float> AdamCore<F> {
    pub(super) fn new(name: &str, lr: F, weight_decay: F, decoupled: bool) -> Self {
        assert!(
            lr >= F::zero() && lr.is_finite(),
            "{name}: the learning rate must be finite and ≥ 0, got {lr:?}"
        );
        AdamCore {
            lr,
            beta1: F::of(0.9),
            beta2: F::of(0.999),
            eps: F::of(1e-8),
            weight_decay,
            decoupled,
            steps: 0,
            moments: None,
        }
    }

    pub(super) fn step<P: Params<F> + ?Sized, G: Params<F> + ?Sized>(&mut self, params: &mut P, grads: &G) {
        let AdamCore {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            decoupled,
            ..
        } = *self;
        let t = i32::try_from(self.steps + 1).unwrap_or(i32::MAX);
        let bias_correction1 = F::one() - beta1.powi(t);
        let bias_correction2_sqrt = (F::one() - beta2.powi(t)).sqrt();
        let step_size = lr / bias_correction1;
        let (l2, decay) = if decoupled {
            (F::zero(), F::one() - lr * weight_decay)
        } else {
            (weight_decay, F::one())
        };
        step_leaves(&mut self.moments, params, grads, |param, grad, [m, v]| {
            Zip::from(param).and(&grad).and(m).and(v).for_each(|theta, &g, m, v| {
                let g = g + l2 * *theta;
                *theta *= decay;
                *m = beta1 * *m + (F::one() - beta1) * g;
                *v = beta2 * *v + (F::one() - beta2) * g * g;
                *theta -= step_size * *m / (v.sqrt() / bias_correction2_sqrt + eps);
            });
        });
        self.steps += 1;
    }
}

/// The builder methods and accessors Adam and AdamW share, on `self.core`.
macro_rules! adam_methods {
    ($name:literal) => {
        /// Sets the moments' decay rates (β₁, β₂) (default (0.9, 0.999)).
        ///
        /// # Panics
        /// Unless both lie in [0, 1).
        pub fn betas(mut self, beta1: F, beta2: F) -> Self {
            let unit = |b: F| b >= F::zero() && b < F::one();
            assert!(
                unit(beta1) && unit(beta2),
                concat!($name, ": betas must lie in [0, 1), got ({:?}, {:?})"),
                beta1,
                beta2
            );
            self.core.beta1 = beta1;
            self.core.beta2 = beta2;
            self
        }

        /// Sets ε, added to the denominator `√v̂` (default 10⁻⁸).
        ///
        /// # Panics
        /// If `eps` is negative.
        pub fn eps(mut self, eps: F) -> Self {
            assert!(
                eps >= F::zero(),
                concat!($name, ": eps must be ≥ 0, got {:?}"),
                eps
            );
            self.core.eps = eps;
            self
        }

        /// The number of steps taken so far (`t` of the next step is this plus one).
        pub fn steps(&self) -> u64 {
            self.core.steps
        }

        /// The learning rate.
        pub fn lr(&self) -> F {
            self.core.lr
        }

        /// Sets the learning rate (for a schedule); the moments are kept.
        pub fn set_lr(&mut self, lr: F) {
            self.core.lr = lr;
        }

        /// One update of `params` from `grads` (see the type's formulas).
        ///
        /// # Panics
        /// As [`Optimizer::step`].
        pub fn step<P: Params<F> + ?Sized, G: Params<F> + ?Sized>(&mut self, params: &mut P, grads: &G) {
            self.core.step(params, grads);
        }
    };
}

pub(super) use adam_methods;

/// `impl Optimizer<F>` for Adam and AdamW, through their inherent methods.
macro_rules! impl_optimizer {
    ($ty:ident) => {
        impl<F: Float> Optimizer<F> for $ty<F> {
            fn step<P: Params<F> + ?Sized, G: Params<F> + ?Sized>(&mut self, params: &mut P, grads: &G) {
                self.core.step(params, grads);
            }

            fn lr(&self) -> F {
                self.core.lr
            }

            fn set_lr(&mut self, lr: F) {
                self.core.lr = lr;
            }
        }
    };
}

pub(super) use impl_optimizer;

impl<F: Float> Adam<F> {
    /// Adam with learning rate `lr` and PyTorch's other defaults (β = (0.9, 0.999),
    /// ε = 10⁻⁸, no weight decay).
    ///
    /// # Panics
    /// If `lr` is negative or not finite.
    pub fn new(lr: F) -> Self {
        Adam {
            core: AdamCore::new("Adam", lr, F::zero(), false),
        }
    }

    /// Sets the L2 weight decay λ, added to the gradient as `λ θ` before the moments
    /// (default 0). For decay applied to the parameters directly, use
    /// [`AdamW`](super::AdamW).
    ///
    /// # Panics
    /// If `weight_decay` is negative.
    pub fn weight_decay(mut self, weight_decay: F) -> Self {
        assert!(
            weight_decay >= F::zero(),
            "Adam: weight decay must be ≥ 0, got {weight_decay:?}"
        );
        self.core.weight_decay = weight_decay;
        self
    }

    adam_methods!("Adam");
}

/// PyTorch's default learning rate, 10⁻³.
impl<F: Float> Default for Adam<F> {
    fn default() -> Self {
        Adam::new(F::of(1e-3))
    }
}

impl_optimizer!(Adam);
