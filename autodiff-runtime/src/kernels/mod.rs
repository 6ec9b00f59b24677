//! The kernels: for every op, a forward function and its vector-Jacobian
//! products (backward), written once and called both by the dynamic tape and by
//! the code that `#[differentiate]` generates.
//!
//! Conventions, shared by every module:
//! - Inputs are borrowed (`&ArrayBase<S, D>`, so owned arrays and views both work).
//! - A backward function takes the output's adjoint `g` and returns the adjoint of
//!   one operand with exactly that operand's shape (broadcasting is undone inside).
//!   Where it can reuse `g`'s buffer it takes `g` by value; otherwise by reference.
//! - Shape errors panic with a message that names the op and the shapes involved.

pub mod batch_norm;
pub mod binary;
pub mod conv;
pub(crate) mod flat;
pub mod fused;
pub mod gemm;
pub mod loss;
pub mod mask;
pub mod matmul;
pub mod packed;
pub mod pairwise;
pub mod pool;
pub mod rank1;
pub mod reduce;
pub mod softmax;
pub(crate) mod team;
pub mod unary;
pub mod vector;

/// Every kernel of the catalog the macro emits calls to (`autodiff_primitives::for_each_kernel!`)
/// exists here: a name the catalog lists and this crate lacks fails this crate's build.
macro_rules! catalog_exists {
    ($($module:ident { $($kernel:ident),* $(,)? })*) => {
        $(#[allow(unused_imports)] use self::$module::{$($kernel as _),*};)*
    };
}
autodiff_primitives::for_each_kernel!(catalog_exists);
