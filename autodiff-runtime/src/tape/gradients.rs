//! [`Gradients`]: what a backward returns, the adjoints of the leaves that require a gradient.

use std::ops::Index;

use ndarray::{Array, ArrayD, Dimension};

use super::Var;
use crate::Float;

/// The gradients of one backward, by leaf. Only leaves that require a gradient
/// and that the output depends on have one.
pub struct Gradients<F> {
    /// `(leaf id, gradient)`, increasing in id; `None` once taken.
    grads: Vec<(usize, Option<ArrayD<F>>)>,
}

impl<F> Default for Gradients<F> {
    /// No gradient for any leaf: every `take_as` is zeros. What a function whose output
    /// depends on no parameter has (where `Tape::backward` would panic).
    fn default() -> Self {
        Gradients { grads: Vec::new() }
    }
}

impl<F: Float> Gradients<F> {
    pub(crate) fn new(grads: Vec<(usize, Option<ArrayD<F>>)>) -> Self {
        Gradients { grads }
    }

    fn slot(&self, var: &Var<'_, '_, F>) -> Option<usize> {
        self.grads.binary_search_by_key(&var.id(), |(id, _)| *id).ok()
    }

    /// The gradient of `var`, if it is a leaf that requires one and the output depends on it.
    pub fn get(&self, var: &Var<'_, '_, F>) -> Option<&ArrayD<F>> {
        self.slot(var).and_then(|i| self.grads[i].1.as_ref())
    }

    /// Moves the gradient of `var` out (later calls return `None`).
    pub fn take(&mut self, var: &Var<'_, '_, F>) -> Option<ArrayD<F>> {
        self.slot(var).and_then(|i| self.grads[i].1.take())
    }

    /// The gradient of the leaf `var` with a fixed rank: zeros of its shape if
    /// no gradient reached it (the output does not depend on it).
    ///
    /// # Panics
    /// If `var` is not a leaf that requires a gradient, or its rank is not `D`'s
    /// (the message names the var and its shape).
    pub fn take_as<D: Dimension>(&mut self, var: &Var<'_, '_, F>) -> Array<F, D> {
        assert!(
            var.is_leaf() && var.requires_grad(),
            "take_as: var {} (shape {:?}) is not a leaf that requires a gradient (make it with Tape::param)",
            var.id(),
            var.shape()
        );
        let gradient = self.take(var).unwrap_or_else(|| ArrayD::zeros(var.shape()));
        gradient.into_dimensionality::<D>().unwrap_or_else(|_| {
            panic!(
                "take_as: var {} has shape {:?}, which is not of rank {}",
                var.id(),
                var.shape(),
                D::NDIM.map_or("dynamic".to_string(), |n| n.to_string())
            )
        })
    }

    /// [`Gradients::take_as`] for a 0-d (or one-element) leaf: its gradient as a float.
    ///
    /// # Panics
    /// If `var` is not a leaf that requires a gradient or holds more than one element.
    pub fn take_scalar(&mut self, var: &Var<'_, '_, F>) -> F {
        assert_eq!(
            var.value().len(),
            1,
            "take_scalar: var {} has shape {:?}, not one element",
            var.id(),
            var.shape()
        );
        let gradient = self.take_as::<ndarray::IxDyn>(var);
        gradient
            .iter()
            .copied()
            .next()
            .unwrap_or_else(|| unreachable!("one element"))
    }

    /// How many leaves have a gradient here (taken ones excluded).
    pub fn len(&self) -> usize {
        self.grads.iter().filter(|(_, g)| g.is_some()).count()
    }

    /// Whether no gradient is left.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes of the gradient data held here.
    pub fn bytes(&self) -> usize {
        self.grads
            .iter()
            .filter_map(|(_, g)| g.as_ref())
            .map(|g| g.len() * std::mem::size_of::<F>())
            .sum()
    }
}

impl<F: Float> Index<&Var<'_, '_, F>> for Gradients<F> {
    type Output = ArrayD<F>;

    /// # Panics
    /// If `var` has no gradient here (not a leaf that requires one, unreached, or taken).
    fn index(&self, var: &Var<'_, '_, F>) -> &ArrayD<F> {
        self.get(var).unwrap_or_else(|| {
            panic!(
                "Gradients: no gradient for var {} (shape {:?}, leaf: {}, requires_grad: {}): only leaves made \
                 with Tape::param that the output depends on have one, and take() removes it",
                var.id(),
                var.shape(),
                var.is_leaf(),
                var.requires_grad()
            )
        })
    }
}
