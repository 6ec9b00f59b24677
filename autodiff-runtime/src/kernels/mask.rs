//! One bit per element where a value's sign is all its backward reads.
//!
//! relu's derivative is 1 where its output is positive and 0 elsewhere, so keeping the
//! output (4 or 8 bytes an element) from forward to backward keeps 31 or 63 bits too many.
//! Both engines keep a [`SignMask`] instead (the tape always, the static code when nothing
//! else in backward reads the output). The tape decodes it into the 1 and 0 that the row's
//! derivative formula reads in place of the output; the static code calls relu's backward
//! on the bits themselves ([`relu_grad_masked`], and [`fill_masked`] / [`outer_masked`]
//! where the adjoint is still a `sum`'s fill or an outer product), one pass that reads
//! a bit per element where the float path reads a float.

use ndarray::{Array, Array2, ArrayBase, Data, Dimension, Ix2};

use super::rank1::Outer;
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
            Some(xs) => {
                let mut bits = vec![0u64; xs.len().div_ceil(64)];
                // 64 comparisons per word: compute-bound, 1.0 → 0.5 ms on two threads at
                // conv2d's 8×64×56×56, and the output is small; on the team's threads when
                // there are several and the array is large. Word `w` covers elements 64·w..
                super::team::for_chunks_mut(xs.len(), &mut bits, 1, |offset, bits| {
                    for (w, c) in bits.iter_mut().zip(xs[offset * 64..].chunks(64)) {
                        *w = word(c.iter().copied());
                    }
                });
                bits
            }
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

/// Panics unless the mask was taken from an array of `shape`.
fn check_shape<D: Dimension>(op: &str, shape: &[usize], mask: &SignMask<D>) {
    assert_eq!(
        shape,
        mask.dim.slice(),
        "{op}: gradient shape {shape:?} differs from the relu output's shape {:?}",
        mask.dim.slice()
    );
}

/// Each byte value's 8 bits spread into the 8 bytes of a `u64` (bit k → byte k, 0 or 1).
const SPREAD: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut k = 0;
        while k < 8 {
            table[byte] |= ((byte as u64 >> k) & 1) << (8 * k);
            k += 1;
        }
        byte += 1;
    }
    table
};

/// One flag byte (0 or 1) per bit of `word`, in bit order: a select over 64 elements then
/// reads bytes, which compiles to vector compares and blends (a variable shift per element
/// does not vectorise, and a branch per element, on a relu's near-random signs, would be
/// mispredicted about half the time).
fn flags(word: u64) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (k, chunk) in out.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&SPREAD[(word >> (8 * k)) as usize & 0xff].to_le_bytes());
    }
    out
}

/// `values[k] = values[k]` where bit `k` of `bits` is set, 0 elsewhere.
fn keep_where_set<F: Float>(values: &mut [F], bits: &[u64]) {
    // One thread: memory-bound, it measured no faster on two.
    for (chunk, &word) in values.chunks_mut(64).zip(bits) {
        let flags = flags(word);
        for (v, &f) in chunk.iter_mut().zip(&flags) {
            *v = if f != 0 { *v } else { F::zero() };
        }
    }
}

/// relu's backward from its output's sign bits: `g` where the output was positive, 0
/// elsewhere, in `g`'s buffer.
///
/// # Panics
/// If `g`'s shape is not the mask's; the message names both.
pub fn relu_grad_masked<F: Float, D: Dimension>(g: Array<F, D>, mask: &SignMask<D>) -> Array<F, D> {
    check_shape("relu_grad_masked", g.shape(), mask);
    let mut g = if g.is_standard_layout() {
        g
    } else {
        g.as_standard_layout().into_owned()
    };
    keep_where_set(
        g.as_slice_mut().unwrap_or_else(|| unreachable!("standard layout")),
        &mask.bits,
    );
    g
}

/// relu's backward when its adjoint is the fill `g` (a `sum`'s seed): `g` where the output
/// was positive, 0 elsewhere, written in one pass.
pub fn fill_masked<F: Float, D: Dimension>(g: F, mask: &SignMask<D>) -> Array<F, D> {
    // One thread, even when several are set: splitting this write (measured, into
    // uninitialised memory) made the kernel 1.5× faster but conv2d's backward, whose
    // single-threaded batch-norm kernels read the result next, 2 ms slower (pages
    // first written by the other vCPU; see `team::GRAIN`).
    let mut values = vec![F::zero(); mask.dim.size()];
    for (chunk, &word) in values.chunks_mut(64).zip(&mask.bits) {
        let flags = flags(word);
        for (v, &f) in chunk.iter_mut().zip(&flags) {
            *v = if f != 0 { g } else { F::zero() };
        }
    }
    Array::from_shape_vec(mask.dim.clone(), values).unwrap_or_else(|_| unreachable!("one value per element"))
}

/// relu's backward when its adjoint is the outer product `u·vᵀ`: `uᵢ·vⱼ` where the output
/// was positive, 0 elsewhere: the product written out row by row, then the bits applied
/// over the whole buffer (whose words a row does not align with), while it is in cache.
///
/// # Panics
/// If the outer product's shape is not the mask's; the message names both.
pub fn outer_masked<F: Float>(g: &Outer<F>, mask: &SignMask<Ix2>) -> Array2<F> {
    let (rows, cols) = g.shape();
    check_shape("outer_masked", &[rows, cols], mask);
    let mut out = g.dense();
    keep_where_set(
        out.as_slice_mut().unwrap_or_else(|| unreachable!("standard layout")),
        &mask.bits,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mask_split_over_two_threads_equals_one_thread() {
        // Above two grains, with a length that leaves a partial last word.
        let x =
            ndarray::Array1::from_shape_fn(3 * crate::kernels::team::GRAIN + 37, |i| ((i * 7919) % 13) as f64 - 6.0);
        let one = SignMask::positive(&x);
        crate::kernels::gemm::set_num_threads(2);
        let two = SignMask::positive(&x);
        crate::kernels::gemm::set_num_threads(1);
        assert_eq!(one.bits, two.bits);
        assert_eq!(fill_masked(1.0, &two), x.mapv(|v| if v > 0.0 { 1.0 } else { 0.0 }));
    }
    use ndarray::{array, Array1, Array2};

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

    #[test]
    fn relu_backward_from_the_bits_is_relu_backward_from_the_output() {
        use crate::kernels::unary::relu_grad;
        let y = Array2::from_shape_fn((7, 19), |(i, j)| ((i * 19 + j) as f64 * 0.37).sin().max(0.0));
        let g = Array2::from_shape_fn((7, 19), |(i, j)| (i as f64) - 0.1 * j as f64);
        let mask = SignMask::positive(&y);
        assert_eq!(relu_grad_masked(g.clone(), &mask), relu_grad(g.clone(), &y));
        // A transposed adjoint is read in its logical order.
        let gt = g.t().to_owned().reversed_axes();
        assert_eq!(relu_grad_masked(gt, &mask), relu_grad(g.clone(), &y));
        assert_eq!(fill_masked(2.5, &mask), relu_grad(Array2::from_elem((7, 19), 2.5), &y));
        let outer = Outer {
            u: Array1::from_shape_fn(7, |i| i as f64 + 1.0),
            v: Array1::from_shape_fn(19, |j| 0.5 - j as f64),
        };
        assert_eq!(outer_masked(&outer, &mask), relu_grad(outer.dense(), &y));
    }

    #[test]
    #[should_panic(expected = "relu_grad_masked: gradient shape [2, 3] differs from the relu output's shape [3, 2]")]
    fn a_mask_of_another_shape_is_refused() {
        let mask = SignMask::positive(&Array2::<f64>::ones((3, 2)));
        relu_grad_masked(Array2::<f64>::ones((2, 3)), &mask);
    }
}
