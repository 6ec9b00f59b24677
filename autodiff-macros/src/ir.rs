//! The intermediate representation: a function as a list of single assignments.
//!
//! Invariants (checked by construction in `lower.rs`):
//! - every `ValueId` is assigned exactly once, by one `Stmt`, and is only used by later statements;
//! - every value has a `Kind` (a float scalar or an array of known or dynamic rank);
//! - constant arguments that are not values (an `Axis(1)`, a stride, class labels, a literal) are kept
//!   as the user's tokens and never differentiated.

use proc_macro2::TokenStream;
use syn::Ident;

/// One SSA value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ValueId(pub usize);

/// What a value is, as far as the generated code needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A float (`f32`, `f64` or the function's generic float type).
    Scalar,
    /// An ndarray array of the float type with this many axes (`None`: `ArrayD`).
    Array(Option<usize>),
    /// A slice parameter of arrays with this many axes (`&[Array2<F>]`): only indexed
    /// (`ws[i]`) and asked its length.
    Slice(Option<usize>),
    /// What a `for` loop statement produces: its carried values, read by `Op::LoopOut`.
    Loop,
    /// A condition (`s > 0.0`): computed in forward, kept for backward, never differentiated.
    Bool,
}

impl Kind {
    /// Whether this is an array.
    pub fn is_array(self) -> bool {
        matches!(self, Kind::Array(_))
    }
}

/// An elementwise binary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl BinOp {
    /// The operator as Rust tokens (`+`, ...), for constant expressions.
    pub fn symbol(self) -> proc_macro2::TokenStream {
        match self {
            BinOp::Add => quote::quote!(+),
            BinOp::Sub => quote::quote!(-),
            BinOp::Mul => quote::quote!(*),
            BinOp::Div => quote::quote!(/),
        }
    }

    /// The kernel's base name (`add`, `sub`, `mul`, `div`).
    pub fn name(self) -> &'static str {
        match self {
            BinOp::Add => "add",
            BinOp::Sub => "sub",
            BinOp::Mul => "mul",
            BinOp::Div => "div",
        }
    }
}

/// The macro's side of the unary rows of the primitive table: which names exist, in which
/// forms, what backward reads, and the names of the runtime kernels each row expands to.
macro_rules! unary_table {
    ($(
        $(#[$doc:meta])*
        $variant:ident $name:ident ($grad:ident, $scalar:ident, $grad_scalar:ident, $saves_const:ident)
            forms($($form:ident),*), domain $domain:ident,
            forward |$x:ident| $forward:expr, $(vector $vector:ident,)?
            saves $saves:ident,
            derivative |$s:ident| $derivative:expr;
    )*) => {
        /// An elementwise function of one value: one variant per row of
        /// `autodiff_primitives::for_each_unary`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum UnaryFn {
            $($variant,)*
        }

        impl UnaryFn {
            /// Every row, in table order.
            pub const ALL: &'static [UnaryFn] = &[$(UnaryFn::$variant,)*];

            /// The name users write (`x.tanh()`), which also names the forward kernel.
            pub fn name(self) -> &'static str {
                match self {
                    $(UnaryFn::$variant => stringify!($name),)*
                }
            }

            /// Whether the backward reads the output (`true`) or the input (`false`).
            pub fn saves_output(self) -> bool {
                match self {
                    $(UnaryFn::$variant => stringify!($saves) != "Input",)*
                }
            }

            /// Whether the backward reads only the sign of the output (`y > 0`), so that a
            /// bit per element can stand for it.
            pub fn reads_output_sign(self) -> bool {
                match self {
                    $(UnaryFn::$variant => stringify!($saves) == "OutputSign",)*
                }
            }

            /// Whether the prelude has a free function of this name (`relu(&x)`).
            pub fn is_function(self) -> bool {
                match self {
                    $(UnaryFn::$variant => autodiff_primitives::has_form!(function in ($($form),*) ? true, false),)*
                }
            }

            /// The runtime kernel of the backward on arrays (`tanh_grad`).
            pub fn grad_kernel(self) -> &'static str {
                match self {
                    $(UnaryFn::$variant => stringify!($grad),)*
                }
            }

            /// The runtime kernel of the forward on one float (`tanh_scalar`).
            pub fn scalar_kernel(self) -> &'static str {
                match self {
                    $(UnaryFn::$variant => stringify!($scalar),)*
                }
            }

            /// The runtime kernel of the backward on one float (`tanh_grad_scalar`).
            pub fn grad_scalar_kernel(self) -> &'static str {
                match self {
                    $(UnaryFn::$variant => stringify!($grad_scalar),)*
                }
            }
        }
    };
}

autodiff_primitives::for_each_unary!(unary_table);

impl UnaryFn {
    /// Looks up a method or function name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|f| f.name() == name)
    }
}

/// The macro's side of the pairwise rows of the primitive table (`maximum(&a, &b)`, ...).
macro_rules! pairwise_table {
    ($(
        $(#[$doc:meta])*
        $variant:ident $name:ident ($grad_lhs:ident, $grad_rhs:ident) domain $domain:ident,
            forward |$a:ident, $b:ident| $forward:expr,
            derivative_lhs |$la:ident, $lb:ident| $lhs:expr,
            derivative_rhs |$ra:ident, $rb:ident| $rhs:expr;
    )*) => {
        /// An elementwise function of two arrays: one variant per row of
        /// `autodiff_primitives::for_each_binary`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum PairwiseFn {
            $($variant,)*
        }

        impl PairwiseFn {
            /// Every row, in table order.
            pub const ALL: &'static [PairwiseFn] = &[$(PairwiseFn::$variant,)*];

            /// The prelude function's name (`maximum`), which also names the forward kernel.
            pub fn name(self) -> &'static str {
                match self {
                    $(PairwiseFn::$variant => stringify!($name),)*
                }
            }

            /// The runtime kernels of the two adjoints (`maximum_grad_lhs`, `maximum_grad_rhs`).
            pub fn grad_kernels(self) -> [&'static str; 2] {
                match self {
                    $(PairwiseFn::$variant => [stringify!($grad_lhs), stringify!($grad_rhs)],)*
                }
            }
        }
    };
}

autodiff_primitives::for_each_binary!(pairwise_table);

impl PairwiseFn {
    /// Looks up a function name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|f| f.name() == name)
    }
}

/// A scalar expression of a `mapv` closure, kept symbolic so it can be differentiated.
#[derive(Clone, Debug)]
pub enum ScalarExpr {
    /// The closure's argument.
    Arg,
    /// The `k`-th float value the closure captures (`Op::Map::captures[k]`): a parameter or
    /// an intermediate of the function, differentiated like any operand.
    Capture(usize),
    /// A constant (literal or expression of non-differentiable parameters), as written.
    Const(TokenStream),
    Binary(BinOp, Box<ScalarExpr>, Box<ScalarExpr>),
    Neg(Box<ScalarExpr>),
    Unary(UnaryFn, Box<ScalarExpr>),
    /// `e.powi(n)` with a constant `n`.
    Powi(Box<ScalarExpr>, TokenStream),
    /// `e.powf(p)` with a constant `p`.
    Powf(Box<ScalarExpr>, TokenStream),
    /// `e.max(c)` (`is_max`) or `e.min(c)` with a constant `c`.
    Clamp {
        is_max: bool,
        arg: Box<ScalarExpr>,
        bound: TokenStream,
    },
    /// `if cond { then } else { otherwise }`: the derivative is the taken branch's.
    If {
        cond: Box<ScalarCond>,
        then: Box<ScalarExpr>,
        otherwise: Box<ScalarExpr>,
    },
}

/// A condition in a `mapv` closure: comparisons of scalar expressions, combined.
#[derive(Clone, Debug)]
pub enum ScalarCond {
    Compare(CmpOp, ScalarExpr, ScalarExpr),
    Not(Box<ScalarCond>),
    And(Box<ScalarCond>, Box<ScalarCond>),
    Or(Box<ScalarCond>, Box<ScalarCond>),
}

/// An operation producing one value.
#[derive(Clone, Debug)]
pub enum Op {
    /// The function's `index`-th parameter.
    Param {
        index: usize,
    },
    /// A float constant: a literal or an expression of non-differentiable parameters.
    Const(TokenStream),
    /// An array built in the body from constants (`Array1::zeros(n)`, `Array2::ones((a, b))`,
    /// `Array::from_elem(..)`), or a float constant that must be a value (a branch's value,
    /// a loop-carried variable assigned a constant): computed in forward, never differentiated.
    ConstArray(TokenStream),
    Binary(BinOp, ValueId, ValueId),
    Neg(ValueId),
    Unary(UnaryFn, ValueId),
    /// `maximum(&a, &b)`, ...: an elementwise function of two arrays, broadcasting.
    Pairwise(PairwiseFn, ValueId, ValueId),
    Powi(ValueId, TokenStream),
    Powf(ValueId, TokenStream),
    /// `x.mapv(|arg| body)`.
    Map {
        input: ValueId,
        arg: Ident,
        body: ScalarExpr,
        /// The float values the body captures, without repeats.
        captures: Vec<ValueId>,
    },
    /// `a.dot(b)` (ranks are in the operands' kinds).
    Dot(ValueId, ValueId),
    Transpose(ValueId),
    Sum(ValueId),
    Mean(ValueId),
    SumAxis(ValueId, TokenStream),
    MeanAxis(ValueId, TokenStream),
    Softmax(ValueId, TokenStream),
    LogSoftmax(ValueId, TokenStream),
    Mse(ValueId, ValueId),
    CrossEntropy(ValueId, TokenStream),
    Conv2d {
        input: ValueId,
        weight: ValueId,
        bias: Option<ValueId>,
        stride: TokenStream,
        padding: TokenStream,
    },
    BatchNorm {
        input: ValueId,
        gamma: ValueId,
        beta: ValueId,
        eps: TokenStream,
    },
    MaxPool2d {
        input: ValueId,
        kernel: TokenStream,
        stride: TokenStream,
    },
    /// `ws[i]`: an element of a slice parameter, at a constant index.
    Index(ValueId, TokenStream),
    /// `layer(&h, &w)`: a call of another `#[differentiate]` function.
    Call(Box<Call>),
    /// The whole body of a function with a custom rule (`#[differentiate(vjp = ..)]`): the
    /// user's function in forward, the user's VJP in backward. `call.path` is the function.
    Custom {
        call: Box<Call>,
        vjp: syn::Path,
    },
    /// `a > b` (and `<`, `>=`, `<=`, `==`, `!=`) of floats: a condition.
    Compare(CmpOp, ValueId, ValueId),
    /// `!c`, `a && b`, `a || b` of conditions.
    Not(ValueId),
    And(ValueId, ValueId),
    Or(ValueId, ValueId),
    /// `for i in a..b { .. }`: runs a body sub-function once per index.
    Loop(Box<Loop>),
    /// The final value of the `k`-th carried variable of the loop statement `of`.
    LoopOut {
        of: ValueId,
        k: usize,
    },
}

/// A comparison of floats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl CmpOp {
    /// The comparison a Rust operator stands for; `None` for any other operator.
    pub fn from_syn(op: &syn::BinOp) -> Option<CmpOp> {
        Some(match op {
            syn::BinOp::Lt(_) => CmpOp::Lt,
            syn::BinOp::Le(_) => CmpOp::Le,
            syn::BinOp::Gt(_) => CmpOp::Gt,
            syn::BinOp::Ge(_) => CmpOp::Ge,
            syn::BinOp::Eq(_) => CmpOp::Eq,
            syn::BinOp::Ne(_) => CmpOp::Ne,
            _ => return None,
        })
    }

    /// The operator as Rust tokens.
    pub fn symbol(self) -> TokenStream {
        match self {
            CmpOp::Lt => quote::quote!(<),
            CmpOp::Le => quote::quote!(<=),
            CmpOp::Gt => quote::quote!(>),
            CmpOp::Ge => quote::quote!(>=),
            CmpOp::Eq => quote::quote!(==),
            CmpOp::Ne => quote::quote!(!=),
        }
    }
}

/// A call of another `#[differentiate]` function, whose generated call protocol
/// (`<name>_call_forward`, `<name>_call_backward`, `<Name>CallContext`) the caller uses.
#[derive(Clone, Debug)]
pub struct Call {
    /// The callee as the user wrote it (`layer`, `nn::layer`, `layer::<f64>`).
    pub path: syn::Path,
    /// One per parameter of the callee.
    pub args: Vec<CallArg>,
}

/// An argument of a call.
#[derive(Clone, Debug)]
pub enum CallArg {
    /// A value of the caller, passed as the user passed it.
    Value(ValueId, Passing),
    /// A constant (labels, a size), passed as written.
    Const(TokenStream),
    /// A float constant (`0.5`, `F::of(0.5)`, `n as f64`): as written in static code, a
    /// constant `Var` on the tape (the callee's float parameters are `Var`s there).
    FloatConst(TokenStream),
}

/// How an argument is passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Passing {
    /// `&h` (or a float, by value).
    Ref,
    /// `h`, `h.clone()`: an owned array.
    Owned,
    /// `h.view()`.
    View,
}

impl Call {
    /// The caller's values passed to the callee, in order.
    pub fn operands(&self) -> Vec<ValueId> {
        self.args
            .iter()
            .filter_map(|a| match a {
                CallArg::Value(v, _) => Some(*v),
                CallArg::Const(_) | CallArg::FloatConst(_) => None,
            })
            .collect()
    }
}

/// A `for` loop: the body is a function of its own, run once per index, whose first
/// parameters are the carried variables (`let mut` locals reassigned in the body) and
/// whose other parameters stand for the outer values the body reads (captured).
#[derive(Clone, Debug)]
pub struct Loop {
    /// The range, `a..b`, of constants.
    pub range: TokenStream,
    /// The loop variable, a constant `usize` in the body; `None` for `_`.
    pub index: Option<Ident>,
    pub body: Function,
    /// One per carried variable: its name and its value before the loop.
    pub carried: Vec<Carried>,
    /// The body's values that become the carried variables' next values, one per carried.
    pub outputs: Vec<ValueId>,
    /// `(body parameter index, outer value)` for each outer value the body reads.
    pub captured: Vec<(usize, ValueId)>,
    /// A branch arm on a condition computed in forward: the loop runs once if it holds,
    /// never otherwise (`range` is then only for display).
    pub flag: Option<ValueId>,
}

/// A loop-carried variable.
#[derive(Clone, Debug)]
pub struct Carried {
    pub name: String,
    pub init: Init,
}

/// A carried variable's value before the loop.
#[derive(Clone, Debug)]
pub enum Init {
    Value(ValueId),
    /// A float constant (`let mut acc = 0.0;`).
    Const(TokenStream),
    /// No value: a branch's result before its arm runs (exactly one arm sets it).
    Unset,
}

impl Loop {
    /// The outer values the loop reads: carried initial values, captured values, its flag.
    pub fn operands(&self) -> Vec<ValueId> {
        let inits = self.carried.iter().filter_map(|c| match c.init {
            Init::Value(v) => Some(v),
            Init::Const(_) | Init::Unset => None,
        });
        inits
            .chain(self.captured.iter().map(|&(_, v)| v))
            .chain(self.flag)
            .collect()
    }
}

impl Op {
    /// The values this op reads, in order.
    pub fn operands(&self) -> Vec<ValueId> {
        match self {
            Op::Param { .. } | Op::Const(_) | Op::ConstArray(_) => vec![],
            Op::Binary(_, a, b)
            | Op::Pairwise(_, a, b)
            | Op::Dot(a, b)
            | Op::Mse(a, b)
            | Op::Compare(_, a, b)
            | Op::And(a, b)
            | Op::Or(a, b) => vec![*a, *b],
            Op::Neg(a)
            | Op::Unary(_, a)
            | Op::Powi(a, _)
            | Op::Powf(a, _)
            | Op::Transpose(a)
            | Op::Sum(a)
            | Op::Mean(a)
            | Op::SumAxis(a, _)
            | Op::MeanAxis(a, _)
            | Op::Softmax(a, _)
            | Op::LogSoftmax(a, _)
            | Op::CrossEntropy(a, _)
            | Op::MaxPool2d { input: a, .. }
            | Op::Index(a, _)
            | Op::Not(a)
            | Op::LoopOut { of: a, .. } => vec![*a],
            Op::Loop(l) => l.operands(),
            Op::Call(c) | Op::Custom { call: c, .. } => c.operands(),
            Op::Map { input, captures, .. } => std::iter::once(*input).chain(captures.iter().copied()).collect(),
            Op::Conv2d {
                input, weight, bias, ..
            } => {
                let mut v = vec![*input, *weight];
                v.extend(bias);
                v
            }
            Op::BatchNorm { input, gamma, beta, .. } => vec![*input, *gamma, *beta],
        }
    }
}

/// `id = op`.
#[derive(Clone, Debug)]
pub struct Stmt {
    pub id: ValueId,
    pub op: Op,
    pub kind: Kind,
    /// The user's name for this value, if it was `let`-bound or a parameter (for plans and comments).
    pub name: Option<String>,
}

/// How a parameter takes part.
#[derive(Clone, Debug)]
pub enum ParamRole {
    /// A float or float array: a value in the IR (`differentiated` if in `wrt`).
    Value {
        id: ValueId,
        kind: Kind,
        by_ref: bool,
        /// An array view (`ArrayView2<F>`, or a reference to one), not an owned array.
        view: bool,
        differentiated: bool,
    },
    /// Anything else (`usize`, labels, config): a constant, passed through as written.
    Constant,
}

/// One parameter of the annotated function, or of a loop body.
#[derive(Clone, Debug)]
pub struct Param {
    pub ident: Ident,
    pub ty: syn::Type,
    pub role: ParamRole,
    /// Where a loop body's parameter comes from (`Origin::Own` for the function's own).
    pub origin: Origin,
}

/// Where a parameter's value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A parameter of the annotated function.
    Own,
    /// A loop body's carried variable: an owned local of the generated loop.
    Carried,
    /// An outer value read by a loop body, under the outer name: `outer_param` when that
    /// value is (or mirrors) one of the annotated function's parameters.
    Captured { outer_param: bool },
}

/// A lowered function (or a loop body).
#[derive(Clone, Debug)]
pub struct Function {
    pub params: Vec<Param>,
    pub stmts: Vec<Stmt>,
    pub output: ValueId,
    /// The differentiated parameters, in gradient order (`wrt` order when given).
    pub wrt: Vec<usize>,
}

impl Function {
    /// The statement defining `id`.
    pub fn stmt(&self, id: ValueId) -> &Stmt {
        &self.stmts[id.0]
    }

    /// The kind of `id`.
    pub fn kind(&self, id: ValueId) -> Kind {
        self.stmts[id.0].kind
    }

    /// Whether `id` is a constant.
    pub fn is_const(&self, id: ValueId) -> bool {
        matches!(self.stmts[id.0].op, Op::Const(_))
    }

    /// The parameter `id` stands for, if it is one.
    pub fn param_of(&self, id: ValueId) -> Option<&Param> {
        match self.stmts[id.0].op {
            Op::Param { index } => Some(&self.params[index]),
            _ => None,
        }
    }

    /// The value of the `index`-th parameter; `None` for a constant parameter.
    pub fn param_id(&self, index: usize) -> Option<ValueId> {
        match self.params[index].role {
            ParamRole::Value { id, .. } => Some(id),
            ParamRole::Constant => None,
        }
    }

    /// The `Op::LoopOut` statement reading carried variable `k` of the loop `of`, if the
    /// rest of the function reads that variable.
    pub fn loop_output(&self, of: ValueId, k: usize) -> Option<ValueId> {
        self.stmts
            .iter()
            .find(|s| matches!(s.op, Op::LoopOut { of: o, k: j } if o == of && j == k))
            .map(|s| s.id)
    }
}
