//! What `save = "auto"` buys by computing elementwise values again in backward instead of
//! keeping them (`static_code.rs` §3e), and what it costs.
//!
//! Each case is a layer whose activation is an elementwise expression of a matrix product,
//! written out as users write it: swish `z·σ(z)` and the tanh form of gelu
//! `0.5·z·(1 + tanh(0.79788·(z + 0.044715·z³)))`, followed by a second product and an
//! `mse`. Under `save = "all"` backward keeps every intermediate its rules read; under
//! `auto` it computes the arithmetic again (`h = z·σ(z)`, gelu's `z²`, `0.5·z`, `t + 1`, `h`)
//! from what it keeps anyway (`z`, and `σ(z)` and `tanh(..)`, whose rules read them).
//!
//! For each case: the bytes each context holds between forward and backward, and backward
//! alone (the context prepared untimed), `all` against `auto`, f32, one thread, alternated
//! call by call (`common::paired`, median of the per-round ratios).
//!
//! Run: `cargo bench --bench recompute` (`BUDGET_MS` per pair, default 2000).

use autodiff::prelude::*;

#[allow(dead_code)] // each bench uses part of the shared harness
mod common;
use common::{paired, random, timed_backward};

#[differentiate(wrt(w1, b1, w2))]
#[differentiate(wrt(w1, b1, w2), save = "all", name = swish_all)]
fn swish(x: &Array2<f32>, w1: &Array2<f32>, b1: &Array1<f32>, w2: &Array2<f32>, target: &Array2<f32>) -> f32 {
    let z = x.dot(w1) + b1;
    let h = &z * &z.sigmoid();
    mse(&h.dot(w2), target)
}

#[differentiate(wrt(w1, b1, w2))]
#[differentiate(wrt(w1, b1, w2), save = "all", name = gelu_all)]
fn gelu(x: &Array2<f32>, w1: &Array2<f32>, b1: &Array1<f32>, w2: &Array2<f32>, target: &Array2<f32>) -> f32 {
    let z = x.dot(w1) + b1;
    let inner = (&z + &z * &z * &z * 0.044715) * 0.797_884_6;
    let h = &z * 0.5 * (inner.tanh() + 1.0);
    mse(&h.dot(w2), target)
}

fn row(case: &str, shapes: &str, (auto, all, ratio): (f64, f64, f64), held_auto: usize, held_all: usize) {
    println!(
        "| {case} | {shapes} | {:.1} KB | {:.1} KB | {:.2}× | {auto:.1} µs | {all:.1} µs | **{ratio:.3}×** |",
        held_auto as f64 / 1024.0,
        held_all as f64 / 1024.0,
        held_auto as f64 / held_all as f64,
    );
}

fn main() {
    let budget = common::budget();
    println!("backward alone, f32, 1 thread; paired medians");
    println!("| case | x · w1 · w2 | held: auto | all | auto ÷ all | backward: auto | all | auto ÷ all |");
    println!("|---|---|---|---|---|---|---|---|");
    for (batch, input, hidden, output) in [(32, 784, 128, 10), (256, 512, 1024, 64)] {
        let shapes = format!("{batch}×{input} · {input}×{hidden} · {hidden}×{output}");
        let (x, w1, b1, w2, t) = (
            random((batch, input), 1),
            random((input, hidden), 2),
            random(hidden, 3),
            random((hidden, output), 4),
            random((batch, output), 5),
        );
        let args = (&x, &w1, &b1, &w2, &t);
        row(
            "swish",
            &shapes,
            paired(
                timed_backward(
                    || swish_forward(args.0, args.1, args.2, args.3, args.4).1,
                    |c| swish_backward(c, 1.0),
                ),
                timed_backward(
                    || swish_all_forward(args.0, args.1, args.2, args.3, args.4).1,
                    |c| swish_all_backward(c, 1.0),
                ),
                budget,
            ),
            swish_forward(&x, &w1, &b1, &w2, &t).1.held_bytes(),
            swish_all_forward(&x, &w1, &b1, &w2, &t).1.held_bytes(),
        );
        row(
            "gelu (tanh form)",
            &shapes,
            paired(
                timed_backward(
                    || gelu_forward(args.0, args.1, args.2, args.3, args.4).1,
                    |c| gelu_backward(c, 1.0),
                ),
                timed_backward(
                    || gelu_all_forward(args.0, args.1, args.2, args.3, args.4).1,
                    |c| gelu_all_backward(c, 1.0),
                ),
                budget,
            ),
            gelu_forward(&x, &w1, &b1, &w2, &t).1.held_bytes(),
            gelu_all_forward(&x, &w1, &b1, &w2, &t).1.held_bytes(),
        );
    }
}
