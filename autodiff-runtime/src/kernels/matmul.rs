//! Matrix products (`dot` in all four rank combinations) and transpose.
//!
//! For `C = A·B` the adjoints are `dA = dC·Bᵀ` and `dB = Aᵀ·dC`.
//! The `_filled` variants take an adjoint that is known to be a constant `g`
//! everywhere (the seed of a `sum`): `Aᵀ·(g·1)` needs only `A`'s column sums.

use ndarray::{Array, Array1, Array2, ArrayBase, Data, Dimension, Ix1, Ix2};

use crate::Float;

/// `a · b` for matrices. Panics naming both shapes if the inner dimensions differ.
pub fn matmul<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>>(a: &ArrayBase<S1, Ix2>, b: &ArrayBase<S2, Ix2>) -> Array2<F> {
    todo!()
}

/// Adjoint of `a` in `a · b`: `g · bᵀ`.
pub fn matmul_grad_lhs<F: Float, S: Data<Elem = F>>(g: &Array2<F>, b: &ArrayBase<S, Ix2>) -> Array2<F> {
    todo!()
}

/// Adjoint of `b` in `a · b`: `aᵀ · g`.
pub fn matmul_grad_rhs<F: Float, S: Data<Elem = F>>(a: &ArrayBase<S, Ix2>, g: &Array2<F>) -> Array2<F> {
    todo!()
}

/// Adjoint of `a` in `a · b` when the output adjoint is `g` everywhere and the
/// output has `n_rows` rows: every row equals `g · (row sums of b)ᵀ`.
pub fn matmul_grad_lhs_filled<F: Float, S: Data<Elem = F>>(g: F, n_rows: usize, b: &ArrayBase<S, Ix2>) -> Array2<F> {
    todo!()
}

/// Adjoint of `b` in `a · b` when the output adjoint is `g` everywhere and the
/// output has `n_cols` columns: every column equals `g · (column sums of a)`.
pub fn matmul_grad_rhs_filled<F: Float, S: Data<Elem = F>>(a: &ArrayBase<S, Ix2>, g: F, n_cols: usize) -> Array2<F> {
    todo!()
}

/// `a · x` for a matrix and a vector.
pub fn matvec<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>>(a: &ArrayBase<S1, Ix2>, x: &ArrayBase<S2, Ix1>) -> Array1<F> {
    todo!()
}

/// Adjoint of `a` in `a · x`: the outer product `g ⊗ x`.
pub fn matvec_grad_lhs<F: Float, S: Data<Elem = F>>(g: &Array1<F>, x: &ArrayBase<S, Ix1>) -> Array2<F> {
    todo!()
}

/// Adjoint of `x` in `a · x`: `aᵀ · g`.
pub fn matvec_grad_rhs<F: Float, S: Data<Elem = F>>(a: &ArrayBase<S, Ix2>, g: &Array1<F>) -> Array1<F> {
    todo!()
}

/// `x · b` for a vector and a matrix.
pub fn vecmat<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>>(x: &ArrayBase<S1, Ix1>, b: &ArrayBase<S2, Ix2>) -> Array1<F> {
    todo!()
}

/// Adjoint of `x` in `x · b`: `b · g`.
pub fn vecmat_grad_lhs<F: Float, S: Data<Elem = F>>(g: &Array1<F>, b: &ArrayBase<S, Ix2>) -> Array1<F> {
    todo!()
}

/// Adjoint of `b` in `x · b`: the outer product `x ⊗ g`.
pub fn vecmat_grad_rhs<F: Float, S: Data<Elem = F>>(x: &ArrayBase<S, Ix1>, g: &Array1<F>) -> Array2<F> {
    todo!()
}

/// `x · y` for two vectors (a scalar).
pub fn vecdot<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>>(x: &ArrayBase<S1, Ix1>, y: &ArrayBase<S2, Ix1>) -> F {
    todo!()
}

/// Adjoint of either vector in `x · y`: `g` times the other one.
pub fn vecdot_grad<F: Float, S: Data<Elem = F>>(g: F, other: &ArrayBase<S, Ix1>) -> Array1<F> {
    todo!()
}

/// `aᵀ`: all axes reversed (ndarray's `t()`), as an owned array.
pub fn transpose<F: Float, S: Data<Elem = F>, D: Dimension>(a: &ArrayBase<S, D>) -> Array<F, D> {
    todo!()
}

/// Adjoint of `a` in `aᵀ`: `gᵀ` (no copy: the axes of `g`'s buffer are reversed).
pub fn transpose_grad<F: Float, D: Dimension>(g: Array<F, D>) -> Array<F, D> {
    todo!()
}
