//! The symbolic-fill kernels equal their dense counterparts on a filled adjoint, and the
//! out-of-place (`_ref`) kernels equal the in-place ones, with broadcasting.

use autodiff_runtime::kernels::{binary, fused, reduce, unary};
use ndarray::{array, Array, Axis, Ix2};

fn filled(g: f64, shape: (usize, usize)) -> Array<f64, Ix2> {
    Array::from_elem(shape, g)
}

#[test]
fn fill_kernels_match_dense_rules_on_a_filled_adjoint() {
    let g = 0.7;
    let out = filled(g, (3, 4));
    let row = array![1.0, 2.0, 3.0, 4.0];
    let col = array![[1.0], [2.0], [3.0]];
    // a + b with b broadcast along rows or columns.
    for (dim_b, dense) in [
        (
            ndarray::IxDyn(row.shape()),
            binary::add_grad_rhs(out.clone(), &row.raw_dim()).into_dyn(),
        ),
        (
            ndarray::IxDyn(col.shape()),
            binary::add_grad_rhs(out.clone(), &col.raw_dim()).into_dyn(),
        ),
    ] {
        let fill = binary::add_grad_fill(g, &out.raw_dim(), &dim_b);
        assert!(dense.iter().all(|&d| (d - fill).abs() < 1e-12), "{dense} vs {fill}");
        let neg = binary::sub_grad_rhs_fill(g, &out.raw_dim(), &dim_b);
        assert_eq!(neg, -fill);
    }
    assert!((binary::fill_sum(g, &out.raw_dim()) - binary::sum_grad_of_scalar(&out)).abs() < 1e-12);
    assert_eq!(
        binary::fill_sum_neg(g, &out.raw_dim()),
        -binary::fill_sum(g, &out.raw_dim())
    );
    let a = array![[0.5, -1.0, 2.0, 0.25], [1.0, 1.5, -0.5, 3.0], [0.1, 0.2, 0.3, 0.4]];
    assert!((binary::fill_sum_product(g, &a) - binary::sum_product(&out, &a)).abs() < 1e-12);
    let mean = reduce::mean_grad(g, &a.raw_dim());
    assert!(mean
        .iter()
        .all(|&m| (m - reduce::mean_grad_fill(g, &a.raw_dim())).abs() < 1e-15));
    let mean_axis = reduce::mean_axis_grad(array![g, g, g], Axis(1), &a.raw_dim());
    let fill = reduce::mean_axis_grad_fill(g, Axis(1), &a.raw_dim());
    assert!(mean_axis.iter().all(|&m| (m - fill).abs() < 1e-15));
}

#[test]
fn out_of_place_kernels_match_in_place_ones() {
    let g = array![[0.5, -1.0, 2.0, 0.25], [1.0, 1.5, -0.5, 3.0], [0.1, 0.2, 0.3, 0.4]];
    let a = array![[1.0, 2.0, 3.0, 4.0], [0.5, 0.25, 2.0, 1.5], [3.0, 1.0, 0.5, 2.5]];
    let row = array![1.5, -2.0, 0.5, 4.0];
    assert_eq!(
        binary::mul_grad_lhs_ref(&g, &row, &a.raw_dim()),
        binary::mul_grad_lhs(g.clone(), &row, &a.raw_dim())
    );
    assert_eq!(
        binary::mul_grad_rhs_ref(&g, &a, &row.raw_dim()),
        binary::mul_grad_rhs(g.clone(), &a, &row.raw_dim())
    );
    assert_eq!(
        binary::div_grad_lhs_ref(&g, &row, &a.raw_dim()),
        binary::div_grad_lhs(g.clone(), &row, &a.raw_dim())
    );
    assert_eq!(binary::scale_grad_ref(&g, 1.5), binary::scale_grad(g.clone(), 1.5));
}

#[test]
fn fused_chains_equal_the_unfused_kernels() {
    let x = array![[0.3, -0.2], [0.9, 0.05]];
    let y1 = unary::tanh(&x);
    let y2 = unary::exp(&y1);
    let y3 = unary::sin(&y2);
    let g = array![[1.0, -2.0], [0.5, 3.0]];
    let unfused = unary::tanh_grad(unary::exp_grad(unary::sin_grad(g.clone(), &y2), &y2), &y1);
    let fused = fused::chain3(g.clone(), &y2, &y2, &y1, |g, s0, s1, s2| {
        unary::tanh_grad_scalar(unary::exp_grad_scalar(unary::sin_grad_scalar(g, s0), s1), s2)
    });
    assert_eq!(fused, unfused);
    let _ = y3;
}

#[test]
#[should_panic(expected = "chain2: gradient shape [2, 2] differs from saved value shape [3]")]
fn fused_chain_names_mismatched_shapes() {
    let g = Array::<f64, _>::zeros((2, 2)).into_dyn();
    let s = Array::<f64, _>::zeros(3).into_dyn();
    fused::chain2(g, &s, &s, |g, _, _| g);
}
