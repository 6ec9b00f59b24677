//! Lowering: the function body (syn) to the IR, with kind inference.
//!
//! Before: `let h = (x.dot(w) + b).tanh();`
//! After:  `v3 = Dot(v0, v1); v4 = Binary(Add, v3, v2); v5 = Unary(Tanh, v4)`, `h ↦ v5`.
//!
//! Every construct outside the documented subset gets an error on its own tokens that
//! says what is supported instead. Lowering keeps going after an error, so one
//! compilation reports them all.

mod branches;
mod calls;
mod custom;
mod loops;

pub use custom::custom;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::visit::Visit;
use syn::visit_mut::VisitMut;
use syn::{Expr, ExprCall, ExprMethodCall, Ident, ItemFn, Pat, Stmt as SynStmt};

use crate::ctxt::Ctxt;
use crate::ir::{
    BinOp, CmpOp, Function, Kind, Op, Origin, PairwiseFn, Param, ScalarCond, ScalarExpr, Stmt, UnaryFn, ValueId,
};
use crate::literals::{self, Rewrites};
use crate::signature::Signature;

/// Shape queries: constants, when asked of a parameter.
const SHAPE_QUERIES: &[&str] = &["len", "nrows", "ncols", "ndim", "shape", "is_empty", "dim"];

/// The array methods the subset supports, for error messages (and the README, whose
/// list a test compares with this one).
pub fn supported_methods() -> String {
    let mut methods = vec![
        "dot",
        "t",
        "reversed_axes",
        "sum",
        "sum_axis",
        "mean().unwrap()",
        "mean_axis(..).unwrap()",
    ];
    methods.extend(UnaryFn::ALL.iter().map(|f| f.name()));
    methods.extend(["powi", "powf", "mapv", "clone", "to_owned", "view"]);
    methods.join(", ")
}

/// The free functions the subset supports, for error messages.
pub fn supported_functions() -> String {
    let mut functions: Vec<&str> = UnaryFn::ALL
        .iter()
        .filter(|f| f.is_function())
        .map(|f| f.name())
        .collect();
    functions.extend(PairwiseFn::ALL.iter().map(|f| f.name()));
    functions.extend([
        "mean",
        "softmax",
        "log_softmax",
        "mse",
        "cross_entropy",
        "conv2d",
        "batch_norm",
        "max_pool2d",
    ]);
    functions.join(", ")
}

/// The float methods a `mapv` closure (or a float value) supports, for error messages.
pub fn closure_methods() -> String {
    let mut methods: Vec<&str> = UnaryFn::ALL.iter().map(|f| f.name()).collect();
    methods.extend(["powi", "powf", "max", "min", "clamp"]);
    methods.join(", ")
}

/// Lowers `item`'s body. Returns `None` if an error made the IR unusable (errors are in `cx`).
///
/// Also returns the integer literals taken as floats (see `literals.rs`), even on error, so
/// that the user's function can be emitted with them rewritten either way.
pub fn lower(cx: &Ctxt, item: &ItemFn, sig: &Signature) -> (Option<Function>, Rewrites) {
    let mut lowerer = Lowerer {
        cx,
        float_ty: &sig.float_ty,
        literals: RefCell::new(Rewrites::default()),
        stmts: Vec::new(),
        env: HashMap::new(),
        constants: HashMap::new(),
        value_params: sig
            .params
            .iter()
            .filter(|p| p.kind.is_some())
            .map(|p| p.ident.to_string())
            .collect(),
        annotated_rank: None,
        queryable: HashSet::new(),
        references: HashSet::new(),
        loops_lowered: std::cell::Cell::new(0),
        loop_indices: Vec::new(),
        annotated_call: None,
        annotated_branch: None,
    };
    let function = lower_body(&mut lowerer, item, sig);
    (function, lowerer.literals.into_inner())
}

fn lower_body(lowerer: &mut Lowerer, item: &ItemFn, sig: &Signature) -> Option<Function> {
    let cx = lowerer.cx;
    let mut params = Vec::new();
    for (index, info) in sig.params.iter().enumerate() {
        let role = match info.kind {
            Some(kind) => {
                let id = lowerer.push(Op::Param { index }, kind, Some(info.ident.to_string()));
                lowerer.env.insert(info.ident.to_string(), id);
                info.role(id, sig.wrt.contains(&index))
            }
            None => info.role(ValueId(usize::MAX), false),
        };
        if info.kind.is_some() {
            lowerer.queryable.insert(ValueId(lowerer.stmts.len() - 1));
            if info.by_ref {
                lowerer.references.insert(ValueId(lowerer.stmts.len() - 1));
            }
        }
        params.push(Param {
            ident: info.ident.clone(),
            ty: info.ty.clone(),
            role,
            origin: Origin::Own,
        });
    }

    let body = &item.block.stmts;
    if body.is_empty() {
        cx.error_spanned_by(
            &item.block,
            "the function body is empty: it must end with the float value to differentiate",
        );
        return None;
    }
    let mut output = None;
    for (i, stmt) in body.iter().enumerate() {
        let is_last = i + 1 == body.len();
        match stmt {
            SynStmt::Local(local) => lowerer.lower_let(local),
            // An empty statement `;` does nothing (rustc warns about it in the user's function).
            SynStmt::Expr(Expr::Verbatim(tokens), Some(_)) if tokens.is_empty() => {}
            SynStmt::Expr(Expr::Assign(assign), _) => lowerer.lower_assign(assign),
            SynStmt::Expr(Expr::Binary(binary), _) if is_assign_op(&binary.op) => lowerer.lower_compound_assign(binary),
            SynStmt::Expr(Expr::ForLoop(for_loop), _) => lowerer.lower_for(for_loop),
            SynStmt::Expr(Expr::If(e), semi) if !is_last || semi.is_some() => {
                lowerer.lower_if(e, false);
            }
            SynStmt::Expr(Expr::Match(m), semi) if !is_last || semi.is_some() => {
                lowerer.lower_match(m, false);
            }
            SynStmt::Expr(expr, semi) => {
                let returned = match expr {
                    Expr::Return(ret) => ret.expr.as_deref(),
                    e if semi.is_none() => Some(e),
                    _ => None,
                };
                match returned {
                    Some(value) if is_last => output = lowerer.lower_expr(value),
                    _ if matches!(expr, Expr::Return(_)) => {
                        let message = if is_last { "`return` needs the float value to return" } else { "early `return` is not supported: only the last statement may return (the function must be straight-line code)" };
                        cx.error_spanned_by(expr, message);
                    }
                    _ => {
                        // Lowering reports unsupported constructs (loops, assignments, ...) precisely;
                        // anything else here is a statement without effect.
                        let errors_before = cx.error_count();
                        lowerer.lower_expr(expr);
                        if cx.error_count() == errors_before {
                            cx.error_spanned_by(
                                expr,
                                "expression statements have no effect in a differentiated function: bind the value with `let`, or make it the final expression",
                            );
                        }
                    }
                }
            }
            SynStmt::Item(item) => cx.error_spanned_by(item, "items (fn, struct, use, ...) inside a differentiated function are not supported: define them outside it"),
            SynStmt::Macro(mac) => cx.error_spanned_by(
                mac,
                "macros are not supported inside a differentiated function (their expansion cannot be seen by `#[differentiate]`); write the computation with the supported operations",
            ),
        }
    }
    if cx.has_errors() {
        return None;
    }
    let Some(output) = output else {
        cx.error_spanned_by(
            &item.block,
            "the function body must end with the float value to differentiate (a final expression or `return`)",
        );
        return None;
    };
    match (sig.output, lowerer.stmts[output.0].kind) {
        (want, have) if want == have => {}
        (Kind::Scalar, _) => {
            cx.error_spanned_by(
                &item.block,
                "the returned value is an array, not a float: reduce it (e.g. `.sum()` or `mean(&x)`), or declare the array the function returns (`-> Array2<f64>`, a layer)",
            );
            return None;
        }
        (want, have) => {
            cx.error_spanned_by(
                &item.sig.output,
                format!(
                    "the function returns {}, but its body computes {}",
                    loops::kind_text(want),
                    loops::kind_text(have)
                ),
            );
            return None;
        }
    }
    let function = Function {
        params,
        stmts: std::mem::take(&mut lowerer.stmts),
        output,
        wrt: sig.wrt.clone(),
    };
    Some(function)
}

struct Lowerer<'a> {
    cx: &'a Ctxt,
    float_ty: &'a syn::Type,
    /// Integer literals taken as floats (`2 * s`), to rewrite in the user's function too.
    literals: RefCell<Rewrites>,
    stmts: Vec<Stmt>,
    /// The value each name currently refers to (shadowing replaces it).
    env: HashMap<String, ValueId>,
    /// Names `let`-bound to constant expressions (`let n = x.len() as f64;`), with the
    /// expression's tokens. Generated code has no such local: a use of the name is
    /// replaced by the expression, so it stays a constant wherever it is read.
    constants: HashMap<String, TokenStream>,
    /// The float and array parameters: their shape queries (`x.len()`) are constants.
    value_params: Vec<String>,
    /// The rank of the array type a `let` being lowered is annotated with
    /// (`let z: Array2<f64> = Array::zeros(shape);`), for constructors that do not say it.
    annotated_rank: Option<Option<usize>>,
    /// The values whose shape queries are constants: the function's float and array
    /// parameters, and a loop body's parameters standing for them.
    queryable: HashSet<ValueId>,
    /// The values that are references in the user's code (`x: &Array2<F>` parameters, and
    /// a loop body's parameters standing for them): passed as written, `f(x)` passes a reference.
    references: HashSet<ValueId>,
    /// How many loops have been lowered so far (names each one's hidden index uniquely).
    loops_lowered: std::cell::Cell<usize>,
    /// The index variables of the loops being lowered, outermost first.
    loop_indices: Vec<String>,
    /// The call a `let` being lowered binds directly, by node address, with the kind its
    /// type annotation gives: the result kind of a call of another differentiated function.
    annotated_call: Option<(usize, Kind)>,
    /// The kind a `let`'s type annotation (or an assigned variable) gives to the `if` or
    /// `match` being lowered as its value: the kind of calls its arms end with.
    annotated_branch: Option<Kind>,
}

impl Lowerer<'_> {
    fn push(&mut self, op: Op, kind: Kind, name: Option<String>) -> ValueId {
        let id = ValueId(self.stmts.len());
        self.stmts.push(Stmt { id, op, kind, name });
        id
    }

    fn kind(&self, id: ValueId) -> Kind {
        self.stmts[id.0].kind
    }

    fn lower_let(&mut self, local: &syn::Local) {
        let pat = match &local.pat {
            Pat::Type(t) => &*t.pat,
            p => p,
        };
        let ident = match pat {
            // `let mut h = ..;` is fine: a later `h = ..;` or `h += ..;` binds a new value.
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => Some(p.ident.clone()),
            Pat::Wild(_) => None,
            Pat::Tuple(tuple) => return self.lower_tuple_let(tuple, local),
            other => {
                self.cx.error_spanned_by(
                    other,
                    "only `let name = ...;` bindings are supported (no struct or slice patterns); a tuple pattern takes a constant (`let (n, m) = x.dim();`)",
                );
                return;
            }
        };
        let Some(init) = &local.init else {
            self.cx.error_spanned_by(
                local,
                "a `let` without a value is not supported: write `let name = expression;`",
            );
            return;
        };
        if let Some((_, diverge)) = &init.diverge {
            self.cx
                .error_spanned_by(diverge, "`let ... else` is not supported in a differentiated function");
            return;
        }
        let annotated = match &local.pat {
            Pat::Type(typed) => crate::signature::classify(&typed.ty, self.float_ty),
            _ => None,
        };
        self.annotated_rank = match annotated {
            Some(Kind::Array(rank)) => Some(rank),
            _ => None,
        };
        // `let h: Array2<F> = layer(..);` says what the call returns.
        self.annotated_call = match (annotated, strip_refs(&init.expr)) {
            (Some(kind), Expr::Call(call)) => Some((call as *const ExprCall as usize, kind)),
            _ => None,
        };
        // `let t: Array2<F> = if c { layer(..) } else { .. };`: the arms' calls return it too.
        self.annotated_branch = match (annotated, strip_refs(&init.expr)) {
            (Some(kind), Expr::If(_) | Expr::Match(_)) => Some(kind),
            _ => None,
        };
        let mut value = self.lower_expr(&init.expr);
        self.annotated_rank = None;
        self.annotated_branch = None;
        // `let k: f64 = 0.5;`: the constant keeps its type where it is substituted
        // (`k.recip()` on a bare `0.5` would be an ambiguous float).
        if let (Pat::Type(typed), Some(id)) = (&local.pat, value) {
            if let Op::Const(tokens) = &self.stmts[id.0].op {
                let ty = &typed.ty;
                let typed_tokens = quote::quote!({ let __typed: #ty = #tokens; __typed });
                value = Some(self.push(Op::Const(typed_tokens), Kind::Scalar, None));
            }
        }
        // `let _ = ..;` binds nothing: the value is only checked.
        if let Some(ident) = ident {
            self.bind(ident.to_string(), value);
        }
    }

    /// `let (n, m) = x.dim();`: each name is bound to its field of the constant tuple.
    fn lower_tuple_let(&mut self, tuple: &syn::PatTuple, local: &syn::Local) {
        let Some(init) = local.init.as_ref().filter(|init| init.diverge.is_none()) else {
            self.cx
                .error_spanned_by(local, "a tuple `let` needs a value: `let (n, m) = x.dim();`");
            return;
        };
        let mut names = Vec::new();
        for element in &tuple.elems {
            match element {
                Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => names.push(Some(p.ident.to_string())),
                Pat::Wild(_) => names.push(None),
                other => {
                    self.cx
                        .error_spanned_by(other, "a tuple `let` binds plain names or `_`: `let (n, _) = x.dim();`");
                    return;
                }
            }
        }
        let not_constant = |cx: &Ctxt| {
            cx.error_spanned_by(
                &init.expr,
                "a tuple `let` takes a constant (`let (n, m) = x.dim();`); bind differentiable values one by one (`let a = x.exp(); let b = y.exp();`)",
            )
        };
        if self.mentions_value(&init.expr) {
            return not_constant(self.cx);
        }
        let value = self.lower_expr(&init.expr);
        let tokens = match value.map(|id| &self.stmts[id.0].op) {
            Some(Op::Const(tokens)) => tokens.clone(),
            Some(_) => return not_constant(self.cx),
            None => return,
        };
        for (k, name) in names.into_iter().enumerate() {
            if let Some(name) = name {
                let field = syn::Index::from(k);
                let id = self.push(Op::Const(quote::quote!((#tokens).#field)), Kind::Scalar, None);
                self.bind(name, Some(id));
            }
        }
    }

    /// Binds `name` to `value` (a constant's tokens or a value), replacing what it named.
    fn bind(&mut self, name: String, value: Option<ValueId>) {
        match value {
            Some(id) => {
                if let Op::Const(tokens) = &self.stmts[id.0].op {
                    self.constants.insert(name.clone(), tokens.clone());
                    self.env.remove(&name);
                    return;
                }
                if self.stmts[id.0].name.is_none() && !matches!(self.stmts[id.0].op, Op::Param { .. }) {
                    self.stmts[id.0].name = Some(name.clone());
                }
                self.constants.remove(&name);
                self.env.insert(name, id);
            }
            None => {
                // Keep the name bound to nothing so later uses do not cascade into "unknown name" errors.
                self.env.remove(&name);
                self.constants.remove(&name);
            }
        }
    }

    /// Whether `expr` reads any differentiable value (a float parameter or a `let`-bound value).
    /// A shape query of a parameter (`x.len()`, `x.shape()[1]`) reads no value: shapes are constants.
    fn mentions_value(&self, expr: &Expr) -> bool {
        self.mentions_value_except(expr, None)
    }

    /// [`Self::mentions_value`], where `shadowed` (a closure's argument) is not a value.
    fn mentions_value_except(&self, expr: &Expr, shadowed: Option<&Ident>) -> bool {
        self.value_mention(expr, shadowed).is_some()
    }

    /// The first place `expr` reads a value: a path naming one, or a macro whose tokens do.
    fn value_mention(&self, expr: &Expr, shadowed: Option<&Ident>) -> Option<TokenStream> {
        struct Finder<'l, 's> {
            lowerer: &'l Lowerer<'l>,
            shadowed: Option<&'s Ident>,
            first: Option<TokenStream>,
        }
        impl Finder<'_, '_> {
            fn is_value(&self, ident: &Ident) -> bool {
                self.shadowed != Some(ident) && self.lowerer.env.contains_key(&ident.to_string())
            }
        }
        impl<'ast> Visit<'ast> for Finder<'_, '_> {
            fn visit_expr_path(&mut self, path: &'ast syn::ExprPath) {
                if self.first.is_none()
                    && path.qself.is_none()
                    && path.path.get_ident().is_some_and(|i| self.is_value(i))
                {
                    self.first = Some(path.to_token_stream());
                }
            }
            fn visit_expr_method_call(&mut self, call: &'ast ExprMethodCall) {
                if !self.lowerer.is_param_shape_query(call) {
                    syn::visit::visit_expr_method_call(self, call);
                }
            }
            fn visit_macro(&mut self, mac: &'ast syn::Macro) {
                // A macro's input cannot be parsed reliably; look for any known name in it.
                for tt in mac.tokens.clone() {
                    if let proc_macro2::TokenTree::Ident(i) = tt {
                        if self.first.is_none() && self.is_value(&i) {
                            self.first = Some(i.to_token_stream());
                        }
                    }
                }
            }
        }
        let mut finder = Finder {
            lowerer: self,
            shadowed,
            first: None,
        };
        finder.visit_expr(expr);
        finder.first
    }

    /// Whether `call` is a shape query (`len`, `nrows`, ...) of a float or array parameter
    /// that has not been shadowed: the parameter is in scope under its own name in every
    /// generated function (a `&Var` in the tape twin, which has the same queries).
    fn is_param_shape_query(&self, call: &ExprMethodCall) -> bool {
        if !SHAPE_QUERIES.contains(&call.method.to_string().as_str()) || !call.args.is_empty() {
            return false;
        }
        // `xs[k].len()` of a slice parameter `xs` at a constant index asks an element.
        let (receiver, element) = match strip_refs(&call.receiver) {
            Expr::Index(index) if !self.mentions_value(&index.index) => (&*index.expr, true),
            receiver => (receiver, false),
        };
        let Expr::Path(path) = strip_refs(receiver) else {
            return false;
        };
        let Some(ident) = path.path.get_ident() else {
            return false;
        };
        let name = ident.to_string();
        if call.method == "dim" && (element || self.param_rank(&name).is_none()) {
            return false;
        }
        let Some(id) = self.env.get(&name).filter(|id| self.queryable.contains(id)) else {
            return false;
        };
        self.value_params.contains(&name) && (!element || matches!(self.kind(*id), Kind::Slice(_)))
    }

    /// The rank of the array parameter `name`, if it has a known rank of at least 1.
    fn param_rank(&self, name: &str) -> Option<usize> {
        let id = self.env.get(name).filter(|id| self.queryable.contains(id))?;
        match self.stmts[id.0].kind {
            Kind::Array(Some(rank)) if rank >= 1 => Some(rank),
            _ => None,
        }
    }

    /// The tokens of a constant expression, with the names of `let`-bound constants
    /// replaced by their expressions (generated code has no such locals), and `x.dim()` of
    /// a parameter spelled with `shape()` (`(x.shape()[0], x.shape()[1])`), which the tape
    /// twin's `Var` of dynamic rank answers too.
    fn constant_tokens(&self, expr: &Expr) -> TokenStream {
        struct Substitute<'l, 'c>(&'l Lowerer<'c>);
        impl VisitMut for Substitute<'_, '_> {
            fn visit_expr_mut(&mut self, expr: &mut Expr) {
                if let Expr::Path(path) = expr {
                    if let Some(tokens) = path.path.get_ident().and_then(|i| self.0.constants.get(&i.to_string())) {
                        *expr = Expr::Verbatim(quote::quote!((#tokens)));
                        return;
                    }
                }
                if let Expr::MethodCall(call) = expr {
                    let receiver = match strip_refs(&call.receiver) {
                        Expr::Path(path) if call.method == "dim" && call.args.is_empty() => {
                            path.path.get_ident().cloned()
                        }
                        _ => None,
                    };
                    if let Some((receiver, rank)) =
                        receiver.and_then(|r| Some((r.clone(), self.0.param_rank(&r.to_string())?)))
                    {
                        let axes = (0..rank).map(|k| quote::quote!(#receiver.shape()[#k]));
                        *expr = Expr::Verbatim(if rank == 1 {
                            quote::quote!((#(#axes)*))
                        } else {
                            quote::quote!((#(#axes),*))
                        });
                        return;
                    }
                }
                syn::visit_mut::visit_expr_mut(self, expr);
            }
        }
        let mut expr = expr.clone();
        Substitute(self).visit_expr_mut(&mut expr);
        expr.to_token_stream()
    }

    /// Lowers an argument that must be a constant (an axis, a stride, labels, an exponent).
    fn constant_arg(&self, expr: &Expr, what: &str) -> Option<TokenStream> {
        if !is_plain(expr) {
            self.cx.error_spanned_by(
                expr,
                format!(
                    "{what} must be a plain constant expression (no `if`, `match`, loops, blocks, closures or macros)"
                ),
            );
            None
        } else if self.mentions_value(expr) {
            self.cx.error_spanned_by(
                expr,
                format!("{what} must be a constant: a literal or an expression of non-differentiable parameters, not a differentiable value"),
            );
            None
        } else {
            Some(self.constant_tokens(expr))
        }
    }

    fn lower_expr(&mut self, expr: &Expr) -> Option<ValueId> {
        if !self.mentions_value(expr) && is_plain(expr) {
            let value = strip_refs(expr);
            if let Some(rank) = match value {
                Expr::Call(call) => self.array_constructor(call),
                _ => None,
            } {
                return Some(self.push(Op::ConstArray(self.constant_tokens(value)), Kind::Array(rank?), None));
            }
            // A constant expression that builds an array somewhere inside (`Array1::ones(n) * 2.0`)
            // is an array, not a float: it is lowered op by op below.
            if !contains_array_constructor(expr) {
                return Some(self.push(Op::Const(self.constant_tokens(expr)), Kind::Scalar, None));
            }
        }
        match expr {
            Expr::Paren(e) => self.lower_expr(&e.expr),
            Expr::Group(e) => self.lower_expr(&e.expr),
            Expr::Reference(r) => {
                if let Some(m) = &r.mutability {
                    self.cx.error_spanned_by(m, "`&mut` is not supported: a differentiated function does not mutate");
                    return None;
                }
                self.lower_expr(&r.expr)
            }
            Expr::Path(p) => {
                let name = p.path.segments[0].ident.to_string();
                let id = self.env.get(&name).copied();
                match id.map(|id| self.kind(id)) {
                    None => self.cx.error_spanned_by(p, format!("`{name}` is not a value of this function")),
                    Some(Kind::Slice(_)) => {
                        self.cx.error_spanned_by(
                            p,
                            format!("`{name}` is a slice of arrays: use its elements (`{name}[i]`) or its length (`{name}.len()`)"),
                        );
                        return None;
                    }
                    Some(_) => {}
                }
                id
            }
            Expr::Binary(b) => self.lower_binary(b),
            Expr::Unary(u) => match u.op {
                syn::UnOp::Neg(_) => {
                    let a = self.lower_expr(&u.expr)?;
                    let kind = self.kind(a);
                    Some(self.push(Op::Neg(a), kind, None))
                }
                syn::UnOp::Deref(_) => self.lower_expr(&u.expr),
                _ => {
                    self.cx.error_spanned_by(u, "only unary `-` is supported on differentiable values");
                    None
                }
            },
            Expr::MethodCall(m) => self.lower_method(m),
            Expr::Call(c) => self.lower_call(c),
            Expr::Cast(c) => {
                if let Expr::MethodCall(call) = strip_refs(&c.expr) {
                    if let Some(error) = self.shape_query_of_intermediate(call) {
                        return error;
                    }
                }
                self.cx.error_spanned_by(c, "casts of differentiable values are not supported (they would cut the gradient); casts of constants are fine (`n as f64`, `x.len() as f64` of a parameter `x`)");
                None
            }
            Expr::If(e) => self.lower_if(e, true),
            Expr::Match(m) => self.lower_match(m, true),
            Expr::ForLoop(e) => self.unsupported(
                e.for_token,
                "a `for` loop is a statement, not a value: write it on its own and assign the variables it carries (`for i in 0..n { h = ..; }`)",
            ),
            Expr::While(e) => self.unsupported(e.while_token, "`while` loops are not supported: a differentiated loop has a number of iterations known before it starts; write a bounded `for i in 0..n` loop, or record the function on the dynamic tape (`f_on_tape`, `Tape`, `Var`: any Rust control flow, see the README)"),
            Expr::Loop(e) => self.unsupported(e.loop_token, "`loop` is not supported: a differentiated loop has a number of iterations known before it starts; write a bounded `for i in 0..n` loop, or record the function on the dynamic tape (`f_on_tape`, `Tape`, `Var`: any Rust control flow, see the README)"),
            Expr::Macro(m) => self.unsupported(
                &m.mac.path,
                "macros are not supported on differentiable values (their expansion cannot be seen by `#[differentiate]`); use the supported operations",
            ),
            Expr::Closure(c) => self.unsupported(c, "closures are only supported as the argument of `mapv`"),
            Expr::Assign(a) => self.unsupported(a, "assignment is not supported: use `let` shadowing (`let h = h * 2.0;`)"),
            Expr::Index(i) => self.lower_index(i),
            Expr::Field(f) => self.unsupported(f, "field access is not supported on differentiable values"),
            Expr::Block(b) => self.unsupported(b, "blocks are not supported: write the statements in the function body"),
            Expr::Unsafe(b) => self.unsupported(b, "`unsafe` blocks are not supported in a differentiated function"),
            Expr::Return(r) => self.unsupported(r, "early `return` is not supported: only the last statement may return"),
            other => self.unsupported(other, "this expression is not supported in a differentiated function; see the supported subset in the `autodiff` README"),
        }
    }

    fn unsupported(&self, tokens: impl ToTokens, message: &str) -> Option<ValueId> {
        self.cx.error_spanned_by(tokens, message);
        None
    }

    fn lower_binary(&mut self, b: &syn::ExprBinary) -> Option<ValueId> {
        let op = match b.op {
            syn::BinOp::Add(_) => BinOp::Add,
            syn::BinOp::Sub(_) => BinOp::Sub,
            syn::BinOp::Mul(_) => BinOp::Mul,
            syn::BinOp::Div(_) => BinOp::Div,
            syn::BinOp::AddAssign(_)
            | syn::BinOp::SubAssign(_)
            | syn::BinOp::MulAssign(_)
            | syn::BinOp::DivAssign(_) => {
                return self.unsupported(b.op, "compound assignment mutates a value, which is not supported: use `let` shadowing (`let h = h + x;`)");
            }
            _ => {
                return self.unsupported(
                    b.op,
                    "this operator is not supported on differentiable values; supported: `+ - * /` and unary `-`",
                );
            }
        };
        let lhs = self.lower_operand(&b.left, &b.right);
        let rhs = self.lower_operand(&b.right, &b.left);
        Some(self.combine(op, lhs?, rhs?))
    }

    /// `lhs op rhs`. Two constants make a constant: ops in the IR always read a value.
    fn combine(&mut self, op: BinOp, lhs: ValueId, rhs: ValueId) -> ValueId {
        if let (Op::Const(x), Op::Const(y)) = (&self.stmts[lhs.0].op, &self.stmts[rhs.0].op) {
            let symbol = op.symbol();
            let tokens = quote::quote!((#x) #symbol (#y));
            return self.push(Op::Const(tokens), Kind::Scalar, None);
        }
        let kind = broadcast_kind(self.kind(lhs), self.kind(rhs));
        self.push(Op::Binary(op, lhs, rhs), kind, None)
    }

    /// `h = expr;`: `h` (a `let mut` binding) names the new value from here on.
    fn lower_assign(&mut self, assign: &syn::ExprAssign) {
        let Some(name) = self.assigned_name(&assign.left) else {
            return;
        };
        // `h = layer(..);` returns what `h` holds (and so does a branch's call).
        self.annotated_call = match (self.env.get(&name), strip_refs(&assign.right)) {
            (Some(id), Expr::Call(call)) => Some((call as *const ExprCall as usize, self.kind(*id))),
            _ => None,
        };
        self.annotated_branch = match (self.env.get(&name), strip_refs(&assign.right)) {
            (Some(id), Expr::If(_) | Expr::Match(_)) => Some(self.kind(*id)),
            _ => None,
        };
        let value = self.lower_expr(&assign.right);
        self.annotated_branch = None;
        self.bind(name, value);
    }

    /// `h += expr;` (and `-=`, `*=`, `/=`): `h` names `h + expr` from here on.
    fn lower_compound_assign(&mut self, b: &syn::ExprBinary) {
        let op = match b.op {
            syn::BinOp::AddAssign(_) => BinOp::Add,
            syn::BinOp::SubAssign(_) => BinOp::Sub,
            syn::BinOp::MulAssign(_) => BinOp::Mul,
            syn::BinOp::DivAssign(_) => BinOp::Div,
            _ => {
                self.cx.error_spanned_by(
                    b.op,
                    "this compound assignment is not supported on differentiable values; supported: `+= -= *= /=`",
                );
                return;
            }
        };
        let Some(name) = self.assigned_name(&b.left) else {
            return;
        };
        let lhs = self.lower_operand(&b.left, &b.right);
        let rhs = self.lower_operand(&b.right, &b.left);
        let value = match (lhs, rhs) {
            (Some(lhs), Some(rhs)) => Some(self.combine(op, lhs, rhs)),
            _ => None,
        };
        self.bind(name, value);
    }

    /// The local an assignment writes: a plain name bound in this function.
    fn assigned_name(&self, left: &Expr) -> Option<String> {
        let name = match left {
            Expr::Path(path) => path.path.get_ident().map(|i| i.to_string()),
            _ => None,
        };
        match name {
            Some(name) if self.env.contains_key(&name) || self.constants.contains_key(&name) => Some(name),
            _ => {
                self.cx.error_spanned_by(
                    left,
                    "only a local `let mut` binding of this function can be assigned (`h = ..;`, `h += ..;`); elements and fields cannot",
                );
                None
            }
        }
    }

    /// An operand of `+ - * /`; a number literal beside a float value is a float of the
    /// function's type (`2 * s`, `0.5 * s` for a generic `F`).
    fn lower_operand(&mut self, operand: &Expr, other: &Expr) -> Option<ValueId> {
        if self.mentions_value(other) {
            let float = literals::as_float(operand, self.float_ty, &mut self.literals.borrow_mut());
            if let Some(tokens) = float {
                return Some(self.push(Op::Const(tokens), Kind::Scalar, None));
            }
        }
        self.lower_expr(operand)
    }

    fn require_array(&self, id: ValueId, tokens: impl ToTokens, what: &str) -> Option<Option<usize>> {
        match self.kind(id) {
            Kind::Array(rank) => Some(rank),
            other => {
                self.cx.error_spanned_by(
                    tokens,
                    format!("{what} needs an array, but this value is {}", loops::kind_text(other)),
                );
                None
            }
        }
    }

    fn require_rank(&self, id: ValueId, rank: usize, tokens: impl ToTokens, what: &str) -> Option<()> {
        match self.kind(id) {
            Kind::Array(Some(r)) if r == rank => Some(()),
            other => {
                let have = loops::kind_text(other);
                self.cx.error_spanned_by(
                    tokens,
                    format!("{what} needs an array with {rank} axes (`Array{rank}`), but this value is {have}"),
                );
                None
            }
        }
    }

    fn args_count(&self, tokens: impl ToTokens, name: &str, got: usize, want: usize) -> Option<()> {
        if got == want {
            Some(())
        } else {
            self.cx
                .error_spanned_by(tokens, format!("`{name}` takes {want} argument(s), found {got}"));
            None
        }
    }

    /// An error for `h.len()` (or `nrows`, ...) where `h` is computed in the function: shape
    /// queries are constants only on parameters. `Some(None)` once reported.
    fn shape_query_of_intermediate(&self, call: &ExprMethodCall) -> Option<Option<ValueId>> {
        if !SHAPE_QUERIES.contains(&call.method.to_string().as_str()) || self.is_param_shape_query(call) {
            return None;
        }
        self.cx.error_spanned_by(
            &call.receiver,
            format!(
                "`{}` is a constant only when asked of a parameter; this value is computed in the function: ask the parameter whose shape it has (e.g. `x.nrows()`, `x.shape()[1]`)",
                call.method
            ),
        );
        Some(None)
    }

    fn lower_method(&mut self, m: &ExprMethodCall) -> Option<ValueId> {
        if let Some(error) = self.shape_query_of_intermediate(m) {
            return error;
        }
        let name = m.method.to_string();
        let method = &m.method;
        if m.turbofish.is_some() {
            return self.unsupported(&m.turbofish, "turbofish arguments are not supported here");
        }
        // `mean()` and `mean_axis(..)` return an Option in ndarray: accept them under `.unwrap()`/`.expect(..)`.
        if name == "unwrap" || name == "expect" {
            if let Expr::MethodCall(inner) = &*m.receiver {
                let inner_name = inner.method.to_string();
                if inner_name == "mean" || inner_name == "mean_axis" {
                    return self.lower_mean_method(inner);
                }
            }
            return self.unsupported(
                method,
                "`unwrap`/`expect` are only supported after `mean()` and `mean_axis(..)`",
            );
        }
        if name == "mean" || name == "mean_axis" {
            let fixed = if name == "mean" {
                "x.mean().unwrap()` or `mean(&x)"
            } else {
                "x.mean_axis(Axis(k)).unwrap()"
            };
            return self.unsupported(
                method,
                format!("ndarray's `{name}` returns an `Option`: write `{fixed}`").as_str(),
            );
        }
        let receiver = self.lower_expr(&m.receiver);
        let args: Vec<&Expr> = m.args.iter().collect();
        let receiver = receiver?;
        let kind = self.kind(receiver);
        match name.as_str() {
            "clone" | "to_owned" | "view" | "into_owned" => {
                self.args_count(method, &name, args.len(), 0)?;
                Some(receiver)
            }
            "dot" => {
                self.args_count(method, &name, args.len(), 1)?;
                let rhs = self.lower_expr(args[0])?;
                let kind = match (self.kind(receiver), self.kind(rhs)) {
                    (Kind::Array(Some(2)), Kind::Array(Some(2))) => Kind::Array(Some(2)),
                    (Kind::Array(Some(2)), Kind::Array(Some(1))) | (Kind::Array(Some(1)), Kind::Array(Some(2))) => {
                        Kind::Array(Some(1))
                    }
                    (Kind::Array(Some(1)), Kind::Array(Some(1))) => Kind::Scalar,
                    _ => {
                        return self.unsupported(
                            method,
                            "`dot` needs arrays of 1 or 2 axes (`Array1`/`Array2`) on both sides",
                        );
                    }
                };
                Some(self.push(Op::Dot(receiver, rhs), kind, None))
            }
            "t" | "reversed_axes" => {
                self.args_count(method, &name, args.len(), 0)?;
                self.require_array(receiver, method, &format!("`{name}`"))?;
                Some(self.push(Op::Transpose(receiver), kind, None))
            }
            "sum" => {
                self.args_count(method, &name, args.len(), 0)?;
                self.require_array(receiver, method, "`sum`")?;
                Some(self.push(Op::Sum(receiver), Kind::Scalar, None))
            }
            "sum_axis" => {
                self.args_count(method, &name, args.len(), 1)?;
                let rank = self.require_array(receiver, method, "`sum_axis`")?;
                let axis = self.constant_arg(args[0], "the axis")?;
                let kind = self.smaller(rank, method)?;
                Some(self.push(Op::SumAxis(receiver, axis), kind, None))
            }
            "powi" | "powf" => {
                self.args_count(method, &name, args.len(), 1)?;
                if name == "powf" && self.mentions_value(args[0]) && is_plain(args[0]) {
                    return self.unsupported(
                        args[0],
                        "the exponent of `powf` must be a constant; for a differentiable exponent `p`, write `(x.ln() * p).exp()` (for `x > 0`)",
                    );
                }
                let exponent = self.constant_arg(args[0], "the exponent")?;
                let op = if name == "powi" {
                    Op::Powi(receiver, exponent)
                } else {
                    Op::Powf(receiver, exponent)
                };
                Some(self.push(op, kind, None))
            }
            "mapv" => {
                self.args_count(method, &name, args.len(), 1)?;
                self.require_array(receiver, method, "`mapv`")?;
                let Expr::Closure(closure) = args[0] else {
                    return self.unsupported(
                        args[0],
                        "`mapv` needs a closure written in place, e.g. `x.mapv(|v| v * v + 1.0)`",
                    );
                };
                let (arg, body, captures) = self.lower_closure(closure)?;
                Some(self.push(
                    Op::Map {
                        input: receiver,
                        arg,
                        body,
                        captures,
                    },
                    kind,
                    None,
                ))
            }
            _ => {
                if let Some(f) = UnaryFn::from_name(&name) {
                    self.args_count(method, &name, args.len(), 0)?;
                    return Some(self.push(Op::Unary(f, receiver), kind, None));
                }
                self.unsupported(
                    method,
                    format!(
                        "the method `{name}` is not supported in a differentiated function; supported methods: {}",
                        supported_methods()
                    )
                    .as_str(),
                )
            }
        }
    }

    fn lower_mean_method(&mut self, m: &ExprMethodCall) -> Option<ValueId> {
        let receiver = self.lower_expr(&m.receiver)?;
        let rank = self.require_array(receiver, &m.method, &format!("`{}`", m.method))?;
        if m.method == "mean" {
            self.args_count(&m.method, "mean", m.args.len(), 0)?;
            Some(self.push(Op::Mean(receiver), Kind::Scalar, None))
        } else {
            self.args_count(&m.method, "mean_axis", m.args.len(), 1)?;
            let axis = self.constant_arg(&m.args[0], "the axis")?;
            let kind = self.smaller(rank, &m.method)?;
            Some(self.push(Op::MeanAxis(receiver, axis), kind, None))
        }
    }

    /// The kind after removing one axis from an array of `rank` axes.
    fn smaller(&self, rank: Option<usize>, tokens: impl ToTokens) -> Option<Kind> {
        match rank {
            Some(0) => {
                self.cx.error_spanned_by(tokens, "this array has no axis to reduce");
                None
            }
            Some(r) => Some(Kind::Array(Some(r - 1))),
            None => Some(Kind::Array(None)),
        }
    }

    /// If `call` builds an array (`Array2::zeros((a, b))`, `Array1::ones(n)`,
    /// `Array::from_elem((a, b), v)`, `ArrayD::zeros(..)`), its rank: `Some(Some(r))`, or
    /// `Some(None)` for `ArrayD`; `Some` of an error (reported) when the rank cannot be told.
    fn array_constructor(&self, call: &ExprCall) -> Option<Option<Option<usize>>> {
        let type_name = array_type_built_by(call)?;
        let rank = match type_name.as_str() {
            "Array0" => Some(0),
            "Array1" => Some(1),
            "Array2" => Some(2),
            "Array3" => Some(3),
            "Array4" => Some(4),
            "Array5" => Some(5),
            "Array6" => Some(6),
            "ArrayD" => None,
            "Array" => match call.args.first().map(strip_refs) {
                Some(Expr::Tuple(shape)) => Some(shape.elems.len()),
                Some(Expr::Lit(_)) => Some(1),
                Some(Expr::MethodCall(m)) if m.method == "len" => Some(1),
                _ if self.annotated_rank.is_some() => self.annotated_rank.flatten(),
                _ => {
                    self.cx.error_spanned_by(
                        &call.func,
                        "the rank of this array is not known here: write it with its rank (`Array2::zeros((a, b))`), its shape as a tuple (`Array::zeros((a, b))`), or annotate the binding (`let z: Array2<f64> = ..`)",
                    );
                    return Some(None);
                }
            },
            _ => return None,
        };
        Some(Some(rank))
    }

    fn lower_call(&mut self, c: &ExprCall) -> Option<ValueId> {
        if self.array_constructor(c).is_some() {
            return self.unsupported(
                c,
                "an array built in the function is a constant: its shape and fill value cannot depend on differentiable values (scale a constant array instead: `&Array1::ones(n) * s`)",
            );
        }
        let Expr::Path(path) = &*c.func else {
            return self.unsupported(&c.func, "only calls of the supported functions are allowed");
        };
        let last = path.path.segments.last()?;
        let name = last.ident.to_string();
        let func = &c.func;
        let args: Vec<&Expr> = c.args.iter().collect();
        if let Some(f) = PairwiseFn::from_name(&name) {
            self.args_count(func, &name, args.len(), 2)?;
            let a = self.lower_expr(args[0]);
            let b = self.lower_expr(args[1]);
            let (a, b) = (a?, b?);
            self.require_array(a, func, &format!("`{name}`"))?;
            self.require_array(b, func, &format!("`{name}`"))?;
            let kind = broadcast_kind(self.kind(a), self.kind(b));
            return Some(self.push(Op::Pairwise(f, a, b), kind, None));
        }
        if let Some(f) = UnaryFn::from_name(&name).filter(|f| f.is_function()) {
            self.args_count(func, &name, args.len(), 1)?;
            let x = self.lower_expr(args[0])?;
            self.require_array(x, func, &format!("`{name}`"))?;
            let kind = self.kind(x);
            return Some(self.push(Op::Unary(f, x), kind, None));
        }
        match name.as_str() {
            "mean" => {
                self.args_count(func, &name, args.len(), 1)?;
                let x = self.lower_expr(args[0])?;
                self.require_array(x, func, "`mean`")?;
                Some(self.push(Op::Mean(x), Kind::Scalar, None))
            }
            "softmax" | "log_softmax" => {
                self.args_count(func, &name, args.len(), 2)?;
                let x = self.lower_expr(args[0])?;
                self.require_array(x, func, &format!("`{name}`"))?;
                let axis = self.constant_arg(args[1], "the axis")?;
                let kind = self.kind(x);
                let op = if name == "softmax" {
                    Op::Softmax(x, axis)
                } else {
                    Op::LogSoftmax(x, axis)
                };
                Some(self.push(op, kind, None))
            }
            "mse" => {
                self.args_count(func, &name, args.len(), 2)?;
                let pred = self.lower_expr(args[0]);
                let target = self.lower_expr(args[1]);
                let (pred, target) = (pred?, target?);
                self.require_array(pred, func, "`mse`")?;
                self.require_array(target, func, "`mse`")?;
                Some(self.push(Op::Mse(pred, target), Kind::Scalar, None))
            }
            "cross_entropy" => {
                self.args_count(func, &name, args.len(), 2)?;
                let logits = self.lower_expr(args[0])?;
                self.require_rank(logits, 2, func, "`cross_entropy`")?;
                let labels = self.constant_arg(args[1], "the class labels")?;
                Some(self.push(Op::CrossEntropy(logits, labels), Kind::Scalar, None))
            }
            "conv2d" => {
                self.args_count(func, &name, args.len(), 5)?;
                let input = self.lower_expr(args[0]);
                let weight = self.lower_expr(args[1]);
                let bias = self.lower_optional(args[2]);
                let stride = self.constant_arg(args[3], "the stride");
                let padding = self.constant_arg(args[4], "the padding");
                let (input, weight, bias, stride, padding) = (input?, weight?, bias?, stride?, padding?);
                self.require_rank(input, 4, func, "`conv2d`'s input")?;
                self.require_rank(weight, 4, func, "`conv2d`'s weight")?;
                if let Some(b) = bias {
                    self.require_rank(b, 1, func, "`conv2d`'s bias")?;
                }
                Some(self.push(
                    Op::Conv2d {
                        input,
                        weight,
                        bias,
                        stride,
                        padding,
                    },
                    Kind::Array(Some(4)),
                    None,
                ))
            }
            "batch_norm" => {
                self.args_count(func, &name, args.len(), 4)?;
                let input = self.lower_expr(args[0]);
                let gamma = self.lower_expr(args[1]);
                let beta = self.lower_expr(args[2]);
                let eps = self.constant_arg(args[3], "`eps`");
                let (input, gamma, beta, eps) = (input?, gamma?, beta?, eps?);
                self.require_rank(input, 4, func, "`batch_norm`'s input")?;
                self.require_rank(gamma, 1, func, "`batch_norm`'s gamma")?;
                self.require_rank(beta, 1, func, "`batch_norm`'s beta")?;
                Some(self.push(
                    Op::BatchNorm {
                        input,
                        gamma,
                        beta,
                        eps,
                    },
                    Kind::Array(Some(4)),
                    None,
                ))
            }
            "max_pool2d" => {
                self.args_count(func, &name, args.len(), 3)?;
                let input = self.lower_expr(args[0])?;
                self.require_rank(input, 4, func, "`max_pool2d`")?;
                let kernel = self.constant_arg(args[1], "the window size")?;
                let stride = self.constant_arg(args[2], "the stride")?;
                Some(self.push(Op::MaxPool2d { input, kernel, stride }, Kind::Array(Some(4)), None))
            }
            _ => self.lower_user_call(c, path),
        }
    }

    /// `Some(&b)` or `None`, as in `conv2d`'s bias. `Some(None)` is "no bias"; `None` is an error.
    fn lower_optional(&mut self, expr: &Expr) -> Option<Option<ValueId>> {
        match expr {
            Expr::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "None") => Some(None),
            Expr::Call(c) if matches!(&*c.func, Expr::Path(p) if p.path.is_ident("Some")) && c.args.len() == 1 => {
                self.lower_expr(&c.args[0]).map(Some)
            }
            other => {
                self.cx
                    .error_spanned_by(other, "the bias must be written `Some(&b)` or `None`");
                None
            }
        }
    }

    /// A `mapv` closure: one argument, a scalar body of the subset.
    /// A `mapv` closure: one argument, a scalar body of the subset, and the float values it
    /// captures.
    fn lower_closure(&self, closure: &syn::ExprClosure) -> Option<(Ident, ScalarExpr, Vec<ValueId>)> {
        if closure.inputs.len() != 1 {
            // `||` has no inputs to point at: the bars are the user's tokens.
            let (or1, inputs, or2) = (&closure.or1_token, &closure.inputs, &closure.or2_token);
            self.cx.error_spanned_by(
                quote::quote!(#or1 #inputs #or2),
                "a `mapv` closure takes exactly one argument: `|v| ...`",
            );
            return None;
        }
        let pat = match &closure.inputs[0] {
            Pat::Type(t) => &*t.pat,
            p => p,
        };
        let Pat::Ident(arg) = pat else {
            self.cx
                .error_spanned_by(pat, "the closure argument must be a plain name: `|v| ...`");
            return None;
        };
        let arg = arg.ident.clone();
        let lowerer = ClosureLowerer {
            outer: self,
            arg: &arg,
            captures: RefCell::new(Vec::new()),
        };
        let body = lowerer.lower(&closure.body)?;
        let captures = lowerer.captures.into_inner();
        // The tape records a capturing closure op by op, on whole arrays, where an `if` has
        // no counterpart.
        if !captures.is_empty() && contains_if(&body) {
            self.cx.error_spanned_by(
                &closure.body,
                "an `if` in a `mapv` closure is supported when the closure captures no differentiable float; bind the float outside the closure's branches, or write the piecewise part with `v.max(c)`/`v.min(c)`/`maximum`/`minimum`",
            );
            return None;
        }
        Some((arg, body, captures))
    }
}

/// Whether a closure body branches.
fn contains_if(e: &ScalarExpr) -> bool {
    match e {
        ScalarExpr::If { .. } => true,
        ScalarExpr::Arg | ScalarExpr::Capture(_) | ScalarExpr::Const(_) => false,
        ScalarExpr::Binary(_, a, b) => contains_if(a) || contains_if(b),
        ScalarExpr::Neg(a)
        | ScalarExpr::Unary(_, a)
        | ScalarExpr::Powi(a, _)
        | ScalarExpr::Powf(a, _)
        | ScalarExpr::Clamp { arg: a, .. } => contains_if(a),
    }
}

/// Lowers a `mapv` closure body to a symbolic scalar expression.
struct ClosureLowerer<'a, 'b> {
    outer: &'a Lowerer<'b>,
    arg: &'a Ident,
    /// The float values the body names, in order of first use (`ScalarExpr::Capture(k)`).
    captures: RefCell<Vec<ValueId>>,
}

impl ClosureLowerer<'_, '_> {
    /// A block of a closure's `if`: one expression.
    fn lower_block(&self, block: &syn::Block, whole: &syn::ExprIf) -> Option<ScalarExpr> {
        match block.stmts.as_slice() {
            [SynStmt::Expr(e, None)] => self.lower(e),
            _ => {
                self.outer.cx.error_spanned_by(
                    whole,
                    "each branch of an `if` in a `mapv` closure is one expression (`if v > 0.0 { v } else { 0.1 * v }`)",
                );
                None
            }
        }
    }

    /// A closure's condition: comparisons of float expressions, with `!`, `&&`, `||`.
    fn lower_condition(&self, cond: &Expr) -> Option<ScalarCond> {
        let cx = self.outer.cx;
        match cond {
            Expr::Paren(p) => self.lower_condition(&p.expr),
            Expr::Group(g) => self.lower_condition(&g.expr),
            Expr::Unary(u) if matches!(u.op, syn::UnOp::Not(_)) => {
                Some(ScalarCond::Not(Box::new(self.lower_condition(&u.expr)?)))
            }
            Expr::Binary(b) if matches!(b.op, syn::BinOp::And(_) | syn::BinOp::Or(_)) => {
                let (l, r) = (self.lower_condition(&b.left), self.lower_condition(&b.right));
                let (l, r) = (Box::new(l?), Box::new(r?));
                Some(if matches!(b.op, syn::BinOp::And(_)) {
                    ScalarCond::And(l, r)
                } else {
                    ScalarCond::Or(l, r)
                })
            }
            Expr::Binary(b) => {
                let Some(cmp) = CmpOp::from_syn(&b.op) else {
                    cx.error_spanned_by(b, "a condition in a `mapv` closure compares floats (`<`, `<=`, `>`, `>=`, `==`, `!=`), combined with `!`, `&&`, `||`");
                    return None;
                };
                let l = self.lower_operand(&b.left, &b.right);
                let r = self.lower_operand(&b.right, &b.left);
                Some(ScalarCond::Compare(cmp, l?, r?))
            }
            other => {
                cx.error_spanned_by(
                    other,
                    "a condition in a `mapv` closure compares floats (`v > 0.0`), combined with `!`, `&&`, `||`",
                );
                None
            }
        }
    }

    /// A float value of the function named in the closure: captured, and differentiated
    /// like an operand. An array cannot be captured: a closure sees one element at a time.
    fn capture(&self, path: &syn::ExprPath) -> Option<ScalarExpr> {
        let id = path
            .path
            .get_ident()
            .and_then(|i| self.outer.env.get(&i.to_string()).copied());
        match id {
            Some(id) if self.outer.kind(id) == Kind::Scalar => {
                let mut captures = self.captures.borrow_mut();
                let k = captures.iter().position(|&c| c == id).unwrap_or_else(|| {
                    captures.push(id);
                    captures.len() - 1
                });
                Some(ScalarExpr::Capture(k))
            }
            Some(_) => {
                self.outer.cx.error_spanned_by(
                    path,
                    "a `mapv` closure sees one element at a time, so it cannot use a whole array: compute what it needs outside the closure and capture the float (`let s = y.sum(); x.mapv(|v| v * s)`), or combine arrays outside it (`&x.mapv(|v| v.exp()) * &y`)",
                );
                None
            }
            None => {
                self.outer.cx.error_spanned_by(
                    path,
                    "this name is not the closure's argument, a float of this function or a constant",
                );
                None
            }
        }
    }

    fn mentions_arg(&self, expr: &Expr) -> bool {
        struct Finder<'i> {
            arg: &'i Ident,
            found: bool,
        }
        impl<'ast> Visit<'ast> for Finder<'_> {
            fn visit_expr_path(&mut self, path: &'ast syn::ExprPath) {
                if path.path.is_ident(self.arg) {
                    self.found = true;
                }
            }
        }
        let mut f = Finder {
            arg: self.arg,
            found: false,
        };
        f.visit_expr(expr);
        f.found
    }

    /// Whether `expr` reads the argument or a captured value: what makes it not a constant.
    fn mentions_variable(&self, expr: &Expr) -> bool {
        self.mentions_arg(expr) || self.outer.value_mention(expr, Some(self.arg)).is_some()
    }

    /// An operand of `+ - * /`; a number literal beside the argument is a float of the
    /// function's type (`v * 2`, `v * 0.5` for a generic `F`).
    fn lower_operand(&self, operand: &Expr, other: &Expr) -> Option<ScalarExpr> {
        if self.mentions_variable(other) {
            let outer = self.outer;
            if let Some(tokens) = literals::as_float(operand, outer.float_ty, &mut outer.literals.borrow_mut()) {
                return Some(ScalarExpr::Const(tokens));
            }
        }
        self.lower(operand)
    }

    fn lower(&self, expr: &Expr) -> Option<ScalarExpr> {
        if !self.mentions_variable(expr) && is_plain(expr) {
            return Some(ScalarExpr::Const(self.outer.constant_tokens(expr)));
        }
        let cx = self.outer.cx;
        match expr {
            Expr::Path(path) if path.path.is_ident(self.arg) => Some(ScalarExpr::Arg),
            Expr::Path(path) => self.capture(path),
            Expr::Paren(e) => self.lower(&e.expr),
            Expr::Group(e) => self.lower(&e.expr),
            // `|v| { expr }`, as rustfmt writes a long closure.
            Expr::Block(b) if matches!(b.block.stmts.as_slice(), [SynStmt::Expr(_, None)]) && b.label.is_none() => {
                match b.block.stmts.as_slice() {
                    [SynStmt::Expr(e, None)] => self.lower(e),
                    _ => None,
                }
            }
            Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => {
                Some(ScalarExpr::Neg(Box::new(self.lower(&u.expr)?)))
            }
            Expr::Binary(b) => {
                let op = match b.op {
                    syn::BinOp::Add(_) => BinOp::Add,
                    syn::BinOp::Sub(_) => BinOp::Sub,
                    syn::BinOp::Mul(_) => BinOp::Mul,
                    syn::BinOp::Div(_) => BinOp::Div,
                    _ => {
                        cx.error_spanned_by(
                            b.op,
                            "this operator is not supported in a `mapv` closure; supported: `+ - * /`, unary `-`",
                        );
                        return None;
                    }
                };
                let l = self.lower_operand(&b.left, &b.right);
                let r = self.lower_operand(&b.right, &b.left);
                Some(ScalarExpr::Binary(op, Box::new(l?), Box::new(r?)))
            }
            Expr::MethodCall(m) => {
                let name = m.method.to_string();
                let receiver = self.lower(&m.receiver)?;
                let constant = |i: usize| -> Option<TokenStream> {
                    let a = m.args.get(i)?;
                    if self.mentions_variable(a) {
                        cx.error_spanned_by(
                            a,
                            format!("the argument of `{name}` must be a constant (not the closure's argument or a differentiable value)"),
                        );
                        None
                    } else {
                        Some(self.outer.constant_tokens(a))
                    }
                };
                match (name.as_str(), m.args.len()) {
                    ("powi", 1) => Some(ScalarExpr::Powi(Box::new(receiver), constant(0)?)),
                    ("powf", 1) => Some(ScalarExpr::Powf(Box::new(receiver), constant(0)?)),
                    ("max", 1) => Some(ScalarExpr::Clamp {
                        is_max: true,
                        arg: Box::new(receiver),
                        bound: constant(0)?,
                    }),
                    ("min", 1) => Some(ScalarExpr::Clamp {
                        is_max: false,
                        arg: Box::new(receiver),
                        bound: constant(0)?,
                    }),
                    // `v.clamp(lo, hi)` is `v.max(lo).min(hi)`.
                    ("clamp", 2) => {
                        let (lo, hi) = (constant(0), constant(1));
                        let lower = ScalarExpr::Clamp {
                            is_max: true,
                            arg: Box::new(receiver),
                            bound: lo?,
                        };
                        Some(ScalarExpr::Clamp {
                            is_max: false,
                            arg: Box::new(lower),
                            bound: hi?,
                        })
                    }
                    (n, 0) if UnaryFn::from_name(n).is_some() => {
                        Some(ScalarExpr::Unary(UnaryFn::from_name(n)?, Box::new(receiver)))
                    }
                    _ => {
                        cx.error_spanned_by(
                            &m.method,
                            format!(
                                "`{name}` is not supported in a `mapv` closure; supported float methods: {}",
                                closure_methods()
                            ),
                        );
                        None
                    }
                }
            }
            Expr::If(e) => {
                let cond = self.lower_condition(&e.cond)?;
                let then = self.lower_block(&e.then_branch, e)?;
                let otherwise = match e.else_branch.as_ref().map(|(_, e)| &**e) {
                    Some(Expr::Block(block)) => self.lower_block(&block.block, e)?,
                    Some(other @ Expr::If(_)) => self.lower(other)?,
                    _ => {
                        cx.error_spanned_by(
                            e,
                            "an `if` in a `mapv` closure gives a value in both branches: add `else { .. }`",
                        );
                        return None;
                    }
                };
                Some(ScalarExpr::If {
                    cond: Box::new(cond),
                    then: Box::new(then),
                    otherwise: Box::new(otherwise),
                })
            }
            other => {
                cx.error_spanned_by(other, format!("this expression is not supported in a `mapv` closure; supported: the argument, constants, `+ - * /`, unary `-`, and the float methods {}", closure_methods()));
                None
            }
        }
    }
}

/// Whether `expr` is free of control flow and opaque code (loops, `if`, `match`, blocks,
/// closures, macros, assignments). Only such expressions may be taken as constants:
/// anything else is lowered, and rejected there with its own message.
fn is_plain(expr: &Expr) -> bool {
    struct Finder {
        plain: bool,
    }
    impl<'ast> Visit<'ast> for Finder {
        fn visit_expr(&mut self, expr: &'ast Expr) {
            match expr {
                Expr::If(_)
                | Expr::Match(_)
                | Expr::Loop(_)
                | Expr::While(_)
                | Expr::ForLoop(_)
                | Expr::Block(_)
                | Expr::Unsafe(_)
                | Expr::Closure(_)
                | Expr::Macro(_)
                | Expr::Assign(_)
                | Expr::Async(_)
                | Expr::Await(_)
                | Expr::Return(_)
                | Expr::Break(_)
                | Expr::Continue(_)
                | Expr::Let(_)
                | Expr::TryBlock(_)
                | Expr::Yield(_) => self.plain = false,
                Expr::Binary(b) if is_assign_op(&b.op) => self.plain = false,
                _ => syn::visit::visit_expr(self, expr),
            }
        }
    }
    let mut finder = Finder { plain: true };
    finder.visit_expr(expr);
    finder.plain
}

fn is_assign_op(op: &syn::BinOp) -> bool {
    matches!(
        op,
        syn::BinOp::AddAssign(_)
            | syn::BinOp::SubAssign(_)
            | syn::BinOp::MulAssign(_)
            | syn::BinOp::DivAssign(_)
            | syn::BinOp::RemAssign(_)
            | syn::BinOp::BitXorAssign(_)
            | syn::BinOp::BitAndAssign(_)
            | syn::BinOp::BitOrAssign(_)
            | syn::BinOp::ShlAssign(_)
            | syn::BinOp::ShrAssign(_)
    )
}

/// The array type `call` builds, if it is `Array…::zeros(..)`, `ones(..)` or `from_elem(..)`.
fn array_type_built_by(call: &ExprCall) -> Option<String> {
    let Expr::Path(path) = &*call.func else { return None };
    let mut segments = path.path.segments.iter().rev();
    let constructor = segments.next()?.ident.to_string();
    let type_name = segments.next()?.ident.to_string();
    (matches!(constructor.as_str(), "zeros" | "ones" | "from_elem") && type_name.starts_with("Array"))
        .then_some(type_name)
}

/// Whether `expr` builds an array anywhere inside (`ArrayN::zeros`, `ones`, `from_elem`).
fn contains_array_constructor(expr: &Expr) -> bool {
    struct Finder(bool);
    impl<'ast> Visit<'ast> for Finder {
        fn visit_expr_call(&mut self, call: &'ast ExprCall) {
            self.0 |= array_type_built_by(call).is_some();
            syn::visit::visit_expr_call(self, call);
        }
    }
    let mut finder = Finder(false);
    finder.visit_expr(expr);
    finder.0
}

/// `expr` without enclosing `&`, `*`, parentheses and invisible groups.
fn strip_refs(expr: &Expr) -> &Expr {
    match expr {
        Expr::Reference(r) => strip_refs(&r.expr),
        Expr::Paren(p) => strip_refs(&p.expr),
        Expr::Group(g) => strip_refs(&g.expr),
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Deref(_)) => strip_refs(&u.expr),
        other => other,
    }
}

/// The kind of an elementwise result under ndarray's broadcasting.
fn broadcast_kind(a: Kind, b: Kind) -> Kind {
    match (a, b) {
        (Kind::Scalar, Kind::Scalar) => Kind::Scalar,
        (Kind::Scalar, k) | (k, Kind::Scalar) => k,
        (Kind::Array(Some(x)), Kind::Array(Some(y))) => Kind::Array(Some(x.max(y))),
        _ => Kind::Array(None),
    }
}
