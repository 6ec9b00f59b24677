//! Dual numbers `a + b·ε` (`ε² = 0`): forward-mode derivatives, and with the reverse
//! mode on top of them, second derivatives.
//!
//! [`Dual<F>`] implements [`Float`], so every function generic over `F: Float` runs on
//! it unchanged: the user's function, the `_grad` the macro generates, the tape and every
//! kernel. Run at duals whose tangents are a direction `v`, a function returns its value
//! and its directional derivative (a JVP); its `_grad` returns the gradient as values and
//! the Hessian-vector product `H·v` as tangents (forward over reverse). The macro's
//! `_jvp` and `_hvp` items do exactly that, with the helpers of this module ([`seed`],
//! [`constant`], [`Split`]).
//!
//! ```
//! use autodiff_runtime::dual::Dual;
//! use autodiff_runtime::Float;
//! use num_traits::Float as _; // sin, exp, ...
//! let x = Dual::new(2.0_f64, 1.0); // x = 2, dx = 1
//! let y = x * x.sin();             // y = x·sin x
//! assert_eq!(y.value, 2.0 * 2.0_f64.sin());
//! assert_eq!(y.tangent, 2.0_f64.sin() + 2.0 * 2.0_f64.cos());
//! assert_eq!(<Dual<f64> as Float>::NAME, "Dual<f64>");
//! ```
//!
//! Why a type of our own rather than `num-dual`'s `Dual<T, F>`: [`Float`] requires
//! ndarray's `NdFloat` and `ScalarOperand`, which `num-dual` does not implement for the
//! ndarray this workspace uses (its optional ndarray support is for another major
//! version), and the orphan rule forbids implementing them here for its type. A newtype
//! around it would have to forward every `num_traits::Float` method and operator anyway,
//! which is as long as writing them, and would bring `nalgebra` by default. The rules
//! below are the textbook ones, each one line.
//!
//! Comparisons are lexicographic (value, then tangent), and equality compares both parts.
//! So `max`, `abs` and a branch `if s > 0.0` at a kink (`s.value == 0`) take the side the
//! direction moves into (`relu` at 0 in direction `t` gives the tangent `max(t, 0)`, the
//! one-sided directional derivative), and a kernel's shortcut `if g == F::zero()` is taken
//! only when the tangent is zero too.

use std::cmp::Ordering;
use std::fmt;
use std::iter::{Product, Sum};
use std::num::FpCategory;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Rem, RemAssign, Sub, SubAssign};

use ndarray::{
    Array, ArrayBase, ArrayView2, ArrayViewMut2, Axis, Data, Dimension, NdFloat, ScalarOperand, ShapeBuilder, Zip,
};
use num_traits::{Bounded, FloatConst, FromPrimitive, Num, NumCast, One, Signed, ToPrimitive, Zero};

use crate::kernels::gemm::Backend;
use crate::Float;

/// A dual number `value + tangent·ε` with `ε² = 0`, over a real float `F` (`f32`, `f64`,
/// or another dual, for higher derivatives).
///
/// Arithmetic propagates the tangent by the chain rule: `f(a + bε) = f(a) + f'(a)·b·ε`.
///
/// The layout is `#[repr(C)]`, value then tangent, so a matrix of duals is two interleaved
/// real matrices, which the dual GEMM reads and writes in place ([`parts`], [`parts_mut`]).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct Dual<F> {
    /// The real part: the function's value.
    pub value: F,
    /// The infinitesimal part: the derivative in the seeded direction.
    pub tangent: F,
}

impl<F: Float> Dual<F> {
    /// `value + tangent·ε`.
    pub fn new(value: F, tangent: F) -> Self {
        Dual { value, tangent }
    }

    /// A constant: `value + 0·ε`.
    pub fn constant(value: F) -> Self {
        Dual {
            value,
            tangent: F::zero(),
        }
    }

    /// `f(self)` given `f(value)` and `f'(value)`.
    #[inline]
    fn chain(self, fx: F, dfx: F) -> Self {
        Dual::new(fx, dfx * self.tangent)
    }
}

impl<F: Float> From<F> for Dual<F> {
    fn from(value: F) -> Self {
        Dual::constant(value)
    }
}

/// `"Dual<f32>"`, `"Dual<f64>"` for those reals, `"Dual"` otherwise (a `const` cannot
/// format a string).
const fn dual_name(real: &str) -> &'static str {
    if crate::str_eq(real, "f32") {
        "Dual<f32>"
    } else if crate::str_eq(real, "f64") {
        "Dual<f64>"
    } else if crate::str_eq(real, "Dual<f64>") {
        "Dual<Dual<f64>>"
    } else if crate::str_eq(real, "Dual<f32>") {
        "Dual<Dual<f32>>"
    } else {
        "Dual"
    }
}

impl<F: Float> Float for Dual<F> {
    const NAME: &'static str = dual_name(F::NAME);

    fn of(value: f64) -> Self {
        Dual::constant(F::of(value))
    }

    fn of_usize(value: usize) -> Self {
        Dual::constant(F::of_usize(value))
    }

    /// Three real products (two when `alpha` is a constant): see [`crate::kernels::gemm`].
    fn gemm(
        backend: Option<Backend>,
        threads: usize,
        alpha: Self,
        a: ArrayView2<Self>,
        b: ArrayView2<Self>,
        beta: Self,
        c: ArrayViewMut2<Self>,
    ) {
        crate::kernels::gemm::gemm_dual(backend, threads, alpha, a, b, beta, c);
    }
}

// ---------------------------------------------------------------------------------------
// A matrix of duals as two real matrices, without a copy.

/// The values and the tangents of a matrix of duals, as two strided real views of the
/// same memory (no copy).
pub(crate) fn parts<F: Float>(x: ArrayView2<'_, Dual<F>>) -> (ArrayView2<'_, F>, ArrayView2<'_, F>) {
    let (x, inverted) = positive_strides(x);
    let (shape, strides) = real_layout(x.dim(), x.strides());
    let ptr = x.as_ptr().cast::<F>();
    // SAFETY: `Dual<F>` is `repr(C)` with two fields of type `F`, so it is two `F`s with
    // no padding: the value at offset 0, the tangent at offset 1 (in `F`s). Element
    // `(i, j)` of `x` is at `ptr + 2·(i·s₀ + j·s₁)` in `F`s, so the views with strides
    // `2·s` starting at `ptr` and `ptr + 1` see exactly the values and the tangents of
    // `x`'s elements, which live as long as `x`'s borrow. The strides are non-negative
    // (made so above, as `from_shape_ptr` requires). For an empty `x`, `ptr + 1` is not
    // dereferenced (no element is read); it stays within the allocation or one past it.
    let (values, tangents) = unsafe {
        (
            ArrayView2::from_shape_ptr(shape.strides(strides), ptr),
            ArrayView2::from_shape_ptr(shape.strides(strides), ptr.wrapping_add(1)),
        )
    };
    (restore_axes(values, inverted), restore_axes(tangents, inverted))
}

/// [`parts`] of a mutable matrix: two mutable views that never overlap.
pub(crate) fn parts_mut<F: Float>(x: ArrayViewMut2<'_, Dual<F>>) -> (ArrayViewMut2<'_, F>, ArrayViewMut2<'_, F>) {
    let mut inverted = [false; 2];
    let mut x = x;
    for (axis, flag) in inverted.iter_mut().enumerate() {
        if x.strides()[axis] < 0 {
            x.invert_axis(Axis(axis));
            *flag = true;
        }
    }
    let (shape, strides) = real_layout(x.dim(), x.strides());
    let ptr = x.as_mut_ptr().cast::<F>();
    // SAFETY: as in `parts`; `x` is borrowed mutably for the views' lifetime, and the two
    // views are disjoint (every value is at an even offset from `ptr`, every tangent at
    // an odd one), so neither aliases the other.
    let (mut values, mut tangents) = unsafe {
        (
            ArrayViewMut2::from_shape_ptr(shape.strides(strides), ptr),
            ArrayViewMut2::from_shape_ptr(shape.strides(strides), ptr.wrapping_add(1)),
        )
    };
    for (axis, &flag) in inverted.iter().enumerate() {
        if flag {
            values.invert_axis(Axis(axis));
            tangents.invert_axis(Axis(axis));
        }
    }
    (values, tangents)
}

/// `x` with every negative stride made positive (the axis reversed), and which axes were.
fn positive_strides<F>(mut x: ArrayView2<'_, Dual<F>>) -> (ArrayView2<'_, Dual<F>>, [bool; 2]) {
    let mut inverted = [false; 2];
    for (axis, flag) in inverted.iter_mut().enumerate() {
        if x.strides()[axis] < 0 {
            x.invert_axis(Axis(axis));
            *flag = true;
        }
    }
    (x, inverted)
}

/// Reverses the axes [`positive_strides`] reversed, on a real view.
fn restore_axes<F>(mut x: ArrayView2<'_, F>, inverted: [bool; 2]) -> ArrayView2<'_, F> {
    for (axis, &flag) in inverted.iter().enumerate() {
        if flag {
            x.invert_axis(Axis(axis));
        }
    }
    x
}

/// The shape, and the strides in `F`s (twice those in duals), of a dual matrix's parts.
fn real_layout((rows, cols): (usize, usize), strides: &[isize]) -> ((usize, usize), (usize, usize)) {
    let stride = |s: isize| 2 * s.unsigned_abs();
    ((rows, cols), (stride(strides[0]), stride(strides[1])))
}

// ---------------------------------------------------------------------------------------
// Helpers for the generated `_jvp` and `_hvp`.

/// `x + direction·ε`, elementwise: the dual input of a JVP or HVP.
///
/// # Panics
/// If the shapes differ; the message names both.
pub fn seed<F, S1, S2, D>(x: &ArrayBase<S1, D>, direction: &ArrayBase<S2, D>) -> Array<Dual<F>, D>
where
    F: Float,
    S1: Data<Elem = F>,
    S2: Data<Elem = F>,
    D: Dimension,
{
    assert!(
        x.shape() == direction.shape(),
        "dual::seed: the direction has shape {:?}, the argument {:?}",
        direction.shape(),
        x.shape()
    );
    Zip::from(x).and(direction).map_collect(|&v, &t| Dual::new(v, t))
}

/// `x + 0·ε`, elementwise: an input that is not differentiated.
pub fn constant<F: Float, S: Data<Elem = F>, D: Dimension>(x: &ArrayBase<S, D>) -> Array<Dual<F>, D> {
    x.mapv(Dual::constant)
}

/// A result of dual numbers split into its values and its tangents.
pub trait Split {
    /// The same thing over the real float.
    type Real;

    /// `(values, tangents)`.
    fn split(self) -> (Self::Real, Self::Real);
}

impl<F: Float> Split for Dual<F> {
    type Real = F;

    fn split(self) -> (F, F) {
        (self.value, self.tangent)
    }
}

impl<F: Float, D: Dimension> Split for Array<Dual<F>, D> {
    type Real = Array<F, D>;

    fn split(self) -> (Array<F, D>, Array<F, D>) {
        (self.mapv(|d| d.value), self.mapv(|d| d.tangent))
    }
}

impl<T: Split> Split for Vec<T> {
    type Real = Vec<T::Real>;

    fn split(self) -> (Vec<T::Real>, Vec<T::Real>) {
        self.into_iter().map(Split::split).unzip()
    }
}

// ---------------------------------------------------------------------------------------
// Arithmetic.

impl<F: Float> Add for Dual<F> {
    type Output = Self;
    #[inline]
    fn add(self, rhs: Self) -> Self {
        Dual::new(self.value + rhs.value, self.tangent + rhs.tangent)
    }
}

impl<F: Float> Sub for Dual<F> {
    type Output = Self;
    #[inline]
    fn sub(self, rhs: Self) -> Self {
        Dual::new(self.value - rhs.value, self.tangent - rhs.tangent)
    }
}

impl<F: Float> Mul for Dual<F> {
    type Output = Self;
    #[inline]
    fn mul(self, rhs: Self) -> Self {
        Dual::new(
            self.value * rhs.value,
            self.tangent * rhs.value + self.value * rhs.tangent,
        )
    }
}

impl<F: Float> Div for Dual<F> {
    type Output = Self;
    #[inline]
    fn div(self, rhs: Self) -> Self {
        let q = self.value / rhs.value;
        Dual::new(q, (self.tangent - q * rhs.tangent) / rhs.value)
    }
}

impl<F: Float> Rem for Dual<F> {
    type Output = Self;
    /// `a − b·trunc(a/b)`, with `trunc` piecewise constant.
    fn rem(self, rhs: Self) -> Self {
        let n = (self.value / rhs.value).trunc();
        Dual::new(self.value % rhs.value, self.tangent - n * rhs.tangent)
    }
}

impl<F: Float> Neg for Dual<F> {
    type Output = Self;
    #[inline]
    fn neg(self) -> Self {
        Dual::new(-self.value, -self.tangent)
    }
}

/// The `op=` forms, and the forms with a borrowed right operand (`num_traits::NumRef`).
macro_rules! assign_and_ref_ops {
    ($($op:ident $method:ident $assign:ident $assign_method:ident;)*) => {$(
        impl<F: Float> $assign for Dual<F> {
            #[inline]
            fn $assign_method(&mut self, rhs: Self) {
                *self = $op::$method(*self, rhs);
            }
        }

        impl<'a, F: Float> $op<&'a Dual<F>> for Dual<F> {
            type Output = Self;
            #[inline]
            fn $method(self, rhs: &'a Dual<F>) -> Self {
                $op::$method(self, *rhs)
            }
        }

        impl<'a, F: Float> $op<Dual<F>> for &'a Dual<F> {
            type Output = Dual<F>;
            #[inline]
            fn $method(self, rhs: Dual<F>) -> Dual<F> {
                $op::$method(*self, rhs)
            }
        }

        impl<'a, 'b, F: Float> $op<&'b Dual<F>> for &'a Dual<F> {
            type Output = Dual<F>;
            #[inline]
            fn $method(self, rhs: &'b Dual<F>) -> Dual<F> {
                $op::$method(*self, *rhs)
            }
        }
    )*};
}

assign_and_ref_ops! {
    Add add AddAssign add_assign;
    Sub sub SubAssign sub_assign;
    Mul mul MulAssign mul_assign;
    Div div DivAssign div_assign;
    Rem rem RemAssign rem_assign;
}

impl<F: Float> Sum for Dual<F> {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Dual::zero(), |a, b| a + b)
    }
}

impl<'a, F: Float> Sum<&'a Dual<F>> for Dual<F> {
    fn sum<I: Iterator<Item = &'a Self>>(iter: I) -> Self {
        iter.fold(Dual::zero(), |a, b| a + *b)
    }
}

impl<F: Float> Product for Dual<F> {
    fn product<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Dual::one(), |a, b| a * b)
    }
}

impl<'a, F: Float> Product<&'a Dual<F>> for Dual<F> {
    fn product<I: Iterator<Item = &'a Self>>(iter: I) -> Self {
        iter.fold(Dual::one(), |a, b| a * *b)
    }
}

// ---------------------------------------------------------------------------------------
// Comparison and formatting.

impl<F: Float> PartialEq for Dual<F> {
    /// Both parts equal.
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value && self.tangent == other.tangent
    }
}

impl<F: Float> PartialOrd for Dual<F> {
    /// Lexicographic: by value, then (for equal values) by tangent.
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.value.partial_cmp(&other.value) {
            Some(Ordering::Equal) => self.tangent.partial_cmp(&other.tangent),
            order => order,
        }
    }
}

impl<F: Float> fmt::Display for Dual<F> {
    /// `value+tangentε`, each part with the formatter's options.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.value, f)?;
        if self.tangent >= F::zero() {
            f.write_str("+")?;
        }
        fmt::Display::fmt(&self.tangent, f)?;
        f.write_str("ε")
    }
}

impl<F: Float> fmt::LowerExp for Dual<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerExp::fmt(&self.value, f)?;
        if self.tangent >= F::zero() {
            f.write_str("+")?;
        }
        fmt::LowerExp::fmt(&self.tangent, f)?;
        f.write_str("ε")
    }
}

impl<F: Float> fmt::UpperExp for Dual<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::UpperExp::fmt(&self.value, f)?;
        if self.tangent >= F::zero() {
            f.write_str("+")?;
        }
        fmt::UpperExp::fmt(&self.tangent, f)?;
        f.write_str("ε")
    }
}

// ---------------------------------------------------------------------------------------
// The num-traits and ndarray traits `Float` gathers.

impl<F: Float> Zero for Dual<F> {
    fn zero() -> Self {
        Dual::constant(F::zero())
    }

    fn is_zero(&self) -> bool {
        self.value.is_zero() && self.tangent.is_zero()
    }
}

impl<F: Float> One for Dual<F> {
    fn one() -> Self {
        Dual::constant(F::one())
    }
}

impl<F: Float> Num for Dual<F> {
    type FromStrRadixErr = F::FromStrRadixErr;

    fn from_str_radix(text: &str, radix: u32) -> Result<Self, Self::FromStrRadixErr> {
        F::from_str_radix(text, radix).map(Dual::constant)
    }
}

impl<F: Float> ToPrimitive for Dual<F> {
    fn to_i64(&self) -> Option<i64> {
        self.value.to_i64()
    }

    fn to_u64(&self) -> Option<u64> {
        self.value.to_u64()
    }

    fn to_f32(&self) -> Option<f32> {
        self.value.to_f32()
    }

    fn to_f64(&self) -> Option<f64> {
        self.value.to_f64()
    }
}

impl<F: Float> NumCast for Dual<F> {
    fn from<T: ToPrimitive>(n: T) -> Option<Self> {
        <F as NumCast>::from(n).map(Dual::constant)
    }
}

impl<F: Float> FromPrimitive for Dual<F> {
    fn from_i64(n: i64) -> Option<Self> {
        F::from_i64(n).map(Dual::constant)
    }

    fn from_u64(n: u64) -> Option<Self> {
        F::from_u64(n).map(Dual::constant)
    }

    fn from_f32(n: f32) -> Option<Self> {
        F::from_f32(n).map(Dual::constant)
    }

    fn from_f64(n: f64) -> Option<Self> {
        F::from_f64(n).map(Dual::constant)
    }
}

impl<F: Float> Bounded for Dual<F> {
    fn min_value() -> Self {
        Dual::constant(<F as num_traits::Float>::min_value())
    }

    fn max_value() -> Self {
        Dual::constant(<F as num_traits::Float>::max_value())
    }
}

impl<F: Float> Signed for Dual<F> {
    fn abs(&self) -> Self {
        num_traits::Float::abs(*self)
    }

    fn abs_sub(&self, other: &Self) -> Self {
        #[allow(deprecated)]
        num_traits::Float::abs_sub(*self, *other)
    }

    fn signum(&self) -> Self {
        num_traits::Float::signum(*self)
    }

    fn is_positive(&self) -> bool {
        *self > Dual::zero()
    }

    fn is_negative(&self) -> bool {
        *self < Dual::zero()
    }
}

/// The constants, with a zero tangent.
macro_rules! float_consts {
    ($($name:ident)*) => {
        impl<F: Float + FloatConst> FloatConst for Dual<F> {
            $(fn $name() -> Self { Dual::constant(F::$name()) })*
        }
    };
}

float_consts!(E FRAC_1_PI FRAC_1_SQRT_2 FRAC_2_PI FRAC_2_SQRT_PI FRAC_PI_2 FRAC_PI_3 FRAC_PI_4 FRAC_PI_6 FRAC_PI_8 LN_10 LN_2 LOG10_E LOG2_E PI SQRT_2 TAU LOG10_2 LOG2_10);

impl<F: Float> ScalarOperand for Dual<F> {}

impl<F: Float> NdFloat for Dual<F> {}

/// Constants of `num_traits::Float`, with a zero tangent.
macro_rules! constants {
    ($($name:ident)*) => {$(
        fn $name() -> Self {
            Dual::constant(<F as num_traits::Float>::$name())
        }
    )*};
}

/// Predicates of `num_traits::Float`, read from the value.
macro_rules! predicates {
    ($($name:ident)*) => {$(
        fn $name(self) -> bool {
            self.value.$name()
        }
    )*};
}

/// Piecewise-constant functions: zero tangent.
macro_rules! steps {
    ($($name:ident)*) => {$(
        fn $name(self) -> Self {
            Dual::constant(self.value.$name())
        }
    )*};
}

impl<F: Float> num_traits::Float for Dual<F> {
    constants!(nan infinity neg_infinity neg_zero min_value min_positive_value max_value epsilon);
    predicates!(is_infinite is_normal is_sign_positive is_sign_negative);
    steps!(floor ceil round trunc signum);

    /// Either part is NaN.
    fn is_nan(self) -> bool {
        self.value.is_nan() || self.tangent.is_nan()
    }

    /// Both parts are finite.
    fn is_finite(self) -> bool {
        self.value.is_finite() && self.tangent.is_finite()
    }

    fn classify(self) -> FpCategory {
        self.value.classify()
    }

    fn fract(self) -> Self {
        Dual::new(self.value.fract(), self.tangent)
    }

    /// `self` or `-self`, whichever is not below zero (lexicographically: at zero, the
    /// side the tangent points to).
    fn abs(self) -> Self {
        if self < Dual::zero() {
            -self
        } else {
            self
        }
    }

    fn mul_add(self, a: Self, b: Self) -> Self {
        self * a + b
    }

    fn recip(self) -> Self {
        let r = self.value.recip();
        self.chain(r, -r * r)
    }

    fn powi(self, n: i32) -> Self {
        if n == 0 {
            return Dual::one();
        }
        let below = self.value.powi(n - 1);
        self.chain(below * self.value, F::of(n as f64) * below)
    }

    /// `xᵖ`: `p·xᵖ⁻¹·dx + xᵖ·ln x·dp`; each term is left out when its factor `p` or `dp`
    /// is zero (so `0⁰` and `xᵖ` at `x = 0` with a constant `p` stay finite).
    fn powf(self, p: Self) -> Self {
        let value = self.value.powf(p.value);
        let mut tangent = F::zero();
        if p.value != F::zero() && self.tangent != F::zero() {
            tangent += p.value * self.value.powf(p.value - F::one()) * self.tangent;
        }
        if p.tangent != F::zero() {
            tangent += value * self.value.ln() * p.tangent;
        }
        Dual::new(value, tangent)
    }

    fn sqrt(self) -> Self {
        let s = self.value.sqrt();
        self.chain(s, (F::of(2.0) * s).recip())
    }

    fn exp(self) -> Self {
        let e = self.value.exp();
        self.chain(e, e)
    }

    fn exp2(self) -> Self {
        let e = self.value.exp2();
        self.chain(e, e * F::of(std::f64::consts::LN_2))
    }

    fn exp_m1(self) -> Self {
        self.chain(self.value.exp_m1(), self.value.exp())
    }

    fn ln(self) -> Self {
        self.chain(self.value.ln(), self.value.recip())
    }

    fn log(self, base: Self) -> Self {
        self.ln() / base.ln()
    }

    fn log2(self) -> Self {
        self.chain(self.value.log2(), (self.value * F::of(std::f64::consts::LN_2)).recip())
    }

    fn log10(self) -> Self {
        self.chain(
            self.value.log10(),
            (self.value * F::of(std::f64::consts::LN_10)).recip(),
        )
    }

    fn ln_1p(self) -> Self {
        self.chain(self.value.ln_1p(), (F::one() + self.value).recip())
    }

    /// The larger, lexicographically (NaN is ignored, as `f64::max` does).
    fn max(self, other: Self) -> Self {
        if self.value.is_nan() || other > self {
            other
        } else {
            self
        }
    }

    /// The smaller, lexicographically (NaN is ignored, as `f64::min` does).
    fn min(self, other: Self) -> Self {
        if self.value.is_nan() || other < self {
            other
        } else {
            self
        }
    }

    fn abs_sub(self, other: Self) -> Self {
        if self <= other {
            Dual::zero()
        } else {
            self - other
        }
    }

    fn cbrt(self) -> Self {
        let c = self.value.cbrt();
        self.chain(c, (F::of(3.0) * c * c).recip())
    }

    fn hypot(self, other: Self) -> Self {
        let h = self.value.hypot(other.value);
        Dual::new(h, (self.value * self.tangent + other.value * other.tangent) / h)
    }

    fn sin(self) -> Self {
        self.chain(self.value.sin(), self.value.cos())
    }

    fn cos(self) -> Self {
        self.chain(self.value.cos(), -self.value.sin())
    }

    fn tan(self) -> Self {
        let t = self.value.tan();
        self.chain(t, F::one() + t * t)
    }

    fn asin(self) -> Self {
        self.chain(self.value.asin(), (F::one() - self.value * self.value).sqrt().recip())
    }

    fn acos(self) -> Self {
        self.chain(self.value.acos(), -(F::one() - self.value * self.value).sqrt().recip())
    }

    fn atan(self) -> Self {
        self.chain(self.value.atan(), (F::one() + self.value * self.value).recip())
    }

    /// `atan2(y, x)` with `self = y`: `(x·dy − y·dx) / (x² + y²)`.
    fn atan2(self, other: Self) -> Self {
        let (y, x) = (self.value, other.value);
        Dual::new(y.atan2(x), (x * self.tangent - y * other.tangent) / (x * x + y * y))
    }

    fn sin_cos(self) -> (Self, Self) {
        let (s, c) = self.value.sin_cos();
        (Dual::new(s, c * self.tangent), Dual::new(c, -s * self.tangent))
    }

    fn sinh(self) -> Self {
        self.chain(self.value.sinh(), self.value.cosh())
    }

    fn cosh(self) -> Self {
        self.chain(self.value.cosh(), self.value.sinh())
    }

    fn tanh(self) -> Self {
        let t = self.value.tanh();
        self.chain(t, F::one() - t * t)
    }

    fn asinh(self) -> Self {
        self.chain(self.value.asinh(), (self.value * self.value + F::one()).sqrt().recip())
    }

    fn acosh(self) -> Self {
        self.chain(self.value.acosh(), (self.value * self.value - F::one()).sqrt().recip())
    }

    fn atanh(self) -> Self {
        self.chain(self.value.atanh(), (F::one() - self.value * self.value).recip())
    }

    fn integer_decode(self) -> (u64, i16, i8) {
        self.value.integer_decode()
    }

    fn to_degrees(self) -> Self {
        let k = F::of(180.0 / std::f64::consts::PI);
        Dual::new(self.value * k, self.tangent * k)
    }

    fn to_radians(self) -> Self {
        let k = F::of(std::f64::consts::PI / 180.0);
        Dual::new(self.value * k, self.tangent * k)
    }

    /// The value's sign on `self`: `copysign(x, s) = ±x`.
    fn copysign(self, sign: Self) -> Self {
        if self.value.is_sign_negative() == sign.value.is_sign_negative() {
            self
        } else {
            -self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{constant, seed, Dual, Split};
    use crate::Float;
    use ndarray::{array, Array2};
    use num_traits::{Float as _, One, ToPrimitive, Zero};

    /// The derivative of `f` at `x` by central differences, in f64.
    fn central(f: impl Fn(f64) -> f64, x: f64) -> f64 {
        let h = 1e-6;
        (f(x + h) - f(x - h)) / (2.0 * h)
    }

    #[test]
    fn dual_tangents_of_elementary_functions_match_finite_differences() {
        type D = Dual<f64>;
        /// A name, the function at duals and at reals, and the point.
        type Case = (&'static str, fn(D) -> D, fn(f64) -> f64, f64);
        let cases: Vec<Case> = vec![
            ("exp", |x| x.exp(), |x| x.exp(), 0.7),
            ("ln", |x| x.ln(), |x| x.ln(), 1.3),
            ("sqrt", |x| x.sqrt(), |x| x.sqrt(), 2.1),
            ("tanh", |x| x.tanh(), |x| x.tanh(), -0.4),
            ("sin·cos", |x| x.sin() * x.cos(), |x| x.sin() * x.cos(), 0.3),
            ("tan", |x| x.tan(), |x| x.tan(), 0.5),
            ("powi", |x| x.powi(3), |x| x.powi(3), -1.7),
            ("powf", |x| x.powf(D::of(2.5)), |x| x.powf(2.5), 1.9),
            ("x^x", |x| x.powf(x), |x| x.powf(x), 1.4),
            (
                "recip / div",
                |x| x.recip() / (x + D::one()),
                |x| x.recip() / (x + 1.0),
                0.8,
            ),
            ("asin", |x| x.asin(), |x| x.asin(), 0.3),
            ("acos", |x| x.acos(), |x| x.acos(), 0.3),
            ("atan", |x| x.atan(), |x| x.atan(), 2.0),
            ("atan2", |x| x.atan2(x * x + D::one()), |x| x.atan2(x * x + 1.0), -0.6),
            ("sinh cosh", |x| x.sinh() + x.cosh(), |x| x.sinh() + x.cosh(), 0.9),
            ("asinh acosh", |x| x.asinh() + x.acosh(), |x| x.asinh() + x.acosh(), 1.5),
            ("atanh", |x| x.atanh(), |x| x.atanh(), 0.2),
            ("cbrt", |x| x.cbrt(), |x| x.cbrt(), 3.3),
            ("hypot", |x| x.hypot(D::of(2.0) * x), |x| x.hypot(2.0 * x), 1.1),
            (
                "exp2 log2 log10",
                |x| x.exp2() + x.log2() + x.log10(),
                |x| x.exp2() + x.log2() + x.log10(),
                1.7,
            ),
            (
                "exp_m1 ln_1p",
                |x| x.exp_m1() + x.ln_1p(),
                |x| x.exp_m1() + x.ln_1p(),
                0.4,
            ),
            ("log", |x| x.log(x + D::of(2.0)), |x| x.ln() / (x + 2.0).ln(), 1.2),
            ("rem", |x| (x * x) % x.exp(), |x| (x * x) % x.exp(), 3.1),
            ("mul_add", |x| x.mul_add(x, x.sin()), |x| x.mul_add(x, x.sin()), 0.6),
            (
                "max min abs",
                |x| x.max(-x).min(D::of(5.0)) + (-x).abs(),
                |x| x.max(-x).min(5.0) + x.abs(),
                -0.8,
            ),
            ("degrees", |x| x.to_degrees().to_radians() * x, |x| x * x, 0.6),
        ];
        for (name, dual_f, real_f, x) in cases {
            let y = dual_f(Dual::new(x, 1.0));
            assert!(
                (y.value - real_f(x)).abs() < 1e-12,
                "{name}: value {} vs {}",
                y.value,
                real_f(x)
            );
            let fd = central(real_f, x);
            assert!(
                (y.tangent - fd).abs() <= 1e-7 * (1.0 + fd.abs()),
                "{name}: tangent {} vs finite differences {fd}",
                y.tangent
            );
        }
    }

    #[test]
    fn dual_kinks_take_the_side_the_direction_points_to() {
        let relu = |x: Dual<f64>| x.max(Dual::zero());
        assert_eq!(relu(Dual::new(0.0, 2.0)).tangent, 2.0);
        assert_eq!(relu(Dual::new(0.0, -2.0)).tangent, 0.0);
        assert_eq!(Dual::new(0.0, -3.0).abs().tangent, 3.0);
        assert!(Dual::new(0.0, 1.0) > Dual::zero());
        assert!(Dual::new(0.0, 1.0) != Dual::zero());
        assert!(Dual::<f64>::new(f64::NAN, 0.0).max(Dual::one()) == Dual::one());
    }

    #[test]
    fn dual_powf_at_zero_stays_finite() {
        let zero = Dual::new(0.0, 1.0);
        assert_eq!(zero.powf(Dual::of(2.0)), Dual::new(0.0, 0.0));
        assert_eq!(Dual::new(3.0, 1.0).powf(Dual::zero()), Dual::new(1.0, 0.0));
        assert_eq!(Dual::new(2.0, 1.0).powi(0), Dual::one());
    }

    #[test]
    fn dual_names_and_conversions() {
        assert_eq!(<Dual<f32> as Float>::NAME, "Dual<f32>");
        assert_eq!(<Dual<Dual<f64>> as Float>::NAME, "Dual<Dual<f64>>");
        assert_eq!(Dual::<f64>::of_usize(3), Dual::new(3.0, 0.0));
        assert_eq!(Dual::new(1.5_f64, 2.0).to_f64(), Some(1.5));
        assert_eq!(format!("{}", Dual::new(1.5_f64, -2.0)), "1.5-2ε");
        let s: Dual<f64> = [Dual::new(1.0, 2.0), Dual::new(3.0, 4.0)].into_iter().sum();
        assert_eq!(s, Dual::new(4.0, 6.0));
    }

    #[test]
    fn dual_nested_gives_second_derivatives() {
        // d²/dx² of x³ at 2 is 12: seed both tangents with 1.
        let x = Dual::new(Dual::new(2.0_f64, 1.0), Dual::new(1.0, 0.0));
        let y = x.powi(3);
        assert_eq!(y.value.value, 8.0);
        assert_eq!(y.tangent.value, 12.0);
        assert_eq!(y.tangent.tangent, 12.0);
    }

    #[test]
    fn dual_seed_and_split_round_trip() {
        let x = array![[1.0, 2.0], [3.0, 4.0]];
        let d = array![[0.5, -1.0], [0.0, 2.0]];
        let dual: Array2<Dual<f64>> = seed(&x, &d.view());
        let (values, tangents) = dual.split();
        assert_eq!((values, tangents), (x.clone(), d));
        let (values, tangents) = vec![constant(&x)].split();
        assert_eq!(values[0], x);
        assert!(tangents[0].iter().all(|&t| t == 0.0));
    }
}
