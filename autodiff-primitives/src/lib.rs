//! One description per primitive, in the spirit of JAX's `lax.py`: everything about an op
//! sits in one row, and every part of the system reads that row.
//!
//! The descriptions are `macro_rules!` lists that call back a macro of the reader's choice
//! with every row (`for_each_unary!(my_macro)`). That way one row can carry both data (a
//! name, the forms users write, what backward reads) and code (the forward formula and the
//! derivative, as Rust over a float type `F: Float`), and neither reader depends on the
//! other:
//! - `autodiff-runtime` expands each row into its kernels (`tanh`, `tanh_grad`,
//!   `tanh_scalar`, `tanh_grad_scalar`, `TANH_SAVES`), the prelude's method and function
//!   forms, the tape's `Var` method and the tape's derivative rule;
//! - `autodiff-macros` expands the same rows into the table it lowers user code with (which
//!   names exist, in which forms, whether backward reads the input or the output) and names
//!   the kernels it emits from the row;
//! - `tests/primitives.rs` expands them into one gradient test per primitive and form,
//!   checked three ways (static code, tape, finite differences), so no row ships untested.
//!
//! Adding an elementwise function is adding one row here.

#![warn(missing_docs)]

mod binary;
mod unary;
