//! The tape with 16-bit residuals (`Tape::with_residuals`): gradients within the formats'
//! rounding of the tape's own in `f32`, one packed copy per computed value (counted once;
//! `tape_memory.rs` compares the count with the allocator's), and what stays as it is
//! (leaves, relu's sign masks, batch norm's statistics, max-pooling's window indices).

use autodiff_runtime::kernels::packed::Half;
use autodiff_runtime::kernels::unary;
use autodiff_runtime::tape::{Tape, Var};
use half::bf16;
use ndarray::{Array1, Array2, ArrayD, Axis, Dimension};

/// Smooth, deterministic values in about [-1, 1] (no two entries alike).
fn values<D: Dimension>(shape: impl ndarray::ShapeBuilder<Dim = D>, seed: f32) -> ndarray::Array<f32, D> {
    let mut k = 0.0f32;
    ndarray::Array::from_shape_simple_fn(shape, || {
        k += 1.0;
        (k * 0.7311 + seed).sin() * (k * 0.193 + 2.0 * seed).cos()
    })
}

/// Each gradient's largest difference from `exact`'s, relative to its largest entry; worst
/// over the gradients.
fn error_of_largest(got: &[ArrayD<f32>], exact: &[ArrayD<f32>]) -> f32 {
    assert_eq!(got.len(), exact.len());
    got.iter()
        .zip(exact)
        .map(|(g, e)| {
            assert_eq!(g.shape(), e.shape());
            let scale = e.iter().fold(0f32, |m, v| m.max(v.abs()));
            g.iter().zip(e).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale
        })
        .fold(0.0, f32::max)
}

/// The tapes compared: as computed, bf16 and f16.
fn tapes<'a>() -> [(&'static str, Tape<'a, f32>); 3] {
    [
        ("f32", Tape::new()),
        ("bf16", Tape::with_residuals(Half::Bf16)),
        ("f16", Tape::with_residuals(Half::F16)),
    ]
}

/// Checks each 16-bit tape's gradients against the `f32` tape's: within `bounds` (bf16, f16)
/// of each gradient's largest entry, and not equal (the rounding is real), the first
/// `compared` gradients (those after are 0 in exact arithmetic, which a relative error does
/// not judge). Returns the gradients of the three tapes and their saved bytes after forward.
fn compare<'a>(
    bounds: [f32; 2],
    compared: usize,
    run: impl for<'t> Fn(&'t Tape<'a, f32>) -> (Var<'t, 'a, f32>, Vec<Var<'t, 'a, f32>>),
) -> Vec<(Vec<ArrayD<f32>>, usize)> {
    let results: Vec<(Vec<ArrayD<f32>>, usize)> = tapes()
        .iter()
        .map(|(_, tape)| {
            let (loss, params) = run(tape);
            let saved = tape.memory().saved_bytes;
            let mut grads = tape.backward(&loss);
            let grads = params.iter().map(|p| grads.take(p).expect("a gradient")).collect();
            (grads, saved)
        })
        .collect();
    for ((name, _), (result, bound)) in tapes().iter().skip(1).zip(results[1..].iter().zip(bounds)) {
        let error = error_of_largest(&result.0[..compared], &results[0].0[..compared]);
        assert!(
            error < bound,
            "{name}: {error:.1e} of the largest entry (bound {bound:.0e})"
        );
        assert!(error > 0.0, "{name}: exactly the f32 tape's gradients");
    }
    results
}

/// `mse(relu(tanh(x·w1 + b1)·w2 + b2) , t)`: tanh keeps its output (rounded), the second
/// product keeps it again (the same copy), relu keeps its sign bits.
#[test]
fn an_mlp_in_sixteen_bits_is_within_their_rounding_of_f32() {
    let (x, w1, b1) = (values((16, 8), 0.1), values((8, 32), 0.2), values(32, 0.3));
    let (w2, b2, t) = (values((32, 4), 0.4) / 4.0, values(4, 0.5), values((16, 4), 0.6));
    let results = compare([2e-2, 3e-3], 4, |tape| {
        let (x, t) = (tape.constant(&x), tape.constant(&t));
        let (w1, b1, w2, b2) = (tape.param(&w1), tape.param(&b1), tape.param(&w2), tape.param(&b2));
        let h = x.dot(&w1).add(&b1).tanh();
        let y = h.dot(&w2).add(&b2).relu();
        (y.mse(&t), vec![w1, b1, w2, b2])
    });
    // h (16×32) once, relu's mask (64 bits: one word) in both; mse keeps y (computed: rounded).
    let (h, mask, y) = (16 * 32, 8, 16 * 4);
    let saved: Vec<usize> = results.iter().map(|r| r.1).collect();
    assert_eq!(
        saved,
        [h * 4 + mask + y * 4, h * 2 + mask + y * 2, h * 2 + mask + y * 2]
    );
}

/// conv2d → batch_norm → relu → max_pool2d: the convolution's output (batch norm's input) is
/// rounded; the statistics, the sign mask and the window indices are not. Batch norm reading
/// its input rounded measures its statistics (`batch_norm_sums_measuring`): the gradient of
/// the bias before it, 0 in exact arithmetic, stays at rounding level (normalising the
/// rounded input by the statistics of the unrounded one left 4e-2 in the static code).
#[test]
fn a_conv_batch_norm_relu_max_pool_block_in_sixteen_bits() {
    let (x, w) = (values((2, 3, 7, 5), 0.1), values((5, 3, 3, 3), 0.2) / 27f32.sqrt());
    let (bias, gamma, beta) = (values(5, 0.3) / 10.0, values(5, 0.4) / 5.0 + 1.0, values(5, 0.5) / 10.0);
    let results = compare([2e-2, 3e-3], 3, |tape| {
        let x = tape.constant(&x);
        let (w, bias, gamma, beta) = (tape.param(&w), tape.param(&bias), tape.param(&gamma), tape.param(&beta));
        let h = x.conv2d(&w, Some(&bias), 1, 1).batch_norm(&gamma, &beta, 1e-5).relu();
        let p = h.max_pool2d(2, 2);
        // p·p keeps p twice (one copy); sum keeps nothing.
        ((&p * &p).sum(), vec![w, gamma, beta, bias])
    });
    let conv: usize = 2 * 5 * 7 * 5;
    let pooled = 2 * 5 * 3 * 2;
    let kept_as_is = 2 * 5 * 4 + conv.div_ceil(64) * 8 + pooled; // statistics, mask, indices
    let saved: Vec<usize> = results.iter().map(|r| r.1).collect();
    assert_eq!(
        saved,
        [
            (conv + pooled) * 4 + kept_as_is,
            (conv + pooled) * 2 + kept_as_is,
            (conv + pooled) * 2 + kept_as_is
        ]
    );
    let scale = results[0].0[0].iter().fold(0f32, |m, v| m.max(v.abs()));
    for (result, name) in results.iter().zip(["f32", "bf16", "f16"]) {
        let bias = result.0[3].iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(
            bias < 1e-4 * scale,
            "{name}: the bias's gradient {bias:.1e} (w's up to {scale:.1e})"
        );
    }
}

/// Softmax attention: `softmax(q·kᵀ/√d)·v`, then an output projection and mse. Kept rounded:
/// the projections q, k, v, kᵀ, the softmax's output (read by its own rule and by the
/// product with v: one copy) and the attention's output.
#[test]
fn softmax_attention_in_sixteen_bits() {
    let (x, t) = (values((12, 16), 0.1), values((12, 16), 0.2));
    let (wq, wk, wv, wo) = (
        values((16, 8), 0.3) / 4.0,
        values((16, 8), 0.4) / 4.0,
        values((16, 8), 0.5) / 4.0,
        values((8, 16), 0.6) / 3.0,
    );
    let results = compare([2e-2, 3e-3], 4, |tape| {
        let (x, t) = (tape.constant(&x), tape.constant(&t));
        let (wq, wk, wv, wo) = (tape.param(&wq), tape.param(&wk), tape.param(&wv), tape.param(&wo));
        let (q, k, v) = (x.dot(&wq), x.dot(&wk), x.dot(&wv));
        let a = q.dot(&k.t()).div_scalar(8f32.sqrt()).softmax(Axis(1));
        let o = a.dot(&v);
        (o.dot(&wo).mse(&t), vec![wq, wk, wv, wo])
    });
    // q, kᵀ, v, o (12×8 each; k itself only through kᵀ's node, which keeps nothing), the
    // softmax's output (12×12) and the projection's output (mse keeps it).
    let bytes = |b: usize| (4 * 12 * 8 + 12 * 12 + 12 * 16) * b;
    let saved: Vec<usize> = results.iter().map(|r| r.1).collect();
    assert_eq!(saved, [bytes(4), bytes(2), bytes(2)]);
}

/// The rule reads the rounded value: `sum(tanh(x))`'s gradient is exactly `1 − bf16(tanh x)²`.
#[test]
fn the_rule_reads_the_value_rounded() {
    let a = values(100, 0.7) * 2.0;
    let tape = Tape::with_residuals(Half::Bf16);
    let x = tape.param(&a);
    let mut grads = tape.backward(&x.tanh().sum());
    let rounded = unary::tanh(&a).mapv(|t| bf16::from_f32(t).to_f32());
    assert_eq!(grads.take_as::<ndarray::Ix1>(&x), rounded.mapv(|t| 1.0 - t * t));
    assert_eq!(tape.residuals(), Some(Half::Bf16));
    assert_eq!(Tape::<f32>::new().residuals(), None);
}

/// Half the bytes for the packed value, counted once though three slots of two nodes save
/// it (`tape_memory.rs` checks the same against the counting allocator).
#[test]
fn saved_bytes_halve_and_a_value_saved_twice_counts_once() {
    let (a, w) = (values((200, 100), 0.1), values((100, 100), 0.2) / 10.0);
    let saved: Vec<(usize, usize)> = [None, Some(Half::Bf16)]
        .into_iter()
        .map(|residuals| {
            let tape = residuals.map_or_else(Tape::new, Tape::with_residuals);
            let (x, w) = (tape.constant(&a), tape.param(&w));
            let h = x.dot(&w).tanh(); // keeps h (its output)
            let _loss = (&h * &h).sum(); // keeps h twice (each operand for the other's adjoint)
            (tape.memory().saved_bytes, tape.nodes()[2].saved_bytes)
        })
        .collect();
    assert_eq!(
        saved,
        [(80_000, 160_000), (40_000, 80_000)],
        "per node, each slot counts"
    );
}

/// A computed value saved by two nodes is packed once; each node's rule unpacks it for itself,
/// and a retained graph keeps the packed copy for the next backward (same gradients).
#[test]
fn one_copy_per_value_kept_by_a_retained_graph() {
    let a = values((30, 20), 0.3);
    let tape = Tape::with_residuals(Half::Bf16);
    let x = tape.param(&a);
    let e = x.exp(); // keeps e (its output)
    let s = e.sin(); // keeps e (its input)
    let loss = (&s * &e).sum(); // keeps s and e
    assert_eq!(tape.memory().saved_bytes, 2 * 600 * 2, "e and s, once each");
    let nodes: Vec<usize> = tape.nodes().iter().map(|n| n.saved_bytes).collect();
    assert_eq!(nodes, [1200, 1200, 2400, 0]);
    let first = tape.backward_retain(&loss)[&x].clone();
    assert_eq!(tape.memory().saved_bytes, 2400, "still packed, still shared");
    let second = tape.backward(&loss)[&x].clone();
    assert_eq!(first, second);
    drop((e, s));
    assert_eq!(tape.memory().saved_bytes, 0);
}

/// Leaves stay as they are: a borrowed one costs the tape nothing, an owned one is kept
/// whole; so do 0-d values.
#[test]
fn leaves_and_scalars_are_not_packed() {
    let a = values((10, 10), 0.4);
    for tape in [Tape::<f32>::new(), Tape::with_residuals(Half::Bf16)] {
        let x = tape.param(&a);
        let owned = tape.param_owned(a.clone());
        let product = &x * &owned; // keeps both leaves
        assert_eq!(tape.memory().saved_bytes, 100 * 4, "the owned leaf, as it is");
        let s = x.sum(); // 0-d
        let scaled = owned.mul(&s.exp()); // keeps exp(s), 0-d: as it is
        let loss = product.sum().add(&scaled.sum());
        assert_eq!(
            tape.memory().saved_bytes,
            100 * 4 + 4,
            "exp keeps its 0-d output, mul the same"
        );
        let grads = tape.backward(&loss);
        assert_eq!(grads[&x].shape(), [10, 10]);
    }
}

/// A value computed from constants only (no node made it) is still the tape's array: a node
/// keeping it keeps it packed.
#[test]
fn a_value_computed_from_constants_is_packed() {
    let a = values(64, 0.5);
    let tape = Tape::with_residuals(Half::F16);
    let (c, w) = (tape.constant(&a), tape.param(&a));
    let k = c.exp();
    assert!(tape.is_empty(), "no node for exp of a constant");
    let loss = w.mul(&k).sum(); // keeps k for w's adjoint
    assert_eq!(tape.memory().saved_bytes, 64 * 2);
    let rounded = unary::exp(&a).mapv(|e| half::f16::from_f32(e).to_f32());
    assert_eq!(tape.backward(&loss)[&w], rounded.into_dyn());
}

/// relu's sign mask, batch norm's statistics and max-pooling's window indices take the same
/// bytes on both tapes; of the block only the convolution's output is halved.
#[test]
fn masks_and_aux_residuals_are_not_packed() {
    let (x, w) = (values((2, 2, 8, 8), 0.1), values((3, 2, 3, 3), 0.2));
    let (gamma, beta): (Array1<f32>, Array1<f32>) = (values(3, 0.3) + 1.0, values(3, 0.4));
    let mut per_node = Vec::new();
    for tape in [Tape::<f32>::new(), Tape::with_residuals(Half::Bf16)] {
        let (x, w) = (tape.constant(&x), tape.param(&w));
        let (gamma, beta) = (tape.param(&gamma), tape.param(&beta));
        let h = x.conv2d(&w, None, 1, 1).batch_norm(&gamma, &beta, 1e-5);
        let pooled = h.relu().max_pool2d(2, 2);
        let _ = pooled.sum();
        per_node.push(tape.nodes().iter().map(|n| (n.op, n.saved_bytes)).collect::<Vec<_>>());
    }
    let out: usize = 2 * 3 * 8 * 8;
    let (stats, mask, indices) = (2 * 3 * 4, out.div_ceil(64) * 8, out / 4);
    assert_eq!(
        per_node[0],
        [
            ("conv2d", 0),
            ("batch_norm", out * 4 + stats),
            ("relu", mask),
            ("max_pool2d", indices),
            ("sum", 0)
        ]
    );
    assert_eq!(
        per_node[1],
        [
            ("conv2d", 0),
            ("batch_norm", out * 2 + stats),
            ("relu", mask),
            ("max_pool2d", indices),
            ("sum", 0)
        ]
    );
}

/// An f64 tape keeps a quarter of the bytes, and its gradients are the rounded residuals'.
#[test]
fn an_f64_tape_keeps_a_quarter() {
    let a: Array2<f64> = values((8, 8), 0.6).mapv(f64::from);
    let tape = Tape::with_residuals(Half::Bf16);
    let x = tape.param(&a);
    let loss = x.sigmoid().sum();
    assert_eq!(tape.memory().saved_bytes, 64 * 2);
    let g = tape.backward(&loss)[&x].clone();
    let rounded = unary::sigmoid(&a).mapv(|s| bf16::from_f64(s).to_f64());
    assert_eq!(g, rounded.mapv(|s| s * (1.0 - s)).into_dyn());
}
