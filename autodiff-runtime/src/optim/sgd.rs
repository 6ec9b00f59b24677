//! Stochastic gradient descent, with momentum, Nesterov momentum and weight decay.

use super::{step_leaves, FlatState, Optimizer, Params};
use crate::Float;
use ndarray::Zip;

/// Stochastic gradient descent, as PyTorch's `torch.optim.SGD` (without `maximize`).
///
/// With learning rate γ, momentum μ, dampening τ and weight decay λ, step `t` (from 1)
/// updates each parameter θ with gradient g as
///
/// ```text
/// g ← g + λ θ                          (if λ ≠ 0: L2 weight decay)
/// b ← g                    if t = 1    (if μ ≠ 0: the momentum buffer)
/// b ← μ b + (1 − τ) g      if t > 1
/// g ← g + μ b              (Nesterov)   or   g ← b   (classical momentum)
/// θ ← θ − γ g
/// ```
///
/// The momentum buffers (one per parameter element, only when μ ≠ 0) are created on the
/// first step.
///
/// ```
/// use autodiff_runtime::optim::Sgd;
/// let mut x = 1.0_f64;
/// let mut opt = Sgd::new(0.1).momentum(0.9).nesterov(true).weight_decay(1e-4);
/// for _ in 0..200 {
///     let grad = 2.0 * x; // d(x²)/dx
///     opt.step(&mut x, &grad);
/// }
/// assert!(x.abs() < 1e-6);
/// ```
#[derive(Clone, Debug)]
pub struct Sgd<F: Float> {
    lr: F,
    momentum: F,
    dampening: F,
    nesterov: bool,
    weight_decay: F,
    steps: u64,
    /// The momentum buffers, when `momentum` is not zero.
    buffers: Option<FlatState<F, 1>>,
    /// Only the shapes, when `momentum` is zero (no state to keep, the structure checked).
    shapes: Option<FlatState<F, 0>>,
}

impl<F: Float> Sgd<F> {
    /// Plain gradient descent with learning rate `lr`: `θ ← θ − lr·g`.
    ///
    /// # Panics
    /// If `lr` is negative or not finite.
    pub fn new(lr: F) -> Self {
        assert!(
            lr >= F::zero() && lr.is_finite(),
            "Sgd: the learning rate must be finite and ≥ 0, got {lr:?}"
        );
        Sgd {
            lr,
            momentum: F::zero(),
            dampening: F::zero(),
            nesterov: false,
            weight_decay: F::zero(),
            steps: 0,
            buffers: None,
            shapes: None,
        }
    }

    /// Sets the momentum factor μ (default 0: no momentum, no buffers).
    ///
    /// # Panics
    /// If `momentum` is negative.
    pub fn momentum(mut self, momentum: F) -> Self {
        assert!(momentum >= F::zero(), "Sgd: momentum must be ≥ 0, got {momentum:?}");
        self.momentum = momentum;
        self
    }

    /// Sets the dampening τ of the momentum buffer's update (default 0).
    pub fn dampening(mut self, dampening: F) -> Self {
        self.dampening = dampening;
        self
    }

    /// Uses Nesterov momentum (default false). It needs a positive momentum and zero
    /// dampening, which the first step checks.
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    /// Sets the L2 weight decay λ, added to the gradient as `λ θ` (default 0).
    ///
    /// # Panics
    /// If `weight_decay` is negative.
    pub fn weight_decay(mut self, weight_decay: F) -> Self {
        assert!(
            weight_decay >= F::zero(),
            "Sgd: weight decay must be ≥ 0, got {weight_decay:?}"
        );
        self.weight_decay = weight_decay;
        self
    }

    /// The number of steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The learning rate.
    pub fn lr(&self) -> F {
        self.lr
    }

    /// Sets the learning rate (for a schedule); the momentum buffers are kept.
    pub fn set_lr(&mut self, lr: F) {
        self.lr = lr;
    }

    /// One update of `params` from `grads` (see the type's formulas).
    ///
    /// # Panics
    /// As [`Optimizer::step`]; also on the first step if Nesterov momentum is asked for
    /// without momentum or with dampening.
    pub fn step<P: Params<F> + ?Sized, G: Params<F> + ?Sized>(&mut self, params: &mut P, grads: &G) {
        assert!(
            !self.nesterov || (self.momentum > F::zero() && self.dampening == F::zero()),
            "Sgd: Nesterov momentum needs a positive momentum and zero dampening (momentum {:?}, dampening {:?})",
            self.momentum,
            self.dampening
        );
        let Sgd {
            lr,
            momentum,
            dampening,
            nesterov,
            weight_decay,
            ..
        } = *self;
        if momentum == F::zero() {
            step_leaves(&mut self.shapes, params, grads, |param, grad, []| {
                Zip::from(param).and(&grad).for_each(|theta, &g| {
                    let g = g + weight_decay * *theta;
                    *theta -= lr * g;
                });
            });
        } else {
            // The buffers start as the first gradient, whatever the dampening.
            let first = self.buffers.is_none();
            step_leaves(&mut self.buffers, params, grads, |param, grad, [buffer]| {
                Zip::from(param).and(&grad).and(buffer).for_each(|theta, &g, b| {
                    let g = g + weight_decay * *theta;
                    *b = if first {
                        g
                    } else {
                        momentum * *b + (F::one() - dampening) * g
                    };
                    let g = if nesterov { g + momentum * *b } else { *b };
                    *theta -= lr * g;
                });
            });
        }
        self.steps += 1;
    }
}

impl<F: Float> Optimizer<F> for Sgd<F> {
    fn step<P: Params<F> + ?Sized, G: Params<F> + ?Sized>(&mut self, params: &mut P, grads: &G) {
        Sgd::step(self, params, grads);
    }

    fn lr(&self) -> F {
        self.lr
    }

    fn set_lr(&mut self, lr: F) {
        self.lr = lr;
    }
}
