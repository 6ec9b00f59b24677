//! 2×2 max-pooling with stride 2 at the study's conv2d shape (8×64×56×56, f32, one
//! thread): forward, forward keeping each window's argmax (a byte per output element), and
//! backward from those indices.
//! Run: `cargo bench -p autodiff-runtime --bench pool`.

use autodiff_runtime::kernels::pool::{max_pool2d, max_pool2d_grad, max_pool2d_keeping};
use criterion::{criterion_group, criterion_main, Criterion};
use ndarray::Array4;
use std::hint::black_box;

fn benches(c: &mut Criterion) {
    let x = Array4::from_shape_fn((8, 64, 56, 56), |(n, c, i, j)| {
        ((n * 977 + c * 131 + i * 71 + j * 13) as f32 * 0.61).sin()
    });
    let g = Array4::from_shape_fn((8, 64, 28, 28), |(n, c, i, j)| {
        ((n + c + i * 3 + j * 5) % 7) as f32 * 0.1
    });
    let (_, argmax) = max_pool2d_keeping(&x, 2, 2);
    let mut group = c.benchmark_group("max_pool2d_8x64x56x56_k2s2");
    group.sample_size(20);
    group.bench_function("forward", |b| b.iter(|| max_pool2d(black_box(&x), 2, 2)));
    group.bench_function("forward_keeping", |b| {
        b.iter(|| max_pool2d_keeping(black_box(&x), 2, 2))
    });
    group.bench_function("backward", |b| b.iter(|| max_pool2d_grad(black_box(&g), &argmax)));
    group.finish();
}

criterion_group!(pool_benches, benches);
criterion_main!(pool_benches);
