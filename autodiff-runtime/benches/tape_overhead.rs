//! The tape's per-node overhead: a chain of `depth` cheap elementwise ops
//! (`tanh`, which saves its output, `mul_scalar`, which saves nothing, and
//! `add_scalar`) on a
//! 16-element vector, recorded and differentiated by the tape, against the same
//! kernel calls made by hand (forward kernels, then backward kernels in reverse:
//! the floor). `(tape - floor) / depth` is the overhead per node.
//!
//! `add_scalar` (whose backward is the identity) isolates the engine's own cost.
//!
//! Benches per op and depth:
//! - `fwd_bwd/tape`, `fwd_bwd/floor`: record (or run) the forward, then backward;
//! - `bwd/tape`, `bwd/floor`: backward alone (the forward is run untimed before
//!   each iteration, and the graph is dropped untimed after it);
//! - `bwd/floor_freeing` (`tanh` only, the one chain that saves tensors): the floor's
//!   backward dropping each saved output right after its kernel read it, as the tape
//!   does to lower its peak memory. `bwd/floor` drops them untimed after the sweep, so
//!   `bwd/tape - bwd/floor` counts the tape's `free` calls as overhead, and
//!   `bwd/tape - bwd/floor_freeing` does not.
//!
//! Run: `cargo bench -p autodiff-runtime --bench tape_overhead`; with
//! `TAPE_PROBE=1` it prints a per-node table from its own timing instead.

use std::hint::black_box;
use std::time::{Duration, Instant};

use autodiff_runtime::kernels::{binary, reduce, unary};
use autodiff_runtime::tape::{Tape, Var};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ndarray::Array1;

const LEN: usize = 16;
const DEPTHS: [usize; 3] = [10, 100, 1000];
const SCALE: f64 = 0.999;

#[derive(Clone, Copy)]
enum Chain {
    Tanh,
    MulScalar,
    AddScalar,
}

impl Chain {
    fn name(self) -> &'static str {
        match self {
            Chain::Tanh => "tanh",
            Chain::MulScalar => "mul_scalar",
            Chain::AddScalar => "add_scalar",
        }
    }

    /// Records the chain and its sum on `tape`.
    fn record<'t, 'a>(self, tape: &'t Tape<'a, f64>, input: &'a Array1<f64>, depth: usize) -> Var<'t, 'a, f64> {
        let mut y = tape.param(input);
        for _ in 0..depth {
            y = match self {
                Chain::Tanh => y.tanh(),
                Chain::MulScalar => y.mul_scalar(SCALE),
                Chain::AddScalar => y.add_scalar(SCALE),
            };
        }
        y.sum()
    }

    /// The floor's forward: the kernels alone, keeping what the backward reads
    /// (each `tanh` output, moved into `saved` and read from there: no copy).
    fn floor_forward(self, input: &Array1<f64>, depth: usize) -> (f64, Vec<Array1<f64>>) {
        match self {
            Chain::Tanh => {
                let mut saved: Vec<Array1<f64>> = Vec::with_capacity(depth);
                for _ in 0..depth {
                    let next = unary::tanh(saved.last().unwrap_or(input));
                    saved.push(next);
                }
                (reduce::sum(saved.last().unwrap_or(input)), saved)
            }
            Chain::MulScalar | Chain::AddScalar => {
                let mut y = binary::mul_scalar(input, SCALE);
                for _ in 1..depth {
                    y = binary::mul_scalar(&y, SCALE);
                }
                (reduce::sum(&y), Vec::new())
            }
        }
    }

    /// [`Chain::floor_backward`], dropping each saved tensor right after its kernel read it.
    fn floor_backward_freeing(self, depth: usize, mut saved: Vec<Array1<f64>>) -> Array1<f64> {
        let mut g = reduce::sum_grad(1.0, &ndarray::Ix1(LEN));
        for _ in 0..depth {
            g = match self {
                Chain::Tanh => {
                    let y = saved.pop().unwrap_or_else(|| unreachable!("one saved output per tanh"));
                    unary::tanh_grad(g, &y)
                }
                Chain::MulScalar => binary::scale_grad(g, SCALE),
                Chain::AddScalar => g,
            };
        }
        g
    }

    /// The floor's backward: the backward kernels in reverse, reusing `g`'s buffer.
    fn floor_backward(self, depth: usize, saved: &[Array1<f64>]) -> Array1<f64> {
        let mut g = reduce::sum_grad(1.0, &ndarray::Ix1(LEN));
        for i in (0..depth).rev() {
            g = match self {
                Chain::Tanh => unary::tanh_grad(g, &saved[i]),
                Chain::MulScalar => binary::scale_grad(g, SCALE),
                Chain::AddScalar => g,
            };
        }
        g
    }
}

/// `TAPE_PROBE=1`: instead of criterion, time every repetition with `Instant` and
/// print median and minimum per-node overhead (the minimum is robust when other
/// processes share the machine).
fn probe_min() {
    let input = Array1::from_shape_fn(LEN, |i| (i as f64 * 0.3).sin());
    for chain in [Chain::Tanh, Chain::MulScalar, Chain::AddScalar] {
        for depth in DEPTHS {
            let reps = 300_000 / depth;
            let mut tape_t = Vec::new();
            let mut floor_t = Vec::new();
            let mut tape_fb = Vec::new();
            let mut floor_fb = Vec::new();
            let mut freeing_t = Vec::new();
            for _ in 0..reps {
                let t0 = Instant::now();
                let tape = Tape::new();
                let loss = chain.record(&tape, &input, depth);
                let start = Instant::now();
                let grads = tape.backward(&loss);
                let end = Instant::now();
                tape_t.push((end - start).as_nanos() as f64);
                tape_fb.push((end - t0).as_nanos() as f64);
                black_box(grads);
                let t0 = Instant::now();
                let (v, saved) = chain.floor_forward(&input, depth);
                black_box(v);
                let start = Instant::now();
                let g = chain.floor_backward(depth, &saved);
                let end = Instant::now();
                floor_t.push((end - start).as_nanos() as f64);
                floor_fb.push((end - t0).as_nanos() as f64);
                black_box(g);
                drop(saved);
                let (_, saved) = chain.floor_forward(&input, depth);
                let start = Instant::now();
                let g = chain.floor_backward_freeing(depth, saved);
                freeing_t.push(start.elapsed().as_nanos() as f64);
                black_box(g);
            }
            let stat = |v: &mut Vec<f64>| {
                v.sort_by(|a, b| a.partial_cmp(b).unwrap());
                (v[0], v[v.len() / 2])
            };
            // Tape and floor ran back to back in each repetition: the median of their
            // per-repetition differences is the figure load drift disturbs least.
            let mut paired_bwd: Vec<f64> = tape_t.iter().zip(&floor_t).map(|(t, f)| t - f).collect();
            let mut paired_fb: Vec<f64> = tape_fb.iter().zip(&floor_fb).map(|(t, f)| t - f).collect();
            let (_, paired_bwd) = stat(&mut paired_bwd);
            let (_, paired_fb) = stat(&mut paired_fb);
            let (tb_min, tb_med) = stat(&mut tape_t);
            let (fb_min, fb_med) = stat(&mut floor_t);
            let (tf_min, tf_med) = stat(&mut tape_fb);
            let (ff_min, ff_med) = stat(&mut floor_fb);
            let (fr_min, fr_med) = stat(&mut freeing_t);
            let d = depth as f64;
            println!(
                "{:>10} depth {depth:>5}: paired median overhead per node: bwd {:>6.1} ns, fwd+bwd {:>6.1} ns",
                chain.name(),
                paired_bwd / d,
                paired_fb / d
            );
            println!(
                "{:>10} depth {depth:>5}: bwd tape {tb_med:>9.0} ns (min {tb_min:>9.0}) floor {fb_med:>8.0} (min {fb_min:>8.0}) => {:>6.1} ns/node (min-based {:>6.1}); vs the freeing floor {fr_med:>8.0} (min {fr_min:>8.0}) => {:>6.1} ns/node (min-based {:>6.1}); fwd+bwd tape {tf_med:>9.0} floor {ff_med:>9.0} => {:>6.1} ns/node (min-based {:>6.1})",
                chain.name(),
                (tb_med - fb_med) / d,
                (tb_min - fb_min) / d,
                (tb_med - fr_med) / d,
                (tb_min - fr_min) / d,
                (tf_med - ff_med) / d,
                (tf_min - ff_min) / d
            );
        }
    }
}

/// Runs `step` `iters` times, each on the previous result, and returns the time taken.
fn chain_through<G>(iters: u64, mut g: G, mut step: impl FnMut(G) -> G) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        g = step(black_box(g));
    }
    let elapsed = start.elapsed();
    black_box(g);
    elapsed
}

fn bench(c: &mut Criterion) {
    if std::env::var_os("TAPE_PROBE").is_some() {
        probe_min();
        return;
    }
    let input = Array1::from_shape_fn(LEN, |i| (i as f64 * 0.3).sin());
    // One kernel on a fixed-rank and on a dynamic-rank array: the gap that `kernels/flat.rs` closes.
    {
        let y1 = unary::tanh(&input);
        let yd = y1.clone().into_dyn();
        c.bench_function("kernel_rank/tanh_grad_ix1", |b| {
            b.iter_batched(
                || Array1::<f64>::ones(LEN),
                |g| unary::tanh_grad(g, &y1),
                criterion::BatchSize::SmallInput,
            )
        });
        c.bench_function("kernel_rank/tanh_grad_dyn", |b| {
            b.iter_batched(
                || ndarray::ArrayD::<f64>::ones(vec![LEN]),
                |g| unary::tanh_grad(g, &yd.view()),
                criterion::BatchSize::SmallInput,
            )
        });
        c.bench_function("kernel_rank/scale_grad_ix1", |b| {
            b.iter_batched(
                || Array1::<f64>::ones(LEN),
                |g| binary::scale_grad(g, 2.0),
                criterion::BatchSize::SmallInput,
            )
        });
        c.bench_function("kernel_rank/scale_grad_dyn", |b| {
            b.iter_batched(
                || ndarray::ArrayD::<f64>::ones(vec![LEN]),
                |g| binary::scale_grad(g, 2.0),
                criterion::BatchSize::SmallInput,
            )
        });
    }
    // The same backward kernels with nothing else timed: the benches above also time
    // criterion moving each adjoint in and out of its batch (112 bytes for an `ArrayD`, 48
    // for an `Array1`), which is no part of the kernel. Here one adjoint is moved through
    // the kernel again and again. Its factors are exactly 1 (`tanh(0) = 0`, scale 1), so
    // that millions of calls do not underflow it into subnormals, which are slow to
    // multiply; any other normal value costs the same.
    {
        let zeros1 = Array1::<f64>::zeros(LEN);
        let zeros_dyn = zeros1.clone().into_dyn();
        let mut group = c.benchmark_group("kernel_rank/kernel_only");
        group
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        group.bench_function("tanh_grad_ix1", |b| {
            b.iter_custom(|iters| chain_through(iters, Array1::ones(LEN), |g| unary::tanh_grad(g, &zeros1)))
        });
        group.bench_function("tanh_grad_dyn", |b| {
            b.iter_custom(|iters| {
                chain_through(iters, ndarray::ArrayD::ones(vec![LEN]), |g| {
                    unary::tanh_grad(g, &zeros_dyn)
                })
            })
        });
        group.bench_function("scale_grad_ix1", |b| {
            b.iter_custom(|iters| chain_through(iters, Array1::ones(LEN), |g| binary::scale_grad(g, 1.0)))
        });
        group.bench_function("scale_grad_dyn", |b| {
            b.iter_custom(|iters| {
                chain_through(iters, ndarray::ArrayD::ones(vec![LEN]), |g| binary::scale_grad(g, 1.0))
            })
        });
        // Forward kernels allocate their result, as the tape's and the floor's forward do.
        group.bench_function("mul_scalar_ix1", |b| {
            b.iter(|| binary::mul_scalar(black_box(&input), SCALE))
        });
        let input_dyn = input.clone().into_dyn();
        group.bench_function("mul_scalar_dyn", |b| {
            b.iter(|| binary::mul_scalar(black_box(&input_dyn), SCALE))
        });
        group.finish();
    }
    for chain in [Chain::Tanh, Chain::MulScalar, Chain::AddScalar] {
        let mut group = c.benchmark_group(format!("tape_overhead/{}", chain.name()));
        group
            .sample_size(30)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        for depth in DEPTHS {
            group.bench_function(BenchmarkId::new("fwd_bwd/tape", depth), |b| {
                b.iter(|| {
                    let tape = Tape::new();
                    let loss = chain.record(&tape, &input, depth);
                    let grads = tape.backward(&loss);
                    black_box(grads);
                })
            });
            group.bench_function(BenchmarkId::new("fwd_bwd/floor", depth), |b| {
                b.iter(|| {
                    let (value, saved) = chain.floor_forward(&input, depth);
                    black_box(value);
                    black_box(chain.floor_backward(depth, &saved))
                })
            });
            group.bench_function(BenchmarkId::new("bwd/tape", depth), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let tape = Tape::new();
                        let loss = chain.record(&tape, &input, depth);
                        let start = Instant::now();
                        let grads = tape.backward(&loss);
                        total += start.elapsed();
                        black_box(grads);
                    }
                    total
                })
            });
            group.bench_function(BenchmarkId::new("bwd/floor", depth), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let (_, saved) = chain.floor_forward(&input, depth);
                        let start = Instant::now();
                        let g = chain.floor_backward(depth, &saved);
                        total += start.elapsed();
                        black_box(g);
                        drop(saved);
                    }
                    total
                })
            });
            if matches!(chain, Chain::Tanh) {
                group.bench_function(BenchmarkId::new("bwd/floor_freeing", depth), |b| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let (_, saved) = chain.floor_forward(&input, depth);
                            let start = Instant::now();
                            let g = chain.floor_backward_freeing(depth, saved);
                            total += start.elapsed();
                            black_box(g);
                        }
                        total
                    })
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
