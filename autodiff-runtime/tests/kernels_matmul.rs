//! Matrix products: forward values against naive loops, every backward against
//! central finite differences in f64, filled variants against the dense ones,
//! strided inputs, and shape-error messages.

use autodiff_runtime::gradcheck::{check_gradient, max_relative_error};
use autodiff_runtime::kernels::matmul::*;
use ndarray::{Array, Array1, Array2, Dimension, ShapeBuilder};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TOL: f64 = 1e-6;

fn random<D: Dimension>(rng: &mut StdRng, shape: impl ndarray::ShapeBuilder<Dim = D>) -> Array<f64, D> {
    Array::from_shape_simple_fn(shape, || rng.gen_range(-1.0..1.0))
}

fn naive_matmul(a: &Array2<f64>, b: &Array2<f64>) -> Array2<f64> {
    let (m, k) = a.dim();
    let n = b.ncols();
    let mut c = Array2::zeros((m, n));
    for i in 0..m {
        for j in 0..n {
            for p in 0..k {
                c[[i, j]] += a[[i, p]] * b[[p, j]];
            }
        }
    }
    c
}

fn max_abs_diff<D: Dimension>(a: &Array<f64, D>, b: &Array<f64, D>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// The message of the panic raised by `f`.
fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let err = std::panic::catch_unwind(f).expect_err("expected a panic");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn matmul_matches_naive_including_transposed_and_strided_inputs() {
    let mut rng = StdRng::seed_from_u64(1);
    let a = random(&mut rng, (5, 7));
    let b = random(&mut rng, (7, 3));
    assert!(max_abs_diff(&matmul(&a, &b), &naive_matmul(&a, &b)) < 1e-12);
    // A transposed view, a Fortran-order array and a stepped slice must all work.
    let at = random(&mut rng, (7, 5));
    let bf = random(&mut rng, (7, 3).f());
    assert!(max_abs_diff(&matmul(&at.t(), &bf), &naive_matmul(&at.t().to_owned(), &bf)) < 1e-12);
    let big = random(&mut rng, (10, 14));
    let sliced = big.slice(ndarray::s![..;2, ..;2]);
    let c = random(&mut rng, (7, 4));
    assert!(max_abs_diff(&matmul(&sliced, &c), &naive_matmul(&sliced.to_owned(), &c)) < 1e-12);
}

#[test]
fn matmul_f32_matches_f64() {
    let mut rng = StdRng::seed_from_u64(2);
    let a = random(&mut rng, (33, 65));
    let b = random(&mut rng, (65, 17));
    let c32 = matmul(&a.mapv(|v| v as f32), &b.mapv(|v| v as f32)).mapv(f64::from);
    assert!(max_abs_diff(&c32, &naive_matmul(&a, &b)) < 1e-4);
}

#[test]
fn matmul_grads_match_finite_differences() {
    let mut rng = StdRng::seed_from_u64(3);
    let (a, b) = (random(&mut rng, (4, 6)), random(&mut rng, (6, 5)));
    // Loss Σ (a·b) ⊙ r has output adjoint r.
    let r = random(&mut rng, (4, 5));
    let err = check_gradient(
        |a: &Array2<f64>| (matmul(a, &b) * &r).sum(),
        &a,
        &matmul_grad_lhs(&r, &b),
    );
    assert!(err <= TOL, "lhs: {err}");
    let err = check_gradient(
        |b: &Array2<f64>| (matmul(&a, b) * &r).sum(),
        &b,
        &matmul_grad_rhs(&a, &r),
    );
    assert!(err <= TOL, "rhs: {err}");
}

#[test]
fn filled_variants_equal_dense_with_filled_adjoint() {
    let mut rng = StdRng::seed_from_u64(4);
    let (a, b) = (random(&mut rng, (4, 6)), random(&mut rng, (6, 5)));
    let g = 0.75;
    let filled = Array2::from_elem((4, 5), g);
    let lhs = matmul_grad_lhs_filled(g, 4, &b);
    let rhs = matmul_grad_rhs_filled(&a, g, 5);
    assert!(max_relative_error(&lhs, &matmul_grad_lhs(&filled, &b)) < 1e-12);
    assert!(max_relative_error(&rhs, &matmul_grad_rhs(&a, &filled)) < 1e-12);
    // And against finite differences of g·Σ(a·b).
    let err = check_gradient(|a: &Array2<f64>| g * matmul(a, &b).sum(), &a, &lhs);
    assert!(err <= TOL, "lhs filled: {err}");
    let err = check_gradient(|b: &Array2<f64>| g * matmul(&a, b).sum(), &b, &rhs);
    assert!(err <= TOL, "rhs filled: {err}");
}

#[test]
fn matvec_values_and_grads() {
    let mut rng = StdRng::seed_from_u64(5);
    let (a, x) = (random(&mut rng, (4, 6)), random(&mut rng, 6));
    let expected: Array1<f64> =
        naive_matmul(&a, &x.clone().insert_axis(ndarray::Axis(1))).remove_axis(ndarray::Axis(1));
    assert!(max_abs_diff(&matvec(&a, &x), &expected) < 1e-12);
    let r = random(&mut rng, 4);
    let err = check_gradient(
        |a: &Array2<f64>| (matvec(a, &x) * &r).sum(),
        &a,
        &matvec_grad_lhs(&r, &x),
    );
    assert!(err <= TOL, "lhs: {err}");
    let err = check_gradient(
        |x: &Array1<f64>| (matvec(&a, x) * &r).sum(),
        &x,
        &matvec_grad_rhs(&a, &r),
    );
    assert!(err <= TOL, "rhs: {err}");
}

#[test]
fn vecmat_values_and_grads() {
    let mut rng = StdRng::seed_from_u64(6);
    let (x, b) = (random(&mut rng, 4), random(&mut rng, (4, 6)));
    let expected: Array1<f64> =
        naive_matmul(&x.clone().insert_axis(ndarray::Axis(0)), &b).remove_axis(ndarray::Axis(0));
    assert!(max_abs_diff(&vecmat(&x, &b), &expected) < 1e-12);
    let r = random(&mut rng, 6);
    let err = check_gradient(
        |x: &Array1<f64>| (vecmat(x, &b) * &r).sum(),
        &x,
        &vecmat_grad_lhs(&r, &b),
    );
    assert!(err <= TOL, "lhs: {err}");
    let err = check_gradient(
        |b: &Array2<f64>| (vecmat(&x, b) * &r).sum(),
        &b,
        &vecmat_grad_rhs(&x, &r),
    );
    assert!(err <= TOL, "rhs: {err}");
}

#[test]
fn vecdot_values_and_grads() {
    let mut rng = StdRng::seed_from_u64(7);
    let (x, y) = (random(&mut rng, 9), random(&mut rng, 9));
    let expected: f64 = x.iter().zip(y.iter()).map(|(a, b)| a * b).sum();
    assert!((vecdot(&x, &y) - expected).abs() < 1e-12);
    let g = -1.5;
    let err = check_gradient(|x: &Array1<f64>| g * vecdot(x, &y), &x, &vecdot_grad(g, &y));
    assert!(err <= TOL, "x: {err}");
    let err = check_gradient(|y: &Array1<f64>| g * vecdot(&x, y), &y, &vecdot_grad(g, &x));
    assert!(err <= TOL, "y: {err}");
}

#[test]
fn transpose_copies_and_its_grad_reverses_axes() {
    let mut rng = StdRng::seed_from_u64(8);
    let a = random(&mut rng, (3, 5));
    let t = transpose(&a);
    assert_eq!(t.shape(), &[5, 3]);
    assert_eq!(t, a.t());
    let a3 = random(&mut rng, (2, 3, 4));
    assert_eq!(transpose(&a3), a3.t());
    let r = random(&mut rng, (5, 3));
    let dg = transpose_grad(r.clone());
    assert_eq!(dg, r.t());
    let err = check_gradient(|a: &Array2<f64>| (transpose(a) * &r).sum(), &a, &dg);
    assert!(err <= TOL, "{err}");
}

#[test]
fn transpose_grad_does_not_copy() {
    let g = Array2::<f64>::zeros((4, 3));
    let before = g.as_ptr();
    assert_eq!(transpose_grad(g).as_ptr(), before);
}

#[test]
fn shape_errors_name_both_shapes() {
    let message = panic_message(|| {
        matmul(&Array2::<f64>::zeros((2, 3)), &Array2::<f64>::zeros((4, 5)));
    });
    assert!(
        message.contains("matmul") && message.contains("[2, 3]") && message.contains("[4, 5]"),
        "{message}"
    );
    let message = panic_message(|| {
        matvec(&Array2::<f64>::zeros((2, 3)), &Array1::<f64>::zeros(4));
    });
    assert!(
        message.contains("matvec") && message.contains("[2, 3]") && message.contains("[4]"),
        "{message}"
    );
    let message = panic_message(|| {
        vecmat(&Array1::<f64>::zeros(4), &Array2::<f64>::zeros((2, 3)));
    });
    assert!(
        message.contains("vecmat") && message.contains("[4]") && message.contains("[2, 3]"),
        "{message}"
    );
    let message = panic_message(|| {
        vecdot(&Array1::<f64>::zeros(4), &Array1::<f64>::zeros(5));
    });
    assert!(
        message.contains("vecdot") && message.contains("[4]") && message.contains("[5]"),
        "{message}"
    );
    let message = panic_message(|| {
        matmul_grad_lhs(&Array2::<f64>::zeros((2, 3)), &Array2::<f64>::zeros((4, 5)));
    });
    assert!(
        message.contains("matmul_grad_lhs") && message.contains("[2, 3]") && message.contains("[4, 5]"),
        "{message}"
    );
}

#[test]
fn accumulating_products_add_to_what_is_there() {
    let a = Array2::from_shape_fn((3, 4), |(i, j)| (i as f64 - j as f64) * 0.3);
    let b = Array2::from_shape_fn((4, 2), |(i, j)| (i + 2 * j) as f64 * 0.1 - 0.2);
    let g = Array2::from_shape_fn((3, 2), |(i, j)| 0.5 - (i * j) as f64 * 0.25);
    let start_a = Array2::from_elem((3, 4), 1.5);
    let mut acc_a = start_a.clone();
    matmul_grad_lhs_acc(&mut acc_a, &g, &b);
    assert!(max_relative_error(&acc_a, &(&start_a + &matmul_grad_lhs(&g, &b))) < 1e-12);
    let start_b = Array2::from_elem((4, 2), -0.5);
    let mut acc_b = start_b.clone();
    matmul_grad_rhs_acc(&mut acc_b, &a, &g);
    assert!(max_relative_error(&acc_b, &(&start_b + &matmul_grad_rhs(&a, &g))) < 1e-12);
}

#[test]
#[should_panic(expected = "matmul_grad_rhs_acc: the accumulator has shape [2, 2], the product [4, 2]")]
fn an_accumulator_of_the_wrong_shape_is_named() {
    let mut acc = Array2::<f64>::zeros((2, 2));
    matmul_grad_rhs_acc(&mut acc, &Array2::zeros((3, 4)), &Array2::zeros((3, 2)));
}
