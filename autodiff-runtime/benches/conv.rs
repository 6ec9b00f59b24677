//! Where conv2d's time goes at the study's shape (x 8×64×56×56, w 64×64×3×3, stride 1,
//! padding 1, f32): forward, grad_input and grad_weight on both paths (im2col, Winograd),
//! and the bare GEMMs of each path alone (the same products on ready buffers), so that
//! the difference is im2col/col2im or the Winograd transforms. 1 and 2 threads.
//!
//! Throughput counts the 2·O·K·N·L flops of the direct convolution (1.85 GFLOP per part)
//! for every variant, so criterion's `Gelem/s` reads as effective GFLOP/s.
//! Run: `cargo bench -p autodiff-runtime --bench conv`.
//!
//! `cargo bench -p autodiff-runtime --bench conv -- alternate` instead times the two paths
//! alternately call by call (the machine is shared and noisy, so only ratios taken in the
//! same moment are trusted), prints medians and the median per-round ratio, and the f32
//! error of both paths against im2col in f64 at this shape.
//!
//! `cargo bench -p autodiff-runtime --bench conv -- serve` is the Rust half of the
//! comparison with PyTorch (`benches/pytorch/kernels_vs_pytorch.py conv`, whose module doc
//! has the command and the table): it reads requests `PRODUCT THREADS CALLS` (PRODUCT one of
//! `forward`, `grad_input`, `grad_weight`) from stdin, one a line, times that many calls of
//! the product on `THREADS` threads at the study's shape (the default algorithm, as the
//! engines call it) and answers each with one JSON line `{"seconds": [..]}`. The script
//! alternates these requests with PyTorch's own calls, so both are measured in the same
//! moments of a shared machine.

use autodiff_runtime::kernels::conv::{
    conv2d_grad_input_with, conv2d_grad_weight_with, conv2d_with, tile_columns, ConvAlgorithm,
};
use autodiff_runtime::kernels::gemm::{gemm, set_num_threads};
use criterion::{criterion_group, Criterion, Throughput};
use ndarray::{Array1, Array2, Array4};
use std::time::{Duration, Instant};

const PATHS: [(&str, ConvAlgorithm); 2] = [("im2col", ConvAlgorithm::Im2col), ("winograd", ConvAlgorithm::Winograd)];

const N: usize = 8;
const C: usize = 64;
const O: usize = 64;
const HW: usize = 56;

fn inputs() -> (Array4<f32>, Array4<f32>, Array4<f32>) {
    let x = Array4::from_shape_fn((N, C, HW, HW), |(n, ch, i, j)| {
        ((n + ch * 3 + i * 5 + j * 7) % 17) as f32 * 0.1 - 0.8
    });
    let w = Array4::from_shape_fn((O, C, 3, 3), |(o, ch, i, j)| {
        ((o + ch * 5 + i * 3 + j) % 11) as f32 * 0.05 - 0.25
    });
    let g = Array4::from_shape_fn((N, O, HW, HW), |(n, o, i, j)| {
        ((n * 3 + o + i * 7 + j * 5) % 13) as f32 * 0.1 - 0.6
    });
    (x, w, g)
}

fn bench_profile(c: &mut Criterion) {
    let (x, w, g) = inputs();
    let k = C * 9;
    let total = N * HW * HW;
    let tile = tile_columns(k);
    let tiles = total.div_ceil(tile);
    let a_w = Array2::from_shape_fn((O, k), |(i, j)| ((i + j) % 7) as f32 * 0.1);
    let col = Array2::from_shape_fn((k, tile), |(i, j)| ((i * 3 + j) % 5) as f32 * 0.1);
    let g_tile = Array2::from_shape_fn((O, tile), |(i, j)| ((i + 2 * j) % 9) as f32 * 0.1);
    let mut out_o = Array2::<f32>::zeros((O, tile));
    let mut out_k = Array2::<f32>::zeros((k, tile));
    let mut dw = Array2::<f32>::zeros((O, k));
    for threads in [1, 2] {
        set_num_threads(threads);
        let mut group = c.benchmark_group(format!("conv2d_f32_study_{threads}t"));
        group.throughput(Throughput::Elements((2 * O * k * total) as u64));
        group.sample_size(10).measurement_time(Duration::from_secs(3));
        for (name, alg) in PATHS {
            group.bench_function(format!("forward_{name}"), |b| {
                b.iter(|| conv2d_with(alg, &x, &w, None::<&Array1<f32>>, 1, 1))
            });
            group.bench_function(format!("grad_input_{name}"), |b| {
                b.iter(|| conv2d_grad_input_with(alg, &g, &w, &x.raw_dim(), 1, 1))
            });
            group.bench_function(format!("grad_weight_{name}"), |b| {
                b.iter(|| conv2d_grad_weight_with(alg, &g, &x, &w.raw_dim(), 1, 1))
            });
        }
        // The same tile GEMMs as the im2col kernels run, alone (gemm() on `threads` threads).
        group.bench_function("gemm_only_forward", |b| {
            b.iter(|| {
                for _ in 0..tiles {
                    gemm(1.0, a_w.view(), col.view(), 0.0, out_o.view_mut());
                }
            })
        });
        group.bench_function("gemm_only_grad_input", |b| {
            b.iter(|| {
                for _ in 0..tiles {
                    gemm(1.0, a_w.t(), g_tile.view(), 0.0, out_k.view_mut());
                }
            })
        });
        group.bench_function("gemm_only_grad_weight", |b| {
            b.iter(|| {
                for _ in 0..tiles {
                    gemm(1.0, g_tile.view(), col.t(), 1.0, dw.view_mut());
                }
            })
        });
        // Winograd's GEMMs: 16 products (O×C)·(C×tiles) per block of 4 tile rows (112 tiles).
        let blocks = (N * HW / 2).div_ceil(4);
        let u = Array2::from_shape_fn((O, C), |(i, j)| ((i + j) % 7) as f32 * 0.1);
        let v = Array2::from_shape_fn((C, 112), |(i, j)| ((i * 3 + j) % 5) as f32 * 0.1);
        let mut m = Array2::<f32>::zeros((O, 112));
        group.bench_function("gemm_only_winograd", |b| {
            b.iter(|| {
                for _ in 0..blocks * 16 {
                    gemm(1.0, u.view(), v.view(), 0.0, m.view_mut());
                }
            })
        });
        group.finish();
    }
    set_num_threads(1);
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Both paths alternately, call by call: medians and the median of per-round ratios.
fn alternate() {
    let (x, w, g) = inputs();
    let flop = (2 * O * C * 9 * N * HW * HW) as f64;
    type Part<'a> = Box<dyn Fn(ConvAlgorithm) + 'a>;
    let parts: [(&str, Part); 3] = [
        (
            "forward",
            Box::new(|a| drop(conv2d_with(a, &x, &w, None::<&Array1<f32>>, 1, 1))),
        ),
        (
            "grad_input",
            Box::new(|a| drop(conv2d_grad_input_with(a, &g, &w, &x.raw_dim(), 1, 1))),
        ),
        (
            "grad_weight",
            Box::new(|a| drop(conv2d_grad_weight_with(a, &g, &x, &w.raw_dim(), 1, 1))),
        ),
    ];
    let rounds = 15;
    for threads in [1, 2] {
        set_num_threads(threads);
        for (name, run) in &parts {
            let mut times = [Vec::new(), Vec::new()];
            let mut ratios = Vec::new();
            for round in 0..=rounds {
                let mut t = [0.0; 2];
                for (i, (_, alg)) in PATHS.iter().enumerate() {
                    let start = Instant::now();
                    run(*alg);
                    t[i] = start.elapsed().as_secs_f64();
                }
                if round > 0 {
                    // Round 0 warms up.
                    times[0].push(t[0]);
                    times[1].push(t[1]);
                    ratios.push(t[0] / t[1]);
                }
            }
            let (a, b) = (median(times[0].clone()), median(times[1].clone()));
            println!(
                "{threads}t {name:<12} im2col {:6.1} ms ({:5.1} GFLOP/s)  winograd {:6.1} ms ({:5.1} GFLOP/s)  im2col/winograd median ratio {:.2}",
                a * 1e3,
                flop / a * 1e-9,
                b * 1e3,
                flop / b * 1e-9,
                median(ratios)
            );
        }
    }
    set_num_threads(1);
    accuracy(&x, &w, &g);
}

/// Largest |a - b| over the largest |b|.
fn scaled_error(a: &Array4<f64>, b: &Array4<f64>) -> f64 {
    let diff = a.iter().zip(b).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    diff / b.iter().fold(0.0, |m: f64, v| m.max(v.abs()))
}

/// f32 on both paths against im2col in f64 on the same (f32-representable) inputs.
fn accuracy(x: &Array4<f32>, w: &Array4<f32>, g: &Array4<f32>) {
    let (x64, w64, g64) = (x.mapv(f64::from), w.mapv(f64::from), g.mapv(f64::from));
    let im = ConvAlgorithm::Im2col;
    let y64 = conv2d_with(im, &x64, &w64, None::<&Array1<f64>>, 1, 1);
    let dx64 = conv2d_grad_input_with(im, &g64, &w64, &x.raw_dim(), 1, 1);
    let dw64 = conv2d_grad_weight_with(im, &g64, &x64, &w.raw_dim(), 1, 1);
    for (name, alg) in PATHS {
        let y = conv2d_with(alg, x, w, None::<&Array1<f32>>, 1, 1).mapv(f64::from);
        let dx = conv2d_grad_input_with(alg, g, w, &x.raw_dim(), 1, 1).mapv(f64::from);
        let dw = conv2d_grad_weight_with(alg, g, x, &w.raw_dim(), 1, 1).mapv(f64::from);
        println!(
            "{name} f32 vs im2col f64, max |err| / max |ref|: forward {:.1e}, grad_input {:.1e}, grad_weight {:.1e}",
            scaled_error(&y, &y64),
            scaled_error(&dx, &dx64),
            scaled_error(&dw, &dw64)
        );
    }
}

criterion_group!(conv_benches, bench_profile);

/// The `serve` mode (see the module doc): timed calls on request, JSON answers.
fn serve() {
    use autodiff_runtime::kernels::conv::{conv2d, conv2d_grad_input, conv2d_grad_weight};
    use std::io::{BufRead, Write};
    let (x, w, g) = inputs();
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    for line in stdin.lock().lines() {
        let line = line.unwrap_or_else(|e| panic!("serve: reading stdin: {e}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        let [product, threads, calls] = words[..] else {
            panic!("serve: expected `PRODUCT THREADS CALLS`, got {line:?}");
        };
        let parse = |s: &str| s.parse::<usize>().unwrap_or_else(|e| panic!("serve: {s:?}: {e}"));
        set_num_threads(parse(threads));
        let run: Box<dyn Fn()> = match product {
            "forward" => Box::new(|| drop(conv2d(&x, &w, None::<&Array1<f32>>, 1, 1))),
            "grad_input" => Box::new(|| drop(conv2d_grad_input(&g, &w, &x.raw_dim(), 1, 1))),
            "grad_weight" => Box::new(|| drop(conv2d_grad_weight(&g, &x, &w.raw_dim(), 1, 1))),
            other => panic!("serve: unknown product {other:?}"),
        };
        let seconds: Vec<String> = (0..parse(calls))
            .map(|_| {
                let start = Instant::now();
                run();
                format!("{:e}", start.elapsed().as_secs_f64())
            })
            .collect();
        writeln!(stdout, "{{\"seconds\": [{}]}}", seconds.join(", "))
            .and_then(|()| stdout.flush())
            .unwrap_or_else(|e| panic!("serve: writing stdout: {e}"));
    }
}

fn main() {
    if std::env::args().any(|a| a == "serve") {
        serve();
        return;
    }
    if std::env::args().any(|a| a == "alternate") {
        alternate();
        return;
    }
    conv_benches();
    Criterion::default().configure_from_args().final_summary();
}
