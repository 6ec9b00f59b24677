//! Central finite differences: the independent oracle that every gradient test
//! of both modes is checked against.
//!
//! Run it in `f64`: with step `h = 1e-6` the truncation error is `O(h²)` and the
//! rounding error `O(ε/h)`, so well-scaled gradients agree to about `1e-9`.

use ndarray::{Array, Dimension, IntoDimension};

use crate::Float;

/// The default step of [`numeric_gradient`] for a float type: `1e-6` in `f64`,
/// `1e-2` in `f32` (where rounding error dominates sooner).
pub fn default_step<F: Float>() -> F {
    if F::NAME == "f64" {
        F::of(1e-6)
    } else {
        F::of(1e-2)
    }
}

/// The gradient of `f` at `x` by central differences, `(f(x + h·eᵢ) - f(x - h·eᵢ)) / 2h`
/// for every element `i`, with the step scaled by `max(1, |xᵢ|)`.
///
/// `f` is called `2·x.len()` times on a perturbed copy of `x`.
pub fn numeric_gradient<F, D>(mut f: impl FnMut(&Array<F, D>) -> F, x: &Array<F, D>, step: F) -> Array<F, D>
where
    F: Float,
    D: Dimension,
{
    let mut probe = x.to_owned();
    let mut gradient = Array::zeros(x.raw_dim());
    let indices: Vec<D::Pattern> = x.indexed_iter().map(|(index, _)| index).collect();
    for index in indices {
        let idx = index.into_dimension();
        let original = probe[idx.clone()];
        let h = step * F::one().max(original.abs());
        probe[idx.clone()] = original + h;
        let plus = f(&probe);
        probe[idx.clone()] = original - h;
        let minus = f(&probe);
        probe[idx.clone()] = original;
        gradient[idx] = (plus - minus) / (h + h);
    }
    gradient
}

/// The derivative of a function of one scalar by central differences.
pub fn numeric_derivative<F: Float>(mut f: impl FnMut(F) -> F, x: F, step: F) -> F {
    let h = step * F::one().max(x.abs());
    (f(x + h) - f(x - h)) / (h + h)
}

/// The worst relative error between an analytic and a reference gradient:
/// `max_i |a_i - r_i| / max(|a_i|, |r_i|, floor)` with `floor = max(1e-3 · max_j |r_j|, 1e-3)`,
/// so that components that are tiny next to the rest, or tiny in absolute terms (a
/// gradient that is mathematically zero, where finite differences leave ~1e-10 of
/// rounding noise), are judged on an absolute scale instead of their own.
///
/// A NaN or infinity anywhere gives `f64::INFINITY`.
///
/// # Panics
/// If the shapes differ; the message names both.
pub fn max_relative_error<F, D>(analytic: &Array<F, D>, reference: &Array<F, D>) -> f64
where
    F: Float,
    D: Dimension,
{
    assert_eq!(
        analytic.shape(),
        reference.shape(),
        "max_relative_error: analytic gradient shape {:?} differs from reference shape {:?}",
        analytic.shape(),
        reference.shape()
    );
    let to_f64 = |v: F| v.to_f64().unwrap_or(f64::NAN);
    let scale = reference.iter().map(|&r| to_f64(r).abs()).fold(0.0, f64::max);
    let floor = (1e-3 * scale).max(1e-3);
    let mut worst: f64 = 0.0;
    for (&a, &r) in analytic.iter().zip(reference.iter()) {
        let (a, r) = (to_f64(a), to_f64(r));
        if !a.is_finite() || !r.is_finite() {
            return f64::INFINITY;
        }
        let err = (a - r).abs() / a.abs().max(r.abs()).max(floor);
        worst = worst.max(err);
    }
    worst
}

/// [`max_relative_error`] for two scalars.
pub fn relative_error<F: Float>(analytic: F, reference: F) -> f64 {
    max_relative_error(&ndarray::arr0(analytic), &ndarray::arr0(reference))
}

/// Checks `analytic` against central differences of `f` at `x` and returns the
/// worst relative error (see [`max_relative_error`]).
pub fn check_gradient<F, D>(f: impl FnMut(&Array<F, D>) -> F, x: &Array<F, D>, analytic: &Array<F, D>) -> f64
where
    F: Float,
    D: Dimension,
{
    let numeric = numeric_gradient(f, x, default_step::<F>());
    max_relative_error(analytic, &numeric)
}

/// One differentiated parameter's agreement between the static gradient, the
/// tape's gradient and central finite differences.
#[derive(Clone, Debug)]
pub struct CheckEntry {
    /// The parameter's name.
    pub param: &'static str,
    /// Worst relative error of the static (generated) gradient against finite differences.
    pub static_vs_fd: f64,
    /// Worst relative error of the tape's gradient against finite differences.
    pub tape_vs_fd: f64,
    /// Worst relative error of the static gradient against the tape's.
    pub static_vs_tape: f64,
}

impl CheckEntry {
    /// Compares the three gradients of one parameter.
    pub fn new<F: Float, D: Dimension>(
        param: &'static str,
        static_grad: &Array<F, D>,
        tape_grad: &Array<F, D>,
        numeric: &Array<F, D>,
    ) -> Self {
        CheckEntry {
            param,
            static_vs_fd: max_relative_error(static_grad, numeric),
            tape_vs_fd: max_relative_error(tape_grad, numeric),
            static_vs_tape: max_relative_error(static_grad, tape_grad),
        }
    }

    /// [`CheckEntry::new`] for a float parameter.
    pub fn new_scalar<F: Float>(param: &'static str, static_grad: F, tape_grad: F, numeric: F) -> Self {
        Self::new(
            param,
            &ndarray::arr0(static_grad),
            &ndarray::arr0(tape_grad),
            &ndarray::arr0(numeric),
        )
    }

    /// The worst of the three errors.
    pub fn worst(&self) -> f64 {
        self.static_vs_fd.max(self.tape_vs_fd).max(self.static_vs_tape)
    }
}

/// The three-way gradient check of one differentiated function (static, tape,
/// finite differences), as produced by the generated `<name>_check` function and
/// the `autodiff::check!` macro.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// The function's name (the generated items' prefix).
    pub function: &'static str,
    /// The float type the check ran in (`"f32"` or `"f64"`).
    pub float: &'static str,
    /// One entry per differentiated parameter.
    pub entries: Vec<CheckEntry>,
}

impl CheckReport {
    /// The worst relative error over all parameters and comparisons.
    pub fn worst(&self) -> f64 {
        self.entries.iter().map(CheckEntry::worst).fold(0.0, f64::max)
    }

    /// The default tolerance for the report's float type: `1e-6` in `f64`, `5e-2` in `f32`
    /// (where finite differences themselves are only good to a few digits).
    pub fn default_tolerance(&self) -> f64 {
        if self.float == "f64" {
            1e-6
        } else {
            5e-2
        }
    }

    /// Panics with the whole report if any error exceeds `tolerance`.
    pub fn assert_within(&self, tolerance: f64) {
        assert!(
            self.worst() <= tolerance,
            "gradient check failed (tolerance {tolerance:e}):\n{self}"
        );
    }
}

impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "gradient check of `{}` in {} (worst relative errors):",
            self.function, self.float
        )?;
        for e in &self.entries {
            writeln!(
                f,
                "  {:>12}: static vs fd {:.2e}, tape vs fd {:.2e}, static vs tape {:.2e}",
                e.param, e.static_vs_fd, e.tape_vs_fd, e.static_vs_tape
            )?;
        }
        Ok(())
    }
}
