//! Constructs that once made the macro panic or report at the wrong place, as programs
//! that must compile: `let`-bound constants combined, raw identifiers, names starting
//! with `_` and a digit, shape queries and integer literals as floats, an empty
//! statement, generic parameters other than the float type.
use autodiff::prelude::*;

#[differentiate]
fn constants(x: &Array1<f64>) -> f64 {
    let c = 2.0;
    let d = c * 3.0;
    x.sum() + 3.0 * c + d
}

#[differentiate]
fn model_loss(x: &Array1<f64>, r#dyn: f64) -> f64 {
    let r#type = r#dyn + r#dyn;
    1.5 * r#type + x.sum()
}

#[differentiate]
fn _2d_loss(x: &Array2<f64>) -> f64 {
    ;
    x.sum()
}

#[differentiate(name = _1)]
fn shapes(x: &Array2<f64>, w: &Array2<f64>) -> f64 {
    let n = x.nrows();
    let scale = 1.0 / (n * x.ncols()) as f64;
    x.dot(w).sum() * scale + x.shape()[1] as f64 + w.len() as f64
}

#[differentiate]
fn integer_literals(x: &Array1<f64>, s: f64) -> f64 {
    2 * s + (x / 2).sum() + x.mapv(|v| 3 * v - 1).sum()
}

#[differentiate]
fn generic_integer_literals<F: Float>(x: &Array1<F>, s: F) -> F {
    2 * s + (x * 3).sum()
}


#[differentiate]
fn unused_type_parameter<T: Clone>(x: &Array1<f64>) -> f64 {
    x.sum()
}

#[differentiate]
fn const_parameter<const N: usize>(x: &Array1<f64>) -> f64 {
    x.sum() * N as f64
}

fn main() {
    let x = Array1::<f64>::ones(3);
    let m = Array2::<f64>::ones((2, 3));
    let w = Array2::<f64>::ones((3, 2));
    let _ = constants_grad(&x);
    let _ = model_loss_grad(&x, 1.0);
    let _ = _2d_loss_grad(&m);
    let _ = _1_grad(&m, &w);
    let _ = integer_literals_grad(&x, 1.0);
    let _ = generic_integer_literals_grad(&x.mapv(|v| v as f32), 1.0f32);
    let _ = unused_type_parameter_grad::<u8>(&x);
    let _ = const_parameter_grad::<4>(&x);
    let _ = autodiff::check!(const_parameter::<2>, &x);
    let _: _2dLossContext = _2d_loss_forward(&m).1;
}
