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
