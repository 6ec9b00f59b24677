//! `check!` itself: it passes on correct gradients of models with kinks (ReLU, `abs`,
//! `max`) in `f32` and `f64`, it fails on wrong gradients (a kink elsewhere cannot hide
//! one), it takes `rtol`/`atol`, and the generated `_check` compiles and chooses its
//! reference (`f64` finite differences whenever the function can run in `f64`) for every
//! kind of signature.

mod common;

use autodiff::ndarray::{Array, Dimension};
use autodiff::prelude::*;
use autodiff::runtime::gradcheck::{probe_gradient, CheckEntry, CheckReport, Comparison, FdEstimates, Reference};
use common::{random, rng};

fn to_f32<D: Dimension>(a: &Array<f64, D>) -> Array<f32, D> {
    a.mapv(|v| v as f32)
}

// ---- models ----------------------------------------------------------------------

/// The model: a two-layer ReLU classifier with softmax cross-entropy.
#[differentiate]
fn relu_mlp<F: Float>(
    x: &Array2<F>,
    w1: &Array2<F>,
    b1: &Array1<F>,
    w2: &Array2<F>,
    b2: &Array1<F>,
    labels: &[usize],
) -> F {
    let h = relu(&(x.dot(w1) + b1));
    cross_entropy(&(h.dot(w2) + b2), labels)
}

#[differentiate]
fn tanh_mlp<F: Float>(x: &Array2<F>, w1: &Array2<F>, b1: &Array1<F>, w2: &Array2<F>, b2: &Array1<F>) -> F {
    let h = (x.dot(w1) + b1).tanh();
    let y = h.dot(w2) + b2;
    (&y * &y).mean().unwrap()
}

/// Kinks from `abs` and from `max` in a `mapv` closure.
#[differentiate]
fn abs_max<F: Float>(x: &Array2<F>, w: &Array2<F>) -> F {
    let z = x.dot(w);
    let a = z.abs();
    let r = z.mapv(|v| v.max(F::of(0.0)));
    (&a * &r).sum() + a.mean().unwrap()
}

/// Fixed to `f32`: the reference can only be `f32` finite differences.
#[differentiate]
fn tanh_mlp_f32(x: &Array2<f32>, w1: &Array2<f32>, b1: &Array1<f32>, w2: &Array2<f32>) -> f32 {
    let h = (x.dot(w1) + b1).tanh();
    let y = h.dot(w2);
    (&y * &y).mean().unwrap()
}

#[differentiate]
fn relu_mlp_f32(x: &Array2<f32>, w1: &Array2<f32>, w2: &Array2<f32>, labels: &[usize]) -> f32 {
    let h = relu(&x.dot(w1));
    cross_entropy(&h.dot(w2), labels)
}

/// `|v|` summed: at `v = 0` (and within a step of it) only a kink can explain the
/// difference between the gradient (`signum`) and finite differences.
#[differentiate]
fn abs_sum<F: Float>(x: &Array1<F>) -> F {
    x.abs().sum()
}

/// Its gradient in `F` is `ln(1/ε_F)`, which differs between `f32` and `f64`: checked at
/// `f32` against `f64` finite differences, the gradient is wrong by a factor 2.3, a real
/// gradient error as seen by the check (the macro has no custom rules to inject one).
#[differentiate]
fn precision_dependent<F: Float>(x: &Array1<F>) -> F {
    (x * F::epsilon().recip().ln()).sum()
}

// ---- passes on correct gradients with kinks --------------------------------------

struct Mlp {
    x: Array2<f64>,
    w1: Array2<f64>,
    b1: Array1<f64>,
    w2: Array2<f64>,
    b2: Array1<f64>,
    labels: Vec<usize>,
}

fn mlp_data(seed: u64) -> Mlp {
    let mut r = rng(seed);
    Mlp {
        x: random(&mut r, (16, 8)),
        w1: random(&mut r, (8, 16)),
        b1: random(&mut r, 16),
        w2: random(&mut r, (16, 4)),
        b2: random(&mut r, 4),
        labels: (0..16).map(|i| (i * 7) % 4).collect(),
    }
}

#[test]
fn relu_mlp_passes_in_f64() {
    for seed in 0..5 {
        let m = mlp_data(seed);
        let report = autodiff::check!(relu_mlp, &m.x, &m.w1, &m.b1, &m.w2, &m.b2, &m.labels);
        assert_eq!(report.reference, Reference::F64FiniteDifferences);
        assert_eq!(report.float, "f64");
    }
}

#[test]
fn relu_mlp_passes_in_f32_against_f64_finite_differences() {
    for seed in 0..5 {
        let m = mlp_data(seed);
        let (x, w1, b1, w2, b2) = (to_f32(&m.x), to_f32(&m.w1), to_f32(&m.b1), to_f32(&m.w2), to_f32(&m.b2));
        let report = autodiff::check!(relu_mlp, &x, &w1, &b1, &w2, &b2, &m.labels);
        assert_eq!(report.float, "f32");
        assert_eq!(report.reference, Reference::F64FiniteDifferences);
        assert!(report
            .to_string()
            .contains("f32 gradients against f64 finite differences: passed"));
    }
}

#[test]
fn tanh_mlp_passes_in_f32() {
    let m = mlp_data(10);
    let (x, w1, b1, w2, b2) = (to_f32(&m.x), to_f32(&m.w1), to_f32(&m.b1), to_f32(&m.w2), to_f32(&m.b2));
    let report = autodiff::check!(tanh_mlp, &x, &w1, &b1, &w2, &b2);
    assert_eq!(report.reference, Reference::F64FiniteDifferences);
    assert_eq!(report.kinks(), 0, "a smooth model has no kinks:\n{report}");
    autodiff::check!(tanh_mlp, &m.x, &m.w1, &m.b1, &m.w2, &m.b2);
}

#[test]
fn abs_and_max_model_passes_in_both_types() {
    for seed in 20..25 {
        let mut r = rng(seed);
        let (x, w) = (random(&mut r, (6, 5)), random(&mut r, (5, 4)));
        autodiff::check!(abs_max, &x, &w);
        autodiff::check!(abs_max, &to_f32(&x), &to_f32(&w));
    }
}

#[test]
fn fixed_f32_function_is_checked_against_f32_finite_differences() {
    let m = mlp_data(30);
    let (x, w1, b1) = (to_f32(&m.x), to_f32(&m.w1), to_f32(&m.b1));
    let w2 = to_f32(&m.w2.column(0).to_owned().insert_axis(autodiff::ndarray::Axis(1)));
    let report = autodiff::check!(tanh_mlp_f32, &x, &w1, &b1, &w2);
    assert_eq!(report.float, "f32");
    assert_eq!(report.reference, Reference::F32FiniteDifferences);
    assert!(report
        .to_string()
        .contains("f32 gradients against f32 finite differences: passed"));
    let report = autodiff::check!(relu_mlp_f32, &x, &w1, &to_f32(&m.w2), &m.labels);
    assert_eq!(report.reference, Reference::F32FiniteDifferences);
}

#[test]
fn points_at_and_near_a_kink_are_reported_not_failed() {
    // Within the 1e-6 step of f64 finite differences of the kink at 0, the central
    // differences are not ±1; exactly at it they are 0, the gradient the kernels choose.
    let x = array![3e-7, -4e-7, 0.5, 0.0, -0.25];
    let report = autodiff::check!(abs_sum, &x);
    assert_eq!(report.kinks(), 2, "{report}");
    assert!(report.to_string().contains("2 of 5 near a kink"), "{report}");
    let verdict = &report.verdicts()[0];
    assert_eq!(verdict.static_vs_fd.kinks, vec![0, 1]);
    assert!(verdict.static_vs_fd.failures.is_empty());
    // Those elements, judged without the kink evidence, fail.
    let entry = &report.entries[0];
    let plain: Vec<_> = entry.numeric.iter().map(|e| FdEstimates::exact(e.central)).collect();
    let strict = Comparison::against_fd(&entry.static_grad, &plain, report.tolerance, report.tolerance);
    assert_eq!(strict.failures, vec![0, 1]);
}

// ---- fails on wrong gradients -----------------------------------------------------

#[test]
#[should_panic(expected = "gradient check failed")]
fn a_gradient_wrong_at_f32_fails_against_f64_finite_differences() {
    autodiff::check!(precision_dependent, &array![0.5f32, -1.0, 2.0]);
}

#[test]
fn the_same_function_passes_where_its_gradient_is_right() {
    // In f64 the gradient and the reference agree: the failure above is the f32 gradient's.
    autodiff::check!(precision_dependent, &array![0.5f64, -1.0, 2.0]);
}

/// A report for `relu_mlp` whose static gradient of `w1` is perturbed at `at` by `delta`
/// (the tape's is left right), built through the public gradcheck API.
fn report_with_wrong_w1(m: &Mlp, at: (usize, usize), delta: f64) -> CheckReport {
    let (_, (_, mut dw1, ..)) = relu_mlp_grad(&m.x, &m.w1, &m.b1, &m.w2, &m.b2, &m.labels);
    let (_, (_, tape_dw1, ..)) = relu_mlp_tape_grad(&m.x, &m.w1, &m.b1, &m.w2, &m.b2, &m.labels);
    dw1[at] += delta;
    let reference = Reference::F64FiniteDifferences;
    let probe = probe_gradient(
        |w1| relu_mlp(&m.x, w1, &m.b1, &m.w2, &m.b2, &m.labels),
        &m.w1,
        reference.step(),
    );
    let entry = CheckEntry::from_probe("w1", &dw1, &tape_dw1, &probe);
    CheckReport::new("relu_mlp", "f64", reference, vec![entry])
}

#[test]
fn a_perturbed_gradient_fails() {
    let m = mlp_data(40);
    assert!(report_with_wrong_w1(&m, (2, 3), 0.0).passed());
    for delta in [1e-2, 1e-4, -1e-5] {
        let report = report_with_wrong_w1(&m, (2, 3), delta);
        assert!(!report.passed(), "an error of {delta:e} passed:\n{report}");
        assert_eq!(report.failures(), 1, "{report}");
        let verdict = &report.verdicts()[0];
        assert_eq!(verdict.static_vs_fd.failures, vec![2 * 16 + 3]);
        assert_eq!(verdict.static_vs_tape.failures, vec![2 * 16 + 3]);
        assert!(verdict.tape_vs_fd.passed());
        let text = report.to_string();
        assert!(text.contains("FAILED") && text.contains("at [2, 3]"), "{text}");
    }
}

#[test]
#[should_panic(expected = "gradient check failed")]
fn a_perturbed_gradient_panics_when_asserted() {
    report_with_wrong_w1(&mlp_data(41), (0, 0), 1e-3).assert_passed();
}

#[test]
fn a_kink_does_not_hide_a_wrong_gradient_elsewhere() {
    // Put a ReLU kink inside the stencil of w1[0, 0]: make the pre-activation of hidden
    // unit 0 of sample 0 zero by moving b1[0].
    let mut m = mlp_data(42);
    let z = m.x.row(0).dot(&m.w1.column(0)) + m.b1[0];
    m.b1[0] -= z;
    let kinked = report_with_wrong_w1(&m, (1, 1), 0.0);
    assert!(kinked.passed(), "{kinked}");
    assert!(kinked.kinks() >= 1, "the kink should show:\n{kinked}");
    let wrong = report_with_wrong_w1(&m, (1, 1), 1e-3);
    assert!(!wrong.passed(), "{wrong}");
    assert_eq!(wrong.verdicts()[0].static_vs_fd.failures, vec![16 + 1]);
    assert!(wrong.kinks() >= 1);
}

#[test]
fn a_wrong_gradient_at_a_kink_outside_the_slopes_fails() {
    // At the kink of |v| a gradient outside [-1, 1] is wrong whatever side it takes.
    let x = array![0.0, 0.5];
    let (_, (g,)) = abs_sum_grad(&x);
    let mut wrong = g.clone();
    wrong[0] = 3.0;
    let probe = probe_gradient(abs_sum, &x, Reference::F64FiniteDifferences.step());
    let entry = CheckEntry::from_probe("x", &wrong, &wrong, &probe);
    let report = CheckReport::new("abs_sum", "f64", Reference::F64FiniteDifferences, vec![entry]);
    assert!(!report.passed(), "{report}");
    assert_eq!(report.kinks(), 0);
}

// ---- tolerances -------------------------------------------------------------------

#[test]
fn tolerances_can_be_set() {
    let m = mlp_data(50);
    let (x, w1, b1, w2, b2) = (to_f32(&m.x), to_f32(&m.w1), to_f32(&m.b1), to_f32(&m.w2), to_f32(&m.b2));
    let report = autodiff::check!(relu_mlp, &x, &w1, &b1, &w2, &b2, &m.labels; rtol = 1e-3);
    assert_eq!((report.tolerance.rtol, report.tolerance.atol), (1e-3, 1e-5));
    let report = autodiff::check!(relu_mlp, &x, &w1, &b1, &w2, &b2, &m.labels; atol = 1e-4);
    assert_eq!((report.tolerance.rtol, report.tolerance.atol), (1e-4, 1e-4));
    let report = autodiff::check!(tanh_mlp, &m.x, &m.w1, &m.b1, &m.w2, &m.b2; rtol = 1e-5, atol = 1e-7,);
    assert_eq!((report.tolerance.rtol, report.tolerance.atol), (1e-5, 1e-7));
    // The defaults, for the record.
    let report = tanh_mlp_check(&m.x, &m.w1, &m.b1, &m.w2, &m.b2);
    assert_eq!((report.tolerance.rtol, report.tolerance.atol), (1e-6, 1e-9));
    assert_eq!(
        (report.engine_tolerance.rtol, report.engine_tolerance.atol),
        (1e-10, 1e-12)
    );
}

#[test]
#[should_panic(expected = "gradient check failed")]
fn a_zero_tolerance_fails_an_f32_gradient() {
    let m = mlp_data(51);
    let (x, w1, b1, w2, b2) = (to_f32(&m.x), to_f32(&m.w1), to_f32(&m.b1), to_f32(&m.w2), to_f32(&m.b2));
    let report = tanh_mlp_check(&x, &w1, &b1, &w2, &b2).with_rtol(0.0).with_atol(0.0);
    // The f32 rounding is not mistaken for kinks: the estimates agree to f64 accuracy.
    assert_eq!(report.kinks(), 0, "{report}");
    autodiff::check!(tanh_mlp, &x, &w1, &b1, &w2, &b2; atol = 0.0, rtol = 0.0);
}

#[test]
fn legacy_api_still_works() {
    let m = mlp_data(52);
    let report = autodiff::check!(tanh_mlp, &m.x, &m.w1, &m.b1, &m.w2, &m.b2);
    report.assert_within(report.default_tolerance());
    assert!(report.worst() <= 1e-6);
    assert!(report.entries.iter().all(|e| e.worst() <= 1e-6));
}

// ---- every kind of signature: the generated `_check` compiles and picks its reference --

#[differentiate]
fn with_lifetimes_and_where<'a, F>(x: &'a Array2<F>, s: F, labels: &'a [usize]) -> F
where
    F: Float + Copy,
{
    let y = x.mapv(|v| v.max(F::of(0.1))) * s;
    y.sum() / F::of_usize(labels.len())
}

#[differentiate]
fn with_const_generic<F: Float, const N: usize>(x: &Array1<F>, pad: [usize; N]) -> F {
    x.mapv(|v| v * v).sum() * F::of_usize(N + pad[0])
}

/// Another type parameter, in a constant.
#[differentiate]
fn with_type_param<F: Float, T: Copy + Into<f64>>(x: &Array1<F>, tag: T) -> F {
    x.tanh().sum() * F::of(tag.into())
}

#[differentiate]
fn owned_and_dynamic<F: Float>(x: ArrayD<F>, y: &ArrayD<F>, s: F, k: usize) -> F {
    let z = &x * y + s;
    z.relu().sum() * F::of_usize(k)
}

/// A constant mentions `F`: the function cannot be called at `f64` with converted values,
/// so the reference is computed in `F`.
#[differentiate]
fn constant_mentions_float<F: Float>(x: &Array1<F>, weights: &[F]) -> F {
    x.exp().sum() * F::of_usize(weights.len())
}

/// `F` has a bound `f64` may not satisfy: the reference is computed in `F`.
trait OnlyF32 {}
impl OnlyF32 for f32 {}

#[differentiate]
fn unusual_bound<F: Float + OnlyF32>(x: &Array1<F>) -> F {
    x.tanh().sum()
}

#[differentiate(wrt(w), name = prefixed)]
fn named<F: Float>(x: &Array1<F>, w: &Array1<F>) -> F {
    (x * w).sin().sum()
}

#[test]
fn every_signature_compiles_and_checks() {
    let mut r = rng(60);
    let x2 = random(&mut r, (3, 4));
    let x1 = random(&mut r, 5);
    let labels = [0usize, 1, 2];
    let report = autodiff::check!(with_lifetimes_and_where, &x2, 0.7, &labels);
    assert_eq!(report.reference, Reference::F64FiniteDifferences);
    autodiff::check!(with_lifetimes_and_where, &to_f32(&x2), 0.7f32, &labels);
    autodiff::check!(with_const_generic, &x1, [2, 0, 1]);
    autodiff::check!(with_const_generic::<f32, 3>, &to_f32(&x1), [2, 0, 1]);
    autodiff::check!(with_type_param, &to_f32(&x1), 2u8);
    autodiff::check!(with_type_param::<f64, f32>, &x1, 1.5f32);
    let (xd, yd) = (random(&mut r, (2, 3)).into_dyn(), random(&mut r, (2, 3)).into_dyn());
    autodiff::check!(owned_and_dynamic, xd.clone(), &yd, 0.3, 2);
    let report = autodiff::check!(owned_and_dynamic, to_f32(&xd), &to_f32(&yd), 0.3f32, 2);
    assert_eq!(report.reference, Reference::F64FiniteDifferences);
    let report = autodiff::check!(constant_mentions_float, &to_f32(&x1), &[1.0f32, 2.0]);
    assert_eq!(report.reference, Reference::F32FiniteDifferences);
    let report = autodiff::check!(constant_mentions_float, &x1, &[1.0, 2.0]);
    assert_eq!(report.reference, Reference::F64FiniteDifferences);
    let report = autodiff::check!(unusual_bound, &to_f32(&x1));
    assert_eq!(report.reference, Reference::F32FiniteDifferences);
    let report = autodiff::check!(prefixed, &to_f32(&x1), &to_f32(&x1));
    assert_eq!(report.function, "prefixed");
    assert_eq!(report.entries.len(), 1);
    assert_eq!(report.reference, Reference::F64FiniteDifferences);
}
