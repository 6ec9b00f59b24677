//! [`Var`]: a handle to a value on the tape, and every op that records on it.
//! Each op is the kernel's forward plus the node that `Tape::record` may push.

use std::fmt;
use std::ops::{Add, Div, Mul, Neg, Sub};
use std::rc::Rc;

use ndarray::{ArrayD, ArrayViewD, Axis, Ix1, Ix2, Ix4, IxDyn};

use super::op::{scalar_array, with_array, Op, Pairwise, Unary, Value};
use super::table::{reads_aux, TableOp};
use super::{Slot, Tape};
use crate::kernels::mask::SignMask;
use crate::kernels::unary::Saves;
use crate::kernels::{batch_norm, binary, conv, flat, loss, matmul, pool, reduce, softmax, unary};
use crate::Float;

/// A handle to a value on the tape, like a torch `Tensor`. Clone is cheap
/// (an `Rc`), not `Copy`. The value lives while a `Var` or a saved-tensor slot
/// refers to it.
pub struct Var<'t, 'a, F: Float> {
    tape: &'t Tape<'a, F>,
    value: Rc<Value<'a, F>>,
    id: usize,
    /// Where this value's adjoint accumulates in a backward; `Slot::None` if it requires no gradient.
    slot: Slot,
    is_leaf: bool,
}

impl<F: Float> Clone for Var<'_, '_, F> {
    fn clone(&self) -> Self {
        Var {
            tape: self.tape,
            value: Rc::clone(&self.value),
            id: self.id,
            slot: self.slot,
            is_leaf: self.is_leaf,
        }
    }
}

impl<F: Float> fmt::Debug for Var<'_, '_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Var")
            .field("id", &self.id)
            .field("shape", &self.shape())
            .field("requires_grad", &self.requires_grad())
            .field("is_leaf", &self.is_leaf)
            .finish()
    }
}

// The op methods below are `#[inline(never)]`: recording is not worth inlining, and a
// generated `_on_tape` function with thousands of ops would otherwise become one giant
// body that LLVM optimises in superlinear time (a 300-op chain went from 17 s to 11 s).
impl<'t, 'a, F: Float> Var<'t, 'a, F> {
    pub(crate) fn new(tape: &'t Tape<'a, F>, value: Rc<Value<'a, F>>, id: usize, slot: Slot, is_leaf: bool) -> Self {
        Var {
            tape,
            value,
            id,
            slot,
            is_leaf,
        }
    }

    /// Whether a saved-tensor slot holds this value (the same `Rc`).
    pub(crate) fn holds(&self, saved: &Rc<Value<'a, F>>) -> bool {
        Rc::ptr_eq(&self.value, saved)
    }

    /// Where this value's adjoint accumulates in a backward.
    pub(crate) fn slot(&self) -> Slot {
        self.slot
    }

    /// The tape this value is recorded on (to add constants to it, as generated tape code
    /// does for arrays built inside a function).
    pub fn tape(&self) -> &'t Tape<'a, F> {
        self.tape
    }

    /// The value, as a view.
    pub fn value(&self) -> ArrayViewD<'_, F> {
        self.value.view()
    }

    /// The single element of a one-element value (a 0-d scalar, or `[1]`, `[1, 1]`...).
    ///
    /// # Panics
    /// If the value does not hold exactly one element; the message names its shape.
    pub fn scalar(&self) -> F {
        let value = self.value();
        assert_eq!(
            value.len(),
            1,
            "scalar: var {} has shape {:?}, not exactly one element",
            self.id,
            self.shape()
        );
        value
            .iter()
            .copied()
            .next()
            .unwrap_or_else(|| unreachable!("one element"))
    }

    /// The shape of the value.
    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }

    // Shape queries with ndarray's names, so that a differentiated function's constant
    // `x.len() as f64` reads the same in its tape twin, where `x` is a `Var`.

    /// The number of elements, as ndarray's `len`.
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    /// Whether the value has no elements, as ndarray's `is_empty`.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of axes, as ndarray's `ndim`.
    pub fn ndim(&self) -> usize {
        self.shape().len()
    }

    /// The length of axis 0 of a matrix, as ndarray's `nrows`.
    ///
    /// # Panics
    /// If the value does not have 2 axes (ndarray has `nrows` for matrices only).
    pub fn nrows(&self) -> usize {
        self.matrix_shape("nrows")[0]
    }

    /// The length of axis 1 of a matrix, as ndarray's `ncols`.
    ///
    /// # Panics
    /// If the value does not have 2 axes.
    pub fn ncols(&self) -> usize {
        self.matrix_shape("ncols")[1]
    }

    fn matrix_shape(&self, query: &str) -> &[usize] {
        let shape = self.shape();
        assert!(
            shape.len() == 2,
            "`{query}` needs a matrix, but this value has shape {shape:?}"
        );
        shape
    }

    /// Whether gradients flow to this value: a `param` leaf, or an op result
    /// with at least one input that requires a gradient.
    pub fn requires_grad(&self) -> bool {
        self.slot != Slot::None
    }

    /// Whether this is a leaf (made by `Tape::param`, `constant`, ...), not an op result.
    pub fn is_leaf(&self) -> bool {
        self.is_leaf
    }

    /// The value's id on its tape: creation order, unique per tape.
    pub fn id(&self) -> usize {
        self.id
    }

    /// Registers `hook` to run during backward on this value's full
    /// (accumulated) gradient; if it returns `Some`, that replaces the gradient
    /// (as torch's `register_hook`). Works on leaves too (it then changes what
    /// `Gradients` returns). Hooks of one value run in registration order. A hook
    /// on a value that does not require a gradient never runs.
    pub fn register_hook(&self, hook: impl Fn(&ArrayD<F>) -> Option<ArrayD<F>> + 'a) {
        self.tape.push_hook(self.id, Box::new(hook));
    }

    fn record(&self, value: ArrayD<F>, inputs: &[&Self], make_op: impl FnOnce(&Rc<Value<'a, F>>) -> Op<'a, F>) -> Self {
        self.tape.record(value, inputs, make_op)
    }

    /// Records an op of the table: the node keeps, of what `make_op` offers, only the
    /// tensors its backward program reads for the inputs that need a gradient.
    fn record_table(
        &self,
        value: ArrayD<F>,
        inputs: &[&Self],
        make_op: impl FnOnce(&Rc<Value<'a, F>>) -> TableOp<'a, F>,
    ) -> Self {
        let needs = needs(inputs);
        self.record(value, inputs, |output| Op::Table(make_op(output).pruned(needs)))
    }

    /// This value, offered to a node (which keeps it only if its backward reads it).
    fn saved(&self) -> Option<Rc<Value<'a, F>>> {
        Some(Rc::clone(&self.value))
    }

    fn dims(&self) -> IxDyn {
        self.value.raw_dim()
    }

    // ---- elementwise binary ops, broadcasting -------------------------------

    /// `self + other`, with ndarray broadcasting.
    #[inline(never)]
    pub fn add(&self, other: &Self) -> Self {
        let y = binary::add(&self.value(), &other.value());
        self.record_table(y, &[self, other], |_| TableOp::Add {
            a_dim: self.dims(),
            b_dim: other.dims(),
        })
    }

    /// `self - other`, with ndarray broadcasting.
    #[inline(never)]
    pub fn sub(&self, other: &Self) -> Self {
        let y = binary::sub(&self.value(), &other.value());
        self.record_table(y, &[self, other], |_| TableOp::Sub {
            a_dim: self.dims(),
            b_dim: other.dims(),
        })
    }

    /// `self * other` elementwise, with ndarray broadcasting.
    #[inline(never)]
    pub fn mul(&self, other: &Self) -> Self {
        let y = binary::mul(&self.value(), &other.value());
        self.record_table(y, &[self, other], |_| TableOp::Mul {
            a_dim: self.dims(),
            b_dim: other.dims(),
            a_value: self.saved(),
            b_value: other.saved(),
        })
    }

    /// `self / other` elementwise, with ndarray broadcasting.
    #[inline(never)]
    pub fn div(&self, other: &Self) -> Self {
        let y = binary::div(&self.value(), &other.value());
        self.record_table(y, &[self, other], |_| TableOp::Div {
            a_dim: self.dims(),
            a_value: self.saved(),
            b_value: other.saved(),
        })
    }

    // ---- array-scalar ops ---------------------------------------------------

    /// `self + s`.
    #[inline(never)]
    pub fn add_scalar(&self, s: F) -> Self {
        self.record(with_array!(&*self.value, |x| binary::add_scalar(x, s)), &[self], |_| {
            Op::AddScalar
        })
    }

    /// `self - s`.
    #[inline(never)]
    pub fn sub_scalar(&self, s: F) -> Self {
        self.record(with_array!(&*self.value, |x| binary::sub_scalar(x, s)), &[self], |_| {
            Op::SubScalar
        })
    }

    /// `s - self`.
    #[inline(never)]
    pub fn scalar_sub(&self, s: F) -> Self {
        self.record(with_array!(&*self.value, |x| binary::scalar_sub(s, x)), &[self], |_| {
            Op::ScalarSub
        })
    }

    /// `self * s`.
    #[inline(never)]
    pub fn mul_scalar(&self, s: F) -> Self {
        self.record(with_array!(&*self.value, |x| binary::mul_scalar(x, s)), &[self], |_| {
            Op::MulScalar(s)
        })
    }

    /// `self / s`.
    #[inline(never)]
    pub fn div_scalar(&self, s: F) -> Self {
        self.record(with_array!(&*self.value, |x| binary::div_scalar(x, s)), &[self], |_| {
            Op::DivScalar(s)
        })
    }

    /// `s / self`.
    #[inline(never)]
    pub fn scalar_div(&self, s: F) -> Self {
        let y = with_array!(&*self.value, |x| binary::scalar_div(s, x));
        self.record(y, &[self], |_| Op::ScalarDiv {
            s,
            x: Rc::clone(&self.value),
        })
    }

    /// `-self`.
    #[inline(never)]
    pub fn neg(&self) -> Self {
        self.record_table(with_array!(&*self.value, |x| binary::neg(x)), &[self], |_| {
            TableOp::Neg {}
        })
    }

    // ---- elementwise functions ----------------------------------------------

    fn pairwise(&self, other: &Self, kind: Pairwise) -> Self {
        let y = kind.forward(&self.value(), &other.value());
        self.record(y, &[self, other], |_| Op::Pairwise {
            kind,
            a: Rc::clone(&self.value),
            b: Rc::clone(&other.value),
        })
    }

    fn unary(&self, kind: Unary) -> Self {
        let y = with_array!(&*self.value, |x| kind.forward(x));
        self.record(y, &[self], |output| match kind.saves() {
            Saves::Input => Op::Unary {
                kind,
                saved: Rc::clone(&self.value),
            },
            Saves::Output => Op::Unary {
                kind,
                saved: Rc::clone(output),
            },
            Saves::OutputSign => Op::UnarySign {
                kind,
                mask: with_array!(&**output, |y| SignMask::positive(y)),
            },
        })
    }

    /// `xⁿ` elementwise for an integer exponent.
    #[inline(never)]
    pub fn powi(&self, n: i32) -> Self {
        let y = with_array!(&*self.value, |x| unary::powi(x, n));
        self.record_table(y, &[self], |_| TableOp::Powi { x: self.saved(), n })
    }

    /// `xᵖ` elementwise for a float exponent.
    #[inline(never)]
    pub fn powf(&self, p: F) -> Self {
        let y = with_array!(&*self.value, |x| unary::powf(x, p));
        self.record_table(y, &[self], |_| TableOp::Powf { x: self.saved(), p })
    }

    /// An elementwise function `f` given with its derivative `df` (backward is
    /// `unary::map_grad`). `df` is boxed into the node; `f` is only run now.
    #[inline(never)]
    pub fn map(&self, f: impl Fn(F) -> F + 'a, df: impl Fn(F) -> F + 'a) -> Self {
        let y = with_array!(&*self.value, |x| flat::map(x, &f));
        self.record(y, &[self], |_| Op::Map {
            x: Rc::clone(&self.value),
            df: Box::new(df),
        })
    }

    // ---- linear algebra -----------------------------------------------------

    /// The matrix product, for ranks 2·2, 2·1, 1·2 and 1·1 (a 0-d result).
    ///
    /// # Panics
    /// For other ranks or mismatched inner dimensions; the message names both shapes.
    #[inline(never)]
    pub fn dot(&self, other: &Self) -> Self {
        let (a, b) = (&*self.value, &*other.value);
        match (self.shape().len(), other.shape().len()) {
            (2, 2) => {
                let y = matmul::matmul(&a.view_as::<Ix2>("dot"), &b.view_as::<Ix2>("dot"));
                self.record_table(y.into_dyn(), &[self, other], |_| TableOp::MatMul {
                    a_value: self.saved(),
                    b_value: other.saved(),
                })
            }
            (2, 1) => {
                let y = matmul::matvec(&a.view_as::<Ix2>("dot"), &b.view_as::<Ix1>("dot"));
                self.record_table(y.into_dyn(), &[self, other], |_| TableOp::MatVec {
                    a_value: self.saved(),
                    x_value: other.saved(),
                })
            }
            (1, 2) => {
                let y = matmul::vecmat(&a.view_as::<Ix1>("dot"), &b.view_as::<Ix2>("dot"));
                self.record_table(y.into_dyn(), &[self, other], |_| TableOp::VecMat {
                    x_value: self.saved(),
                    b_value: other.saved(),
                })
            }
            (1, 1) => {
                let y = matmul::vecdot(&a.view_as::<Ix1>("dot"), &b.view_as::<Ix1>("dot"));
                self.record_table(scalar_array(y), &[self, other], |_| TableOp::VecDot {
                    x_value: self.saved(),
                    y_value: other.saved(),
                })
            }
            _ => panic!(
                "dot: shapes {:?} and {:?} are not supported (ranks 2·2, 2·1, 1·2 and 1·1 are)",
                self.shape(),
                other.shape()
            ),
        }
    }

    /// The transpose (all axes reversed), as an owned array.
    #[inline(never)]
    pub fn t(&self) -> Self {
        self.record_table(matmul::transpose(&self.value()), &[self], |_| TableOp::Transpose {})
    }

    // ---- reductions ---------------------------------------------------------

    /// The sum of all elements, 0-d.
    #[inline(never)]
    pub fn sum(&self) -> Self {
        let y = scalar_array(reduce::sum(&self.value()));
        self.record_table(y, &[self], |_| TableOp::Sum { shape: self.dims() })
    }

    /// The mean of all elements, 0-d.
    #[inline(never)]
    pub fn mean(&self) -> Self {
        let y = scalar_array(reduce::mean(&self.value()));
        self.record_table(y, &[self], |_| TableOp::Mean { shape: self.dims() })
    }

    /// The sum along `axis`, removing it.
    #[inline(never)]
    pub fn sum_axis(&self, axis: Axis) -> Self {
        let y = reduce::sum_axis(&self.value(), axis);
        self.record_table(y, &[self], |_| TableOp::SumAxis {
            axis,
            shape: self.dims(),
        })
    }

    /// The mean along `axis`, removing it.
    #[inline(never)]
    pub fn mean_axis(&self, axis: Axis) -> Self {
        let y = reduce::mean_axis(&self.value(), axis);
        self.record_table(y, &[self], |_| TableOp::MeanAxis {
            axis,
            shape: self.dims(),
        })
    }

    // ---- softmax and losses -------------------------------------------------

    /// Softmax along `axis` (saves its output).
    #[inline(never)]
    pub fn softmax(&self, axis: Axis) -> Self {
        let y = softmax::softmax(&self.value(), axis);
        self.record_table(y, &[self], |output| TableOp::Softmax {
            y: Some(Rc::clone(output)),
            axis,
        })
    }

    /// Log-softmax along `axis` (saves its output).
    #[inline(never)]
    pub fn log_softmax(&self, axis: Axis) -> Self {
        let y = softmax::log_softmax(&self.value(), axis);
        self.record_table(y, &[self], |output| TableOp::LogSoftmax {
            y: Some(Rc::clone(output)),
            axis,
        })
    }

    /// Mean squared error against `target`, 0-d. Either side may require a gradient.
    #[inline(never)]
    pub fn mse(&self, target: &Self) -> Self {
        let y = scalar_array(loss::mse(&self.value(), &target.value()));
        self.record_table(y, &[self, target], |_| TableOp::Mse {
            p: self.saved(),
            t: target.saved(),
        })
    }

    /// Softmax cross-entropy of these logits (batch × classes) against integer
    /// class labels, averaged over the batch, 0-d. The labels are copied into the node.
    #[inline(never)]
    pub fn cross_entropy(&self, labels: &[usize]) -> Self {
        let y = scalar_array(loss::cross_entropy(&self.value.view_as::<Ix2>("cross_entropy"), labels));
        self.record_table(y, &[self], |_| TableOp::CrossEntropy {
            z: self.saved(),
            labels: labels.into(),
        })
    }

    // ---- convolutional layers -----------------------------------------------

    /// 2-D convolution of this N×C×H×W input with O×C×KH×KW weights `w` and an optional bias of length O.
    #[inline(never)]
    pub fn conv2d(&self, w: &Self, bias: Option<&Self>, stride: usize, padding: usize) -> Self {
        let x4 = self.value.view_as::<Ix4>("conv2d");
        let w4 = w.value.view_as::<Ix4>("conv2d");
        let b1 = bias.map(|b| b.value.view_as::<Ix1>("conv2d"));
        let y = conv::conv2d(&x4, &w4, b1.as_ref(), stride, padding).into_dyn();
        let (x_dim, w_dim) = (x4.raw_dim(), w4.raw_dim());
        let make_op = |_: &Rc<Value<'a, F>>| TableOp::Conv2d {
            x_value: self.saved(),
            w_value: w.saved(),
            x_dim,
            w_dim,
            stride,
            padding,
        };
        match bias {
            Some(b) => self.record_table(y, &[self, w, b], make_op),
            None => self.record_table(y, &[self, w], make_op),
        }
    }

    /// Training-mode batch normalisation of this N×C×H×W input with per-channel `gamma` and `beta`.
    #[inline(never)]
    pub fn batch_norm(&self, gamma: &Self, beta: &Self, eps: F) -> Self {
        // The statistics come with the output at no cost: the node keeps them if its
        // backward reads them.
        let (y, stats) = batch_norm::batch_norm_keeping(
            &self.value.view_as::<Ix4>("batch_norm"),
            &gamma.value.view_as::<Ix1>("batch_norm"),
            &beta.value.view_as::<Ix1>("batch_norm"),
            eps,
        );
        self.record_table(y.into_dyn(), &[self, gamma, beta], |_| TableOp::BatchNorm {
            x_value: self.saved(),
            gamma_value: gamma.saved(),
            stats: Some(stats),
            eps,
        })
    }

    /// 2-D max pooling of this N×C×H×W input over `kernel`×`kernel` windows moved by `stride`.
    #[inline(never)]
    pub fn max_pool2d(&self, kernel: usize, stride: usize) -> Self {
        let x = self.value.view_as::<Ix4>("max_pool2d");
        // Where each window's maximum is, only if backward will read it.
        let (y, argmax) = if reads_aux::max_pool2d(needs(&[self])) {
            let (y, argmax) = pool::max_pool2d_keeping(&x, kernel, stride);
            (y, Some(argmax))
        } else {
            (pool::max_pool2d(&x, kernel, stride), None)
        };
        self.record_table(y.into_dyn(), &[self], |_| TableOp::MaxPool2d { argmax, kernel, stride })
    }
}

/// Which of an op's inputs need a gradient, in the tape's numbering.
fn needs<F: Float>(inputs: &[&Var<'_, '_, F>]) -> [bool; 3] {
    let mut needs = [false; 3];
    for (need, input) in needs.iter_mut().zip(inputs) {
        *need = input.requires_grad();
    }
    needs
}

/// `Var op Var` for every combination of owned and borrowed operands.
macro_rules! binary_operators {
    ($($trait:ident $method:ident),*) => {$(
        impl<'t, 'a, F: Float> $trait<&Var<'t, 'a, F>> for &Var<'t, 'a, F> {
            type Output = Var<'t, 'a, F>;
            fn $method(self, rhs: &Var<'t, 'a, F>) -> Var<'t, 'a, F> {
                Var::$method(self, rhs)
            }
        }
        impl<'t, 'a, F: Float> $trait<Var<'t, 'a, F>> for Var<'t, 'a, F> {
            type Output = Var<'t, 'a, F>;
            fn $method(self, rhs: Var<'t, 'a, F>) -> Var<'t, 'a, F> {
                Var::$method(&self, &rhs)
            }
        }
        impl<'t, 'a, F: Float> $trait<&Var<'t, 'a, F>> for Var<'t, 'a, F> {
            type Output = Var<'t, 'a, F>;
            fn $method(self, rhs: &Var<'t, 'a, F>) -> Var<'t, 'a, F> {
                Var::$method(&self, rhs)
            }
        }
        impl<'t, 'a, F: Float> $trait<Var<'t, 'a, F>> for &Var<'t, 'a, F> {
            type Output = Var<'t, 'a, F>;
            fn $method(self, rhs: Var<'t, 'a, F>) -> Var<'t, 'a, F> {
                Var::$method(self, &rhs)
            }
        }
    )*};
}

binary_operators!(Add add, Sub sub, Mul mul, Div div);

impl<'t, 'a, F: Float> Neg for &Var<'t, 'a, F> {
    type Output = Var<'t, 'a, F>;
    fn neg(self) -> Var<'t, 'a, F> {
        Var::neg(self)
    }
}

impl<'t, 'a, F: Float> Neg for Var<'t, 'a, F> {
    type Output = Var<'t, 'a, F>;
    fn neg(self) -> Var<'t, 'a, F> {
        Var::neg(&self)
    }
}

/// The tape's method for every unary row of the primitive table (`x.tanh()`, ...) and
/// every pairwise row (`x.maximum(&y)`): the same kernels, recorded.
macro_rules! var_methods {
    ($(
        $(#[$doc:meta])*
        $variant:ident $name:ident ($grad:ident, $scalar:ident, $grad_scalar:ident, $saves_const:ident)
            forms($($form:ident),*), domain $domain:ident,
            forward |$x:ident| $forward:expr, $(vector $vector:ident,)?
            saves $saves:ident,
            derivative |$s:ident| $derivative:expr;
    )*) => {
        impl<F: Float> Var<'_, '_, F> {
            $(
                $(#[$doc])*
                #[inline(never)]
                pub fn $name(&self) -> Self {
                    self.unary(Unary::$variant)
                }
            )*
        }
    };
}

autodiff_primitives::for_each_unary!(var_methods);

macro_rules! var_pairwise_methods {
    ($(
        $(#[$doc:meta])*
        $variant:ident $name:ident ($grad_lhs:ident, $grad_rhs:ident) domain $domain:ident,
            forward |$a:ident, $b:ident| $forward:expr,
            derivative_lhs |$la:ident, $lb:ident| $lhs:expr,
            derivative_rhs |$ra:ident, $rb:ident| $rhs:expr;
    )*) => {
        impl<F: Float> Var<'_, '_, F> {
            $(
                $(#[$doc])*
                ///
                /// The operands broadcast together; both are saved for backward.
                #[inline(never)]
                pub fn $name(&self, other: &Self) -> Self {
                    self.pairwise(other, Pairwise::$variant)
                }
            )*
        }
    };
}

autodiff_primitives::for_each_binary!(var_pairwise_methods);
