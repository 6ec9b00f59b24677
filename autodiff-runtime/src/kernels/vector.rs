//! Vectorised forms of elementwise functions on contiguous slices, for the float types
//! that have them: `f32`, through [`rten_vecmath`] (SIMD polynomial approximations with
//! the instruction set chosen at run time: AVX-512, AVX2+FMA, NEON, or a portable
//! fallback).
//!
//! A row of the primitive table names its vectorised form (`vector Tanh` in
//! `autodiff_primitives::for_each_unary`); [`Float::vectorised`](crate::Float::vectorised) says whether a float type
//! has one. `f64` and [`Dual`](crate::dual::Dual) have none, so they run the row's scalar
//! formula exactly as before; `f32` trades the last ulp or two of `libm` (measured in
//! `tests/vector_accuracy.rs`) for a several-fold faster pass (`benches/vector.rs`).
//!
//! Only array kernels over contiguous data take this path: the scalar forms
//! (`tanh_scalar`, the bodies of `mapv` closures) and strided arrays keep the scalar
//! formula.

use rten_simd::SimdUnaryOp;

/// An elementwise function that some float types compute on whole slices at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VectorFn {
    /// `eˣ`: for `f32` within 1 ulp of `f32::exp` (`rten_vecmath::Exp`).
    Exp,
    /// `tanh x`: for `f32` within 3 ulp of `f32::tanh` (`rten_vecmath::Tanh`), with the
    /// sign of zero std gives (`SignedTanh`).
    Tanh,
    /// The logistic function `1 / (1 + e⁻ˣ)`: for `f32` within a few ulp where the result
    /// is a normal float; below `x ≈ −87.3`, where the exact value is subnormal, `0`
    /// (`rten_vecmath::Sigmoid`).
    Sigmoid,
}

/// The vectorised form of one [`VectorFn`] on slices of `F`, as [`Float::vectorised`](crate::Float::vectorised)
/// returns it.
#[derive(Clone, Copy)]
pub struct Vectorised<F> {
    map: fn(&[F]) -> Vec<F>,
    map_in_place: fn(&mut [F]),
}

impl<F> Vectorised<F> {
    /// The function of every element of `xs`, as a new vector of the same length.
    #[inline]
    pub fn map(&self, xs: &[F]) -> Vec<F> {
        (self.map)(xs)
    }

    /// The function of every element of `xs`, written over them.
    #[inline]
    pub fn map_in_place(&self, xs: &mut [F]) {
        (self.map_in_place)(xs)
    }
}

/// `op` of every element of `xs` into a new vector, through `rten_simd`'s run-time
/// dispatch (the tail shorter than a SIMD vector is handled by masked loads and stores).
fn map_with<Op: SimdUnaryOp<f32>>(op: &Op, xs: &[f32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(xs.len());
    let written = op.map(xs, &mut out.spare_capacity_mut()[..xs.len()]).len();
    assert_eq!(
        written,
        xs.len(),
        "a vectorised map wrote {written} of {} elements",
        xs.len()
    );
    // SAFETY: `map` initialised the first `xs.len()` elements of the spare capacity, which
    // holds at least that many (asserted just above: it returns the initialised prefix).
    unsafe { out.set_len(xs.len()) };
    out
}

/// `rten_vecmath::Tanh` with the sign of zero std gives: it takes `x <= 0` as negative and
/// so returns `−0` for `+0` (std: `+0`, which `1 / tanh(0)` or `is_sign_negative` would
/// tell). At `x == ±0` this returns `x` itself, in the same pass: a compare and a select per
/// vector, rather than a second pass over the output.
struct SignedTanh;

impl SimdUnaryOp<f32> for SignedTanh {
    #[inline(always)]
    fn eval<I: rten_simd::Isa>(&self, isa: I, x: I::F32) -> I::F32 {
        use rten_simd::ops::{BitOps, NumOps};
        let ops = isa.f32();
        let y = rten_vecmath::Tanh {}.eval(isa, x);
        ops.select(x, y, ops.eq(x, ops.zero()))
    }
}

/// The vectorised forms of `f32`, for [`Float::vectorised`](crate::Float::vectorised).
pub(crate) fn f32_form(f: VectorFn) -> Vectorised<f32> {
    match f {
        VectorFn::Exp => Vectorised {
            map: |xs| map_with(&rten_vecmath::Exp {}, xs),
            map_in_place: |xs| rten_vecmath::Exp {}.map_mut(xs),
        },
        VectorFn::Tanh => Vectorised {
            map: |xs| map_with(&SignedTanh, xs),
            map_in_place: |xs| SignedTanh.map_mut(xs),
        },
        VectorFn::Sigmoid => Vectorised {
            map: |xs| map_with(&rten_vecmath::Sigmoid {}, xs),
            map_in_place: |xs| rten_vecmath::Sigmoid {}.map_mut(xs),
        },
    }
}
