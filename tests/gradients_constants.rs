//! Constants in differentiated functions, each function checked three ways (static code,
//! tape, central finite differences in f64) in its own test: `let`-bound constants and
//! their combinations, shape queries of parameters, integer literals taken as floats,
//! and names the macro derives others from (raw identifiers, a leading `_` and digit).

mod common;

use autodiff::prelude::*;
use common::{random, rng};

#[differentiate]
fn let_bound_constants(x: &Array1<f64>) -> f64 {
    let c = 2.0;
    let d = c * 3.0 - 1.0;
    let e = -d;
    (x * c).sum() + 3.0 * c + (x * e).mapv(|v| v * d).sum()
}

#[test]
fn let_bound_constants_combine() {
    let report = autodiff::check!(let_bound_constants, &random(&mut rng(10), 5));
    assert_eq!(report.entries.len(), 1);
}

#[differentiate]
fn shadowed_constant(x: &Array1<f64>) -> f64 {
    let c = 2.0;
    let c = x * c;
    let c = c.sum();
    c * c
}

#[test]
fn a_constant_shadowed_by_a_value() {
    autodiff::check!(shadowed_constant, &random(&mut rng(11), 4));
}

#[differentiate]
fn shape_queries(x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>) -> f64 {
    let n = x.nrows();
    let mean_scale = 1.0 / n as f64;
    let h = (x.dot(w) + b).tanh();
    h.sum() * mean_scale + (b * (x.ncols() + x.shape()[0]) as f64).sum() / b.len() as f64
}

#[test]
fn shape_queries_of_parameters_are_constants() {
    let mut r = rng(12);
    let (x, w, b) = (random(&mut r, (4, 3)), random(&mut r, (3, 2)), random(&mut r, 2));
    autodiff::check!(shape_queries, &x, &w, &b);
    // The value is what the user's function computes: the shapes were read, not guessed.
    let (value, _) = shape_queries_grad(&x, &w, &b);
    assert_eq!(value, shape_queries(&x, &w, &b));
}

#[differentiate(wrt(w))]
fn mean_by_length(x: &Array1<f64>, w: &Array1<f64>) -> f64 {
    let n = x.len() as f64;
    (x * w).sum() / n
}

#[test]
fn length_of_a_parameter_not_in_wrt() {
    let mut r = rng(13);
    let (x, w) = (random(&mut r, 6), random(&mut r, 6));
    autodiff::check!(mean_by_length, &x, &w);
    let (_, (dw,)) = mean_by_length_grad(&x, &w);
    assert!(dw.iter().zip(&x).all(|(d, x)| (d - x / 6.0).abs() < 1e-15));
}

#[differentiate]
fn integer_literals(x: &Array1<f64>, s: f64) -> f64 {
    2 * s + (x / 2).sum() + x.mapv(|v| 3 * v * v - 1).sum() - 4 * s * s
}

#[test]
fn integer_literals_beside_floats_are_floats() {
    let x = random(&mut rng(14), 5);
    autodiff::check!(integer_literals, &x, 0.7);
    let (_, (_, ds)) = integer_literals_grad(&x, 0.7);
    assert!((ds - (2.0 - 8.0 * 0.7)).abs() < 1e-12);
}

#[differentiate]
fn generic_integer_literals<F: Float>(x: &Array1<F>, s: F) -> F {
    2 * s + (x * 3).sum() / 4
}

#[test]
fn integer_literals_in_a_generic_function() {
    autodiff::check!(generic_integer_literals, &random(&mut rng(15), 3), 0.5);
}

#[differentiate]
fn raw_identifiers(x: &Array1<f64>, r#dyn: f64) -> f64 {
    let r#type = x * r#dyn;
    r#type.sum() * r#dyn
}

#[test]
fn raw_identifier_parameters() {
    autodiff::check!(raw_identifiers, &random(&mut rng(16), 4), 1.3);
}

#[differentiate]
fn _2d_loss(x: &Array2<f64>) -> f64 {
    x.tanh().sum()
}

#[differentiate(name = _1)]
fn named_with_digit(x: &Array1<f64>) -> f64 {
    x.exp().sum()
}

#[test]
fn names_starting_with_underscore_and_digit() {
    autodiff::check!(_2d_loss, &random(&mut rng(17), (2, 3)));
    autodiff::check!(_1, &random(&mut rng(18), 3));
    assert_eq!(_1_GRAD_PLAN.function, "_1");
}

#[differentiate]
fn arrays_built_in_the_body(x: &Array2<f64>, b: &Array1<f64>) -> f64 {
    let ones: Array1<f64> = Array1::ones(x.ncols());
    let bias = Array2::from_elem((x.nrows(), x.ncols()), 0.5);
    let scaled = Array1::<f64>::ones(b.len()) * 3.0;
    let zeros: Array2<f64> = Array::zeros((x.nrows(), x.ncols()));
    let h = (x + &bias + &zeros).tanh() * &ones;
    (h * &scaled * b).sum()
}

#[test]
fn arrays_built_from_constants_are_constants() {
    let mut r = rng(19);
    let (x, b) = (random(&mut r, (3, 4)), random(&mut r, 4));
    autodiff::check!(arrays_built_in_the_body, &x, &b);
    assert_eq!(ARRAYS_BUILT_IN_THE_BODY_GRAD_PLAN.wrt, &["x", "b"]);
}

#[differentiate]
fn annotated_array(x: &Array2<f64>, shape: (usize, usize)) -> f64 {
    let offset: Array2<f64> = Array::from_elem(shape, 0.25);
    (x + &offset).mapv(|v| v * v).sum()
}

#[test]
fn an_annotation_gives_an_array_its_rank() {
    autodiff::check!(annotated_array, &random(&mut rng(23), (2, 3)), (2, 3));
}

#[differentiate]
fn dims(x: &Array2<f64>, v: &Array1<f64>) -> f64 {
    let (rows, cols) = x.dim();
    let (_, again) = x.dim();
    let length = v.dim();
    let scale = (rows * cols + again) as f64 / length as f64;
    x.sum() * scale + v.mapv(|e| e * rows as f64).sum()
}

#[test]
fn dim_of_a_parameter_destructures_into_constants() {
    let mut r = rng(27);
    let (x, v) = (random(&mut r, (3, 4)), random(&mut r, 5));
    autodiff::check!(dims, &x, &v);
    let (value, (dx, _)) = dims_grad(&x, &v);
    assert_eq!(value, dims(&x, &v));
    assert!(dx.iter().all(|d| (d - 16.0 / 5.0).abs() < 1e-12));
}

#[differentiate]
fn typed_constant(x: &Array1<f64>) -> f64 {
    let k: f64 = 0.5;
    let t = k.recip();
    (x * t).sum()
}

#[test]
fn a_typed_float_constant_keeps_its_type() {
    autodiff::check!(typed_constant, &autodiff::ndarray::array![0.5, -1.0]);
}

/// Float literals beside values of a generic float type: `0.0005 * ..`, `v * 0.5` in a
/// closure, `x / 2.5`, which plain Rust rejects for `F` and the macro writes as `F::of(..)`.
#[differentiate]
fn generic_float_literals<F: Float>(x: &Array1<F>, w: &Array1<F>) -> F {
    let z = x.mapv(|v| v * 0.5 + 0.25) / 2.5;
    (&z * w).sum() + (w * w).sum() * 0.0005
}

#[test]
fn float_literals_beside_a_generic_float_type() {
    let (x, w) = (random(&mut rng(70), 5), random(&mut rng(71), 5));
    autodiff::check!(generic_float_literals, &x, &w);
    autodiff::check!(generic_float_literals, &x.mapv(|v| v as f32), &w.mapv(|v| v as f32));
}
