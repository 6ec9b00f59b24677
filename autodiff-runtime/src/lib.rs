#![warn(missing_docs)]
//! The runtime of `autodiff`: everything both differentiation modes share.
//!
//! - [`kernels`]: forward and backward functions of every op, generic over [`Float`];
//! - [`dual`]: dual numbers, a [`Float`] for forward mode and second derivatives;
//! - [`ops`]: the user-facing forward ops that ndarray lacks (`relu(&z)`, `z.tanh()`, ...);
//! - [`optim`]: optimizers (SGD, Adam, AdamW) that step parameters with `_grad`'s gradients;
//! - [`tape`]: the dynamic, PyTorch-style reverse mode built on those kernels;
//! - [`gradcheck`]: central finite differences in `f64`, the oracle of every gradient test;
//! - [`alloc`]: a counting global allocator for peak-memory measurement;
//! - [`plan`]: the description of a generated gradient that `#[differentiate]` emits.
//!
//! This crate knows nothing of `syn`: the macro emits calls into it, never the reverse.

pub mod alloc;
pub mod dual;
pub mod float;
pub mod gradcheck;
pub mod kernels;
pub mod ops;
pub mod optim;
pub mod plan;
pub mod tape;

pub use float::Float;
pub use plan::Plan;

/// String equality in a constant context (`==` on `str` is not `const`): the tape's table
/// folds which kept field a backward program reads with it, and `Dual`'s `NAME` picks its
/// name with it.
pub(crate) const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}
