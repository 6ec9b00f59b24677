//! Tests of the elementwise kernels (`binary.rs`, `unary.rs`) and the reductions
//! (`reduce.rs`): forward values, broadcasting, shape errors, and every backward
//! function against central finite differences in `f64`.
//!
//! A backward function is checked through the scalar loss `Σ forward(x) ⊙ r` with
//! a fixed random `r`, whose gradient is exactly `backward(g = r)`; a constant
//! adjoint would hide mistakes that only show when `g` varies.

use autodiff_runtime::gradcheck::{
    default_step, max_relative_error, numeric_derivative, numeric_gradient, relative_error,
};
use autodiff_runtime::kernels::mask::SignMask;
use autodiff_runtime::kernels::{binary, reduce, unary};
use ndarray::{arr0, array, Array, Array1, Array2, ArrayD, Axis, Dimension, Ix1, IxDyn, ShapeBuilder};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TOLERANCE: f64 = 1e-6;

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// An array of the given shape with elements uniform in `[low, high)`.
fn uniform<Sh: ShapeBuilder>(rng: &mut StdRng, shape: Sh, low: f64, high: f64) -> Array<f64, Sh::Dim> {
    Array::from_shape_simple_fn(shape, || rng.gen_range(low..high))
}

/// Elements with `|x|` in `[0.2, 2)` and a random sign: away from the kinks of
/// `abs`/`relu` at 0, where a finite difference straddles two slopes.
fn away_from_zero<Sh: ShapeBuilder>(rng: &mut StdRng, shape: Sh) -> Array<f64, Sh::Dim> {
    Array::from_shape_simple_fn(shape, || {
        let magnitude = rng.gen_range(0.2..2.0);
        if rng.gen_bool(0.5) {
            magnitude
        } else {
            -magnitude
        }
    })
}

/// `Σ a ⊙ b` for arrays of the same shape.
fn dot_all<D: Dimension>(a: &Array<f64, D>, b: &Array<f64, D>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter().zip(b.iter()).map(|(x, y)| x * y).sum()
}

/// Checks a backward function against central differences of `Σ forward(x) ⊙ r`
/// and returns the worst relative error.
fn check_vjp<D: Dimension, E: Dimension>(
    seed: u64,
    x: &Array<f64, D>,
    forward: impl Fn(&Array<f64, D>) -> Array<f64, E>,
    backward: impl Fn(Array<f64, E>, &Array<f64, D>) -> Array<f64, D>,
) -> f64 {
    let y = forward(x);
    let r = uniform(&mut rng(seed), y.raw_dim(), -1.0, 1.0);
    let analytic = backward(r.clone(), x);
    assert_eq!(analytic.shape(), x.shape(), "the adjoint must have the operand's shape");
    let numeric = numeric_gradient(|x| dot_all(&forward(x), &r), x, default_step::<f64>());
    max_relative_error(&analytic, &numeric)
}

fn assert_close<D: Dimension>(actual: &Array<f64, D>, expected: &Array<f64, D>, tolerance: f64) {
    assert_eq!(actual.shape(), expected.shape());
    for (a, e) in actual.iter().zip(expected.iter()) {
        assert!(
            (a - e).abs() <= tolerance * e.abs().max(1.0),
            "{actual} differs from {expected}"
        );
    }
}

// ---------------------------------------------------------------------------
// binary.rs: forward and broadcasting
// ---------------------------------------------------------------------------

#[test]
fn forward_values_without_broadcasting() {
    let a = array![[1.0, 2.0], [3.0, 4.0]];
    let b = array![[0.5, -1.0], [2.0, 8.0]];
    assert_eq!(binary::add(&a, &b), array![[1.5, 1.0], [5.0, 12.0]]);
    assert_eq!(binary::sub(&a, &b), array![[0.5, 3.0], [1.0, -4.0]]);
    assert_eq!(binary::mul(&a, &b), array![[0.5, -2.0], [6.0, 32.0]]);
    assert_eq!(binary::div(&a, &b), array![[2.0, -2.0], [1.5, 0.5]]);
}

#[test]
fn forward_broadcasts_a_row_vector_over_a_matrix() {
    let a = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
    let b = array![10.0, 20.0, 30.0];
    assert_eq!(binary::add(&a, &b), array![[11.0, 22.0, 33.0], [14.0, 25.0, 36.0]]);
    // The 1-D operand may also come first.
    assert_eq!(binary::sub(&b, &a), array![[9.0, 18.0, 27.0], [6.0, 15.0, 24.0]]);
    // Dynamic rank on either side (the tape's arrays).
    let (a_dyn, b_dyn) = (a.clone().into_dyn(), b.clone().into_dyn());
    assert_eq!(binary::sub(&b, &a_dyn), binary::sub(&b, &a).into_dyn());
    assert_eq!(binary::div(&a_dyn, &b_dyn), binary::div(&a, &b).into_dyn());
    // A row of rank 2 against a vector: the result takes the row's extra axis.
    let row = array![[1.0, 2.0, 3.0]];
    assert_eq!(binary::add(&b, &row), array![[11.0, 22.0, 33.0]]);
    assert_eq!(binary::add(&b_dyn, &row.clone().into_dyn()).shape(), &[1, 3]);
    assert_eq!(binary::sub(&row, &b), array![[-9.0, -18.0, -27.0]]);
}

#[test]
fn forward_broadcasts_column_with_row() {
    let a = array![[1.0], [2.0], [3.0]];
    let b = array![[10.0, 20.0, 30.0, 40.0]];
    let product = binary::mul(&a, &b);
    assert_eq!(product.shape(), &[3, 4]);
    assert_eq!(product[[2, 3]], 120.0);
    assert_eq!(product.row(1), array![20.0, 40.0, 60.0, 80.0]);
}

#[test]
fn forward_broadcasts_a_zero_dimensional_array() {
    let a = arr0(2.0);
    let b = array![[1.0, 2.0], [4.0, 8.0]];
    assert_eq!(binary::div(&a, &b), array![[2.0, 1.0], [0.5, 0.25]]);
    assert_eq!(binary::mul(&b, &a), array![[2.0, 4.0], [8.0, 16.0]]);
}

#[test]
fn forward_accepts_views() {
    let a = array![[1.0, 2.0], [3.0, 4.0]];
    let sum = binary::add(&a.view(), &a.t());
    assert_eq!(sum, array![[2.0, 5.0], [5.0, 8.0]]);
}

#[test]
#[should_panic(expected = "add: shapes [3, 4] and [3] cannot be broadcast together")]
fn forward_names_both_shapes_when_they_do_not_broadcast() {
    let _ = binary::add(&Array2::<f64>::zeros((3, 4)), &Array1::<f64>::zeros(3));
}

#[test]
#[should_panic(expected = "div: shapes [2, 3] and [3, 2] cannot be broadcast together")]
fn div_names_both_shapes_when_they_do_not_broadcast() {
    let _ = binary::div(&Array2::<f64>::ones((2, 3)), &Array2::<f64>::ones((3, 2)));
}

#[test]
fn unbroadcast_sums_over_broadcast_axes() {
    let g = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
    let to_row = binary::unbroadcast(g.clone(), &ndarray::Ix1(3));
    assert_eq!(to_row, array![5.0, 7.0, 9.0]);
    let to_column = binary::unbroadcast(g.clone(), &ndarray::Ix2(2, 1));
    assert_eq!(to_column, array![[6.0], [15.0]]);
    let to_scalar = binary::unbroadcast(g, &ndarray::Ix0());
    assert_eq!(to_scalar, arr0(21.0));
}

#[test]
fn unbroadcast_ref_equals_unbroadcast_and_leaves_the_adjoint() {
    let g = Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f64 - 5.0);
    let g_dyn = g.clone().into_dyn();
    for target in [vec![4], vec![1, 4], vec![3, 1], vec![3, 4], vec![1, 1], vec![]] {
        let dim = IxDyn(&target);
        assert_eq!(
            binary::unbroadcast_ref(&g_dyn, &dim),
            binary::unbroadcast(g_dyn.clone(), &dim)
        );
    }
    assert_eq!(binary::unbroadcast_ref(&g, &Ix1(4)), g.sum_axis(Axis(0)));
    // A transposed adjoint takes the general path.
    let t = g.t().to_owned();
    assert_eq!(binary::unbroadcast_ref(&t, &Ix1(3)), t.sum_axis(Axis(0)));
}

#[test]
fn unbroadcast_reuses_the_buffer_when_nothing_was_broadcast() {
    let g = array![[1.0, 2.0], [3.0, 4.0]];
    let pointer = g.as_ptr();
    let result = binary::unbroadcast(g, &ndarray::Ix2(2, 2));
    assert_eq!(result.as_ptr(), pointer);
}

#[test]
#[should_panic(expected = "operand shape [3] does not broadcast to the gradient shape")]
fn unbroadcast_names_the_shapes_on_mismatch() {
    let _ = binary::unbroadcast(Array2::<f64>::zeros((2, 4)), &ndarray::Ix1(3));
}

#[test]
#[should_panic(expected = "operand shape [1, 2, 3] has more axes than the gradient shape [2, 3]")]
fn unbroadcast_rejects_an_operand_with_more_axes() {
    let _ = binary::unbroadcast(Array2::<f64>::zeros((2, 3)), &ndarray::Ix3(1, 2, 3));
}

// ---------------------------------------------------------------------------
// binary.rs: gradients, for every broadcasting case
// ---------------------------------------------------------------------------

/// The shape pairs every binary gradient is checked on.
fn broadcast_cases() -> Vec<(Vec<usize>, Vec<usize>)> {
    vec![
        (vec![3, 4], vec![3, 4]),
        (vec![3, 4], vec![4]),
        (vec![4], vec![3, 4]),
        (vec![3, 1], vec![1, 4]),
        (vec![], vec![2, 3]),
        (vec![2, 3], vec![]),
        (vec![2, 1, 3], vec![4, 1]),
    ]
}

/// Random operands for a binary op; `b` stays away from zero so `a / b` is smooth.
fn operands(seed: u64, a_shape: &[usize], b_shape: &[usize]) -> (ArrayD<f64>, ArrayD<f64>) {
    let mut rng = rng(seed);
    let a = uniform(&mut rng, IxDyn(a_shape), -2.0, 2.0);
    let b = away_from_zero(&mut rng, IxDyn(b_shape));
    (a, b)
}

#[test]
fn add_and_sub_gradients_match_finite_differences() {
    for (case, (a_shape, b_shape)) in broadcast_cases().into_iter().enumerate() {
        let (a, b) = operands(case as u64, &a_shape, &b_shape);
        let a_dim = a.raw_dim();
        let b_dim = b.raw_dim();
        let err = check_vjp(10, &a, |a| binary::add(a, &b), |g, _| binary::add_grad_lhs(g, &a_dim));
        assert!(err <= TOLERANCE, "add lhs {a_shape:?} {b_shape:?}: {err}");
        let err = check_vjp(11, &b, |b| binary::add(&a, b), |g, _| binary::add_grad_rhs(g, &b_dim));
        assert!(err <= TOLERANCE, "add rhs {a_shape:?} {b_shape:?}: {err}");
        let err = check_vjp(12, &a, |a| binary::sub(a, &b), |g, _| binary::sub_grad_lhs(g, &a_dim));
        assert!(err <= TOLERANCE, "sub lhs {a_shape:?} {b_shape:?}: {err}");
        let err = check_vjp(13, &b, |b| binary::sub(&a, b), |g, _| binary::sub_grad_rhs(g, &b_dim));
        assert!(err <= TOLERANCE, "sub rhs {a_shape:?} {b_shape:?}: {err}");
    }
}

#[test]
fn mul_gradients_match_finite_differences() {
    for (case, (a_shape, b_shape)) in broadcast_cases().into_iter().enumerate() {
        let (a, b) = operands(100 + case as u64, &a_shape, &b_shape);
        let a_dim = a.raw_dim();
        let b_dim = b.raw_dim();
        let err = check_vjp(
            20,
            &a,
            |a| binary::mul(a, &b),
            |g, _| binary::mul_grad_lhs(g, &b, &a_dim),
        );
        assert!(err <= TOLERANCE, "mul lhs {a_shape:?} {b_shape:?}: {err}");
        let err = check_vjp(
            21,
            &b,
            |b| binary::mul(&a, b),
            |g, _| binary::mul_grad_rhs(g, &a, &b_dim),
        );
        assert!(err <= TOLERANCE, "mul rhs {a_shape:?} {b_shape:?}: {err}");
    }
}

#[test]
fn div_gradients_match_finite_differences() {
    for (case, (a_shape, b_shape)) in broadcast_cases().into_iter().enumerate() {
        let (a, b) = operands(200 + case as u64, &a_shape, &b_shape);
        let a_dim = a.raw_dim();
        let err = check_vjp(
            30,
            &a,
            |a| binary::div(a, &b),
            |g, _| binary::div_grad_lhs(g, &b, &a_dim),
        );
        assert!(err <= TOLERANCE, "div lhs {a_shape:?} {b_shape:?}: {err}");
        let err = check_vjp(31, &b, |b| binary::div(&a, b), |g, b| binary::div_grad_rhs(g, &a, b));
        assert!(err <= TOLERANCE, "div rhs {a_shape:?} {b_shape:?}: {err}");
    }
}

#[test]
fn gradients_have_the_operand_shapes_after_broadcasting() {
    let a = Array2::<f64>::ones((3, 1));
    let b = Array2::<f64>::ones((1, 4));
    let g = Array2::<f64>::ones((3, 4));
    assert_eq!(
        binary::mul_grad_lhs(g.clone(), &b, &a.raw_dim()),
        array![[4.0], [4.0], [4.0]]
    );
    assert_eq!(binary::mul_grad_rhs(g, &a, &b.raw_dim()), array![[3.0, 3.0, 3.0, 3.0]]);
}

#[test]
fn neg_and_its_gradient() {
    let mut rng = rng(40);
    let a = uniform(&mut rng, (3, 2), -1.0, 1.0);
    assert_eq!(binary::neg(&a), a.mapv(|x| -x));
    let err = check_vjp(41, &a, binary::neg, |g, _| binary::neg_grad(g));
    assert!(err <= TOLERANCE, "neg: {err}");
}

// ---------------------------------------------------------------------------
// binary.rs: array-scalar and scalar-array forms
// ---------------------------------------------------------------------------

#[test]
fn scalar_forms_compute_the_right_values() {
    let a = array![1.0, 2.0, 4.0];
    assert_eq!(binary::add_scalar(&a, 1.0), array![2.0, 3.0, 5.0]);
    assert_eq!(binary::sub_scalar(&a, 1.0), array![0.0, 1.0, 3.0]);
    assert_eq!(binary::scalar_sub(1.0, &a), array![0.0, -1.0, -3.0]);
    assert_eq!(binary::mul_scalar(&a, 3.0), array![3.0, 6.0, 12.0]);
    assert_eq!(binary::div_scalar(&a, 2.0), array![0.5, 1.0, 2.0]);
    assert_eq!(binary::scalar_div(8.0, &a), array![8.0, 4.0, 2.0]);
}

#[test]
fn scalar_forms_array_gradients_match_finite_differences() {
    let mut rng = rng(50);
    let a = away_from_zero(&mut rng, (4, 3));
    let s = 1.7;
    let err = check_vjp(51, &a, |a| binary::mul_scalar(a, s), |g, _| binary::scale_grad(g, s));
    assert!(err <= TOLERANCE, "mul_scalar: {err}");
    let err = check_vjp(
        52,
        &a,
        |a| binary::div_scalar(a, s),
        |g, _| binary::div_scalar_grad_array(g, s),
    );
    assert!(err <= TOLERANCE, "div_scalar: {err}");
    let err = check_vjp(
        53,
        &a,
        |a| binary::scalar_div(s, a),
        |g, a| binary::scalar_div_grad_array(g, s, a),
    );
    assert!(err <= TOLERANCE, "scalar_div: {err}");
    // `a + s` and `s - a` pass the adjoint through (negated for `s - a`).
    let err = check_vjp(54, &a, |a| binary::add_scalar(a, s), |g, _| g);
    assert!(err <= TOLERANCE, "add_scalar: {err}");
    let err = check_vjp(55, &a, |a| binary::scalar_sub(s, a), |g, _| binary::neg_grad(g));
    assert!(err <= TOLERANCE, "scalar_sub: {err}");
}

#[test]
fn scalar_operand_gradients_match_finite_differences() {
    let mut rng = rng(60);
    let a = away_from_zero(&mut rng, (3, 4));
    let r = uniform(&mut rng, (3, 4), -1.0, 1.0);
    let s = -0.8;
    let step = default_step::<f64>();
    let loss = |y: Array2<f64>| dot_all(&y, &r);

    let numeric = numeric_derivative(|s| loss(binary::add_scalar(&a, s)), s, step);
    assert!(relative_error(binary::sum_grad_of_scalar(&r), numeric) <= TOLERANCE);

    let numeric = numeric_derivative(|s| loss(binary::sub_scalar(&a, s)), s, step);
    assert!(relative_error(-binary::sum_grad_of_scalar(&r), numeric) <= TOLERANCE);

    let numeric = numeric_derivative(|s| loss(binary::mul_scalar(&a, s)), s, step);
    assert!(relative_error(binary::sum_product(&r, &a), numeric) <= TOLERANCE);

    let numeric = numeric_derivative(|s| loss(binary::div_scalar(&a, s)), s, step);
    assert!(relative_error(binary::div_scalar_grad_scalar(&r, &a, s), numeric) <= TOLERANCE);

    let numeric = numeric_derivative(|s| loss(binary::scalar_div(s, &a)), s, step);
    assert!(relative_error(binary::scalar_div_grad_scalar(&r, &a), numeric) <= TOLERANCE);
}

#[test]
#[should_panic(expected = "sum_product: gradient shape [2, 3] differs from operand shape [3, 2]")]
fn sum_product_names_both_shapes() {
    let _ = binary::sum_product(&Array2::<f64>::zeros((2, 3)), &Array2::<f64>::zeros((3, 2)));
}

#[test]
fn scale_grad_reuses_the_buffer() {
    let g = array![1.0, 2.0];
    let pointer = g.as_ptr();
    let scaled = binary::scale_grad(g, 3.0);
    assert_eq!(scaled.as_ptr(), pointer);
    assert_eq!(scaled, array![3.0, 6.0]);
}

// ---------------------------------------------------------------------------
// unary.rs
// ---------------------------------------------------------------------------

type ArrayFn = fn(&Array2<f64>) -> Array2<f64>;
type GradFn = fn(Array2<f64>, &Array2<f64>) -> Array2<f64>;
type ScalarFn = fn(f64) -> f64;
type ScalarGradFn = fn(f64, f64) -> f64;

/// One row of the unary table: name, array forward, array backward, scalar
/// forward, scalar backward, what the backward reads, and the input domain.
struct UnaryCase {
    name: &'static str,
    forward: ArrayFn,
    grad: GradFn,
    scalar: ScalarFn,
    grad_scalar: ScalarGradFn,
    saves: unary::Saves,
    positive_only: bool,
}

fn unary_cases() -> Vec<UnaryCase> {
    macro_rules! case {
        ($name:ident, $grad:ident, $scalar:ident, $grad_scalar:ident, $saves:ident, $positive:expr) => {
            UnaryCase {
                name: stringify!($name),
                forward: unary::$name,
                grad: unary::$grad,
                scalar: unary::$scalar,
                grad_scalar: unary::$grad_scalar,
                saves: unary::$saves,
                positive_only: $positive,
            }
        };
    }
    vec![
        case!(exp, exp_grad, exp_scalar, exp_grad_scalar, EXP_SAVES, false),
        case!(ln, ln_grad, ln_scalar, ln_grad_scalar, LN_SAVES, true),
        case!(sqrt, sqrt_grad, sqrt_scalar, sqrt_grad_scalar, SQRT_SAVES, true),
        case!(tanh, tanh_grad, tanh_scalar, tanh_grad_scalar, TANH_SAVES, false),
        case!(sin, sin_grad, sin_scalar, sin_grad_scalar, SIN_SAVES, false),
        case!(cos, cos_grad, cos_scalar, cos_grad_scalar, COS_SAVES, false),
        case!(abs, abs_grad, abs_scalar, abs_grad_scalar, ABS_SAVES, false),
        case!(recip, recip_grad, recip_scalar, recip_grad_scalar, RECIP_SAVES, false),
        case!(
            square,
            square_grad,
            square_scalar,
            square_grad_scalar,
            SQUARE_SAVES,
            false
        ),
        case!(relu, relu_grad, relu_scalar, relu_grad_scalar, RELU_SAVES, false),
        case!(
            sigmoid,
            sigmoid_grad,
            sigmoid_scalar,
            sigmoid_grad_scalar,
            SIGMOID_SAVES,
            false
        ),
    ]
}

fn unary_input(seed: u64, case: &UnaryCase, shape: (usize, usize)) -> Array2<f64> {
    let mut rng = rng(seed);
    let x = away_from_zero(&mut rng, shape);
    if case.positive_only {
        x.mapv(f64::abs)
    } else {
        x
    }
}

#[test]
fn unary_gradients_match_finite_differences_with_the_declared_saved_value() {
    for (index, case) in unary_cases().iter().enumerate() {
        for (shape_index, shape) in [(1, 1), (3, 4), (5, 2)].into_iter().enumerate() {
            let x = unary_input((index * 10 + shape_index) as u64, case, shape);
            // Pass exactly what the op declares it saves: the test then also
            // pins the `*_SAVES` constants that the macro's liveness pass reads.
            let err = check_vjp(70 + index as u64, &x, case.forward, |g, x| match case.saves {
                unary::Saves::Input => (case.grad)(g, x),
                unary::Saves::Output => (case.grad)(g, &(case.forward)(x)),
                unary::Saves::OutputSign => (case.grad)(g, &SignMask::positive(&(case.forward)(x)).decode()),
            });
            assert!(err <= TOLERANCE, "{} on {shape:?}: relative error {err}", case.name);
        }
    }
}

#[test]
fn unary_scalar_forms_agree_with_the_array_forms() {
    for (index, case) in unary_cases().iter().enumerate() {
        let x = unary_input(300 + index as u64, case, (2, 3));
        let y = (case.forward)(&x);
        let g = uniform(&mut rng(400 + index as u64), (2, 3), -1.0, 1.0);
        let saved = match case.saves {
            unary::Saves::Input => x.clone(),
            unary::Saves::Output | unary::Saves::OutputSign => y.clone(),
        };
        let grad = (case.grad)(g.clone(), &saved);
        for i in 0..x.len() {
            let (xi, gi) = (x.as_slice().unwrap()[i], g.as_slice().unwrap()[i]);
            assert_eq!(
                (case.scalar)(xi),
                y.as_slice().unwrap()[i],
                "{} scalar forward",
                case.name
            );
            let si = saved.as_slice().unwrap()[i];
            assert_eq!(
                (case.grad_scalar)(gi, si),
                grad.as_slice().unwrap()[i],
                "{} scalar backward",
                case.name
            );
            let numeric = numeric_derivative(case.scalar, xi, default_step::<f64>());
            let err = relative_error((case.grad_scalar)(1.0, si), numeric);
            assert!(err <= TOLERANCE, "{} scalar derivative at {xi}: {err}", case.name);
        }
    }
}

#[test]
fn unary_gradients_reuse_the_adjoint_buffer() {
    let x = array![[0.5, -1.0], [2.0, 0.1]];
    let g = array![[1.0, 1.0], [1.0, 1.0]];
    let pointer = g.as_ptr();
    let grad = unary::tanh_grad(g, &unary::tanh(&x));
    assert_eq!(grad.as_ptr(), pointer);
}

#[test]
fn unary_forward_values() {
    let x = array![-2.0, 0.0, 3.0];
    assert_eq!(unary::relu(&x), array![0.0, 0.0, 3.0]);
    assert_eq!(unary::square(&x), array![4.0, 0.0, 9.0]);
    assert_eq!(unary::abs(&x), array![2.0, 0.0, 3.0]);
    assert_eq!(unary::sigmoid(&array![0.0]), array![0.5]);
    // The kinks take the conventional subgradient 0.
    assert_eq!(
        unary::relu_grad(array![1.0, 1.0, 1.0], &unary::relu(&x)),
        array![0.0, 0.0, 1.0]
    );
    assert_eq!(unary::abs_grad(array![1.0, 1.0, 1.0], &x), array![-1.0, 0.0, 1.0]);
}

#[test]
fn sigmoid_is_finite_at_large_inputs() {
    let x: Array1<f64> = array![-1000.0, -100.0, 100.0, 1000.0];
    let y = unary::sigmoid(&x);
    assert!(y.iter().all(|v| v.is_finite()), "{y}");
    assert_eq!(y[3], 1.0);
    assert_eq!(y[0], 0.0);
    assert!((y[1] - (-100.0f64).exp()).abs() <= 1e-50, "sigmoid(-100) = {}", y[1]);
    let grad = unary::sigmoid_grad(Array1::ones(4), &y);
    assert!(grad.iter().all(|v| v.is_finite() && *v >= 0.0), "{grad}");
    // In f32 too, where exp(100) overflows.
    let y32 = unary::sigmoid(&array![-100.0f32, 100.0f32]);
    assert!(y32.iter().all(|v| v.is_finite()), "{y32}");
    assert_eq!(unary::sigmoid_scalar(-1000.0f64), 0.0);
    assert_eq!(unary::sigmoid_scalar(1000.0f64), 1.0);
}

#[test]
#[should_panic(expected = "tanh_grad: gradient shape [2, 3] differs from saved value shape [3, 2]")]
fn unary_gradient_names_both_shapes() {
    let _ = unary::tanh_grad(Array2::<f64>::zeros((2, 3)), &Array2::<f64>::zeros((3, 2)));
}

#[test]
fn powi_gradients_match_finite_differences() {
    for (index, n) in [-2, 0, 1, 2, 3, 5].into_iter().enumerate() {
        let x = away_from_zero(&mut rng(80 + index as u64), (3, 3));
        let err = check_vjp(90, &x, |x| unary::powi(x, n), |g, x| unary::powi_grad(g, x, n));
        assert!(err <= TOLERANCE, "powi({n}): {err}");
    }
}

#[test]
fn powi_derivative_is_exact_at_zero() {
    assert_eq!(unary::powi_derivative(0.0f64, 0), 0.0);
    assert_eq!(unary::powi_derivative(0.0f64, 1), 1.0);
    assert_eq!(unary::powi_derivative(0.0f64, 2), 0.0);
    assert_eq!(unary::powi_derivative(0.0f64, 3), 0.0);
    assert_eq!(unary::powi_derivative(2.0f64, 3), 12.0);
}

#[test]
fn powf_gradients_match_finite_differences() {
    for (index, p) in [0.5, 1.0, 2.5, -1.5, 0.0].into_iter().enumerate() {
        let x = uniform(&mut rng(100 + index as u64), (4, 2), 0.2, 3.0);
        let err = check_vjp(110, &x, |x| unary::powf(x, p), |g, x| unary::powf_grad(g, x, p));
        assert!(err <= TOLERANCE, "powf({p}): {err}");
    }
}

#[test]
#[should_panic(expected = "powi_grad: gradient shape [2] differs from input shape [3]")]
fn powi_gradient_names_both_shapes() {
    let _ = unary::powi_grad(Array1::<f64>::zeros(2), &Array1::<f64>::zeros(3), 2);
}

#[test]
fn map_grad_applies_the_given_derivative() {
    let f = |x: f64| x * x * x + x.sin();
    let df = |x: f64| 3.0 * x * x + x.cos();
    let x = uniform(&mut rng(120), (3, 5), -2.0, 2.0);
    let err = check_vjp(121, &x, |x| x.mapv(f), |g, x| unary::map_grad(g, x, df));
    assert!(err <= TOLERANCE, "map_grad: {err}");
}

#[test]
#[should_panic(expected = "map_grad: gradient shape [4] differs from input shape [2]")]
fn map_grad_names_both_shapes() {
    let _ = unary::map_grad(Array1::<f64>::zeros(4), &Array1::<f64>::zeros(2), |x| x);
}

// ---------------------------------------------------------------------------
// reduce.rs
// ---------------------------------------------------------------------------

#[test]
fn reductions_compute_the_right_values() {
    let a = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
    assert_eq!(reduce::sum(&a), 21.0);
    assert_eq!(reduce::mean(&a), 3.5);
    assert_eq!(reduce::sum_axis(&a, Axis(0)), array![5.0, 7.0, 9.0]);
    assert_eq!(reduce::sum_axis(&a, Axis(1)), array![6.0, 15.0]);
    assert_eq!(reduce::mean_axis(&a, Axis(0)), array![2.5, 3.5, 4.5]);
    assert_eq!(reduce::mean_axis(&a, Axis(1)), array![2.0, 5.0]);
}

#[test]
fn full_reduction_gradients_match_finite_differences() {
    for (index, shape) in [vec![1], vec![7], vec![3, 4], vec![2, 3, 2]].into_iter().enumerate() {
        let x = uniform(&mut rng(130 + index as u64), IxDyn(&shape), -2.0, 2.0);
        let g = 0.7;
        let step = default_step::<f64>();
        let numeric = numeric_gradient(|x| g * reduce::sum(x), &x, step);
        let err = max_relative_error(&reduce::sum_grad(g, &x.raw_dim()), &numeric);
        assert!(err <= TOLERANCE, "sum {shape:?}: {err}");
        let numeric = numeric_gradient(|x| g * reduce::mean(x), &x, step);
        let err = max_relative_error(&reduce::mean_grad(g, &x.raw_dim()), &numeric);
        assert!(err <= TOLERANCE, "mean {shape:?}: {err}");
    }
}

#[test]
fn axis_reduction_gradients_match_finite_differences() {
    let cases: [(&[usize], usize); 6] = [
        (&[5], 0),
        (&[3, 4], 0),
        (&[3, 4], 1),
        (&[2, 3, 4], 0),
        (&[2, 3, 4], 1),
        (&[2, 3, 4], 2),
    ];
    for (index, (shape, axis)) in cases.into_iter().enumerate() {
        let x = uniform(&mut rng(140 + index as u64), IxDyn(shape), -2.0, 2.0);
        let dim = x.raw_dim();
        let err = check_vjp(
            150 + index as u64,
            &x,
            |x| reduce::sum_axis(x, Axis(axis)),
            |g, _| reduce::sum_axis_grad(g, Axis(axis), &dim),
        );
        assert!(err <= TOLERANCE, "sum_axis {shape:?} axis {axis}: {err}");
        let err = check_vjp(
            160 + index as u64,
            &x,
            |x| reduce::mean_axis(x, Axis(axis)),
            |g, _| reduce::mean_axis_grad(g, Axis(axis), &dim),
        );
        assert!(err <= TOLERANCE, "mean_axis {shape:?} axis {axis}: {err}");
    }
}

#[test]
fn axis_reduction_gradients_keep_static_dimensions() {
    let g = array![1.0, 2.0];
    let grad: Array2<f64> = reduce::mean_axis_grad(g, Axis(1), &ndarray::Ix2(2, 4));
    assert_close(&grad, &array![[0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0.5, 0.5]], 1e-15);
}

#[test]
#[should_panic(expected = "mean: the array of shape [0, 3] is empty")]
fn mean_of_an_empty_array_names_its_shape() {
    let _ = reduce::mean(&Array2::<f64>::zeros((0, 3)));
}

#[test]
#[should_panic(expected = "sum_axis: axis 2 is out of bounds for shape [2, 3]")]
fn sum_axis_names_the_axis_and_shape() {
    let _ = reduce::sum_axis(&Array2::<f64>::zeros((2, 3)), Axis(2));
}

#[test]
#[should_panic(expected = "mean_axis: axis 1 of shape [2, 0] is empty")]
fn mean_axis_of_an_empty_axis_names_it() {
    let _ = reduce::mean_axis(&Array2::<f64>::zeros((2, 0)), Axis(1));
}

#[test]
fn the_gradient_check_would_catch_a_wrong_gradient() {
    // Guards the tests above against a checker that accepts anything: `sin`
    // with the backward of `cos` must fail.
    let x = uniform(&mut rng(170), (3, 4), -2.0, 2.0);
    let err = check_vjp(171, &x, unary::sin, unary::cos_grad);
    assert!(err > 1e-2, "a wrong gradient passed with relative error {err}");
    // A broadcast operand whose adjoint is not reduced back is caught by shape.
    let b = uniform(&mut rng(172), 4, -2.0, 2.0);
    let result = std::panic::catch_unwind(|| {
        check_vjp(
            173,
            &b,
            |b| binary::add(&x, b),
            |g, b| binary::unbroadcast(g, &ndarray::Ix1(b.len() - 1)),
        )
    });
    assert!(result.is_err());
}

#[test]
fn float_operand_gradients_match_finite_differences() {
    // The scalar-only forms that generated code uses when both operands are floats.
    let step = default_step::<f64>();
    let (a, b, g) = (1.3, -0.7, 0.9);
    let numeric = numeric_derivative(|b| g * (a - b), b, step);
    assert!(relative_error(binary::neg_grad_scalar(g), numeric) <= TOLERANCE);
    let numeric = numeric_derivative(|a| g * (a * b), a, step);
    assert!(relative_error(binary::mul_grad_scalar(g, b), numeric) <= TOLERANCE);
    let numeric = numeric_derivative(|a| g * (a / b), a, step);
    assert!(relative_error(binary::div_grad_lhs_scalar(g, b), numeric) <= TOLERANCE);
    let numeric = numeric_derivative(|b| g * (a / b), b, step);
    assert!(relative_error(binary::div_grad_rhs_scalar(g, a, b), numeric) <= TOLERANCE);
    let numeric = numeric_derivative(|a: f64| g * a.powi(3), a, step);
    assert!(relative_error(unary::powi_grad_scalar(g, a, 3), numeric) <= TOLERANCE);
    let numeric = numeric_derivative(|a: f64| g * a.powf(2.5), a, step);
    assert!(relative_error(unary::powf_grad_scalar(g, a, 2.5), numeric) <= TOLERANCE);
    assert_eq!(unary::max_derivative(a, 0.0), 1.0);
    assert_eq!(unary::max_derivative(b, 0.0), 0.0);
    assert_eq!(unary::min_derivative(a, 0.0), 0.0);
    assert_eq!(unary::min_derivative(b, 0.0), 1.0);
}

#[test]
fn array_minus_scalar_gradient_of_the_scalar() {
    let a = uniform(&mut rng(180), (2, 5), -1.0, 1.0);
    let r = uniform(&mut rng(181), (2, 5), -1.0, 1.0);
    let numeric = numeric_derivative(|s| dot_all(&binary::sub_scalar(&a, s), &r), 0.3, default_step::<f64>());
    assert!(relative_error(binary::sub_scalar_grad_scalar(&r), numeric) <= TOLERANCE);
}

#[test]
fn accumulate_adds_in_place() {
    let mut acc = array![[1.0, 2.0], [3.0, 4.0]];
    let pointer = acc.as_ptr();
    binary::accumulate(&mut acc, array![[0.5, 0.5], [1.0, -4.0]]);
    assert_eq!(acc, array![[1.5, 2.5], [4.0, 0.0]]);
    assert_eq!(acc.as_ptr(), pointer);
}

#[test]
#[should_panic(expected = "accumulate: adjoint shape [2] differs from contribution shape [3]")]
fn accumulate_names_both_shapes() {
    binary::accumulate(&mut Array1::<f64>::zeros(2), Array1::<f64>::zeros(3));
}
