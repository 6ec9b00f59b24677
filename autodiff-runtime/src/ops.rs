//! The user-facing forward ops that ndarray lacks, for model functions.
//!
//! A function marked `#[differentiate]` calls these like any other function;
//! the macro recognises each one and pairs it with its backward kernel. Outside
//! the macro they are plain forward computations, so the same model code runs
//! undifferentiated too. Every op only forwards to [`crate::kernels`], so the
//! math exists in one place.
//!
//! - free functions taking references: [`relu`], [`sigmoid`], [`tanh`], [`square`],
//!   [`softplus`], [`maximum`], [`minimum`], [`mean`], [`softmax`], [`log_softmax`],
//!   [`mse`], [`cross_entropy`], [`conv2d`], [`batch_norm`], [`max_pool2d`];
//! - the method forms `z.tanh()`, `z.relu()`, `z.sigmoid()`, `z.square()`,
//!   `z.softplus()` through [`ArrayExt`]. ndarray already has `exp`, `ln`, `sqrt`, `sin`,
//!   `cos`, `abs`, `recip`, `powi` and `powf` as methods, so they are not repeated here.
//!
//! The elementwise ones are generated from the primitive table (`autodiff-primitives`).
//!
//! ```
//! use autodiff_runtime::ops::*;
//! use ndarray::{array, Axis};
//!
//! let x = array![[1.0f64, -2.0], [0.5, 3.0]];
//! let w = array![[0.5, -1.0], [2.0, 0.25]];
//! let hidden = x.dot(&w).tanh(); // the method form, from `ArrayExt`
//! let logits = relu(&hidden);
//! let probabilities = softmax(&logits, Axis(1));
//! assert!((probabilities.sum_axis(Axis(1))[0] - 1.0).abs() < 1e-12);
//! let loss = cross_entropy(&logits, &[1, 0]);
//! assert!(loss.is_finite() && loss > 0.0);
//! ```

use ndarray::{Array, Array4, ArrayBase, Axis, Data, DimMax, Dimension, Ix1, Ix2, Ix4, RemoveAxis};

use crate::kernels::{batch_norm as bn, conv, loss, pairwise, pool, reduce, softmax as sm, unary};
use crate::Float;

/// The mean of all elements.
///
/// # Panics
/// If `z` is empty.
pub fn mean<F: Float, S: Data<Elem = F>, D: Dimension>(z: &ArrayBase<S, D>) -> F {
    reduce::mean(z)
}

/// Softmax along `axis` (usually `Axis(1)`, the classes of a batch), stable for large logits.
///
/// # Panics
/// If `axis` is out of bounds.
pub fn softmax<F: Float, S: Data<Elem = F>, D: RemoveAxis>(z: &ArrayBase<S, D>, axis: Axis) -> Array<F, D> {
    sm::softmax(z, axis)
}

/// `ln softmax` along `axis`, computed directly so that it stays finite where
/// `softmax` underflows to 0.
///
/// # Panics
/// If `axis` is out of bounds.
pub fn log_softmax<F: Float, S: Data<Elem = F>, D: RemoveAxis>(z: &ArrayBase<S, D>, axis: Axis) -> Array<F, D> {
    sm::log_softmax(z, axis)
}

/// Mean squared error `mean((pred - target)²)`.
///
/// # Panics
/// If the shapes differ (the message names both) or are empty.
pub fn mse<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>, D: Dimension>(
    pred: &ArrayBase<S1, D>,
    target: &ArrayBase<S2, D>,
) -> F {
    loss::mse(pred, target)
}

/// Softmax cross-entropy of `logits` (batch × classes) against one class index
/// per row, averaged over the batch.
///
/// # Panics
/// If the batch size differs from `labels.len()` or a label is out of range.
pub fn cross_entropy<F: Float, S: Data<Elem = F>>(logits: &ArrayBase<S, Ix2>, labels: &[usize]) -> F {
    loss::cross_entropy(logits, labels)
}

/// 2-D convolution: `x` is N×C×H×W, `w` is O×C×KH×KW, `bias` has O entries.
/// Returns N×O×OH×OW with `OH = (H + 2·padding - KH)/stride + 1`.
///
/// Without a bias the array type must be named: `conv2d(&x, &w, None::<&Array1<f64>>, 1, 0)`.
///
/// # Panics
/// If the channels or the bias length disagree.
pub fn conv2d<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>, S3: Data<Elem = F>>(
    x: &ArrayBase<S1, Ix4>,
    w: &ArrayBase<S2, Ix4>,
    bias: Option<&ArrayBase<S3, Ix1>>,
    stride: usize,
    padding: usize,
) -> Array4<F> {
    conv::conv2d(x, w, bias, stride, padding)
}

/// Batch normalisation in training mode over an N×C×H×W input, with one
/// `gamma` and `beta` entry per channel.
///
/// # Panics
/// If `gamma` or `beta` do not have one entry per channel.
pub fn batch_norm<F: Float, S1: Data<Elem = F>, S2: Data<Elem = F>, S3: Data<Elem = F>>(
    x: &ArrayBase<S1, Ix4>,
    gamma: &ArrayBase<S2, Ix1>,
    beta: &ArrayBase<S3, Ix1>,
    eps: F,
) -> Array4<F> {
    bn::batch_norm(x, gamma, beta, eps)
}

/// Max pooling over `kernel`×`kernel` windows moved by `stride`, without padding.
///
/// # Panics
/// If the window does not fit the input.
pub fn max_pool2d<F: Float, S: Data<Elem = F>>(x: &ArrayBase<S, Ix4>, kernel: usize, stride: usize) -> Array4<F> {
    pool::max_pool2d(x, kernel, stride)
}

/// The prelude forms of the unary rows of the primitive table: an [`ArrayExt`] method for
/// the rows marked `ext` (ndarray has no such method), a [`FloatExt`] method for the rows
/// not marked `float` (`f32`/`f64` have no such method), a free function for those marked
/// `function`.
macro_rules! unary_forms {
    ($(
        $(#[$doc:meta])*
        $variant:ident $name:ident ($grad:ident, $scalar:ident, $grad_scalar:ident, $saves_const:ident)
            forms($($form:ident),*), domain $domain:ident,
            forward |$x:ident| $forward:expr, $(vector $vector:ident,)?
            saves $saves:ident,
            derivative |$s:ident| $derivative:expr;
    )*) => {
        /// Elementwise methods that ndarray lacks, so model code can write `z.tanh()`
        /// like it writes `z.exp()`.
        ///
        /// Implemented for every `ArrayBase<S, D>` with float elements (owned arrays and views).
        pub trait ArrayExt<F: Float, D: Dimension> {
            $(autodiff_primitives::if_form! { ext in ($($form),*) =>
                $(#[$doc])*
                fn $name(&self) -> Array<F, D>;
            })*
        }

        impl<F: Float, S: Data<Elem = F>, D: Dimension> ArrayExt<F, D> for ArrayBase<S, D> {
            $(autodiff_primitives::if_form! { ext in ($($form),*) =>
                fn $name(&self) -> Array<F, D> {
                    unary::$name(self)
                }
            })*
        }

        /// Elementwise functions as methods of floats, for the ones `f32` and `f64` lack, so
        /// that a float value reads like an array (`s.relu()`, `s.softplus()`) and a `mapv`
        /// closure can use them (`x.mapv(|v| v.relu() * v)`).
        pub trait FloatExt: Sized {
            $(autodiff_primitives::unless_form! { float in ($($form),*) =>
                $(#[$doc])*
                fn $name(self) -> Self;
            })*
        }

        impl<F: Float> FloatExt for F {
            $(autodiff_primitives::unless_form! { float in ($($form),*) =>
                fn $name(self) -> Self {
                    unary::$scalar(self)
                }
            })*
        }

        $(autodiff_primitives::if_form! { function in ($($form),*) =>
            $(#[$doc])*
            pub fn $name<F: Float, S: Data<Elem = F>, D: Dimension>(z: &ArrayBase<S, D>) -> Array<F, D> {
                unary::$name(z)
            }
        })*
    };
}

autodiff_primitives::for_each_unary!(unary_forms);

/// The prelude functions of the pairwise rows of the primitive table: `maximum(&a, &b)`, ...
macro_rules! pairwise_forms {
    ($(
        $(#[$doc:meta])*
        $variant:ident $name:ident ($grad_lhs:ident, $grad_rhs:ident) domain $domain:ident,
            forward |$a:ident, $b:ident| $forward:expr,
            derivative_lhs |$la:ident, $lb:ident| $lhs:expr,
            derivative_rhs |$ra:ident, $rb:ident| $rhs:expr;
    )*) => {$(
        $(#[$doc])*
        ///
        /// The operands broadcast together as in ndarray's arithmetic.
        ///
        /// # Panics
        /// If the shapes cannot be broadcast together; the message names both.
        pub fn $name<F, S1, S2, D1, D2>(a: &ArrayBase<S1, D1>, b: &ArrayBase<S2, D2>) -> Array<F, <D1 as DimMax<D2>>::Output>
        where
            F: Float,
            S1: Data<Elem = F>,
            S2: Data<Elem = F>,
            D1: Dimension + DimMax<D2>,
            D2: Dimension,
        {
            pairwise::$name(a, b)
        }
    )*};
}

autodiff_primitives::for_each_binary!(pairwise_forms);
