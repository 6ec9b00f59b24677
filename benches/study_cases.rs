//! Regression tracking for the study's cases at reduced scale: backward
//! alone, static (`#[differentiate]`'s generated backward half on a prepared
//! context) vs tape (`Tape::backward` on a freshly recorded graph), gradients
//! w.r.t. every input. The full study is `cargo run --release -p autodiff-study`.
//!
//! The case functions are the study's own (`study/src/cases.rs`, included, not copied).

use std::time::{Duration, Instant};

use autodiff::prelude::*;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

#[allow(dead_code)]
#[path = "../study/src/cases.rs"]
mod cases;

use cases::*;

/// The scale of the batch (and conv2d spatial) sizes: small enough for CI-sized runs.
const SCALE: f64 = 0.25;

/// Times `iters` backward passes, each on a context (or graph) prepared untimed.
macro_rules! static_backward {
    ($forward:ident, $backward:ident, ($($arg:ident),*)) => {
        move |iters: u64| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (_, ctx) = $forward($($arg),*);
                let start = Instant::now();
                let grads = $backward(ctx, 1.0f32);
                total += start.elapsed();
                drop(std::hint::black_box(grads));
            }
            total
        }
    };
}

macro_rules! tape_backward {
    ($on_tape:ident, ($($arg:ident),*)) => {
        move |iters: u64| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let tape = Tape::<f32>::new();
                $(let $arg = tape.param($arg);)*
                let y = $on_tape($(&$arg),*);
                let start = Instant::now();
                let grads = tape.backward(&y);
                total += start.elapsed();
                drop(std::hint::black_box(grads));
            }
            total
        }
    };
}

fn study_cases(c: &mut Criterion) {
    let mut group = c.benchmark_group("study_backward");
    group.sample_size(20);
    for case in Case::ALL {
        let inputs: Inputs<f32> = Inputs::random(Shapes::published(case, SCALE), 2024).cast();
        match &inputs {
            Inputs::SimpleQuadratic { x } => {
                group.bench_function(BenchmarkId::new("static", case.name()), |b| {
                    b.iter_custom(static_backward!(
                        simple_quadratic_forward,
                        simple_quadratic_backward,
                        (x)
                    ))
                });
                group.bench_function(BenchmarkId::new("tape", case.name()), |b| {
                    b.iter_custom(tape_backward!(simple_quadratic_on_tape, (x)))
                });
            }
            Inputs::SmallMlp { x, w1, b1, w2, b2 } => {
                group.bench_function(BenchmarkId::new("static", case.name()), |b| {
                    b.iter_custom(static_backward!(
                        small_mlp_forward,
                        small_mlp_backward,
                        (x, w1, b1, w2, b2)
                    ))
                });
                group.bench_function(BenchmarkId::new("tape", case.name()), |b| {
                    b.iter_custom(tape_backward!(small_mlp_on_tape, (x, w1, b1, w2, b2)))
                });
            }
            Inputs::MatmulChain { a, b: bm, c: cm, d } => {
                group.bench_function(BenchmarkId::new("static", case.name()), |bench| {
                    bench.iter_custom(static_backward!(
                        matmul_chain_forward,
                        matmul_chain_backward,
                        (a, bm, cm, d)
                    ))
                });
                group.bench_function(BenchmarkId::new("tape", case.name()), |bench| {
                    bench.iter_custom(tape_backward!(matmul_chain_on_tape, (a, bm, cm, d)))
                });
            }
            Inputs::Conv2d {
                x,
                w,
                bias,
                gamma,
                beta,
            } => {
                group.bench_function(BenchmarkId::new("static", case.name()), |b| {
                    b.iter_custom(static_backward!(
                        conv2d_block_forward,
                        conv2d_block_backward,
                        (x, w, bias, gamma, beta)
                    ))
                });
                group.bench_function(BenchmarkId::new("tape", case.name()), |b| {
                    b.iter_custom(tape_backward!(conv2d_block_on_tape, (x, w, bias, gamma, beta)))
                });
            }
            Inputs::Attention {
                xs,
                wq,
                wk,
                wv,
                wo,
                targets,
            } => {
                group.bench_function(BenchmarkId::new("static", case.name()), |b| {
                    b.iter_custom(static_backward!(
                        attention_forward,
                        attention_backward,
                        (xs, wq, wk, wv, wo, targets)
                    ))
                });
                group.bench_function(BenchmarkId::new("tape", case.name()), |b| {
                    b.iter_custom(move |iters: u64| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let tape = Tape::<f32>::new();
                            let xs: Vec<_> = xs.iter().map(|x| tape.param(x)).collect();
                            let targets: Vec<_> = targets.iter().map(|t| tape.constant(t)).collect();
                            let (wq, wk, wv, wo) = (tape.param(wq), tape.param(wk), tape.param(wv), tape.param(wo));
                            let y = attention_on_tape(&xs, &wq, &wk, &wv, &wo, &targets);
                            let start = Instant::now();
                            let grads = tape.backward(&y);
                            total += start.elapsed();
                            drop(std::hint::black_box(grads));
                        }
                        total
                    })
                });
            }
            Inputs::Rnn { h0, w, u, xs, target } => {
                group.bench_function(BenchmarkId::new("static", case.name()), |b| {
                    b.iter_custom(static_backward!(rnn_forward, rnn_backward, (h0, w, u, xs, target)))
                });
                group.bench_function(BenchmarkId::new("tape", case.name()), |b| {
                    b.iter_custom(move |iters: u64| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let tape = Tape::<f32>::new();
                            let xs: Vec<_> = xs.iter().map(|x| tape.param(x)).collect();
                            let (h0, w, u, target) =
                                (tape.param(h0), tape.param(w), tape.param(u), tape.constant(target));
                            let y = rnn_on_tape(&h0, &w, &u, &xs, &target);
                            let start = Instant::now();
                            let grads = tape.backward(&y);
                            total += start.elapsed();
                            drop(std::hint::black_box(grads));
                        }
                        total
                    })
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, study_cases);
criterion_main!(benches);
