//! `for` loops and slice parameters, each function checked three ways (static code, tape,
//! finite differences in f64) in its own test.

mod common;

use autodiff::prelude::*;
use common::{random, rng};

fn randoms(seed: u64, count: usize, shape: (usize, usize)) -> Vec<Array2<f64>> {
    let mut r = rng(seed);
    (0..count).map(|_| random(&mut r, shape)).collect()
}

#[differentiate]
fn tanh_chain(x: &Array1<f64>, w: f64) -> f64 {
    let mut h = x.to_owned();
    for _ in 0..6 {
        h = (&h * w).tanh();
    }
    h.sum()
}

#[test]
fn chain_with_a_captured_float() {
    autodiff::check!(tanh_chain, &random(&mut rng(60), 5), 0.9);
}

#[differentiate]
fn rnn(h0: &Array2<f64>, w: &Array2<f64>, u: &Array2<f64>, xs: &[Array2<f64>]) -> f64 {
    let mut h = h0.to_owned();
    for t in 0..xs.len() {
        h = (h.dot(w) + xs[t].dot(u)).tanh();
    }
    h.sum()
}

#[test]
fn recurrent_network_over_a_slice_of_inputs() {
    let mut r = rng(61);
    let (h0, w, u) = (random(&mut r, (2, 3)), random(&mut r, (3, 3)), random(&mut r, (4, 3)));
    autodiff::check!(rnn, &h0, &w, &u, &randoms(62, 5, (2, 4)));
}

#[differentiate]
fn layers(x: &Array2<f64>, ws: &[Array2<f64>], bs: &[Array1<f64>]) -> f64 {
    let mut h = x.to_owned();
    for l in 0..ws.len() {
        h = (h.dot(&ws[l]) + &bs[l]).tanh();
    }
    (&h * &h).mean().unwrap()
}

#[test]
fn layers_with_weights_in_slices() {
    let mut r = rng(63);
    let bs: Vec<Array1<f64>> = (0..3).map(|_| random(&mut r, 3)).collect();
    autodiff::check!(layers, &random(&mut r, (4, 3)), &randoms(64, 3, (3, 3)), &bs);
}

#[differentiate]
fn float_accumulator(xs: &[Array2<f64>], w: &Array2<f64>) -> f64 {
    let mut total = 0.0;
    for x in xs {
        total += x.dot(w).sin().sum();
    }
    total
}

#[test]
fn accumulating_into_a_float_that_starts_as_a_constant() {
    let w = random(&mut rng(65), (3, 2));
    autodiff::check!(float_accumulator, &randoms(66, 4, (2, 3)), &w);
}

#[differentiate]
fn array_accumulator(x: &Array1<f64>, s: f64) -> f64 {
    let mut acc = Array1::zeros(x.len());
    let mut scale = s;
    for _ in 0..3 {
        acc = acc + x.mapv(|v| (v * scale).exp());
        scale *= 0.5;
    }
    acc.sum()
}

#[test]
fn accumulating_into_a_constant_array_with_a_closure_capturing_a_carried_float() {
    autodiff::check!(array_accumulator, &random(&mut rng(67), 4), 0.7);
}

#[differentiate]
fn nested(x: &Array1<f64>, xs: &[Array1<f64>], w: f64) -> f64 {
    let mut h = x.to_owned();
    for i in 0..2 {
        for j in 0..xs.len() {
            h = &h * w + &xs[j] * (i as f64 + 1.0);
        }
        h = h.tanh();
    }
    h.sum()
}

#[test]
fn nested_loops_reading_both_indices() {
    let mut r = rng(68);
    let xs: Vec<Array1<f64>> = (0..3).map(|_| random(&mut r, 4)).collect();
    autodiff::check!(nested, &random(&mut r, 4), &xs, 0.8);
}

#[differentiate]
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
fn carried_variables_that_trade_values() {
    let mut r = rng(69);
    autodiff::check!(swapped, &random(&mut r, 3), &random(&mut r, 3));
}

#[differentiate(wrt(w))]
fn only_weights(x: &Array2<f64>, w: &Array2<f64>, steps: usize) -> f64 {
    let mut h = x.to_owned();
    for _ in 0..steps {
        h = h.dot(w).sigmoid();
    }
    h.sum()
}

#[test]
fn a_loop_differentiated_for_its_weights_only() {
    let mut r = rng(70);
    autodiff::check!(only_weights, &random(&mut r, (2, 3)), &random(&mut r, (3, 3)), 4);
}

#[differentiate]
fn maybe_empty(x: &Array1<f64>, w: &Array1<f64>, steps: usize) -> f64 {
    let mut h = x.exp();
    for _ in 0..steps {
        h = &h * w;
    }
    h.sum()
}

#[test]
fn a_loop_of_zero_iterations_passes_its_initial_value_through() {
    let mut r = rng(71);
    let (x, w) = (random(&mut r, 3), random(&mut r, 3));
    autodiff::check!(maybe_empty, &x, &w, 0);
    let (_, (_, dw)) = maybe_empty_grad(&x, &w, 0);
    assert!(dw.iter().all(|&g| g == 0.0), "no iteration, no gradient for w: {dw}");
    autodiff::check!(maybe_empty, &x, &w, 3);
}

#[differentiate]
fn side_variable(x: &Array1<f64>, w: f64) -> f64 {
    let mut a = x.to_owned();
    let mut unused = x.to_owned();
    let mut b = 0.0;
    for i in 1..4 {
        unused = unused.exp();
        a = &a * w;
        b += a.sum() / i as f64;
    }
    b
}

#[test]
fn a_carried_variable_read_only_through_another() {
    autodiff::check!(side_variable, &random(&mut rng(72), 4), 0.6);
}

#[differentiate]
fn generic_loop<F: Float>(x: &Array1<F>, ws: &[Array1<F>]) -> F {
    let mut h = x.to_owned();
    for k in 0..ws.len() {
        h = (&h * &ws[k]).softplus();
    }
    h.sum()
}

#[test]
fn a_generic_loop_in_f32_and_f64() {
    let mut r = rng(73);
    let x = random(&mut r, 4);
    let ws: Vec<Array1<f64>> = (0..3).map(|_| random(&mut r, 4)).collect();
    autodiff::check!(generic_loop, &x, &ws);
    let ws32: Vec<Array1<f32>> = ws.iter().map(|w| w.mapv(|v| v as f32)).collect();
    autodiff::check!(generic_loop, &x.mapv(|v| v as f32), &ws32);
}

#[differentiate]
fn slice_without_loop(x: &Array1<f64>, ws: &[Array1<f64>]) -> f64 {
    (&ws[0] * x).sum() + ws[1].dot(x).tanh() + ws[0].exp().sum()
}

#[test]
fn slice_elements_at_constant_indices() {
    let mut r = rng(74);
    let ws: Vec<Array1<f64>> = (0..3).map(|_| random(&mut r, 4)).collect();
    autodiff::check!(slice_without_loop, &random(&mut r, 4), &ws);
}

#[differentiate]
fn reduced_carried(x: &Array2<f64>, w: &Array2<f64>) -> f64 {
    let mut h = x.to_owned();
    let mut norm = 1.0;
    for _ in 0..x.ncols() {
        h = h.dot(w);
        norm += (&h * &h).sum();
        h = &h / norm;
    }
    h.sum() * norm
}

#[test]
fn a_float_and_an_array_carried_together() {
    let mut r = rng(75);
    autodiff::check!(reduced_carried, &random(&mut r, (2, 3)), &random(&mut r, (3, 3)));
}

#[test]
fn the_context_holds_each_iteration_and_frees_nothing_it_needs() {
    let mut r = rng(76);
    let (h0, w, u) = (random(&mut r, (2, 3)), random(&mut r, (3, 3)), random(&mut r, (4, 3)));
    let xs = randoms(77, 5, (2, 4));
    let (_, ctx) = rnn_forward(&h0, &w, &u, &xs);
    // Each iteration keeps its input state and its output (tanh's backward reads it), 2×3
    // each; one iteration's output is the next one's input, one buffer: 6 states, each with
    // its reference counts, and the list of the 5 iterations' contexts (a few words each;
    // `tests/memory_plans.rs` checks the total against the allocator).
    use std::mem::size_of;
    let states = 6 * (6 * size_of::<f64>() + 2 * size_of::<usize>() + size_of::<Vec<f64>>());
    let list = ctx.held_bytes().checked_sub(states).expect("every state counted");
    assert!(list > 0 && list <= 5 * 256, "{list} B for the list of 5 contexts");
}

#[differentiate]
fn enumerated(xs: &[Array1<f64>], w: &Array1<f64>) -> f64 {
    let mut h = w.to_owned();
    for (i, x) in xs.iter().enumerate() {
        h = (&h * x).sin() * (i as f64 + 0.5);
    }
    let mut total = 0.0;
    for _ in xs.iter() {
        total += h.sum();
    }
    total
}

#[test]
fn loops_over_the_elements_of_a_slice() {
    let mut r = rng(78);
    let xs: Vec<Array1<f64>> = (0..3).map(|_| random(&mut r, 4)).collect();
    autodiff::check!(enumerated, &xs, &random(&mut r, 4));
}

#[differentiate]
fn reset_each_step(x: &Array1<f64>, w: f64) -> f64 {
    let mut s = x.sum();
    let mut total = 0.0;
    for _ in 0..3 {
        total += s * w;
        s = 2.0;
    }
    total
}

#[test]
fn a_carried_variable_reset_to_a_constant() {
    autodiff::check!(reset_each_step, &random(&mut rng(79), 3), 0.4);
}

// Regressions found by random-functions (each was a compile error or a wrong gradient).

#[differentiate]
fn initial_value_read_in_the_body(x: &Array1<f64>, s: f64) -> f64 {
    let mut h = x.to_owned();
    let mut t = s;
    for _ in 0..2 {
        h = &h * x;
        t *= s;
    }
    h.sum() + t
}

#[test]
fn a_carried_variable_starting_as_a_value_the_body_reads() {
    autodiff::check!(initial_value_read_in_the_body, &random(&mut rng(110), 3), 0.7);
}

#[differentiate]
fn inner_loop_reads_outer_state(x: &Array1<f64>) -> f64 {
    let mut h1 = x.to_owned();
    let mut h2 = x.to_owned();
    for _ in 0..2 {
        h1 = h1.sin();
        for _ in 0..2 {
            h2 = &h2 * &h1;
        }
    }
    h2.sum()
}

#[test]
fn a_nested_loop_reading_a_state_its_enclosing_loop_carries() {
    autodiff::check!(inner_loop_reads_outer_state, &random(&mut rng(111), 3));
}

/// A generic function whose float accumulator starts as a value of its own float type
/// (`F::zero()`), summing a loss over a slice of sequences.
#[differentiate]
fn summed_losses<F: Float>(xs: &[Array2<F>], w: &Array2<F>, targets: &[Array2<F>]) -> F {
    let mut loss = F::zero();
    for t in 0..xs.len() {
        loss += mse(&xs[t].dot(w).tanh(), &targets[t]);
    }
    loss
}

#[test]
fn generic_accumulator_starting_at_the_float_types_zero() {
    let (xs, targets) = (randoms(40, 3, (2, 3)), randoms(41, 3, (2, 4)));
    autodiff::check!(summed_losses, &xs, &random(&mut rng(42), (3, 4)), &targets);
    let (xs32, targets32): (Vec<Array2<f32>>, Vec<Array2<f32>>) = (
        xs.iter().map(|x| x.mapv(|v| v as f32)).collect(),
        targets.iter().map(|x| x.mapv(|v| v as f32)).collect(),
    );
    autodiff::check!(
        summed_losses,
        &xs32,
        &random(&mut rng(42), (3, 4)).mapv(|v| v as f32),
        &targets32
    );
}

/// Multi-head self-attention: the heads' weights in slices, a loop over heads summing each
/// head's projected output (the same as concatenating the heads, then projecting).
#[differentiate(wrt(wq, wk, wv, wo))]
fn multi_head_attention(
    x: &Array2<f64>,
    wq: &[Array2<f64>],
    wk: &[Array2<f64>],
    wv: &[Array2<f64>],
    wo: &[Array2<f64>],
    target: &Array2<f64>,
) -> f64 {
    let mut out: Array2<f64> = Array2::zeros((x.nrows(), target.ncols()));
    for h in 0..wq.len() {
        let q = x.dot(&wq[h]);
        let k = x.dot(&wk[h]);
        let v = x.dot(&wv[h]);
        let attention = softmax(&(q.dot(&k.t()) / 2.0), Axis(1));
        out = out + attention.dot(&v).dot(&wo[h]);
    }
    mse(&out, target)
}

#[test]
fn multi_head_attention_over_slices_of_head_weights() {
    let x = random(&mut rng(50), (5, 6));
    let (wq, wk, wv) = (randoms(51, 3, (6, 4)), randoms(52, 3, (6, 4)), randoms(53, 3, (6, 4)));
    let wo = randoms(54, 3, (4, 6));
    autodiff::check!(
        multi_head_attention,
        &x,
        &wq,
        &wk,
        &wv,
        &wo,
        &random(&mut rng(55), (5, 6))
    );
}
