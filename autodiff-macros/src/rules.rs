//! Derivative rules: for each op, which backward kernel produces each operand's
//! adjoint contribution, and what it reads. One exhaustive `match` (no `_ =>` arm),
//! so a new op does not compile until it has a rule.
//!
//! The rules themselves are not written here: an op of the table takes its row's backward
//! program (`op_table.rs`, the same program the tape runs), an elementwise function its
//! row's kernels. What is written here are the static code's specialisations of those
//! rules, which the tape has no use for: an operand that is a float (a float on the tape is
//! a 0-d array, broadcast), `a * a` as one step, and adjoints held in a symbolic [`Form`]:
//! a fill (the seed of a `sum`) or an outer product `u·vᵀ` (what a fill becomes through a
//! matrix product), kept through the ops that preserve them.

use proc_macro2::TokenStream;

use crate::ir::{BinOp, Function, Kind, Op, Stmt, UnaryFn, ValueId};
use crate::kernel::{FillForm, Kernel};
use crate::op_table::{Aux, TableOp};
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
    /// The sign mask (`kernels::mask::SignMask`) forward took of this value, borrowed: what
    /// relu's masked kernels read in place of its output.
    Mask(ValueId),
    /// The column sums (`rank1::column_sums`) forward took of this matrix, borrowed: what a
    /// `sum`'s seed reaching `a · b` reads of `a`.
    ColumnSums(ValueId),
    /// The aux residual the forward of this statement (an op of the table whose row keeps one)
    /// returned besides its value, borrowed: batch norm's statistics, max-pooling's indices.
    Aux(ValueId),
    /// The result of a shared step of a row's backward program, borrowed: computed once,
    /// before the calls of the statement's backward that read it.
    Step(Box<SharedStep>),
    /// A matrix given as the product of these forward matrices, left to right, passed as a
    /// slice of views (`rank1::Factors`): a kernel that only multiplies the matrix by vectors
    /// runs through the factors, so the product itself need not be kept.
    Factors(Vec<ValueId>),
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

/// One backward kernel call: `target`'s adjoint receives `module::function(args)`.
#[derive(Clone, Debug)]
pub struct GradCall {
    pub target: ValueId,
    /// `None` means "the adjoint itself" (the single argument is passed through).
    pub kernel: Option<Kernel>,
    pub args: Vec<GradArg>,
    /// The kernel's out-of-place form, taking `&g` where `kernel` takes `g`: run instead
    /// when the adjoint is still needed afterwards, so that it is not copied.
    pub borrowing: Option<Kernel>,
    /// The form of the adjoint the call returns. Codegen keeps a symbolic form where the
    /// target's own rules can use it and materialises it where they cannot.
    pub yields: Form,
    /// Set by codegen: the symbolic result cannot stay symbolic, so it is expanded
    /// (`reduce::sum_grad` for a fill, `rank1::outer_dense` for an outer product).
    pub materialize: bool,
    /// What runs instead when the shared steps this call reads are not run by another call of
    /// the same backward (a row's `else`); resolved by [`backward`], so that codegen never
    /// sees one.
    pub fallback: Option<Box<GradCall>>,
}

/// A shared step of a row's backward program (`let sums = ..;`): one kernel call whose
/// result several of the statement's backward calls read ([`GradArg::Step`]).
#[derive(Clone, Debug)]
pub struct SharedStep {
    /// The statement whose backward it belongs to.
    pub stmt: ValueId,
    /// The step's name in the row (`sums`).
    pub name: &'static str,
    pub kernel: Kernel,
    /// The kernel's twin for when a value it reads is kept rounded (`residuals = "bf16"`)
    /// while the aux it reads describes it unrounded (the row's `rounded`); codegen swaps it
    /// in where it packs such a value.
    pub rounded: Option<Kernel>,
    /// Its arguments: those of a call, borrowing the adjoint (never `G`, nor another step).
    pub args: Vec<GradArg>,
}

impl PartialEq for SharedStep {
    /// The same step of the same statement.
    fn eq(&self, other: &Self) -> bool {
        (self.stmt, self.name) == (other.stmt, other.name)
    }
}

/// How an adjoint is held in the static code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// An array of the value's shape (a float for a float value).
    Dense,
    /// One float standing for an array of the value's shape filled with it (the backward of
    /// `sum`, `mean`, and what stays constant after them).
    Fill,
    /// A matrix held as the outer product `u·vᵀ` (`rank1::Outer`): a fill after a matrix
    /// product, kept through the ops that keep the form.
    Outer,
}

impl GradCall {
    fn new(target: ValueId, kernel: Kernel, args: Vec<GradArg>) -> Self {
        GradCall {
            target,
            kernel: Some(kernel),
            args,
            borrowing: None,
            yields: Form::Dense,
            materialize: false,
            fallback: None,
        }
    }

    /// `new`, with the kernel's out-of-place form.
    fn borrowing(self, twin: Kernel) -> Self {
        GradCall {
            borrowing: Some(twin),
            ..self
        }
    }

    fn fill(target: ValueId, kernel: Option<Kernel>, args: Vec<GradArg>) -> Self {
        GradCall {
            target,
            kernel,
            args,
            borrowing: None,
            yields: Form::Fill,
            materialize: false,
            fallback: None,
        }
    }

    fn outer(target: ValueId, kernel: Kernel, args: Vec<GradArg>) -> Self {
        GradCall {
            target,
            kernel: Some(kernel),
            args,
            borrowing: None,
            yields: Form::Outer,
            materialize: false,
            fallback: None,
        }
    }

    fn identity(target: ValueId, arg: GradArg) -> Self {
        GradCall {
            target,
            kernel: None,
            args: vec![arg],
            borrowing: None,
            yields: Form::Dense,
            materialize: false,
            fallback: None,
        }
    }

    /// Every argument the call reads: its own, and those of the shared steps it reads (in
    /// their place). What backward reads of forward values is found through this.
    pub fn reads(&self) -> impl Iterator<Item = &GradArg> {
        self.args.iter().flat_map(|arg| match arg {
            GradArg::Step(step) => step.args.iter().collect::<Vec<_>>(),
            _ => vec![arg],
        })
    }

    /// The shared steps the call reads.
    pub fn steps(&self) -> impl Iterator<Item = &SharedStep> {
        self.args.iter().filter_map(|arg| match arg {
            GradArg::Step(step) => Some(&**step),
            _ => None,
        })
    }

    /// The call as its kernel's fill form, if it has one: the backward of a full reduction
    /// stays one float standing for a filled array.
    fn into_fill(self) -> Self {
        match self.kernel.and_then(Kernel::fill_form) {
            Some(FillForm::Identity) => GradCall::fill(self.target, None, self.args.into_iter().take(1).collect()),
            Some(FillForm::Kernel(kernel)) => GradCall::fill(self.target, Some(kernel), self.args),
            None => self,
        }
    }
}

/// The op of the table `stmt` is, with its inputs and constant arguments; `None` for the
/// ops that are not in it (elementwise rows, mapv closures, control flow, calls) and for
/// forms the static code specialises (an operand that is a float).
pub fn table_op(function: &Function, stmt: &Stmt) -> Option<(TableOp, Vec<Option<ValueId>>, Vec<TokenStream>)> {
    let kind = |v: ValueId| function.kind(v);
    let array = |v: ValueId| kind(v).is_array();
    let (op, inputs, consts) = match &stmt.op {
        Op::Binary(op, a, b) if array(*a) && array(*b) => {
            let op = match op {
                BinOp::Add => TableOp::Add,
                BinOp::Sub => TableOp::Sub,
                BinOp::Mul => TableOp::Mul,
                BinOp::Div => TableOp::Div,
            };
            (op, vec![*a, *b], vec![])
        }
        Op::Neg(a) if array(*a) => (TableOp::Neg, vec![*a], vec![]),
        Op::Powi(a, n) if array(*a) => (TableOp::Powi, vec![*a], vec![n.clone()]),
        Op::Powf(a, p) if array(*a) => (TableOp::Powf, vec![*a], vec![p.clone()]),
        Op::Dot(a, b) => {
            let op = match (kind(*a), kind(*b)) {
                (Kind::Array(Some(2)), Kind::Array(Some(2))) => TableOp::MatMul,
                (Kind::Array(Some(2)), _) => TableOp::MatVec,
                (_, Kind::Array(Some(2))) => TableOp::VecMat,
                _ => TableOp::VecDot,
            };
            (op, vec![*a, *b], vec![])
        }
        Op::Transpose(a) => (TableOp::Transpose, vec![*a], vec![]),
        Op::Sum(a) => (TableOp::Sum, vec![*a], vec![]),
        Op::Mean(a) => (TableOp::Mean, vec![*a], vec![]),
        Op::SumAxis(a, axis) => (TableOp::SumAxis, vec![*a], vec![axis.clone()]),
        Op::MeanAxis(a, axis) => (TableOp::MeanAxis, vec![*a], vec![axis.clone()]),
        Op::Softmax(a, axis) => (TableOp::Softmax, vec![*a], vec![axis.clone()]),
        Op::LogSoftmax(a, axis) => (TableOp::LogSoftmax, vec![*a], vec![axis.clone()]),
        Op::Mse(p, t) => (TableOp::Mse, vec![*p, *t], vec![]),
        Op::CrossEntropy(logits, labels) => (TableOp::CrossEntropy, vec![*logits], vec![labels.clone()]),
        Op::Conv2d {
            input,
            weight,
            bias,
            stride,
            padding,
        } => {
            return Some((
                TableOp::Conv2d,
                vec![Some(*input), Some(*weight), *bias],
                vec![stride.clone(), padding.clone()],
            ))
        }
        Op::BatchNorm {
            input,
            gamma,
            beta,
            eps,
        } => (TableOp::BatchNorm, vec![*input, *gamma, *beta], vec![eps.clone()]),
        Op::MaxPool2d { input, kernel, stride } => {
            (TableOp::MaxPool2d, vec![*input], vec![kernel.clone(), stride.clone()])
        }
        _ => return None,
    };
    Some((op, inputs.into_iter().map(Some).collect(), consts))
}

/// The aux residual the row of the op table that statement `v` is keeps, if it keeps one.
pub fn aux_of(function: &Function, v: ValueId) -> Option<Aux> {
    let (op, inputs, consts) = table_op(function, function.stmt(v))?;
    op.aux(&inputs, v, &consts)
}

/// The backward calls of `stmt`, for each active operand (`is_active`), when the output's
/// adjoint is held in `form`.
///
/// For a symbolic form, rules that can use it (matmul, transpose, broadcast sums, scaling)
/// do; the others return `None` and the caller materialises the adjoint first.
pub fn backward(
    function: &Function,
    stmt: &Stmt,
    is_active: &dyn Fn(ValueId) -> bool,
    form: Form,
) -> Option<Vec<GradCall>> {
    use GradArg::*;
    match form {
        Form::Dense => {}
        Form::Fill => return backward_filled(function, stmt, is_active),
        Form::Outer => return backward_outer(function, stmt, is_active),
    }
    let kind = |v: ValueId| function.kind(v);
    let calls = if let Op::Binary(BinOp::Mul, a, b) = &stmt.op {
        // `a * a` is `a.square()`: one step, `g·2a`, where the table's rule of `a * b` writes
        // two products and a sum.
        if a == b && kind(*a).is_array() {
            vec![GradCall::new(
                *a,
                Kernel::UnaryGrad(UnaryFn::Square),
                vec![G, Value(*a)],
            )]
        } else {
            dense_rule(function, stmt)
        }
    } else {
        dense_rule(function, stmt)
    };
    Some(resolve_fallbacks(
        calls.into_iter().filter(|c| is_active(c.target)).collect(),
    ))
}

/// Each call with a fallback (a row's `else`) as itself if the shared steps it reads run
/// anyway (another of `calls`, without a fallback, reads them), else as its fallback: a step
/// runs only where some call needs it.
fn resolve_fallbacks(calls: Vec<GradCall>) -> Vec<GradCall> {
    let running: Vec<SharedStep> = calls
        .iter()
        .filter(|c| c.fallback.is_none())
        .flat_map(|c| c.steps().cloned())
        .collect();
    calls
        .into_iter()
        .map(|call| {
            let runs = call.steps().all(|step| running.contains(step));
            match call.fallback {
                Some(fallback) if !runs => *fallback,
                _ => GradCall { fallback: None, ..call },
            }
        })
        .collect()
}

/// The backward calls of `stmt` for a dense adjoint, for every operand.
fn dense_rule(function: &Function, stmt: &Stmt) -> Vec<GradCall> {
    use GradArg::*;
    let kind = |v: ValueId| function.kind(v);
    let out = stmt.id;
    if let Some((op, inputs, consts)) = table_op(function, stmt) {
        op.vjp(&inputs, out, &consts)
            .into_iter()
            .map(GradCall::into_fill)
            .collect()
    } else {
        match &stmt.op {
            Op::Param { .. } | Op::Const(_) | Op::ConstArray(_) => vec![],
            // Emitted by codegen itself: a slice element accumulates into the slice's gradient
            // at its index; a loop runs its body's backward; a loop output's adjoint is read by
            // its loop; a call runs the callee's backward.
            Op::Index(..) | Op::Loop(_) | Op::LoopOut { .. } | Op::Call(_) | Op::Custom { .. } => vec![],
            // Conditions are never differentiated: a piecewise function's derivative is the
            // taken branch's.
            Op::Compare(..) | Op::Not(_) | Op::And(..) | Op::Or(..) => vec![],
            // Two arrays are in the table; a float operand is specialised.
            Op::Binary(op, a, b) => scalar_binary(*op, *a, *b, kind(*a).is_array(), kind(*b).is_array()),
            Op::Neg(a) => vec![GradCall::new(*a, Kernel::neg_grad_scalar, vec![GScalar])],
            Op::Unary(f, a) => {
                let saved = if f.saves_output() { out } else { *a };
                vec![if kind(*a) == Kind::Scalar {
                    GradCall::new(*a, Kernel::UnaryGradScalar(*f), vec![GScalar, Value(saved)])
                } else {
                    GradCall::new(*a, Kernel::UnaryGrad(*f), vec![G, Value(saved)])
                }]
            }
            Op::Pairwise(f, a, b) => vec![
                GradCall::new(*a, Kernel::PairwiseGradLhs(*f), vec![G, Value(*a), Value(*b)]),
                GradCall::new(*b, Kernel::PairwiseGradRhs(*f), vec![G, Value(*a), Value(*b)]),
            ],
            Op::Powi(a, n) => vec![GradCall::new(
                *a,
                Kernel::powi_grad_scalar,
                vec![GScalar, Value(*a), Tokens(n.clone())],
            )],
            Op::Powf(a, p) => vec![GradCall::new(
                *a,
                Kernel::powf_grad_scalar,
                vec![GScalar, Value(*a), Tokens(p.clone())],
            )],
            Op::Map { input, captures, .. } => {
                let derivative = |wrt| MapDerivative(out, wrt);
                let mut calls = vec![GradCall::new(
                    *input,
                    Kernel::map_grad,
                    vec![G, Value(*input), derivative(Wrt::Arg)],
                )];
                for (k, capture) in captures.iter().enumerate() {
                    let args = vec![GRef, Value(*input), derivative(Wrt::Capture(k))];
                    calls.push(GradCall::new(*capture, Kernel::map_grad_capture, args));
                }
                calls
            }
            // In the table (`table_op` answered above).
            Op::Dot(..)
            | Op::Transpose(_)
            | Op::Sum(_)
            | Op::Mean(_)
            | Op::SumAxis(..)
            | Op::MeanAxis(..)
            | Op::Softmax(..)
            | Op::LogSoftmax(..)
            | Op::Mse(..)
            | Op::CrossEntropy(..)
            | Op::Conv2d { .. }
            | Op::BatchNorm { .. }
            | Op::MaxPool2d { .. } => vec![],
        }
    }
}

/// `a ∘ b` where at least one operand is a float: the static code's specialisations of the
/// table's broadcasting rows (a float adjoint is a float, not a 0-d array, and an array's
/// contribution to a float is one reduction).
fn scalar_binary(op: BinOp, a: ValueId, b: ValueId, a_array: bool, b_array: bool) -> Vec<GradCall> {
    use GradArg::*;
    let (lhs, rhs) = match (a_array, b_array) {
        (false, false) => match op {
            BinOp::Add => (GradCall::identity(a, GScalar), GradCall::identity(b, GScalar)),
            BinOp::Sub => (
                GradCall::identity(a, GScalar),
                GradCall::new(b, Kernel::neg_grad_scalar, vec![GScalar]),
            ),
            BinOp::Mul => (
                GradCall::new(a, Kernel::mul_grad_scalar, vec![GScalar, Value(b)]),
                GradCall::new(b, Kernel::mul_grad_scalar, vec![GScalar, Value(a)]),
            ),
            BinOp::Div => (
                GradCall::new(a, Kernel::div_grad_lhs_scalar, vec![GScalar, Value(b)]),
                GradCall::new(b, Kernel::div_grad_rhs_scalar, vec![GScalar, Value(a), Value(b)]),
            ),
        },
        // array ∘ float: the float's adjoint is listed first (it only borrows `g`). (Two
        // arrays are the table's rows and never come here.)
        (true, _) => {
            let (arr, sc) = match op {
                BinOp::Add => (
                    GradCall::identity(a, G),
                    GradCall::new(b, Kernel::sum_grad_of_scalar, vec![GRef]),
                ),
                BinOp::Sub => (
                    GradCall::identity(a, G),
                    GradCall::new(b, Kernel::sub_scalar_grad_scalar, vec![GRef]),
                ),
                BinOp::Mul => (
                    GradCall::new(a, Kernel::scale_grad, vec![G, Value(b)]).borrowing(Kernel::scale_grad_ref),
                    GradCall::new(b, Kernel::sum_product, vec![GRef, Value(a)]),
                ),
                BinOp::Div => (
                    GradCall::new(a, Kernel::div_scalar_grad_array, vec![G, Value(b)]),
                    GradCall::new(b, Kernel::div_scalar_grad_scalar, vec![GRef, Value(a), Value(b)]),
                ),
            };
            return vec![sc, arr];
        }
        // float ∘ array
        (false, true) => match op {
            BinOp::Add => (
                GradCall::new(a, Kernel::sum_grad_of_scalar, vec![GRef]),
                GradCall::identity(b, G),
            ),
            BinOp::Sub => (
                GradCall::new(a, Kernel::sum_grad_of_scalar, vec![GRef]),
                GradCall::new(b, Kernel::neg_grad, vec![G]),
            ),
            BinOp::Mul => (
                GradCall::new(a, Kernel::sum_product, vec![GRef, Value(b)]),
                GradCall::new(b, Kernel::scale_grad, vec![G, Value(a)]).borrowing(Kernel::scale_grad_ref),
            ),
            BinOp::Div => (
                GradCall::new(a, Kernel::scalar_div_grad_scalar, vec![GRef, Value(b)]),
                GradCall::new(b, Kernel::scalar_div_grad_array, vec![G, Value(a), Value(b)]),
            ),
        },
    };
    vec![lhs, rhs]
}
/// The backward calls of `stmt` when its adjoint is a filled array (one float `g`
/// everywhere), for the ops where that saves work; `None` for the others. Must name the
/// same targets as the dense rules (codegen counts contributions with those).
fn backward_filled(function: &Function, stmt: &Stmt, is_active: &dyn Fn(ValueId) -> bool) -> Option<Vec<GradCall>> {
    use GradArg::*;
    let kind = |v: ValueId| function.kind(v);
    let out = stmt.id;
    let fill = |target, kernel, args| GradCall::fill(target, Some(kernel), args);
    let calls = match &stmt.op {
        // d(a ± b): each operand receives the fill times the number of times it was broadcast.
        Op::Binary(op @ (BinOp::Add | BinOp::Sub), a, b) if kind(*a).is_array() && kind(*b).is_array() => {
            let rhs = if *op == BinOp::Add {
                Kernel::add_grad_fill
            } else {
                Kernel::sub_grad_rhs_fill
            };
            vec![
                fill(*a, Kernel::add_grad_fill, vec![GScalar, Dim(out), Dim(*a)]),
                fill(*b, rhs, vec![GScalar, Dim(out), Dim(*b)]),
            ]
        }
        // d(a ± s): the array keeps the fill, the float receives its sum.
        Op::Binary(op @ (BinOp::Add | BinOp::Sub), a, s) if kind(*a).is_array() => {
            let sum = if *op == BinOp::Add {
                Kernel::fill_sum
            } else {
                Kernel::fill_sum_neg
            };
            vec![
                GradCall::fill(*a, None, vec![GScalar]),
                GradCall::new(*s, sum, vec![GScalar, Dim(out)]),
            ]
        }
        Op::Binary(op @ (BinOp::Add | BinOp::Sub), s, a) if kind(*a).is_array() => {
            let array = if *op == BinOp::Add {
                GradCall::fill(*a, None, vec![GScalar])
            } else {
                fill(*a, Kernel::neg_grad_scalar, vec![GScalar])
            };
            vec![GradCall::new(*s, Kernel::fill_sum, vec![GScalar, Dim(out)]), array]
        }
        // d(a · s) = fill(g·s) for the array, g·Σa for the float.
        Op::Binary(BinOp::Mul, a, s) | Op::Binary(BinOp::Mul, s, a) if kind(*a).is_array() && !kind(*s).is_array() => {
            vec![
                fill(*a, Kernel::mul_grad_scalar, vec![GScalar, Value(*s)]),
                GradCall::new(*s, Kernel::fill_sum_product, vec![GScalar, Value(*a)]),
            ]
        }
        Op::Neg(a) if kind(*a).is_array() => vec![fill(*a, Kernel::neg_grad_scalar, vec![GScalar])],
        Op::Transpose(a) => vec![GradCall::fill(*a, None, vec![GScalar])],
        Op::SumAxis(a, _) => vec![GradCall::fill(*a, None, vec![GScalar])],
        Op::MeanAxis(a, axis) => {
            vec![fill(
                *a,
                Kernel::mean_axis_grad_fill,
                vec![GScalar, Tokens(axis.clone()), Dim(*a)],
            )]
        }
        // d(a·b) with a filled adjoint is an outer product of row/column sums: no GEMM.
        Op::Dot(a, b) if kind(*a) == Kind::Array(Some(2)) && kind(*b) == Kind::Array(Some(2)) => vec![
            GradCall::outer(
                *a,
                Kernel::filled_matmul_grad_lhs,
                vec![GScalar, DimAxis(out, 0), Factors(vec![*b])],
            ),
            GradCall::outer(
                *b,
                Kernel::filled_matmul_grad_rhs,
                vec![Factors(vec![*a]), GScalar, DimAxis(out, 1)],
            ),
        ],
        _ => return None,
    };
    Some(calls.into_iter().filter(|c| is_active(c.target)).collect())
}

/// The backward calls of `stmt` when its adjoint is an outer product `u·vᵀ` (a matrix), for
/// the ops that keep the form or reduce it cheaply; `None` for the others. Must name the same
/// targets as the dense rules.
fn backward_outer(function: &Function, stmt: &Stmt, is_active: &dyn Fn(ValueId) -> bool) -> Option<Vec<GradCall>> {
    use GradArg::*;
    let kind = |v: ValueId| function.kind(v);
    let matrix = |v: ValueId| kind(v) == Kind::Array(Some(2));
    // An operand of a broadcast sum: a matrix keeps the form, a lower rank is written dense.
    let summand = |v: ValueId, negated: bool| match (matrix(v), negated) {
        (true, false) => GradCall::outer(v, Kernel::outer_add_grad, vec![GRef, Dim(v)]),
        (true, true) => GradCall::outer(v, Kernel::outer_sub_grad_rhs, vec![GRef, Dim(v)]),
        (false, false) => GradCall::new(v, Kernel::outer_add_grad_dense, vec![GRef, Dim(v)]),
        (false, true) => GradCall::new(v, Kernel::outer_sub_grad_rhs_dense, vec![GRef, Dim(v)]),
    };
    let calls = match &stmt.op {
        // d(a·b) = (u·vᵀ)·bᵀ = u·(b·v)ᵀ and aᵀ·(u·vᵀ) = (aᵀ·u)·vᵀ: matrix-vector products.
        Op::Dot(a, b) if matrix(*a) && matrix(*b) => vec![
            GradCall::outer(*a, Kernel::outer_matmul_grad_lhs, vec![GRef, Factors(vec![*b])]),
            GradCall::outer(*b, Kernel::outer_matmul_grad_rhs, vec![Factors(vec![*a]), GRef]),
        ],
        Op::Transpose(a) if matrix(*a) => vec![GradCall::outer(*a, Kernel::outer_transpose_grad, vec![GRef])],
        Op::Neg(a) => vec![GradCall::outer(*a, Kernel::outer_neg_grad, vec![GRef])],
        Op::Binary(op @ (BinOp::Add | BinOp::Sub), a, b) if kind(*a).is_array() && kind(*b).is_array() => {
            vec![summand(*a, false), summand(*b, *op == BinOp::Sub)]
        }
        // a ± s: the matrix keeps the adjoint, the float receives its sum.
        Op::Binary(op @ (BinOp::Add | BinOp::Sub), a, s) if kind(*a).is_array() => {
            let sum = if *op == BinOp::Add {
                Kernel::outer_sum
            } else {
                Kernel::outer_sum_neg
            };
            vec![
                GradCall::new(*s, sum, vec![GRef]),
                GradCall {
                    yields: Form::Outer,
                    ..GradCall::identity(*a, G)
                },
            ]
        }
        Op::Binary(BinOp::Add, s, a) if kind(*a).is_array() => vec![
            GradCall::new(*s, Kernel::outer_sum, vec![GRef]),
            GradCall {
                yields: Form::Outer,
                ..GradCall::identity(*a, G)
            },
        ],
        Op::Binary(BinOp::Sub, s, a) if kind(*a).is_array() => vec![
            GradCall::new(*s, Kernel::outer_sum, vec![GRef]),
            GradCall::outer(*a, Kernel::outer_neg_grad, vec![GRef]),
        ],
        // a·s: the matrix receives u·s·vᵀ, the float uᵀ·a·v.
        Op::Binary(BinOp::Mul, a, s) | Op::Binary(BinOp::Mul, s, a) if matrix(*a) && !kind(*s).is_array() => vec![
            GradCall::new(*s, Kernel::outer_scale_grad_scalar, vec![GRef, Factors(vec![*a])]),
            GradCall::outer(*a, Kernel::outer_scale_grad, vec![GRef, Value(*s)]),
        ],
        _ => return None,
    };
    Some(calls.into_iter().filter(|c| is_active(c.target)).collect())
}
