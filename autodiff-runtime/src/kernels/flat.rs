//! The elementwise loops of the kernels: over flat slices when the arrays are in
//! standard (row-major, contiguous) layout, which is what every kernel returns, and
//! through ndarray's `Zip` otherwise (transposed or sliced views, broadcasting).
//!
//! Why not `Zip`, `mapv` and `mapv_inplace` throughout: on dynamic-rank (`IxDyn`)
//! arrays, which the tape works with, their layout checks rebuild shapes and strides
//! and cost tens of nanoseconds per call (`tanh_grad` on 16 elements: 16 ns on `Ix1`,
//! about 100 ns on `IxDyn`; `benches/tape_overhead.rs`, `kernel_rank`), more than the
//! arithmetic on a small array. `as_slice` checks the layout by walking the strides
//! once, whatever the rank, and a loop over slices compiles to the same vectorised code
//! for every `D`. Both modes call the same kernels, so both get this.

use ndarray::{Array, ArrayBase, Data, Dimension, ShapeBuilder, Zip};

use super::vector::VectorFn;
use crate::Float;

/// Whether two shapes are equal, compared inline: `==` on `[usize]` calls `memcmp`, whose
/// call costs more than comparing the one to four lengths of a typical shape.
#[inline]
pub(crate) fn same_shape(a: &[usize], b: &[usize]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a == b)
}

/// Whether an array of shape `x` broadcasts to shape `g` by plain repetition: `x` has no
/// more axes than `g`, and without its leading 1s is a suffix of `g` (equal shapes
/// included). Then, both in row-major order, `x`'s elements are those of every consecutive
/// block of `x.len()` elements of `g`: the bias of a dense layer (`[n]` against
/// `[batch, n]`) is the common case.
#[inline]
fn repeats_into(g: &[usize], x: &[usize]) -> bool {
    if x.len() > g.len() {
        // Broadcasting would add axes to `g`: the result would not have `g`'s shape.
        return false;
    }
    let leading_ones = x.iter().take_while(|&&len| len == 1).count();
    let x = &x[leading_ones..];
    x.len() <= g.len() && same_shape(&g[g.len() - x.len()..], x)
}

/// `g ← f(g)` for every element, in place.
#[inline]
pub(crate) fn map_in_place<F: Float, D: Dimension>(g: &mut Array<F, D>, f: impl Fn(F) -> F) {
    if let Some(g) = g.as_slice_mut() {
        g.iter_mut().for_each(|g| *g = f(*g));
    } else {
        g.mapv_inplace(f);
    }
}

/// `g ← f(g, x)` elementwise, in place, for `x` of `g`'s shape or broadcasting to it.
///
/// # Panics
/// If `x` does not broadcast to `g`'s shape (ndarray's message); kernels check shapes
/// first, with messages of their own.
#[inline]
pub(crate) fn zip_in_place<F, S, E, D>(g: &mut Array<F, E>, x: &ArrayBase<S, D>, f: impl Fn(F, F) -> F)
where
    F: Float,
    S: Data<Elem = F>,
    E: Dimension,
    D: Dimension,
{
    // Both row-major, and `x` equal to `g` or repeated along its leading axes: element `i`
    // of each block of `g`'s slice goes with element `i` of `x`'s.
    if repeats_into(g.shape(), x.shape()) {
        if let (Some(gs), Some(xs)) = (g.as_slice_mut(), x.as_slice()) {
            if !xs.is_empty() {
                for block in gs.chunks_exact_mut(xs.len()) {
                    block.iter_mut().zip(xs).for_each(|(g, &x)| *g = f(*g, x));
                }
            }
            return;
        }
    }
    Zip::from(g).and_broadcast(x).for_each(|g, &x| *g = f(*g, x));
}

/// `g ← f(g, a, b)` elementwise, in place, for `a` and `b` of `g`'s shape or broadcasting to it.
///
/// # Panics
/// If `a` or `b` does not broadcast to `g`'s shape (ndarray's message).
#[inline]
pub(crate) fn zip3_in_place<F, S1, S2, E, D1, D2>(
    g: &mut Array<F, E>,
    a: &ArrayBase<S1, D1>,
    b: &ArrayBase<S2, D2>,
    f: impl Fn(F, F, F) -> F,
) where
    F: Float,
    S1: Data<Elem = F>,
    S2: Data<Elem = F>,
    E: Dimension,
    D1: Dimension,
    D2: Dimension,
{
    if same_shape(g.shape(), a.shape()) && same_shape(g.shape(), b.shape()) {
        if let (Some(gs), Some(as_), Some(bs)) = (g.as_slice_mut(), a.as_slice(), b.as_slice()) {
            for ((g, &a), &b) in gs.iter_mut().zip(as_).zip(bs) {
                *g = f(*g, a, b);
            }
            return;
        }
    }
    Zip::from(g)
        .and_broadcast(a)
        .and_broadcast(b)
        .for_each(|g, &a, &b| *g = f(*g, a, b));
}

/// `f(x)` of every element of `a`, as a new standard-layout array of `a`'s shape.
#[inline]
pub(crate) fn map<F, S, D>(a: &ArrayBase<S, D>, f: impl Fn(F) -> F) -> Array<F, D>
where
    F: Float,
    S: Data<Elem = F>,
    D: Dimension,
{
    match a.as_slice() {
        Some(xs) => from_standard_vec(a.raw_dim(), xs.iter().map(|&x| f(x)).collect()),
        None => a.mapv(f),
    }
}

/// [`map`], through `F`'s vectorised form of `vector` where there is one
/// ([`Float::vectorised`]: `f32`) and `a` is contiguous in standard layout; `f`, the
/// scalar formula, everywhere else (other types, strided views, `vector` being `None`).
#[inline]
pub(crate) fn map_vectorised<F, S, D>(a: &ArrayBase<S, D>, vector: Option<VectorFn>, f: impl Fn(F) -> F) -> Array<F, D>
where
    F: Float,
    S: Data<Elem = F>,
    D: Dimension,
{
    if let (Some(form), Some(xs)) = (vector.and_then(F::vectorised), a.as_slice()) {
        return from_standard_vec(a.raw_dim(), form.map(xs));
    }
    map(a, f)
}

/// `f(g, x)` elementwise, as a new array of `g`'s shape, for `x` of `g`'s shape or
/// broadcasting to it: one pass, for kernels that must leave `g` intact.
///
/// # Panics
/// If `x` does not broadcast to `g`'s shape (ndarray's message).
#[inline]
pub(crate) fn zip_map<F, S1, S2, E, D>(g: &ArrayBase<S1, E>, x: &ArrayBase<S2, D>, f: impl Fn(F, F) -> F) -> Array<F, E>
where
    F: Float,
    S1: Data<Elem = F>,
    S2: Data<Elem = F>,
    E: Dimension,
    D: Dimension,
{
    match zip_map_repeated(g, x, &f) {
        Some(values) => values,
        None => Zip::from(g).and_broadcast(x).map_collect(|&g, &x| f(g, x)),
    }
}

/// [`zip_map`]'s loop over flat slices, when both arrays are row-major and `x` equals `g`
/// or repeats along its leading axes (a bias against a batch); `None` otherwise.
#[inline]
pub(crate) fn zip_map_repeated<F, S1, S2, E, D>(
    g: &ArrayBase<S1, E>,
    x: &ArrayBase<S2, D>,
    f: impl Fn(F, F) -> F,
) -> Option<Array<F, E>>
where
    F: Float,
    S1: Data<Elem = F>,
    S2: Data<Elem = F>,
    E: Dimension,
    D: Dimension,
{
    if !repeats_into(g.shape(), x.shape()) {
        return None;
    }
    let (gs, xs) = (g.as_slice()?, x.as_slice()?);
    let values = if xs.len() == gs.len() {
        gs.iter().zip(xs).map(|(&g, &x)| f(g, x)).collect()
    } else if xs.is_empty() {
        Vec::new()
    } else {
        let mut values = Vec::with_capacity(gs.len());
        for block in gs.chunks_exact(xs.len()) {
            values.extend(block.iter().zip(xs).map(|(&g, &x)| f(g, x)));
        }
        values
    };
    Some(from_standard_vec(g.raw_dim(), values))
}

/// `g` summed over the axes along which an operand of shape `dim` was broadcast, when
/// those are leading and trailing axes only and `g` is row-major; `None` otherwise (the
/// caller's general path then sums axis by axis).
///
/// `dim`, padded with leading 1s to `g`'s rank, must read `[1, .., 1, g[a..b], 1, .., 1]`:
/// then `g`'s slice is `outer` blocks of `mid` runs of `inner` elements, and element `m` of
/// the result sums run `m` of every block. That covers a bias's adjoint (`[batch, n]` to
/// `[n]`, `inner = 1`: rows added) and a kept-axis row sum (`[n, k]` to `[n, 1]`, `outer = 1`).
///
/// Why: the general path goes through dynamic-rank arrays and one `sum_axis` per axis,
/// about 2 µs for a 16×4 adjoint, more than the rest of a small dense layer's gradient.
pub(crate) fn sum_to_shape<F, E, D>(g: &Array<F, E>, dim: &D) -> Option<Array<F, D>>
where
    F: Float,
    E: Dimension,
    D: Dimension,
{
    let (shape, target) = (g.shape(), dim.slice());
    let pad = shape.len().checked_sub(target.len())?;
    let padded = |axis: usize| if axis < pad { 1 } else { target[axis - pad] };
    let kept = |axis: &usize| padded(*axis) != 1;
    let start = (0..shape.len()).find(kept).unwrap_or(0);
    let end = (0..shape.len()).rev().find(kept).map_or(start, |axis| axis + 1);
    if (start..end).any(|axis| padded(axis) != shape[axis]) {
        return None;
    }
    let values = g.as_slice()?;
    let (mid, inner): (usize, usize) = (shape[start..end].iter().product(), shape[end..].iter().product());
    let mut sums = vec![F::zero(); mid];
    if mid > 0 && inner > 0 {
        for block in values.chunks_exact(mid * inner) {
            if inner == 1 {
                sums.iter_mut().zip(block).for_each(|(sum, &v)| *sum += v);
            } else {
                for (sum, run) in sums.iter_mut().zip(block.chunks_exact(inner)) {
                    // ndarray's own sum (unrolled, several accumulators), as `sum_axis` uses.
                    *sum += ndarray::ArrayView1::from(run).sum();
                }
            }
        }
    }
    Some(from_standard_vec(dim.clone(), sums))
}

/// An array of shape `dim` over `values`, which hold its elements in row-major order.
///
/// Why not `Array::from_shape_vec(dim, values)`: that constructor derives the strides
/// through `IxDyn` conversions and re-validates them, about 40 ns per call on a
/// dynamic-rank array, which is more than the loop that made `values` on a small one.
/// The strides computed here are the ones it would derive.
fn from_standard_vec<F, D: Dimension>(dim: D, values: Vec<F>) -> Array<F, D> {
    assert_eq!(
        dim.size(),
        values.len(),
        "from_standard_vec: {} values for shape {:?}",
        values.len(),
        dim.slice()
    );
    let mut strides = dim.clone();
    // Row-major strides, all zero for an empty array, as ndarray's default strides.
    if dim.slice().contains(&0) {
        strides.slice_mut().fill(0);
    } else {
        let mut step = 1;
        for (stride, &len) in strides.slice_mut().iter_mut().zip(dim.slice()).rev() {
            *stride = step;
            step *= len;
        }
    }
    // SAFETY: `values` holds exactly `dim.size()` elements (asserted above), and the
    // strides are the row-major strides of `dim`, non-negative, so every index within
    // `dim` addresses a distinct element of `values` and none lies outside it. The
    // element count fits in `isize`, since a `Vec` of it exists.
    unsafe { Array::from_shape_vec_unchecked(dim.strides(strides), values) }
}

#[cfg(test)]
mod tests {
    use ndarray::{arr0, array, s, Array2, ArrayD};

    use super::*;

    /// A 3×4 array with distinct elements, and its transpose as a standard-layout copy.
    fn sample() -> (Array2<f64>, Array2<f64>) {
        let a = Array2::from_shape_fn((3, 4), |(i, j)| 1.0 + i as f64 * 4.0 + j as f64 * 0.5);
        let t = a.t().as_standard_layout().into_owned();
        (a, t)
    }

    #[test]
    fn every_layout_gives_the_elementwise_result() {
        let (a, _) = sample();
        let b = a.mapv(|x| x * 3.0 - 1.0);
        let expected = Zip::from(&a).and(&b).map_collect(|&a, &b| a * a + b);
        // Standard layout (the slice path), dynamic rank.
        let mut g = a.clone().into_dyn();
        zip_in_place(&mut g, &b.view().into_dyn(), |g, b| g * g + b);
        assert_eq!(g, expected.clone().into_dyn());
        // A transposed (column-major) operand: the `Zip` path, still element by element.
        let (at, bt) = (a.t().to_owned(), b.t());
        assert!(!bt.is_standard_layout());
        let mut g = at.as_standard_layout().into_owned();
        zip_in_place(&mut g, &bt, |g, b| g * g + b);
        assert_eq!(g, expected.t());
        assert_eq!(zip_map(&a.t(), &bt, |g, b| g * g + b), expected.t());
        // A broadcast operand.
        let row = array![1.0, 2.0, 3.0, 4.0];
        let mut g = a.clone();
        zip_in_place(&mut g, &row, |g, r| g * r);
        assert_eq!(g, &a * &row);
        assert_eq!(zip_map(&a, &row, |g, r| g * r), &a * &row);
        // Three operands.
        let mut g = a.clone();
        zip3_in_place(&mut g, &b, &row, |g, b, r| g + b * r);
        assert_eq!(g, &a + &(&b * &row));
    }

    /// `g` summed over broadcast axes axis by axis, the definition `sum_to_shape` must match.
    fn summed_axis_by_axis(g: &ArrayD<f64>, target: &[usize]) -> ArrayD<f64> {
        let mut g = g.clone();
        while g.ndim() > target.len() {
            g = g.sum_axis(ndarray::Axis(0));
        }
        for (axis, &len) in target.iter().enumerate() {
            if len == 1 && g.shape()[axis] != 1 {
                g = g.sum_axis(ndarray::Axis(axis)).insert_axis(ndarray::Axis(axis));
            }
        }
        g
    }

    #[test]
    fn sum_to_shape_sums_leading_and_trailing_broadcast_axes() {
        let g = ArrayD::from_shape_fn(vec![2, 3, 4, 5], |i| {
            (i[0] * 60 + i[1] * 20 + i[2] * 5 + i[3]) as f64 * 0.5
        });
        let flat_cases: [&[usize]; 9] = [
            &[5],
            &[4, 5],
            &[1, 4, 5],
            &[3, 1, 1],
            &[2, 3, 4, 1],
            &[1, 3, 4, 1],
            &[1],
            &[],
            &[2, 3, 4, 5],
        ];
        for target in flat_cases {
            let summed = sum_to_shape(&g, &ndarray::IxDyn(target)).expect("a leading/trailing pattern");
            assert_eq!(summed, summed_axis_by_axis(&g, target), "target {target:?}");
            assert!(summed.is_standard_layout());
        }
        // A broadcast axis between kept ones, a transposed adjoint, or a shape that does
        // not broadcast: left to the general path.
        assert!(sum_to_shape(&g, &ndarray::IxDyn(&[3, 1, 5])).is_none());
        assert!(sum_to_shape(&g.t().to_owned(), &ndarray::IxDyn(&[2])).is_none());
        assert!(sum_to_shape(&g.view().reversed_axes().to_owned(), &ndarray::IxDyn(&[2])).is_none());
        assert!(sum_to_shape(&g, &ndarray::IxDyn(&[3, 5])).is_none());
        // Fixed ranks, and empty arrays.
        let batch = Array2::from_shape_fn((16, 4), |(i, j)| (i * 4 + j) as f64);
        assert_eq!(
            sum_to_shape(&batch, &ndarray::Ix1(4)),
            Some(batch.sum_axis(ndarray::Axis(0)))
        );
        let empty = Array2::<f64>::zeros((0, 4));
        assert_eq!(sum_to_shape(&empty, &ndarray::Ix1(4)), Some(ndarray::Array1::zeros(4)));
        let none = Array2::<f64>::zeros((3, 0));
        assert_eq!(sum_to_shape(&none, &ndarray::Ix2(3, 1)), Some(Array2::zeros((3, 1))));
    }

    #[test]
    fn a_repeated_operand_is_read_block_by_block() {
        let (a, _) = sample();
        let row = array![1.0, 2.0, 3.0, 4.0];
        let row_2d = row.clone().insert_axis(ndarray::Axis(0));
        assert_eq!(zip_map_repeated(&a, &row, |a, r| a - r), Some(&a - &row));
        assert_eq!(zip_map_repeated(&a, &row_2d, |a, r| a - r), Some(&a - &row_2d));
        // A column does not repeat along leading axes: ndarray's broadcasting does it.
        let column = array![[1.0], [2.0], [3.0]];
        assert_eq!(zip_map_repeated(&a, &column, |a, c| a - c), None);
        assert_eq!(zip_map(&a, &column, |a, c| a - c), &a - &column);
        let mut g = a.clone();
        zip_in_place(&mut g, &column, |a, c| a - c);
        assert_eq!(g, &a - &column);
    }

    #[test]
    fn map_keeps_the_shape_of_any_rank_and_layout() {
        let (a, t) = sample();
        let twice = |x: f64| 2.0 * x;
        assert_eq!(map(&a.view().into_dyn(), twice), a.mapv(twice).into_dyn());
        assert_eq!(map(&a.t(), twice), t.mapv(twice));
        let cube = ArrayD::from_shape_fn(vec![2, 3, 4], |i| (i[0] * 12 + i[1] * 4 + i[2]) as f64);
        let mapped = map(&cube, twice);
        assert_eq!(mapped, cube.mapv(twice));
        assert!(mapped.is_standard_layout());
        // Empty and 0-d arrays.
        let empty = ArrayD::<f64>::zeros(vec![3, 0, 2]);
        assert_eq!(map(&empty, twice).shape(), &[3, 0, 2]);
        let scalar = arr0(1.5).into_dyn();
        assert_eq!(map(&scalar, twice), arr0(3.0).into_dyn());
        // A length-1 axis may have any stride in a standard layout: the new array gets its own.
        let column = a.slice(s![.., 1..2]).to_owned();
        let row = column.t();
        assert!(row.is_standard_layout() && row.strides() != [3, 1]);
        assert_eq!(map(&row, twice), row.mapv(twice));
        let mut g = a.clone();
        map_in_place(&mut g, twice);
        assert_eq!(g, a.mapv(twice));
        let mut g = a.clone().reversed_axes();
        map_in_place(&mut g, twice);
        assert_eq!(g, a.t().mapv(twice));
    }
}
