//! Elementwise functions of two arrays with broadcasting (`maximum`, `minimum`, ...): one
//! row each in the primitive table (`autodiff_primitives::for_each_binary`), expanded here
//! into the forward kernel and the two backward kernels.
//!
//! Forward: `f(a, b)` over the broadcast shape. Backward: the adjoint of `a` is
//! `g · ∂f/∂a(a, b)` summed back to `a`'s shape ([`unbroadcast`]), and likewise for `b`.

use ndarray::{Array, ArrayBase, Data, DimMax, Dimension, Zip};

use super::binary::{check_broadcast, unbroadcast};
use crate::Float;

/// `g ← g · ∂f(a, b)` elementwise, with `a` and `b` broadcast to `g`'s shape; panics
/// naming `kernel` and the shapes if they do not broadcast.
fn scale_by_partial<F, S1, S2, E, D1, D2>(
    kernel: &str,
    g: &mut Array<F, E>,
    a: &ArrayBase<S1, D1>,
    b: &ArrayBase<S2, D2>,
    partial: impl Fn(F, F) -> F,
) where
    F: Float,
    S1: Data<Elem = F>,
    S2: Data<Elem = F>,
    E: Dimension,
    D1: Dimension,
    D2: Dimension,
{
    check_broadcast(kernel, g.shape(), a.shape());
    check_broadcast(kernel, g.shape(), b.shape());
    Zip::from(g)
        .and_broadcast(a)
        .and_broadcast(b)
        .for_each(|g, &a, &b| *g *= partial(a, b));
}

macro_rules! pairwise_kernels {
    ($(
        $(#[$doc:meta])*
        $variant:ident $name:ident ($grad_lhs:ident, $grad_rhs:ident) domain $domain:ident,
            forward |$a:ident, $b:ident| $forward:expr,
            derivative_lhs |$la:ident, $lb:ident| $lhs:expr,
            derivative_rhs |$ra:ident, $rb:ident| $rhs:expr;
    )*) => {$(
        $(#[$doc])*
        ///
        /// # Panics
        /// If the shapes cannot be broadcast together; the message names both.
        #[inline(never)]
        pub fn $name<F, S1, S2, D1, D2>(a: &ArrayBase<S1, D1>, b: &ArrayBase<S2, D2>) -> Array<F, <D1 as DimMax<D2>>::Output>
        where
            F: Float,
            S1: Data<Elem = F>,
            S2: Data<Elem = F>,
            D1: Dimension + DimMax<D2>,
            D2: Dimension,
        {
            check_broadcast(stringify!($name), a.shape(), b.shape());
            // `a + b` has the broadcast shape and type; every element is then overwritten.
            let mut out = a + b;
            Zip::from(&mut out)
                .and_broadcast(a)
                .and_broadcast(b)
                .for_each(|out, &$a, &$b| *out = $forward);
            out
        }

        #[doc = concat!("Adjoint of `a` in [`", stringify!($name), "`]`(a, b)`: `g · ∂f/∂a`, summed back to `a`'s shape.")]
        ///
        /// # Panics
        /// If `a` or `b` does not broadcast to `g`'s shape; the message names the shapes.
        #[inline(never)]
        pub fn $grad_lhs<F, S1, S2, E, D1, D2>(mut g: Array<F, E>, a: &ArrayBase<S1, D1>, b: &ArrayBase<S2, D2>) -> Array<F, D1>
        where
            F: Float,
            S1: Data<Elem = F>,
            S2: Data<Elem = F>,
            E: Dimension,
            D1: Dimension,
            D2: Dimension,
        {
            scale_by_partial(stringify!($grad_lhs), &mut g, a, b, |$la: F, $lb: F| $lhs);
            unbroadcast(g, &a.raw_dim())
        }

        #[doc = concat!("Adjoint of `b` in [`", stringify!($name), "`]`(a, b)`: `g · ∂f/∂b`, summed back to `b`'s shape.")]
        ///
        /// # Panics
        /// If `a` or `b` does not broadcast to `g`'s shape; the message names the shapes.
        #[inline(never)]
        pub fn $grad_rhs<F, S1, S2, E, D1, D2>(mut g: Array<F, E>, a: &ArrayBase<S1, D1>, b: &ArrayBase<S2, D2>) -> Array<F, D2>
        where
            F: Float,
            S1: Data<Elem = F>,
            S2: Data<Elem = F>,
            E: Dimension,
            D1: Dimension,
            D2: Dimension,
        {
            scale_by_partial(stringify!($grad_rhs), &mut g, a, b, |$ra: F, $rb: F| $rhs);
            unbroadcast(g, &b.raw_dim())
        }
    )*};
}

autodiff_primitives::for_each_binary!(pairwise_kernels);
