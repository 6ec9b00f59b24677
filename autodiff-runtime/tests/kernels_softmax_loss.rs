//! Tests of `softmax.rs`, `loss.rs` and the user-facing `ops.rs`: forward values,
//! stability at large logits, shape errors, and every backward function against
//! central finite differences in `f64`.
//!
//! A backward function is checked through the scalar loss `Σ forward(x) ⊙ r` with
//! a fixed random `r`, whose gradient is exactly `backward(g = r)`: with `g = 1`
//! the softmax gradient would be identically zero and prove nothing.

use autodiff_runtime::gradcheck::{default_step, max_relative_error, numeric_gradient};
use autodiff_runtime::kernels::{loss, reduce, softmax as sm, unary};
use autodiff_runtime::ops::{self, ArrayExt};
use ndarray::{array, Array, Array1, Array2, Array3, ArrayD, Axis, Dimension, IxDyn, RemoveAxis, ShapeBuilder};
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

/// `Σ a ⊙ b` for arrays of the same shape.
fn dot_all<D: Dimension>(a: &Array<f64, D>, b: &Array<f64, D>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter().zip(b.iter()).map(|(x, y)| x * y).sum()
}

/// The worst relative error of a backward function against central differences
/// of `Σ forward(x) ⊙ r`, for a fixed random `r`.
fn check_vjp<D: Dimension>(
    seed: u64,
    x: &Array<f64, D>,
    forward: impl Fn(&Array<f64, D>) -> Array<f64, D>,
    backward: impl Fn(Array<f64, D>, &Array<f64, D>) -> Array<f64, D>,
) -> f64 {
    let y = forward(x);
    let r = uniform(&mut rng(seed), y.raw_dim(), -1.0, 1.0);
    let analytic = backward(r.clone(), &y);
    assert_eq!(analytic.shape(), x.shape(), "the adjoint must have the input's shape");
    let numeric = numeric_gradient(|x| dot_all(&forward(x), &r), x, default_step::<f64>());
    max_relative_error(&analytic, &numeric)
}

/// Softmax by its definition, without the max shift: the reference for moderate inputs.
fn naive_softmax<D: RemoveAxis>(x: &Array<f64, D>, axis: Axis) -> Array<f64, D> {
    let mut e = x.mapv(f64::exp);
    for mut lane in e.lanes_mut(axis) {
        let total = lane.sum();
        lane /= total;
    }
    e
}

fn assert_close<D: Dimension>(actual: &Array<f64, D>, expected: &Array<f64, D>, tolerance: f64) {
    assert_eq!(actual.shape(), expected.shape());
    for (a, e) in actual.iter().zip(expected.iter()) {
        assert!(
            (a - e).abs() <= tolerance * e.abs().max(1.0),
            "{actual}\ndiffers from\n{expected}"
        );
    }
}

/// Every (shape, axis) pair the softmax kernels are checked on, including a
/// strided axis (`Axis(0)` of a matrix) and a middle axis of a 3-D array.
fn softmax_cases() -> Vec<(Vec<usize>, usize)> {
    vec![
        (vec![6], 0),
        (vec![3, 5], 1),
        (vec![4, 3], 0),
        (vec![2, 3, 4], 1),
        (vec![2, 3, 4], 2),
        (vec![1, 1], 1),
    ]
}

// ---------------------------------------------------------------------------
// softmax.rs
// ---------------------------------------------------------------------------

#[test]
fn softmax_matches_the_definition_and_sums_to_one() {
    for (index, (shape, axis)) in softmax_cases().into_iter().enumerate() {
        let x = uniform(&mut rng(index as u64), IxDyn(&shape), -3.0, 3.0);
        let y = sm::softmax(&x, Axis(axis));
        assert_close(&y, &naive_softmax(&x, Axis(axis)), 1e-14);
        let sums = y.sum_axis(Axis(axis));
        assert!(
            sums.iter().all(|s| (s - 1.0).abs() < 1e-14),
            "{shape:?} axis {axis}: sums {sums}"
        );
    }
}

#[test]
fn log_softmax_is_the_log_of_softmax() {
    for (index, (shape, axis)) in softmax_cases().into_iter().enumerate() {
        let x = uniform(&mut rng(10 + index as u64), IxDyn(&shape), -3.0, 3.0);
        let y = sm::log_softmax(&x, Axis(axis));
        assert_close(&y, &naive_softmax(&x, Axis(axis)).mapv(f64::ln), 1e-13);
    }
}

#[test]
fn softmax_accepts_non_contiguous_views() {
    let x = uniform(&mut rng(20), (4, 3), -2.0, 2.0);
    let transposed = x.t();
    let y = sm::softmax(&transposed, Axis(1));
    assert_close(&y, &naive_softmax(&transposed.to_owned(), Axis(1)), 1e-14);
    let log_y = sm::log_softmax(&x.slice(ndarray::s![.., ..;2]), Axis(0));
    assert_close(
        &log_y,
        &naive_softmax(&x.slice(ndarray::s![.., ..;2]).to_owned(), Axis(0)).mapv(f64::ln),
        1e-13,
    );
}

#[test]
fn softmax_of_large_logits_is_finite_and_correct() {
    let x: Array2<f64> = array![[1000.0, -1000.0, 999.0], [-1000.0, -1000.0, -1000.0]];
    let y = sm::softmax(&x, Axis(1));
    assert!(y.iter().all(|v| v.is_finite()), "{y}");
    let top = 1.0 / (1.0 + (-1.0f64).exp());
    let expected = array![[top, 0.0, 1.0 - top], [1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0]];
    assert_close(&y, &expected, 1e-15);
    // f32 overflows exp at 89, so it is a sharper test of the max shift.
    let y32 = sm::softmax(&array![[1000.0f32, -1000.0, 999.0]], Axis(1));
    assert!(y32.iter().all(|v| v.is_finite()), "{y32}");
    assert!((y32[[0, 0]] - top as f32).abs() < 1e-6);
}

#[test]
fn log_softmax_of_large_logits_is_finite_and_correct() {
    let x: Array2<f64> = array![[1000.0, -1000.0, 999.0], [-1000.0, -1000.0, -1000.0]];
    let y = sm::log_softmax(&x, Axis(1));
    assert!(y.iter().all(|v| v.is_finite()), "{y}");
    let log_norm = (1.0 + (-1.0f64).exp()).ln();
    let third = -(3.0f64).ln();
    let expected = array![[-log_norm, -2000.0 - log_norm, -1.0 - log_norm], [third, third, third]];
    assert_close(&y, &expected, 1e-15);
    let y32 = sm::log_softmax(&array![[1000.0f32, -1000.0, 999.0]], Axis(1));
    assert!(y32.iter().all(|v| v.is_finite()), "{y32}");
    assert!((y32[[0, 1]] + 2000.0 + log_norm as f32).abs() < 1e-3);
}

#[test]
fn softmax_gradient_matches_finite_differences() {
    for (index, (shape, axis)) in softmax_cases().into_iter().enumerate() {
        let x = uniform(&mut rng(30 + index as u64), IxDyn(&shape), -3.0, 3.0);
        let axis = Axis(axis);
        let err = check_vjp(
            40 + index as u64,
            &x,
            |x| sm::softmax(x, axis),
            |g, y| sm::softmax_grad(g, y, axis),
        );
        assert!(err <= TOLERANCE, "softmax {shape:?} {axis:?}: relative error {err}");
    }
}

#[test]
fn log_softmax_gradient_matches_finite_differences() {
    for (index, (shape, axis)) in softmax_cases().into_iter().enumerate() {
        let x = uniform(&mut rng(50 + index as u64), IxDyn(&shape), -3.0, 3.0);
        let axis = Axis(axis);
        let err = check_vjp(
            60 + index as u64,
            &x,
            |x| sm::log_softmax(x, axis),
            |g, y| sm::log_softmax_grad(g, y, axis),
        );
        assert!(err <= TOLERANCE, "log_softmax {shape:?} {axis:?}: relative error {err}");
    }
}

#[test]
fn softmax_gradients_keep_static_dimensions_and_reuse_the_buffer() {
    let x = uniform(&mut rng(70), (3, 4), -1.0, 1.0);
    let y = sm::softmax(&x, Axis(1));
    let g: Array2<f64> = uniform(&mut rng(71), (3, 4), -1.0, 1.0);
    let pointer = g.as_ptr();
    let grad: Array2<f64> = sm::softmax_grad(g, &y, Axis(1));
    assert_eq!(grad.as_ptr(), pointer);
    // Softmax is invariant to adding a constant per row, so each row of the
    // gradient sums to zero.
    assert!(grad.sum_axis(Axis(1)).iter().all(|s| s.abs() < 1e-15));
    let log_y = sm::log_softmax(&x, Axis(1));
    let g = Array2::<f64>::ones((3, 4));
    let pointer = g.as_ptr();
    let grad = sm::log_softmax_grad(g, &log_y, Axis(1));
    assert_eq!(grad.as_ptr(), pointer);
    assert!(grad.sum_axis(Axis(1)).iter().all(|s| s.abs() < 1e-14));
}

#[test]
fn softmax_gradient_is_finite_at_large_logits() {
    let x: Array2<f64> = array![[1000.0, -1000.0, 999.0]];
    let y = sm::softmax(&x, Axis(1));
    let grad = sm::softmax_grad(array![[1.0, 2.0, 3.0]], &y, Axis(1));
    assert!(grad.iter().all(|v| v.is_finite()), "{grad}");
    let log_y = sm::log_softmax(&x, Axis(1));
    let grad = sm::log_softmax_grad(array![[1.0, 2.0, 3.0]], &log_y, Axis(1));
    assert!(grad.iter().all(|v| v.is_finite()), "{grad}");
}

#[test]
#[should_panic(expected = "softmax: axis 2 is out of bounds for shape [2, 3]")]
fn softmax_names_an_out_of_bounds_axis() {
    let _ = sm::softmax(&Array2::<f64>::zeros((2, 3)), Axis(2));
}

#[test]
#[should_panic(expected = "log_softmax: axis 1 is out of bounds for shape [4]")]
fn log_softmax_names_an_out_of_bounds_axis() {
    let _ = sm::log_softmax(&Array1::<f64>::zeros(4), Axis(1));
}

#[test]
#[should_panic(expected = "softmax_grad: gradient shape [2, 3] differs from output shape [3, 2]")]
fn softmax_grad_names_both_shapes() {
    let _ = sm::softmax_grad(Array2::<f64>::zeros((2, 3)), &Array2::<f64>::zeros((3, 2)), Axis(1));
}

#[test]
#[should_panic(expected = "log_softmax_grad: gradient shape [2, 3] differs from output shape [2, 4]")]
fn log_softmax_grad_names_both_shapes() {
    let _ = sm::log_softmax_grad(Array2::<f64>::zeros((2, 3)), &Array2::<f64>::zeros((2, 4)), Axis(1));
}

// ---------------------------------------------------------------------------
// loss.rs: mse
// ---------------------------------------------------------------------------

#[test]
fn mse_value() {
    let pred = array![[1.0, 2.0], [3.0, 4.0]];
    let target = array![[1.0, 0.0], [5.0, 4.0]];
    assert_eq!(loss::mse(&pred, &target), (4.0 + 4.0) / 4.0);
    assert_eq!(loss::mse(&pred.view(), &pred.t().t()), 0.0);
}

#[test]
fn mse_gradients_match_finite_differences() {
    for (index, shape) in [vec![1], vec![5], vec![3, 4], vec![2, 3, 2]].into_iter().enumerate() {
        let mut rng = rng(80 + index as u64);
        let pred = uniform(&mut rng, IxDyn(&shape), -2.0, 2.0);
        let target = uniform(&mut rng, IxDyn(&shape), -2.0, 2.0);
        let g = rng.gen_range(0.5..1.5);
        let step = default_step::<f64>();
        let numeric = numeric_gradient(|p| g * loss::mse(p, &target), &pred, step);
        let err = max_relative_error(&loss::mse_grad_pred(g, &pred, &target), &numeric);
        assert!(err <= TOLERANCE, "mse pred {shape:?}: {err}");
        let numeric = numeric_gradient(|t| g * loss::mse(&pred, t), &target, step);
        let err = max_relative_error(&loss::mse_grad_target(g, &pred, &target), &numeric);
        assert!(err <= TOLERANCE, "mse target {shape:?}: {err}");
    }
}

#[test]
fn mse_agrees_across_memory_layouts() {
    // Contiguous operands of equal layout take a chunked fast path; the rest a Zip.
    let pred = uniform(&mut rng(85), (5, 7), -2.0, 2.0);
    let target = uniform(&mut rng(86), (5, 7), -2.0, 2.0);
    let reference = pred
        .iter()
        .zip(target.iter())
        .map(|(p, t)| (p - t) * (p - t))
        .sum::<f64>()
        / 35.0;
    let transposed_target = target.t().as_standard_layout().into_owned().reversed_axes();
    assert_ne!(transposed_target.strides(), target.strides());
    for value in [
        loss::mse(&pred, &target),
        loss::mse(&pred, &transposed_target),
        loss::mse(&pred.t(), &target.t()),
    ] {
        assert!((value - reference).abs() < 1e-14, "{value} vs {reference}");
    }
    // A strided slice is not contiguous and takes the Zip path.
    let (p, t) = (pred.slice(ndarray::s![.., 1..;2]), target.slice(ndarray::s![.., 1..;2]));
    let sliced_reference = p.iter().zip(t.iter()).map(|(p, t)| (p - t) * (p - t)).sum::<f64>() / p.len() as f64;
    assert!((loss::mse(&p, &t) - sliced_reference).abs() < 1e-14);
}

#[test]
#[should_panic(expected = "mse: prediction shape [2, 3] differs from target shape [3, 2]")]
fn mse_names_both_shapes() {
    let _ = loss::mse(&Array2::<f64>::zeros((2, 3)), &Array2::<f64>::zeros((3, 2)));
}

#[test]
#[should_panic(expected = "mse: prediction shape [4] differs from target shape [4, 1]")]
fn mse_names_both_shapes_of_different_rank() {
    let _ = loss::mse(
        &ArrayD::<f64>::zeros(IxDyn(&[4])),
        &ArrayD::<f64>::zeros(IxDyn(&[4, 1])),
    );
}

#[test]
#[should_panic(expected = "mse_grad_pred: prediction shape [3] differs from target shape [2]")]
fn mse_grad_names_both_shapes() {
    let _ = loss::mse_grad_pred(1.0, &Array1::<f64>::zeros(3), &Array1::<f64>::zeros(2));
}

#[test]
#[should_panic(expected = "mse: the prediction of shape [0, 2] is empty")]
fn mse_of_empty_arrays_names_the_shape() {
    let _ = loss::mse(&Array2::<f64>::zeros((0, 2)), &Array2::<f64>::zeros((0, 2)));
}

// ---------------------------------------------------------------------------
// loss.rs: cross_entropy
// ---------------------------------------------------------------------------

/// Cross-entropy by its definition, `-mean ln softmax(row)[label]`.
fn naive_cross_entropy(logits: &Array2<f64>, labels: &[usize]) -> f64 {
    let p = naive_softmax(logits, Axis(1));
    -labels
        .iter()
        .enumerate()
        .map(|(row, &label)| p[[row, label]].ln())
        .sum::<f64>()
        / labels.len() as f64
}

#[test]
fn cross_entropy_matches_the_definition() {
    let logits = uniform(&mut rng(90), (5, 4), -3.0, 3.0);
    let labels = [0, 3, 1, 1, 2];
    let value = loss::cross_entropy(&logits, &labels);
    assert!((value - naive_cross_entropy(&logits, &labels)).abs() < 1e-13);
    // Uniform logits give ln(classes).
    assert!((loss::cross_entropy(&Array2::<f64>::zeros((2, 4)), &[0, 3]) - 4.0f64.ln()).abs() < 1e-15);
}

#[test]
fn cross_entropy_gradient_matches_finite_differences() {
    let cases: [((usize, usize), &[usize]); 4] = [
        ((1, 1), &[0]),
        ((1, 5), &[4]),
        ((4, 3), &[0, 2, 1, 2]),
        ((6, 10), &[9, 0, 3, 3, 7, 1]),
    ];
    for (index, (shape, labels)) in cases.into_iter().enumerate() {
        let mut rng = rng(100 + index as u64);
        let logits = uniform(&mut rng, shape, -3.0, 3.0);
        let g = rng.gen_range(0.5..1.5);
        let numeric = numeric_gradient(|z| g * loss::cross_entropy(z, labels), &logits, default_step::<f64>());
        let analytic = loss::cross_entropy_grad(g, &logits, labels);
        let err = max_relative_error(&analytic, &numeric);
        assert!(err <= TOLERANCE, "cross_entropy {shape:?}: {err}");
        // Each row is g·(softmax - onehot)/batch, which sums to zero.
        assert!(analytic.sum_axis(Axis(1)).iter().all(|s| s.abs() < 1e-15));
    }
}

#[test]
fn cross_entropy_of_huge_logits_is_finite_and_correct() {
    let logits: Array2<f64> = array![[1e4, -1e4, 1e4 - 1.0], [-1e30, 1e30, 0.0]];
    let value = loss::cross_entropy(&logits, &[2, 1]);
    assert!(value.is_finite(), "{value}");
    // Row 0: ln(1 + e⁻¹) + 1; row 1: the label holds all the mass, so 0.
    let expected = ((1.0 + (-1.0f64).exp()).ln() + 1.0) / 2.0;
    assert!((value - expected).abs() < 1e-12, "{value} vs {expected}");
    let grad = loss::cross_entropy_grad(1.0, &logits, &[2, 1]);
    assert!(grad.iter().all(|v| v.is_finite()), "{grad}");
    let value32 = loss::cross_entropy(&array![[1000.0f32, -1000.0, 999.0]], &[1]);
    let expected32 = 2000.0 + (1.0 + (-1.0f64).exp()).ln();
    assert!(
        value32.is_finite() && (f64::from(value32) - expected32).abs() < 1e-3,
        "{value32}"
    );
}

#[test]
#[should_panic(expected = "cross_entropy: logits of shape [3, 4] have batch size 3 but 2 labels were given")]
fn cross_entropy_names_batch_size_and_label_count() {
    let _ = loss::cross_entropy(&Array2::<f64>::zeros((3, 4)), &[0, 1]);
}

#[test]
#[should_panic(expected = "cross_entropy: label 4 of row 1 is out of range for 4 classes")]
fn cross_entropy_names_an_out_of_range_label() {
    let _ = loss::cross_entropy(&Array2::<f64>::zeros((2, 4)), &[3, 4]);
}

#[test]
#[should_panic(expected = "cross_entropy_grad: label 7 of row 0 is out of range for 3 classes")]
fn cross_entropy_grad_names_an_out_of_range_label() {
    let _ = loss::cross_entropy_grad(1.0, &Array2::<f64>::zeros((1, 3)), &[7]);
}

#[test]
#[should_panic(expected = "cross_entropy_grad: logits of shape [2, 3] have batch size 2 but 3 labels were given")]
fn cross_entropy_grad_names_batch_size_and_label_count() {
    let _ = loss::cross_entropy_grad(1.0, &Array2::<f64>::zeros((2, 3)), &[0, 1, 2]);
}

#[test]
fn the_gradient_check_would_catch_a_wrong_gradient() {
    // Guards the tests above against a checker that accepts anything.
    let x = uniform(&mut rng(110), (3, 4), -2.0, 2.0);
    let err = check_vjp(
        111,
        &x,
        |x| sm::softmax(x, Axis(1)),
        |g, y| sm::log_softmax_grad(g, y, Axis(1)),
    );
    assert!(err > 1e-2, "a wrong gradient passed with relative error {err}");
}

// ---------------------------------------------------------------------------
// ops.rs
// ---------------------------------------------------------------------------

#[test]
fn ops_forward_to_the_kernels() {
    let z = uniform(&mut rng(120), (3, 4), -3.0, 3.0);
    assert_eq!(ops::relu(&z), unary::relu(&z));
    assert_eq!(ops::sigmoid(&z), unary::sigmoid(&z));
    assert_eq!(ops::tanh(&z), z.mapv(f64::tanh));
    assert_eq!(ops::square(&z), &z * &z);
    assert_eq!(ops::mean(&z), reduce::mean(&z));
    assert_eq!(ops::softmax(&z, Axis(1)), sm::softmax(&z, Axis(1)));
    assert_eq!(ops::log_softmax(&z, Axis(0)), sm::log_softmax(&z, Axis(0)));
    let target = uniform(&mut rng(121), (3, 4), -3.0, 3.0);
    assert_eq!(ops::mse(&z, &target), loss::mse(&z, &target));
    assert_eq!(ops::cross_entropy(&z, &[0, 1, 3]), loss::cross_entropy(&z, &[0, 1, 3]));
}

#[test]
fn array_ext_methods_match_the_free_functions_on_arrays_and_views() {
    let z: Array3<f64> = uniform(&mut rng(130), (2, 3, 2), -3.0, 3.0);
    assert_eq!(z.tanh(), ops::tanh(&z));
    assert_eq!(z.relu(), ops::relu(&z));
    assert_eq!(z.sigmoid(), ops::sigmoid(&z));
    assert_eq!(z.square(), ops::square(&z));
    let view = z.index_axis(Axis(0), 1);
    assert_eq!(view.relu(), ops::relu(&view.to_owned()));
    assert_eq!(view.t().square(), ops::square(&view.t().to_owned()));
    let single: Array1<f32> = array![-1.0f32, 0.5];
    assert_eq!(single.relu(), array![0.0f32, 0.5]);
}

#[test]
fn ops_compose_into_a_small_model() {
    let x: Array2<f64> = array![[1.0, -2.0], [0.5, 3.0]];
    let w: Array2<f64> = array![[0.5, -1.0], [2.0, 0.25]];
    let hidden = x.dot(&w).tanh();
    let logits = ops::relu(&hidden);
    let loss = ops::cross_entropy(&logits, &[1, 0]);
    assert!(loss.is_finite() && loss > 0.0);
    let probabilities = ops::softmax(&logits, Axis(1));
    assert!((probabilities.sum() - 2.0).abs() < 1e-12);
}

#[test]
fn image_ops_forward_to_the_kernels() {
    use autodiff_runtime::kernels::{batch_norm, conv, pool};
    use ndarray::Array4;
    let x: Array4<f64> = uniform(&mut rng(140), (2, 3, 6, 6), -1.0, 1.0);
    let w: Array4<f64> = uniform(&mut rng(141), (4, 3, 3, 3), -1.0, 1.0);
    let bias = uniform(&mut rng(142), 4, -1.0, 1.0);
    let y = ops::conv2d(&x, &w, Some(&bias), 1, 1);
    assert_eq!(y.shape(), &[2, 4, 6, 6]);
    assert_eq!(y, conv::conv2d(&x, &w, Some(&bias), 1, 1));
    let no_bias = ops::conv2d(&x, &w, None::<&Array1<f64>>, 2, 0);
    assert_eq!(no_bias.shape(), &[2, 4, 2, 2]);
    let gamma = uniform(&mut rng(143), 3, 0.5, 1.5);
    let beta = uniform(&mut rng(144), 3, -0.5, 0.5);
    assert_eq!(
        ops::batch_norm(&x, &gamma, &beta, 1e-5),
        batch_norm::batch_norm(&x, &gamma, &beta, 1e-5)
    );
    let pooled = ops::max_pool2d(&x, 2, 2);
    assert_eq!(pooled.shape(), &[2, 3, 3, 3]);
    assert_eq!(pooled, pool::max_pool2d(&x, 2, 2));
}
