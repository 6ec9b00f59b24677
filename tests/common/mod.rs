//! Helpers shared by the integration tests: seeded random arrays.

#![allow(dead_code)]

use autodiff::ndarray::{Array, Dimension, IntoDimension};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A deterministic generator for one test.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// An array of the given shape with entries uniform in `[lo, hi)`.
pub fn uniform<Sh: IntoDimension>(rng: &mut StdRng, shape: Sh, lo: f64, hi: f64) -> Array<f64, Sh::Dim>
where
    Sh::Dim: Dimension,
{
    Array::from_shape_simple_fn(shape, || rng.gen_range(lo..hi))
}

/// An array of the given shape with entries uniform in `[-1, 1)`.
pub fn random<Sh: IntoDimension>(rng: &mut StdRng, shape: Sh) -> Array<f64, Sh::Dim>
where
    Sh::Dim: Dimension,
{
    uniform(rng, shape, -1.0, 1.0)
}

/// An array of the given shape with entries uniform in `[0.5, 2)` (safe for `ln`, `sqrt`, division).
pub fn positive<Sh: IntoDimension>(rng: &mut StdRng, shape: Sh) -> Array<f64, Sh::Dim>
where
    Sh::Dim: Dimension,
{
    uniform(rng, shape, 0.5, 2.0)
}
