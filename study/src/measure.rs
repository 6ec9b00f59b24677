//! Timing and memory measurement: warm-up, repetitions, median/min/max, and
//! heap bytes read from the counting allocator that `main.rs` installs.
//!
//! A sample is one call of a closure that does its own untimed setup (record a
//! graph, run a forward pass), times only the region of interest with
//! [`Instant`], and drops its results after the clock stopped. The modes of a
//! case are sampled interleaved (static, tape, floor, static, tape, ...), so a
//! slow drift of the machine (frequency, other processes) hits them alike.

use std::time::{Duration, Instant};

use autodiff::runtime::alloc;
use serde::{Deserialize, Serialize};

/// One timed sample: a closure that sets up, times its region and returns the duration.
pub type Sampler<'a> = Box<dyn FnMut() -> Duration + 'a>;

/// Median and spread of a set of samples, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// The median sample (mean of the two middle ones for an even count).
    pub median: f64,
    /// The fastest sample.
    pub min: f64,
    /// The slowest sample.
    pub max: f64,
    /// How many samples (after warm-up).
    pub samples: usize,
}

impl Stats {
    /// Statistics of samples given in microseconds. Empty input gives all zeros.
    pub fn from_micros(mut samples: Vec<f64>) -> Stats {
        if samples.is_empty() {
            return Stats::default();
        }
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        let median = if n % 2 == 1 {
            samples[n / 2]
        } else {
            0.5 * (samples[n / 2 - 1] + samples[n / 2])
        };
        Stats {
            median,
            min: samples[0],
            max: samples[n - 1],
            samples: n,
        }
    }
}

/// How many samples to take.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Untimed runs of every sampler first (caches, allocator pools, lazy init).
    pub warmup: usize,
    /// Timed runs of every sampler.
    pub reps: usize,
    /// Stop sampling early once a sampler has used this much time in total
    /// (with at least 3 samples), so that the large cases stay bounded.
    pub max_time: Duration,
}

/// Runs every sampler `budget.warmup` times, then `budget.reps` rounds of all of
/// them in turn, and returns one [`Stats`] per sampler, in order.
///
/// `tick` is called once per timed round (for the progress bar).
pub fn interleaved(samplers: &mut [Sampler<'_>], budget: Budget, mut tick: impl FnMut()) -> Vec<Stats> {
    for _ in 0..budget.warmup {
        for sampler in samplers.iter_mut() {
            std::hint::black_box(sampler());
        }
    }
    let mut micros: Vec<Vec<f64>> = vec![Vec::with_capacity(budget.reps); samplers.len()];
    let mut spent = vec![Duration::ZERO; samplers.len()];
    for round in 0..budget.reps {
        for (i, sampler) in samplers.iter_mut().enumerate() {
            let elapsed = sampler();
            spent[i] += elapsed;
            micros[i].push(elapsed.as_secs_f64() * 1e6);
        }
        tick();
        if round >= 2 && spent.iter().any(|&s| s > budget.max_time) {
            break;
        }
    }
    micros.into_iter().map(Stats::from_micros).collect()
}

/// Times `f` once, returning its result (to be dropped by the caller, after
/// the clock stopped) and the elapsed time.
#[inline]
pub fn time<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let start = Instant::now();
    let result = std::hint::black_box(f());
    (result, start.elapsed())
}

/// What one forward+backward run did to the heap, read from the counting allocator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// The most bytes live at once during forward+backward, above the bytes
    /// live before it (the inputs are not counted: every mode shares them).
    pub peak_bytes: usize,
    /// Bytes live between forward and backward, above the same baseline: what
    /// the mode keeps for its backward pass (context or tape, plus the output).
    pub held_bytes: usize,
    /// What the mode itself says it holds (`Context::held_bytes` for the static
    /// mode, `Tape::memory()` for the tape, the saved arrays for the floor).
    pub held_bytes_reported: usize,
}

/// Helper for a memory measurement: call [`MemoryProbe::start`] before the
/// forward pass, [`MemoryProbe::after_forward`] between forward and backward,
/// and [`MemoryProbe::finish`] after the backward pass (before dropping its gradients).
pub struct MemoryProbe {
    baseline: usize,
    held: usize,
}

impl MemoryProbe {
    /// Opens a new measurement window at the current heap size.
    pub fn start() -> MemoryProbe {
        alloc::reset_peak();
        MemoryProbe {
            baseline: alloc::current_bytes(),
            held: 0,
        }
    }

    /// Records the bytes live now, above the baseline.
    pub fn after_forward(&mut self) {
        self.held = alloc::current_bytes().saturating_sub(self.baseline);
    }

    /// Closes the window.
    pub fn finish(self, held_bytes_reported: usize) -> Memory {
        Memory {
            peak_bytes: alloc::peak_bytes().saturating_sub(self.baseline),
            held_bytes: self.held,
            held_bytes_reported,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_median_odd_and_even() {
        let s = Stats::from_micros(vec![5.0, 1.0, 3.0]);
        assert_eq!((s.median, s.min, s.max, s.samples), (3.0, 1.0, 5.0, 3));
        let s = Stats::from_micros(vec![4.0, 1.0, 3.0, 2.0]);
        assert_eq!(s.median, 2.5);
        assert_eq!(Stats::from_micros(vec![]).samples, 0);
    }

    #[test]
    fn interleaved_runs_each_sampler_reps_times() {
        let mut calls = [0usize; 2];
        let (a, b) = calls.split_at_mut(1);
        let mut samplers: Vec<Sampler<'_>> = vec![
            Box::new(|| {
                a[0] += 1;
                Duration::from_micros(2)
            }),
            Box::new(|| {
                b[0] += 1;
                Duration::from_micros(4)
            }),
        ];
        let budget = Budget {
            warmup: 1,
            reps: 5,
            max_time: Duration::from_secs(1),
        };
        let stats = interleaved(&mut samplers, budget, || {});
        drop(samplers);
        assert_eq!(calls, [6, 6]);
        assert_eq!(stats[0].median, 2.0);
        assert_eq!(stats[1].median, 4.0);
        assert_eq!(stats[1].samples, 5);
    }
}
