//! Elementwise `+ - * /` with ndarray broadcasting, their array-scalar and
//! scalar-array forms, and the vector-Jacobian products of each.
//!
//! Naming: `add` is the forward of `a + b`; `add_grad_lhs`/`add_grad_rhs` take the
//! output's adjoint `g` (by value, so its buffer can be reused) and return the
//! adjoint of one operand, already reduced back to that operand's shape.
//! Scalar operands are plain `F`; `_scalar` means "array op scalar" and
//! `scalar_` means "scalar op array".

use ndarray::{Array, ArrayBase, Axis, Data, DimMax, Dimension, Zip};

use super::flat;
use crate::Float;

/// Sums `g` over the axes along which an operand of shape `dim` was broadcast,
/// so that the result has exactly the operand's shape.
///
/// This is ndarray's broadcasting rule run backwards: leading axes that the
/// operand lacks are summed away, and axes where the operand had length 1 are
/// summed with the axis kept. When no axis was broadcast the buffer is reused.
///
/// # Panics
/// If `dim` cannot broadcast to `g`'s shape.
pub fn unbroadcast<F: Float, E: Dimension, D: Dimension>(g: Array<F, E>, dim: &D) -> Array<F, D> {
    let target = dim.slice();
    if flat::same_shape(g.shape(), target) {
        return g
            .into_dimensionality::<D>()
            .unwrap_or_else(|_| unreachable!("equal shapes imply equal rank"));
    }
    // Leading and trailing axes summed, on the flat slice: the common cases, without the
    // dynamic-rank arrays of the general path below.
    if let Some(summed) = flat::sum_to_shape(&g, dim) {
        return summed;
    }
    assert!(
        g.ndim() >= target.len(),
        "unbroadcast: operand shape {:?} has more axes than the gradient shape {:?}",
        target,
        g.shape()
    );
    let mut g = g.into_dyn();
    while g.ndim() > target.len() {
        g = g.sum_axis(Axis(0));
    }
    for (axis, &len) in target.iter().enumerate() {
        let have = g.shape()[axis];
        if len == 1 && have != 1 {
            g = g.sum_axis(Axis(axis)).insert_axis(Axis(axis));
        } else {
            assert_eq!(
                have,
                len,
                "unbroadcast: operand shape {:?} does not broadcast to the gradient shape {:?}",
                target,
                g.shape()
            );
        }
    }
    g.into_dimensionality::<D>()
        .unwrap_or_else(|_| unreachable!("rank was reduced to the operand's rank"))
}

/// [`unbroadcast`] from a borrowed adjoint: the operand's adjoint in a new array, `g` left
/// intact. For `a + b` whose two adjoints are both needed, a caller can compute the
/// broadcast operand's adjoint (a reduction) from `&g` first and then move `g` itself into
/// the other's, instead of cloning `g` for one of them.
///
/// # Panics
/// If `dim` cannot broadcast to `g`'s shape.
pub fn unbroadcast_ref<F: Float, E: Dimension, D: Dimension>(g: &Array<F, E>, dim: &D) -> Array<F, D> {
    flat::sum_to_shape(g, dim).unwrap_or_else(|| unbroadcast(g.clone(), dim))
}

/// The output shape of broadcasting `a` with `b`, or a panic naming `op` and both shapes.
pub(crate) fn check_broadcast(op: &str, a: &[usize], b: &[usize]) {
    let n = a.len().max(b.len());
    for i in 0..n {
        let da = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
        let db = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
        assert!(
            da == db || da == 1 || db == 1,
            "{op}: shapes {a:?} and {b:?} cannot be broadcast together"
        );
    }
}

macro_rules! broadcasting_forward {
    ($($(#[$doc:meta])* $name:ident => $op:tt;)*) => {$(
        $(#[$doc])*
        ///
        /// # Panics
        /// If the shapes cannot be broadcast together; the message names both.
        pub fn $name<F, S1, S2, D1, D2>(
            a: &ArrayBase<S1, D1>,
            b: &ArrayBase<S2, D2>,
        ) -> Array<F, <D1 as DimMax<D2>>::Output>
        where
            F: Float,
            S1: Data<Elem = F>,
            S2: Data<Elem = F>,
            D1: Dimension + DimMax<D2>,
            D2: Dimension,
        {
            check_broadcast(stringify!($name), a.shape(), b.shape());
            broadcast_map(a, b, |a, b| a $op b).unwrap_or_else(|| a $op b)
        }
    )*};
}

/// `f(a, b)` elementwise over flat slices when one operand equals the other's shape or
/// repeats along its leading axes (a bias against a batch) and both are row-major; `None`
/// otherwise, for ndarray's general broadcasting.
///
/// Why not ndarray's `&a + &b` throughout: it goes through `Zip` and the broadcast view's
/// layout checks, which cost about as much as the arithmetic on a small dense layer.
fn broadcast_map<F, S1, S2, D1, D2>(
    a: &ArrayBase<S1, D1>,
    b: &ArrayBase<S2, D2>,
    f: impl Fn(F, F) -> F,
) -> Option<Array<F, <D1 as DimMax<D2>>::Output>>
where
    F: Float,
    S1: Data<Elem = F>,
    S2: Data<Elem = F>,
    D1: Dimension + DimMax<D2>,
    D2: Dimension,
{
    // The output has the shape of the operand the other repeats into; its rank type is
    // that operand's when their ranks differ, so this conversion only moves the array.
    let output = match flat::zip_map_repeated(a, b, &f) {
        Some(c) => c.into_dimensionality(),
        None => flat::zip_map_repeated(b, a, |b, a| f(a, b))?.into_dimensionality(),
    };
    Some(output.unwrap_or_else(|_| unreachable!("the output has the broadcast shape, of the broadcast rank")))
}

broadcasting_forward! {
    /// `a + b`, broadcasting.
    add => +;
    /// `a - b`, broadcasting.
    sub => -;
    /// `a * b` elementwise, broadcasting.
    mul => *;
    /// `a / b` elementwise, broadcasting.
    div => /;
}

/// Adjoint of `a` in `a + b` (and of either operand of `+`): `g` unbroadcast to `a_dim`.
pub fn add_grad_lhs<F: Float, E: Dimension, D: Dimension>(g: Array<F, E>, a_dim: &D) -> Array<F, D> {
    unbroadcast(g, a_dim)
}

/// Adjoint of `b` in `a + b`.
pub fn add_grad_rhs<F: Float, E: Dimension, D: Dimension>(g: Array<F, E>, b_dim: &D) -> Array<F, D> {
    unbroadcast(g, b_dim)
}

/// Adjoint of `a` in `a - b`.
pub fn sub_grad_lhs<F: Float, E: Dimension, D: Dimension>(g: Array<F, E>, a_dim: &D) -> Array<F, D> {
    unbroadcast(g, a_dim)
}

/// Adjoint of `b` in `a - b`: `-g`, unbroadcast.
pub fn sub_grad_rhs<F: Float, E: Dimension, D: Dimension>(g: Array<F, E>, b_dim: &D) -> Array<F, D> {
    neg_grad(unbroadcast(g, b_dim))
}

/// Adjoint of `a` in `a * b`: `g * b`, unbroadcast to `a_dim`.
/// (By symmetry, the adjoint of `b` is `mul_grad_lhs(g, a, b_dim)`.)
pub fn mul_grad_lhs<F, S, E, D2, D>(mut g: Array<F, E>, b: &ArrayBase<S, D2>, a_dim: &D) -> Array<F, D>
where
    F: Float,
    S: Data<Elem = F>,
    E: Dimension,
    D2: Dimension,
    D: Dimension,
{
    flat::zip_in_place(&mut g, b, |g, b| g * b);
    unbroadcast(g, a_dim)
}

/// Adjoint of `b` in `a * b`: `g * a`, unbroadcast to `b_dim`.
pub fn mul_grad_rhs<F, S, E, D1, D>(g: Array<F, E>, a: &ArrayBase<S, D1>, b_dim: &D) -> Array<F, D>
where
    F: Float,
    S: Data<Elem = F>,
    E: Dimension,
    D1: Dimension,
    D: Dimension,
{
    mul_grad_lhs(g, a, b_dim)
}

/// Adjoint of `a` in `a / b`: `g / b`, unbroadcast to `a_dim`.
pub fn div_grad_lhs<F, S, E, D2, D>(mut g: Array<F, E>, b: &ArrayBase<S, D2>, a_dim: &D) -> Array<F, D>
where
    F: Float,
    S: Data<Elem = F>,
    E: Dimension,
    D2: Dimension,
    D: Dimension,
{
    flat::zip_in_place(&mut g, b, |g, b| g / b);
    unbroadcast(g, a_dim)
}

/// Adjoint of `b` in `a / b`: `-g * a / b²`, unbroadcast to `b_dim`.
pub fn div_grad_rhs<F, S1, S2, E, D1, D2>(
    mut g: Array<F, E>,
    a: &ArrayBase<S1, D1>,
    b: &ArrayBase<S2, D2>,
) -> Array<F, D2>
where
    F: Float,
    S1: Data<Elem = F>,
    S2: Data<Elem = F>,
    E: Dimension,
    D1: Dimension,
    D2: Dimension,
{
    flat::zip3_in_place(&mut g, a, b, |g, a, b| -g * a / (b * b));
    unbroadcast(g, &b.raw_dim())
}

/// `-a`.
pub fn neg<F: Float, S: Data<Elem = F>, D: Dimension>(a: &ArrayBase<S, D>) -> Array<F, D> {
    flat::map(a, |x| -x)
}

/// Adjoint of `a` in `-a`: `-g`, in place.
pub fn neg_grad<F: Float, D: Dimension>(mut g: Array<F, D>) -> Array<F, D> {
    flat::map_in_place(&mut g, |x| -x);
    g
}

/// `a + s` for an array `a` and a scalar `s`.
pub fn add_scalar<F: Float, S: Data<Elem = F>, D: Dimension>(a: &ArrayBase<S, D>, s: F) -> Array<F, D> {
    flat::map(a, |x| x + s)
}

/// `a - s`.
pub fn sub_scalar<F: Float, S: Data<Elem = F>, D: Dimension>(a: &ArrayBase<S, D>, s: F) -> Array<F, D> {
    flat::map(a, |x| x - s)
}

/// `s - a`.
pub fn scalar_sub<F: Float, S: Data<Elem = F>, D: Dimension>(s: F, a: &ArrayBase<S, D>) -> Array<F, D> {
    flat::map(a, |x| s - x)
}

/// `a * s`.
pub fn mul_scalar<F: Float, S: Data<Elem = F>, D: Dimension>(a: &ArrayBase<S, D>, s: F) -> Array<F, D> {
    flat::map(a, |x| x * s)
}

/// `a / s`.
pub fn div_scalar<F: Float, S: Data<Elem = F>, D: Dimension>(a: &ArrayBase<S, D>, s: F) -> Array<F, D> {
    flat::map(a, |x| x / s)
}

/// `s / a`.
pub fn scalar_div<F: Float, S: Data<Elem = F>, D: Dimension>(s: F, a: &ArrayBase<S, D>) -> Array<F, D> {
    flat::map(a, |x| s / x)
}

/// `g * s` in place: the adjoint of `a` in `a * s` or `s * a`.
pub fn scale_grad<F: Float, D: Dimension>(mut g: Array<F, D>, s: F) -> Array<F, D> {
    flat::map_in_place(&mut g, |x| x * s);
    g
}

/// Adjoint of `a` in `a / s`: `g / s`, in place.
pub fn div_scalar_grad_array<F: Float, D: Dimension>(mut g: Array<F, D>, s: F) -> Array<F, D> {
    flat::map_in_place(&mut g, |x| x / s);
    g
}

/// `Σ g`: the adjoint of the scalar `s` in `a + s` or `s + a`.
pub fn sum_grad_of_scalar<F: Float, S: Data<Elem = F>, D: Dimension>(g: &ArrayBase<S, D>) -> F {
    g.sum()
}

/// `Σ g·a`: the adjoint of the scalar `s` in `a * s` or `s * a`.
///
/// # Panics
/// If the shapes differ.
pub fn sum_product<F, S1, S2, D>(g: &ArrayBase<S1, D>, a: &ArrayBase<S2, D>) -> F
where
    F: Float,
    S1: Data<Elem = F>,
    S2: Data<Elem = F>,
    D: Dimension,
{
    assert!(
        flat::same_shape(g.shape(), a.shape()),
        "sum_product: gradient shape {:?} differs from operand shape {:?}",
        g.shape(),
        a.shape()
    );
    let mut acc = F::zero();
    Zip::from(g).and(a).for_each(|&g, &a| acc += g * a);
    acc
}

/// Adjoint of the scalar `s` in `a / s`: `-Σ g·a / s²`.
pub fn div_scalar_grad_scalar<F, S1, S2, D>(g: &ArrayBase<S1, D>, a: &ArrayBase<S2, D>, s: F) -> F
where
    F: Float,
    S1: Data<Elem = F>,
    S2: Data<Elem = F>,
    D: Dimension,
{
    -sum_product(g, a) / (s * s)
}

/// Adjoint of the scalar `s` in `s / a`: `Σ g / a`.
pub fn scalar_div_grad_scalar<F, S1, S2, D>(g: &ArrayBase<S1, D>, a: &ArrayBase<S2, D>) -> F
where
    F: Float,
    S1: Data<Elem = F>,
    S2: Data<Elem = F>,
    D: Dimension,
{
    let mut acc = F::zero();
    Zip::from(g).and(a).for_each(|&g, &a| acc += g / a);
    acc
}

/// Adjoint of `a` in `s / a`: `-g·s / a²`, in place.
pub fn scalar_div_grad_array<F, S, D>(mut g: Array<F, D>, s: F, a: &ArrayBase<S, D>) -> Array<F, D>
where
    F: Float,
    S: Data<Elem = F>,
    D: Dimension,
{
    flat::zip_in_place(&mut g, a, |g, a| -g * s / (a * a));
    g
}

/// `-Σ g`: the adjoint of the scalar `s` in `a - s`.
pub fn sub_scalar_grad_scalar<F: Float, S: Data<Elem = F>, D: Dimension>(g: &ArrayBase<S, D>) -> F {
    -g.sum()
}

/// Adjoint of either float in `a - b` on the `b` side, or of `a` in `-a`: `-g`.
#[inline]
pub fn neg_grad_scalar<F: Float>(g: F) -> F {
    -g
}

/// Adjoint of either float in `a * b`: `g` times the other one.
#[inline]
pub fn mul_grad_scalar<F: Float>(g: F, other: F) -> F {
    g * other
}

/// Adjoint of the float `a` in `a / b`: `g / b`.
#[inline]
pub fn div_grad_lhs_scalar<F: Float>(g: F, b: F) -> F {
    g / b
}

/// Adjoint of the float `b` in `a / b`: `-g·a / b²`.
#[inline]
pub fn div_grad_rhs_scalar<F: Float>(g: F, a: F, b: F) -> F {
    -g * a / (b * b)
}

/// `acc += contribution`: a second (third, ...) adjoint contribution to a value used
/// more than once, added in place.
///
/// # Panics
/// If the shapes differ; the message names both.
pub fn accumulate<F: Float, D: Dimension>(acc: &mut Array<F, D>, contribution: Array<F, D>) {
    assert!(
        flat::same_shape(acc.shape(), contribution.shape()),
        "accumulate: adjoint shape {:?} differs from contribution shape {:?}",
        acc.shape(),
        contribution.shape()
    );
    flat::zip_in_place(acc, &contribution, |acc, c| acc + c);
}

/// Adds `contribution` into the adjoint in `slot`, or makes it the adjoint when the slot
/// is empty: a slice element's adjoint (`d_xs[i]`) starts as its first contribution, with
/// no array of zeros allocated before backward's sweep reaches it and no addition.
pub fn accumulate_slot<F: Float, D: Dimension>(slot: &mut Option<Array<F, D>>, contribution: Array<F, D>) {
    match slot {
        Some(acc) => accumulate(acc, contribution),
        None => *slot = Some(contribution),
    }
}

/// The gradient of a slice from its elements' adjoint slots ([`accumulate_slot`]): zeros
/// shaped like the element where none was received.
pub fn slots_or_zeros<F: Float, D: Dimension, S: ndarray::Data<Elem = F>>(
    slots: Vec<Option<Array<F, D>>>,
    slice: &[ArrayBase<S, D>],
) -> Vec<Array<F, D>> {
    assert_eq!(slots.len(), slice.len(), "slots_or_zeros: one slot per element");
    slots
        .into_iter()
        .zip(slice)
        .map(|(slot, element)| slot.unwrap_or_else(|| Array::zeros(element.raw_dim())))
        .collect()
}

/// The fill value of an operand's adjoint in `a ± b` when the output's adjoint is the
/// constant `g`: `g` times the number of output elements each operand element fed
/// (1 without broadcasting).
pub fn add_grad_fill<F: Float, E: Dimension, D: Dimension>(g: F, out_dim: &E, operand_dim: &D) -> F {
    g * F::of_usize(out_dim.size() / operand_dim.size().max(1))
}

/// [`add_grad_fill`] for the subtracted operand: the negated fill value.
pub fn sub_grad_rhs_fill<F: Float, E: Dimension, D: Dimension>(g: F, out_dim: &E, operand_dim: &D) -> F {
    -add_grad_fill(g, out_dim, operand_dim)
}

/// `Σ g` over an output of shape `out_dim` filled with `g`: the adjoint of the float `s`
/// in `a + s` when `a + s`'s adjoint is a fill.
pub fn fill_sum<F: Float, D: Dimension>(g: F, out_dim: &D) -> F {
    g * F::of_usize(out_dim.size())
}

/// `-Σ g`: [`fill_sum`] for `a - s`.
pub fn fill_sum_neg<F: Float, D: Dimension>(g: F, out_dim: &D) -> F {
    -fill_sum(g, out_dim)
}

/// `Σ g·a = g·Σa`: the adjoint of the float `s` in `a * s` when the output's adjoint is the fill `g`.
pub fn fill_sum_product<F: Float, S: Data<Elem = F>, D: Dimension>(g: F, a: &ArrayBase<S, D>) -> F {
    g * a.sum()
}

/// [`mul_grad_lhs`] from a borrowed adjoint: `g * b` computed out of place in one pass.
/// Used when `g` is still needed afterwards, where a clone followed by the in-place kernel
/// would cost an extra pass over memory.
pub fn mul_grad_lhs_ref<F, S, E, D2, D>(g: &Array<F, E>, b: &ArrayBase<S, D2>, a_dim: &D) -> Array<F, D>
where
    F: Float,
    S: Data<Elem = F>,
    E: Dimension,
    D2: Dimension,
    D: Dimension,
{
    let product = flat::zip_map(g, b, |g, b| g * b);
    unbroadcast(product, a_dim)
}

/// [`mul_grad_rhs`] from a borrowed adjoint (see [`mul_grad_lhs_ref`]).
pub fn mul_grad_rhs_ref<F, S, E, D1, D>(g: &Array<F, E>, a: &ArrayBase<S, D1>, b_dim: &D) -> Array<F, D>
where
    F: Float,
    S: Data<Elem = F>,
    E: Dimension,
    D1: Dimension,
    D: Dimension,
{
    mul_grad_lhs_ref(g, a, b_dim)
}

/// [`div_grad_lhs`] from a borrowed adjoint (see [`mul_grad_lhs_ref`]).
pub fn div_grad_lhs_ref<F, S, E, D2, D>(g: &Array<F, E>, b: &ArrayBase<S, D2>, a_dim: &D) -> Array<F, D>
where
    F: Float,
    S: Data<Elem = F>,
    E: Dimension,
    D2: Dimension,
    D: Dimension,
{
    let quotient = flat::zip_map(g, b, |g, b| g / b);
    unbroadcast(quotient, a_dim)
}

/// [`scale_grad`] from a borrowed adjoint: `g * s` out of place, in one pass.
pub fn scale_grad_ref<F: Float, D: Dimension>(g: &Array<F, D>, s: F) -> Array<F, D> {
    flat::map(g, |x| x * s)
}
