//! What a Hessian-vector product costs: `_hvp` (forward over reverse, `_grad` run at dual
//! numbers) against two gradient calls, the usual yardstick (a finite-difference HVP
//! needs two gradients; theory says forward over reverse costs a small constant times
//! one gradient).
//!
//! One case, a two-layer tanh MLP with softmax cross-entropy at small_mlp's published
//! shapes (x 32×784, w1 784×128, w2 128×10; the batch scaled like the study's), in f32.
//! The two are timed alternately (HVP first on even rounds, the gradients first on odd
//! ones), and the figure is the median of the per-round ratios, so a drift of the machine
//! hits both alike.

use autodiff::ndarray::{Array1, Array2};
use autodiff::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::measure::{time, Stats};

/// The timed case.
#[differentiate(wrt(w1, b1, w2, b2))]
pub fn hvp_mlp<F: Float>(
    x: &Array2<F>,
    w1: &Array2<F>,
    b1: &Array1<F>,
    w2: &Array2<F>,
    b2: &Array1<F>,
    labels: &[usize],
) -> F {
    let h = (x.dot(w1) + b1).tanh();
    cross_entropy(&(h.dot(w2) + b2), labels)
}

/// The measured row.
pub struct HvpRow {
    /// The shapes, for the printed line.
    pub shapes: String,
    /// One `_hvp` call, µs.
    pub hvp: Stats,
    /// Two `_grad` calls, µs.
    pub two_gradients: Stats,
    /// Median over rounds of hvp time / two-gradient time.
    pub ratio: f64,
}

impl std::fmt::Display for HvpRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "\nHessian-vector product (forward over reverse: _grad at Dual<f32>), {}",
            self.shapes
        )?;
        writeln!(
            f,
            "  hvp {:.0} µs, two gradients {:.0} µs (medians of {} alternating rounds): hvp / two gradients = {:.2}× (median ratio)",
            self.hvp.median, self.two_gradients.median, self.hvp.samples, self.ratio
        )
    }
}

/// Times the HVP against two gradients, `reps` rounds after one warm-up each, the batch
/// scaled by `scale` (at least 4 rows).
pub fn run(reps: usize, scale: f64) -> HvpRow {
    let batch = ((32.0 * scale).round() as usize).max(4);
    let (d, hidden, classes) = (784, 128, 10);
    let mut rng = StdRng::seed_from_u64(7);
    let mut uniform =
        |shape: (usize, usize), bound: f32| Array2::from_shape_simple_fn(shape, || rng.gen_range(-bound..bound));
    let x = uniform((batch, d), 1.0);
    let w1 = uniform((d, hidden), 1.0 / (d as f32).sqrt());
    let w2 = uniform((hidden, classes), 1.0 / (hidden as f32).sqrt());
    let (b1, b2) = (
        Array1::from_elem(hidden, 0.01_f32),
        Array1::from_elem(classes, 0.01_f32),
    );
    let directions = (
        uniform((d, hidden), 0.1),
        Array1::from_elem(hidden, 0.1_f32),
        uniform((hidden, classes), 0.1),
        Array1::from_elem(classes, 0.1_f32),
    );
    let labels: Vec<usize> = (0..batch).map(|i| i % classes).collect();

    let hvp = || hvp_mlp_hvp(&x, &w1, &b1, &w2, &b2, &labels, &directions);
    let two_gradients = || {
        let first = hvp_mlp_grad(&x, &w1, &b1, &w2, &b2, &labels);
        let second = hvp_mlp_grad(&x, &w1, &b1, &w2, &b2, &labels);
        (first, second)
    };
    // Each result is dropped after the clock stopped.
    let run_hvp = || time(hvp).1.as_secs_f64() * 1e6;
    let run_grads = || time(two_gradients).1.as_secs_f64() * 1e6;
    run_hvp();
    run_grads();
    let (mut hvps, mut grads, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..reps.max(1) {
        let (h, g) = if round % 2 == 0 {
            let h = run_hvp();
            (h, run_grads())
        } else {
            let g = run_grads();
            (run_hvp(), g)
        };
        hvps.push(h);
        grads.push(g);
        ratios.push(h / g);
    }
    HvpRow {
        shapes: format!("mlp tanh + cross-entropy, x {batch}×{d}, w1 {d}×{hidden}, w2 {hidden}×{classes}, f32"),
        hvp: Stats::from_micros(hvps),
        two_gradients: Stats::from_micros(grads),
        ratio: Stats::from_micros(ratios).median,
    }
}
