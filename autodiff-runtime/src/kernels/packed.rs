//! Residuals kept in 16 bits between forward and backward (`#[differentiate(residuals =
//! "bf16")]`): computed and accumulated in the function's float type, stored in half the
//! bytes of an `f32` (a quarter of an `f64`), unpacked before backward's first read.
//!
//! `bf16` keeps `f32`'s exponent range and 8 bits of significand (relative rounding error
//! up to 2⁻⁹ ≈ 2e-3); `f16` keeps 11 bits (2⁻¹² ≈ 2.4e-4) but overflows above 65504 and
//! loses precision below 6e-5. The error this puts into gradients is the price of the
//! halved bytes; the study's ablation reports it beside the saving.

use half::{bf16, f16};
use ndarray::{Array, ArrayBase, Data, Dimension};

use crate::Float;

/// The 16-bit format of a packed residual.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Half {
    /// bfloat16: 8 exponent bits, 7 stored significand bits.
    Bf16,
    /// IEEE binary16: 5 exponent bits, 10 stored significand bits.
    F16,
}

#[derive(Clone, Debug, PartialEq)]
enum Values {
    Bf16(Vec<bf16>),
    F16(Vec<f16>),
}

/// An array's values rounded to 16 bits, in logical (row-major) order, with its shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Packed<D> {
    values: Values,
    dim: D,
}

impl<D: Dimension> Packed<D> {
    /// `a` rounded to `format` (to nearest, ties to even).
    pub fn pack<F: Float, S: Data<Elem = F>>(a: &ArrayBase<S, D>, format: Half) -> Self {
        let values = match (format, a.as_slice()) {
            (Half::Bf16, Some(xs)) => Values::Bf16(xs.iter().map(|x| x.to_bf16()).collect()),
            (Half::Bf16, None) => Values::Bf16(a.iter().map(|x| x.to_bf16()).collect()),
            (Half::F16, Some(xs)) => Values::F16(xs.iter().map(|x| x.to_f16()).collect()),
            (Half::F16, None) => Values::F16(a.iter().map(|x| x.to_f16()).collect()),
        };
        Packed {
            values,
            dim: a.raw_dim(),
        }
    }

    /// `a` rounded to bfloat16.
    pub fn bf16<F: Float, S: Data<Elem = F>>(a: &ArrayBase<S, D>) -> Self {
        Self::pack(a, Half::Bf16)
    }

    /// `a` rounded to IEEE half precision.
    pub fn f16<F: Float, S: Data<Elem = F>>(a: &ArrayBase<S, D>) -> Self {
        Self::pack(a, Half::F16)
    }

    /// The values in `F` (exactly the 16-bit ones: widening loses nothing).
    pub fn unpack<F: Float>(&self) -> Array<F, D> {
        let values: Vec<F> = match &self.values {
            Values::Bf16(v) => v.iter().map(|&x| F::of_bf16(x)).collect(),
            Values::F16(v) => v.iter().map(|&x| F::of_f16(x)).collect(),
        };
        Array::from_shape_vec(self.dim.clone(), values).unwrap_or_else(|_| unreachable!("one value per element"))
    }

    /// The shape of the array it was packed from.
    pub fn raw_dim(&self) -> D {
        self.dim.clone()
    }

    /// The shape of the array it was packed from, as a slice (no copy).
    pub fn shape(&self) -> &[usize] {
        self.dim.slice()
    }

    /// Heap bytes it holds: two per element.
    pub fn bytes(&self) -> usize {
        match &self.values {
            Values::Bf16(v) => v.capacity() * std::mem::size_of::<bf16>(),
            Values::F16(v) => v.capacity() * std::mem::size_of::<f16>(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn rounds_to_sixteen_bits_and_holds_two_bytes_each() {
        let a = Array2::from_shape_fn((5, 7), |(i, j)| ((i * 7 + j) as f64 * 0.731).sin() * 3.0);
        for (format, tolerance) in [(Half::Bf16, 2f64.powi(-8)), (Half::F16, 2f64.powi(-11))] {
            let packed = Packed::pack(&a, format);
            assert_eq!(packed.bytes(), 5 * 7 * 2);
            let back = packed.unpack::<f64>();
            for (x, y) in a.iter().zip(back.iter()) {
                assert!((x - y).abs() <= tolerance * x.abs(), "{format:?}: {x} became {y}");
            }
            // Exactly representable values come back unchanged; a transposed view in its
            // logical order.
            assert_eq!(
                Packed::pack(&a.mapv(f64::round), format).unpack::<f32>(),
                a.mapv(|x| x.round() as f32)
            );
            assert_eq!(Packed::pack(&a.t(), format).unpack::<f64>(), back.t());
        }
    }
}
