//! [`Params`]: what optimizers step, and what `_grad` functions return.

use crate::Float;
use ndarray::{Array, ArrayViewD, ArrayViewMutD, Dimension, IxDyn};

/// A structure of float arrays and floats (its *leaves*) that an optimizer can step:
/// the parameters a user keeps, and the gradients a `_grad` function returns.
///
/// Implemented for `Array<F, D>` of any dimension (`Array1<F>`, `Array2<F>`, `ArrayD<F>`,
/// ...), for `f32` and `f64`, for `Vec<P>` and `[P; N]` of any `P: Params<F>`, and for
/// tuples of up to 12 elements that all implement it (nested freely). So the grads
/// tuple of `loss_grad(&x, &w, &b)`, `(Array2<F>, Array2<F>, Array1<F>)`, is a
/// `Params<F>`, as is a `Vec<Array2<F>>` slice gradient.
///
/// A struct of parameters implements it by visiting its fields in a fixed order:
///
/// ```
/// use autodiff_runtime::optim::Params;
/// use ndarray::{Array1, Array2, ArrayViewD, ArrayViewMutD};
///
/// struct Linear {
///     w: Array2<f64>,
///     b: Array1<f64>,
/// }
///
/// impl Params<f64> for Linear {
///     fn visit<'a>(&'a self, f: &mut dyn FnMut(ArrayViewD<'a, f64>)) {
///         self.w.visit(f);
///         self.b.visit(f);
///     }
///     fn visit_mut(&mut self, f: &mut dyn FnMut(ArrayViewMutD<'_, f64>)) {
///         self.w.visit_mut(f);
///         self.b.visit_mut(f);
///     }
/// }
///
/// let model = Linear { w: Array2::zeros((3, 2)), b: Array1::zeros(2) };
/// assert_eq!((model.leaf_count(), model.element_count()), (2, 8));
/// ```
pub trait Params<F: Float> {
    /// Calls `f` on every leaf, in order, as a dynamic-dimension view (a float is a
    /// zero-dimensional view of one element).
    fn visit<'a>(&'a self, f: &mut dyn FnMut(ArrayViewD<'a, F>));

    /// Calls `f` on every leaf, in the same order as [`visit`](Params::visit), as a
    /// mutable view.
    fn visit_mut(&mut self, f: &mut dyn FnMut(ArrayViewMutD<'_, F>));

    /// The number of leaves (arrays and floats).
    fn leaf_count(&self) -> usize {
        let mut count = 0;
        self.visit(&mut |_| count += 1);
        count
    }

    /// The number of floats in all leaves.
    fn element_count(&self) -> usize {
        let mut count = 0;
        self.visit(&mut |leaf| count += leaf.len());
        count
    }

    /// The Euclidean norm of all leaves taken together, `sqrt(Σ x²)` (a gradient's global
    /// norm, as `torch.nn.utils.clip_grad_norm_` computes it).
    fn norm(&self) -> F {
        let mut sum = F::zero();
        self.visit(&mut |leaf| sum += leaf.iter().map(|&x| x * x).sum::<F>());
        sum.sqrt()
    }

    /// Multiplies every leaf by `factor` in place.
    fn scale(&mut self, factor: F) {
        self.visit_mut(&mut |mut leaf| leaf.mapv_inplace(|x| x * factor));
    }
}

impl<F: Float, D: Dimension> Params<F> for Array<F, D> {
    fn visit<'a>(&'a self, f: &mut dyn FnMut(ArrayViewD<'a, F>)) {
        f(self.view().into_dyn());
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(ArrayViewMutD<'_, F>)) {
        f(self.view_mut().into_dyn());
    }
}

macro_rules! impl_params_for_float {
    ($($float:ty),*) => {$(
        impl Params<$float> for $float {
            fn visit<'a>(&'a self, f: &mut dyn FnMut(ArrayViewD<'a, $float>)) {
                f(ArrayViewD::from_shape(IxDyn(&[]), std::slice::from_ref(self)).expect("one element, no axes"));
            }

            fn visit_mut(&mut self, f: &mut dyn FnMut(ArrayViewMutD<'_, $float>)) {
                f(ArrayViewMutD::from_shape(IxDyn(&[]), std::slice::from_mut(self)).expect("one element, no axes"));
            }
        }
    )*};
}

impl_params_for_float!(f32, f64);

impl<F: Float, P: Params<F>> Params<F> for Vec<P> {
    fn visit<'a>(&'a self, f: &mut dyn FnMut(ArrayViewD<'a, F>)) {
        self.as_slice().visit(f);
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(ArrayViewMutD<'_, F>)) {
        self.as_mut_slice().visit_mut(f);
    }
}

impl<F: Float, P: Params<F>, const N: usize> Params<F> for [P; N] {
    fn visit<'a>(&'a self, f: &mut dyn FnMut(ArrayViewD<'a, F>)) {
        self.as_slice().visit(f);
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(ArrayViewMutD<'_, F>)) {
        self.as_mut_slice().visit_mut(f);
    }
}

/// A slice of parameters (`&mut ws[..]`), element by element.
impl<F: Float, P: Params<F>> Params<F> for [P] {
    fn visit<'a>(&'a self, f: &mut dyn FnMut(ArrayViewD<'a, F>)) {
        for element in self {
            element.visit(f);
        }
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(ArrayViewMutD<'_, F>)) {
        for element in self {
            element.visit_mut(f);
        }
    }
}

/// `impl Params<F> for (A, B, ..)`, element by element, for every arity up to the list's.
macro_rules! impl_params_for_tuples {
    ($($name:ident . $index:tt),+) => {
        impl_params_for_tuples!(@each [] $($name . $index),+);
    };
    (@each [$($done:ident . $done_index:tt),*] $name:ident . $index:tt $(, $rest:ident . $rest_index:tt)*) => {
        impl_params_for_tuples!(@impl $($done . $done_index,)* $name . $index);
        impl_params_for_tuples!(@each [$($done . $done_index,)* $name . $index] $($rest . $rest_index),*);
    };
    (@each [$($done:ident . $done_index:tt),*]) => {};
    (@impl $($name:ident . $index:tt),+) => {
        impl<F: Float, $($name: Params<F>),+> Params<F> for ($($name,)+) {
            fn visit<'a>(&'a self, f: &mut dyn FnMut(ArrayViewD<'a, F>)) {
                $(self.$index.visit(f);)+
            }

            fn visit_mut(&mut self, f: &mut dyn FnMut(ArrayViewMutD<'_, F>)) {
                $(self.$index.visit_mut(f);)+
            }
        }
    };
}

impl_params_for_tuples!(A.0, B.1, C.2, D.3, E.4, G.5, H.6, I.7, J.8, K.9, L.10, M.11);
