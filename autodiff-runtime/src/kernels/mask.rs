//! One bit per element where a value's sign is all its backward reads.
//!
//! relu's derivative is 1 where its output is positive and 0 elsewhere, so keeping the
//! output (4 or 8 bytes an element) from forward to backward keeps 31 or 63 bits too many.
//! Both engines keep a [`SignMask`] instead (the tape always, the static code when nothing
//! else in backward reads the output), and backward decodes it into the 1 and 0 that the
//! row's derivative formula reads in place of the output.

use ndarray::{Array, ArrayBase, Data, Dimension};

use crate::Float;

/// Whether each element of an array was positive, one bit each, in logical (row-major)
/// order, with the array's shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignMask<D> {
    bits: Vec<u64>,
    dim: D,
}

impl<D: Dimension> SignMask<D> {
    /// The mask of `a > 0`.
    pub fn positive<F: Float, S: Data<Elem = F>>(a: &ArrayBase<S, D>) -> Self {
        // A word at a time: 64 comparisons folded into one store.
        fn word<F: Float>(chunk: impl Iterator<Item = F>) -> u64 {
            chunk
                .enumerate()
                .fold(0u64, |w, (k, x)| w | (u64::from(x > F::zero()) << k))
        }
        let bits = match a.as_slice() {
            Some(xs) => xs.chunks(64).map(|c| word(c.iter().copied())).collect(),
            None => {
                let mut values = a.iter().copied().peekable();
                let mut bits = Vec::with_capacity(a.len().div_ceil(64));
                while values.peek().is_some() {
                    bits.push(word(values.by_ref().take(64)));
                }
                bits
            }
        };
        SignMask { bits, dim: a.raw_dim() }
    }

    /// The array of 1 where the element was positive and 0 elsewhere.
    pub fn decode<F: Float>(&self) -> Array<F, D> {
        let n = self.dim.size();
        let mut values = vec![F::zero(); n];
        for (chunk, &word) in values.chunks_mut(64).zip(&self.bits) {
            for (k, v) in chunk.iter_mut().enumerate() {
                if word >> k & 1 == 1 {
                    *v = F::one();
                }
            }
        }
        Array::from_shape_vec(self.dim.clone(), values).unwrap_or_else(|_| unreachable!("one value per element"))
    }

    /// The shape of the array it was taken from.
    pub fn raw_dim(&self) -> D {
        self.dim.clone()
    }

    /// Heap bytes it holds.
    pub fn bytes(&self) -> usize {
        self.bits.len() * std::mem::size_of::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    #[test]
    fn decodes_to_ones_where_positive() {
        let a = array![[0.5, -1.0, 0.0], [2.0, 1e-30, -0.0]];
        let mask = SignMask::positive(&a);
        assert_eq!(mask.decode::<f64>(), array![[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]);
        assert_eq!(mask.bytes(), 8);
        // A transposed view is read in its logical order.
        assert_eq!(SignMask::positive(&a.t()).decode::<f32>(), mask.decode::<f32>().t());
    }

    #[test]
    fn holds_a_bit_per_element() {
        let a = Array2::from_shape_fn((32, 128), |(i, j)| (i as f64 - j as f64).sin());
        let mask = SignMask::positive(&a);
        assert_eq!(mask.bytes(), 32 * 128 / 8);
        assert_eq!(mask.decode::<f64>(), a.mapv(|x| if x > 0.0 { 1.0 } else { 0.0 }));
    }
}
