//! Lowering `for` loops and slice indexing.
//!
//! Before: `let mut h = h0.to_owned(); for i in 0..n { h = (h.dot(w) + &xs[i]).tanh(); }`
//! After:  `v5 = Loop { range: 0..n, carried: [h ← v4], body: fn(h_in, w, xs) -> [h'] }`,
//!         `v6 = LoopOut(v5, 0)`, `h ↦ v6`.
//!
//! The body is lowered once, as a function of its own: the carried variables (locals
//! declared before the loop and assigned in it) are its first parameters, every outer
//! value is a parameter it may read (captured), and the loop variable is a constant.
//! Generated code is the same size for 1 iteration as for 10000.

use std::collections::HashSet;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::visit::Visit;
use syn::{Expr, Ident, Pat, Stmt as SynStmt};

use super::{is_assign_op, strip_refs, Lowerer};
use crate::ir::{Carried, Function, Init, Kind, Loop, Op, Origin, Param, ParamRole, ValueId};

/// What a loop (or a branch arm) is made of.
pub(super) struct LoopSpec<'s> {
    /// `a..b`, of constants.
    pub range: TokenStream,
    /// The loop variable.
    pub index: Option<Ident>,
    /// For a loop over a slice's elements: the element's name and the slice.
    pub element: Option<(Option<String>, Ident)>,
    pub stmts: &'s [SynStmt],
    /// For a branch arm with a value: the hidden variable its final expression sets, and
    /// that variable's value before the arm.
    pub result: Option<(String, Init)>,
    /// Where errors about the whole construct point.
    pub span: TokenStream,
    /// `loop` or `branch`, for messages.
    pub what: &'static str,
    /// A branch arm on a condition computed in forward (then `range` is for display).
    pub flag: Option<ValueId>,
    /// The kind of the branch's value, when annotated: that of a call the arm ends with.
    pub result_kind: Option<Kind>,
}

impl Lowerer<'_> {
    /// `for i in a..b { .. }` as a statement.
    pub(super) fn lower_for(&mut self, for_loop: &syn::ExprForLoop) {
        let cx = self.cx;
        self.loops_lowered.set(self.loops_lowered.get() + 1);
        if let Some(label) = &for_loop.label {
            cx.error_spanned_by(
                label,
                "loop labels are not supported: a differentiated loop runs every iteration (no `break` or `continue`)",
            );
            return;
        }
        let Some((range, index, element)) = self.loop_iteration(for_loop) else {
            return;
        };
        // An outer loop's index may be read in this body (through `xs[i]` or a constant), so
        // this loop's must not hide it.
        if let Some(index) = index.as_ref().filter(|i| self.loop_indices.contains(&i.to_string())) {
            cx.error_spanned_by(
                index,
                format!("`{index}` is already the index of an enclosing loop: give this loop's index another name"),
            );
            return;
        }
        let spec = LoopSpec {
            range,
            index,
            element,
            stmts: &for_loop.body.stmts,
            result: None,
            span: quote!(#for_loop),
            what: "loop",
            flag: None,
            result_kind: None,
        };
        if self.carried_names(&for_loop.body.stmts).is_empty() {
            cx.error_spanned_by(
                for_loop.for_token,
                "this loop assigns no variable declared before it, so it computes nothing: carry a value through it (`let mut h = ..; for i in 0..n { h = ..; }`)",
            );
            return;
        }
        self.lower_loop(spec);
    }

    /// Lowers a loop (or a branch arm, a loop of 0 or 1 iteration) whose body is `spec.stmts`.
    /// Returns `None` if an error was reported.
    pub(super) fn lower_loop(&mut self, spec: LoopSpec) -> Option<()> {
        let cx = self.cx;
        let LoopSpec {
            range,
            index,
            element,
            stmts,
            result,
            span,
            what,
            flag,
            result_kind,
        } = spec;
        let mut carried_names = self.carried_names(stmts);
        if let Some((name, _)) = &result {
            carried_names.push(name.clone());
        }

        // Lower the body as a function of its own, then restore the outer scope.
        let outer_stmts = std::mem::take(&mut self.stmts);
        let outer_env = self.env.clone();
        let outer_constants = self.constants.clone();
        let outer_queryable = std::mem::take(&mut self.queryable);
        let outer_references = std::mem::take(&mut self.references);
        let mut params = Vec::new();
        let mut carried = Vec::new();
        for name in &carried_names {
            let (init, kind) = match (&result, outer_env.get(name)) {
                // A branch's value: set by the arm, never read before (its kind is the arm's).
                (Some((result, init)), _) if result == name => match init {
                    Init::Value(id) => (Init::Value(*id), outer_stmts[id.0].kind),
                    other => (other.clone(), Kind::Scalar),
                },
                (_, Some(&id)) => (Init::Value(id), outer_stmts[id.0].kind),
                (_, None) => (Init::Const(outer_constants[name].clone()), Kind::Scalar),
            };
            let ident = syn::Ident::new(
                &format!("{}_carried", name.trim_start_matches("r#")),
                Span::mixed_site(),
            );
            let id = self.body_param(&mut params, ident, kind, Origin::Carried, name);
            self.env.insert(name.clone(), id);
            self.constants.remove(name);
            carried.push(Carried {
                name: name.clone(),
                init,
            });
        }
        let mut outer_of_param = Vec::new();
        let mut captured_names: Vec<(&String, &ValueId)> =
            outer_env.iter().filter(|(n, _)| !carried_names.contains(n)).collect();
        captured_names.sort_by_key(|(_, id)| **id);
        for (name, &outer) in captured_names {
            let outer_param = outer_queryable.contains(&outer);
            let kind = outer_stmts[outer.0].kind;
            let ident = syn::Ident::new(name.trim_start_matches("r#"), Span::mixed_site());
            let id = self.body_param(&mut params, ident, kind, Origin::Captured { outer_param }, name);
            if outer_param {
                self.queryable.insert(id);
            }
            if outer_references.contains(&outer) {
                self.references.insert(id);
            }
            outer_of_param.push((params.len() - 1, outer));
            self.env.insert(name.clone(), id);
        }
        if let Some(index) = &index {
            let name = index.to_string();
            self.env.remove(&name);
            self.constants.insert(name, quote!(#index));
        }
        // `for w in ws`: `w` is `ws[i]`.
        if let (Some((name, slice)), Some(index)) = (element, &index) {
            let slice = self.env[&slice.to_string()];
            let rank = match self.kind(slice) {
                Kind::Slice(rank) => rank,
                _ => None,
            };
            let id = self.push(Op::Index(slice, quote!(#index)), Kind::Array(rank), None);
            // Iterating a slice yields references.
            self.references.insert(id);
            if let Some(name) = name {
                self.bind(name, Some(id));
            }
        }

        let errors_before = cx.error_count();
        self.loop_indices.extend(index.iter().map(|i| i.to_string()));
        for (i, stmt) in stmts.iter().enumerate() {
            match (stmt, &result) {
                // A branch arm's value.
                (SynStmt::Expr(expr, None), Some((name, _))) if i + 1 == stmts.len() => {
                    if let (Some(kind), Expr::Call(call)) = (result_kind, super::strip_refs(expr)) {
                        self.annotated_call = Some((call as *const syn::ExprCall as usize, kind));
                    }
                    if let Some(value) = self.lower_expr(expr) {
                        let value = self.materialized(value);
                        self.env.insert(name.clone(), value);
                    }
                }
                _ => self.lower_loop_stmt(stmt, &carried_names),
            }
        }
        if index.is_some() {
            self.loop_indices.pop();
        }
        if let Some((name, init)) = &result {
            // The first arm's value decides the kind of the branch's value.
            let value = self.env.get(name).copied().filter(|v| v.0 >= carried_names.len());
            match (value, init) {
                (None, _) if cx.error_count() == errors_before => {
                    cx.error_spanned_by(
                        &span,
                        "this branch gives no value: end it with the value's expression (no `;`)",
                    );
                }
                (None, _) => {}
                (Some(value), Init::Unset) => {
                    let kind = self.stmts[value.0].kind;
                    let k = carried_names.len() - 1;
                    self.stmts[k].kind = kind;
                    if let ParamRole::Value { kind: param_kind, .. } = &mut params[k].role {
                        *param_kind = kind;
                    }
                }
                _ => {}
            }
        }
        // A variable assigned a constant in the body (`s = 2.0;`) holds it as a value.
        for name in &carried_names {
            if let (None, Some(tokens)) = (self.env.get(name), self.constants.get(name).cloned()) {
                let id = self.push(Op::ConstArray(tokens), Kind::Scalar, Some(name.clone()));
                self.env.insert(name.clone(), id);
            }
        }
        let mut outputs = Vec::new();
        for (k, name) in carried_names.iter().enumerate() {
            match self.env.get(name) {
                Some(&id) if self.stmts[id.0].kind == self.stmts[k].kind => outputs.push(id),
                Some(&id) => cx.error_spanned_by(
                    &span,
                    format!(
                        "`{name}` changes kind in this {what} (from {} to {}): a variable keeps its kind; initialise it with the kind it will have (`Array1::zeros(n)`, `0.0`)",
                        kind_text(self.stmts[k].kind),
                        kind_text(self.stmts[id.0].kind)
                    ),
                ),
                // Its assignment failed and was reported.
                None => {}
            }
        }
        let body_stmts = std::mem::replace(&mut self.stmts, outer_stmts);
        self.env = outer_env;
        self.constants = outer_constants;
        self.queryable = outer_queryable;
        self.references = outer_references;
        if cx.error_count() > errors_before || outputs.len() != carried_names.len() {
            return None;
        }

        // The outer values the body reads (no statement reads an unread parameter).
        let mut read: HashSet<ValueId> = outputs.iter().copied().collect();
        for stmt in &body_stmts {
            read.extend(stmt.op.operands());
        }
        let captured = outer_of_param
            .into_iter()
            .filter(|&(index, _)| read.contains(&ValueId(index)))
            .collect();
        let body = Function {
            params,
            stmts: body_stmts,
            output: outputs[0],
            wrt: Vec::new(),
        };
        let kinds: Vec<Kind> = (0..carried.len()).map(|k| body.stmts[k].kind).collect();
        let of = self.push(
            Op::Loop(Box::new(Loop {
                range,
                index,
                body,
                carried,
                outputs,
                captured,
                flag,
            })),
            Kind::Loop,
            None,
        );
        for (k, (name, kind)) in carried_names.into_iter().zip(kinds).enumerate() {
            let id = self.push(Op::LoopOut { of, k }, kind, Some(name.clone()));
            self.bind(name, Some(id));
        }
        Some(())
    }

    /// `value`, or for a constant a value computed from it in forward (a branch's value,
    /// a carried variable, must be a value).
    fn materialized(&mut self, value: ValueId) -> ValueId {
        match &self.stmts[value.0].op {
            Op::Const(tokens) => {
                let tokens = tokens.clone();
                self.push(Op::ConstArray(tokens), Kind::Scalar, None)
            }
            _ => value,
        }
    }

    /// Pushes a loop body's parameter (the body's statements start empty).
    fn body_param(
        &mut self,
        params: &mut Vec<Param>,
        ident: syn::Ident,
        kind: Kind,
        origin: Origin,
        name: &str,
    ) -> ValueId {
        let index = params.len();
        let id = self.push(Op::Param { index }, kind, Some(name.to_string()));
        params.push(Param {
            ident,
            ty: syn::parse_quote!(()),
            role: ParamRole::Value {
                id,
                kind,
                by_ref: false,
                view: false,
                differentiated: false,
            },
            origin,
        });
        id
    }

    /// What a loop runs over: its range, its index variable, and for a loop over a slice's
    /// elements (`for w in ws`, `for (i, w) in ws.iter().enumerate()`), the element's name
    /// (`None` for `_`) and the slice's.
    #[allow(clippy::type_complexity)]
    fn loop_iteration(
        &self,
        for_loop: &syn::ExprForLoop,
    ) -> Option<(TokenStream, Option<Ident>, Option<(Option<String>, Ident)>)> {
        let binding = |pat: &Pat| -> Result<Option<Ident>, ()> {
            match pat {
                Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() && p.mutability.is_none() => {
                    Ok(Some(p.ident.clone()))
                }
                Pat::Wild(_) => Ok(None),
                _ => Err(()),
            }
        };
        if let Some((slice, enumerated)) = self.slice_iterated(&for_loop.expr) {
            let (index_binding, element) = match (&*for_loop.pat, enumerated) {
                (Pat::Tuple(t), true) if t.elems.len() == 2 => (binding(&t.elems[0]), binding(&t.elems[1])),
                (pat, false) => (Ok(None), binding(pat)),
                _ => (Err(()), Err(())),
            };
            let (Ok(user_index), Ok(element)) = (index_binding, element) else {
                let form = if enumerated { "`(i, w)`" } else { "a name or `_`" };
                self.cx.error_spanned_by(
                    &for_loop.pat,
                    format!("the loop variable must be {form}: `for w in {slice}`, `for (i, w) in {slice}.iter().enumerate()`"),
                );
                return None;
            };
            // Unique per loop: a nested loop's index must not shadow its outer loop's.
            let index = user_index
                .unwrap_or_else(|| format_ident!("__index{}", self.loops_lowered.get(), span = Span::mixed_site()));
            let element = (element.map(|e| e.to_string()), slice.clone());
            return Some((quote!((0)..(#slice.len())), Some(index), Some(element)));
        }
        let index = match binding(&for_loop.pat) {
            Ok(index) => index,
            Err(()) => {
                self.cx.error_spanned_by(
                    &for_loop.pat,
                    "the loop variable must be a name or `_`: `for i in 0..n`",
                );
                return None;
            }
        };
        Some((self.loop_range(&for_loop.expr)?, index, None))
    }

    /// `ws`, `&ws`, `ws.iter()` or `ws.iter().enumerate()` of a slice parameter: the slice,
    /// and whether it is enumerated.
    fn slice_iterated(&self, expr: &Expr) -> Option<(Ident, bool)> {
        let (expr, enumerated) = match strip_refs(expr) {
            Expr::MethodCall(m) if m.method == "enumerate" && m.args.is_empty() => (&*m.receiver, true),
            e => (e, false),
        };
        let expr = match strip_refs(expr) {
            Expr::MethodCall(m) if m.method == "iter" && m.args.is_empty() => &*m.receiver,
            e if !enumerated => e,
            _ => return None,
        };
        let Expr::Path(path) = strip_refs(expr) else {
            return None;
        };
        let ident = path.path.get_ident()?;
        let id = self.env.get(&ident.to_string())?;
        matches!(self.kind(*id), Kind::Slice(_)).then(|| (ident.clone(), enumerated))
    }

    /// The constant range of a loop, `a..b`.
    fn loop_range(&self, expr: &Expr) -> Option<TokenStream> {
        let expr = match expr {
            Expr::Paren(p) => &*p.expr,
            e => e,
        };
        match expr {
            Expr::Range(range) if matches!(range.limits, syn::RangeLimits::HalfOpen(_)) => {
                let (Some(start), Some(end)) = (&range.start, &range.end) else {
                    self.cx
                        .error_spanned_by(range, "a differentiated loop needs both bounds: `for i in 0..n`");
                    return None;
                };
                let start = self.constant_arg(start, "a loop bound")?;
                let end = self.constant_arg(end, "a loop bound")?;
                Some(quote!((#start)..(#end)))
            }
            other => {
                self.cx.error_spanned_by(
                    other,
                    "a differentiated loop runs over a half-open range of constants, `for i in a..b` (`b` a literal, a `usize` parameter, `xs.len()` or `x.nrows()`); for other iteration, record the function on the dynamic tape",
                );
                None
            }
        }
    }

    /// The variables a loop body assigns that are declared before it, in order.
    pub(super) fn carried_names(&self, body: &[SynStmt]) -> Vec<String> {
        struct Assigned(Vec<String>);
        impl<'ast> Visit<'ast> for Assigned {
            fn visit_expr_assign(&mut self, assign: &'ast syn::ExprAssign) {
                self.target(&assign.left);
                syn::visit::visit_expr_assign(self, assign);
            }
            fn visit_expr_binary(&mut self, binary: &'ast syn::ExprBinary) {
                if is_assign_op(&binary.op) {
                    self.target(&binary.left);
                }
                syn::visit::visit_expr_binary(self, binary);
            }
            // A closure cannot assign an outer variable in the subset (it is reported there).
            fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
        }
        impl Assigned {
            fn target(&mut self, left: &Expr) {
                if let Expr::Path(path) = left {
                    if let Some(ident) = path.path.get_ident() {
                        let name = ident.to_string();
                        if !self.0.contains(&name) {
                            self.0.push(name);
                        }
                    }
                }
            }
        }
        let mut assigned = Assigned(Vec::new());
        for stmt in body {
            assigned.visit_stmt(stmt);
        }
        assigned
            .0
            .into_iter()
            .filter(|name| self.env.contains_key(name) || self.constants.contains_key(name))
            .collect()
    }

    /// One statement of a loop body: a `let`, an assignment or a nested loop.
    fn lower_loop_stmt(&mut self, stmt: &SynStmt, carried: &[String]) {
        match stmt {
            SynStmt::Local(local) => {
                let shadowed = match &local.pat {
                    Pat::Ident(p) => Some(&p.ident),
                    Pat::Type(t) => match &*t.pat {
                        Pat::Ident(p) => Some(&p.ident),
                        _ => None,
                    },
                    _ => None,
                };
                if let Some(ident) = shadowed.filter(|i| carried.contains(&i.to_string())) {
                    self.cx.error_spanned_by(
                        ident,
                        format!("`{ident}` is carried by this loop (assigned in it); declaring it again inside the loop is not supported: give the new value another name"),
                    );
                    return;
                }
                self.lower_let(local);
            }
            SynStmt::Expr(Expr::Verbatim(tokens), Some(_)) if tokens.is_empty() => {}
            SynStmt::Expr(Expr::Assign(assign), _) => self.lower_assign(assign),
            SynStmt::Expr(Expr::Binary(binary), _) if is_assign_op(&binary.op) => self.lower_compound_assign(binary),
            SynStmt::Expr(Expr::ForLoop(inner), _) => self.lower_for(inner),
            SynStmt::Expr(Expr::If(e), _) => {
                self.lower_if(e, false);
            }
            SynStmt::Expr(Expr::Match(m), _) => {
                self.lower_match(m, false);
            }
            SynStmt::Expr(expr, _) => {
                let errors_before = self.cx.error_count();
                if !matches!(expr, Expr::Return(_) | Expr::Break(_) | Expr::Continue(_)) {
                    self.lower_expr(expr);
                }
                if self.cx.error_count() == errors_before {
                    self.cx.error_spanned_by(
                        expr,
                        "a loop body binds values (`let`) and assigns variables declared before the loop (`h = ..;`, `acc += ..;`); `break`, `continue` and `return` are not supported",
                    );
                }
            }
            SynStmt::Item(item) => self.cx.error_spanned_by(item, "items (fn, struct, use, ...) inside a differentiated function are not supported: define them outside it"),
            SynStmt::Macro(mac) => self.cx.error_spanned_by(
                mac,
                "macros are not supported inside a differentiated function (their expansion cannot be seen by `#[differentiate]`); write the computation with the supported operations",
            ),
        }
    }

    /// `ws[i]`: an element of a slice parameter at a constant index.
    pub(super) fn lower_index(&mut self, index: &syn::ExprIndex) -> Option<ValueId> {
        let base = match &*index.expr {
            Expr::Path(path) => path
                .path
                .get_ident()
                .and_then(|i| self.env.get(&i.to_string()))
                .copied(),
            _ => None,
        };
        let Some((base, Kind::Slice(rank))) = base.map(|b| (b, self.kind(b))) else {
            self.cx.error_spanned_by(
                index,
                "only slice parameters can be indexed (`ws[i]` of `ws: &[Array2<f64>]`); arrays are used whole (`dot`, `sum_axis`, broadcasting)",
            );
            return None;
        };
        let at = self.constant_arg(&index.index, "an index")?;
        Some(self.push(Op::Index(base, at), Kind::Array(rank), None))
    }
}

/// How an error message names a kind.
pub(super) fn kind_text(kind: Kind) -> String {
    match kind {
        Kind::Scalar => "a float".to_string(),
        Kind::Array(Some(1)) => "an array with 1 axis".to_string(),
        Kind::Array(Some(r)) => format!("an array with {r} axes"),
        Kind::Array(None) => "an `ArrayD` of unknown rank".to_string(),
        Kind::Slice(_) => "a slice".to_string(),
        Kind::Loop => "a loop".to_string(),
        Kind::Bool => "a condition".to_string(),
    }
}
