//! Reductions: everything to a scalar (`sum`, `mean`) and along one axis
//! (`sum_axis`, `mean_axis`), with their backward passes.

use ndarray::{Array, ArrayBase, Axis, Data, Dimension, RemoveAxis};

use crate::Float;

/// `Σ a`, all elements.
pub fn sum<F: Float, S: Data<Elem = F>, D: Dimension>(a: &ArrayBase<S, D>) -> F {
    a.sum()
}

/// Backward of [`sum`]: an array of shape `dim` filled with `g`.
pub fn sum_grad<F: Float, D: Dimension>(g: F, dim: &D) -> Array<F, D> {
    Array::from_elem(dim.clone(), g)
}

/// The mean of all elements.
///
/// # Panics
/// If `a` is empty (the mean is undefined).
pub fn mean<F: Float, S: Data<Elem = F>, D: Dimension>(a: &ArrayBase<S, D>) -> F {
    assert!(!a.is_empty(), "mean: the array of shape {:?} is empty", a.shape());
    a.sum() / F::of_usize(a.len())
}

/// Backward of [`mean`]: an array of shape `dim` filled with `g / n`.
pub fn mean_grad<F: Float, D: Dimension>(g: F, dim: &D) -> Array<F, D> {
    let n = dim.size();
    Array::from_elem(dim.clone(), g / F::of_usize(n))
}

fn check_axis(op: &str, shape: &[usize], axis: Axis) {
    assert!(
        axis.index() < shape.len(),
        "{op}: axis {} is out of bounds for shape {:?}",
        axis.index(),
        shape
    );
}

/// `Σ` along `axis`, removing it.
///
/// # Panics
/// If `axis` is out of bounds.
pub fn sum_axis<F: Float, S: Data<Elem = F>, D: RemoveAxis>(a: &ArrayBase<S, D>, axis: Axis) -> Array<F, D::Smaller> {
    check_axis("sum_axis", a.shape(), axis);
    a.sum_axis(axis)
}

/// Backward of [`sum_axis`]: `g` with `axis` re-inserted and broadcast to `dim`.
pub fn sum_axis_grad<F: Float, E: Dimension, D: Dimension>(g: Array<F, E>, axis: Axis, dim: &D) -> Array<F, D> {
    let expanded = g.into_dyn().insert_axis(axis);
    let shape = dim.slice();
    let broadcast = expanded
        .broadcast(shape)
        .unwrap_or_else(|| panic!("sum_axis_grad: gradient does not broadcast to the input shape {shape:?}"));
    broadcast
        .to_owned()
        .into_dimensionality::<D>()
        .unwrap_or_else(|_| unreachable!("broadcast to dim has dim's rank"))
}

/// The mean along `axis`, removing it.
///
/// # Panics
/// If `axis` is out of bounds or has length 0.
pub fn mean_axis<F: Float, S: Data<Elem = F>, D: RemoveAxis>(a: &ArrayBase<S, D>, axis: Axis) -> Array<F, D::Smaller> {
    check_axis("mean_axis", a.shape(), axis);
    let n = a.len_of(axis);
    assert!(
        n > 0,
        "mean_axis: axis {} of shape {:?} is empty",
        axis.index(),
        a.shape()
    );
    let mut s = a.sum_axis(axis);
    let inv = F::one() / F::of_usize(n);
    s.mapv_inplace(|v| v * inv);
    s
}

/// Backward of [`mean_axis`]: `g / n` broadcast back along `axis`.
pub fn mean_axis_grad<F: Float, E: Dimension, D: Dimension>(mut g: Array<F, E>, axis: Axis, dim: &D) -> Array<F, D> {
    let n = dim.slice()[axis.index()];
    let inv = F::one() / F::of_usize(n);
    g.mapv_inplace(|v| v * inv);
    sum_axis_grad(g, axis, dim)
}

/// The fill value of the input's adjoint in [`mean`]: `g / n` (the array [`mean_grad`] would fill).
pub fn mean_grad_fill<F: Float, D: Dimension>(g: F, dim: &D) -> F {
    g / F::of_usize(dim.size())
}

/// The fill value of the input's adjoint in [`mean_axis`] when the output's adjoint is the
/// fill `g`: `g / n` with `n` the length of `axis`.
pub fn mean_axis_grad_fill<F: Float, D: Dimension>(g: F, axis: Axis, dim: &D) -> F {
    g / F::of_usize(dim.slice()[axis.index()])
}
