//! GEMM backends at the study's shapes: the `gemm` crate against ndarray's default
//! (`matrixmultiply`), single-threaded, f32 and f64.
//!
//! Throughput is reported as elements/s with one "element" per floating-point
//! operation (`2·m·n·k` per product), so criterion's `Gelem/s` reads as GFLOP/s.
//! Run: `cargo bench -p autodiff-runtime --bench gemm`.
//!
//! `cargo bench -p autodiff-runtime --bench gemm -- serve` is the Rust half of the GFLOP/s
//! table against MKL and OpenBLAS (`benches/pytorch/kernels_vs_pytorch.py gemm`, whose
//! module doc has the command and the table): it reads requests `TYPE M K N FORM CALLS
//! BATCH [BACKEND]` from stdin, one a line (TYPE `f32` or `f64`; FORM `nn` for `a·b`, `tn` for `aᵀ·b`
//! with `a` stored k×m, `nt` for `a·bᵀ` with `b` stored n×k, as the backward of a dense
//! layer uses them; BACKEND `auto` (the default: [`gemm()`]'s own choice), `gemm` or
//! `matrixmultiply`), times `CALLS` batches of `BATCH` products through [`gemm()`] on one
//! thread (whatever [`set_num_threads`] last said; the script asks for 1) and answers each
//! request with one JSON line `{"seconds": [..]}` of seconds per product.

use autodiff_runtime::kernels::gemm::{gemm, gemm_with_backend, set_num_threads, Backend};
use autodiff_runtime::Float;
use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use ndarray::Array2;
use std::time::Duration;

/// (name, m, k, n) for `m×k · k×n`.
const SHAPES: [(&str, usize, usize, usize); 6] = [
    ("32x784x128", 32, 784, 128),
    ("64x512x128", 64, 512, 128),
    ("64x128x256", 64, 128, 256),
    ("256x512x128", 256, 512, 128),
    ("conv_im2col_64x576x25088", 64, 576, 25088),
    // What conv2d actually runs at that shape: one sample's im2col product (see conv.rs).
    ("conv_per_sample_64x576x3136", 64, 576, 3136),
];

fn bench_type<F: Float>(c: &mut Criterion) {
    set_num_threads(1);
    for &(name, m, k, n) in &SHAPES {
        let mut group = c.benchmark_group(format!("gemm_{}_{}", F::NAME, name));
        group.throughput(Throughput::Elements((2 * m * n * k) as u64));
        if m * n * k > 100_000_000 {
            // The im2col product takes tens of milliseconds: fewer samples keep the run short.
            group.sample_size(10).measurement_time(Duration::from_secs(4));
        } else {
            group.sample_size(30).measurement_time(Duration::from_secs(2));
        }
        let a = Array2::from_shape_fn((m, k), |(i, j)| F::of(((i * 7 + j * 3) % 11) as f64 * 0.1 - 0.5));
        let b = Array2::from_shape_fn((k, n), |(i, j)| F::of(((i * 5 + j) % 13) as f64 * 0.1 - 0.6));
        let mut out = Array2::<F>::zeros((m, n));
        for (label, backend) in [("gemm", Backend::Gemm), ("matrixmultiply", Backend::MatrixMultiply)] {
            group.bench_function(BenchmarkId::from_parameter(label), |bencher| {
                bencher.iter(|| {
                    gemm_with_backend(backend, F::one(), a.view(), b.view(), F::zero(), out.view_mut());
                })
            });
        }
        group.finish();
    }
}

/// The whole conv2d kernels at the study's shape (x 8×64×56×56, w 64×64×3×3, stride 1,
/// padding 1), f32, counted as the 2·O·K·N·L flops of their GEMM so that the gap to
/// the bare GEMM figure above is the cost of im2col/col2im and the copies.
fn bench_conv(c: &mut Criterion) {
    use autodiff_runtime::kernels::conv::{conv2d, conv2d_grad_input, conv2d_grad_weight};
    use ndarray::{Array1, Array4};
    set_num_threads(1);
    let x = Array4::from_shape_fn((8, 64, 56, 56), |(n, ch, i, j)| {
        ((n + ch * 3 + i * 5 + j * 7) % 17) as f32 * 0.1 - 0.8
    });
    let w = Array4::from_shape_fn((64, 64, 3, 3), |(o, ch, i, j)| {
        ((o + ch * 5 + i * 3 + j) % 11) as f32 * 0.05 - 0.25
    });
    let g = Array4::from_elem((8, 64, 56, 56), 0.5f32);
    let mut group = c.benchmark_group("conv2d_f32_8x64x56x56_w64x64x3x3");
    group.throughput(Throughput::Elements(2 * 64 * 576 * 8 * 3136));
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    group.bench_function("forward", |b| b.iter(|| conv2d(&x, &w, None::<&Array1<f32>>, 1, 1)));
    group.bench_function("grad_input", |b| {
        b.iter(|| conv2d_grad_input(&g, &w, &x.raw_dim(), 1, 1))
    });
    group.bench_function("grad_weight", |b| {
        b.iter(|| conv2d_grad_weight(&g, &x, &w.raw_dim(), 1, 1))
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_type::<f32>(c);
    bench_type::<f64>(c);
    bench_conv(c);
}

/// Seconds per product of `batch` back-to-back calls of `gemm()`, `calls` times, for one
/// request of the `serve` mode.
fn serve_one<F: Float>(
    m: usize,
    k: usize,
    n: usize,
    form: &str,
    calls: usize,
    batch: usize,
    backend: Option<Backend>,
) -> Vec<f64> {
    let fill =
        |r: usize, c: usize| Array2::from_shape_fn((r, c), |(i, j)| F::of(((i * 7 + j * 3) % 11) as f64 * 0.1 - 0.5));
    let (a, b) = match form {
        "nn" => (fill(m, k), fill(k, n)),
        "tn" => (fill(k, m), fill(k, n)),
        "nt" => (fill(m, k), fill(n, k)),
        other => panic!("serve: unknown form {other:?} (nn, tn or nt)"),
    };
    let (a, b) = match form {
        "tn" => (a.t(), b.view()),
        "nt" => (a.view(), b.t()),
        _ => (a.view(), b.view()),
    };
    let mut out = Array2::<F>::zeros((m, n));
    (0..calls)
        .map(|_| {
            let start = std::time::Instant::now();
            for _ in 0..batch {
                match backend {
                    None => gemm(F::one(), a, b, F::zero(), out.view_mut()),
                    Some(backend) => gemm_with_backend(backend, F::one(), a, b, F::zero(), out.view_mut()),
                }
            }
            start.elapsed().as_secs_f64() / batch.max(1) as f64
        })
        .collect()
}

/// The `serve` mode (see the module doc): timed products on request, JSON answers.
fn serve() {
    use std::io::{BufRead, Write};
    set_num_threads(1);
    let mut stdout = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap_or_else(|e| panic!("serve: reading stdin: {e}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        let (ty, m, k, n, form, calls, batch, backend) = match words[..] {
            [ty, m, k, n, form, calls, batch] => (ty, m, k, n, form, calls, batch, "auto"),
            [ty, m, k, n, form, calls, batch, backend] => (ty, m, k, n, form, calls, batch, backend),
            _ => panic!("serve: expected `TYPE M K N FORM CALLS BATCH [BACKEND]`, got {line:?}"),
        };
        let backend = match backend {
            "auto" => None,
            "gemm" => Some(Backend::Gemm),
            "matrixmultiply" => Some(Backend::MatrixMultiply),
            other => panic!("serve: unknown backend {other:?} (auto, gemm or matrixmultiply)"),
        };
        let parse = |s: &str| s.parse::<usize>().unwrap_or_else(|e| panic!("serve: {s:?}: {e}"));
        let (m, k, n, calls, batch) = (parse(m), parse(k), parse(n), parse(calls), parse(batch));
        let seconds = match ty {
            "f32" => serve_one::<f32>(m, k, n, form, calls, batch, backend),
            "f64" => serve_one::<f64>(m, k, n, form, calls, batch, backend),
            other => panic!("serve: unknown type {other:?}"),
        };
        let seconds: Vec<String> = seconds.iter().map(|s| format!("{s:e}")).collect();
        writeln!(stdout, "{{\"seconds\": [{}]}}", seconds.join(", "))
            .and_then(|()| stdout.flush())
            .unwrap_or_else(|e| panic!("serve: writing stdout: {e}"));
    }
}

criterion_group!(gemm_benches, benches);

/// `cargo bench -p autodiff-runtime --bench gemm -- threads`: every product the study's
/// backward passes run (f32, C-order operands, in the layouts they use), timed on one and on
/// two threads in alternating rounds of 200 calls, each call after 20 µs of other work (as
/// between a backward pass's products), median µs per call over 15 rounds and the ratio.
/// What `PARALLEL_WORK` in `kernels/gemm.rs` was chosen from.
fn threads() {
    // (label, m, k, n, form): `nn` a·b, `tn` aᵀ·b with a stored k×m, `nt` a·bᵀ with b stored n×k.
    const PRODUCTS: [(&str, usize, usize, usize, &str); 12] = [
        ("rnn h·w", 32, 256, 256, "nn"),
        ("rnn hᵀ·g", 256, 32, 256, "tn"),
        ("rnn g·wᵀ", 32, 256, 256, "nt"),
        ("attention A·V", 128, 128, 256, "nn"),
        ("attention Q·Kᵀ", 128, 256, 128, "nt"),
        ("attention x·Wq", 128, 256, 256, "nn"),
        ("attention xᵀ·g", 256, 128, 256, "tn"),
        ("matmul_chain A·B", 64, 128, 256, "nn"),
        ("matmul_chain ·D", 64, 512, 128, "nn"),
        ("small_mlp x·w1", 32, 784, 128, "nn"),
        ("small_mlp xᵀ·dh", 784, 32, 128, "tn"),
        ("small_mlp dh·w1ᵀ", 32, 128, 784, "nt"),
    ];
    println!("| product | m×k·k×n | form | 1 thread (µs) | 2 threads (µs) | 1T / 2T |");
    println!("|---|---|---|---|---|---|");
    for &(label, m, k, n, form) in &PRODUCTS {
        let fill = |(i, j): (usize, usize)| ((i * 7 + j * 3) % 11) as f32 * 0.1 - 0.5;
        let a_stored = if form == "tn" {
            Array2::from_shape_fn((k, m), fill)
        } else {
            Array2::from_shape_fn((m, k), fill)
        };
        let b_stored = if form == "nt" {
            Array2::from_shape_fn((n, k), fill)
        } else {
            Array2::from_shape_fn((k, n), fill)
        };
        let a = if form == "tn" { a_stored.t() } else { a_stored.view() };
        let b = if form == "nt" { b_stored.t() } else { b_stored.view() };
        let mut out = Array2::<f32>::zeros((m, n));
        let mut rounds = [Vec::new(), Vec::new()];
        for round in 0..16 {
            for threads in [1, 2] {
                set_num_threads(threads);
                let mut times = Vec::with_capacity(200);
                for _ in 0..200 {
                    let pause = std::time::Instant::now();
                    while pause.elapsed() < Duration::from_micros(20) {
                        std::hint::spin_loop();
                    }
                    let start = std::time::Instant::now();
                    gemm(1.0, a, b, 0.0, out.view_mut());
                    times.push(start.elapsed().as_secs_f64() * 1e6);
                }
                if round > 0 {
                    rounds[threads - 1].push(median(&mut times));
                }
            }
        }
        let (one, two) = (median(&mut rounds[0]), median(&mut rounds[1]));
        println!(
            "| {label} | {m}×{k}·{k}×{n} | {form} | {one:.1} | {two:.1} | {:.2}× |",
            one / two
        );
    }
    set_num_threads(1);
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "serve") {
        serve();
        return;
    }
    if std::env::args().any(|a| a == "threads") {
        threads();
        return;
    }
    gemm_benches();
    Criterion::default().configure_from_args().final_summary();
}
