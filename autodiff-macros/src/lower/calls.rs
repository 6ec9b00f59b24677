//! Lowering calls of other `#[differentiate]` functions (composition).
//!
//! Before: `let h: Array2<f64> = layer(&x, &w);`
//! After:  `v3 = Call(layer, [Ref(v0), Ref(v1)])` of kind `Array(2)`.
//!
//! The macro cannot see the callee's signature, so the result's kind comes from the
//! `let`'s type annotation, and each argument is passed the way the user passed it.

use syn::{Expr, ExprCall};

use super::{is_plain, Lowerer};
use crate::ir::{Call, CallArg, Kind, Op, Passing, ValueId};

impl Lowerer<'_> {
    /// `f(args)` where `f` is not a function of the subset: a differentiated function.
    pub(super) fn lower_user_call(&mut self, call: &ExprCall, path: &syn::ExprPath) -> Option<ValueId> {
        let name = path
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default();
        if path.qself.is_some() {
            return self.unsupported(
                path,
                "a call of a differentiated function names it by path (`layer`, `nn::layer`)",
            );
        }
        let annotated = self
            .annotated_call
            .take()
            .filter(|(address, _)| *address == call as *const ExprCall as usize)
            .map(|(_, kind)| kind);
        let Some(kind) = annotated else {
            self.cx.error_spanned_by(
                call,
                format!(
                    "`{name}` is not a function of the subset, so it must be a `#[differentiate]` function, whose result type this macro cannot see: bind the call with its type, `let h: Array2<{float}> = {name}(..);` (or `let s: {float} = {name}(..);`). The subset's functions are {} (and the methods {})",
                    super::supported_functions(),
                    super::supported_methods(),
                    float = quote::ToTokens::to_token_stream(self.float_ty),
                ),
            );
            return None;
        };
        let mut args = Vec::new();
        for arg in &call.args {
            args.push(self.lower_call_arg(arg)?);
        }
        let call = Call {
            path: path.path.clone(),
            args,
        };
        Some(self.push(Op::Call(Box::new(call)), kind, None))
    }

    /// One argument: a constant as written, or a value and how it is passed.
    fn lower_call_arg(&mut self, arg: &Expr) -> Option<CallArg> {
        if !self.mentions_value(arg) && is_plain(arg) {
            let tokens = self.constant_tokens(arg);
            return Some(if is_float_constant(&tokens) {
                CallArg::FloatConst(tokens)
            } else {
                CallArg::Const(tokens)
            });
        }
        let (inner, passing) = match strip_parens(arg) {
            Expr::Reference(r) if r.mutability.is_none() => (&*r.expr, Passing::Ref),
            Expr::MethodCall(m) if m.method == "view" && m.args.is_empty() => (&*m.receiver, Passing::View),
            other => (other, Passing::Owned),
        };
        let value = self.lower_expr(inner)?;
        let passing = match self.kind(value) {
            // Floats are passed by value whatever the syntax.
            Kind::Scalar => Passing::Ref,
            // `f(x)` of a parameter `x: &Array2<F>` passes the reference.
            Kind::Array(_)
                if passing == Passing::Owned && matches!(inner, Expr::Path(_)) && self.references.contains(&value) =>
            {
                Passing::Ref
            }
            Kind::Array(_) => passing,
            Kind::Slice(_) | Kind::Loop | Kind::Bool => {
                self.cx.error_spanned_by(
                    arg,
                    "a slice is passed to a differentiated function element by element (`xs[i]`)",
                );
                return None;
            }
        };
        Some(CallArg::Value(value, passing))
    }
}

fn strip_parens(expr: &Expr) -> &Expr {
    match expr {
        Expr::Paren(p) => strip_parens(&p.expr),
        Expr::Group(g) => strip_parens(&g.expr),
        e => e,
    }
}

/// Whether constant tokens are evidently a float: a float literal, `F::of(..)`, or a cast
/// to a float type (possibly negated or parenthesized). Other constants (sizes, labels)
/// are passed as written everywhere.
fn is_float_constant(tokens: &proc_macro2::TokenStream) -> bool {
    fn float(expr: &Expr) -> bool {
        match expr {
            Expr::Paren(p) => float(&p.expr),
            Expr::Group(g) => float(&g.expr),
            Expr::Unary(u) => matches!(u.op, syn::UnOp::Neg(_)) && float(&u.expr),
            Expr::Binary(b) => float(&b.left) || float(&b.right),
            Expr::Lit(l) => matches!(l.lit, syn::Lit::Float(_)),
            Expr::Cast(c) => {
                matches!(&*c.ty, syn::Type::Path(p) if p.path.get_ident().is_some_and(|i| i == "f64" || i == "f32" || i == "F"))
            }
            Expr::Call(c) => {
                matches!(&*c.func, Expr::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "of"))
            }
            // `n.recip()`, `(x.len() as f64).sqrt()`: a float method of a float.
            Expr::MethodCall(m) => float(&m.receiver),
            _ => false,
        }
    }
    syn::parse2::<Expr>(tokens.clone()).is_ok_and(|e| float(&e))
}
