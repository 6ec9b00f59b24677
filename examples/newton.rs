//! Newton's method on logistic regression, with Hessian-vector products from
//! `loss_hvp` and conjugate gradients, against gradient descent.
//!
//! The data: `N` points in `D` dimensions drawn from a normal distribution (fixed seed),
//! feature `j` with standard deviation from 1 down to 0.32 (unstandardised features), and
//! labels drawn from `sigmoid(x·w* + b*)` for a known `(w*, b*)`. The loss is the mean
//! logistic loss `softplus(z) − y·z`, `z = x·w + b`, plus `λ/2·‖w‖²` (λ = [`LAMBDA`]), so
//! the Hessian is positive definite and the minimiser unique.
//!
//! Newton: at each step, solve `H d = −g` by conjugate gradients, where every `H·v` is one
//! `loss_hvp` call (no Hessian is ever formed), then step with a backtracking (Armijo)
//! line search from `t = 1`. Gradient descent: fixed step `1/L`, where `L` is the largest
//! eigenvalue of the Hessian at `z = 0` (power iteration on `loss_hvp`), an upper bound on
//! every Hessian of this loss since `sigmoid' ≤ 1/4`. Both run until `‖g‖ < 1e-8`.
//!
//! ```sh
//! cargo run --release --example newton             # 2000 points in 20 dimensions
//! cargo run --release --example newton -- --quick  # 500 points in 10 dimensions (CI)
//! ```
//!
//! `tests/newton.rs` runs [`run`] and asserts what `main` asserts.

use autodiff::ndarray::s;
use autodiff::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

/// The L2 weight.
pub const LAMBDA: f64 = 1e-3;
/// Both methods stop at `‖g‖ <` this.
pub const TOLERANCE: f64 = 1e-8;
/// Conjugate gradients stop at `‖r‖ / ‖g‖ <` this (or after `D + 1` iterations).
pub const CG_TOLERANCE: f64 = 1e-10;
/// Gradient descent gives up after this many steps.
pub const GD_CAP: usize = 20_000;
/// Newton must converge in at most this many steps.
pub const NEWTON_MAX_STEPS: usize = 10;

/// Mean logistic loss plus `λ/2·‖w‖²` with λ = 1e-3 (the macro writes the literal as
/// `F::of(0.0005)`, since `F` is generic). Only `w` and `b` get gradients.
#[differentiate(wrt(w, b))]
pub fn loss<F: Float>(x: &Array2<F>, y: &Array1<F>, w: &Array1<F>, b: F) -> F {
    let z = x.dot(w) + b;
    (z.softplus() - y * &z).mean().unwrap() + (w * w).sum() * 0.0005
}

/// A data set: `x` is `n × d`, `y` in `{0, 1}`.
pub struct Data {
    pub x: Array2<f64>,
    pub y: Array1<f64>,
}

/// `n` points in `d` dimensions, feature `j` normal with standard deviation
/// `s_j = 10^(−j/(2(d−1)))` (from 1 down to 0.32: unstandardised features, which make the
/// problem ill-conditioned for gradient descent), labels drawn from the logistic model with
/// weights `w*_j = 3·sin(j + 1)/(√d·s_j)` and bias `b* = 0.5`.
pub fn data(n: usize, d: usize, seed: u64) -> Data {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut normal = || {
        let (u1, u2): (f64, f64) = (1.0 - rng.gen::<f64>(), rng.gen());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    };
    let scale = |j: usize| 10f64.powf(-0.5 * j as f64 / (d - 1) as f64);
    let x = Array2::from_shape_fn((n, d), |(_, j)| scale(j) * normal());
    let w_true = Array1::from_shape_fn(d, |j| 3.0 * ((j + 1) as f64).sin() / (d as f64).sqrt() / scale(j));
    let p = (x.dot(&w_true) + 0.5).mapv(|z| 1.0 / (1.0 + (-z).exp()));
    let y = p.mapv(|p| if rng.gen::<f64>() < p { 1.0 } else { 0.0 });
    Data { x, y }
}

/// The parameters `(w, b)` as one vector of length `d + 1` (`b` last), and back.
fn pack(w: &Array1<f64>, b: f64) -> Array1<f64> {
    w.iter().copied().chain(std::iter::once(b)).collect()
}

fn unpack(theta: &Array1<f64>) -> (Array1<f64>, f64) {
    let d = theta.len() - 1;
    (theta.slice(s![..d]).to_owned(), theta[d])
}

impl Data {
    fn value(&self, theta: &Array1<f64>) -> f64 {
        let (w, b) = unpack(theta);
        loss(&self.x, &self.y, &w, b)
    }

    fn gradient(&self, theta: &Array1<f64>) -> (f64, Array1<f64>) {
        let (w, b) = unpack(theta);
        let (value, (gw, gb)) = loss_grad(&self.x, &self.y, &w, b);
        (value, pack(&gw, gb))
    }

    /// `H·v` at `theta`: one `loss_hvp` call.
    fn hessian_times(&self, theta: &Array1<f64>, v: &Array1<f64>) -> Array1<f64> {
        let (w, b) = unpack(theta);
        let (_, _, (hw, hb)) = loss_hvp(&self.x, &self.y, &w, b, &unpack(v));
        pack(&hw, hb)
    }
}

/// Solves `H d = −g` by conjugate gradients from `d = 0`; returns `d` and the number of
/// iterations (`H·v` products).
fn conjugate_gradients(data: &Data, theta: &Array1<f64>, g: &Array1<f64>) -> (Array1<f64>, usize) {
    let n = g.len();
    let mut d = Array1::zeros(n);
    let mut r = -g;
    let mut p = r.clone();
    let mut rr = r.dot(&r);
    let stop = CG_TOLERANCE * g.dot(g).sqrt();
    for k in 1..=n {
        let hp = data.hessian_times(theta, &p);
        let alpha = rr / p.dot(&hp);
        d.scaled_add(alpha, &p);
        r.scaled_add(-alpha, &hp);
        let rr_next = r.dot(&r);
        if rr_next.sqrt() < stop {
            return (d, k);
        }
        p = &r + &(rr_next / rr * &p);
        rr = rr_next;
    }
    (d, n)
}

/// One Newton step's record.
pub struct NewtonStep {
    pub loss: f64,
    pub gradient_norm: f64,
    pub cg_iterations: usize,
    pub step_size: f64,
}

/// What a run of both methods returns.
pub struct Comparison {
    pub n: usize,
    pub d: usize,
    /// Newton's steps, one per iteration, and the gradient norm it ended at.
    pub newton: Vec<NewtonStep>,
    pub newton_final: (f64, f64),
    pub newton_theta: Array1<f64>,
    pub newton_time: Duration,
    /// Gradient descent's step size, number of steps, final loss and gradient norm.
    pub gd_step: f64,
    pub gd_steps: usize,
    pub gd_final: (f64, f64),
    pub gd_theta: Array1<f64>,
    pub gd_time: Duration,
}

/// Newton with CG and an Armijo line search, from zero, until `‖g‖ < TOLERANCE` (at most
/// 50 steps).
fn newton(data: &Data, d: usize) -> (Vec<NewtonStep>, Array1<f64>, (f64, f64)) {
    let mut theta = Array1::zeros(d + 1);
    let mut steps = Vec::new();
    loop {
        let (value, g) = data.gradient(&theta);
        let norm = g.dot(&g).sqrt();
        if norm < TOLERANCE || steps.len() == 50 {
            return (steps, theta, (value, norm));
        }
        let (direction, cg_iterations) = conjugate_gradients(data, &theta, &g);
        let slope = g.dot(&direction);
        let mut t = 1.0;
        while t > 1e-10 && data.value(&(&theta + &(t * &direction))) > value + 1e-4 * t * slope {
            t /= 2.0;
        }
        theta.scaled_add(t, &direction);
        steps.push(NewtonStep {
            loss: value,
            gradient_norm: norm,
            cg_iterations,
            step_size: t,
        });
    }
}

/// The largest eigenvalue of the Hessian at zero (power iteration on `loss_hvp`): since
/// `sigmoid'(z) ≤ sigmoid'(0)`, it bounds every Hessian of the loss.
fn lipschitz(data: &Data, d: usize) -> f64 {
    let zero = Array1::zeros(d + 1);
    let mut v = Array1::from_elem(d + 1, 1.0 / ((d + 1) as f64).sqrt());
    let mut eigenvalue = 0.0;
    for _ in 0..100 {
        let hv = data.hessian_times(&zero, &v);
        eigenvalue = v.dot(&hv);
        v = &hv / hv.dot(&hv).sqrt();
    }
    eigenvalue
}

/// Gradient descent with step `step` from zero until `‖g‖ < TOLERANCE` or [`GD_CAP`] steps.
fn gradient_descent(data: &Data, d: usize, step: f64) -> (usize, Array1<f64>, (f64, f64)) {
    let mut theta = Array1::zeros(d + 1);
    for k in 0.. {
        let (value, g) = data.gradient(&theta);
        let norm = g.dot(&g).sqrt();
        if norm < TOLERANCE || k == GD_CAP {
            return (k, theta, (value, norm));
        }
        theta.scaled_add(-step, &g);
    }
    unreachable!()
}

/// Both methods on `n` points in `d` dimensions (seed 7).
pub fn run(n: usize, d: usize) -> Comparison {
    let data = data(n, d, 7);
    let start = Instant::now();
    let (newton, newton_theta, newton_final) = newton(&data, d);
    let newton_time = start.elapsed();
    let start = Instant::now();
    let gd_step = 1.0 / lipschitz(&data, d);
    let (gd_steps, gd_theta, gd_final) = gradient_descent(&data, d, gd_step);
    let gd_time = start.elapsed();
    Comparison {
        n,
        d,
        newton,
        newton_final,
        newton_theta,
        newton_time,
        gd_step,
        gd_steps,
        gd_final,
        gd_theta,
        gd_time,
    }
}

impl Comparison {
    /// `max |θ_newton − θ_gd|`.
    pub fn difference(&self) -> f64 {
        (&self.newton_theta - &self.gd_theta)
            .iter()
            .fold(0.0, |m, v| m.max(v.abs()))
    }

    /// The total number of `H·v` products Newton used.
    pub fn cg_total(&self) -> usize {
        self.newton.iter().map(|s| s.cg_iterations).sum()
    }

    /// Panics unless Newton converged in at most [`NEWTON_MAX_STEPS`] steps, gradient
    /// descent converged too, and their answers agree to 1e-5.
    pub fn assert_converged(&self) {
        assert!(
            self.newton_final.1 < TOLERANCE && self.newton.len() <= NEWTON_MAX_STEPS,
            "Newton: ‖g‖ = {:e} after {} steps",
            self.newton_final.1,
            self.newton.len()
        );
        assert!(
            self.gd_final.1 < TOLERANCE,
            "gradient descent: ‖g‖ = {:e} after {} steps",
            self.gd_final.1,
            self.gd_steps
        );
        assert!(
            self.difference() < 1e-5,
            "Newton and gradient descent disagree by {:e}",
            self.difference()
        );
    }
}

#[allow(dead_code)] // `tests/newton.rs` includes this file for `run`.
fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (n, d) = if quick { (500, 10) } else { (2000, 20) };
    let c = run(n, d);
    println!(
        "logistic regression, {} points in {} dimensions, λ = {LAMBDA}; both from zero to ‖g‖ < {TOLERANCE:e}",
        c.n, c.d
    );
    println!("Newton (H·v by loss_hvp, conjugate gradients to relative residual {CG_TOLERANCE:e}):");
    println!("  step          loss       ‖g‖   CG its   step size");
    for (k, s) in c.newton.iter().enumerate() {
        println!(
            "  {k:>4}  {:>12.9}  {:>8.2e}  {:>7}  {:>10}",
            s.loss, s.gradient_norm, s.cg_iterations, s.step_size
        );
    }
    println!(
        "  {:>4}  {:>12.9}  {:>8.2e}",
        c.newton.len(),
        c.newton_final.0,
        c.newton_final.1
    );
    println!(
        "gradient descent (fixed step 1/L = {:.4}, L by power iteration on loss_hvp at zero):",
        c.gd_step
    );
    println!(
        "  {} steps, loss {:.9}, ‖g‖ {:.2e}",
        c.gd_steps, c.gd_final.0, c.gd_final.1
    );
    println!(
        "Newton: {} steps, {} H·v products in total, {:.2?}; gradient descent: {} steps, {:.2?}",
        c.newton.len(),
        c.cg_total(),
        c.newton_time,
        c.gd_steps,
        c.gd_time
    );
    println!("max |θ_newton − θ_gd| = {:.2e}", c.difference());
    c.assert_converged();
    println!("Newton converged in ≤ {NEWTON_MAX_STEPS} steps and agrees with gradient descent to 1e-5");
}
