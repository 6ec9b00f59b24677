//! Gradient checking: central finite differences, the independent oracle that every
//! gradient of both modes is checked against, and the three-way [`CheckReport`] that the
//! generated `<name>_check` functions and `autodiff::check!` produce.
//!
//! Run finite differences in `f64`: with step `h = 1e-6` the truncation error is `O(h²)`
//! and the rounding error `O(ε/h)`, so well-scaled gradients agree to about `1e-9`. The
//! generated checks do so whenever the function can run in `f64` (a function generic over
//! `F: Float` is called at `f64`, whatever `F` its gradients were computed in); only a
//! function that cannot is differentiated numerically in its own type, with a step and
//! tolerances chosen for that type ([`Reference`]).
//!
//! # The criterion
//!
//! Every element is judged on its own: an analytic value `a` agrees with a reference `b`
//! when `|a − b| ≤ atol + rtol·|b|` ([`Tolerance`]), with defaults chosen per precision
//! ([`Tolerance::against_fd`], [`Tolerance::engines`]). An element where the function
//! has a kink within the finite-difference stencil (ReLU, `abs`, `max`) cannot be judged
//! by finite differences: where the estimates with different steps and sides disagree
//! ([`FdEstimates`]), an element that fails is reported as *near a kink* instead, provided
//! the analytic value lies between the slopes the function shows on either side. Every
//! other element is still judged, so a kink cannot hide a wrong gradient elsewhere.

use std::fmt;

use ndarray::{Array, ArrayBase, Data, Dimension, IntoDimension};

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
pub fn numeric_gradient<F, S, D>(mut f: impl FnMut(&Array<F, D>) -> F, x: &ArrayBase<S, D>, step: F) -> Array<F, D>
where
    F: Float,
    S: Data<Elem = F>,
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

/// Converts a float of the runtime's [`Float`] type to `f64` (exact for `f32` and `f64`).
pub fn to_f64<F: Float>(value: F) -> f64 {
    value.to_f64().unwrap_or(f64::NAN)
}

/// Converts an array of the runtime's [`Float`] type to `f64` (exactly): the generated
/// checks evaluate a generic function at `f64` on the very point the gradient was taken at.
pub fn array_to_f64<F: Float, S: Data<Elem = F>, D: Dimension>(array: &ArrayBase<S, D>) -> Array<f64, D> {
    array.mapv(to_f64)
}

// ---- the reference: finite differences, with kink evidence ---------------------------

/// The precision the finite-difference reference was computed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reference {
    /// The function was evaluated in `f64` (its gradients may have been computed in `f32`).
    F64FiniteDifferences,
    /// The function was evaluated in `f32`: it is fixed to `f32` (or cannot be called at
    /// `f64`, e.g. because a constant parameter's type mentions its float type).
    F32FiniteDifferences,
}

impl Reference {
    /// The reference computed in the float type `G`.
    pub fn of<G: Float>() -> Self {
        if G::NAME == "f64" {
            Reference::F64FiniteDifferences
        } else {
            Reference::F32FiniteDifferences
        }
    }

    /// `"f64 finite differences"` or `"f32 finite differences"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reference::F64FiniteDifferences => "f64 finite differences",
            Reference::F32FiniteDifferences => "f32 finite differences",
        }
    }

    /// The relative step of [`probe_gradient`] in this precision (scaled by `max(1, |x|)`).
    ///
    /// The central difference's error is truncation `h²·|f'''|/6` plus rounding
    /// `≈ ε·|f|/h`; the two balance at `h ≈ ε^(1/3)`. In `f64` the step stays `1e-6`
    /// ([`default_step`]), a little below the balance point `6e-6`: the error is still
    /// about `1e-10` for functions of order one, and a smaller stencil meets fewer kinks.
    /// In `f32` it is `ε^(1/3) = 2^(-23/3) ≈ 4.9e-3`. Measured on a tanh MLP in `f32`
    /// (worst error as a fraction of [`Tolerance::F32_VS_F32_FD`], 10 points): 0.54 at
    /// `h = 5e-4`, 0.27 at `1e-3`, 0.14 at `2e-3`, 0.04 at `4.9e-3`, 0.03 at `1e-2`;
    /// larger steps put more ReLU kinks inside the stencil (0, 1, 10, 38 of 1280 elements
    /// of a ReLU MLP at `1e-3`, `2e-3`, `4.9e-3`, `1e-2`), which the check then reports
    /// instead of judging.
    pub fn step(self) -> f64 {
        match self {
            Reference::F64FiniteDifferences => 1e-6,
            Reference::F32FiniteDifferences => f64::from(f32::EPSILON).cbrt(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The finite-difference estimates of one element's partial derivative at a point `x`,
/// with the element's step `h = step·max(1, |xᵢ|)`.
///
/// [`central`](Self::central) is the reference. The others are there to recognise a point
/// near a kink: for a smooth function the four second-order estimates
/// ([`central`](Self::central), [`central_half`](Self::central_half),
/// [`right`](Self::right), [`left`](Self::left)) agree to `O(h²)` plus rounding; with a
/// kink at distance `d < 2h` they do not. For a jump `Δ` in slope, the two central steps
/// differ by about `Δ·d/2h` and the two one-sided estimates by about `Δ·|1 − 3d/2h|`, so
/// that every position of the kink in the stencil shows in one or the other.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FdEstimates {
    /// `(f(x + h) − f(x − h)) / 2h`: the reference value.
    pub central: f64,
    /// `(f(x + h/2) − f(x − h/2)) / h`.
    pub central_half: f64,
    /// The second-order one-sided difference from the right, on `x, x + h, x + 2h`.
    pub right: f64,
    /// The second-order one-sided difference from the left, on `x, x − h, x − 2h`.
    pub left: f64,
    /// `(f(x + h/2) − f(x)) / (h/2)`: the slope just right of `x`.
    pub right_near: f64,
    /// `(f(x) − f(x − h/2)) / (h/2)`: the slope just left of `x`.
    pub left_near: f64,
}

impl FdEstimates {
    /// Estimates that carry no kink evidence: every one is `value` (for a reference
    /// computed elsewhere, as in [`CheckEntry::new`]).
    pub fn exact(value: f64) -> Self {
        FdEstimates {
            central: value,
            central_half: value,
            right: value,
            left: value,
            right_near: value,
            left_near: value,
        }
    }

    /// The largest difference between the four second-order estimates: `O(h²)` plus
    /// rounding where the function is smooth across the stencil, of the order of the jump
    /// in slope where it has a kink.
    pub fn spread(&self) -> f64 {
        let values = [self.central, self.central_half, self.right, self.left];
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        max - min
    }

    /// The smallest and the largest of all six estimates: the range of slopes the function
    /// shows around `x`, in which a correct gradient at a point near a kink lies.
    pub fn hull(&self) -> (f64, f64) {
        let values = [
            self.central,
            self.central_half,
            self.right,
            self.left,
            self.right_near,
            self.left_near,
        ];
        (
            values.iter().copied().fold(f64::INFINITY, f64::min),
            values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        )
    }

    /// Whether every estimate is finite.
    pub fn is_finite(&self) -> bool {
        [
            self.central,
            self.central_half,
            self.right,
            self.left,
            self.right_near,
            self.left_near,
        ]
        .iter()
        .all(|v| v.is_finite())
    }
}

/// The finite-difference estimates of a whole gradient, element by element (in logical,
/// row-major order), as [`probe_gradient`] computes them.
#[derive(Clone, Debug)]
pub struct FdProbe {
    /// The precision the function was evaluated in.
    pub reference: Reference,
    /// The shape of the probed array (`[]` for a float).
    pub shape: Vec<usize>,
    /// One set of estimates per element.
    pub elements: Vec<FdEstimates>,
}

impl FdProbe {
    /// The central differences (the reference gradient) as an array of the probed shape.
    pub fn central(&self) -> ndarray::ArrayD<f64> {
        let values = self.elements.iter().map(|e| e.central).collect();
        ndarray::ArrayD::from_shape_vec(self.shape.clone(), values).expect("FdProbe: one element per position")
    }
}

/// The partial derivatives of `f` at `x` by finite differences, element by element, with
/// the estimates [`FdEstimates`] describes. `f` is called `1 + 6·x.len()` times, in the
/// float type `G` of `x`; the arithmetic on its values is done in `f64`.
///
/// Each element's step is `h = step·max(1, |xᵢ|)` (see [`Reference::step`] for the step to
/// use), and the differences divide by the perturbations actually made (`(xᵢ + h) − xᵢ`
/// as rounded in `G`), not by the nominal `h`.
pub fn probe_gradient<G, S, D>(mut f: impl FnMut(&Array<G, D>) -> G, x: &ArrayBase<S, D>, step: G) -> FdProbe
where
    G: Float,
    S: Data<Elem = G>,
    D: Dimension,
{
    let mut probe = x.to_owned();
    let f0 = to_f64(f(&probe));
    let indices: Vec<D::Pattern> = x.indexed_iter().map(|(index, _)| index).collect();
    let mut elements = Vec::with_capacity(indices.len());
    for index in indices {
        let idx = index.into_dimension();
        let original = probe[idx.clone()];
        let h = step * G::one().max(original.abs());
        // (perturbation actually made, f there) at `multiple · h`.
        let mut at = |multiple: f64| -> (f64, f64) {
            let moved = original + h * G::of(multiple);
            probe[idx.clone()] = moved;
            let value = to_f64(f(&probe));
            probe[idx.clone()] = original;
            (to_f64(moved) - to_f64(original), value)
        };
        let (m2, m1, mh, ph, p1, p2) = (at(-2.0), at(-1.0), at(-0.5), at(0.5), at(1.0), at(2.0));
        elements.push(FdEstimates {
            central: (p1.1 - m1.1) / (p1.0 - m1.0),
            central_half: (ph.1 - mh.1) / (ph.0 - mh.0),
            right: one_sided(f0, p1, p2),
            left: one_sided(f0, m1, m2),
            right_near: (ph.1 - f0) / ph.0,
            left_near: (f0 - mh.1) / -mh.0,
        });
    }
    FdProbe {
        reference: Reference::of::<G>(),
        shape: x.shape().to_vec(),
        elements,
    }
}

/// [`probe_gradient`] for a function of one float.
pub fn probe_derivative<G: Float>(mut f: impl FnMut(G) -> G, x: G, step: G) -> FdProbe {
    probe_gradient(|p: &ndarray::Array0<G>| f(p[()]), &ndarray::arr0(x), step)
}

/// The derivative at 0 of the parabola through `(0, f0)`, `(a, fa)` and `(b, fb)`.
fn one_sided(f0: f64, (a, fa): (f64, f64), (b, fb): (f64, f64)) -> f64 {
    -(a + b) / (a * b) * f0 + b / (a * (b - a)) * fa - a / (b * (b - a)) * fb
}

// ---- the criterion --------------------------------------------------------------------

/// A per-element tolerance: `a` agrees with the reference `b` when
/// `|a − b| ≤ atol + rtol·|b|`. `rtol` bounds the error of an element relative to its own
/// size; `atol` is the noise floor for elements near zero.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// The relative part.
    pub rtol: f64,
    /// The absolute part.
    pub atol: f64,
}

impl Tolerance {
    /// An `f64` gradient against `f64` finite differences: `rtol 1e-6, atol 1e-9`.
    ///
    /// Strict on purpose: with the `1e-6` step, central differences of a smooth function
    /// of order one are good to about `1e-10` (truncation `1e-12·|f'''|/6`, rounding
    /// `≈ 1e-10·|f|`), so a gradient off by one part in a million is wrong, not noisy.
    /// `atol` is the old check's floor (`1e-6 · 1e-3`) for elements near zero. Measured:
    /// the worst element of the workspace's f64 tests uses 0.57 of it (an input of
    /// `conv_pool` beside a max-pooling tie), of the 60 random functions 0.06.
    pub const F64_VS_F64_FD: Tolerance = Tolerance { rtol: 1e-6, atol: 1e-9 };

    /// An `f32` gradient against `f64` finite differences of the same function at the same
    /// point: `rtol 1e-4, atol 1e-5`.
    ///
    /// The reference is good to about `1e-10`; what remains is the `f32` gradient's own
    /// rounding, a few `ε = 1.2e-7` per op relative to the terms summed, i.e. about `1e-6`
    /// to `1e-5` relative on a small network: `rtol` is a decade above that (≈ 840 ε).
    /// `atol` covers elements that are sums of cancelling terms, where `f32` keeps only
    /// absolute accuracy (`ε·Σ|terms|`). A wrong derivative rule is off by a factor.
    /// Measured on the ReLU and tanh MLPs of `tests/check_macro.rs`: at most 0.2% of it.
    pub const F32_VS_F64_FD: Tolerance = Tolerance { rtol: 1e-4, atol: 1e-5 };

    /// An `f32` gradient against `f32` finite differences: `rtol 1e-2, atol 1e-3`.
    ///
    /// With the step `ε^(1/3) ≈ 4.9e-3` ([`Reference::step`]), `f32` central differences
    /// carry a rounding error of about `ε·|f|/h ≈ 2.4e-5·|f|` (more when `f` sums many
    /// terms) plus a truncation error of about `4e-6·|f'''|`. This is the check of last
    /// resort, for functions that cannot run in `f64`; it still tells a wrong rule (off by
    /// a factor) from noise. On the smooth `f32` models of `tests/check_macro.rs` the worst
    /// element uses 5% of it.
    pub const F32_VS_F32_FD: Tolerance = Tolerance { rtol: 1e-2, atol: 1e-3 };

    /// The static gradient against the tape's in `f64`: `rtol 1e-10, atol 1e-12`. Both run
    /// the same kernels; only the order of some sums differs.
    pub const ENGINES_F64: Tolerance = Tolerance {
        rtol: 1e-10,
        atol: 1e-12,
    };

    /// The static gradient against the tape's in `f32`: `rtol 1e-4, atol 1e-6` (sums taken
    /// in a different order differ by a few ε of the terms summed).
    pub const ENGINES_F32: Tolerance = Tolerance { rtol: 1e-4, atol: 1e-6 };

    /// The default tolerance for gradients computed in `float` (`"f32"` or `"f64"`)
    /// against the finite differences `reference`.
    pub fn against_fd(float: &str, reference: Reference) -> Tolerance {
        match (float, reference) {
            ("f64", Reference::F64FiniteDifferences) => Self::F64_VS_F64_FD,
            (_, Reference::F64FiniteDifferences) => Self::F32_VS_F64_FD,
            (_, Reference::F32FiniteDifferences) => Self::F32_VS_F32_FD,
        }
    }

    /// The default tolerance between the static and the tape gradient computed in `float`.
    pub fn engines(float: &str) -> Tolerance {
        if float == "f64" {
            Self::ENGINES_F64
        } else {
            Self::ENGINES_F32
        }
    }

    /// The smallest disagreement between finite-difference estimates that counts as a
    /// kink, whatever the tolerance: the default tolerance of a gradient of the reference's
    /// own precision, which its rounding noise stays well inside. Without this floor, a
    /// tolerance tightened below the noise would excuse every element as near a kink.
    pub fn kink_floor(reference: Reference) -> Tolerance {
        match reference {
            Reference::F64FiniteDifferences => Self::F64_VS_F64_FD,
            Reference::F32FiniteDifferences => Self::F32_VS_F32_FD,
        }
    }

    /// `atol + rtol·|reference|`: the largest `|a − reference|` allowed.
    pub fn bound(&self, reference: f64) -> f64 {
        self.atol + self.rtol * reference.abs()
    }

    /// Whether `a` agrees with `reference` (never when either is NaN; equal infinities agree).
    pub fn allows(&self, a: f64, reference: f64) -> bool {
        a == reference || (a - reference).abs() <= self.bound(reference)
    }

    /// `|a − reference| / bound(reference)`: at most 1 when `a` is allowed (0 when equal,
    /// infinite for a NaN or infinity).
    pub fn ratio(&self, a: f64, reference: f64) -> f64 {
        if a == reference {
            return 0.0;
        }
        let ratio = (a - reference).abs() / self.bound(reference);
        if ratio.is_nan() {
            f64::INFINITY
        } else {
            ratio
        }
    }
}

impl fmt::Display for Tolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rtol {:.0e}, atol {:.0e}", self.rtol, self.atol)
    }
}

/// One gradient compared with a reference, element by element.
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    /// Flat (row-major) indices of the elements outside the tolerance.
    pub failures: Vec<usize>,
    /// Flat indices of the elements outside the tolerance but near a kink, where finite
    /// differences cannot judge them (comparisons against finite differences only).
    pub kinks: Vec<usize>,
    /// The largest [`Tolerance::ratio`] over the elements not near a kink: at most 1 when
    /// the comparison passes.
    pub worst_ratio: f64,
    /// The flat index of that element.
    pub worst_index: usize,
}

impl Comparison {
    /// Whether every element agrees or is near a kink.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// `analytic` against central differences, with kinks recognised: an element outside
    /// the tolerance is near a kink when the estimates disagree among themselves by more
    /// than both the tolerance and `kink_floor` ([`Tolerance::kink_floor`]) allow, and
    /// `analytic` lies in their range (widened by the tolerance).
    pub fn against_fd(
        analytic: &[f64],
        reference: &[FdEstimates],
        tolerance: Tolerance,
        kink_floor: Tolerance,
    ) -> Self {
        let mut out = Comparison::default();
        for (i, (&a, fd)) in analytic.iter().zip(reference).enumerate() {
            let b = fd.central;
            if tolerance.allows(a, b) {
                out.note(i, tolerance.ratio(a, b));
                continue;
            }
            let bound = tolerance.bound(b);
            let (lo, hi) = fd.hull();
            let inconsistent = fd.spread() > bound.max(kink_floor.bound(b));
            let near_kink = a.is_finite() && fd.is_finite() && inconsistent && lo - bound <= a && a <= hi + bound;
            if near_kink {
                out.kinks.push(i);
            } else {
                out.note(i, tolerance.ratio(a, b));
                out.failures.push(i);
            }
        }
        out
    }

    /// `analytic` against `reference`, element by element.
    pub fn against(analytic: &[f64], reference: &[f64], tolerance: Tolerance) -> Self {
        let mut out = Comparison::default();
        for (i, (&a, &b)) in analytic.iter().zip(reference).enumerate() {
            out.note(i, tolerance.ratio(a, b));
            if !tolerance.allows(a, b) {
                out.failures.push(i);
            }
        }
        out
    }

    fn note(&mut self, i: usize, ratio: f64) {
        if ratio > self.worst_ratio {
            self.worst_ratio = ratio;
            self.worst_index = i;
        }
    }
}

/// The verdict on one parameter's gradients under given tolerances.
#[derive(Clone, Debug)]
pub struct EntryVerdict {
    /// The static gradient against finite differences.
    pub static_vs_fd: Comparison,
    /// The tape's gradient against finite differences.
    pub tape_vs_fd: Comparison,
    /// The static gradient against the tape's.
    pub static_vs_tape: Comparison,
}

impl EntryVerdict {
    /// Whether all three comparisons passed.
    pub fn passed(&self) -> bool {
        self.static_vs_fd.passed() && self.tape_vs_fd.passed() && self.static_vs_tape.passed()
    }

    /// The flat indices of the elements near a kink (in either gradient), sorted.
    pub fn kinks(&self) -> Vec<usize> {
        union(&[&self.static_vs_fd.kinks, &self.tape_vs_fd.kinks])
    }

    /// The flat indices of the elements that failed any comparison, sorted.
    pub fn failures(&self) -> Vec<usize> {
        union(&[
            &self.static_vs_fd.failures,
            &self.tape_vs_fd.failures,
            &self.static_vs_tape.failures,
        ])
    }
}

fn union(lists: &[&Vec<usize>]) -> Vec<usize> {
    let mut all: Vec<usize> = lists.iter().flat_map(|l| l.iter().copied()).collect();
    all.sort_unstable();
    all.dedup();
    all
}

// ---- the report -----------------------------------------------------------------------

/// One differentiated parameter: its static gradient, the tape's gradient and the
/// finite-difference estimates, all in `f64`, and the legacy worst relative errors.
#[derive(Clone, Debug)]
pub struct CheckEntry {
    /// The parameter's name.
    pub param: &'static str,
    /// Worst relative error ([`max_relative_error`]) of the static gradient against the
    /// central differences, over every element, kinks included (informational).
    pub static_vs_fd: f64,
    /// Worst relative error of the tape's gradient against the central differences.
    pub tape_vs_fd: f64,
    /// Worst relative error of the static gradient against the tape's.
    pub static_vs_tape: f64,
    /// The parameter's shape (`[]` for a float).
    pub shape: Vec<usize>,
    /// The static gradient, flattened in row-major order.
    pub static_grad: Vec<f64>,
    /// The tape's gradient, flattened in row-major order.
    pub tape_grad: Vec<f64>,
    /// The finite-difference estimates, one per element.
    pub numeric: Vec<FdEstimates>,
    /// The precision they were computed in.
    pub reference: Reference,
}

impl CheckEntry {
    /// Compares the static and tape gradients of one parameter with a reference gradient
    /// computed elsewhere, in their own float type (no kink evidence: every element is judged).
    pub fn new<F: Float, D: Dimension>(
        param: &'static str,
        static_grad: &Array<F, D>,
        tape_grad: &Array<F, D>,
        numeric: &Array<F, D>,
    ) -> Self {
        let probe = FdProbe {
            reference: Reference::of::<F>(),
            shape: numeric.shape().to_vec(),
            elements: numeric.iter().map(|&v| FdEstimates::exact(to_f64(v))).collect(),
        };
        Self::from_probe(param, static_grad, tape_grad, &probe)
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

    /// Compares the static and tape gradients of one parameter with the finite differences
    /// of [`probe_gradient`], which may be of another precision.
    ///
    /// # Panics
    /// If the shapes differ; the message names them.
    pub fn from_probe<F: Float, D: Dimension>(
        param: &'static str,
        static_grad: &Array<F, D>,
        tape_grad: &Array<F, D>,
        probe: &FdProbe,
    ) -> Self {
        assert!(
            static_grad.shape() == probe.shape.as_slice() && tape_grad.shape() == probe.shape.as_slice(),
            "gradient check of `{param}`: static gradient shape {:?}, tape gradient shape {:?}, finite differences shape {:?}",
            static_grad.shape(),
            tape_grad.shape(),
            probe.shape
        );
        let static_64 = array_to_f64(static_grad).into_dyn();
        let tape_64 = array_to_f64(tape_grad).into_dyn();
        let central = probe.central();
        CheckEntry {
            param,
            static_vs_fd: max_relative_error(&static_64, &central),
            tape_vs_fd: max_relative_error(&tape_64, &central),
            static_vs_tape: max_relative_error(&static_64, &tape_64),
            shape: probe.shape.clone(),
            static_grad: static_64.iter().copied().collect(),
            tape_grad: tape_64.iter().copied().collect(),
            numeric: probe.elements.clone(),
            reference: probe.reference,
        }
    }

    /// [`CheckEntry::from_probe`] for a float parameter.
    pub fn from_probe_scalar<F: Float>(param: &'static str, static_grad: F, tape_grad: F, probe: &FdProbe) -> Self {
        Self::from_probe(param, &ndarray::arr0(static_grad), &ndarray::arr0(tape_grad), probe)
    }

    /// The worst of the three legacy relative errors.
    pub fn worst(&self) -> f64 {
        self.static_vs_fd.max(self.tape_vs_fd).max(self.static_vs_tape)
    }

    /// Judges every element: each gradient against finite differences with `fd` (kinks
    /// recognised), the static gradient against the tape's with `engines`.
    pub fn judge(&self, fd: Tolerance, engines: Tolerance) -> EntryVerdict {
        let floor = Tolerance::kink_floor(self.reference);
        EntryVerdict {
            static_vs_fd: Comparison::against_fd(&self.static_grad, &self.numeric, fd, floor),
            tape_vs_fd: Comparison::against_fd(&self.tape_grad, &self.numeric, fd, floor),
            static_vs_tape: Comparison::against(&self.static_grad, &self.tape_grad, engines),
        }
    }

    /// The multi-index `[i, j, ..]` of the flat (row-major) index `flat`.
    pub fn index_of(&self, flat: usize) -> Vec<usize> {
        let mut index = vec![0; self.shape.len()];
        let mut rest = flat;
        for (slot, &len) in index.iter_mut().zip(&self.shape).rev() {
            *slot = rest % len.max(1);
            rest /= len.max(1);
        }
        index
    }
}

/// The three-way gradient check of one differentiated function (static gradient, tape
/// gradient, finite differences), as produced by the generated `<name>_check` function
/// and asserted by `autodiff::check!`.
///
/// It holds the data; the verdict is computed under [`tolerance`](Self::tolerance)
/// (against finite differences) and [`engine_tolerance`](Self::engine_tolerance) (static
/// against tape), which [`with_rtol`](Self::with_rtol) and [`with_atol`](Self::with_atol)
/// (`check!(f, args..; rtol = .., atol = ..)`) may change after the fact.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// The function's name (the generated items' prefix).
    pub function: &'static str,
    /// The float type the gradients were computed in (`"f32"` or `"f64"`).
    pub float: &'static str,
    /// The precision of the finite differences they are checked against.
    pub reference: Reference,
    /// The tolerance against finite differences (default [`Tolerance::against_fd`]).
    pub tolerance: Tolerance,
    /// The tolerance between the static and the tape gradient (default [`Tolerance::engines`]).
    pub engine_tolerance: Tolerance,
    /// One entry per differentiated parameter.
    pub entries: Vec<CheckEntry>,
}

impl CheckReport {
    /// A report with the default tolerances for `float` and `reference`.
    pub fn new(function: &'static str, float: &'static str, reference: Reference, entries: Vec<CheckEntry>) -> Self {
        CheckReport {
            function,
            float,
            reference,
            tolerance: Tolerance::against_fd(float, reference),
            engine_tolerance: Tolerance::engines(float),
            entries,
        }
    }

    /// The report, judged with `rtol` against finite differences.
    ///
    /// # Panics
    /// If `rtol` is negative or not finite.
    pub fn with_rtol(mut self, rtol: f64) -> Self {
        assert!(
            rtol.is_finite() && rtol >= 0.0,
            "check: rtol must be finite and >= 0, got {rtol}"
        );
        self.tolerance.rtol = rtol;
        self
    }

    /// The report, judged with `atol` against finite differences.
    ///
    /// # Panics
    /// If `atol` is negative or not finite.
    pub fn with_atol(mut self, atol: f64) -> Self {
        assert!(
            atol.is_finite() && atol >= 0.0,
            "check: atol must be finite and >= 0, got {atol}"
        );
        self.tolerance.atol = atol;
        self
    }

    /// Each entry's verdict under the report's tolerances, in entry order.
    pub fn verdicts(&self) -> Vec<EntryVerdict> {
        self.entries
            .iter()
            .map(|e| e.judge(self.tolerance, self.engine_tolerance))
            .collect()
    }

    /// Whether every element of every gradient passed every comparison (elements near a
    /// kink excepted, against finite differences). An empty report passes.
    pub fn passed(&self) -> bool {
        self.verdicts().iter().all(EntryVerdict::passed)
    }

    /// The number of elements, over all parameters, that failed a comparison.
    pub fn failures(&self) -> usize {
        self.verdicts().iter().map(|v| v.failures().len()).sum()
    }

    /// The number of elements, over all parameters, reported as near a kink.
    pub fn kinks(&self) -> usize {
        self.verdicts().iter().map(|v| v.kinks().len()).sum()
    }

    /// The worst [`Tolerance::ratio`] over every comparison and every element not near a
    /// kink: at most 1 when the check passes.
    pub fn worst_ratio(&self) -> f64 {
        self.verdicts()
            .iter()
            .flat_map(|v| {
                [
                    v.static_vs_fd.worst_ratio,
                    v.tape_vs_fd.worst_ratio,
                    v.static_vs_tape.worst_ratio,
                ]
            })
            .fold(0.0, f64::max)
    }

    /// Panics with the whole report unless it [`passed`](Self::passed).
    pub fn assert_passed(&self) {
        assert!(self.passed(), "gradient check failed:\n{self}");
    }

    /// The worst legacy relative error ([`max_relative_error`]) over all parameters and
    /// comparisons, kinks included. [`passed`](Self::passed) is the verdict; this metric is
    /// kept for callers that print or bound it.
    pub fn worst(&self) -> f64 {
        self.entries.iter().map(CheckEntry::worst).fold(0.0, f64::max)
    }

    /// The legacy tolerance on [`worst`](Self::worst): `1e-6` in `f64`, `5e-2` in `f32`.
    pub fn default_tolerance(&self) -> f64 {
        if self.float == "f64" {
            1e-6
        } else {
            5e-2
        }
    }

    /// Panics with the whole report if the legacy [`worst`](Self::worst) exceeds
    /// `tolerance`. Prefer [`assert_passed`](Self::assert_passed), which judges each element
    /// and recognises kinks.
    pub fn assert_within(&self, tolerance: f64) {
        assert!(
            self.worst() <= tolerance,
            "gradient check failed (worst relative error above {tolerance:e}):\n{self}"
        );
    }
}

/// At most this many failing elements are listed per comparison.
const LISTED: usize = 4;

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdicts = self.verdicts();
        let passed = verdicts.iter().all(EntryVerdict::passed);
        writeln!(
            f,
            "gradient check of `{}`: {} gradients against {}: {}",
            self.function,
            self.float,
            self.reference,
            if passed { "passed" } else { "FAILED" }
        )?;
        writeln!(
            f,
            "  per element |a - b| <= atol + rtol·|b|; against fd {}; static vs tape {}",
            self.tolerance, self.engine_tolerance
        )?;
        writeln!(f, "  worst |a - b| / (atol + rtol·|b|) (<= 1 passes):")?;
        for (entry, verdict) in self.entries.iter().zip(&verdicts) {
            let shape = if entry.shape.is_empty() {
                "float".to_string()
            } else {
                entry.shape.iter().map(usize::to_string).collect::<Vec<_>>().join("×")
            };
            write!(
                f,
                "  {:>12} ({shape}): static vs fd {:.2e}, tape vs fd {:.2e}, static vs tape {:.2e}",
                entry.param,
                verdict.static_vs_fd.worst_ratio,
                verdict.tape_vs_fd.worst_ratio,
                verdict.static_vs_tape.worst_ratio
            )?;
            let kinks = verdict.kinks();
            if !kinks.is_empty() {
                write!(
                    f,
                    "; {} of {} near a kink (not judged by fd)",
                    kinks.len(),
                    entry.static_grad.len()
                )?;
            }
            writeln!(f, "{}", if verdict.passed() { "" } else { "  FAILED" })?;
            let comparisons = [
                ("static vs fd", &verdict.static_vs_fd, &entry.static_grad, None),
                ("tape vs fd", &verdict.tape_vs_fd, &entry.tape_grad, None),
                (
                    "static vs tape",
                    &verdict.static_vs_tape,
                    &entry.static_grad,
                    Some(&entry.tape_grad),
                ),
            ];
            for (what, comparison, analytic, tape) in comparisons {
                if comparison.passed() {
                    continue;
                }
                let tolerance = if tape.is_some() {
                    self.engine_tolerance
                } else {
                    self.tolerance
                };
                writeln!(
                    f,
                    "      {what}: {} of {} elements outside the tolerance",
                    comparison.failures.len(),
                    analytic.len()
                )?;
                let first = what.split(' ').next().unwrap_or("static");
                for &i in comparison.failures.iter().take(LISTED) {
                    let a = analytic[i];
                    let (b, reference) = match tape {
                        Some(tape) => (tape[i], format!("tape {:.6e}", tape[i])),
                        None => {
                            let fd = &entry.numeric[i];
                            let sides = format!("one-sided {:.4e} / {:.4e}", fd.left, fd.right);
                            (fd.central, format!("fd {:.6e} ({sides})", fd.central))
                        }
                    };
                    writeln!(
                        f,
                        "        at {:?}: {first} {a:.6e}, {reference}; |a - b| {:.2e} > {:.2e}",
                        entry.index_of(i),
                        (a - b).abs(),
                        tolerance.bound(b)
                    )?;
                }
                if comparison.failures.len() > LISTED {
                    writeln!(f, "        ... and {} more", comparison.failures.len() - LISTED)?;
                }
            }
        }
        let (failures, kinks): (usize, usize) = verdicts
            .iter()
            .map(|v| (v.failures().len(), v.kinks().len()))
            .fold((0, 0), |(f0, k0), (f1, k1)| (f0 + f1, k0 + k1));
        writeln!(
            f,
            "  verdict: {} ({failures} element{} failed, {kinks} near a kink)",
            if passed { "passed" } else { "FAILED" },
            if failures == 1 { "" } else { "s" }
        )
    }
}
