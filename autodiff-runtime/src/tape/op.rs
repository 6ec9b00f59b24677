//! What one recorded node holds and its derivative rule: an [`Op`] variant per
//! kernel, holding exactly the tensors that kernel's backward reads, and one
//! exhaustive `match` (no `_ =>` arm: a new op does not compile until it has a rule).
//!
//! Every rule is a call into `crate::kernels`; this file writes no math.

use std::rc::Rc;

use ndarray::{arr0, ArrayBase, ArrayD, ArrayViewD, Data, Dimension, IxDyn};

use super::table::TableOp;
use crate::kernels::mask::SignMask;
use crate::kernels::packed::Packed;
use crate::kernels::unary::Saves;
use crate::kernels::{binary, mask, pairwise, unary};
use crate::Float;

/// A value on the tape: a leaf borrowed from the caller (never copied) or an
/// array the tape computed. Shared through `Rc` by `Var`s and saved-tensor slots.
///
/// A tape with 16-bit residuals ([`super::Tape::with_residuals`]) has two more forms, which
/// only saved-tensor slots hold, never a `Var`: the packed copy of a computed array (one per
/// value, shared by every node that saves it), and, while one node's rule runs, that copy
/// unpacked for it.
pub(crate) enum Value<'a, F> {
    /// Leaf data borrowed for the tape's lifetime `'a`.
    Borrowed(ArrayViewD<'a, F>),
    /// An array owned by the tape (an op's output or an owned leaf).
    Owned(ArrayD<F>),
    /// A computed array rounded to 16 bits, kept for backward. No kernel reads it: the
    /// sweep replaces it with [`Value::Unpacked`] for the rule of the node holding it.
    Packed(Packed<IxDyn>),
    /// A [`Value::Packed`] widened back to `F` for one node's rule. Read as an owned array;
    /// distinct from it so that a rule can tell its input was rounded (batch norm then
    /// measures the statistics of what it reads: its row's `rounded` twin).
    Unpacked(ArrayD<F>),
}

/// A tensor kept from the forward pass for a node's backward.
pub(crate) type Saved<'a, F> = Rc<Value<'a, F>>;

impl<F: Float> Value<'_, F> {
    /// A view of the data, whichever way it is held.
    pub(crate) fn view(&self) -> ArrayViewD<'_, F> {
        match self {
            Value::Borrowed(view) => view.view(),
            Value::Owned(array) | Value::Unpacked(array) => array.view(),
            Value::Packed(_) => packed_read(),
        }
    }

    /// The shape of the data.
    pub(crate) fn shape(&self) -> &[usize] {
        match self {
            Value::Borrowed(view) => view.shape(),
            Value::Owned(array) | Value::Unpacked(array) => array.shape(),
            Value::Packed(packed) => packed.shape(),
        }
    }

    /// The shape as a dimension, cloned from the array's own: cheaper than `IxDyn(shape)`,
    /// which rebuilds one from a slice.
    pub(crate) fn raw_dim(&self) -> IxDyn {
        match self {
            Value::Borrowed(view) => view.raw_dim(),
            Value::Owned(array) | Value::Unpacked(array) => array.raw_dim(),
            Value::Packed(packed) => packed.raw_dim(),
        }
    }

    /// Heap bytes of the data that the tape owns (borrowed leaves cost it nothing; a packed
    /// copy two per element).
    pub(crate) fn owned_bytes(&self) -> usize {
        match self {
            Value::Borrowed(_) => 0,
            Value::Owned(array) | Value::Unpacked(array) => array.len() * std::mem::size_of::<F>(),
            Value::Packed(packed) => packed.bytes(),
        }
    }

    /// Whether this is a packed residual widened for the rule now running: the rule reads
    /// it rounded.
    pub(crate) fn is_unpacked(&self) -> bool {
        matches!(self, Value::Unpacked(_))
    }

    /// A fixed-rank view for a rank-specific kernel; panics naming `op` and the shape.
    pub(crate) fn view_as<D: Dimension>(&self, op: &str) -> ndarray::ArrayView<'_, F, D> {
        let rank = D::NDIM.unwrap_or(0);
        self.view()
            .into_dimensionality::<D>()
            .unwrap_or_else(|_| panic!("{op}: expected a rank-{rank} operand, got shape {:?}", self.shape()))
    }
}

/// Evaluates `$body` with `$x` bound to the array a [`Value`] holds, by reference, owned or
/// borrowed alike (the body is expanded once per case: kernels are generic over the storage).
///
/// Why not `value.view()`: a view of a dynamic-rank array clones its shape and strides, a
/// few nanoseconds that count per node in a chain of cheap elementwise ops.
macro_rules! with_array {
    ($value:expr, |$x:ident| $body:expr) => {
        match $value {
            Value::Borrowed($x) => $body,
            Value::Owned($x) | Value::Unpacked($x) => $body,
            Value::Packed(_) => $crate::tape::op::packed_read(),
        }
    };
}
pub(crate) use with_array;

/// A kernel reached a packed residual: the sweep unpacks every one before the rule holding
/// it runs, and `Var`s never hold one, so this is a tape bug.
#[cold]
pub(crate) fn packed_read() -> ! {
    unreachable!("tape: a packed residual was read before the sweep unpacked it")
}

/// The tape's side of the unary rows of the primitive table: the `Unary` enum and its
/// dispatch to the row's kernels.
macro_rules! tape_unary {
    ($(
        $(#[$doc:meta])*
        $variant:ident $name:ident ($grad:ident, $scalar:ident, $grad_scalar:ident, $saves_const:ident)
            forms($($form:ident),*), domain $domain:ident,
            forward |$x:ident| $forward:expr, $(vector $vector:ident,)?
            saves $saves:ident,
            derivative |$s:ident| $derivative:expr;
    )*) => {
        /// The elementwise functions of `kernels::unary` that take no parameter: one
        /// variant per row of `autodiff_primitives::for_each_unary`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum Unary {
            $($variant,)*
        }

        impl Unary {
            /// The kernel's name, shown by `Tape::nodes` and `Tape::to_dot`.
            pub(crate) fn name(self) -> &'static str {
                match self {
                    $(Unary::$variant => stringify!($name),)*
                }
            }

            /// Which value the backward reads (the kernel's own `*_SAVES` constant).
            pub(crate) fn saves(self) -> Saves {
                match self {
                    $(Unary::$variant => unary::$saves_const,)*
                }
            }

            /// The forward kernel.
            pub(crate) fn forward<F: Float, S: Data<Elem = F>>(self, x: &ArrayBase<S, IxDyn>) -> ArrayD<F> {
                match self {
                    $(Unary::$variant => unary::$name(x),)*
                }
            }

            /// The backward kernel, in place in `g`'s buffer.
            fn grad<F: Float, S: Data<Elem = F>>(self, g: ArrayD<F>, saved: &ArrayBase<S, IxDyn>) -> ArrayD<F> {
                match self {
                    $(Unary::$variant => unary::$grad(g, saved),)*
                }
            }
        }
    };
}

autodiff_primitives::for_each_unary!(tape_unary);

/// The tape's side of the pairwise rows of the primitive table (`maximum`, ...).
macro_rules! tape_pairwise {
    ($(
        $(#[$doc:meta])*
        $variant:ident $name:ident ($grad_lhs:ident, $grad_rhs:ident) domain $domain:ident,
            forward |$a:ident, $b:ident| $forward:expr,
            derivative_lhs |$la:ident, $lb:ident| $lhs:expr,
            derivative_rhs |$ra:ident, $rb:ident| $rhs:expr;
    )*) => {
        /// The elementwise functions of two arrays of `kernels::pairwise`: one variant per
        /// row of `autodiff_primitives::for_each_binary`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum Pairwise {
            $($variant,)*
        }

        impl Pairwise {
            /// The kernel's name, shown by `Tape::nodes` and `Tape::to_dot`.
            pub(crate) fn name(self) -> &'static str {
                match self {
                    $(Pairwise::$variant => stringify!($name),)*
                }
            }

            /// The forward kernel.
            pub(crate) fn forward<F: Float>(self, a: &ArrayViewD<'_, F>, b: &ArrayViewD<'_, F>) -> ArrayD<F> {
                match self {
                    $(Pairwise::$variant => pairwise::$name(a, b),)*
                }
            }

            /// The adjoints of both operands.
            fn grads<F: Float>(self, g: ArrayD<F>, a: &ArrayViewD<'_, F>, b: &ArrayViewD<'_, F>, needs: [bool; 2]) -> [Option<ArrayD<F>>; 2] {
                match self {
                    $(Pairwise::$variant => match needs {
                        [true, true] => [Some(pairwise::$grad_lhs(g.clone(), a, b)), Some(pairwise::$grad_rhs(g, a, b))],
                        [true, false] => [Some(pairwise::$grad_lhs(g, a, b)), None],
                        [false, true] => [None, Some(pairwise::$grad_rhs(g, a, b))],
                        [false, false] => [None, None],
                    },)*
                }
            }
        }
    };
}

autodiff_primitives::for_each_binary!(tape_pairwise);

/// One recorded op with the tensors its backward reads. Inputs are numbered as
/// in the `Var` method (`self` is input 0); a table op keeps a saved tensor only when
/// an adjoint that reads it is needed (e.g. `x.dot(w)` with a constant `x` saves `x`
/// for `w`'s adjoint, and not `w`).
pub(crate) enum Op<'a, F: Float> {
    /// An op of the table (`autodiff_primitives::for_each_op!`): arithmetic, products,
    /// reductions, softmax, losses, convolution, batch norm, pooling.
    Table(TableOp<'a, F>),
    /// `x + s`, `x - s`, `s - x`, `x * s`, `x / s`, `s / x` with a constant float `s`
    /// (not a value on the tape, so there is no adjoint for it).
    AddScalar,
    SubScalar,
    ScalarSub,
    MulScalar(F),
    DivScalar(F),
    ScalarDiv {
        s: F,
        x: Saved<'a, F>,
    },
    Unary {
        kind: Unary,
        saved: Saved<'a, F>,
    },
    /// A unary row whose derivative reads only the output's sign (relu): a bit per element
    /// instead of the output.
    UnarySign {
        kind: Unary,
        mask: SignMask<IxDyn>,
    },
    /// `maximum(a, b)` and the other pairwise rows: both operands are read by both adjoints.
    Pairwise {
        kind: Pairwise,
        a: Saved<'a, F>,
        b: Saved<'a, F>,
    },
    /// The derivative closure of `Var::map` (the one boxed rule).
    Map {
        x: Saved<'a, F>,
        df: Box<dyn Fn(F) -> F + 'a>,
    },
    /// A node of a custom rule (`Tape::custom`): the user's VJP, and what it owns.
    Custom(Box<super::custom::Custom<'a, F>>),
    /// A node whose saved tensors a non-retaining backward has already freed, with the
    /// name of the op it was (for `Tape::nodes`, `Tape::to_dot` and the error of a second backward).
    Freed {
        name: &'static str,
    },
}

/// Where a rule sends the adjoint of input `k`: straight into the slot it accumulates in,
/// so that a rule returns nothing (an array of three optional adjoints, a few hundred
/// bytes, was moved twice per node).
pub(crate) type Emit<'e, F> = dyn FnMut(usize, ArrayD<F>) + 'e;

/// Sends the adjoints a rule computed (`None` for an input that needs none).
fn send<F: Float, const N: usize>(emit: &mut Emit<'_, F>, adjoints: [Option<ArrayD<F>>; N]) {
    for (k, adjoint) in adjoints.into_iter().enumerate() {
        if let Some(adjoint) = adjoint {
            emit(k, adjoint);
        }
    }
}

/// The single element of a 0-d (or one-element) adjoint.
pub(super) fn scalar_of<F: Float>(g: &ArrayD<F>) -> F {
    *g.first()
        .unwrap_or_else(|| panic!("backward: a scalar op got an empty adjoint of shape {:?}", g.shape()))
}

/// Reshapes an adjoint to a fixed rank (no copy); a mismatch is a tape bug.
pub(super) fn fixed<F: Float, D: Dimension>(g: ArrayD<F>, op: &str) -> ndarray::Array<F, D> {
    let shape = g.shape().to_vec();
    g.into_dimensionality::<D>()
        .unwrap_or_else(|_| panic!("{op} backward: adjoint of shape {shape:?} has the wrong rank"))
}

/// The slot saved for an adjoint that is needed; its absence is a recording bug.
pub(super) fn needed<'s, 'a, F: Float>(slot: &'s Option<Saved<'a, F>>, what: &str) -> &'s Value<'a, F> {
    slot.as_deref()
        .unwrap_or_else(|| unreachable!("{what} was not saved although its reader needs a gradient"))
}

impl<'a, F: Float> Op<'a, F> {
    /// The op's name, as the `Var` method that records it (also once freed).
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::Table(op) => op.name(),
            Op::AddScalar => "add_scalar",
            Op::SubScalar => "sub_scalar",
            Op::ScalarSub => "scalar_sub",
            Op::MulScalar(_) => "mul_scalar",
            Op::DivScalar(_) => "div_scalar",
            Op::ScalarDiv { .. } => "scalar_div",
            Op::Unary { kind, .. } | Op::UnarySign { kind, .. } => kind.name(),
            Op::Pairwise { kind, .. } => kind.name(),
            Op::Map { .. } => "map",
            Op::Custom(_) => "custom",
            Op::Freed { name } => name,
        }
    }

    /// The tensors this node keeps for its backward (at most two), for memory accounting.
    pub(crate) fn saved(&self) -> [Option<&Saved<'a, F>>; 2] {
        match self {
            Op::Table(op) => op.saved(),
            Op::Pairwise { a, b, .. } => [Some(a), Some(b)],
            Op::ScalarDiv { x: saved, .. } | Op::Unary { saved, .. } | Op::Map { x: saved, .. } => [Some(saved), None],
            Op::AddScalar
            | Op::SubScalar
            | Op::ScalarSub
            | Op::MulScalar(_)
            | Op::DivScalar(_)
            | Op::UnarySign { .. }
            | Op::Custom(_)
            | Op::Freed { .. } => [None, None],
        }
    }

    /// The saved-tensor slots, to replace what they hold (packing in forward, unpacking for
    /// the rule in backward). Every slot [`Op::saved`] lists, in the same order.
    pub(crate) fn saved_mut(&mut self) -> [Option<&mut Saved<'a, F>>; 2] {
        match self {
            Op::Table(op) => op.saved_mut(),
            Op::Pairwise { a, b, .. } => [Some(a), Some(b)],
            Op::ScalarDiv { x: saved, .. } | Op::Unary { saved, .. } | Op::Map { x: saved, .. } => [Some(saved), None],
            Op::AddScalar
            | Op::SubScalar
            | Op::ScalarSub
            | Op::MulScalar(_)
            | Op::DivScalar(_)
            | Op::UnarySign { .. }
            | Op::Custom(_)
            | Op::Freed { .. } => [None, None],
        }
    }

    /// The saved-tensor slots a tape with 16-bit residuals may keep packed: all of them,
    /// except a table row's values that a kernel reads beside an aux residual describing them
    /// as computed (see `TableOp::packable_mut`).
    pub(crate) fn packable_mut(&mut self) -> [Option<&mut Saved<'a, F>>; 2] {
        match self {
            Op::Table(op) => op.packable_mut(),
            op => op.saved_mut(),
        }
    }

    /// Bytes of what the node keeps for its backward in a form of its own rather than as a
    /// shared tensor (a sign mask, a table row's aux residual), counted with the saved tensors.
    pub(crate) fn residual_bytes(&self) -> usize {
        match self {
            Op::Table(op) => op.residual_bytes(),
            Op::UnarySign { mask, .. } => mask.bytes(),
            _ => 0,
        }
    }

    /// Heap bytes the node holds besides its saved tensors (labels, a boxed closure).
    pub(crate) fn extra_bytes(&self) -> usize {
        match self {
            Op::Table(op) => op.extra_bytes(),
            Op::Map { df, .. } => std::mem::size_of_val(&**df),
            _ => 0,
        }
    }

    /// The derivative rule: given the output's adjoint `g` and which inputs need
    /// a gradient, the adjoint of each input (with that input's shape), computed
    /// by the kernels' backward functions and sent to `emit` with the input's
    /// position. Adjoints of inputs that do not need one are never computed.
    pub(crate) fn backward(&self, g: ArrayD<F>, needs: [bool; 3], emit: &mut Emit<'_, F>) {
        match self {
            Op::Table(op) => op.backward(g, needs, emit),
            Op::ScalarSub => emit(0, binary::neg_grad(g)),
            Op::AddScalar | Op::SubScalar => emit(0, g),
            Op::MulScalar(s) => emit(0, binary::scale_grad(g, *s)),
            Op::DivScalar(s) => emit(0, binary::div_scalar_grad_array(g, *s)),
            Op::ScalarDiv { s, x } => emit(0, with_array!(&**x, |x| binary::scalar_div_grad_array(g, *s, x))),
            Op::Unary { kind, saved } => emit(0, with_array!(&**saved, |y| kind.grad(g, y))),
            // relu's rule on the bits themselves (one pass, as the static code); another
            // sign-only row's formula would read the decoded 1 and 0.
            Op::UnarySign {
                kind: Unary::Relu,
                mask,
            } => emit(0, mask::relu_grad_masked(g, mask)),
            Op::UnarySign { kind, mask } => emit(0, kind.grad(g, &mask.decode::<F>())),
            Op::Pairwise { kind, a, b } => {
                send(emit, kind.grads(g, &a.view(), &b.view(), [needs[0], needs[1]]));
            }
            Op::Map { x, df } => emit(0, with_array!(&**x, |x| unary::map_grad(g, x, &**df))),
            Op::Custom(custom) => custom.backward(g, needs, emit),
            Op::Freed { .. } => unreachable!("the backward engine never runs the rule of a freed node"),
        }
    }
}

/// A 0-d array holding `value`: how the tape represents scalars.
pub(crate) fn scalar_array<F: Float>(value: F) -> ArrayD<F> {
    arr0(value).into_dyn()
}
