//! Loops under `residuals = "bf16"`: each carried state a context holds is packed once, where
//! it is made, and shared by the two iterations that read it (`codegen/loops.rs`); the first
//! and last iterations leave the initial value and the output to the code around the loop.
//! Each function below takes a different path through that code (states that trade places,
//! nested loops, a branch in the body, a state starting as a constant, a state the rest of
//! the function never reads, an initial value the body also reads, no iteration at all), and
//! each test checks, for that function:
//! - the full-precision version three ways (static, tape, finite differences in f64);
//! - the 16-bit version's gradients within bf16's rounding of the full ones (and rounded:
//!   the states were packed);
//! - the 16-bit context's account of its bytes against the counting allocator, and that it
//!   holds less than the full one.

mod common;

use autodiff::prelude::*;
use autodiff::runtime::alloc::CountingAllocator;
use common::{held_by_forward, random, rng};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

/// States long enough that a packing (2 bytes an element, plus its `Arc`'s header) holds less
/// than the `f64` state it replaces (8 bytes an element, plus its own).
const N: usize = 64;

/// The largest difference between `got` and `exact`, relative to `exact`'s largest entry.
fn error_of_largest(got: &Array1<f64>, exact: &Array1<f64>) -> f64 {
    let scale = exact.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    got.iter().zip(exact).fold(0.0f64, |m, (a, b)| m.max((a - b).abs())) / scale
}

/// The 16-bit gradient `got` is the full one `exact` up to bf16's rounding (8 significant
/// bits, compounded over a few steps), and not equal to it.
fn rounded(got: &Array1<f64>, exact: &Array1<f64>) {
    let error = error_of_largest(got, exact);
    assert!(error > 0.0 && error < 2e-2, "error {error:e} of the largest entry");
}

/// The 16-bit context holds less than the full one (both measured, both agreeing with their
/// own `held_bytes()`).
fn holds_less(bf16: usize, full: usize) {
    assert!(bf16 < full, "bf16 {bf16} B, full {full} B");
}

#[differentiate]
#[differentiate(residuals = "bf16", name = swapped_bf16)]
fn swapped(x: &Array1<f64>, y: &Array1<f64>) -> f64 {
    let mut a = x.to_owned();
    let mut b = y.to_owned();
    for _ in 0..4 {
        let t = (&a * &b).sin();
        a = b;
        b = t + &a;
    }
    a.sum() + (&b * &b).sum()
}

#[test]
fn states_that_trade_places() {
    let mut r = rng(301);
    let (x, y) = (random(&mut r, N), random(&mut r, N));
    autodiff::check!(swapped, &x, &y);
    let ((_, (dx, dy)), (_, (px, py))) = (swapped_grad(&x, &y), swapped_bf16_grad(&x, &y));
    rounded(&px, &dx);
    rounded(&py, &dy);
    let (_, full) = held_by_forward!(swapped_forward(&x, &y));
    let (_, bf16) = held_by_forward!(swapped_bf16_forward(&x, &y));
    holds_less(bf16, full);
}

#[differentiate]
#[differentiate(residuals = "bf16", name = nested_bf16)]
fn nested(x: &Array1<f64>, w: &Array1<f64>) -> f64 {
    let mut h1 = x.to_owned();
    let mut h2 = x.to_owned();
    for _ in 0..3 {
        h1 = (&h1 * w).tanh();
        for _ in 0..2 {
            h2 = (&h2 * &h1).sin();
        }
    }
    (&h2 * &h1).sum()
}

#[test]
fn a_nested_loop_reading_its_enclosing_loops_state() {
    let mut r = rng(302);
    let (x, w) = (random(&mut r, N), random(&mut r, N));
    autodiff::check!(nested, &x, &w);
    let ((_, (dx, dw)), (_, (px, pw))) = (nested_grad(&x, &w), nested_bf16_grad(&x, &w));
    rounded(&px, &dx);
    rounded(&pw, &dw);
    let (_, full) = held_by_forward!(nested_forward(&x, &w));
    let (_, bf16) = held_by_forward!(nested_bf16_forward(&x, &w));
    holds_less(bf16, full);
}

#[differentiate]
#[differentiate(residuals = "bf16", name = branchy_bf16)]
fn branchy(x: &Array1<f64>, w: &Array1<f64>) -> f64 {
    let mut h = x.to_owned();
    for i in 0..5usize {
        h = if i.is_multiple_of(2) {
            (&h * w).tanh()
        } else {
            (&h + w).sin()
        };
    }
    (&h * &h).sum()
}

#[test]
fn a_branch_in_the_body_assigning_the_state() {
    let mut r = rng(303);
    let (x, w) = (random(&mut r, N), random(&mut r, N));
    autodiff::check!(branchy, &x, &w);
    let ((_, (dx, dw)), (_, (px, pw))) = (branchy_grad(&x, &w), branchy_bf16_grad(&x, &w));
    rounded(&px, &dx);
    rounded(&pw, &dw);
    let (_, full) = held_by_forward!(branchy_forward(&x, &w));
    let (_, bf16) = held_by_forward!(branchy_bf16_forward(&x, &w));
    holds_less(bf16, full);
}

/// A state starting as a constant array (no outer value to leave the first iteration's state
/// to) and a state the rest of the function never reads (no output to leave the last one to):
/// both packed in every iteration whose context reads them.
#[differentiate]
#[differentiate(residuals = "bf16", name = constant_start_bf16)]
fn constant_start(x: &Array1<f64>, w: &Array1<f64>) -> f64 {
    let mut acc = Array1::<f64>::zeros(x.len());
    let mut unread = x.to_owned();
    let mut total = 0.0;
    for _ in 0..4 {
        acc = (&acc * w + x).tanh();
        unread = (&unread * &acc).sin();
        total += (&unread * &unread).sum();
    }
    total + acc.sum()
}

#[test]
fn a_state_starting_as_a_constant_and_one_never_read_after() {
    let mut r = rng(304);
    let (x, w) = (random(&mut r, N), random(&mut r, N));
    autodiff::check!(constant_start, &x, &w);
    let ((_, (dx, dw)), (_, (px, pw))) = (constant_start_grad(&x, &w), constant_start_bf16_grad(&x, &w));
    rounded(&px, &dx);
    rounded(&pw, &dw);
    let (_, full) = held_by_forward!(constant_start_forward(&x, &w));
    let (_, bf16) = held_by_forward!(constant_start_bf16_forward(&x, &w));
    holds_less(bf16, full);
}

/// The initial value is also read by the body: the first iteration's state comes from it,
/// and its gradient gathers both contributions.
#[differentiate]
#[differentiate(residuals = "bf16", name = reads_its_start_bf16)]
fn reads_its_start(x: &Array1<f64>) -> f64 {
    let mut h = x.to_owned();
    for _ in 0..4 {
        h = (&h * x).sin() + x;
    }
    (&h * &h).sum()
}

#[test]
fn an_initial_value_the_body_also_reads() {
    let x = random(&mut rng(305), N);
    autodiff::check!(reads_its_start, &x);
    let ((_, (dx,)), (_, (px,))) = (reads_its_start_grad(&x), reads_its_start_bf16_grad(&x));
    rounded(&px, &dx);
    let (_, full) = held_by_forward!(reads_its_start_forward(&x));
    let (_, bf16) = held_by_forward!(reads_its_start_bf16_forward(&x));
    holds_less(bf16, full);
}

#[differentiate]
#[differentiate(residuals = "bf16", name = maybe_empty_bf16)]
fn maybe_empty(x: &Array1<f64>, w: &Array1<f64>, steps: usize) -> f64 {
    let mut h = x.exp();
    for _ in 0..steps {
        h = (&h * w).sin();
    }
    h.sum()
}

/// No iteration: the output is the initial value, `exp`'s output, which `exp`'s rule reads
/// rounded (kept in 16 bits for the loop's first iteration, which did not run), and `w` gets
/// no gradient. One iteration, the first and the last at once, leaves both its states to the
/// code around the loop, which keeps them packed; more, and the states between are packed by
/// the loop.
#[test]
fn zero_one_and_several_iterations() {
    let mut r = rng(306);
    let (x, w) = (random(&mut r, N), random(&mut r, N));
    autodiff::check!(maybe_empty, &x, &w, 0);
    let ((_, (dx, dw)), (_, (px, pw))) = (maybe_empty_grad(&x, &w, 0), maybe_empty_bf16_grad(&x, &w, 0));
    rounded(&px, &dx);
    assert!(
        dw.iter().chain(&pw).all(|&g| g == 0.0),
        "no iteration, no gradient for w"
    );
    for steps in [1, 4] {
        autodiff::check!(maybe_empty, &x, &w, steps);
        let ((_, (dx, dw)), (_, (px, pw))) = (maybe_empty_grad(&x, &w, steps), maybe_empty_bf16_grad(&x, &w, steps));
        rounded(&px, &dx);
        rounded(&pw, &dw);
    }
    let (_, full) = held_by_forward!(maybe_empty_forward(&x, &w, 4));
    let (_, bf16) = held_by_forward!(maybe_empty_bf16_forward(&x, &w, 4));
    holds_less(bf16, full);
}
