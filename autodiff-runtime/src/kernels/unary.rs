//! Elementwise functions of one array: forward, backward, and the scalar
//! versions that generated code uses when a value is a plain float.
//!
//! Every op is one row of the primitive table (`autodiff_primitives::for_each_unary`):
//! its forward formula, which value its backward reads (`input` or `output`), and its
//! derivative in terms of that value. The macro below expands each row into four
//! functions: `op(&a)`, `op_grad(g, &saved)`, `op_scalar(x)`, `op_grad_scalar(g, saved)`.
//! Both modes and both kinds (array, scalar) therefore share one formula.

use ndarray::{Array, ArrayBase, Data, Dimension, Zip};

use super::flat;
use super::vector::VectorFn;
use crate::Float;

/// Which value an elementwise op's backward reads: its input or its output.
///
/// The macro's liveness pass uses this to decide what to keep from the forward
/// pass; the tape saves the same value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Saves {
    /// The backward reads the op's input `x`.
    Input,
    /// The backward reads the op's output `y` (cheaper for `exp`, `tanh`, ...).
    Output,
    /// The backward reads only whether the output is positive (`y > 0`, relu): a bit per
    /// element ([`SignMask`](super::mask::SignMask)) stands for `y`, decoded as 1 or 0.
    OutputSign,
}

/// The logistic function, computed without overflow for large `|x|`.
#[inline]
pub fn stable_sigmoid<F: Float>(x: F) -> F {
    if x >= F::zero() {
        F::one() / (F::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (F::one() + e)
    }
}

/// A row's optional `vector` column as an `Option<VectorFn>`.
macro_rules! vector_fn {
    () => {
        None
    };
    ($vector:ident) => {
        Some(VectorFn::$vector)
    };
}

/// What a row's optional `vector` column makes of its `f32` forward, for its doc.
macro_rules! vector_doc {
    () => {
        "the scalar formula, element by element"
    };
    ($vector:ident) => {
        concat!(
            "the vectorised form `VectorFn::",
            stringify!($vector),
            "` (`kernels::vector`)"
        )
    };
}

macro_rules! unary_kernels {
    ($(
        $(#[$doc:meta])*
        $variant:ident $name:ident ($grad:ident, $scalar:ident, $grad_scalar:ident, $saves_const:ident)
            forms($($form:ident),*), domain $domain:ident,
            forward |$x:ident| $forward:expr, $(vector $vector:ident,)?
            saves $saves:ident,
            derivative |$s:ident| $derivative:expr;
    )*) => {$(
        $(#[$doc])*
        ///
        #[doc = concat!("On `f32` arrays in standard layout: ", vector_doc!($($vector)?), ".")]
        // Not inlined: a loop over an array gains nothing from inlining, and a generated
        // function with thousands of kernel calls would otherwise become one giant body
        // that LLVM optimises in superlinear time.
        #[inline(never)]
        pub fn $name<F: Float, S: Data<Elem = F>, D: Dimension>(a: &ArrayBase<S, D>) -> Array<F, D> {
            flat::map_vectorised(a, vector_fn!($($vector)?), |$x: F| $forward)
        }

        #[doc = concat!("Backward of [`", stringify!($name), "`]: `g * f'`, in place in `g`'s buffer; `saved` is the op's ", stringify!($saves), ".")]
        ///
        /// # Panics
        /// If `g` and `saved` have different shapes.
        #[inline(never)]
        pub fn $grad<F, S, D>(mut g: Array<F, D>, saved: &ArrayBase<S, D>) -> Array<F, D>
        where
            F: Float,
            S: Data<Elem = F>,
            D: Dimension,
        {
            assert!(
                flat::same_shape(g.shape(), saved.shape()),
                concat!(stringify!($grad), ": gradient shape {:?} differs from saved value shape {:?}"),
                g.shape(),
                saved.shape()
            );
            flat::zip_in_place(&mut g, saved, |g, $s: F| g * $derivative);
            g
        }

        #[doc = concat!("[`", stringify!($name), "`] of one float.")]
        #[inline]
        pub fn $scalar<F: Float>($x: F) -> F {
            $forward
        }

        #[doc = concat!("Backward of [`", stringify!($scalar), "`]; `saved` is the op's ", stringify!($saves), ".")]
        #[inline]
        pub fn $grad_scalar<F: Float>(g: F, $s: F) -> F {
            g * $derivative
        }

        #[doc = concat!("What the backward of `", stringify!($name), "` reads.")]
        pub const $saves_const: Saves = Saves::$saves;
    )*};
}

// The kernels of every row of the primitive table (`autodiff_primitives::for_each_unary`).
autodiff_primitives::for_each_unary!(unary_kernels);

/// `xⁿ` for an integer exponent.
pub fn powi<F: Float, S: Data<Elem = F>, D: Dimension>(a: &ArrayBase<S, D>, n: i32) -> Array<F, D> {
    flat::map(a, |x| x.powi(n))
}

/// Backward of [`powi`]: `g · n·xⁿ⁻¹`; `x` is the op's input.
pub fn powi_grad<F, S, D>(mut g: Array<F, D>, x: &ArrayBase<S, D>, n: i32) -> Array<F, D>
where
    F: Float,
    S: Data<Elem = F>,
    D: Dimension,
{
    assert!(
        flat::same_shape(g.shape(), x.shape()),
        "powi_grad: gradient shape {:?} differs from input shape {:?}",
        g.shape(),
        x.shape()
    );
    flat::zip_in_place(&mut g, x, |g, x| g * powi_derivative(x, n));
    g
}

/// `n·xⁿ⁻¹`, exact at `x = 0` for every `n`.
#[inline]
pub fn powi_derivative<F: Float>(x: F, n: i32) -> F {
    match n {
        0 => F::zero(),
        _ => F::of(f64::from(n)) * x.powi(n - 1),
    }
}

/// `xᵖ` for a float exponent.
pub fn powf<F: Float, S: Data<Elem = F>, D: Dimension>(a: &ArrayBase<S, D>, p: F) -> Array<F, D> {
    flat::map(a, |x| x.powf(p))
}

/// Backward of [`powf`] with respect to the base: `g · p·xᵖ⁻¹`.
pub fn powf_grad<F, S, D>(mut g: Array<F, D>, x: &ArrayBase<S, D>, p: F) -> Array<F, D>
where
    F: Float,
    S: Data<Elem = F>,
    D: Dimension,
{
    assert!(
        flat::same_shape(g.shape(), x.shape()),
        "powf_grad: gradient shape {:?} differs from input shape {:?}",
        g.shape(),
        x.shape()
    );
    flat::zip_in_place(&mut g, x, |g, x| g * powf_derivative(x, p));
    g
}

/// `p·xᵖ⁻¹`.
#[inline]
pub fn powf_derivative<F: Float>(x: F, p: F) -> F {
    if p == F::zero() {
        F::zero()
    } else {
        p * x.powf(p - F::one())
    }
}

/// Backward of an elementwise map `x ↦ f(x)` given its derivative `df`: `g · f'(x)`.
///
/// The macro differentiates a `mapv` closure symbolically and passes the
/// derivative closure here; the tape's `map` op does the same.
pub fn map_grad<F, S, D>(mut g: Array<F, D>, x: &ArrayBase<S, D>, df: impl Fn(F) -> F) -> Array<F, D>
where
    F: Float,
    S: Data<Elem = F>,
    D: Dimension,
{
    assert!(
        flat::same_shape(g.shape(), x.shape()),
        "map_grad: gradient shape {:?} differs from input shape {:?}",
        g.shape(),
        x.shape()
    );
    flat::zip_in_place(&mut g, x, |g, x| g * df(x));
    g
}

/// Backward of an elementwise map `x ↦ f(x, t)` with respect to a float `t` it captures,
/// given `∂f/∂t` as a function of the element: `Σᵢ gᵢ · ∂f/∂t(xᵢ)`.
///
/// # Panics
/// If `g` and `x` have different shapes.
pub fn map_grad_capture<F, S1, S2, D>(g: &ArrayBase<S1, D>, x: &ArrayBase<S2, D>, d: impl Fn(F) -> F) -> F
where
    F: Float,
    S1: Data<Elem = F>,
    S2: Data<Elem = F>,
    D: Dimension,
{
    assert!(
        flat::same_shape(g.shape(), x.shape()),
        "map_grad_capture: gradient shape {:?} differs from input shape {:?}",
        g.shape(),
        x.shape()
    );
    let mut total = F::zero();
    Zip::from(g).and(x).for_each(|&g, &x| total += g * d(x));
    total
}

/// Backward of `x.powi(n)` for one float: `g · n·xⁿ⁻¹`.
#[inline]
pub fn powi_grad_scalar<F: Float>(g: F, x: F, n: i32) -> F {
    g * powi_derivative(x, n)
}

/// Backward of `x.powf(p)` for one float: `g · p·xᵖ⁻¹`.
#[inline]
pub fn powf_grad_scalar<F: Float>(g: F, x: F, p: F) -> F {
    g * powf_derivative(x, p)
}

/// Derivative of `x.max(bound)` with respect to `x`: 1 where `x > bound`, else 0.
#[inline]
pub fn max_derivative<F: Float>(x: F, bound: F) -> F {
    if x > bound {
        F::one()
    } else {
        F::zero()
    }
}

/// Derivative of `x.min(bound)` with respect to `x`: 1 where `x < bound`, else 0.
#[inline]
pub fn min_derivative<F: Float>(x: F, bound: F) -> F {
    if x < bound {
        F::one()
    } else {
        F::zero()
    }
}

/// `0` of `x`'s float type (generated derivative code uses it to avoid typed literals).
#[inline]
pub fn zero_like<F: Float>(_x: F) -> F {
    F::zero()
}

/// `1` of `x`'s float type.
#[inline]
pub fn one_like<F: Float>(_x: F) -> F {
    F::one()
}

/// Backward of an elementwise map for one float: `g · df(x)`. Generated fused backward
/// passes call it so that the derivative closure's argument type is fixed to `F`.
#[inline]
pub fn map_grad_scalar<F: Float>(g: F, x: F, df: impl Fn(F) -> F) -> F {
    g * df(x)
}
