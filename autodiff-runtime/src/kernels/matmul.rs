//! Matrix products (`dot` in all four rank combinations) and transpose.
//!
//! For `C = A·B` the adjoints are `dA = dC·Bᵀ` and `dB = Aᵀ·dC`.
//! The `_filled` variants take an adjoint that is known to be a constant `g`
//! everywhere (the seed of a `sum`): `Aᵀ·(g·1)` needs only `A`'s column sums.

use ndarray::{Array, Array1, Array2, ArrayBase, ArrayView2, Axis, Data, Dimension, Ix1, Ix2};

use super::gemm::gemm;

use crate::Float;

/// Panics with the op's name and both shapes unless `ok`.
fn check_shapes(op: &str, ok: bool, lhs: &[usize], rhs: &[usize]) {
    assert!(
        ok,
        "{op}: shapes {lhs:?} and {rhs:?} are not aligned for a matrix product"
    );
}

fn check_accumulator(op: &str, acc: &[usize], product: &[usize]) {
    assert!(
        acc == product,
        "{op}: the accumulator has shape {acc:?}, the product {product:?}"
    );
}

/// `a · b` as a new row-major matrix (shapes already checked by the caller).
///
/// The output is not zeroed first: with β = 0 [`gemm`] writes every element and reads
/// none (as ndarray's own `dot` relies on), and on a small product the zeroing pass and its
/// generic fill cost as much as a tenth of the product.
fn product<F: Float>(a: ArrayView2<'_, F>, b: ArrayView2<'_, F>) -> Array2<F> {
    let mut c = Array2::uninit((a.nrows(), b.ncols()));
    // SAFETY: `gemm` with beta = 0 never reads `c` (documented there, tested with a NaN
    // `c` for every backend), and it writes all m×n elements, so every element is
    // initialised before `assume_init`. `F` is a `Copy` float without drop glue.
    unsafe {
        gemm(F::one(), a, b, F::zero(), c.view_mut().assume_init());
        c.assume_init()
    }
}

/// `a · b` for matrices. Panics naming both shapes if the inner dimensions differ.
pub fn matmul<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>>(
    a: &ArrayBase<S1, Ix2>,
    b: &ArrayBase<S2, Ix2>,
) -> Array2<F> {
    check_shapes("matmul", a.ncols() == b.nrows(), a.shape(), b.shape());
    product(a.view(), b.view())
}

/// Adjoint of `a` in `a · b`: `g · bᵀ`.
pub fn matmul_grad_lhs<F: Float, S: Data<Elem = F>>(g: &Array2<F>, b: &ArrayBase<S, Ix2>) -> Array2<F> {
    check_shapes("matmul_grad_lhs", g.ncols() == b.ncols(), g.shape(), b.shape());
    // bᵀ is a strided view: the backend reads it in place, no transposed copy.
    product(g.view(), b.t())
}

/// Adjoint of `b` in `a · b`: `aᵀ · g`.
pub fn matmul_grad_rhs<F: Float, S: Data<Elem = F>>(a: &ArrayBase<S, Ix2>, g: &Array2<F>) -> Array2<F> {
    check_shapes("matmul_grad_rhs", a.nrows() == g.nrows(), a.shape(), g.shape());
    product(a.t(), g.view())
}

/// `acc += g · bᵀ`: [`matmul_grad_lhs`] added in place (GEMM with β = 1), for an adjoint
/// summed over a loop's iterations without a product buffer per iteration.
pub fn matmul_grad_lhs_acc<F: Float, S: Data<Elem = F>>(acc: &mut Array2<F>, g: &Array2<F>, b: &ArrayBase<S, Ix2>) {
    check_shapes("matmul_grad_lhs_acc", g.ncols() == b.ncols(), g.shape(), b.shape());
    check_accumulator("matmul_grad_lhs_acc", acc.shape(), &[g.nrows(), b.nrows()]);
    gemm(F::one(), g.view(), b.t(), F::one(), acc.view_mut());
}

/// `acc += aᵀ · g`: [`matmul_grad_rhs`] added in place (GEMM with β = 1).
pub fn matmul_grad_rhs_acc<F: Float, S: Data<Elem = F>>(acc: &mut Array2<F>, a: &ArrayBase<S, Ix2>, g: &Array2<F>) {
    check_shapes("matmul_grad_rhs_acc", a.nrows() == g.nrows(), a.shape(), g.shape());
    check_accumulator("matmul_grad_rhs_acc", acc.shape(), &[a.ncols(), g.ncols()]);
    gemm(F::one(), a.t(), g.view(), F::one(), acc.view_mut());
}

/// Adjoint of `a` in `a · b` when the output adjoint is `g` everywhere and the
/// output has `n_rows` rows: every row equals `g · (row sums of b)ᵀ`.
pub fn matmul_grad_lhs_filled<F: Float, S: Data<Elem = F>>(g: F, n_rows: usize, b: &ArrayBase<S, Ix2>) -> Array2<F> {
    // dA[i, p] = Σ_j g·b[p, j]: the same row for every i.
    let row = b.sum_axis(Axis(1)).mapv(|s| s * g);
    row.broadcast((n_rows, b.nrows()))
        .unwrap_or_else(|| unreachable!("a row of length k broadcasts to n_rows × k"))
        .to_owned()
}

/// Adjoint of `b` in `a · b` when the output adjoint is `g` everywhere and the
/// output has `n_cols` columns: every column equals `g · (column sums of a)`.
pub fn matmul_grad_rhs_filled<F: Float, S: Data<Elem = F>>(a: &ArrayBase<S, Ix2>, g: F, n_cols: usize) -> Array2<F> {
    // dB[p, j] = Σ_i a[i, p]·g: the same column for every j.
    let column = a.sum_axis(Axis(0)).mapv(|s| s * g).insert_axis(Axis(1));
    column
        .broadcast((a.ncols(), n_cols))
        .unwrap_or_else(|| unreachable!("a k × 1 column broadcasts to k × n_cols"))
        .to_owned()
}

/// `a · x` for a matrix and a vector.
pub fn matvec<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>>(
    a: &ArrayBase<S1, Ix2>,
    x: &ArrayBase<S2, Ix1>,
) -> Array1<F> {
    check_shapes("matvec", a.ncols() == x.len(), a.shape(), x.shape());
    let mut y = Array1::zeros(a.nrows());
    gemm(
        F::one(),
        a.view(),
        x.view().insert_axis(Axis(1)),
        F::zero(),
        y.view_mut().insert_axis(Axis(1)),
    );
    y
}

/// Adjoint of `a` in `a · x`: the outer product `g ⊗ x`.
pub fn matvec_grad_lhs<F: Float, S: Data<Elem = F>>(g: &Array1<F>, x: &ArrayBase<S, Ix1>) -> Array2<F> {
    outer(g, x)
}

/// Adjoint of `x` in `a · x`: `aᵀ · g`.
pub fn matvec_grad_rhs<F: Float, S: Data<Elem = F>>(a: &ArrayBase<S, Ix2>, g: &Array1<F>) -> Array1<F> {
    check_shapes("matvec_grad_rhs", a.nrows() == g.len(), a.shape(), g.shape());
    let mut dx = Array1::zeros(a.ncols());
    gemm(
        F::one(),
        a.t(),
        g.view().insert_axis(Axis(1)),
        F::zero(),
        dx.view_mut().insert_axis(Axis(1)),
    );
    dx
}

/// `x · b` for a vector and a matrix.
pub fn vecmat<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>>(
    x: &ArrayBase<S1, Ix1>,
    b: &ArrayBase<S2, Ix2>,
) -> Array1<F> {
    check_shapes("vecmat", x.len() == b.nrows(), x.shape(), b.shape());
    let mut y = Array1::zeros(b.ncols());
    gemm(
        F::one(),
        x.view().insert_axis(Axis(0)),
        b.view(),
        F::zero(),
        y.view_mut().insert_axis(Axis(0)),
    );
    y
}

/// Adjoint of `x` in `x · b`: `b · g`.
pub fn vecmat_grad_lhs<F: Float, S: Data<Elem = F>>(g: &Array1<F>, b: &ArrayBase<S, Ix2>) -> Array1<F> {
    check_shapes("vecmat_grad_lhs", g.len() == b.ncols(), g.shape(), b.shape());
    let mut dx = Array1::zeros(b.nrows());
    gemm(
        F::one(),
        b.view(),
        g.view().insert_axis(Axis(1)),
        F::zero(),
        dx.view_mut().insert_axis(Axis(1)),
    );
    dx
}

/// Adjoint of `b` in `x · b`: the outer product `x ⊗ g`.
pub fn vecmat_grad_rhs<F: Float, S: Data<Elem = F>>(x: &ArrayBase<S, Ix1>, g: &Array1<F>) -> Array2<F> {
    outer(x, g)
}

/// `x · y` for two vectors (a scalar).
pub fn vecdot<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>>(x: &ArrayBase<S1, Ix1>, y: &ArrayBase<S2, Ix1>) -> F {
    check_shapes("vecdot", x.len() == y.len(), x.shape(), y.shape());
    x.dot(y)
}

/// Adjoint of either vector in `x · y`: `g` times the other one.
pub fn vecdot_grad<F: Float, S: Data<Elem = F>>(g: F, other: &ArrayBase<S, Ix1>) -> Array1<F> {
    other.mapv(|v| g * v)
}

/// `aᵀ`: all axes reversed (ndarray's `t()`), as an owned array.
pub fn transpose<F: Float, S: Data<Elem = F>, D: Dimension>(a: &ArrayBase<S, D>) -> Array<F, D> {
    // `t()` only swaps strides; `to_owned` of that view copies the buffer in one
    // pass in memory order, so the result of a C-order input is in Fortran order.
    a.t().to_owned()
}

/// Adjoint of `a` in `aᵀ`: `gᵀ` (no copy: the axes of `g`'s buffer are reversed).
pub fn transpose_grad<F: Float, D: Dimension>(g: Array<F, D>) -> Array<F, D> {
    g.reversed_axes()
}

/// The outer product `u ⊗ v` (`u[i]·v[j]`), written once in a single pass.
fn outer<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>>(
    u: &ArrayBase<S1, Ix1>,
    v: &ArrayBase<S2, Ix1>,
) -> Array2<F> {
    &u.view().insert_axis(Axis(1)) * &v.view().insert_axis(Axis(0))
}
