//! Ready-made layers, written with `#[differentiate]` as a user's would be. A differentiated
//! function of your own crate calls them by path, with the result's type written out:
//!
//! ```
//! use autodiff::prelude::*;
//!
//! #[differentiate]
//! fn loss(x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>) -> f64 {
//!     let h: Array2<f64> = autodiff::layers::dense_tanh(x, w, b);
//!     (&h * &h).sum()
//! }
//!
//! let (x, w, b) = (Array2::ones((2, 3)), Array2::ones((3, 4)) * 0.1, Array1::zeros(4));
//! let (_, (dx, dw, db)) = loss_grad(&x, &w, &b);
//! assert_eq!((dx.dim(), dw.dim(), db.dim()), ((2, 3), (3, 4), 4));
//! ```
//!
//! Each also has the items every differentiated function returning an array has:
//! `dense_vjp(x, w, b, seed)`, `dense_forward`/`dense_backward`, `dense_on_tape`.

use crate::prelude::*;

/// An affine layer, `x·w + b`.
#[differentiate]
pub fn dense<F: Float>(x: &Array2<F>, w: &Array2<F>, b: &Array1<F>) -> Array2<F> {
    x.dot(w) + b
}

/// An affine layer followed by `tanh`, `tanh(x·w + b)`.
#[differentiate]
pub fn dense_tanh<F: Float>(x: &Array2<F>, w: &Array2<F>, b: &Array1<F>) -> Array2<F> {
    (x.dot(w) + b).tanh()
}

/// An affine layer followed by `relu`, `relu(x·w + b)`.
#[differentiate]
pub fn dense_relu<F: Float>(x: &Array2<F>, w: &Array2<F>, b: &Array1<F>) -> Array2<F> {
    relu(&(x.dot(w) + b))
}
