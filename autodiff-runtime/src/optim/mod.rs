//! Optimizers: [`Sgd`] (with momentum, Nesterov and weight decay), [`Adam`] and
//! [`AdamW`], stepping parameters with the gradients a `_grad` function returns.
//!
//! ```
//! use autodiff_runtime::optim::{Adam, Optimizer};
//! use ndarray::{array, Array1, Array2};
//!
//! // The parameters, kept in any `Params` structure: here a tuple of arrays.
//! let mut params: (Array2<f64>, Array1<f64>) = (Array2::zeros((2, 2)), Array1::zeros(2));
//! // The gradients have the same structure (`loss_grad` returns such a tuple).
//! let grads = (array![[1.0, -1.0], [0.5, 0.0]], array![2.0, -2.0]);
//! let mut opt = Adam::new(0.1);
//! opt.step(&mut params, &grads);
//! // Adam's first step moves every coordinate with a nonzero gradient by about lr.
//! assert!((params.0[[0, 0]] + 0.1).abs() < 1e-6);
//! ```
//!
//! The parameters and their gradients are anything that implements [`Params`]: an
//! array of any dimension, a float, a `Vec` or array of those, and tuples of up to 12
//! of them (nested freely), so the gradient tuple of `loss_grad(&x, &w, &b)` steps a
//! `(w, b)` tuple directly. A struct of parameters implements [`Params`] by visiting
//! its fields in order.
//!
//! Each optimizer keeps its per-parameter state (momentum buffers, Adam's moment
//! estimates) itself, created on the first step with the parameters' shapes and stored
//! flat: one `Vec` per kind of state holding every leaf (array or float) one after the
//! other, in the order [`Params::visit`] gives them. A step visits the leaves in that
//! order and updates each in place; it copies no parameter or gradient. Parameters and
//! gradients whose structure or shapes differ, or parameters whose shapes changed since
//! the first step, make `step` panic with a message naming the shapes.

mod adam;
mod adamw;
mod params;
mod sgd;

pub use adam::Adam;
pub use adamw::AdamW;
pub use params::Params;
pub use sgd::Sgd;

use crate::Float;
use ndarray::{ArrayViewD, ArrayViewMutD, Dimension, IxDyn};

/// What every optimizer does: one update of the parameters from their gradients.
///
/// Each optimizer also has `step`, `lr` and `set_lr` as inherent methods, so this trait
/// need only be imported by code generic over the optimizer.
pub trait Optimizer<F: Float> {
    /// Updates `params` in place from `grads`, which must have the same leaves (arrays
    /// and floats, in [`Params::visit`] order) with the same shapes.
    ///
    /// # Panics
    /// If `params` and `grads` have different numbers of leaves or a leaf's shapes
    /// differ, or if the parameters' shapes changed since the first step (the
    /// optimizer's state was made for them). The message names the shapes.
    fn step<P: Params<F> + ?Sized, G: Params<F> + ?Sized>(&mut self, params: &mut P, grads: &G);

    /// The learning rate.
    fn lr(&self) -> F;

    /// Sets the learning rate (for a schedule); the state is kept.
    fn set_lr(&mut self, lr: F);
}

/// An optimizer's per-leaf state, `N` buffers of it, stored flat: buffer `k` holds
/// every leaf's `k`-th state one after the other (leaf `i` at `offsets[i]..offsets[i + 1]`,
/// in row-major order of its shape).
#[derive(Clone, Debug)]
struct FlatState<F, const N: usize> {
    shapes: Vec<IxDyn>,
    offsets: Vec<usize>,
    buffers: [Vec<F>; N],
}

impl<F: Float, const N: usize> FlatState<F, N> {
    /// Zero-filled state for the leaves of `params`.
    fn zeros<P: Params<F> + ?Sized>(params: &P) -> Self {
        let mut shapes = Vec::new();
        let mut offsets = vec![0];
        params.visit(&mut |leaf| {
            shapes.push(leaf.raw_dim());
            offsets.push(offsets[offsets.len() - 1] + leaf.len());
        });
        let total = offsets[offsets.len() - 1];
        FlatState {
            shapes,
            offsets,
            buffers: std::array::from_fn(|_| vec![F::zero(); total]),
        }
    }
}

/// One optimizer step's traversal: checks that `params` still has the shapes the state
/// was made for (making the state on the first step) and that `grads` has the same, then
/// calls `update(param, grad, state)` once per leaf, in order, with leaf views of the
/// parameter (mutable), its gradient and its `N` state buffers (mutable, row-major).
///
/// Everything is checked before the first parameter is written, so a panic leaves the
/// parameters as they were.
fn step_leaves<F, P, G, const N: usize>(
    state: &mut Option<FlatState<F, N>>,
    params: &mut P,
    grads: &G,
    mut update: impl FnMut(ArrayViewMutD<'_, F>, ArrayViewD<'_, F>, [ArrayViewMutD<'_, F>; N]),
) where
    F: Float,
    P: Params<F> + ?Sized,
    G: Params<F> + ?Sized,
{
    let state = state.get_or_insert_with(|| FlatState::zeros(params));
    check_params_unchanged(&state.shapes, params);

    let mut grad_leaves = Vec::with_capacity(state.shapes.len());
    grads.visit(&mut |leaf| grad_leaves.push(leaf));
    if grad_leaves.len() != state.shapes.len() {
        panic!(
            "optimizer step: {} parameter leaves but {} gradient leaves: parameter shapes {}, gradient shapes {}",
            state.shapes.len(),
            grad_leaves.len(),
            shape_list(state.shapes.iter().map(|s| s.slice())),
            shape_list(grad_leaves.iter().map(|g| g.shape())),
        );
    }
    if let Some(i) = (0..grad_leaves.len()).find(|&i| grad_leaves[i].shape() != state.shapes[i].slice()) {
        panic!(
            "optimizer step: parameter {i} has shape {:?} but its gradient has shape {:?} (parameter shapes {}, \
             gradient shapes {})",
            state.shapes[i].slice(),
            grad_leaves[i].shape(),
            shape_list(state.shapes.iter().map(|s| s.slice())),
            shape_list(grad_leaves.iter().map(|g| g.shape())),
        );
    }

    let mut leaf_index = 0;
    params.visit_mut(&mut |param| {
        let (start, end) = (state.offsets[leaf_index], state.offsets[leaf_index + 1]);
        let shape = &state.shapes[leaf_index];
        let buffers = state.buffers.each_mut().map(|buffer| {
            ArrayViewMutD::from_shape(shape.clone(), &mut buffer[start..end]).expect("state sized from the shape")
        });
        update(param, grad_leaves[leaf_index].view(), buffers);
        leaf_index += 1;
    });
}

/// Panics (naming both lists of shapes) unless `params`' leaves have exactly `shapes`.
fn check_params_unchanged<F: Float, P: Params<F> + ?Sized>(shapes: &[IxDyn], params: &P) {
    let mut matches = true;
    let mut count = 0;
    params.visit(&mut |leaf| {
        matches &= shapes.get(count).is_some_and(|s| s.slice() == leaf.shape());
        count += 1;
    });
    if !matches || count != shapes.len() {
        let mut now = Vec::new();
        params.visit(&mut |leaf| now.push(leaf.shape().to_vec()));
        panic!(
            "optimizer step: the parameters changed since the first step: the optimizer's state was made for shapes {}, \
             the parameters now have shapes {}",
            shape_list(shapes.iter().map(|s| s.slice())),
            shape_list(now.iter().map(|s| s.as_slice())),
        );
    }
}

/// `[[3, 2], [2], []]`: one shape per leaf (`[]` for a float).
fn shape_list<'a>(shapes: impl Iterator<Item = &'a [usize]>) -> String {
    let shapes: Vec<String> = shapes.map(|s| format!("{s:?}")).collect();
    format!("[{}]", shapes.join(", "))
}
