//! Checks every generated function at a few random points and reports all failures
//! at once, each with the function's source.

use std::panic::{catch_unwind, AssertUnwindSafe};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use random_functions::{Uniform, CASES, SEED};

/// Points each function is checked at.
const POINTS: u64 = 3;

struct Draws(StdRng);

impl Uniform for Draws {
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        self.0.gen_range(lo..hi)
    }
}

#[test]
fn every_random_function_has_correct_gradients() {
    assert!(!CASES.is_empty());
    let mut failures = Vec::new();
    let (mut worst, mut checked, mut kinks, mut worst_report) = (0.0f64, 0usize, 0usize, String::new());
    for (index, case) in CASES.iter().enumerate() {
        for point in 0..POINTS {
            let mut draws = Draws(StdRng::seed_from_u64(
                SEED.wrapping_mul(1000).wrapping_add(index as u64 * POINTS + point),
            ));
            // A panic (a shape error, a kernel assertion) is a failure too, not an abort of the whole run.
            let outcome = catch_unwind(AssertUnwindSafe(|| (case.check)(&mut draws)));
            let message = match outcome {
                // An empty report would pass vacuously: every function differentiates something.
                Ok(report) if report.entries.is_empty() => format!("the check compared no gradient:\n{report}"),
                // Each element within |a - b| <= atol + rtol·|b| of the f64 reference (or near a kink).
                Ok(report) if report.passed() => {
                    if report.worst_ratio() > worst {
                        worst = report.worst_ratio();
                        worst_report = format!("{report}");
                    }
                    checked += report.entries.len();
                    kinks += report.kinks();
                    continue;
                }
                Ok(report) => format!("{report}"),
                Err(panic) => {
                    let text = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
                    format!("panicked: {}", text.unwrap_or_default())
                }
            };
            failures.push(format!(
                "--- {} (seed {SEED}, point {point}):\n{message}\n{}\n",
                case.name, case.source
            ));
            break;
        }
    }
    println!(
        "seed {SEED}: {} functions, {checked} parameter gradients checked, {kinks} elements near a kink, worst error {worst:.2e} of the tolerance, in\n{worst_report}",
        CASES.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} random functions failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

/// The analyses the random functions reach, so that a change of the generator that stops
/// exercising one is noticed: the checks above pass vacuously for a decision never taken.
#[test]
fn the_random_functions_reach_every_memory_decision() {
    let plans = || CASES.iter().map(|case| case.plan);
    let recomputed = plans()
        .filter(|p| p.backward.iter().any(|l| l.ends_with("(recomputed)")))
        .count();
    assert!(recomputed > 0, "no random function recomputes a value in backward");
}
