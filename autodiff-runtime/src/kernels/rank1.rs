//! Adjoints held as outer products `u·vᵀ`, the static code's algebra on the seed.
//!
//! The adjoint of `sum(A·B)` with respect to the product is `g` everywhere, the rank-1 matrix
//! `(g·1)·1ᵀ`. Through a matrix product a rank-1 adjoint stays rank-1:
//! `d(A·B)/dA = (u·vᵀ)·Bᵀ = u·(B·v)ᵀ` and `dB = Aᵀ·(u·vᵀ) = (Aᵀ·u)·vᵀ`, so a chain of products
//! runs backward in matrix-vector time and never needs the products themselves in full.
//! Transpose, negation, scaling and broadcast sums keep the form too. The macro carries an
//! [`Outer`] through those ops and writes the full matrix ([`Outer::dense`]) only where an
//! elementwise nonlinearity or a returned gradient needs it. The dynamic tape cannot do this:
//! it sees one op at a time, and a dense adjoint is all its ops exchange.
//!
//! The matrix-side arguments are [`Factors`]: a matrix given as the product of the listed
//! matrices, so that `Aᵀ·u` for `A = P·Q` runs as `Qᵀ·(Pᵀ·u)`. The forward then need not keep
//! `P·Q` at all, only its factors, which it often keeps anyway.

use std::mem::MaybeUninit;

use ndarray::{Array, Array1, Array2, ArrayView2, Dimension, Ix2};

use super::matmul::matvec;
use crate::Float;

/// The matrix `u·vᵀ` (`u.len()` rows, `v.len()` columns), stored as its two vectors.
#[derive(Clone, Debug, PartialEq)]
pub struct Outer<F> {
    /// The column factor: one entry per row.
    pub u: Array1<F>,
    /// The row factor: one entry per column.
    pub v: Array1<F>,
}

impl<F: Float> Outer<F> {
    /// `(rows, columns)` of the matrix it stands for.
    pub fn shape(&self) -> (usize, usize) {
        (self.u.len(), self.v.len())
    }

    /// The full matrix `u·vᵀ`.
    pub fn dense(&self) -> Array2<F> {
        let (m, n) = self.shape();
        let v = self.v.to_vec();
        let mut out = Array2::<F>::uninit((m, n));
        let data = out
            .as_slice_mut()
            .unwrap_or_else(|| unreachable!("a new array is in standard layout"));
        // Written once, row by row (no zeroing pass first): this is most of the work of a
        // backward that the outer form otherwise runs in matrix-vector products.
        let write = |offset: usize, chunk: &mut [MaybeUninit<F>]| {
            for (row, ui) in chunk.chunks_mut(n.max(1)).zip(self.u.iter().skip(offset / n.max(1))) {
                row.iter_mut().zip(&v).for_each(|(o, &vj)| {
                    o.write(*ui * vj);
                });
            }
        };
        if super::gemm::num_threads() > 1 && m.saturating_mul(n) >= PARALLEL_DENSE && n > 0 {
            let parts = super::gemm::num_threads().min(m);
            let chunk = m.div_ceil(parts) * n;
            super::team::for_each_part(data.chunks_mut(chunk).collect(), &|i, part| write(i * chunk, part));
        } else {
            write(0, data);
        }
        // SAFETY: `write` initialised every element (each row of each chunk).
        unsafe { out.assume_init() }
    }
}

/// Outer products of at least this many elements are written by the kernel team's threads
/// (blocks of whole rows) when [`super::gemm::set_num_threads`] asks for more than one.
///
/// Why split a write at all (`team::GRAIN` keeps memory-bound loops on one thread): the
/// outer products are the one large write of a backward that otherwise runs in
/// matrix-vector products (matmul_chain's returned gradients, about 232 K floats), and on
/// one thread that write paid for where the allocator put it. Measured on the study
/// machine (Intel Xeon, 2 vCPUs, 2026-12-02, f32): matmul_chain's backward alone took 50 µs
/// at one thread and 76–78 µs at two when the tape's backward ran before the forward (as
/// in the study's interleaved rounds), 53–56 µs without it; of those 76 µs the
/// matrix-vector products took 22 (as at one thread) and the four `dense` writes 52–54
/// (28–29 at one thread). The arrays were the very blocks the tape's gradients had just
/// freed (same addresses), half of whose lines the other vCPU had written last (the
/// split GEMMs): writing the same sizes from this thread first brought the backward back
/// to 63 µs. Split here, each thread writes half; the backward took 54 µs at two threads in
/// that state (and 41 against 50 µs without the tape before it). Size: one thread against
/// two, alternating rounds of 100 calls, each after 20 µs of other work, median over 11
/// rounds: 128×128 (2¹⁴ elements) 0.76× as fast on two threads, 128×256 (2¹⁵) 1.17×,
/// 512×128 1.40×, 256×512 1.53×; 64×128 and below unchanged (not split).
pub(crate) const PARALLEL_DENSE: usize = 1 << 15;

/// A matrix given as the product of `factors` (at least one), left to right.
pub type Factors<'a, F> = [ArrayView2<'a, F>];

/// Panics naming the op and the shapes unless the factors chain and the product is `rows × cols`.
fn check_factors<F>(op: &str, factors: &Factors<'_, F>, rows: Option<usize>, cols: Option<usize>) {
    let shapes: Vec<&[usize]> = factors.iter().map(|f| f.shape()).collect();
    assert!(!factors.is_empty(), "{op}: no factors given");
    let chains = shapes.windows(2).all(|w| w[0][1] == w[1][0]);
    let (first, last) = (shapes[0][0], shapes[shapes.len() - 1][1]);
    assert!(
        chains && rows.is_none_or(|r| r == first) && cols.is_none_or(|c| c == last),
        "{op}: the factors {shapes:?} do not form a {}×{} matrix",
        rows.map_or("?".to_string(), |r| r.to_string()),
        cols.map_or("?".to_string(), |c| c.to_string()),
    );
}

/// `M·x` for `M` the product of `factors`: right to left, one matrix-vector product each.
pub fn factors_times<F: Float>(factors: &Factors<'_, F>, x: &Array1<F>) -> Array1<F> {
    check_factors("factors_times", factors, None, Some(x.len()));
    let mut y = matvec(&factors[factors.len() - 1], x);
    for f in factors[..factors.len() - 1].iter().rev() {
        y = matvec(f, &y);
    }
    y
}

/// `Mᵀ·x` for `M` the product of `factors`: left to right, one matrix-vector product each.
pub fn factors_t_times<F: Float>(factors: &Factors<'_, F>, x: &Array1<F>) -> Array1<F> {
    check_factors("factors_t_times", factors, Some(x.len()), None);
    let mut y = matvec(&factors[0].t(), x);
    for f in &factors[1..] {
        y = matvec(&f.t(), &y);
    }
    y
}

/// Adjoint of `a` in `a · b` when the output's adjoint is `g` everywhere and the output has
/// `n_rows` rows: `(g·1)·(b·1)ᵀ`, the row sums of `b` times `g` in every row.
pub fn filled_matmul_grad_lhs<F: Float>(g: F, n_rows: usize, b: &Factors<'_, F>) -> Outer<F> {
    let cols = b[b.len() - 1].ncols();
    Outer {
        u: Array1::from_elem(n_rows, g),
        v: factors_times(b, &Array1::from_elem(cols, F::one())),
    }
}

/// Adjoint of `b` in `a · b` when the output's adjoint is `g` everywhere and the output has
/// `n_cols` columns: `(aᵀ·1)·(g·1)ᵀ`, the column sums of `a` times `g` in every column.
pub fn filled_matmul_grad_rhs<F: Float>(a: &Factors<'_, F>, g: F, n_cols: usize) -> Outer<F> {
    let rows = a[0].nrows();
    Outer {
        u: factors_t_times(a, &Array1::from_elem(rows, F::one())),
        v: Array1::from_elem(n_cols, g),
    }
}

/// The column sums `aᵀ·1` of a matrix, as [`filled_matmul_grad_rhs`] computes them: what
/// the static code keeps of `a` when backward reads it only through them (a `sum`'s seed
/// reaching `a · b`), taken in forward where `a` is made.
pub fn column_sums<F: Float, S: ndarray::Data<Elem = F>>(a: &ndarray::ArrayBase<S, Ix2>) -> Array1<F> {
    factors_t_times(&[a.view()], &Array1::from_elem(a.nrows(), F::one()))
}

/// [`filled_matmul_grad_rhs`] from `a`'s [`column_sums`], kept from forward instead of `a`.
pub fn summed_matmul_grad_rhs<F: Float>(column_sums: &Array1<F>, g: F, n_cols: usize) -> Outer<F> {
    Outer {
        u: column_sums.clone(),
        v: Array1::from_elem(n_cols, g),
    }
}

/// Adjoint of `a` in `a · b`: `(u·vᵀ)·bᵀ = u·(b·v)ᵀ`.
pub fn outer_matmul_grad_lhs<F: Float>(g: &Outer<F>, b: &Factors<'_, F>) -> Outer<F> {
    Outer {
        u: g.u.clone(),
        v: factors_times(b, &g.v),
    }
}

/// Adjoint of `b` in `a · b`: `aᵀ·(u·vᵀ) = (aᵀ·u)·vᵀ`.
pub fn outer_matmul_grad_rhs<F: Float>(a: &Factors<'_, F>, g: &Outer<F>) -> Outer<F> {
    Outer {
        u: factors_t_times(a, &g.u),
        v: g.v.clone(),
    }
}

/// Adjoint of `a` in `aᵀ`: `(u·vᵀ)ᵀ = v·uᵀ`.
pub fn outer_transpose_grad<F: Float>(g: &Outer<F>) -> Outer<F> {
    Outer {
        u: g.v.clone(),
        v: g.u.clone(),
    }
}

/// Adjoint of `a` in `-a`.
pub fn outer_neg_grad<F: Float>(g: &Outer<F>) -> Outer<F> {
    Outer {
        u: g.u.mapv(|x| -x),
        v: g.v.clone(),
    }
}

/// Adjoint of the array `a` in `a · s` (or `s · a`) for a float `s`.
pub fn outer_scale_grad<F: Float>(g: &Outer<F>, s: F) -> Outer<F> {
    Outer {
        u: g.u.mapv(|x| x * s),
        v: g.v.clone(),
    }
}

/// Adjoint of the float `s` in `a · s`: `Σᵢⱼ uᵢ·aᵢⱼ·vⱼ = uᵀ·a·v`.
pub fn outer_scale_grad_scalar<F: Float>(g: &Outer<F>, a: &Factors<'_, F>) -> F {
    check_factors("outer_scale_grad_scalar", a, Some(g.u.len()), Some(g.v.len()));
    g.u.dot(&factors_times(a, &g.v))
}

/// `Σᵢⱼ uᵢ·vⱼ = (Σu)·(Σv)`: the adjoint of the float `s` in `a + s`.
pub fn outer_sum<F: Float>(g: &Outer<F>) -> F {
    g.u.sum() * g.v.sum()
}

/// `-Σᵢⱼ uᵢ·vⱼ`: the adjoint of the float `s` in `a - s`.
pub fn outer_sum_neg<F: Float>(g: &Outer<F>) -> F {
    -outer_sum(g)
}

/// Adjoint of a matrix operand of shape `dim` in a broadcast sum: the output's adjoint summed
/// over the axes along which the operand was broadcast. Summing `u·vᵀ` over rows gives
/// `(Σu)·vᵀ`, still an outer product.
pub fn outer_add_grad<F: Float>(g: &Outer<F>, dim: &Ix2) -> Outer<F> {
    let (rows, cols) = (dim[0], dim[1]);
    let (m, n) = g.shape();
    assert!(
        (rows == m || rows == 1) && (cols == n || cols == 1),
        "outer_add_grad: operand shape [{rows}, {cols}] does not broadcast to the gradient shape [{m}, {n}]"
    );
    let collapse = |x: &Array1<F>, len: usize| {
        if len == x.len() {
            x.clone()
        } else {
            Array1::from_elem(1, x.sum())
        }
    };
    Outer {
        u: collapse(&g.u, rows),
        v: collapse(&g.v, cols),
    }
}

/// [`outer_add_grad`] for the subtracted operand.
pub fn outer_sub_grad_rhs<F: Float>(g: &Outer<F>, dim: &Ix2) -> Outer<F> {
    outer_neg_grad(&outer_add_grad(g, dim))
}

/// Adjoint of an operand of rank below 2 (or of unknown rank) in a broadcast sum, as a dense
/// array of shape `dim`: a vector broadcast along the rows receives `(Σu)·v`.
pub fn outer_add_grad_dense<F: Float, D: Dimension>(g: &Outer<F>, dim: &D) -> Array<F, D> {
    // Summed from the two vectors where the operand is a float or a vector, without writing
    // the m×n matrix that a reduction of the dense adjoint would need.
    let reduced: Option<ndarray::ArrayD<F>> = match dim.slice() {
        [] => Some(ndarray::arr0(outer_sum(g)).into_dyn()),
        [1] => Some(Array1::from_elem(1, outer_sum(g)).into_dyn()),
        [n] if *n == g.v.len() => Some((&g.v * g.u.sum()).into_dyn()),
        _ => None,
    };
    match reduced.map(|r| r.into_dimensionality::<D>()) {
        Some(Ok(r)) => r,
        _ => super::binary::unbroadcast(g.dense(), dim),
    }
}

/// [`outer_add_grad_dense`] for the subtracted operand.
pub fn outer_sub_grad_rhs_dense<F: Float, D: Dimension>(g: &Outer<F>, dim: &D) -> Array<F, D> {
    outer_add_grad_dense(g, dim).mapv_into(|x| -x)
}

/// The full matrix an adjoint stands for, where a rule or a returned gradient needs it.
pub fn outer_dense<F: Float>(g: &Outer<F>) -> Array2<F> {
    g.dense()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Axis};

    fn outer() -> Outer<f64> {
        Outer {
            u: array![1.0, -2.0, 0.5],
            v: array![3.0, 0.25],
        }
    }

    #[test]
    fn dense_is_the_outer_product() {
        assert_eq!(outer().dense(), array![[3.0, 0.25], [-6.0, -0.5], [1.5, 0.125]]);
    }

    #[test]
    fn dense_on_two_threads_equals_one_thread() {
        // Above PARALLEL_DENSE with an odd row count (the blocks differ in height), and below.
        for (m, n) in [(181, 199), (7, 5)] {
            let g = Outer {
                u: Array1::from_shape_fn(m, |i| (i as f64 * 0.37).sin()),
                v: Array1::from_shape_fn(n, |j| (j as f64 * 0.11).cos()),
            };
            let single = g.dense();
            crate::kernels::gemm::set_num_threads(2);
            let threaded = g.dense();
            crate::kernels::gemm::set_num_threads(1);
            assert_eq!(threaded, single, "{m}×{n}");
            assert_eq!(single, Array2::from_shape_fn((m, n), |(i, j)| g.u[i] * g.v[j]));
        }
        const { assert!(181 * 199 >= PARALLEL_DENSE) };
    }

    #[test]
    fn matmul_grads_equal_the_dense_rule() {
        let g = outer();
        let a = array![[1.0, 2.0], [0.0, -1.0], [4.0, 0.5]]; // 3×2
        let p = array![[1.0, 2.0, 0.0], [3.0, -1.0, 1.0]]; // 2×3
        let q = array![[0.5, 1.0], [2.0, 0.0], [1.0, 1.0]]; // 3×2, so b = p·q is 2×2
        let b = p.dot(&q);
        let lhs = outer_matmul_grad_lhs(&g, &[p.view(), q.view()]).dense();
        assert_eq!(lhs, g.dense().dot(&b.t()));
        let rhs = outer_matmul_grad_rhs(&[a.view()], &g).dense();
        assert_eq!(rhs, a.t().dot(&g.dense()));
    }

    #[test]
    fn filled_matmul_grads_equal_the_dense_rule() {
        let a = array![[1.0, 2.0], [0.0, -1.0], [4.0, 0.5]];
        let b = array![[1.0, 2.0, 0.0], [3.0, -1.0, 1.0]];
        let g = Array2::from_elem((3, 3), 0.5);
        assert_eq!(filled_matmul_grad_lhs(0.5, 3, &[b.view()]).dense(), g.dot(&b.t()));
        assert_eq!(filled_matmul_grad_rhs(&[a.view()], 0.5, 3).dense(), a.t().dot(&g));
    }

    #[test]
    fn broadcast_sums_reduce_like_the_dense_adjoint() {
        let g = outer();
        let dense = g.dense();
        assert_eq!(
            outer_add_grad(&g, &Ix2(1, 2)).dense(),
            dense.sum_axis(Axis(0)).insert_axis(Axis(0))
        );
        assert_eq!(
            outer_add_grad(&g, &Ix2(3, 1)).dense(),
            dense.sum_axis(Axis(1)).insert_axis(Axis(1))
        );
        assert_eq!(outer_add_grad_dense(&g, &ndarray::Ix1(2)), dense.sum_axis(Axis(0)));
        assert_eq!(
            outer_add_grad_dense(&g, &ndarray::Ix1(1)),
            ndarray::arr1(&[dense.sum()])
        );
        assert_eq!(outer_add_grad_dense(&g, &ndarray::Ix0()), ndarray::arr0(dense.sum()));
        assert_eq!(
            outer_add_grad_dense(&g, &Ix2(1, 2)),
            dense.sum_axis(Axis(0)).insert_axis(Axis(0))
        );
        assert_eq!(outer_sum(&g), dense.sum());
        assert_eq!(outer_scale_grad_scalar(&g, &[dense.view()]), (&dense * &dense).sum());
    }

    #[test]
    #[should_panic(expected = "do not form a 3×? matrix")]
    fn factor_shapes_are_checked() {
        let g = outer();
        let _ = outer_matmul_grad_rhs(&[Array2::<f64>::zeros((2, 2)).view()], &g);
    }
}
