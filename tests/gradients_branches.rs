//! `if`/`else` and `match` on constants (configuration values, sizes), each function
//! checked three ways, for every way the branch can go, in its own test.

mod common;

use autodiff::prelude::*;
use common::{random, rng};

#[derive(Clone, Copy, Debug)]
pub enum Activation {
    Tanh,
    Relu,
    Identity,
}

pub struct Config {
    pub bias: bool,
    pub activation: Activation,
}

#[differentiate]
fn configured(x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>, config: &Config) -> f64 {
    let z = if config.bias { x.dot(w) + b } else { x.dot(w) };
    let h = match config.activation {
        Activation::Tanh => z.tanh(),
        Activation::Relu => relu(&z),
        Activation::Identity => z,
    };
    (&h * &h).sum()
}

#[test]
fn if_and_match_expressions_on_a_configuration() {
    let mut r = rng(90);
    let (x, w, b) = (random(&mut r, (3, 4)), random(&mut r, (4, 2)), random(&mut r, 2));
    for bias in [true, false] {
        for activation in [Activation::Tanh, Activation::Relu, Activation::Identity] {
            autodiff::check!(configured, &x, &w, &b, &Config { bias, activation });
        }
    }
}

#[differentiate]
fn statement_branches(x: &Array1<f64>, w: f64, steps: usize) -> f64 {
    let mut h = x.to_owned();
    let mut total = 0.0;
    if steps > 2 {
        h = h.exp();
        total += h.sum();
    } else if steps == 2 {
        h = &h * w;
    } else {
        total += (&h * w).sum();
    }
    if steps.is_multiple_of(2) {
        h = h.sin();
    }
    total + h.sum() * w
}

#[test]
fn if_statements_assigning_variables_with_else_if_chains() {
    let x = random(&mut rng(91), 4);
    for steps in 0..5 {
        autodiff::check!(statement_branches, &x, 0.7, steps);
    }
}

#[differentiate]
fn branch_in_loop(x: &Array1<f64>, ws: &[Array1<f64>]) -> f64 {
    let mut h = x.to_owned();
    for (i, w) in ws.iter().enumerate() {
        h = if i.is_multiple_of(2) { (&h * w).tanh() } else { &h + w };
    }
    h.sum()
}

#[test]
fn a_branch_on_the_loop_index() {
    let mut r = rng(92);
    let ws: Vec<Array1<f64>> = (0..4).map(|_| random(&mut r, 3)).collect();
    autodiff::check!(branch_in_loop, &random(&mut r, 3), &ws);
}

#[differentiate]
fn constant_choice(x: &Array1<f64>, fast: bool) -> f64 {
    let c = if fast { 2.0 } else { 3.0 };
    match x.len() {
        0 => 0.0 * x.sum(),
        n if n > 3 => (x * c).sum(),
        _ => x.mapv(|v| v * v).sum() / c,
    }
}

#[test]
fn constant_valued_branches_and_match_guards() {
    for n in [0, 2, 5] {
        let x = random(&mut rng(93), n);
        for fast in [true, false] {
            autodiff::check!(constant_choice, &x, fast);
        }
    }
}

#[differentiate]
fn constant_arm(x: &Array1<f64>, use_sum: bool) -> f64 {
    let s = if use_sum { x.sum() } else { 0.5 };
    let mut t = x.mapv(|v| v * v).sum();
    if !use_sum {
        t = 1.0;
    }
    s * t + x.exp().sum()
}

#[test]
fn an_arm_whose_value_or_assignment_is_a_constant() {
    let x = random(&mut rng(94), 3);
    autodiff::check!(constant_arm, &x, true);
    autodiff::check!(constant_arm, &x, false);
}

#[differentiate]
fn huber(x: &Array1<f64>, delta: f64) -> f64 {
    let s = x.sum();
    let a = if s > 0.0 { s } else { -s };
    if a <= delta {
        0.5 * a * a
    } else {
        delta * (a - 0.5 * delta)
    }
}

#[test]
fn a_piecewise_function_of_a_float_takes_the_branch_it_ran() {
    for (x, delta) in [(vec![0.3, -0.1], 1.0), (vec![2.0, 1.5], 1.0), (vec![-2.0, -0.5], 0.7)] {
        let x = Array1::from(x);
        autodiff::check!(huber, &x, delta);
    }
}

#[differentiate]
fn gated(x: &Array1<f64>, w: &Array1<f64>, threshold: f64) -> f64 {
    let mut h = x.to_owned();
    for _ in 0..4 {
        let m = h.mean().unwrap();
        if m > threshold && m < 10.0 {
            h = &h * w;
        } else if m < -threshold {
            h = h.exp();
        } else {
            h = (&h + w).tanh();
        }
    }
    h.sum()
}

#[test]
fn a_condition_on_a_value_computed_in_each_iteration() {
    let mut r = rng(95);
    let (x, w) = (random(&mut r, 4), random(&mut r, 4));
    for threshold in [-0.5, 0.0, 0.3] {
        autodiff::check!(gated, &x, &w, threshold);
    }
}

#[differentiate(wrt(x))]
fn branch_ignoring_the_parameter(x: &Array1<f64>, c: &Array1<f64>) -> f64 {
    if c.len() > 1 {
        c.sum()
    } else {
        x.sum()
    }
}

#[test]
fn a_branch_whose_output_no_parameter_reaches_has_zero_gradient_in_both_engines() {
    let x = random(&mut rng(96), 3);
    let report = autodiff::check!(branch_ignoring_the_parameter, &x, &x);
    let (_, (dx,)) = branch_ignoring_the_parameter_tape_grad(&x, &x);
    assert!(dx.iter().all(|&g| g == 0.0), "{report}");
}
