//! Recovers the stiffness `k` and damping `c` of a damped oscillator `x'' = −k x − c x'`
//! from noisy observations of its position, by differentiating through the simulation.
//!
//! The simulation is explicit Euler over 200 steps, written as a `for` loop with the
//! state `(x, v)` carried in `let mut` floats inside a `#[differentiate]` function; the
//! loss is the mean squared distance to the observations, and Adam from
//! `autodiff::optim` fits `(k, c)`, a tuple of two floats. The observations come from
//! the same simulation at the true values plus Gaussian noise (σ = 0.02, fixed seed).
//!
//! ```sh
//! cargo run --release --example fit_oscillator             # 3000 Adam steps
//! cargo run --release --example fit_oscillator -- --quick  # 800 steps (CI)
//! ```
//!
//! `tests/optim_training.rs` runs [`fit`] and asserts the recovery.

use autodiff::optim::Adam;
use autodiff::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The true stiffness.
pub const TRUE_K: f64 = 4.0;
/// The true damping.
pub const TRUE_C: f64 = 0.5;
/// The start of the fit, far from the truth (the natural frequency off by 2×).
pub const START: (f64, f64) = (1.0, 0.1);
/// The recovered values must lie this close to the true ones (relative).
pub const TOLERANCE: f64 = 0.02;

/// The initial position.
pub const X0: f64 = 1.0;
/// The initial velocity.
pub const V0: f64 = 0.0;
/// The time step.
pub const DT: f64 = 0.02;
/// The number of Euler steps and observations (4 s, about 1.3 periods at the true stiffness).
pub const STEPS: usize = 200;
/// The observation noise's standard deviation.
pub const NOISE: f64 = 0.02;

/// The mean squared distance between the simulated positions after each step and the
/// `observed` ones. Only `k` and `c` get gradients; the rest are data.
#[differentiate(wrt(k, c))]
pub fn trajectory_loss(k: f64, c: f64, x0: f64, v0: f64, dt: f64, observed: &[f64], steps: usize) -> f64 {
    let mut x = x0;
    let mut v = v0;
    let mut loss = 0.0;
    for i in 0..steps {
        let a = -k * x - c * v;
        x += dt * v;
        v += dt * a;
        loss += (x - observed[i]) * (x - observed[i]);
    }
    loss / steps as f64
}

/// The same simulation in plain Rust: the position after each step.
pub fn simulate(k: f64, c: f64) -> Vec<f64> {
    let (mut x, mut v) = (X0, V0);
    (0..STEPS)
        .map(|_| {
            let a = -k * x - c * v;
            x += DT * v;
            v += DT * a;
            x
        })
        .collect()
}

/// The true trajectory plus Gaussian noise of standard deviation [`NOISE`] (Box–Muller
/// on the seeded generator).
pub fn observations(seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    simulate(TRUE_K, TRUE_C)
        .into_iter()
        .map(|x| {
            let (u1, u2): (f64, f64) = (1.0 - rng.gen::<f64>(), rng.gen());
            x + NOISE * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
        .collect()
}

/// What a fit returns.
pub struct Fit {
    /// The fitted stiffness and damping.
    pub params: (f64, f64),
    /// The loss at the start and at the end.
    pub loss: (f64, f64),
}

/// Fits `(k, c)` to `observed` with `iterations` Adam steps from [`START`]; the learning
/// rate falls from 0.05 to 0.005 over the last half.
pub fn fit(observed: &[f64], iterations: usize) -> Fit {
    let mut params = START;
    let mut adam = Adam::new(0.05);
    let first = trajectory_loss(params.0, params.1, X0, V0, DT, observed, STEPS);
    for i in 0..iterations {
        if i == iterations / 2 {
            adam.set_lr(0.005);
        }
        let (_, grads) = trajectory_loss_grad(params.0, params.1, X0, V0, DT, observed, STEPS);
        adam.step(&mut params, &grads);
    }
    let last = trajectory_loss(params.0, params.1, X0, V0, DT, observed, STEPS);
    Fit {
        params,
        loss: (first, last),
    }
}

#[allow(dead_code)] // `tests/optim_training.rs` includes this file for `fit`.
fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let iterations = if quick { 800 } else { 3000 };
    let observed = observations(42);
    let fit = fit(&observed, iterations);
    let (k, c) = fit.params;
    println!(
        "damped oscillator x'' = -k x - c x', explicit Euler, {STEPS} steps of {DT} s, noise σ = {NOISE}, \
         {iterations} Adam steps from (k, c) = {START:?}"
    );
    println!(
        "loss (mean squared distance): {:.5} → {:.5} (noise floor σ² = {:.5})",
        fit.loss.0,
        fit.loss.1,
        NOISE * NOISE
    );
    println!(
        "  k: recovered {k:.4}, true {TRUE_K} ({:+.2} %)",
        100.0 * (k / TRUE_K - 1.0)
    );
    println!(
        "  c: recovered {c:.4}, true {TRUE_C} ({:+.2} %)",
        100.0 * (c / TRUE_C - 1.0)
    );
    let within = |got: f64, truth: f64| (got / truth - 1.0).abs() <= TOLERANCE;
    assert!(
        within(k, TRUE_K) && within(c, TRUE_C),
        "not recovered within {} %",
        100.0 * TOLERANCE
    );
    println!("both within {} % of the truth", 100.0 * TOLERANCE);
}
