//! Lowering `if`/`else` and `match`: each arm is a loop of zero or one iteration.
//!
//! Before: `let h = if cfg.bias { x.dot(w) + b } else { x.dot(w) };`
//! After:  `v5 = Loop { range: 0..(c as usize), carried: [branch ← unset], body: .. }`,
//!         `v6 = LoopOut(v5, 0)`,
//!         `v7 = Loop { range: 0..(!c as usize), carried: [branch ← v6], body: .. }`, `h ↦ LoopOut(v7, 0)`.
//!
//! Exactly one arm runs, so the hidden variable holds its value after both loops, and the
//! loop machinery (contexts, activity, backward, the tape's real control flow) does the rest.
//! A constant condition (configuration values, comparisons of sizes) is evaluated in
//! forward and again in backward; a condition on the function's floats (`s > 0.0`, a
//! piecewise function) is a `bool` value computed once in forward and kept, and the
//! derivative is the taken arm's.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::{Expr, Pat, Stmt as SynStmt};

use super::loops::LoopSpec;
use super::Lowerer;
use crate::ir::{CmpOp, Init, Kind, Op, ValueId};

/// One arm: its condition (given that no earlier arm's held), its statements, and the
/// constant a `match` arm's pattern binds (`n if n > 3 => ..` binds `n` to the scrutinee).
struct Arm {
    condition: Condition,
    stmts: Vec<SynStmt>,
    binding: Option<(String, TokenStream)>,
}

/// A branch condition.
#[derive(Clone)]
enum Condition {
    /// A constant `bool` expression, evaluated in forward and again in backward.
    Const(TokenStream),
    /// A condition on the function's values (`s > 0.0`), computed once in forward and kept.
    Value(ValueId),
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
        let mut earlier: Vec<Condition> = Vec::new();
        loop {
            let condition = self.branch_condition(&chain.cond)?;
            arms.push(Arm {
                condition: self.all_of(&earlier, Some(&condition)),
                stmts: chain.then_branch.stmts.clone(),
                binding: None,
            });
            earlier.push(condition);
            match chain.else_branch.as_ref().map(|(_, e)| &**e) {
                Some(Expr::If(next)) => chain = next,
                Some(Expr::Block(block)) => {
                    arms.push(Arm {
                        condition: self.all_of(&earlier, None),
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
        let scrutinee = self.constant_condition(&m.expr)?;
        let mut arms = Vec::new();
        let mut earlier: Vec<Condition> = Vec::new();
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
                    let guard = self.constant_condition(guard);
                    if let Some((name, previous)) = hidden {
                        self.constants.insert(name, previous);
                    }
                    let guard = guard?;
                    quote!(if #guard)
                }
                None => TokenStream::new(),
            };
            let pat = &arm.pat;
            let condition = Condition::Const(quote!(match #scrutinee { #pat #guard => true, _ => false }));
            let stmts = match &*arm.body {
                Expr::Block(block) => block.block.stmts.clone(),
                other => vec![SynStmt::Expr(other.clone(), None)],
            };
            arms.push(Arm {
                condition: self.all_of(&earlier, Some(&condition)),
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
        Some(Some(self.push(Op::Const(tokens), Kind::Scalar, None)))
    }

    /// Each arm as a loop of `(condition) as usize` iterations, in order.
    fn lower_arms(&mut self, arms: Vec<Arm>, value: bool, span: TokenStream) -> Option<ValueId> {
        let result_kind = self.annotated_branch.take().filter(|_| value);
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
            let (range, flag) = match &arm.condition {
                Condition::Const(condition) => (quote!((0)..((#condition) as usize)), None),
                Condition::Value(flag) => (quote!((0)..(flag as usize)), Some(*flag)),
            };
            let spec = LoopSpec {
                range,
                index: None,
                element: None,
                stmts: &arm.stmts,
                result: value.then(|| (result.clone(), init)),
                span: span.clone(),
                what: "branch",
                flag,
                result_kind,
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
    /// configuration, a comparison of sizes), or comparisons of the function's floats.
    fn branch_condition(&mut self, cond: &Expr) -> Option<Condition> {
        if self.mentions_value(cond) {
            self.lower_condition(cond).map(Condition::Value)
        } else {
            self.constant_arg(cond, "a condition").map(Condition::Const)
        }
    }

    /// A condition that must be a constant (a `match`'s scrutinee and guards).
    fn constant_condition(&self, cond: &Expr) -> Option<TokenStream> {
        if let Some(value) = self.value_mention(cond, None) {
            self.cx.error_spanned_by(
                value,
                "a `match` in a differentiated function selects on constants (an enum or `usize` parameter, a configuration field): branch on a differentiable value with `if a > b { .. } else { .. }`",
            );
            return None;
        }
        self.constant_arg(cond, "a condition")
    }

    /// `a > b`, `!c`, `c && d`, `c || d` of floats and constants, as a `bool` value.
    fn lower_condition(&mut self, cond: &Expr) -> Option<ValueId> {
        if !self.mentions_value(cond) {
            let tokens = self.constant_arg(cond, "a condition")?;
            return Some(self.push(Op::ConstArray(tokens), Kind::Bool, None));
        }
        match cond {
            Expr::Paren(p) => self.lower_condition(&p.expr),
            Expr::Group(g) => self.lower_condition(&g.expr),
            Expr::Unary(u) if matches!(u.op, syn::UnOp::Not(_)) => {
                let c = self.lower_condition(&u.expr)?;
                Some(self.push(Op::Not(c), Kind::Bool, None))
            }
            Expr::Binary(b) if matches!(b.op, syn::BinOp::And(_) | syn::BinOp::Or(_)) => {
                let lhs = self.lower_condition(&b.left);
                let rhs = self.lower_condition(&b.right);
                let (lhs, rhs) = (lhs?, rhs?);
                let op = if matches!(b.op, syn::BinOp::And(_)) {
                    Op::And(lhs, rhs)
                } else {
                    Op::Or(lhs, rhs)
                };
                Some(self.push(op, Kind::Bool, None))
            }
            Expr::Binary(b) => {
                let Some(cmp) = CmpOp::from_syn(&b.op) else {
                    self.cx.error_spanned_by(b, "a condition compares floats (`<`, `<=`, `>`, `>=`, `==`, `!=`) and combines comparisons with `!`, `&&`, `||`");
                    return None;
                };
                let lhs = self.lower_operand(&b.left, &b.right);
                let rhs = self.lower_operand(&b.right, &b.left);
                let (lhs, rhs) = (lhs?, rhs?);
                for (side, expr) in [(lhs, &b.left), (rhs, &b.right)] {
                    if self.kind(side) != Kind::Scalar {
                        self.cx.error_spanned_by(
                            expr,
                            "a condition compares floats; reduce an array first (`x.sum() > 0.0`), or branch elementwise with `mapv(|v| if v > c { .. } else { .. })` or `maximum`/`minimum`",
                        );
                        return None;
                    }
                }
                Some(self.push(Op::Compare(cmp, lhs, rhs), Kind::Bool, None))
            }
            other => {
                self.cx.error_spanned_by(
                    other,
                    "a condition on differentiable values compares floats (`s > 0.0`), combined with `!`, `&&`, `||`",
                );
                None
            }
        }
    }

    /// `!e1 && !e2 && c`: an arm's condition given the earlier arms'. Constant when they all
    /// are; otherwise a `bool` value computed in forward.
    fn all_of(&mut self, earlier: &[Condition], condition: Option<&Condition>) -> Condition {
        let all: Vec<(bool, &Condition)> = earlier
            .iter()
            .map(|c| (true, c))
            .chain(condition.map(|c| (false, c)))
            .collect();
        let constants: Option<Vec<TokenStream>> = all
            .iter()
            .map(|(negated, c)| match (negated, c) {
                (true, Condition::Const(t)) => Some(quote!(!(#t))),
                (false, Condition::Const(t)) => Some(quote!((#t))),
                (_, Condition::Value(_)) => None,
            })
            .collect();
        if let Some(parts) = constants {
            return Condition::Const(if parts.is_empty() {
                quote!(true)
            } else {
                quote!(#(#parts)&&*)
            });
        }
        let mut flag: Option<ValueId> = None;
        for (negated, c) in all {
            let mut term = match c {
                Condition::Const(t) => self.push(Op::ConstArray(t.clone()), Kind::Bool, None),
                Condition::Value(v) => *v,
            };
            if negated {
                term = self.push(Op::Not(term), Kind::Bool, None);
            }
            flag = Some(match flag {
                None => term,
                Some(f) => self.push(Op::And(f, term), Kind::Bool, None),
            });
        }
        match flag {
            Some(flag) => Condition::Value(flag),
            None => Condition::Const(quote!(true)),
        }
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
