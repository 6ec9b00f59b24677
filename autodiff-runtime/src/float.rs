//! The one float trait that every kernel, the tape and generated code are generic over.

use ndarray::{ArrayView2, ArrayViewMut2, NdFloat};
use num_traits::FromPrimitive;

use crate::kernels::gemm::Backend;
use crate::kernels::vector::{self, VectorFn, Vectorised};

/// A floating-point element type the runtime can differentiate: `f32`, `f64`, or a
/// [`Dual`](crate::dual::Dual) number over one of them (forward mode, second derivatives).
///
/// It gathers what the kernels need (ndarray's [`NdFloat`] arithmetic, conversion
/// from `f64`/`usize` literals, summation) so that a user function generic over
/// `F: Float` compiles against every kernel with a single bound.
pub trait Float: NdFloat + FromPrimitive + std::iter::Sum + Default {
    /// The name of the type, `"f32"` or `"f64"`, for reports.
    const NAME: &'static str;

    /// Converts an `f64` constant to this type (rounding for `f32`).
    fn of(value: f64) -> Self;

    /// Converts a count (an element count, a batch size) to this type.
    fn of_usize(value: usize) -> Self;

    /// Rounded to bfloat16 (to nearest, ties to even): a residual kept in 16 bits
    /// ([`kernels::packed`](crate::kernels::packed)).
    fn to_bf16(self) -> half::bf16 {
        half::bf16::from_f64(self.to_f64().unwrap_or(f64::NAN))
    }

    /// Rounded to IEEE half precision (to nearest, ties to even).
    fn to_f16(self) -> half::f16 {
        half::f16::from_f64(self.to_f64().unwrap_or(f64::NAN))
    }

    /// A bfloat16 value in this type (exact: every bfloat16 is an `f32`).
    fn of_bf16(value: half::bf16) -> Self {
        Self::of(value.to_f64())
    }

    /// A half-precision value in this type (exact).
    fn of_f16(value: half::f16) -> Self {
        Self::of(value.to_f64())
    }

    /// `c ← alpha·a·b + beta·c`: how this type multiplies matrices, called by
    /// [`kernels::gemm::gemm`](crate::kernels::gemm::gemm) and so by every matrix product
    /// of the kernels. `backend` forces a backend (`None`: the fastest for the shape);
    /// `threads` is the thread count. `c` is not read when `beta` is zero.
    ///
    /// The default is the runtime's real GEMM (the `gemm` crate or `matrixmultiply` for
    /// `f32`/`f64`, ndarray's generic loop for other types). [`Dual`](crate::dual::Dual)
    /// overrides it with real products of its values and tangents.
    fn gemm(
        backend: Option<Backend>,
        threads: usize,
        alpha: Self,
        a: ArrayView2<Self>,
        b: ArrayView2<Self>,
        beta: Self,
        c: ArrayViewMut2<Self>,
    ) {
        crate::kernels::gemm::gemm_real(backend, threads, alpha, a, b, beta, c);
    }

    /// How this type computes `f` on a whole contiguous slice, if it has a vectorised
    /// form ([`kernels::vector`](crate::kernels::vector)); `None` (the default) where it
    /// has none, and then the kernels run the primitive row's scalar formula.
    ///
    /// `f32` overrides it with SIMD forms within a few ulp of its `libm` functions; `f64`
    /// and [`Dual`](crate::dual::Dual) keep the default, so that their results, which the
    /// gradient tests compare against finite differences, are those of the scalar formula
    /// bit for bit.
    #[inline]
    fn vectorised(f: VectorFn) -> Option<Vectorised<Self>> {
        let _ = f;
        None
    }
}

impl Float for f32 {
    const NAME: &'static str = "f32";

    fn of(value: f64) -> Self {
        value as f32
    }

    fn of_usize(value: usize) -> Self {
        value as f32
    }

    // From and to `f32` directly: a few bit operations, which vectorise.
    fn to_bf16(self) -> half::bf16 {
        half::bf16::from_f32(self)
    }

    fn to_f16(self) -> half::f16 {
        half::f16::from_f32(self)
    }

    fn of_bf16(value: half::bf16) -> Self {
        value.to_f32()
    }

    fn of_f16(value: half::f16) -> Self {
        value.to_f32()
    }

    #[inline]
    fn vectorised(f: VectorFn) -> Option<Vectorised<Self>> {
        Some(vector::f32_form(f))
    }
}

impl Float for f64 {
    const NAME: &'static str = "f64";

    fn of(value: f64) -> Self {
        value
    }

    fn of_usize(value: usize) -> Self {
        value as f64
    }
}
