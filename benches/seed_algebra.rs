//! What the algebra on the seed buys, and where it cannot apply.
//!
//! The study's published losses are sums: `sum(f(x))`. The adjoint of a sum is one float
//! everywhere, which the static code keeps symbolic, turns into an outer product `u·vᵀ` at
//! the first matrix product and carries through the rest in matrix-vector products
//! (`autodiff-runtime/src/kernels/rank1.rs`). That exploits the loss. So every case here runs
//! twice: with the published sum, and with a **dense seed**, `sum(f(x) * r)` for a fixed
//! random `r`, where the adjoint of `f(x)` is the full array `r` and no such algebra applies.
//!
//! For each case and loss, backward alone (the context prepared untimed), f32, one thread,
//! the study's published shapes, alternated call by call (`common::paired`, median of the
//! per-round ratios):
//! - `seed off / on`: the same function generated with `opt(seed = false)` against the default;
//! - `tape / static`: the dynamic tape against the default static code;
//!
//! and the bytes each context holds between forward and backward.
//!
//! Run: `cargo bench --bench seed_algebra`.

use std::time::Instant;

use autodiff::prelude::*;
use autodiff::runtime::tape::Tape;

#[allow(dead_code)] // each bench uses part of the shared harness
mod common;
use common::{paired, random, timed_backward};

type F = f32;

#[differentiate(wrt(x))]
#[differentiate(wrt(x), opt(seed = false), name = quadratic_no_seed)]
fn quadratic(x: &Array1<f32>) -> f32 {
    (x * x).sum()
}

#[differentiate(wrt(x))]
#[differentiate(wrt(x), opt(seed = false), name = quadratic_dense_no_seed)]
fn quadratic_dense(x: &Array1<f32>, r: &Array1<f32>) -> f32 {
    (x * x * r).sum()
}

#[differentiate(wrt(w1, b1, w2, b2))]
#[differentiate(wrt(w1, b1, w2, b2), opt(seed = false), name = mlp_no_seed)]
fn mlp(x: &Array2<f32>, w1: &Array2<f32>, b1: &Array1<f32>, w2: &Array2<f32>, b2: &Array1<f32>) -> f32 {
    (relu(&(x.dot(w1) + b1)).dot(w2) + b2).sum()
}

#[differentiate(wrt(w1, b1, w2, b2))]
#[differentiate(wrt(w1, b1, w2, b2), opt(seed = false), name = mlp_dense_no_seed)]
fn mlp_dense(
    x: &Array2<f32>,
    w1: &Array2<f32>,
    b1: &Array1<f32>,
    w2: &Array2<f32>,
    b2: &Array1<f32>,
    r: &Array2<f32>,
) -> f32 {
    ((relu(&(x.dot(w1) + b1)).dot(w2) + b2) * r).sum()
}

#[differentiate(wrt(b, c, d))]
#[differentiate(wrt(b, c, d), opt(seed = false), name = chain_no_seed)]
fn chain(a: &Array2<f32>, b: &Array2<f32>, c: &Array2<f32>, d: &Array2<f32>) -> f32 {
    a.dot(b).dot(c).dot(d).sum()
}

#[differentiate(wrt(b, c, d))]
#[differentiate(wrt(b, c, d), opt(seed = false), name = chain_dense_no_seed)]
fn chain_dense(a: &Array2<f32>, b: &Array2<f32>, c: &Array2<f32>, d: &Array2<f32>, r: &Array2<f32>) -> f32 {
    (a.dot(b).dot(c).dot(d) * r).sum()
}

/// Tape backward alone: recording (`|tape| record`) untimed.
macro_rules! tape_backward {
    (|$tape:ident| $record:expr) => {
        || {
            let $tape = Tape::<F>::new();
            let y = $record;
            let start = Instant::now();
            let grads = $tape.backward(&y);
            let elapsed = start.elapsed();
            drop(grads);
            elapsed
        }
    };
}

fn row(case: &str, loss: &str, off_on: (f64, f64, f64), tape_static: (f64, f64, f64), held: usize, held_off: usize) {
    println!(
        "| {case} | {loss} | {:.1} µs | {:.1} µs | **{:.2}×** | {:.1} µs | {:.2}× | {} B | {} B |",
        off_on.1, off_on.0, off_on.2, tape_static.0, tape_static.2, held, held_off
    );
}

fn main() {
    let budget = common::budget();
    println!("backward alone, f32, 1 thread; paired medians; r: a fixed random array of the output's shape");
    println!(
        "| case | loss | static | static, seed off | seed off / on | tape | tape / static | held | held, seed off |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");

    let x = random(1000, 1);
    let r = random(1000, 2);
    row(
        "simple_quadratic",
        "sum (published)",
        paired(
            timed_backward(
                || quadratic_no_seed_forward(&x).1,
                |c| quadratic_no_seed_backward(c, 1.0),
            ),
            timed_backward(|| quadratic_forward(&x).1, |c| quadratic_backward(c, 1.0)),
            budget,
        ),
        paired(
            tape_backward!(|t| quadratic_on_tape(&t.param(&x))),
            timed_backward(|| quadratic_forward(&x).1, |c| quadratic_backward(c, 1.0)),
            budget,
        ),
        quadratic_forward(&x).1.held_bytes(),
        quadratic_no_seed_forward(&x).1.held_bytes(),
    );
    row(
        "simple_quadratic",
        "dense seed",
        paired(
            timed_backward(
                || quadratic_dense_no_seed_forward(&x, &r).1,
                |c| quadratic_dense_no_seed_backward(c, 1.0),
            ),
            timed_backward(
                || quadratic_dense_forward(&x, &r).1,
                |c| quadratic_dense_backward(c, 1.0),
            ),
            budget,
        ),
        paired(
            tape_backward!(|t| quadratic_dense_on_tape(&t.param(&x), &t.constant(&r))),
            timed_backward(
                || quadratic_dense_forward(&x, &r).1,
                |c| quadratic_dense_backward(c, 1.0),
            ),
            budget,
        ),
        quadratic_dense_forward(&x, &r).1.held_bytes(),
        quadratic_dense_no_seed_forward(&x, &r).1.held_bytes(),
    );

    let (x, w1, b1, w2, b2) = (
        random((32, 784), 3),
        random((784, 128), 4),
        random(128, 5),
        random((128, 10), 6),
        random(10, 7),
    );
    let r = random((32, 10), 8);
    row(
        "small_mlp",
        "sum (published)",
        paired(
            timed_backward(
                || mlp_no_seed_forward(&x, &w1, &b1, &w2, &b2).1,
                |c| mlp_no_seed_backward(c, 1.0),
            ),
            timed_backward(|| mlp_forward(&x, &w1, &b1, &w2, &b2).1, |c| mlp_backward(c, 1.0)),
            budget,
        ),
        paired(
            tape_backward!(|t| {
                mlp_on_tape(
                    &t.constant(&x),
                    &t.param(&w1),
                    &t.param(&b1),
                    &t.param(&w2),
                    &t.param(&b2),
                )
            }),
            timed_backward(|| mlp_forward(&x, &w1, &b1, &w2, &b2).1, |c| mlp_backward(c, 1.0)),
            budget,
        ),
        mlp_forward(&x, &w1, &b1, &w2, &b2).1.held_bytes(),
        mlp_no_seed_forward(&x, &w1, &b1, &w2, &b2).1.held_bytes(),
    );
    row(
        "small_mlp",
        "dense seed",
        paired(
            timed_backward(
                || mlp_dense_no_seed_forward(&x, &w1, &b1, &w2, &b2, &r).1,
                |c| mlp_dense_no_seed_backward(c, 1.0),
            ),
            timed_backward(
                || mlp_dense_forward(&x, &w1, &b1, &w2, &b2, &r).1,
                |c| mlp_dense_backward(c, 1.0),
            ),
            budget,
        ),
        paired(
            tape_backward!(|t| {
                mlp_dense_on_tape(
                    &t.constant(&x),
                    &t.param(&w1),
                    &t.param(&b1),
                    &t.param(&w2),
                    &t.param(&b2),
                    &t.constant(&r),
                )
            }),
            timed_backward(
                || mlp_dense_forward(&x, &w1, &b1, &w2, &b2, &r).1,
                |c| mlp_dense_backward(c, 1.0),
            ),
            budget,
        ),
        mlp_dense_forward(&x, &w1, &b1, &w2, &b2, &r).1.held_bytes(),
        mlp_dense_no_seed_forward(&x, &w1, &b1, &w2, &b2, &r).1.held_bytes(),
    );

    let (a, b, c, d) = (
        random((64, 128), 9),
        random((128, 256), 10),
        random((256, 512), 11),
        random((512, 128), 12),
    );
    let r = random((64, 128), 13);
    row(
        "matmul_chain",
        "sum (published)",
        paired(
            timed_backward(
                || chain_no_seed_forward(&a, &b, &c, &d).1,
                |x| chain_no_seed_backward(x, 1.0),
            ),
            timed_backward(|| chain_forward(&a, &b, &c, &d).1, |x| chain_backward(x, 1.0)),
            budget,
        ),
        paired(
            tape_backward!(|t| chain_on_tape(&t.constant(&a), &t.param(&b), &t.param(&c), &t.param(&d))),
            timed_backward(|| chain_forward(&a, &b, &c, &d).1, |x| chain_backward(x, 1.0)),
            budget,
        ),
        chain_forward(&a, &b, &c, &d).1.held_bytes(),
        chain_no_seed_forward(&a, &b, &c, &d).1.held_bytes(),
    );
    row(
        "matmul_chain",
        "dense seed",
        paired(
            timed_backward(
                || chain_dense_no_seed_forward(&a, &b, &c, &d, &r).1,
                |x| chain_dense_no_seed_backward(x, 1.0),
            ),
            timed_backward(
                || chain_dense_forward(&a, &b, &c, &d, &r).1,
                |x| chain_dense_backward(x, 1.0),
            ),
            budget,
        ),
        paired(
            tape_backward!(|t| {
                chain_dense_on_tape(
                    &t.constant(&a),
                    &t.param(&b),
                    &t.param(&c),
                    &t.param(&d),
                    &t.constant(&r),
                )
            }),
            timed_backward(
                || chain_dense_forward(&a, &b, &c, &d, &r).1,
                |x| chain_dense_backward(x, 1.0),
            ),
            budget,
        ),
        chain_dense_forward(&a, &b, &c, &d, &r).1.held_bytes(),
        chain_dense_no_seed_forward(&a, &b, &c, &d, &r).1.held_bytes(),
    );
}
