//! Lowering `if`/`else` and `match` on constants (configuration values, comparisons of
//! sizes): each arm is a loop of zero or one iteration.
//!
//! Before: `let h = if cfg.bias { x.dot(w) + b } else { x.dot(w) };`
//! After:  `v5 = Loop { range: 0..(c as usize), carried: [branch ← unset], body: .. }`,
//!         `v6 = LoopOut(v5, 0)`,
//!         `v7 = Loop { range: 0..(!c as usize), carried: [branch ← v6], body: .. }`, `h ↦ LoopOut(v7, 0)`.
//!
//! Exactly one arm runs, so the hidden variable holds its value after both loops, and the
//! loop machinery (contexts, activity, backward, the tape's real control flow) does the rest.
//! The arms' conditions are constants, so forward and backward evaluate them alike.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::{Expr, Pat, Stmt as SynStmt};

use super::loops::LoopSpec;
use super::Lowerer;
use crate::ir::{Init, ValueId};

/// One arm: its condition (given that no earlier arm's held), its statements, and the
/// constant a `match` arm's pattern binds (`n if n > 3 => ..` binds `n` to the scrutinee).
struct Arm {
    condition: TokenStream,
    stmts: Vec<SynStmt>,
    binding: Option<(String, TokenStream)>,
}

impl Lowerer<'_> {
    /// `if c { .. } else { .. }`: a statement assigning variables (`value` false), or an
    /// expression whose value is returned.
    pub(super) fn lower_if(&mut self, e: &syn::ExprIf, value: bool) -> Option<ValueId> {
        if let Some(constant) = self.constant_branch(&Expr::If(e.clone()), value) {
            return constant;
        }
        let mut arms = Vec::new();
        let mut chain = e;
        let mut earlier: Vec<TokenStream> = Vec::new();
        loop {
            let condition = self.branch_condition(&chain.cond)?;
            arms.push(Arm {
                condition: all_of(&earlier, Some(&condition)),
                stmts: chain.then_branch.stmts.clone(),
                binding: None,
            });
            earlier.push(condition);
            match chain.else_branch.as_ref().map(|(_, e)| &**e) {
                Some(Expr::If(next)) => chain = next,
                Some(Expr::Block(block)) => {
                    arms.push(Arm {
                        condition: all_of(&earlier, None),
                        stmts: block.block.stmts.clone(),
                        binding: None,
                    });
                    break;
                }
                Some(other) => {
                    self.cx.error_spanned_by(other, "`else` takes a block or another `if`");
                    return None;
                }
                None if value => {
                    self.cx.error_spanned_by(
                        e,
                        "an `if` that gives a value needs an `else` giving a value of the same kind",
                    );
                    return None;
                }
                None => break,
            }
        }
        self.lower_arms(arms, value, e.to_token_stream())
    }

    /// `match c { A => .., B => .. }` on a constant, as a statement or an expression.
    pub(super) fn lower_match(&mut self, m: &syn::ExprMatch, value: bool) -> Option<ValueId> {
        if let Some(constant) = self.constant_branch(&Expr::Match(m.clone()), value) {
            return constant;
        }
        let scrutinee = self.branch_condition_value(&m.expr)?;
        let mut arms = Vec::new();
        let mut earlier: Vec<TokenStream> = Vec::new();
        for arm in &m.arms {
            // `n => ..` or `n if n > 3 => ..`: `n` is the scrutinee, a constant.
            let binding = match &arm.pat {
                Pat::Ident(p) if p.subpat.is_none() && p.by_ref.is_none() && binding_in(&arm.pat).is_some() => {
                    Some((p.ident.to_string(), scrutinee.clone()))
                }
                _ => None,
            };
            if let Some(nested) = binding_in(&arm.pat).filter(|_| binding.is_none()) {
                self.cx.error_spanned_by(
                    nested,
                    "a `match` in a differentiated function selects on constants: its patterns bind no names inside (match the variants, `Mode::Fast => ..`, or bind the whole value, `n if n > 3 => ..`)",
                );
                return None;
            }
            let guard = match &arm.guard {
                Some((_, guard)) => {
                    // The guard reads the pattern's binding as the pattern binds it, not an
                    // outer constant of the same name.
                    let hidden = binding
                        .as_ref()
                        .and_then(|(name, _)| Some((name.clone(), self.constants.remove(name)?)));
                    let guard = self.branch_condition(guard);
                    if let Some((name, previous)) = hidden {
                        self.constants.insert(name, previous);
                    }
                    let guard = guard?;
                    quote!(if #guard)
                }
                None => TokenStream::new(),
            };
            let pat = &arm.pat;
            let condition = quote!(match #scrutinee { #pat #guard => true, _ => false });
            let stmts = match &*arm.body {
                Expr::Block(block) => block.block.stmts.clone(),
                other => vec![SynStmt::Expr(other.clone(), None)],
            };
            arms.push(Arm {
                condition: all_of(&earlier, Some(&condition)),
                stmts,
                binding,
            });
            earlier.push(condition);
        }
        self.lower_arms(arms, value, m.to_token_stream())
    }

    /// A branch that reads no value is a constant (`let c = if fast { 2.0 } else { 3.0 };`).
    fn constant_branch(&mut self, e: &Expr, value: bool) -> Option<Option<ValueId>> {
        if !value || self.mentions_value(e) {
            return None;
        }
        let tokens = self.constant_tokens(e);
        Some(Some(self.push(
            crate::ir::Op::Const(tokens),
            crate::ir::Kind::Scalar,
            None,
        )))
    }

    /// Each arm as a loop of `(condition) as usize` iterations, in order.
    fn lower_arms(&mut self, arms: Vec<Arm>, value: bool, span: TokenStream) -> Option<ValueId> {
        self.loops_lowered.set(self.loops_lowered.get() + 1);
        let result = format!("__branch{}", self.loops_lowered.get());
        if !value && arms.iter().all(|arm| self.carried_names(&arm.stmts).is_empty()) {
            self.cx.error_spanned_by(
                &span,
                "this branch assigns no variable declared before it, so it computes nothing: assign one in it (`if c { h = ..; }`), or use its value (`let h = if c { .. } else { .. };`)",
            );
            return None;
        }
        for arm in &arms {
            let init = match self.env.get(&result) {
                Some(&id) => Init::Value(id),
                None => Init::Unset,
            };
            let condition = &arm.condition;
            let spec = LoopSpec {
                range: quote!((0)..((#condition) as usize)),
                index: None,
                element: None,
                stmts: &arm.stmts,
                result: value.then(|| (result.clone(), init)),
                span: span.clone(),
                what: "branch",
            };
            let shadowed = arm
                .binding
                .as_ref()
                .map(|(name, tokens)| (name.clone(), self.constants.insert(name.clone(), tokens.clone())));
            let lowered = self.lower_loop(spec);
            if let Some((name, previous)) = shadowed {
                match previous {
                    Some(previous) => self.constants.insert(name, previous),
                    None => self.constants.remove(&name),
                };
            }
            lowered?;
        }
        value.then(|| self.env.remove(&result)).flatten()
    }

    /// A branch condition: a constant `bool` expression (a `bool` parameter, a field of a
    /// configuration, a comparison of sizes).
    fn branch_condition(&self, cond: &Expr) -> Option<TokenStream> {
        if self.mentions_value(cond) {
            self.cx.error_spanned_by(
                cond,
                "a differentiated `if` branches on constants (a `bool` or configuration parameter, a comparison of sizes): a condition on a differentiable value is not supported here; for a piecewise function use `maximum`/`minimum`/`relu`, or `if v > c { .. } else { .. }` inside `mapv`",
            );
            return None;
        }
        self.constant_arg(cond, "a condition")
    }

    /// The value a `match` selects on, a constant.
    fn branch_condition_value(&self, scrutinee: &Expr) -> Option<TokenStream> {
        self.branch_condition(scrutinee)
    }
}

/// `!(e1) && !(e2) && (c)`: this arm's condition given the earlier ones'.
fn all_of(earlier: &[TokenStream], condition: Option<&TokenStream>) -> TokenStream {
    let mut parts: Vec<TokenStream> = earlier.iter().map(|e| quote!(!(#e))).collect();
    if let Some(c) = condition {
        parts.push(quote!((#c)));
    }
    if parts.is_empty() {
        quote!(true)
    } else {
        quote!(#(#parts)&&*)
    }
}

/// A name a pattern binds (`Some(k)` binds `k`), if any. A lone identifier that starts
/// with an uppercase letter is taken as a unit variant or constant, not a binding.
fn binding_in(pat: &Pat) -> Option<&syn::Ident> {
    match pat {
        Pat::Ident(p) if p.subpat.is_none() && !p.ident.to_string().starts_with(char::is_uppercase) => Some(&p.ident),
        Pat::Ident(p) => p.subpat.as_ref().and_then(|(_, sub)| binding_in(sub)),
        Pat::Or(or) => or.cases.iter().find_map(binding_in),
        Pat::Paren(p) => binding_in(&p.pat),
        Pat::Reference(r) => binding_in(&r.pat),
        Pat::Slice(s) => s.elems.iter().find_map(binding_in),
        Pat::Struct(s) => s.fields.iter().find_map(|f| binding_in(&f.pat)),
        Pat::Tuple(t) => t.elems.iter().find_map(binding_in),
        Pat::TupleStruct(t) => t.elems.iter().find_map(binding_in),
        Pat::Type(t) => binding_in(&t.pat),
        _ => None,
    }
}
