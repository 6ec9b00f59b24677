//! Batch norm's forward and its three backward kernels at the study's conv2d shape
//! (8×64×56×56, f32, one thread): each kernel recomputes the per-channel statistics and
//! reduces over N·H·W = 25088 elements per channel, so how a reduction runs decides them.
//! Run: `cargo bench -p autodiff-runtime --bench batch_norm`.

use autodiff_runtime::kernels::batch_norm::{
    batch_norm, batch_norm_grad_beta, batch_norm_grad_gamma, batch_norm_grad_input,
};
use criterion::{criterion_group, criterion_main, Criterion};
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
    let mut group = c.benchmark_group("batch_norm_8x64x56x56");
    group.sample_size(20);
    group.bench_function("forward", |b| b.iter(|| batch_norm(black_box(&x), &gamma, &beta, 1e-5)));
    group.bench_function("grad_input", |b| {
        b.iter(|| batch_norm_grad_input(black_box(&g), &x, &gamma, 1e-5))
    });
    group.bench_function("grad_gamma", |b| {
        b.iter(|| batch_norm_grad_gamma(black_box(&g), &x, 1e-5))
    });
    group.bench_function("grad_beta", |b| b.iter(|| batch_norm_grad_beta(black_box(&g))));
    group.finish();
}

criterion_group!(batch_norm_benches, benches);
criterion_main!(batch_norm_benches);
