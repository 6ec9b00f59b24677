//! Fused backward passes of chains of elementwise ops.
//!
//! For `y = f3(f2(f1(x)))` the unfused backward runs three passes over memory
//! (`g ↦ g·f3'`, then `·f2'`, then `·f1'`). When each intermediate adjoint has no other
//! use, the macro emits one `chainN` call instead: a single pass that reads the saved
//! value of each op and applies every op's scalar backward rule (the same
//! `*_grad_scalar` functions the unfused kernels map) in reverse order.

use ndarray::{Array, ArrayBase, Data, Dimension, Zip};

use crate::Float;

fn check_shapes(op: &str, g: &[usize], saved: &[&[usize]]) {
    for s in saved {
        assert_eq!(g, *s, "{op}: gradient shape {g:?} differs from saved value shape {s:?}");
    }
}

/// `g ↦ f(g, s1, s2)` elementwise, in `g`'s buffer: the fused backward of two elementwise ops.
///
/// # Panics
/// If the shapes differ; the message names them.
pub fn chain2<F, S1, S2, D>(
    mut g: Array<F, D>,
    s1: &ArrayBase<S1, D>,
    s2: &ArrayBase<S2, D>,
    f: impl Fn(F, F, F) -> F,
) -> Array<F, D>
where
    F: Float,
    S1: Data<Elem = F>,
    S2: Data<Elem = F>,
    D: Dimension,
{
    check_shapes("chain2", g.shape(), &[s1.shape(), s2.shape()]);
    Zip::from(&mut g).and(s1).and(s2).for_each(|g, &a, &b| *g = f(*g, a, b));
    g
}

/// The fused backward of three elementwise ops (see [`chain2`]).
pub fn chain3<F, S1, S2, S3, D>(
    mut g: Array<F, D>,
    s1: &ArrayBase<S1, D>,
    s2: &ArrayBase<S2, D>,
    s3: &ArrayBase<S3, D>,
    f: impl Fn(F, F, F, F) -> F,
) -> Array<F, D>
where
    F: Float,
    S1: Data<Elem = F>,
    S2: Data<Elem = F>,
    S3: Data<Elem = F>,
    D: Dimension,
{
    check_shapes("chain3", g.shape(), &[s1.shape(), s2.shape(), s3.shape()]);
    Zip::from(&mut g)
        .and(s1)
        .and(s2)
        .and(s3)
        .for_each(|g, &a, &b, &c| *g = f(*g, a, b, c));
    g
}

/// The fused backward of four elementwise ops (see [`chain2`]).
pub fn chain4<F, S1, S2, S3, S4, D>(
    mut g: Array<F, D>,
    s1: &ArrayBase<S1, D>,
    s2: &ArrayBase<S2, D>,
    s3: &ArrayBase<S3, D>,
    s4: &ArrayBase<S4, D>,
    f: impl Fn(F, F, F, F, F) -> F,
) -> Array<F, D>
where
    F: Float,
    S1: Data<Elem = F>,
    S2: Data<Elem = F>,
    S3: Data<Elem = F>,
    S4: Data<Elem = F>,
    D: Dimension,
{
    check_shapes("chain4", g.shape(), &[s1.shape(), s2.shape(), s3.shape(), s4.shape()]);
    Zip::from(&mut g)
        .and(s1)
        .and(s2)
        .and(s3)
        .and(s4)
        .for_each(|g, &a, &b, &c, &d| *g = f(*g, a, b, c, d));
    g
}
