//! `mapv` closures that capture float values of the function (parameters or intermediates):
//! the gradient flows to what they capture. Each function is checked three ways (static
//! code, tape, finite differences) in its own test.

mod common;

use autodiff::prelude::*;
use common::{random, rng};

#[differentiate]
fn captures_a_parameter(x: &Array1<f64>, t: f64) -> f64 {
    x.mapv(|v| (v * t).exp()).sum()
}

#[test]
fn a_closure_capturing_a_parameter_differentiates_it() {
    let x = random(&mut rng(24), 5);
    autodiff::check!(captures_a_parameter, &x, 0.7);
    // ∂/∂t Σ exp(v·t) = Σ v·exp(v·t).
    let (_, (_, dt)) = captures_a_parameter_grad(&x, 0.7);
    let expected: f64 = x.iter().map(|v| v * (v * 0.7).exp()).sum();
    assert!((dt - expected).abs() < 1e-12 * expected.abs().max(1.0));
}

#[differentiate(wrt(x, w))]
fn captures_intermediates(x: &Array2<f64>, w: &Array1<f64>, scale: f64) -> f64 {
    let s = w.sum() * scale;
    let m = mean(x);
    let h = x.mapv(|v| (v - m).tanh() * s + v.max(0.0) * s * s - 2 * m);
    (&h * &h).sum()
}

#[test]
fn a_closure_capturing_intermediates_carries_their_gradients() {
    let mut r = rng(25);
    autodiff::check!(captures_intermediates, &random(&mut r, (3, 4)), &random(&mut r, 4), 0.9);
}

#[differentiate]
fn generic_capture<F: Float>(x: &Array1<F>, t: F) -> F {
    x.mapv(|v| v.powi(2) / t + t.sin()).sum()
}

#[test]
fn a_generic_closure_capture_in_both_float_types() {
    let x = random(&mut rng(26), 4);
    autodiff::check!(generic_capture, &x, 1.3);
    autodiff::check!(generic_capture, &x.mapv(|v| v as f32), 1.3f32);
}

/// Constants of the closure that borrow parameters (`*scale`, `x.len()`, a `powi` exponent):
/// the tape's copy of the closure owns them.
#[differentiate]
fn closure_constants_borrow_parameters(x: &Array1<f64>, scale: &f64, power: i32) -> f64 {
    x.mapv(|v| (v * *scale).powi(power) / x.len() as f64 + v.max(*scale - 1.0))
        .sum()
}

#[test]
fn closure_constants_may_borrow_parameters() {
    autodiff::check!(closure_constants_borrow_parameters, &random(&mut rng(28), 6), &0.8, 3);
}

#[differentiate]
fn elementwise_huber(x: &Array1<f64>, y: &Array1<f64>) -> f64 {
    let delta = 0.5;
    (x - y)
        .mapv(|r| {
            if r.abs() <= delta {
                0.5 * r * r
            } else {
                delta * (r.abs() - 0.5 * delta)
            }
        })
        .sum()
}

#[test]
fn huber_loss_with_an_if_in_the_closure() {
    let mut r = rng(40);
    autodiff::check!(elementwise_huber, &(random(&mut r, 8) * 2.0), &random(&mut r, 8));
}

#[differentiate]
fn leaky_and_clipped(x: &Array2<f64>, w: &Array2<f64>) -> f64 {
    let z = x.dot(w);
    let leaky = z.mapv(|v| {
        if v > 0.0 {
            v
        } else if v > -1.0 {
            0.1 * v
        } else {
            0.01 * v - 0.09
        }
    });
    let clipped = leaky.mapv(|v| v.clamp(-0.5, 0.8));
    (&clipped * &z).sum()
}

#[test]
fn leaky_relu_chains_and_clamp_in_closures() {
    let mut r = rng(41);
    autodiff::check!(
        leaky_and_clipped,
        &(random(&mut r, (3, 4)) * 2.0),
        &random(&mut r, (4, 3))
    );
}
