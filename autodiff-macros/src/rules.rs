//! Derivative rules: for each op, which backward kernel produces each operand's
//! adjoint contribution, and what it reads. One exhaustive `match` (no `_ =>` arm),
//! so a new op does not compile until it has a rule.
//!
//! Rules only name runtime kernels; the math lives in `autodiff-runtime`, where
//! the dynamic tape calls the very same functions.

use proc_macro2::TokenStream;

use crate::ir::{BinOp, Function, Kind, Op, Stmt, UnaryFn, ValueId};
use crate::scalar::Wrt;

/// An argument of a backward kernel call.
#[derive(Clone, Debug)]
pub enum GradArg {
    /// The output's adjoint, by value (its buffer may be reused; cloned if needed again).
    G,
    /// The output's adjoint, borrowed.
    GRef,
    /// The output's adjoint when it is a float (or a filled array's fill value).
    GScalar,
    /// A forward value: borrowed if an array, copied if a float.
    Value(ValueId),
    /// The shape (`raw_dim()`) of a forward value, borrowed.
    Dim(ValueId),
    /// The length of one axis of a forward value.
    DimAxis(ValueId, usize),
    /// A constant argument of the op, as the user wrote it.
    Tokens(TokenStream),
    /// The derivative closure of the `mapv` op `map` (a statement id) with respect to its
    /// argument or one of its captures; emitters build it with their own names for the
    /// captured values, which it reads.
    MapDerivative(ValueId, Wrt),
}

/// A runtime backward kernel, by identity.
///
/// The unary rows of the primitive table are typed (their scalar twin, which fusion needs,
/// is a property of the row, not of a name); the other ops still name their kernel until
/// they move into the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// `unary::<row>_grad(g, &saved)`, in place in `g`.
    UnaryGrad(UnaryFn),
    /// `unary::<row>_grad_scalar(g, saved)`.
    UnaryGradScalar(UnaryFn),
    /// Another kernel, by module and function name.
    Named(&'static str, &'static str),
}

impl Kernel {
    /// The kernel's module and function in `autodiff_runtime::kernels`.
    pub fn path(self) -> (&'static str, &'static str) {
        match self {
            Kernel::UnaryGrad(f) => ("unary", f.grad_kernel()),
            Kernel::UnaryGradScalar(f) => ("unary", f.grad_scalar_kernel()),
            Kernel::Named(module, function) => (module, function),
        }
    }
}

/// One backward kernel call: `target`'s adjoint receives `module::function(args)`.
#[derive(Clone, Debug)]
pub struct GradCall {
    pub target: ValueId,
    /// `None` means "the adjoint itself" (the single argument is passed through).
    pub kernel: Option<Kernel>,
    pub args: Vec<GradArg>,
    /// The call returns one float that stands for an array of the target's shape filled
    /// with it (the backward of `sum`, `mean`, and what stays constant after them).
    /// Codegen keeps it symbolic where it can and materialises it where it must.
    pub yields_fill: bool,
    /// Set by codegen: the fill cannot stay symbolic, so it is expanded with `reduce::sum_grad`.
    pub materialize: bool,
}

impl GradCall {
    fn new(target: ValueId, module: &'static str, function: &'static str, args: Vec<GradArg>) -> Self {
        GradCall {
            target,
            kernel: Some(Kernel::Named(module, function)),
            args,
            yields_fill: false,
            materialize: false,
        }
    }

    fn typed(target: ValueId, kernel: Kernel, args: Vec<GradArg>) -> Self {
        GradCall {
            target,
            kernel: Some(kernel),
            args,
            yields_fill: false,
            materialize: false,
        }
    }

    fn fill(target: ValueId, kernel: Option<(&'static str, &'static str)>, args: Vec<GradArg>) -> Self {
        GradCall {
            target,
            kernel: kernel.map(|(module, function)| Kernel::Named(module, function)),
            args,
            yields_fill: true,
            materialize: false,
        }
    }

    fn identity(target: ValueId, arg: GradArg) -> Self {
        GradCall {
            target,
            kernel: None,
            args: vec![arg],
            yields_fill: false,
            materialize: false,
        }
    }
}

/// The backward calls of `stmt`, for each active operand (`is_active`).
///
/// With `filled`, the output adjoint is a float standing for an array filled with it;
/// rules that can use that (matmul) do, the others return `None` and the caller
/// materialises the array first.
pub fn backward(
    function: &Function,
    stmt: &Stmt,
    is_active: &dyn Fn(ValueId) -> bool,
    filled: bool,
) -> Option<Vec<GradCall>> {
    use GradArg::*;
    let kind = |v: ValueId| function.kind(v);
    let out = stmt.id;
    let mut calls = Vec::new();
    let mut emit = |target: ValueId, call: GradCall| {
        if is_active(target) {
            calls.push(call);
        }
    };
    if filled {
        return backward_filled(function, stmt, is_active);
    }
    match &stmt.op {
        Op::Param { .. } | Op::Const(_) | Op::ConstArray(_) => {}
        // Emitted by codegen itself: a slice element accumulates into the slice's gradient
        // at its index; a loop runs its body's backward; a loop output's adjoint is read by
        // its loop; a call runs the callee's backward.
        Op::Index(..) | Op::Loop(_) | Op::LoopOut { .. } | Op::Call(_) | Op::Custom { .. } => {}
        // Conditions are never differentiated: a piecewise function's derivative is the
        // taken branch's.
        Op::Compare(..) | Op::Not(_) | Op::And(..) | Op::Or(..) => {}
        Op::Binary(op, a, b) => {
            let (a, b) = (*a, *b);
            match (kind(a).is_array(), kind(b).is_array()) {
                (false, false) => {
                    let (lhs, rhs) = match op {
                        BinOp::Add => (GradCall::identity(a, GScalar), GradCall::identity(b, GScalar)),
                        BinOp::Sub => (
                            GradCall::identity(a, GScalar),
                            GradCall::new(b, "binary", "neg_grad_scalar", vec![GScalar]),
                        ),
                        BinOp::Mul => (
                            GradCall::new(a, "binary", "mul_grad_scalar", vec![GScalar, Value(b)]),
                            GradCall::new(b, "binary", "mul_grad_scalar", vec![GScalar, Value(a)]),
                        ),
                        BinOp::Div => (
                            GradCall::new(a, "binary", "div_grad_lhs_scalar", vec![GScalar, Value(b)]),
                            GradCall::new(b, "binary", "div_grad_rhs_scalar", vec![GScalar, Value(a), Value(b)]),
                        ),
                    };
                    emit(a, lhs);
                    emit(b, rhs);
                }
                (true, true) => {
                    let (lhs, rhs) = match op {
                        BinOp::Add => (
                            GradCall::new(a, "binary", "add_grad_lhs", vec![G, Dim(a)]),
                            GradCall::new(b, "binary", "add_grad_rhs", vec![G, Dim(b)]),
                        ),
                        BinOp::Sub => (
                            GradCall::new(a, "binary", "sub_grad_lhs", vec![G, Dim(a)]),
                            GradCall::new(b, "binary", "sub_grad_rhs", vec![G, Dim(b)]),
                        ),
                        BinOp::Mul => (
                            GradCall::new(a, "binary", "mul_grad_lhs", vec![G, Value(b), Dim(a)]),
                            GradCall::new(b, "binary", "mul_grad_rhs", vec![G, Value(a), Dim(b)]),
                        ),
                        BinOp::Div => (
                            GradCall::new(a, "binary", "div_grad_lhs", vec![G, Value(b), Dim(a)]),
                            GradCall::new(b, "binary", "div_grad_rhs", vec![G, Value(a), Value(b)]),
                        ),
                    };
                    emit(a, lhs);
                    emit(b, rhs);
                }
                (true, false) => {
                    // array ∘ scalar
                    let (arr, sc) = match op {
                        BinOp::Add => (
                            GradCall::identity(a, G),
                            GradCall::new(b, "binary", "sum_grad_of_scalar", vec![GRef]),
                        ),
                        BinOp::Sub => (
                            GradCall::identity(a, G),
                            GradCall::new(b, "binary", "sub_scalar_grad_scalar", vec![GRef]),
                        ),
                        BinOp::Mul => (
                            GradCall::new(a, "binary", "scale_grad", vec![G, Value(b)]),
                            GradCall::new(b, "binary", "sum_product", vec![GRef, Value(a)]),
                        ),
                        BinOp::Div => (
                            GradCall::new(a, "binary", "div_scalar_grad_array", vec![G, Value(b)]),
                            GradCall::new(b, "binary", "div_scalar_grad_scalar", vec![GRef, Value(a), Value(b)]),
                        ),
                    };
                    emit(b, sc);
                    emit(a, arr);
                }
                (false, true) => {
                    // scalar ∘ array
                    let (sc, arr) = match op {
                        BinOp::Add => (
                            GradCall::new(a, "binary", "sum_grad_of_scalar", vec![GRef]),
                            GradCall::identity(b, G),
                        ),
                        BinOp::Sub => (
                            GradCall::new(a, "binary", "sum_grad_of_scalar", vec![GRef]),
                            GradCall::new(b, "binary", "neg_grad", vec![G]),
                        ),
                        BinOp::Mul => (
                            GradCall::new(a, "binary", "sum_product", vec![GRef, Value(b)]),
                            GradCall::new(b, "binary", "scale_grad", vec![G, Value(a)]),
                        ),
                        BinOp::Div => (
                            GradCall::new(a, "binary", "scalar_div_grad_scalar", vec![GRef, Value(b)]),
                            GradCall::new(b, "binary", "scalar_div_grad_array", vec![G, Value(a), Value(b)]),
                        ),
                    };
                    emit(a, sc);
                    emit(b, arr);
                }
            }
        }
        Op::Neg(a) => {
            let call = if kind(*a) == Kind::Scalar {
                GradCall::new(*a, "binary", "neg_grad_scalar", vec![GScalar])
            } else {
                GradCall::new(*a, "binary", "neg_grad", vec![G])
            };
            emit(*a, call);
        }
        Op::Unary(f, a) => {
            let saved = if f.saves_output() { out } else { *a };
            let call = if kind(*a) == Kind::Scalar {
                GradCall::typed(*a, Kernel::UnaryGradScalar(*f), vec![GScalar, Value(saved)])
            } else {
                GradCall::typed(*a, Kernel::UnaryGrad(*f), vec![G, Value(saved)])
            };
            emit(*a, call);
        }
        Op::Pairwise(f, a, b) => {
            let [lhs, rhs] = f.grad_kernels();
            emit(*a, GradCall::new(*a, "pairwise", lhs, vec![G, Value(*a), Value(*b)]));
            emit(*b, GradCall::new(*b, "pairwise", rhs, vec![G, Value(*a), Value(*b)]));
        }
        Op::Powi(a, n) => {
            let call = if kind(*a) == Kind::Scalar {
                GradCall::new(
                    *a,
                    "unary",
                    "powi_grad_scalar",
                    vec![GScalar, Value(*a), Tokens(n.clone())],
                )
            } else {
                GradCall::new(*a, "unary", "powi_grad", vec![G, Value(*a), Tokens(n.clone())])
            };
            emit(*a, call);
        }
        Op::Powf(a, p) => {
            let call = if kind(*a) == Kind::Scalar {
                GradCall::new(
                    *a,
                    "unary",
                    "powf_grad_scalar",
                    vec![GScalar, Value(*a), Tokens(p.clone())],
                )
            } else {
                GradCall::new(*a, "unary", "powf_grad", vec![G, Value(*a), Tokens(p.clone())])
            };
            emit(*a, call);
        }
        Op::Map { input, captures, .. } => {
            let derivative = |wrt| MapDerivative(out, wrt);
            emit(
                *input,
                GradCall::new(
                    *input,
                    "unary",
                    "map_grad",
                    vec![G, Value(*input), derivative(Wrt::Arg)],
                ),
            );
            for (k, capture) in captures.iter().enumerate() {
                let args = vec![GRef, Value(*input), derivative(Wrt::Capture(k))];
                emit(*capture, GradCall::new(*capture, "unary", "map_grad_capture", args));
            }
        }
        Op::Dot(a, b) => {
            let (a, b) = (*a, *b);
            match (kind(a), kind(b)) {
                (Kind::Array(Some(2)), Kind::Array(Some(2))) => {
                    emit(a, GradCall::new(a, "matmul", "matmul_grad_lhs", vec![GRef, Value(b)]));
                    emit(b, GradCall::new(b, "matmul", "matmul_grad_rhs", vec![Value(a), GRef]));
                }
                (Kind::Array(Some(2)), _) => {
                    emit(a, GradCall::new(a, "matmul", "matvec_grad_lhs", vec![GRef, Value(b)]));
                    emit(b, GradCall::new(b, "matmul", "matvec_grad_rhs", vec![Value(a), GRef]));
                }
                (_, Kind::Array(Some(2))) => {
                    emit(a, GradCall::new(a, "matmul", "vecmat_grad_lhs", vec![GRef, Value(b)]));
                    emit(b, GradCall::new(b, "matmul", "vecmat_grad_rhs", vec![Value(a), GRef]));
                }
                _ => {
                    emit(a, GradCall::new(a, "matmul", "vecdot_grad", vec![GScalar, Value(b)]));
                    emit(b, GradCall::new(b, "matmul", "vecdot_grad", vec![GScalar, Value(a)]));
                }
            }
        }
        Op::Transpose(a) => emit(*a, GradCall::new(*a, "matmul", "transpose_grad", vec![G])),
        Op::Sum(a) => emit(*a, GradCall::fill(*a, None, vec![GScalar])),
        Op::Mean(a) => emit(
            *a,
            GradCall::fill(*a, Some(("reduce", "mean_grad_fill")), vec![GScalar, Dim(*a)]),
        ),
        Op::SumAxis(a, axis) => emit(
            *a,
            GradCall::new(*a, "reduce", "sum_axis_grad", vec![G, Tokens(axis.clone()), Dim(*a)]),
        ),
        Op::MeanAxis(a, axis) => emit(
            *a,
            GradCall::new(*a, "reduce", "mean_axis_grad", vec![G, Tokens(axis.clone()), Dim(*a)]),
        ),
        Op::Softmax(a, axis) => emit(
            *a,
            GradCall::new(*a, "softmax", "softmax_grad", vec![G, Value(out), Tokens(axis.clone())]),
        ),
        Op::LogSoftmax(a, axis) => emit(
            *a,
            GradCall::new(
                *a,
                "softmax",
                "log_softmax_grad",
                vec![G, Value(out), Tokens(axis.clone())],
            ),
        ),
        Op::Mse(p, t) => {
            emit(
                *p,
                GradCall::new(*p, "loss", "mse_grad_pred", vec![GScalar, Value(*p), Value(*t)]),
            );
            emit(
                *t,
                GradCall::new(*t, "loss", "mse_grad_target", vec![GScalar, Value(*p), Value(*t)]),
            );
        }
        Op::CrossEntropy(logits, labels) => {
            emit(
                *logits,
                GradCall::new(
                    *logits,
                    "loss",
                    "cross_entropy_grad",
                    vec![GScalar, Value(*logits), Tokens(labels.clone())],
                ),
            );
        }
        Op::Conv2d {
            input,
            weight,
            bias,
            stride,
            padding,
        } => {
            let (s, p) = (Tokens(stride.clone()), Tokens(padding.clone()));
            if let Some(b) = bias {
                emit(*b, GradCall::new(*b, "conv", "conv2d_grad_bias", vec![GRef]));
            }
            emit(
                *weight,
                GradCall::new(
                    *weight,
                    "conv",
                    "conv2d_grad_weight",
                    vec![GRef, Value(*input), Dim(*weight), s.clone(), p.clone()],
                ),
            );
            emit(
                *input,
                GradCall::new(
                    *input,
                    "conv",
                    "conv2d_grad_input",
                    vec![GRef, Value(*weight), Dim(*input), s, p],
                ),
            );
        }
        Op::BatchNorm {
            input,
            gamma,
            beta,
            eps,
        } => {
            emit(
                *beta,
                GradCall::new(*beta, "batch_norm", "batch_norm_grad_beta", vec![GRef]),
            );
            emit(
                *gamma,
                GradCall::new(
                    *gamma,
                    "batch_norm",
                    "batch_norm_grad_gamma",
                    vec![GRef, Value(*input), Tokens(eps.clone())],
                ),
            );
            emit(
                *input,
                GradCall::new(
                    *input,
                    "batch_norm",
                    "batch_norm_grad_input",
                    vec![GRef, Value(*input), Value(*gamma), Tokens(eps.clone())],
                ),
            );
        }
        Op::MaxPool2d { input, kernel, stride } => {
            emit(
                *input,
                GradCall::new(
                    *input,
                    "pool",
                    "max_pool2d_grad",
                    vec![GRef, Value(*input), Tokens(kernel.clone()), Tokens(stride.clone())],
                ),
            );
        }
    }
    Some(calls)
}

/// The backward calls of `stmt` when its adjoint is a filled array (one float `g`
/// everywhere), for the ops where that saves work; `None` for the others. Must name the
/// same targets as the dense rules (codegen counts contributions with those).
fn backward_filled(function: &Function, stmt: &Stmt, is_active: &dyn Fn(ValueId) -> bool) -> Option<Vec<GradCall>> {
    use GradArg::*;
    let kind = |v: ValueId| function.kind(v);
    let out = stmt.id;
    let fill = |target, module, func, args| GradCall::fill(target, Some((module, func)), args);
    let calls = match &stmt.op {
        // d(a ± b): each operand receives the fill times the number of times it was broadcast.
        Op::Binary(op @ (BinOp::Add | BinOp::Sub), a, b) if kind(*a).is_array() && kind(*b).is_array() => {
            let rhs = if *op == BinOp::Add {
                "add_grad_fill"
            } else {
                "sub_grad_rhs_fill"
            };
            vec![
                fill(*a, "binary", "add_grad_fill", vec![GScalar, Dim(out), Dim(*a)]),
                fill(*b, "binary", rhs, vec![GScalar, Dim(out), Dim(*b)]),
            ]
        }
        // d(a ± s): the array keeps the fill, the float receives its sum.
        Op::Binary(op @ (BinOp::Add | BinOp::Sub), a, s) if kind(*a).is_array() => {
            let sum = if *op == BinOp::Add { "fill_sum" } else { "fill_sum_neg" };
            vec![
                GradCall::fill(*a, None, vec![GScalar]),
                GradCall::new(*s, "binary", sum, vec![GScalar, Dim(out)]),
            ]
        }
        Op::Binary(op @ (BinOp::Add | BinOp::Sub), s, a) if kind(*a).is_array() => {
            let array = if *op == BinOp::Add {
                GradCall::fill(*a, None, vec![GScalar])
            } else {
                fill(*a, "binary", "neg_grad_scalar", vec![GScalar])
            };
            vec![GradCall::new(*s, "binary", "fill_sum", vec![GScalar, Dim(out)]), array]
        }
        // d(a · s) = fill(g·s) for the array, g·Σa for the float.
        Op::Binary(BinOp::Mul, a, s) | Op::Binary(BinOp::Mul, s, a) if kind(*a).is_array() && !kind(*s).is_array() => {
            vec![
                fill(*a, "binary", "mul_grad_scalar", vec![GScalar, Value(*s)]),
                GradCall::new(*s, "binary", "fill_sum_product", vec![GScalar, Value(*a)]),
            ]
        }
        Op::Neg(a) if kind(*a).is_array() => vec![fill(*a, "binary", "neg_grad_scalar", vec![GScalar])],
        Op::Transpose(a) => vec![GradCall::fill(*a, None, vec![GScalar])],
        Op::SumAxis(a, _) => vec![GradCall::fill(*a, None, vec![GScalar])],
        Op::MeanAxis(a, axis) => {
            vec![fill(
                *a,
                "reduce",
                "mean_axis_grad_fill",
                vec![GScalar, Tokens(axis.clone()), Dim(*a)],
            )]
        }
        // d(a·b) with a filled adjoint needs only row/column sums, no GEMM.
        Op::Dot(a, b) if kind(*a) == Kind::Array(Some(2)) && kind(*b) == Kind::Array(Some(2)) => vec![
            GradCall::new(
                *a,
                "matmul",
                "matmul_grad_lhs_filled",
                vec![GScalar, DimAxis(out, 0), Value(*b)],
            ),
            GradCall::new(
                *b,
                "matmul",
                "matmul_grad_rhs_filled",
                vec![Value(*a), GScalar, DimAxis(out, 1)],
            ),
        ],
        _ => return None,
    };
    Some(calls.into_iter().filter(|c| is_active(c.target)).collect())
}
