//! The alternating (paired) timing harness shared by the benches that compare
//! generated gradients with hand-written ones.
//!
//! The machine these run on is shared, so criterion's separate runs of two
//! variants can see different loads. [`paired`] times two variants alternately,
//! call by call, and reports the median of the per-round ratios, which load
//! drift affects far less.
//!
//! This is a module of each bench target, not a bench itself: cargo discovers
//! `benches/*.rs` and `benches/*/main.rs`, not `benches/common/mod.rs`.

use std::time::{Duration, Instant};

/// The median of `values` (which it sorts).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Times `first` and `second` alternately (ABBA order, against drift) for about
/// `budget`, each call returning the duration of its own timed part. Returns the
/// median µs of each and the median of the per-round ratios `first / second`.
pub fn paired(
    mut first: impl FnMut() -> Duration,
    mut second: impl FnMut() -> Duration,
    budget: Duration,
) -> (f64, f64, f64) {
    // One untimed round warms caches and the allocator.
    first();
    second();
    let (mut a, mut b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let start = Instant::now();
    while ratios.len() < 11 || start.elapsed() < budget {
        let (ta, tb) = if ratios.len() % 2 == 0 {
            let ta = first();
            (ta, second())
        } else {
            let tb = second();
            (first(), tb)
        };
        let (ta, tb) = (ta.as_secs_f64() * 1e6, tb.as_secs_f64() * 1e6);
        a.push(ta);
        b.push(tb);
        ratios.push(ta / tb);
    }
    (median(&mut a), median(&mut b), median(&mut ratios))
}

/// Times one call of `run`, dropping its result outside the timing.
pub fn timed<R>(mut run: impl FnMut() -> R) -> impl FnMut() -> Duration {
    move || {
        let start = Instant::now();
        let result = run();
        let elapsed = start.elapsed();
        drop(result);
        elapsed
    }
}

/// Times `backward` on a context made by `prepare` outside the timing.
pub fn timed_backward<C, R>(
    mut prepare: impl FnMut() -> C,
    mut backward: impl FnMut(C) -> R,
) -> impl FnMut() -> Duration {
    move || {
        let context = prepare();
        let start = Instant::now();
        let result = backward(context);
        let elapsed = start.elapsed();
        drop(result);
        elapsed
    }
}

/// One line of a paired summary: both medians and the median ratio.
pub fn report(case: &str, what: &str, (first, second, ratio): (f64, f64, f64)) {
    println!("{case:<18} {what:<28} {first:>10.1} µs {second:>10.1} µs   ratio {ratio:.3}");
}

/// A fixed pseudo-random `f32` array in [-1, 1): the same inputs on every run.
#[allow(dead_code)] // not every bench draws its inputs here
pub fn random<D: ndarray::Dimension, Sh: ndarray::ShapeBuilder<Dim = D>>(
    shape: Sh,
    seed: u64,
) -> ndarray::Array<f32, D> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ndarray::Array::from_shape_simple_fn(shape, || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    })
}

/// The time each [`paired`] comparison runs for: `BUDGET_MS` milliseconds, 2000 unless set.
#[allow(dead_code)] // not every bench reads it
pub fn budget() -> Duration {
    Duration::from_millis(
        std::env::var("BUDGET_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000),
    )
}
