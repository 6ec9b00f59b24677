//! Fused backward passes of chains of elementwise ops.
//!
//! For `y = f3(f2(f1(x)))` the unfused backward runs three passes over memory
//! (`g ↦ g·f3'`, then `·f2'`, then `·f1'`). When each intermediate adjoint has no other
//! use, the macro emits one `chainN` call instead: a single pass that reads the saved
//! value of each op and applies every op's scalar backward rule (the same
//! `*_grad_scalar` functions the unfused kernels map) in reverse order.
//!
//! When the chain's adjoint is the seed of a `sum` (one float `g` standing for a filled
//! array), the `fill_chainN` forms start from `g` itself: the pass that would write the
//! filled array and the chain's pass are one, writing the result once (`(x * x).sum()`
//! runs backward as a single `2·g·x` pass). The `outer_chainN` forms do the same for an
//! adjoint held as an outer product `u·vᵀ` ([`Outer`]): each element `uᵢ·vⱼ` is formed where
//! the chain reads it, and the full adjoint matrix is never written.

use ndarray::{Array, Array2, ArrayBase, Data, Dimension, Ix2, Zip};

use super::rank1::Outer;

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

/// `f(g, s1)` for every element of `s1`, into a new array: the fused backward of one
/// elementwise op whose adjoint is the fill `g` (see the module's doc).
pub fn fill_chain1<F, S1, D>(g: F, s1: &ArrayBase<S1, D>, f: impl Fn(F, F) -> F) -> Array<F, D>
where
    F: Float,
    S1: Data<Elem = F>,
    D: Dimension,
{
    s1.mapv(|a| f(g, a))
}

/// The fused backward of two elementwise ops whose adjoint is the fill `g`.
///
/// # Panics
/// If the shapes differ; the message names them.
pub fn fill_chain2<F, S1, S2, D>(
    g: F,
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
    check_shapes("fill_chain2", s1.shape(), &[s2.shape()]);
    Zip::from(s1).and(s2).map_collect(|&a, &b| f(g, a, b))
}

/// The fused backward of three elementwise ops whose adjoint is the fill `g`.
pub fn fill_chain3<F, S1, S2, S3, D>(
    g: F,
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
    check_shapes("fill_chain3", s1.shape(), &[s2.shape(), s3.shape()]);
    Zip::from(s1).and(s2).and(s3).map_collect(|&a, &b, &c| f(g, a, b, c))
}

/// The fused backward of four elementwise ops whose adjoint is the fill `g`.
pub fn fill_chain4<F, S1, S2, S3, S4, D>(
    g: F,
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
    check_shapes("fill_chain4", s1.shape(), &[s2.shape(), s3.shape(), s4.shape()]);
    Zip::from(s1)
        .and(s2)
        .and(s3)
        .and(s4)
        .map_collect(|&a, &b, &c, &d| f(g, a, b, c, d))
}

/// Panics unless every saved matrix has the outer product's shape.
fn check_outer<F: Float>(op: &str, g: &Outer<F>, saved: &[&[usize]]) {
    let (m, n) = g.shape();
    check_shapes(op, &[m, n], saved);
}

/// `f(uᵢ·vⱼ, s1ᵢⱼ)` for every element: the fused backward of one elementwise op whose adjoint
/// is the outer product `g` (see the module's doc).
pub fn outer_chain1<F, S1>(g: &Outer<F>, s1: &ArrayBase<S1, Ix2>, f: impl Fn(F, F) -> F) -> Array2<F>
where
    F: Float,
    S1: Data<Elem = F>,
{
    check_outer("outer_chain1", g, &[s1.shape()]);
    let mut out = Array2::zeros(g.shape());
    Zip::from(out.rows_mut())
        .and(s1.rows())
        .and(&g.u)
        .for_each(|mut o, a, &ui| {
            Zip::from(&mut o)
                .and(&a)
                .and(&g.v)
                .for_each(|o, &a, &vj| *o = f(ui * vj, a));
        });
    out
}

/// The fused backward of two elementwise ops whose adjoint is the outer product `g`.
pub fn outer_chain2<F, S1, S2>(
    g: &Outer<F>,
    s1: &ArrayBase<S1, Ix2>,
    s2: &ArrayBase<S2, Ix2>,
    f: impl Fn(F, F, F) -> F,
) -> Array2<F>
where
    F: Float,
    S1: Data<Elem = F>,
    S2: Data<Elem = F>,
{
    check_outer("outer_chain2", g, &[s1.shape(), s2.shape()]);
    let mut out = Array2::zeros(g.shape());
    Zip::from(out.rows_mut())
        .and(s1.rows())
        .and(s2.rows())
        .and(&g.u)
        .for_each(|mut o, a, b, &ui| {
            Zip::from(&mut o)
                .and(&a)
                .and(&b)
                .and(&g.v)
                .for_each(|o, &a, &b, &vj| *o = f(ui * vj, a, b));
        });
    out
}

/// The fused backward of three elementwise ops whose adjoint is the outer product `g`.
pub fn outer_chain3<F, S1, S2, S3>(
    g: &Outer<F>,
    s1: &ArrayBase<S1, Ix2>,
    s2: &ArrayBase<S2, Ix2>,
    s3: &ArrayBase<S3, Ix2>,
    f: impl Fn(F, F, F, F) -> F,
) -> Array2<F>
where
    F: Float,
    S1: Data<Elem = F>,
    S2: Data<Elem = F>,
    S3: Data<Elem = F>,
{
    check_outer("outer_chain3", g, &[s1.shape(), s2.shape(), s3.shape()]);
    let mut out = Array2::zeros(g.shape());
    Zip::from(out.rows_mut())
        .and(s1.rows())
        .and(s2.rows())
        .and(s3.rows())
        .and(&g.u)
        .for_each(|mut o, a, b, c, &ui| {
            Zip::from(&mut o)
                .and(&a)
                .and(&b)
                .and(&c)
                .and(&g.v)
                .for_each(|o, &a, &b, &c, &vj| *o = f(ui * vj, a, b, c));
        });
    out
}

/// The fused backward of four elementwise ops whose adjoint is the outer product `g`.
pub fn outer_chain4<F, S1, S2, S3, S4>(
    g: &Outer<F>,
    s1: &ArrayBase<S1, Ix2>,
    s2: &ArrayBase<S2, Ix2>,
    s3: &ArrayBase<S3, Ix2>,
    s4: &ArrayBase<S4, Ix2>,
    f: impl Fn(F, F, F, F, F) -> F,
) -> Array2<F>
where
    F: Float,
    S1: Data<Elem = F>,
    S2: Data<Elem = F>,
    S3: Data<Elem = F>,
    S4: Data<Elem = F>,
{
    check_outer("outer_chain4", g, &[s1.shape(), s2.shape(), s3.shape(), s4.shape()]);
    let mut out = Array2::zeros(g.shape());
    Zip::from(out.rows_mut())
        .and(s1.rows())
        .and(s2.rows())
        .and(s3.rows())
        .and(s4.rows())
        .and(&g.u)
        .for_each(|mut o, a, b, c, d, &ui| {
            Zip::from(&mut o)
                .and(&a)
                .and(&b)
                .and(&c)
                .and(&d)
                .and(&g.v)
                .for_each(|o, &a, &b, &c, &d, &vj| *o = f(ui * vj, a, b, c, d));
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn outer_chains_equal_the_dense_chain() {
        let g = Outer {
            u: array![1.0, -2.0],
            v: array![0.5, 3.0, -1.0],
        };
        let s = array![[0.1, 0.2, 0.3], [-0.4, 0.5, 0.6]];
        let dense = chain2(g.dense(), &s, &s, |g, a, b| g * a + b);
        assert_eq!(outer_chain2(&g, &s, &s, |g, a, b| g * a + b), dense);
        assert_eq!(outer_chain1(&g, &s, |g, a| g * a), g.dense() * &s);
        assert_eq!(fill_chain1(2.0, &s, |g, a| g * a), &s * 2.0);
    }
}
