//! `autodiff::optim` on `#[differentiate]` models: a small network whose loss Adam must
//! cut by a stated factor, a network whose weights live in slices (a `Vec` gradient),
//! and the oscillator of `examples/fit_oscillator.rs`, whose parameters must be recovered.

use autodiff::optim::{Adam, Params, Sgd};
use autodiff::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[path = "../examples/fit_oscillator.rs"]
mod fit_oscillator;

/// Squared error of a two-layer tanh network against targets.
#[differentiate(wrt(w1, b1, w2))]
fn regression_loss(x: &Array2<f64>, y: &Array2<f64>, w1: &Array2<f64>, b1: &Array1<f64>, w2: &Array2<f64>) -> f64 {
    let h = (x.dot(w1) + b1).tanh();
    mse(&h.dot(w2), y)
}

/// The same network with its layers in slices: gradients `Vec<Array2>` and `Vec<Array1>`.
#[differentiate(wrt(ws, bs))]
fn sliced_loss(x: &Array2<f64>, y: &Array2<f64>, ws: &[Array2<f64>], bs: &[Array1<f64>]) -> f64 {
    let mut h = x.to_owned();
    for l in 0..ws.len() {
        h = (h.dot(&ws[l]) + &bs[l]).tanh();
    }
    mse(&h, y)
}

fn random(shape: (usize, usize), scale: f64, rng: &mut StdRng) -> Array2<f64> {
    Array2::from_shape_fn(shape, |_| scale * rng.gen_range(-1.0..1.0))
}

/// Data from a random teacher network of the same form (so a perfect fit exists).
fn teacher_data(rng: &mut StdRng) -> (Array2<f64>, Array2<f64>) {
    let x = random((64, 4), 1.0, rng);
    let (w1, w2) = (random((4, 8), 1.0, rng), random((8, 2), 1.0, rng));
    let y = x.dot(&w1).tanh().dot(&w2);
    (x, y)
}

#[test]
fn adam_cuts_a_small_networks_loss_a_hundredfold() {
    let mut rng = StdRng::seed_from_u64(3);
    let (x, y) = teacher_data(&mut rng);
    let mut params = (
        random((4, 8), 0.5, &mut rng),
        Array1::zeros(8),
        random((8, 2), 0.5, &mut rng),
    );
    let start = regression_loss(&x, &y, &params.0, &params.1, &params.2);
    let mut adam = Adam::new(0.02);
    for _ in 0..500 {
        let (_, grads) = regression_loss_grad(&x, &y, &params.0, &params.1, &params.2);
        adam.step(&mut params, &grads);
    }
    let end = regression_loss(&x, &y, &params.0, &params.1, &params.2);
    assert!(
        end < start / 100.0,
        "loss {start:.4} → {end:.6}: less than a hundredfold"
    );
}

#[test]
fn sgd_with_momentum_steps_slice_parameters() {
    let mut rng = StdRng::seed_from_u64(5);
    let (x, y) = teacher_data(&mut rng);
    let y = y.mapv(|v| v.tanh());
    let mut params: (Vec<Array2<f64>>, Vec<Array1<f64>>) = (
        vec![random((4, 8), 0.5, &mut rng), random((8, 2), 0.5, &mut rng)],
        vec![Array1::zeros(8), Array1::zeros(2)],
    );
    assert_eq!(params.leaf_count(), 4);
    let start = sliced_loss(&x, &y, &params.0, &params.1);
    let mut sgd = Sgd::new(0.2).momentum(0.9);
    for _ in 0..300 {
        let (_, grads) = sliced_loss_grad(&x, &y, &params.0, &params.1);
        sgd.step(&mut params, &grads);
    }
    let end = sliced_loss(&x, &y, &params.0, &params.1);
    assert!(end < start / 10.0, "loss {start:.4} → {end:.6}: less than tenfold");
}

#[test]
fn the_oscillators_gradient_passes_the_three_way_check() {
    let observed = fit_oscillator::observations(42);
    let (x0, v0, dt, steps) = (
        fit_oscillator::X0,
        fit_oscillator::V0,
        fit_oscillator::DT,
        fit_oscillator::STEPS,
    );
    for (k, c) in [fit_oscillator::START, (4.0, 0.5), (2.5, 1.0)] {
        autodiff::check!(fit_oscillator::trajectory_loss, k, c, x0, v0, dt, &observed, steps);
    }
}

/// The worst of these seeds misses by 0.8 % (c) and 0.3 % (k); the tolerance is 2 %.
#[test]
fn the_oscillators_stiffness_and_damping_are_recovered() {
    use fit_oscillator::{TOLERANCE, TRUE_C, TRUE_K};
    for seed in [42, 1, 2, 3, 4, 5] {
        let observed = fit_oscillator::observations(seed);
        let fit = fit_oscillator::fit(&observed, 800);
        let (k, c) = fit.params;
        // The fit reached the least-squares minimum (the gradient vanishes there) ...
        let (x0, v0, dt, steps) = (
            fit_oscillator::X0,
            fit_oscillator::V0,
            fit_oscillator::DT,
            fit_oscillator::STEPS,
        );
        let (_, (dk, dc)) = fit_oscillator::trajectory_loss_grad(k, c, x0, v0, dt, &observed, steps);
        assert!(
            dk.abs().max(dc.abs()) < 1e-6,
            "seed {seed}: gradient ({dk:e}, {dc:e}) at the fit"
        );
        // ... which, at this noise, lies within the tolerance of the true values.
        assert!(
            (k / TRUE_K - 1.0).abs() <= TOLERANCE && (c / TRUE_C - 1.0).abs() <= TOLERANCE,
            "seed {seed}: recovered k = {k}, c = {c} against {TRUE_K}, {TRUE_C} (tolerance {TOLERANCE})"
        );
    }
}
