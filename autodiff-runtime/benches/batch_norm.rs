//! Batch norm's forward and backward kernels at the study's conv2d shape (8×64×56×56, f32,
//! one thread). Forward keeps the per-channel statistics; backward is one pass over the
//! adjoint and the input for the per-channel sums (the adjoints of gamma and beta, and what
//! the input's reads) and one for the input's adjoint, in place in the adjoint's buffer.
//! `backward_all` is what a backward needing all three adjoints runs.
//! The binary's code layout moves these figures by up to a fifth: adding the
//! `sums_measuring` entry took the plain `sums` from 0.85 to 1.0–1.1 ms without changing its
//! code (with this file as it was, the same kernels measure 0.85); compare runs of one binary.
//! Run: `cargo bench -p autodiff-runtime --bench batch_norm`.

use autodiff_runtime::kernels::batch_norm::{
    batch_norm, batch_norm_grad_beta, batch_norm_grad_beta_direct, batch_norm_grad_gamma, batch_norm_grad_input,
    batch_norm_keeping, batch_norm_sums, batch_norm_sums_measuring,
};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ndarray::{Array1, Array4};
use std::hint::black_box;

fn benches(c: &mut Criterion) {
    let x = Array4::from_shape_fn((8, 64, 56, 56), |(n, c, i, j)| {
        ((n * 977 + c * 131 + i * 71 + j * 13) as f32 * 0.61).sin() + c as f32 * 0.01
    });
    let g = Array4::from_shape_fn((8, 64, 56, 56), |(n, c, i, j)| {
        ((n + c + i * 3 + j * 5) % 7) as f32 * 0.1
    });
    let gamma = Array1::from_shape_fn(64, |c| 1.0 + c as f32 * 0.01);
    let beta = Array1::from_elem(64, 0.1f32);
    let (_, stats) = batch_norm_keeping(&x, &gamma, &beta, 1e-5);
    let sums = batch_norm_sums(&g, &x, &stats);
    let mut group = c.benchmark_group("batch_norm_8x64x56x56");
    group.sample_size(20);
    group.bench_function("forward", |b| b.iter(|| batch_norm(black_box(&x), &gamma, &beta, 1e-5)));
    group.bench_function("forward_keeping", |b| {
        b.iter(|| batch_norm_keeping(black_box(&x), &gamma, &beta, 1e-5))
    });
    // The adjoint is consumed (the input's adjoint is written in its buffer): each run gets
    // a copy made outside the measurement.
    group.bench_function("backward_all", |b| {
        b.iter_batched(
            || g.clone(),
            |g| {
                let sums = batch_norm_sums(black_box(&g), &x, &stats);
                let dgamma = batch_norm_grad_gamma(&sums);
                let dbeta = batch_norm_grad_beta(&sums);
                (batch_norm_grad_input(g, &x, &gamma, &stats, &sums), dgamma, dbeta)
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("sums", |b| b.iter(|| batch_norm_sums(black_box(&g), &x, &stats)));
    // What backward runs where the static code keeps x in 16 bits (`residuals = "bf16"`).
    group.bench_function("sums_measuring", |b| {
        b.iter(|| batch_norm_sums_measuring(black_box(&g), &x, &stats))
    });
    group.bench_function("grad_input", |b| {
        b.iter_batched(
            || g.clone(),
            |g| batch_norm_grad_input(black_box(g), &x, &gamma, &stats, &sums),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("grad_beta_direct", |b| {
        b.iter(|| batch_norm_grad_beta_direct(black_box(&g)))
    });
    group.finish();
}

criterion_group!(batch_norm_benches, benches);
criterion_main!(batch_norm_benches);
