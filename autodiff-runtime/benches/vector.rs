//! The vectorised `f32` forward kernels (`kernels::vector`) against the scalar loops they
//! replaced: `tanh` and `exp` on 8192 elements (one step of the study's RNN, a 32×256
//! state) and 16384 (one attention softmax, 128×128), and softmax along rows of a 128×128
//! matrix.
//!
//! Not criterion: the machine this runs on is shared, so the variants are alternated, one
//! batch of calls each per round, and each variant's median (and range) over the rounds is
//! reported, so that a burst of load hits both alike. `cargo bench -p autodiff-runtime
//! --bench vector`.

use std::hint::black_box;
use std::time::Instant;

use autodiff_runtime::kernels::{softmax, unary};
use autodiff_runtime::Float;
use ndarray::{Array1, Array2, Axis};

/// The scalar forward as it was: `flat::map` of the row's formula over the slice.
fn scalar_map(a: &Array1<f32>, f: impl Fn(f32) -> f32) -> Array1<f32> {
    Array1::from_vec(a.as_slice().unwrap().iter().map(|&x| f(x)).collect())
}

/// Softmax along rows as it was: one lane at a time, scalar `exp`.
fn scalar_softmax(a: &Array2<f32>) -> Array2<f32> {
    let mut y = a.to_owned();
    for mut lane in y.lanes_mut(Axis(1)) {
        let max = lane.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let mut total = 0.0;
        lane.mapv_inplace(|v| {
            let e = (v - max).exp();
            total += e;
            e
        });
        let inv = total.recip();
        lane.mapv_inplace(|e| e * inv);
    }
    y
}

/// One variant: its name and one call.
type Variant<'a> = (String, Box<dyn FnMut() + 'a>);

/// Runs `variants` alternately for `rounds` rounds of `calls` calls each; prints the
/// median and range of each one's time per call.
fn alternate(title: &str, rounds: usize, calls: usize, variants: &mut [Variant<'_>]) {
    let mut times = vec![Vec::with_capacity(rounds); variants.len()];
    for (_, run) in variants.iter_mut() {
        for _ in 0..calls {
            run(); // warm-up
        }
    }
    for _ in 0..rounds {
        for ((_, run), times) in variants.iter_mut().zip(&mut times) {
            let start = Instant::now();
            for _ in 0..calls {
                run();
            }
            times.push(start.elapsed().as_secs_f64() / calls as f64 * 1e6);
        }
    }
    println!("{title}");
    let mut medians = Vec::new();
    for ((name, _), times) in variants.iter().zip(&mut times) {
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        medians.push(median);
        println!(
            "  {name:<28} median {median:8.2} µs  (range {:.2}–{:.2})",
            times[0],
            times[times.len() - 1]
        );
    }
    if medians.len() == 2 {
        println!("  speed-up {:.1}×", medians[0] / medians[1]);
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this once, quickly.
    let quick = !std::env::args().any(|a| a == "--bench");
    let (rounds, calls) = if quick { (3, 2) } else { (31, 200) };
    assert!(<f32 as Float>::vectorised(autodiff_runtime::kernels::vector::VectorFn::Tanh).is_some());
    for n in [8192, 16384] {
        // Pre-activations of a tanh RNN and shifted logits: spread over the ranges they take.
        let a = Array1::from_shape_fn(n, |i| ((i * 7919 % 1000) as f32 - 500.0) * 0.01);
        alternate(
            &format!("tanh, {n} f32"),
            rounds,
            calls,
            &mut [
                (
                    "scalar f32::tanh".into(),
                    Box::new(|| drop(black_box(scalar_map(black_box(&a), f32::tanh)))),
                ),
                (
                    "unary::tanh (vectorised)".into(),
                    Box::new(|| drop(black_box(unary::tanh(black_box(&a))))),
                ),
            ],
        );
        let shifted = a.mapv(|x| x * 2.0 - 10.0);
        alternate(
            &format!("exp, {n} f32"),
            rounds,
            calls,
            &mut [
                (
                    "scalar f32::exp".into(),
                    Box::new(|| drop(black_box(scalar_map(black_box(&shifted), f32::exp)))),
                ),
                (
                    "unary::exp (vectorised)".into(),
                    Box::new(|| drop(black_box(unary::exp(black_box(&shifted))))),
                ),
            ],
        );
    }
    let logits = Array2::from_shape_fn((128, 128), |(i, j)| ((i * 131 + j * 71) % 97) as f32 * 0.05 - 2.0);
    alternate(
        "softmax along rows, 128×128 f32",
        rounds,
        calls,
        &mut [
            (
                "scalar exp lanes".into(),
                Box::new(|| drop(black_box(scalar_softmax(black_box(&logits))))),
            ),
            (
                "softmax::softmax (vectorised)".into(),
                Box::new(|| drop(black_box(softmax::softmax(black_box(&logits), Axis(1))))),
            ),
        ],
    );
}
