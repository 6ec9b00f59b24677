//! `let mut` locals rebound by assignment and compound assignment in straight-line code,
//! each function checked three ways in its own test. Every assignment binds a new value,
//! as `let` shadowing would.

mod common;

use autodiff::prelude::*;
use common::{random, rng};

#[differentiate]
fn reassigned(x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>) -> f64 {
    let mut h = x.dot(w);
    h = (h + b).tanh();
    h = h.mapv(|v| v * v);
    h.sum()
}

#[test]
fn assignment_rebinds_a_local() {
    let mut r = rng(20);
    autodiff::check!(
        reassigned,
        &random(&mut r, (4, 3)),
        &random(&mut r, (3, 2)),
        &random(&mut r, 2)
    );
}

#[differentiate]
fn compound(x: &Array2<f64>, b: &Array1<f64>, s: f64) -> f64 {
    let mut acc = x.exp();
    acc += b;
    acc -= &x.sin();
    acc *= s;
    acc /= 2;
    let mut total = acc.sum();
    total *= total;
    total
}

#[test]
fn compound_assignment_with_broadcasting_and_floats() {
    let mut r = rng(21);
    autodiff::check!(compound, &random(&mut r, (3, 4)), &random(&mut r, 4), 0.8);
}

#[differentiate]
fn ignored_and_constant(x: &Array1<f64>) -> f64 {
    let _ = x.exp();
    let mut c = 2.0;
    c += 1.0;
    let mut y = x * c;
    y = y.mapv(|v| v * v);
    y.sum()
}

#[test]
fn wildcard_bindings_and_mutable_constants() {
    let x = random(&mut rng(22), 5);
    autodiff::check!(ignored_and_constant, &x);
    let (_, (dx,)) = ignored_and_constant_grad(&x);
    assert!(dx.iter().zip(&x).all(|(d, x)| (d - 18.0 * x).abs() < 1e-12));
}
