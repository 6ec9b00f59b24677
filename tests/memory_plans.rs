//! The memory plan's policies (`#[differentiate(save = "auto" | "all" | "min")]`): every
//! policy's gradients checked three ways (static against the tape and central finite
//! differences in f64) and equal to the other policies'; what each context holds, against
//! the counting allocator.

mod common;

use autodiff::prelude::*;
use autodiff::runtime::alloc::CountingAllocator;
use common::{held_by_forward, positive, random, rng};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

/// The largest difference between `got` and `exact`, relative to `exact`'s largest entry.
fn error_of_largest<F: Float>(got: &Array2<F>, exact: &Array2<F>) -> F {
    let scale = exact.iter().fold(F::zero(), |m, v| m.max(v.abs()));
    got.iter()
        .zip(exact.iter())
        .fold(F::zero(), |m, (a, b)| m.max((*a - *b).abs()))
        / scale
}

/// A two-layer perceptron with a relu, whose output backward reads only through its sign
/// (a mask under `auto`) when `w2`'s gradient is not asked for.
#[differentiate(wrt(w1, b1), name = mlp_auto)]
#[differentiate(wrt(w1, b1), save = "all", name = mlp_all)]
#[differentiate(wrt(w1, b1), save = "min", name = mlp_min)]
fn mlp(x: &Array2<f64>, w1: &Array2<f64>, b1: &Array1<f64>, w2: &Array2<f64>) -> f64 {
    let h = relu(&(x.dot(w1) + b1));
    let y = h.dot(w2).tanh();
    (&y * &y).sum()
}

#[test]
fn mlp_policies_agree_and_check_three_ways() {
    let mut r = rng(1);
    let (x, w1, b1, w2) = (
        random(&mut r, (6, 5)),
        random(&mut r, (5, 8)),
        random(&mut r, 8),
        random(&mut r, (8, 3)),
    );
    autodiff::check!(mlp_auto, &x, &w1, &b1, &w2);
    autodiff::check!(mlp_all, &x, &w1, &b1, &w2);
    autodiff::check!(mlp_min, &x, &w1, &b1, &w2);
    let auto = mlp_auto_grad(&x, &w1, &b1, &w2);
    assert_eq!(auto, mlp_all_grad(&x, &w1, &b1, &w2));
    assert_eq!(auto, mlp_min_grad(&x, &w1, &b1, &w2));
}

#[test]
fn mlp_policies_hold_what_they_say() {
    let mut r = rng(2);
    let (x, w1, b1, w2) = (
        random(&mut r, (6, 5)),
        random(&mut r, (5, 8)),
        random(&mut r, 8),
        random(&mut r, (8, 3)),
    );
    let (v_auto, auto) = held_by_forward!(mlp_auto_forward(&x, &w1, &b1, &w2));
    let (v_all, all) = held_by_forward!(mlp_all_forward(&x, &w1, &b1, &w2));
    let (v_min, min) = held_by_forward!(mlp_min_forward(&x, &w1, &b1, &w2));
    assert_eq!((v_auto, v_all), (v_min, v_min));
    // all: h (6×8) and y (6×3); auto: h's sign, a 64-bit word; min: nothing.
    assert_eq!(all, (6 * 8 + 6 * 3) * 8);
    assert_eq!(auto, 8 + 6 * 3 * 8);
    assert_eq!(min, 0);
}

/// A layer called from a loss, in a loop over steps: the callee's and the body's contexts
/// follow the caller's policy.
#[differentiate]
fn layer<F: Float>(h: &Array2<F>, w: &Array2<F>) -> Array2<F> {
    relu(&h.dot(w))
}

#[differentiate(name = recurrent_auto)]
#[differentiate(save = "all", name = recurrent_all)]
#[differentiate(save = "min", name = recurrent_min)]
#[differentiate(residuals = "bf16", name = recurrent_bf16)]
fn recurrent(h0: &Array2<f64>, w: &Array2<f64>, u: &Array2<f64>, steps: usize) -> f64 {
    let mut h = h0.to_owned();
    for _ in 0..steps {
        let a: Array2<f64> = layer(&h, w);
        h = (a + h.dot(u)).tanh();
    }
    h.mapv(|v| v * v).sum()
}

#[test]
fn loops_and_calls_under_every_policy() {
    let mut r = rng(3);
    let (h0, w, u) = (random(&mut r, (3, 4)), random(&mut r, (4, 4)), random(&mut r, (4, 4)));
    autodiff::check!(recurrent_auto, &h0, &w, &u, 3);
    autodiff::check!(recurrent_all, &h0, &w, &u, 3);
    autodiff::check!(recurrent_min, &h0, &w, &u, 3);
    let auto = recurrent_auto_grad(&h0, &w, &u, 3);
    assert_eq!(auto, recurrent_all_grad(&h0, &w, &u, 3));
    assert_eq!(auto, recurrent_min_grad(&h0, &w, &u, 3));
    // In 16 bits, the loop's per-iteration residuals too (its states stay shared f64).
    let (_, bf16) = recurrent_bf16_grad(&h0, &w, &u, 3);
    for (g, e) in [(&bf16.0, &auto.1 .0), (&bf16.1, &auto.1 .1), (&bf16.2, &auto.1 .2)] {
        assert!(error_of_largest(g, e) < 2e-2);
    }
    assert!(
        RECURRENT_BF16_GRAD_PLAN.to_string().contains("unpack"),
        "{RECURRENT_BF16_GRAD_PLAN}"
    );
    let (_, min) = held_by_forward!(recurrent_min_forward(&h0, &w, &u, 3));
    let (_, all) = held_by_forward!(recurrent_all_forward(&h0, &w, &u, 3));
    assert_eq!(min, 0);
    assert!(all > 0);
}

/// A parameter taken by value, a branch, and an array output (a layer's VJP).
#[differentiate(save = "min", name = owned_min)]
#[differentiate(save = "all", name = owned_all)]
fn owned(x: Array1<f64>, w: &Array1<f64>, flip: bool) -> Array1<f64> {
    let y = if flip { -(&x * w) } else { &x * w };
    y.mapv(|v| (v * v + 1.0).ln())
}

#[test]
fn owned_parameters_and_layers_under_min() {
    let mut r = rng(4);
    let (x, w) = (positive(&mut r, 5), positive(&mut r, 5));
    let seed = random(&mut r, 5);
    for flip in [false, true] {
        let x = if flip { x.mapv(|v| v * 0.1) } else { x.clone() };
        let all = owned_all_vjp(x.clone(), &w, flip, seed.clone());
        let min = owned_min_vjp(x.clone(), &w, flip, seed.clone());
        assert_eq!(all, min);
    }
}

/// The convolutional block of the study, small: batch norm's input and statistics kept,
/// relu's output as a mask under `auto`.
#[differentiate(wrt(w, bias, gamma, beta), name = conv_auto)]
#[differentiate(wrt(w, bias, gamma, beta), save = "all", name = conv_all)]
#[differentiate(wrt(w, bias, gamma, beta), save = "min", name = conv_min)]
fn conv(x: &Array4<f64>, w: &Array4<f64>, bias: &Array1<f64>, gamma: &Array1<f64>, beta: &Array1<f64>) -> f64 {
    relu(&batch_norm(&conv2d(x, w, Some(bias), 1, 1), gamma, beta, 1e-5)).sum()
}

#[test]
fn conv_block_under_every_policy() {
    let mut r = rng(5);
    let (x, w) = (random(&mut r, (2, 3, 5, 5)), random(&mut r, (4, 3, 3, 3)));
    let (bias, gamma, beta) = (random(&mut r, 4), positive(&mut r, 4), random(&mut r, 4));
    autodiff::check!(conv_auto, &x, &w, &bias, &gamma, &beta);
    autodiff::check!(conv_all, &x, &w, &bias, &gamma, &beta);
    autodiff::check!(conv_min, &x, &w, &bias, &gamma, &beta);
    let auto = conv_auto_grad(&x, &w, &bias, &gamma, &beta);
    assert_eq!(auto, conv_all_grad(&x, &w, &bias, &gamma, &beta));
    assert_eq!(auto, conv_min_grad(&x, &w, &bias, &gamma, &beta));
    let (_, auto) = held_by_forward!(conv_auto_forward(&x, &w, &bias, &gamma, &beta));
    let (_, all) = held_by_forward!(conv_all_forward(&x, &w, &bias, &gamma, &beta));
    let (_, min) = held_by_forward!(conv_min_forward(&x, &w, &bias, &gamma, &beta));
    assert!(auto < all, "auto {auto} B, all {all} B");
    assert_eq!(min, 0);
}

#[test]
fn the_manifest_states_what_each_context_holds() {
    let mut r = rng(6);
    let (x, w1, b1, w2) = (
        random(&mut r, (7, 5)),
        random(&mut r, (5, 9)),
        random(&mut r, 9),
        random(&mut r, (9, 2)),
    );
    assert_eq!(
        MLP_AUTO_GRAD_PLAN.residuals,
        [
            "y_8 (array): x[0]×w2[1] × 8 B",
            "h_6 (relu sign mask): x[0]×max(w1[1], b1[0]) bits, in 8-byte words"
        ]
    );
    assert_eq!(MLP_ALL_GRAD_PLAN.residuals.len(), 2);
    assert!(MLP_MIN_GRAD_PLAN.residuals.is_empty());
    assert_eq!(
        (MLP_AUTO_GRAD_PLAN.save, MLP_ALL_GRAD_PLAN.save, MLP_MIN_GRAD_PLAN.save),
        ("auto", "all", "min")
    );
    // The formulas, evaluated before forward runs, against what the allocator sees it keep.
    for (predicted, (_, held)) in [
        (
            mlp_auto_residual_bytes(&x, &w1, &b1, &w2),
            held_by_forward!(mlp_auto_forward(&x, &w1, &b1, &w2)),
        ),
        (
            mlp_all_residual_bytes(&x, &w1, &b1, &w2),
            held_by_forward!(mlp_all_forward(&x, &w1, &b1, &w2)),
        ),
        (
            mlp_min_residual_bytes(&x, &w1, &b1, &w2),
            held_by_forward!(mlp_min_forward(&x, &w1, &b1, &w2)),
        ),
    ] {
        assert_eq!(predicted, Some(held));
    }
    // A bias broadcast along rows (1×9 against 7×9): `max` takes the longer axis.
    let b_row = b1.clone().insert_axis(Axis(0));
    assert_eq!(rows_residual_bytes(&x, &w1, &b_row), Some(7 * 9 * 8));

    let (x, w) = (random(&mut r, (2, 3, 6, 5)), random(&mut r, (4, 3, 3, 3)));
    let (bias, gamma, beta) = (random(&mut r, 4), positive(&mut r, 4), random(&mut r, 4));
    assert_eq!(
        CONV_AUTO_GRAD_PLAN.residuals[0],
        "v5 (array): x[0]×w[0]×(x[2] + 2 − w[2] + 1)×(x[3] + 2 − w[3] + 1) × 8 B"
    );
    assert_eq!(CONV_AUTO_GRAD_PLAN.residuals[1], "v6 (batch_norm stats): 2×w[0] × 8 B");
    let (_, held) = held_by_forward!(conv_auto_forward(&x, &w, &bias, &gamma, &beta));
    // The convolution's output (2×4×6×5 floats), batch norm's statistics (2×4 floats) and
    // relu's mask (240 bits: 4 words).
    assert_eq!(held, 2 * 4 * 6 * 5 * 8 + 2 * 4 * 8 + 4 * 8);
    assert_eq!(conv_auto_residual_bytes(&x, &w, &bias, &gamma, &beta), Some(held));
    let (_, held) = held_by_forward!(pooled_forward(&x, &w, &bias));
    assert!(held > 0);
    assert_eq!(pooled_residual_bytes(&x, &w, &bias), Some(held));

    // A loop's contexts are counted at run time only.
    assert_eq!(
        recurrent_auto_residual_bytes(&x.index_axis(Axis(0), 0).index_axis(Axis(0), 0).to_owned(), &w1, &w1, 0),
        None
    );
}

/// `x·w + b` with `b` a 1×n row: kept for the tanh's backward.
#[differentiate(wrt(w))]
fn rows(x: &Array2<f64>, w: &Array2<f64>, b: &Array2<f64>) -> f64 {
    (x.dot(w) + b).tanh().sum()
}

/// A strided convolution and a max-pool: the window formulas.
#[differentiate(wrt(w))]
fn pooled(x: &Array4<f64>, w: &Array4<f64>, b: &Array1<f64>) -> f64 {
    max_pool2d(&conv2d(x, w, Some(b), 2, 0).tanh(), 2, 1).sum()
}

/// relu's adjoint an outer product (a `sum` through a matrix product): its masked kernel
/// forms `uᵢ·vⱼ` where the bit is set.
#[differentiate(wrt(w1, b1), name = outer_auto)]
#[differentiate(wrt(w1, b1), save = "all", name = outer_all)]
fn outer(x: &Array2<f64>, w1: &Array2<f64>, b1: &Array1<f64>, w2: &Array2<f64>) -> f64 {
    relu(&(x.dot(w1) + b1)).dot(w2).sum()
}

/// relu's rule fused with tanh's into one pass: the pass reads relu's output as a float,
/// so `auto` keeps it (decoding a mask first would add a pass).
#[differentiate(wrt(w), name = fused_auto)]
#[differentiate(wrt(w), save = "all", name = fused_all)]
fn fused(x: &Array2<f64>, w: &Array2<f64>, r: &Array2<f64>) -> f64 {
    (&relu(&x.dot(w)).tanh() * r).sum()
}

#[test]
fn relu_reads_its_bits_where_its_kernel_can() {
    let mut r = rng(7);
    let (x, w1, b1, w2) = (
        random(&mut r, (6, 5)),
        random(&mut r, (5, 8)),
        random(&mut r, 8),
        random(&mut r, (8, 3)),
    );
    autodiff::check!(outer_auto, &x, &w1, &b1, &w2);
    assert_eq!(outer_auto_grad(&x, &w1, &b1, &w2), outer_all_grad(&x, &w1, &b1, &w2));
    assert_eq!(OUTER_AUTO_GRAD_PLAN.backward_calls("outer_masked"), 1);
    assert_eq!(OUTER_ALL_GRAD_PLAN.backward_calls("outer_masked"), 0);
    let (_, held) = held_by_forward!(outer_auto_forward(&x, &w1, &b1, &w2));
    assert_eq!(held, 8);

    let (w, target) = (random(&mut r, (5, 4)), random(&mut r, (6, 4)));
    autodiff::check!(fused_auto, &x, &w, &target);
    assert_eq!(fused_auto_grad(&x, &w, &target), fused_all_grad(&x, &w, &target));
    // relu's output kept as a float, not as bits; tanh's output kept too (a transcendental
    // function is not computed again, §3e).
    assert_eq!(FUSED_AUTO_GRAD_PLAN.saved, ["v4", "v5"]);
    assert_eq!(FUSED_AUTO_GRAD_PLAN.saved, FUSED_ALL_GRAD_PLAN.saved);
    assert_eq!(FUSED_AUTO_GRAD_PLAN.backward_calls("chain2"), 1);
}

/// The study's perceptron: a `sum`'s seed reaches `h · w2`, whose rule for `w2` reads `h` only
/// as its column sums, and relu's rule reads `h`'s sign: `auto` keeps a float per column of
/// `h` and a bit per element.
#[differentiate(wrt(w1, b1, w2, b2), name = perceptron_auto)]
#[differentiate(wrt(w1, b1, w2, b2), save = "all", name = perceptron_all)]
fn perceptron(x: &Array2<f64>, w1: &Array2<f64>, b1: &Array1<f64>, w2: &Array2<f64>, b2: &Array1<f64>) -> f64 {
    (relu(&(x.dot(w1) + b1)).dot(w2) + b2).sum()
}

/// The same with a dense seed (`sum(out * r)`): `h` is read as a matrix, and kept.
#[differentiate(wrt(w1, b1, w2), name = perceptron_dense)]
fn perceptron_dense(x: &Array2<f64>, w1: &Array2<f64>, b1: &Array1<f64>, w2: &Array2<f64>, r: &Array2<f64>) -> f64 {
    (&relu(&(x.dot(w1) + b1)).dot(w2) * r).sum()
}

#[test]
fn a_matrix_read_only_through_its_column_sums_keeps_them() {
    let mut r = rng(8);
    let (x, w1, b1) = (random(&mut r, (6, 5)), random(&mut r, (5, 70)), random(&mut r, 70));
    let (w2, b2, target) = (random(&mut r, (70, 3)), random(&mut r, 3), random(&mut r, (6, 3)));
    autodiff::check!(perceptron_auto, &x, &w1, &b1, &w2, &b2);
    autodiff::check!(perceptron_dense, &x, &w1, &b1, &w2, &target);
    assert_eq!(
        perceptron_auto_grad(&x, &w1, &b1, &w2, &b2),
        perceptron_all_grad(&x, &w1, &b1, &w2, &b2)
    );
    assert!(PERCEPTRON_AUTO_GRAD_PLAN
        .backward
        .iter()
        .any(|line| line.contains("summed_matmul_grad_rhs(v7_colsum")));
    assert_eq!(PERCEPTRON_AUTO_GRAD_PLAN.backward_calls("outer_masked"), 1);
    let (_, auto) = held_by_forward!(perceptron_auto_forward(&x, &w1, &b1, &w2, &b2));
    let (_, all) = held_by_forward!(perceptron_all_forward(&x, &w1, &b1, &w2, &b2));
    // 70 column sums and 6×70 bits (7 words), against the 6×70 floats of h.
    assert_eq!((auto, all), (70 * 8 + 7 * 8, 6 * 70 * 8));
    assert_eq!(perceptron_auto_residual_bytes(&x, &w1, &b1, &w2, &b2), Some(auto));
    let (_, dense) = held_by_forward!(perceptron_dense_forward(&x, &w1, &b1, &w2, &target));
    assert_eq!(dense, 6 * 70 * 8);
}

/// A custom rule under `min`: the user's function runs again in backward, then the user's VJP.
#[differentiate(vjp = softplus_sum_backward, save = "min")]
fn softplus_sum(x: &Array1<f64>) -> f64 {
    x.mapv(|v| (1.0 + v.exp()).ln()).sum()
}

/// The VJP of `softplus_sum`: the argument, the output, the output's adjoint → the input's.
fn softplus_sum_backward(x: &Array1<f64>, _y: f64, seed: f64) -> Array1<f64> {
    x.mapv(|v| seed / (1.0 + (-v).exp()))
}

#[test]
fn custom_rules_under_min() {
    let x = random(&mut rng(9), 6);
    autodiff::check!(softplus_sum, &x);
    assert_eq!(softplus_sum_residual_bytes(&x), Some(0));
    assert_eq!(SOFTPLUS_SUM_GRAD_PLAN.save, "min");
}

/// Residuals rounded to 16 bits: a tanh layer whose output backward reads, in `f32`.
#[differentiate(name = layer_full)]
#[differentiate(residuals = "bf16", name = layer_bf16)]
#[differentiate(residuals = "f16", name = layer_f16)]
fn tanh_layers(x: &Array2<f32>, w1: &Array2<f32>, w2: &Array2<f32>) -> f32 {
    let h = x.dot(w1).tanh();
    h.dot(w2).tanh().sum()
}

/// `tanh_layers`' inputs: a 9×6 batch through 20 hidden units to 4 outputs.
fn layer_inputs() -> (Array2<f32>, Array2<f32>, Array2<f32>) {
    let mut r = rng(10);
    let f32s = |a: Array2<f64>| a.mapv(|v| v as f32);
    (
        f32s(random(&mut r, (9, 6))),
        f32s(random(&mut r, (6, 20))),
        f32s(random(&mut r, (20, 4))),
    )
}

#[test]
fn residuals_in_sixteen_bits_hold_half_and_round_the_gradients() {
    let (x, w1, w2) = layer_inputs();
    let (_, full) = held_by_forward!(layer_full_forward(&x, &w1, &w2));
    let (_, bf16) = held_by_forward!(layer_bf16_forward(&x, &w1, &w2));
    let (_, f16) = held_by_forward!(layer_f16_forward(&x, &w1, &w2));
    // h (9×20) and the output (9×4), 4 bytes each in f32, 2 in 16 bits.
    assert_eq!(full, (9 * 20 + 9 * 4) * 4);
    assert_eq!((bf16, f16), (full / 2, full / 2));
    assert_eq!(layer_bf16_residual_bytes(&x, &w1, &w2), Some(bf16));
    assert_eq!(LAYER_BF16_GRAD_PLAN.residuals[0], "h_4 (bf16): x[0]×w1[1] × 2 B");
    // Each gradient within the formats' rounding of the residuals it reads (bf16 keeps 8
    // significant bits, f16 11), relative to its largest entry; and not equal to full
    // precision (the rounding is real).
    let (value, exact) = layer_full_grad(&x, &w1, &w2);
    for (name, (v, grads), bound) in [
        ("bf16", layer_bf16_grad(&x, &w1, &w2), 2e-2),
        ("f16", layer_f16_grad(&x, &w1, &w2), 3e-3),
    ] {
        assert_eq!(v, value, "{name}: forward is computed in full precision");
        let pairs = [(&grads.0, &exact.0), (&grads.1, &exact.1), (&grads.2, &exact.2)];
        for (k, (g, e)) in pairs.into_iter().enumerate() {
            let error = error_of_largest(g, e);
            assert!(
                error < bound,
                "{name}: gradient {k} off by {error:.1e} of its largest entry"
            );
            assert!(error > 0.0, "{name}: gradient {k} is exactly full precision's");
        }
    }
}

/// The convolutional block with a max-pool after the relu: the pool keeps where each window's
/// maximum is (a byte per output element) instead of its input, so relu's output is read
/// only through its sign (a mask under `auto`); batch norm keeps its input and statistics.
#[differentiate(wrt(w, bias, gamma, beta), name = pool_block_auto)]
#[differentiate(wrt(w, bias, gamma, beta), save = "all", name = pool_block_all)]
#[differentiate(wrt(w, bias, gamma, beta), save = "min", name = pool_block_min)]
#[differentiate(wrt(w, bias, gamma, beta), residuals = "bf16", name = pool_block_bf16)]
fn pool_block(x: &Array4<f64>, w: &Array4<f64>, bias: &Array1<f64>, gamma: &Array1<f64>, beta: &Array1<f64>) -> f64 {
    let h = relu(&batch_norm(&conv2d(x, w, Some(bias), 1, 1), gamma, beta, 1e-5));
    max_pool2d(&h, 2, 2).mapv(|v| v * v).sum()
}

#[test]
fn conv_batch_norm_relu_max_pool_keeps_statistics_and_window_indices() {
    let mut r = rng(11);
    // Odd planes (7×5: the pool leaves a ragged border) and 5 channels.
    let (x, w) = (random(&mut r, (2, 3, 7, 5)), random(&mut r, (5, 3, 3, 3)));
    let (bias, gamma, beta) = (random(&mut r, 5), positive(&mut r, 5), random(&mut r, 5));
    autodiff::check!(pool_block_auto, &x, &w, &bias, &gamma, &beta);
    autodiff::check!(pool_block_all, &x, &w, &bias, &gamma, &beta);
    autodiff::check!(pool_block_min, &x, &w, &bias, &gamma, &beta);
    let auto = pool_block_auto_grad(&x, &w, &bias, &gamma, &beta);
    assert_eq!(auto, pool_block_all_grad(&x, &w, &bias, &gamma, &beta));
    assert_eq!(auto, pool_block_min_grad(&x, &w, &bias, &gamma, &beta));
    // In 16 bits (the convolution's output rounded), within bf16's rounding of the largest
    // entry. Not the bias's: batch norm takes out each channel's mean, so its gradient is 0
    // up to rounding.
    let (value, bf16) = pool_block_bf16_grad(&x, &w, &bias, &gamma, &beta);
    assert_eq!(value, auto.0);
    let error = |got: autodiff::ndarray::ArrayViewD<f64>, exact: autodiff::ndarray::ArrayViewD<f64>| {
        let scale = exact.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        got.iter().zip(exact).fold(0.0f64, |m, (a, b)| m.max((a - b).abs())) / scale
    };
    for (got, exact) in [
        (bf16.0.view().into_dyn(), auto.1 .0.view().into_dyn()),
        (bf16.2.view().into_dyn(), auto.1 .2.view().into_dyn()),
        (bf16.3.view().into_dyn(), auto.1 .3.view().into_dyn()),
    ] {
        let error = error(got, exact);
        assert!(error < 2e-2, "{error:.1e}");
    }

    let conv: usize = 2 * 5 * 7 * 5; // the convolution's output, batch norm's input
    let pooled = 2 * 5 * 3 * 2; // the pool's output (which the square reads), and its indices
    let stats = 2 * 5 * 8; // a mean and an inverse deviation per channel
    let mask = conv.div_ceil(64) * 8; // relu's sign, in 64-bit words
    assert_eq!(
        POOL_BLOCK_AUTO_GRAD_PLAN.residuals,
        [
            "v5 (array): x[0]×w[0]×(x[2] + 2 − w[2] + 1)×(x[3] + 2 − w[3] + 1) × 8 B",
            "v8 (array): x[0]×w[0]×(((x[2] + 2 − w[2] + 1) − 2) / 2 + 1)×(((x[3] + 2 − w[3] + 1) − 2) / 2 + 1) × 8 B",
            "v6 (batch_norm stats): 2×w[0] × 8 B",
            "v8 (max_pool2d argmax): x[0]×w[0]×(((x[2] + 2 − w[2] + 1) − 2) / 2 + 1)×(((x[3] + 2 − w[3] + 1) − 2) / 2 + 1) × index_bytes(2) B",
            "h_7 (relu sign mask): x[0]×w[0]×(x[2] + 2 − w[2] + 1)×(x[3] + 2 − w[3] + 1) bits, in 8-byte words",
        ]
    );
    let predicted = [
        pool_block_auto_residual_bytes(&x, &w, &bias, &gamma, &beta),
        pool_block_all_residual_bytes(&x, &w, &bias, &gamma, &beta),
        pool_block_min_residual_bytes(&x, &w, &bias, &gamma, &beta),
        pool_block_bf16_residual_bytes(&x, &w, &bias, &gamma, &beta),
    ];
    let (_, auto) = held_by_forward!(pool_block_auto_forward(&x, &w, &bias, &gamma, &beta));
    let (_, all) = held_by_forward!(pool_block_all_forward(&x, &w, &bias, &gamma, &beta));
    let (_, min) = held_by_forward!(pool_block_min_forward(&x, &w, &bias, &gamma, &beta));
    let (_, bf16) = held_by_forward!(pool_block_bf16_forward(&x, &w, &bias, &gamma, &beta));
    assert_eq!(predicted, [Some(auto), Some(all), Some(min), Some(bf16)]);
    // Batch norm's input is kept rounded under bf16: its sums' pass measures the statistics
    // of the rounded input (the kept ones describe the unrounded one).
    assert_eq!(POOL_BLOCK_BF16_GRAD_PLAN.backward_calls("batch_norm_sums_measuring"), 1);
    assert_eq!(POOL_BLOCK_AUTO_GRAD_PLAN.backward_calls("batch_norm_sums_measuring"), 0);
    assert_eq!(POOL_BLOCK_AUTO_GRAD_PLAN.backward_calls("batch_norm_sums"), 1);
    // A byte per window index.
    assert_eq!(auto, conv * 8 + pooled * 8 + stats + pooled + mask);
    // `all` keeps relu's output as computed; `min` nothing; in 16 bits the arrays are
    // rounded (the convolution's output too: batch norm's measuring sums read it against the
    // statistics of the exact values), the statistics and indices (exact, and small) are not.
    assert_eq!(all, conv * 8 + pooled * 8 + stats + pooled + conv * 8);
    assert_eq!(min, 0);
    assert_eq!(bf16, conv * 2 + pooled * 2 + stats + pooled + mask);
    // Before the pool kept its indices it kept its input, relu's output (which relu's rule
    // then read as floats, not bits), and batch norm kept no statistics.
    let before = conv * 8 + pooled * 8 + conv * 8;
    assert!(auto < before, "auto {auto} B, before {before} B");
}

/// A layer with batch norm and a max-pool, called in a loop over a slice of weights and in a
/// branch on a float: the aux residuals live in the callee's and the iterations' contexts.
#[differentiate]
fn norm_pool<F: Float>(x: &Array4<F>, w: &Array4<F>, gamma: &Array1<F>, beta: &Array1<F>) -> Array4<F> {
    let b = gamma.mapv(|v| v * F::of(0.0));
    max_pool2d(
        &relu(&batch_norm(&conv2d(x, w, Some(&b), 1, 1), gamma, beta, F::of(1e-5))),
        2,
        1,
    )
}

#[differentiate(name = norm_programs_auto)]
#[differentiate(save = "all", name = norm_programs_all)]
#[differentiate(save = "min", name = norm_programs_min)]
#[differentiate(residuals = "bf16", name = norm_programs_bf16)]
fn norm_programs(x: &Array4<f64>, ws: &[Array4<f64>], gamma: &Array1<f64>, beta: &Array1<f64>, s: f64) -> f64 {
    let mut total = 0.0;
    for i in 0..ws.len() {
        let z = batch_norm(&conv2d(x, &ws[i], Some(beta), 1, 0), gamma, beta, 1e-3);
        let p = if s > 0.0 {
            max_pool2d(&z, 2, 2)
        } else {
            max_pool2d(&z.tanh(), 3, 1)
        };
        total += p.mapv(|v| v * v).sum();
    }
    let h: Array4<f64> = norm_pool(x, &ws[0], gamma, beta);
    total + h.mapv(|v| v * v * v).sum()
}

#[test]
fn batch_norm_and_max_pool_in_loops_calls_and_branches_under_every_policy() {
    let mut r = rng(12);
    let x = random(&mut r, (2, 3, 6, 5));
    let ws: Vec<Array4<f64>> = (0..3).map(|_| random(&mut r, (4, 3, 3, 3))).collect();
    let (gamma, beta) = (positive(&mut r, 4), random(&mut r, 4));
    for s in [0.5, -0.5] {
        autodiff::check!(norm_programs_auto, &x, &ws, &gamma, &beta, s);
        autodiff::check!(norm_programs_all, &x, &ws, &gamma, &beta, s);
        autodiff::check!(norm_programs_min, &x, &ws, &gamma, &beta, s);
        let auto = norm_programs_auto_grad(&x, &ws, &gamma, &beta, s);
        assert_eq!(auto, norm_programs_all_grad(&x, &ws, &gamma, &beta, s));
        assert_eq!(auto, norm_programs_min_grad(&x, &ws, &gamma, &beta, s));
        let (value, bf16) = norm_programs_bf16_grad(&x, &ws, &gamma, &beta, s);
        assert_eq!(value, auto.0);
        let largest = auto.1 .2.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!((&bf16.2 - &auto.1 .2).iter().all(|d| d.abs() <= 2e-2 * largest));
        let (_, auto) = held_by_forward!(norm_programs_auto_forward(&x, &ws, &gamma, &beta, s));
        let (_, all) = held_by_forward!(norm_programs_all_forward(&x, &ws, &gamma, &beta, s));
        let (_, min) = held_by_forward!(norm_programs_min_forward(&x, &ws, &gamma, &beta, s));
        let (_, bf16) = held_by_forward!(norm_programs_bf16_forward(&x, &ws, &gamma, &beta, s));
        assert!(
            auto <= all && bf16 < auto && min == 0,
            "auto {auto}, all {all}, bf16 {bf16}"
        );
    }
    // The plan names the residuals the loop's body and the call keep.
    let source = norm_programs_auto_grad_source();
    assert!(source.contains("batch_norm_keeping") && source.contains("max_pool2d_keeping"));
}

/// The largest difference between the gradients `got` and `exact`, relative to the largest
/// entry of them all (a gradient 0 in exact arithmetic, such as a bias's before batch norm,
/// is judged against the others' scale).
fn error_of_all<'g>(got: impl IntoIterator<Item = &'g f32>, exact: impl IntoIterator<Item = &'g f32>) -> f32 {
    let (got, exact): (Vec<f32>, Vec<f32>) = (got.into_iter().copied().collect(), exact.into_iter().copied().collect());
    assert_eq!(got.len(), exact.len());
    let scale = exact.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    got.iter().zip(&exact).fold(0.0f32, |m, (a, b)| m.max((a - b).abs())) / scale
}

/// `block`'s arguments, or its gradients: x, w, bias, gamma, beta.
type BlockArrays = (Array4<f32>, Array4<f32>, Array1<f32>, Array1<f32>, Array1<f32>);

/// The gradients of `block`, one vector.
fn block_flat(g: &BlockArrays) -> Vec<f32> {
    let g = g.clone();
    (g.0.into_iter().chain(g.1).chain(g.2).chain(g.3).chain(g.4)).collect()
}

/// `block`'s inputs, the study's small conv2d ones: weights scaled by 1/√fan-in, a small bias.
fn block_inputs() -> BlockArrays {
    let mut r = rng(13);
    let f32s = |a: Array4<f64>| a.mapv(|v| v as f32);
    let (x, w) = (
        f32s(random(&mut r, (2, 3, 5, 5))),
        f32s(random(&mut r, (4, 3, 3, 3)) / 27f64.sqrt()),
    );
    let bias = random(&mut r, 4).mapv(|v| (0.1 * v) as f32);
    let gamma = random(&mut r, 4).mapv(|v| (1.0 + 0.2 * v) as f32);
    let beta = random(&mut r, 4).mapv(|v| (0.1 * v) as f32);
    (x, w, bias, gamma, beta)
}

/// The study's convolutional block, with respect to every input, in f32: batch norm's input
/// kept in 16 bits, its statistics in full.
#[differentiate(name = block_full)]
#[differentiate(residuals = "bf16", name = block_bf16)]
fn block(x: &Array4<f32>, w: &Array4<f32>, bias: &Array1<f32>, gamma: &Array1<f32>, beta: &Array1<f32>) -> f32 {
    relu(&batch_norm(&conv2d(x, w, Some(bias), 1, 1), gamma, beta, 1e-5)).sum()
}

#[test]
fn batch_norm_of_an_input_kept_in_sixteen_bits_is_the_rounded_inputs() {
    let (x, w, bias, gamma, beta) = block_inputs();
    let (_, full) = block_full_grad(&x, &w, &bias, &gamma, &beta);
    let (_, bf16) = block_bf16_grad(&x, &w, &bias, &gamma, &beta);
    // Every gradient, against the largest entry of them all.
    let error = error_of_all(&block_flat(&bf16), &block_flat(&full));
    assert!(error < 2e-2, "{error:.1e} of the largest entry");
    // Batch norm takes out each channel's mean, so the bias before it has gradient 0: the
    // exact derivative at the rounded input keeps that to rounding (1e-6 here), where
    // normalising the rounded input by the unrounded one's statistics gave 4e-2.
    assert!(bf16.2.iter().all(|g| g.abs() < 1e-4), "the bias's gradient: {}", bf16.2);
    assert_eq!(BLOCK_BF16_GRAD_PLAN.backward_calls("batch_norm_sums_measuring"), 1);
}

/// A swish layer, `z·σ(z)` with `z = x·w + b`, and a gelu-like chain after it: arithmetic on
/// values backward keeps anyway, which `auto` computes again in backward instead of keeping
/// (`h` from `z` and `σ(z)`; the chain's products and sums from `h` and `t`).
#[differentiate(wrt(w, b, v), name = swish_auto)]
#[differentiate(wrt(w, b, v), save = "all", name = swish_all)]
#[differentiate(wrt(w, b, v), residuals = "bf16", name = swish_bf16)]
fn swish(x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>, v: &Array2<f64>) -> f64 {
    let z = x.dot(w) + b;
    let h = &z * &z.sigmoid();
    let t = (&h * 0.5 + &h * &h * &h * 0.04).tanh();
    let y = &h * &(t + 1.0);
    y.dot(v).mapv(|e| e * e).sum()
}

#[test]
fn auto_recomputes_elementwise_values_from_what_it_keeps() {
    let mut r = rng(9);
    let (x, w, b, v) = (
        random(&mut r, (6, 5)),
        random(&mut r, (5, 7)),
        random(&mut r, 7),
        random(&mut r, (7, 3)),
    );
    autodiff::check!(swish_auto, &x, &w, &b, &v);
    autodiff::check!(swish_all, &x, &w, &b, &v);
    // The same kernels on the same values: the recomputed gradient is the kept one's.
    assert_eq!(swish_auto_grad(&x, &w, &b, &v), swish_all_grad(&x, &w, &b, &v));
    let (_, auto) = held_by_forward!(swish_auto_forward(&x, &w, &b, &v));
    let (_, all) = held_by_forward!(swish_all_forward(&x, &w, &b, &v));
    // auto keeps z and σ(z) (σ's rule reads its output; transcendental functions are not
    // computed again), t (likewise) and y·v (the map's input), and computes h, h², t + 1 and
    // y again; all keeps every value the rules read.
    assert_eq!(auto, (3 * 6 * 7 + 6 * 3) * 8, "auto {auto} B, all {all} B");
    assert!(all >= 5 * 6 * 7 * 8, "all {all} B");
    assert_eq!(swish_auto_residual_bytes(&x, &w, &b, &v), Some(auto));
    let plan = SWISH_AUTO_GRAD_PLAN.to_string();
    assert!(plan.contains("(recomputed)"), "{plan}");
    // Under bf16 the recomputation reads the rounded z: close to the exact gradient.
    let (exact, rounded) = (swish_all_grad(&x, &w, &b, &v), swish_bf16_grad(&x, &w, &b, &v));
    assert!(error_of_largest(&rounded.1 .0, &exact.1 .0) < 2e-2);
}

/// The tape with bf16 residuals (`Tape::with_residuals`) keeps the values the static code's
/// `residuals = "bf16"` keeps rounded, in functions without loops: the same bytes, and the
/// same gradients (here bit for bit: both engines' kernels read the same rounded values in
/// the same order). Two tanh layers: h and the second layer's output, 2 bytes each.
#[test]
fn the_tape_with_bf16_residuals_is_the_static_codes_on_tanh_layers() {
    use autodiff::runtime::kernels::packed::Half;
    use autodiff::runtime::tape::Tape;
    let (x, w1, w2) = layer_inputs();
    let (value, statics) = layer_bf16_grad(&x, &w1, &w2);
    let (_, exact) = layer_full_grad(&x, &w1, &w2);
    let tape = Tape::with_residuals(Half::Bf16);
    let (xv, w1v, w2v) = (tape.param(&x), tape.param(&w1), tape.param(&w2));
    let y = layer_full_on_tape(&xv, &w1v, &w2v);
    assert_eq!(y.scalar(), value);
    assert_eq!(Some(tape.memory().saved_bytes), layer_bf16_residual_bytes(&x, &w1, &w2));
    let mut grads = tape.backward(&y);
    let taped = (grads.take_as(&xv), grads.take_as(&w1v), grads.take_as(&w2v));
    let pairs = [
        (&taped.0, &statics.0, &exact.0),
        (&taped.1, &statics.1, &exact.1),
        (&taped.2, &statics.2, &exact.2),
    ];
    for (k, (tape, statics, exact)) in pairs.into_iter().enumerate() {
        assert_eq!(tape, statics, "gradient {k}: the tape's and the static code's");
        // The rounding is there: both are off the full-precision gradient (by 3e-3 to 4e-3).
        assert!(error_of_largest(statics, exact) > 1e-4, "gradient {k}");
    }
}

/// The same on the study's convolutional block (conv2d → batch norm → relu → sum, every input):
/// both keep the convolution's output rounded, batch norm's statistics and relu's sign bits as
/// they are, and run batch norm's measuring sums in backward. Bit for bit here too.
#[test]
fn the_tape_with_bf16_residuals_is_the_static_codes_on_a_conv_block() {
    use autodiff::runtime::kernels::packed::Half;
    use autodiff::runtime::tape::Tape;
    let (x, w, bias, gamma, beta) = block_inputs();
    let (value, statics) = block_bf16_grad(&x, &w, &bias, &gamma, &beta);
    let (_, exact) = block_full_grad(&x, &w, &bias, &gamma, &beta);
    let tape = Tape::with_residuals(Half::Bf16);
    let leaves = (
        tape.param(&x),
        tape.param(&w),
        tape.param(&bias),
        tape.param(&gamma),
        tape.param(&beta),
    );
    let y = block_full_on_tape(&leaves.0, &leaves.1, &leaves.2, &leaves.3, &leaves.4);
    assert_eq!(y.scalar(), value);
    assert_eq!(
        Some(tape.memory().saved_bytes),
        block_bf16_residual_bytes(&x, &w, &bias, &gamma, &beta)
    );
    let mut grads = tape.backward(&y);
    let taped = (
        grads.take_as::<Ix4>(&leaves.0),
        grads.take_as::<Ix4>(&leaves.1),
        grads.take_as::<Ix1>(&leaves.2),
        grads.take_as::<Ix1>(&leaves.3),
        grads.take_as::<Ix1>(&leaves.4),
    );
    let (taped, statics, exact) = (block_flat(&taped), block_flat(&statics), block_flat(&exact));
    assert_eq!(taped, statics, "the tape's gradients and the static code's");
    // Both off the full-precision gradients by the rounding (7e-4 of the largest entry).
    assert!(error_of_all(&statics, &exact) > 1e-4);
}

/// The study's RNN, small: `h ← tanh(h·w + x_t·u)` from the parameter `h0`, loss against a
/// target.
#[differentiate(wrt(w, u), name = rnn_auto)]
#[differentiate(wrt(w, u), residuals = "bf16", name = rnn_bf16)]
fn rnn(h0: &Array2<f64>, w: &Array2<f64>, u: &Array2<f64>, xs: &[Array2<f64>], target: &Array2<f64>) -> f64 {
    let mut h = h0.to_owned();
    for x in xs {
        h = (h.dot(w) + x.dot(u)).tanh();
    }
    mse(&h, target)
}

/// A loop holds each state once: the states it made, shared by the iteration that made one
/// and the next, and neither a copy of `h0` (the parameter, which backward borrows) nor a
/// second copy of the final state (which the loss keeps for the last iteration too). What
/// is left beside the states is the contexts' bookkeeping, well under a state's bytes.
/// Under bf16 every state it made is packed, the last by the code around the loop, which
/// keeps it for the loss and for the loop's last iteration.
#[test]
fn a_loop_holds_each_state_once() {
    let mut r = rng(11);
    let inputs = |r: &mut _, batch: usize, width: usize, steps: usize| {
        let xs: Vec<Array2<f64>> = (0..steps).map(|_| random(r, (batch, width))).collect();
        let (h0, w, u, target) = (
            random(r, (batch, width)),
            random(r, (width, width)),
            random(r, (width, width)),
            random(r, (batch, width)),
        );
        (h0, w, u, xs, target)
    };
    let (h0, w, u, xs, target) = inputs(&mut r, 3, 4, 3);
    autodiff::check!(rnn_auto, &h0, &w, &u, &xs, &target);
    // States large beside the contexts' bookkeeping.
    let (batch, width, steps) = (32, 64, 6);
    let (h0, w, u, xs, target) = inputs(&mut r, batch, width, steps);
    let state = batch * width * 8;
    let (_, auto) = held_by_forward!(rnn_auto_forward(&h0, &w, &u, &xs, &target));
    assert!(
        auto >= steps * state && auto < steps * state + state / 4,
        "{auto} B for {steps} states of {state} B"
    );
    let (_, bf16) = held_by_forward!(rnn_bf16_forward(&h0, &w, &u, &xs, &target));
    let packed = steps * state / 4;
    assert!(
        bf16 >= packed && bf16 < packed + state / 4,
        "{bf16} B, {packed} B of states"
    );
    let (exact, rounded) = (
        rnn_auto_grad(&h0, &w, &u, &xs, &target),
        rnn_bf16_grad(&h0, &w, &u, &xs, &target),
    );
    for (g, e) in [(&rounded.1 .0, &exact.1 .0), (&rounded.1 .1, &exact.1 .1)] {
        let error = error_of_largest(g, e);
        assert!(error > 0.0 && error < 2e-2, "{error}");
    }
}

/// The tape with bf16 residuals and the static code's `residuals = "bf16"` on the RNN: the
/// tape packs every state it saves (`h0`, a leaf, it keeps as it is); the static code packs
/// the states its loop made, and the code around the loop packs the last one, which the loss
/// keeps. The same rounded values read in the same order: the same gradients, bit for bit.
#[test]
fn the_tape_with_bf16_residuals_is_the_static_codes_on_a_loop() {
    use autodiff::runtime::kernels::packed::Half;
    use autodiff::runtime::tape::Tape;
    let mut r = rng(12);
    let (batch, width, steps) = (4, 8, 5);
    let xs: Vec<Array2<f64>> = (0..steps).map(|_| random(&mut r, (batch, width))).collect();
    let (h0, w, u, target) = (
        random(&mut r, (batch, width)),
        random(&mut r, (width, width)),
        random(&mut r, (width, width)),
        random(&mut r, (batch, width)),
    );
    let (value, statics) = rnn_bf16_grad(&h0, &w, &u, &xs, &target);
    let tape = Tape::with_residuals(Half::Bf16);
    let (h0v, wv, uv, tv) = (
        tape.constant(&h0),
        tape.param(&w),
        tape.param(&u),
        tape.constant(&target),
    );
    let xsv: Vec<_> = xs.iter().map(|x| tape.constant(x)).collect();
    let y = rnn_auto_on_tape(&h0v, &wv, &uv, &xsv, &tv);
    assert_eq!(y.scalar(), value);
    let mut grads = tape.backward(&y);
    let taped = (grads.take_as(&wv), grads.take_as(&uv));
    assert_eq!(taped.0, statics.0, "w");
    assert_eq!(taped.1, statics.1, "u");
    let (_, exact) = rnn_auto_grad(&h0, &w, &u, &xs, &target);
    assert!(error_of_largest(&statics.0, &exact.0) > 0.0, "rounded");
}
