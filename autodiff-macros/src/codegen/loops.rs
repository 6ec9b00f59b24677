//! Static code for `for` loops: the body is generated as a function of its own
//! (`static_code::generate` with a `Boundary::Body`) and inlined twice.
//!
//! Forward: the carried variables become `let mut` locals; each iteration runs the body's
//! forward and pushes the body's context (a tuple of what its backward reads) on a `Vec`,
//! Tangent's stack. Backward: the contexts are popped in reverse; each iteration runs the
//! body's backward seeded with the carried variables' adjoints, which it updates, and adds
//! the captured values' contributions to an accumulator.
//!
//! Before: `let mut h = h0.to_owned(); for i in 0..n { h = (h.dot(w) + &xs[i]).tanh(); }`
//! After (forward):  `let (ctxs, h_9) = { let mut h = h0.to_owned(); let mut ctxs = Vec::with_capacity(n);`
//!                   `for i in 0..n { ..body.. ctxs.push((h, v3)); h = next; } (ctxs, h) };`
//! After (backward): `for (i, (h, v3)) in (0..n).zip(ctxs).rev() { let seed = d_h; ..body.. d_h = d_h_in; d_w += d_w_i; }`

use std::collections::BTreeMap;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::Ident;

use super::names::Names;
use super::static_code::{self, Boundary, CtxField, Held, StaticCode};
use crate::activity::Activity;
use crate::ir::{Function, Init, Kind, Loop, Op, Origin, ValueId};
use crate::liveness::ForwardLiveness;

/// A loop's body, generated.
pub struct BodyCode<'f> {
    names: Names<'f>,
    pub code: StaticCode,
    /// The outer local (and context field) holding the per-iteration contexts.
    contexts: Ident,
    /// Per carried variable: the local seeding the body's output with its adjoint, if the
    /// variable is active.
    seeds: Vec<Option<Ident>>,
}

/// Where one of the loop's adjoint results goes, and where it comes from.
enum Source {
    /// The carried variable `k`'s adjoint after the first iteration.
    Carried(usize),
    /// The sum over iterations of the captured parameter `index`'s adjoint.
    Captured(usize),
}

/// The outer values whose adjoints the loop `id` contributes to, with their source.
fn results(function: &Function, id: ValueId, l: &Loop, activity: &Activity) -> Vec<(ValueId, Source)> {
    let body = activity.of_loop(id);
    let active_param = |index: usize| l.body.param_id(index).is_some_and(|p| body.is_active(p));
    let mut results = Vec::new();
    for (k, carried) in l.carried.iter().enumerate() {
        if let Init::Value(v) = carried.init {
            if activity.is_active(v) && active_param(k) {
                results.push((v, Source::Carried(k)));
            }
        }
    }
    for &(index, v) in &l.captured {
        // A slice's elements are accumulated into its gradient directly, by index.
        if activity.is_active(v) && active_param(index) && !matches!(function.kind(v), Kind::Slice(_)) {
            results.push((v, Source::Captured(index)));
        }
    }
    results
}

/// The loop's range: its constants, or for a branch arm on a condition computed in
/// forward, one iteration if the condition holds.
pub fn range_of(l: &Loop, names: &Names) -> TokenStream {
    match l.flag {
        Some(flag) => {
            let flag = names.arg(flag);
            quote!((0)..((#flag) as usize))
        }
        None => l.range.clone(),
    }
}

/// The outer values whose adjoints the loop statement `id` contributes to.
pub fn targets(function: &Function, id: ValueId, l: &Loop, activity: &Activity) -> Vec<ValueId> {
    results(function, id, l, activity).into_iter().map(|(v, _)| v).collect()
}

/// The loop's output values: `outs[k]` is the outer value of carried variable `k`.
fn loop_outputs(function: &Function, id: ValueId, l: &Loop) -> Vec<ValueId> {
    (0..l.carried.len())
        .map(|k| function.loop_output(id, k).unwrap_or(id))
        .collect()
}

/// The outer shapes the loop's backward reads: those of its outputs (an adjoint that no
/// later statement produced starts as zeros) and of captured arrays (their gradient is
/// zeros when the loop runs no iteration).
pub fn dims_read(function: &Function, id: ValueId, l: &Loop, activity: &Activity) -> Vec<ValueId> {
    let body = activity.of_loop(id);
    let mut dims: Vec<ValueId> = loop_outputs(function, id, l)
        .into_iter()
        .enumerate()
        .filter(|&(k, out)| function.kind(out).is_array() && l.body.param_id(k).is_some_and(|p| body.is_active(p)))
        .map(|(_, out)| out)
        .collect();
    for (v, source) in results(function, id, l, activity) {
        if matches!(source, Source::Captured(_)) && function.kind(v).is_array() {
            dims.push(v);
        }
    }
    dims
}

/// The outer local summing the captured parameter `index`'s adjoint over the iterations.
fn captured_accumulator(body: &Names, index: usize) -> Ident {
    format_ident!("{}d_captured{}", body.prefix(), index, span = Span::mixed_site())
}

impl<'f> BodyCode<'f> {
    /// Generates the body of the loop statement `id` of `function`.
    pub fn generate(function: &Function, id: ValueId, l: &'f Loop, activity: &Activity, names: &Names<'f>) -> Self {
        let mut names = names.body(id, l);
        names.set_shared(
            (0..l.carried.len())
                .filter(|&k| l.body.stmts[k].kind.is_array())
                .flat_map(|k| [l.body.param_id(k).unwrap_or(ValueId(k)), l.outputs[k]])
                .collect(),
        );
        // The captured values' adjoints are summed in place, over the iterations.
        let accumulators = results(function, id, l, activity)
            .into_iter()
            .filter_map(|(_, source)| match source {
                Source::Captured(index) => Some((index, captured_accumulator(&names, index))),
                Source::Carried(_) => None,
            })
            .collect();
        let body_activity = activity.of_loop(id);
        let liveness = ForwardLiveness::of(&l.body);
        let seeds: Vec<Option<Ident>> = (0..l.carried.len())
            .map(|k| {
                l.body
                    .param_id(k)
                    .filter(|&p| body_activity.is_active(p))
                    .map(|_| format_ident!("{}seed{}", names.prefix(), k, span = Span::mixed_site()))
            })
            .collect();
        let boundary = Boundary::Body {
            outputs: l.outputs.clone(),
            seeds: seeds.clone(),
            accumulators,
        };
        let mut code = static_code::generate(&l.body, body_activity, &liveness, &names, &[], &boundary);
        // A carried array is shared (`ArcArray`) between the iteration that computed it and
        // the next, which reads it: saving it in both contexts costs a reference count, not
        // a copy of the state per iteration.
        let shared: Vec<(Ident, Kind)> = (0..l.carried.len())
            .filter(|&k| l.body.stmts[k].kind.is_array())
            .flat_map(|k| {
                let kind = l.body.stmts[k].kind;
                let param = names.ident(l.body.param_id(k).unwrap_or(ValueId(k)));
                [(param, kind), (names.ident(l.outputs[k]), kind)]
            })
            .collect();
        for field in &mut code.fields {
            if let Some((_, kind)) = shared.iter().find(|(ident, _)| *ident == field.ident) {
                field.ty = names.shared_type(*kind);
                field.held = Some(Held::Shared);
            }
        }
        let contexts = format_ident!("{}contexts", names.prefix(), span = Span::mixed_site());
        BodyCode {
            names,
            code,
            contexts,
            seeds,
        }
    }

    /// The outer context's field holding the per-iteration contexts.
    pub fn context_field(&self) -> CtxField {
        let types = self.code.fields.iter().map(|f| &f.ty);
        let ty = quote!(::std::vec::Vec<(#(#types,)*)>);
        let items = self.code.fields.iter().map(|f| f.held.clone()).collect();
        CtxField {
            ident: self.contexts.clone(),
            held: Some(Held::Contexts(items)),
            ty,
        }
    }

    /// The loop's forward: a block binding the loop's outputs (and its contexts, when
    /// `keep`). Initial values in `movable` (owned locals whose last use this is) are moved
    /// in; the others are copied. Returns the code and the plan's lines.
    pub fn forward(
        &self,
        function: &Function,
        id: ValueId,
        l: &Loop,
        names: &Names,
        keep: bool,
        movable: &[ValueId],
    ) -> (TokenStream, Vec<String>) {
        let bn = &self.names;
        let body = &l.body;
        let float = &names.float;
        let mut plan = Vec::new();
        let mut code = TokenStream::new();
        let carried: Vec<Ident> = (0..l.carried.len())
            .map(|k| bn.ident(body.param_id(k).unwrap_or(ValueId(k))))
            .collect();
        for (k, c) in l.carried.iter().enumerate() {
            let kind = body.stmts[k].kind;
            let ty = if kind.is_array() {
                bn.shared_type(kind)
            } else {
                bn.value_type(kind)
            };
            let ident = &carried[k];
            let init = match &c.init {
                Init::Value(v) => {
                    let shared = l
                        .carried
                        .iter()
                        .filter(|c| matches!(c.init, Init::Value(w) if w == *v))
                        .count()
                        > 1;
                    // The body may also read the initial value (captured): then it stays.
                    let captured = l.captured.iter().any(|&(_, w)| w == *v);
                    if !kind.is_array() {
                        names.arg(*v)
                    } else if movable.contains(v) && !shared && !captured {
                        let value = names.ident(*v);
                        quote!(#value)
                    } else {
                        let value = names.arg(*v);
                        quote!((#value).to_owned())
                    }
                }
                Init::Const(t) => names.float_constant(t),
                // Never read: an empty array (or zero) of the right type.
                Init::Unset if kind.is_array() => {
                    let dim = bn.dim_type(kind);
                    quote!(::autodiff::ndarray::Array::zeros(<#dim as ::core::default::Default>::default()))
                }
                Init::Unset => quote!(<#float as ::autodiff::runtime::Float>::of(0.0)),
            };
            let init = if kind.is_array() {
                quote!((#init).into_shared())
            } else {
                init
            };
            code.extend(quote!(let mut #ident: #ty = #init;));
            plan.push(format!(
                "{} = {}",
                bn.text(body.param_id(k).unwrap_or(ValueId(k))),
                init
            ));
        }
        let contexts = &self.contexts;
        let range = &range_of(l, names);
        if keep {
            code.extend(quote!(let mut #contexts = ::std::vec::Vec::with_capacity(::core::iter::ExactSizeIterator::len(&(#range)));));
        }
        let index = match &l.index {
            Some(i) => quote!(#i),
            None => quote!(_),
        };
        plan.push(format!("for {index} in {range} {{"));
        plan.extend(self.code.plan_forward.iter().map(|line| format!("    {line}")));
        plan.push("}".to_string());

        // The next values of the carried variables: a float is copied; an array becomes
        // shared, and a saved or repeated one is a new reference to the same state.
        let saved: Vec<&Ident> = self.code.fields.iter().map(|f| &f.ident).collect();
        let mut nexts = Vec::new();
        let mut next_code = TokenStream::new();
        for (k, &out) in l.outputs.iter().enumerate() {
            let next = format_ident!("{}next{}", bn.prefix(), k, span = Span::mixed_site());
            let ident = bn.ident(out);
            let repeated = l.outputs[..k].contains(&out);
            let kept = saved.contains(&&ident) || l.outputs[k + 1..].contains(&out);
            let kind = body.kind(out);
            let code = match &body.stmt(out).op {
                _ if !kind.is_array() => {
                    let arg = bn.arg(out);
                    quote!(let #next = #arg;)
                }
                Op::Param { index } if body.params[*index].origin == Origin::Carried => {
                    if kept || repeated {
                        quote!(let #next = ::core::clone::Clone::clone(&#ident);)
                    } else {
                        quote!(let #next = #ident;)
                    }
                }
                Op::Param { .. } | Op::Index(..) => {
                    let arg = bn.arg(out);
                    quote!(let #next = (#arg).to_owned().into_shared();)
                }
                // Already shared by an earlier carried variable.
                _ if repeated => quote!(let #next = ::core::clone::Clone::clone(&#ident);),
                _ if kept => quote! {
                    let #next = #ident.into_shared();
                    let #ident = ::core::clone::Clone::clone(&#next);
                },
                _ => quote!(let #next = #ident.into_shared();),
            };
            next_code.extend(code);
            nexts.push(next);
        }
        let forward_body = &self.code.forward_body;
        let push = keep.then(|| quote!(#contexts.push((#(#saved,)*));));
        code.extend(quote! {
            for #index in #range {
                #forward_body
                #next_code
                #push
                #(#carried = #nexts;)*
            }
        });
        let outs: Vec<Ident> = loop_outputs(function, id, l)
            .into_iter()
            .map(|v| names.ident(v))
            .collect();
        let bound = keep.then(|| quote!(#contexts,));
        let returned = keep.then(|| quote!(#contexts,));
        for (out, c) in outs.iter().zip(&l.carried) {
            plan.push(format!("{out} = {} after the loop", c.name));
        }
        // The final states leave the loop as owned arrays (a copy only where the last
        // context still shares one).
        let finals = carried.iter().enumerate().map(|(k, c)| {
            if body.stmts[k].kind.is_array() {
                quote!(#c.into_owned())
            } else {
                quote!(#c)
            }
        });
        (
            quote!(let (#bound #(#outs,)*) = { #code (#returned #(#finals,)*) };),
            plan,
        )
    }

    /// The loop's backward: code, then the `(outer value, local holding its contribution)`
    /// pairs for the caller to add to the outer adjoints, and the plan's lines.
    /// `received` says which outer adjoints exist.
    pub fn backward(
        &self,
        function: &Function,
        id: ValueId,
        l: &Loop,
        names: &Names,
        activity: &Activity,
        received: &BTreeMap<ValueId, usize>,
    ) -> (TokenStream, Vec<(ValueId, Ident)>, Vec<String>) {
        let bn = &self.names;
        let body = &l.body;
        let float = &names.float;
        let zero = quote!(<#float as ::autodiff::runtime::Float>::of(0.0));
        let prefix = bn.prefix();
        let mut code = TokenStream::new();
        let mut plan = Vec::new();
        let outs = loop_outputs(function, id, l);
        let adjoint = |k: usize| format_ident!("{}d_carried{}", prefix, k, span = Span::mixed_site());
        let accumulator = |index: usize| captured_accumulator(bn, index);

        // The carried adjoints start from the loop outputs' (zeros if nothing read them).
        for (k, seed) in self.seeds.iter().enumerate() {
            if seed.is_none() {
                continue;
            }
            let (d, out) = (adjoint(k), outs[k]);
            let init = if received.contains_key(&out) {
                let d_out = names.adjoint(out);
                quote!(#d_out)
            } else if function.kind(out).is_array() {
                let dim = names.dim(out);
                quote!(::autodiff::ndarray::Array::zeros(#dim.clone()))
            } else {
                zero.clone()
            };
            plan.push(format!("{d} = {init}"));
            code.extend(quote!(let mut #d = #init;));
        }
        // The captured values' adjoints start at zero (the loop may run no iteration) and
        // the body adds into them in place.
        let results = results(function, id, l, activity);
        for (v, source) in &results {
            if let Source::Captured(index) = source {
                let acc = accumulator(*index);
                let init = if function.kind(*v).is_array() {
                    let dim = names.dim(*v);
                    quote!(::autodiff::ndarray::Array::zeros(#dim.clone()))
                } else {
                    zero.clone()
                };
                code.extend(quote!(let mut #acc = #init;));
            }
        }

        // One iteration, in reverse.
        let index = match &l.index {
            Some(i) => quote!(#i),
            None => quote!(_),
        };
        let (contexts, range) = (&self.contexts, &range_of(l, names));
        let fields = self.code.fields.iter().map(|f| &f.ident);
        let seeds = self.seeds.iter().enumerate().filter_map(|(k, seed)| {
            let d = adjoint(k);
            seed.as_ref().map(|seed| quote!(let #seed = #d;))
        });
        let grads: Vec<Ident> = self
            .code
            .grads
            .iter()
            .map(|&p| format_ident!("{}grad{}", prefix, p, span = Span::mixed_site()))
            .collect();
        let mut updates = TokenStream::new();
        for (&p, grad) in self.code.grads.iter().zip(&grads) {
            if body.params[p].origin == Origin::Carried {
                let d = adjoint(p);
                updates.extend(quote!(#d = #grad;));
            }
        }
        let backward_body = &self.code.backward_body;
        code.extend(quote! {
            for (#index, (#(#fields,)*)) in (#range).zip(#contexts).rev() {
                #(#seeds)*
                let (#(#grads,)*) = { #backward_body };
                #updates
            }
        });
        plan.push(format!("for {index} in rev({range}) {{"));
        plan.extend(self.code.plan_backward.iter().map(|line| format!("    {line}")));
        plan.push("}".to_string());

        // The results, named for the caller.
        let mut pairs = Vec::new();
        // Named by position: one value may receive two results (a carried variable's initial
        // value that the body also reads).
        for (position, (v, source)) in results.into_iter().enumerate() {
            let result = format_ident!("{}result{}", prefix, position, span = Span::mixed_site());
            let expr = match source {
                Source::Carried(k) => {
                    let d = adjoint(k);
                    quote!(#d)
                }
                Source::Captured(index) => {
                    let acc = accumulator(index);
                    quote!(#acc)
                }
            };
            code.extend(quote!(let #result = #expr;));
            pairs.push((v, result));
        }
        (quote!(#code), pairs, plan)
    }
}
