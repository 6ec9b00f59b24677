//! Custom derivative rules (`#[differentiate(vjp = ..)]`): the function's body is the
//! user's own code, its VJP the user's own; both engines use the rule, and `check!`
//! compares it with finite differences of the function. One `#[test]` per function.

mod common;

use autodiff::prelude::*;
use common::{random, rng};

/// GELU (tanh form), written as one fused pass.
#[differentiate(vjp = gelu_backward)]
fn gelu<F: Float>(x: &Array2<F>) -> Array2<F> {
    let c = F::of(0.797_884_560_802_865_4);
    x.mapv(|v| F::of(0.5) * v * (F::one() + (c * (v + F::of(0.044715) * v * v * v)).tanh()))
}

/// The VJP of `gelu`: the arguments, the output, the output's adjoint → the input's adjoint.
fn gelu_backward<F: Float>(x: &Array2<F>, _y: &Array2<F>, seed: Array2<F>) -> Array2<F> {
    let c = F::of(0.797_884_560_802_865_4);
    let mut g = seed;
    g.zip_mut_with(x, |g, &v| {
        let inner = c * (v + F::of(0.044715) * v * v * v);
        let t = inner.tanh();
        let d_inner = c * (F::one() + F::of(3.0 * 0.044715) * v * v);
        *g *= F::of(0.5) * (F::one() + t) + F::of(0.5) * v * (F::one() - t * t) * d_inner;
    });
    g
}

#[differentiate]
fn gelu_loss(x: &Array2<f64>, w: &Array2<f64>) -> f64 {
    let z = x.dot(w);
    let h: Array2<f64> = gelu(&z);
    (&h * &h).sum()
}

#[test]
fn a_custom_activation_called_from_a_differentiated_function() {
    let mut r = rng(100);
    autodiff::check!(gelu_loss, &random(&mut r, (3, 4)), &random(&mut r, (4, 5)));
}

/// log Σ exp(x), computed stably (the maximum taken out): a float-valued custom rule.
#[differentiate(vjp = logsumexp_backward)]
fn logsumexp(x: &Array1<f64>) -> f64 {
    let m = x.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
    m + x.mapv(|v| (v - m).exp()).sum().ln()
}

fn logsumexp_backward(x: &Array1<f64>, y: f64, seed: f64) -> Array1<f64> {
    x.mapv(|v| seed * (v - y).exp())
}

#[test]
fn a_float_valued_rule_checked_directly() {
    let x = random(&mut rng(101), 6) * 30.0;
    autodiff::check!(logsumexp, &x);
}

/// A fused affine layer with a hand-written backward, taking three inputs and a constant.
#[differentiate(vjp = affine_backward)]
fn affine(x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>, scale: f64) -> Array2<f64> {
    (x.dot(w) + b) * scale
}

#[allow(clippy::type_complexity)]
fn affine_backward(
    x: &Array2<f64>,
    w: &Array2<f64>,
    _b: &Array1<f64>,
    scale: f64,
    _y: &Array2<f64>,
    seed: Array2<f64>,
) -> (Array2<f64>, Array2<f64>, Array1<f64>, f64) {
    let g = &seed * scale;
    let y_over_scale = x.dot(w) + _b;
    (
        g.dot(&w.t()),
        x.t().dot(&g),
        g.sum_axis(Axis(0)),
        (&seed * &y_over_scale).sum(),
    )
}

#[differentiate]
fn stacked_affine(x: &Array2<f64>, ws: &[Array2<f64>], b: &Array1<f64>, s: f64) -> f64 {
    let mut h = x.to_owned();
    for w in ws {
        h = affine(&h, w, b, s);
        h = h.tanh();
    }
    h.sum()
}

#[test]
fn a_multi_input_rule_in_a_loop_with_a_float_gradient() {
    let mut r = rng(102);
    let ws: Vec<Array2<f64>> = (0..3).map(|_| random(&mut r, (3, 3))).collect();
    autodiff::check!(stacked_affine, &random(&mut r, (2, 3)), &ws, &random(&mut r, 3), 0.8);
}

/// A wrong rule is caught: its gradient disagrees with the function's finite differences.
#[differentiate(vjp = wrong_backward)]
fn doubled(x: &Array1<f64>) -> f64 {
    (x * x).sum()
}

fn wrong_backward(x: &Array1<f64>, _y: f64, seed: f64) -> Array1<f64> {
    x * seed
}

#[test]
fn check_catches_a_wrong_rule() {
    let report = doubled_check(&random(&mut rng(103), 4));
    assert!(!report.passed(), "{report}");
}
