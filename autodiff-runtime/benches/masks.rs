//! relu's backward from its output's sign bits (`kernels::mask`, what `save = "auto"` runs)
//! against the same backward from the output itself (`save = "all"`), at the study's
//! shapes: small_mlp's hidden layer (32×128, adjoint an outer product or an array) and
//! conv2d's block (8×64×56×56, adjoint a `sum`'s fill), f32, one thread; and what a residual
//! kept in bfloat16 costs (`kernels::packed`: packing in forward, unpacking in backward)
//! at conv2d's shape.
//! Run: `cargo bench -p autodiff-runtime --bench masks`.

use autodiff_runtime::kernels::fused::{fill_chain1, outer_chain1};
use autodiff_runtime::kernels::mask::{fill_masked, outer_masked, relu_grad_masked, SignMask};
use autodiff_runtime::kernels::packed::Packed;
use autodiff_runtime::kernels::rank1::Outer;
use autodiff_runtime::kernels::unary::{relu_grad, relu_grad_scalar};
use criterion::{criterion_group, criterion_main, Criterion};
use ndarray::{Array1, Array2, Array4};
use std::hint::black_box;

fn benches(c: &mut Criterion) {
    // A relu output: about half its entries positive, in no pattern.
    let h = Array2::from_shape_fn((32, 128), |(i, j)| ((i * 131 + j * 71) as f32 * 0.61).sin().max(0.0));
    let mask = SignMask::positive(&h);
    let outer = Outer {
        u: Array1::from_elem(32, 1.0f32),
        v: Array1::from_shape_fn(128, |j| j as f32 * 0.01),
    };
    let g = Array2::from_shape_fn((32, 128), |(i, j)| (i + j) as f32 * 0.001);
    let mut group = c.benchmark_group("relu_backward_32x128");
    group.bench_function("outer: float output (outer_chain1)", |b| {
        b.iter(|| outer_chain1(black_box(&outer), &h, relu_grad_scalar))
    });
    group.bench_function("outer: sign bits (outer_masked)", |b| {
        b.iter(|| outer_masked(black_box(&outer), &mask))
    });
    group.bench_function("array: float output (relu_grad)", |b| {
        b.iter(|| relu_grad(black_box(g.clone()), &h))
    });
    group.bench_function("array: sign bits (relu_grad_masked)", |b| {
        b.iter(|| relu_grad_masked(black_box(g.clone()), &mask))
    });
    group.finish();

    let y = Array4::from_shape_fn((8, 64, 56, 56), |(n, c, i, j)| {
        ((n * 977 + c * 131 + i * 71 + j * 13) as f32 * 0.61).sin().max(0.0)
    });
    let mask = SignMask::positive(&y);
    let mut group = c.benchmark_group("relu_backward_8x64x56x56");
    group.sample_size(20);
    group.bench_function("fill: float output (fill_chain1)", |b| {
        b.iter(|| fill_chain1(black_box(1.0f32), &y, relu_grad_scalar))
    });
    group.bench_function("fill: sign bits (fill_masked)", |b| {
        b.iter(|| fill_masked(black_box(1.0f32), &mask))
    });
    group.finish();

    let mut group = c.benchmark_group("bf16_residual_8x64x56x56");
    group.sample_size(20);
    let packed = Packed::bf16(&y);
    group.bench_function("pack", |b| b.iter(|| Packed::bf16(black_box(&y))));
    group.bench_function("unpack", |b| b.iter(|| black_box(&packed).unpack::<f32>()));
    group.finish();
}

criterion_group!(masks, benches);
criterion_main!(masks);
