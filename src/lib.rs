#![warn(missing_docs)]
//! Compile-time reverse-mode automatic differentiation for functions over
//! `ndarray` arrays, and a dynamic tape built on the same kernels.
//!
//! The README follows; its Rust examples run as doctests.
#![doc = include_str!("../README.md")]

// The generated code names `::autodiff`, here too (for `layers`).
extern crate self as autodiff;

pub mod layers;

pub use autodiff_macros::{check, differentiate};
pub use autodiff_runtime as runtime;
/// Optimizers ([`optim::Sgd`], [`optim::Adam`], [`optim::AdamW`]) that step parameters
/// with the gradients `_grad` returns, in any [`optim::Params`] structure.
pub use autodiff_runtime::optim;
pub use autodiff_runtime::{Float, Plan};
/// The `ndarray` crate this library is built on, so that user crates never
/// depend on a second (possibly mismatched) version.
pub use ndarray;

/// Everything a differentiable function needs, in one import.
pub mod prelude {
    pub use crate::differentiate;
    pub use autodiff_runtime::ops::*;
    pub use autodiff_runtime::tape::{Tape, Var};
    pub use autodiff_runtime::Float;
    pub use ndarray::{
        array, Array, Array0, Array1, Array2, Array3, Array4, ArrayD, ArrayView1, ArrayView2, Axis, Ix1, Ix2, Ix3, Ix4,
        IxDyn,
    };
}
