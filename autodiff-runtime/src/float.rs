//! The one float trait that every kernel, the tape and generated code are generic over.

use ndarray::NdFloat;
use num_traits::FromPrimitive;

/// A floating-point element type the runtime can differentiate: `f32` or `f64`.
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
}

impl Float for f32 {
    const NAME: &'static str = "f32";

    fn of(value: f64) -> Self {
        value as f32
    }

    fn of_usize(value: usize) -> Self {
        value as f32
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
