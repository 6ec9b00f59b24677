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

/// The bytes a forward half leaves allocated when it returns (what its context holds,
/// its value being a float), measured by the counting allocator's counter of the calling
/// thread (where the kernels run at one thread), which other tests' threads do not move.
/// Asserts that the context's own account (`held_bytes()`) agrees. For test binaries whose
/// global allocator is `autodiff::runtime::alloc::CountingAllocator`.
#[allow(unused_macros)] // each test binary compiles this module; only some count bytes
macro_rules! held_by_forward {
    ($forward:ident($($arg:expr),*)) => {{
        // Once first: the GEMM's thread-local workspace is allocated at its first call.
        let _ = $forward($($arg),*);
        let before = autodiff::runtime::alloc::thread_bytes();
        let (value, ctx) = $forward($($arg),*);
        let held = usize::try_from(autodiff::runtime::alloc::thread_bytes() - before)
            .expect("forward freed more than it allocated");
        assert_eq!(held, ctx.held_bytes(), "{}: the allocator and held_bytes() disagree", stringify!($forward));
        (value, held)
    }};
}
#[allow(unused_imports)]
pub(crate) use held_by_forward;
