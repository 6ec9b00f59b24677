//! Static code for `for` loops: the body is generated as a function of its own
//! (`static_code::generate` with a `Boundary::Body`) and inlined twice.
//!
//! Forward: the carried variables become `let mut` locals; each iteration runs the body's
//! forward and pushes the body's context (a tuple of what its backward reads) on a `Vec`,
//! Tangent's stack. Backward: the contexts are popped in reverse; each iteration runs the
//! body's backward seeded with the carried variables' adjoints, which it updates, and adds
//! the captured values' contributions to an accumulator.
//!
//! A state is held once: consecutive contexts share it (`ArcArray`), the first context
//! leaves the initial value and the last the loop's output to the code around the loop
//! (`EdgeField`), and under `residuals = "bf16"` the contexts share one 16-bit packing of
//! it, made where the state is and carried beside it (`BodyCode::packed_twin`).
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

/// A context field that one iteration at the loop's edge leaves out, because the code
/// around the loop has the same state: the first iteration's carried-in state is the
/// variable's initial value, the last iteration's carried-out state the loop's output.
/// The outer code keeps that value (the loop's backward reads it), so holding it in the
/// edge iteration's context as well would hold one state twice (an RNN's `h0` copied into
/// its carried state, and its final state copied out of the buffer the last context
/// shares). That context holds an empty array instead, and backward copies the outer
/// value into the field before that iteration's body runs (one state copied per run,
/// where forward used to copy it anyway).
struct EdgeField {
    field: Ident,
    first: bool,
    outer: ValueId,
}

/// A loop's body, generated.
pub struct BodyCode<'f> {
    names: Names<'f>,
    pub code: StaticCode,
    /// The outer local (and context field) holding the per-iteration contexts.
    contexts: Ident,
    /// Per carried variable: the local seeding the body's output with its adjoint, if the
    /// variable is active.
    seeds: Vec<Option<Ident>>,
    /// Fields the first or last iteration's context leaves to the outer code.
    edges: Vec<EdgeField>,
    /// Under `residuals = "bf16"` (or "f16"): the context fields holding carried states,
    /// kept in 16 bits.
    packed_states: Vec<StateField>,
}

/// A context field holding a carried array's state: the state carried in (`input`), or
/// the one the iteration made for the next.
struct StateField {
    field: Ident,
    carried: usize,
    input: bool,
}

/// The context fields of a loop body that hold carried states (an output that passes a
/// parameter through is that parameter's field; one that passes an outer value through
/// is no field).
fn state_fields(l: &Loop, names: &Names, code: &StaticCode) -> Vec<StateField> {
    let saved = |ident: &Ident| code.fields.iter().any(|f| f.ident == *ident);
    let mut states: Vec<StateField> = Vec::new();
    for k in (0..l.carried.len()).filter(|&k| l.body.stmts[k].kind.is_array()) {
        let param = names.ident(l.body.param_id(k).unwrap_or(ValueId(k)));
        if saved(&param) {
            states.push(StateField {
                field: param,
                carried: k,
                input: true,
            });
        }
    }
    for k in (0..l.carried.len()).filter(|&k| l.body.stmts[k].kind.is_array()) {
        let out = l.outputs[k];
        let field = names.ident(out);
        let made_by_body = !matches!(l.body.stmt(out).op, Op::Param { .. } | Op::Index(..));
        if made_by_body && saved(&field) && !states.iter().any(|s| s.field == field) {
            states.push(StateField {
                field,
                carried: k,
                input: false,
            });
        }
    }
    states
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

/// The context fields of the loop `id` whose edge iteration leaves them to the outer code
/// (see [`EdgeField`]): a state carried in from the initial value (not a constant), and a
/// state made for the loop's output, which the rest of the function reads (not one of two
/// outputs the body made the same).
fn edge_fields(function: &Function, id: ValueId, l: &Loop, names: &Names, code: &StaticCode) -> Vec<EdgeField> {
    state_fields(l, names, code)
        .into_iter()
        .filter_map(|state| {
            let k = state.carried;
            let outer = if state.input {
                match l.carried[k].init {
                    Init::Value(init) if !matches!(function.stmt(init).op, Op::Const(_) | Op::ConstArray(_)) => init,
                    _ => return None,
                }
            } else {
                let repeated = l.outputs.iter().filter(|&&o| o == l.outputs[k]).count() > 1;
                match function.loop_output(id, k) {
                    Some(out) if !repeated => out,
                    _ => return None,
                }
            };
            Some(EdgeField {
                field: state.field,
                first: state.input,
                outer,
            })
        })
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
        // a copy of the state per iteration. Under `residuals = "bf16"` (or "f16") the two
        // contexts share one 16-bit packing of it instead (`None` at an edge, see `EdgeField`).
        let states = state_fields(l, &names, &code);
        let packed = names.analyses.residuals.format().is_some();
        for field in &mut code.fields {
            if let Some(state) = states.iter().find(|s| s.field == field.ident) {
                let kind = l.body.stmts[state.carried].kind;
                if packed {
                    let dim = names.dim_type(kind);
                    field.ty = quote!(::core::option::Option<::std::sync::Arc<::autodiff::runtime::kernels::packed::Packed<#dim>>>);
                    field.held = Some(Held::SharedPacked);
                } else {
                    field.ty = names.shared_type(kind);
                    field.held = Some(Held::Shared);
                }
            }
        }
        let edges = edge_fields(function, id, l, &names, &code);
        let contexts = format_ident!("{}contexts", names.prefix(), span = Span::mixed_site());
        let packed_states = if packed { states } else { Vec::new() };
        BodyCode {
            names,
            code,
            contexts,
            seeds,
            edges,
            packed_states,
        }
    }

    /// Under 16-bit residuals, the packing of carried variable `k`'s current state, carried
    /// beside it (`None` where no context holds it).
    fn packed_twin(&self, k: usize) -> Ident {
        format_ident!("{}packed{}", self.names.prefix(), k, span = Span::mixed_site())
    }

    /// The packing of the state this iteration made for carried variable `k`.
    fn next_packed_twin(&self, k: usize) -> Ident {
        format_ident!("{}next_packed{}", self.names.prefix(), k, span = Span::mixed_site())
    }

    /// The outer values the loop's backward reads for its edge iterations (see
    /// [`EdgeField`]); the outer code keeps them to that step.
    pub fn edge_reads(&self) -> impl Iterator<Item = ValueId> + '_ {
        self.edges.iter().map(|e| e.outer)
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
        if let (true, Some(format)) = (keep, bn.analyses.residuals.format()) {
            let format = format.to_lowercase();
            plan.extend(
                self.packed_states
                    .iter()
                    .map(|s| format!("    {0}_packed = {format}({0})", s.field)),
            );
        }
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
        let count = format_ident!("{}count", bn.prefix(), span = Span::mixed_site());
        let last = quote!(#contexts.len() + 1 == #count);
        // Under 16-bit residuals, each carried state a context holds is packed once, where
        // it is made, into a twin carried beside it (`None` where no context holds it).
        let pushed = self.code.fields.iter().map(|f| {
            let ident = &f.ident;
            if let Some(state) = self.packed_states.iter().find(|s| s.field == *ident) {
                let k = state.carried;
                return if state.input {
                    let twin = self.packed_twin(k);
                    quote!(#twin)
                } else {
                    let next = self.next_packed_twin(k);
                    quote!(::core::clone::Clone::clone(&#next))
                };
            }
            match self.edges.iter().find(|e| e.field == *ident) {
                Some(EdgeField { first: true, .. }) => quote! {
                    if #contexts.is_empty() { ::core::default::Default::default() } else { #ident }
                },
                Some(EdgeField { first: false, .. }) => quote! {
                    if #last { ::core::default::Default::default() } else { #ident }
                },
                None => quote!(#ident),
            }
        });
        let push = keep.then(|| quote!(#contexts.push((#(#pushed,)*));));
        if keep && !(self.edges.is_empty() && self.packed_states.is_empty()) {
            code.extend(quote!(let #count = ::core::iter::ExactSizeIterator::len(&(#range));));
        }
        let (mut pack_next, mut carry_twins) = (TokenStream::new(), TokenStream::new());
        if keep {
            let format = format_ident!("{}", bn.analyses.residuals.format().unwrap_or("Bf16"));
            let pack = |value: &Ident| {
                quote!(::core::option::Option::Some(::std::sync::Arc::new(
                    ::autodiff::runtime::kernels::packed::Packed::pack(&#value, ::autodiff::runtime::kernels::packed::Half::#format)
                )))
            };
            let packed_carried = (0..l.carried.len()).filter(|&k| self.packed_states.iter().any(|s| s.carried == k));
            for k in packed_carried {
                let (twin, next_twin) = (self.packed_twin(k), self.next_packed_twin(k));
                // Iteration 0's state is the initial value: packed unless the code around
                // the loop keeps it (an edge) or no context holds a state carried in.
                let input = self.packed_states.iter().find(|s| s.input && s.carried == k);
                let init = match input {
                    Some(s) if !self.edges.iter().any(|e| e.field == s.field) => pack(&carried[k]),
                    _ => quote!(::core::option::Option::None),
                };
                code.extend(quote!(let mut #twin = #init;));
                // The next state is read by the next iteration's context (if one holds a
                // state carried in) and by this one's (if it holds the state it made, and
                // this is not the last iteration, whose output the code around keeps).
                let output = self.packed_states.iter().find(|s| !s.input && s.carried == k);
                let always = output.is_some_and(|s| !self.edges.iter().any(|e| e.field == s.field));
                let value = pack(&nexts[k]);
                pack_next.extend(if always {
                    quote!(let #next_twin = #value;)
                } else {
                    quote!(let #next_twin = if #last { ::core::option::Option::None } else { #value };)
                });
                carry_twins.extend(quote!(#twin = #next_twin;));
            }
        }
        code.extend(quote! {
            for #index in #range {
                #forward_body
                #next_code
                #pack_next
                #push
                #carry_twins
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
        // The captured values' adjoints: a float starts at zero; an array starts empty and
        // takes its first contribution's buffer, the body adding the others into it in
        // place (zeros up front would be held through the sweep beside every context:
        // attention's four weight gradients, 1 MB). Zeros if none came (the loop may run
        // no iteration).
        let results = results(function, id, l, activity);
        for (v, source) in &results {
            if let Source::Captured(index) = source {
                let acc = accumulator(*index);
                let kind = function.kind(*v);
                let (ty, init) = if kind.is_array() {
                    let array = names.value_type(kind);
                    (
                        quote!(::core::option::Option<#array>),
                        quote!(::core::option::Option::None),
                    )
                } else {
                    (quote!(#float), zero.clone())
                };
                code.extend(quote!(let mut #acc: #ty = #init;));
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
        let (position, count) = (
            format_ident!("{}position", prefix, span = Span::mixed_site()),
            format_ident!("{}count", prefix, span = Span::mixed_site()),
        );
        // A packed state is unpacked before the body reads it; an edge's comes from outside.
        let unpacked = self.packed_states.iter().map(|state| {
            let field = &state.field;
            let missing = match self.edges.iter().find(|e| e.field == *field) {
                Some(edge) => {
                    let outer = names.arg(edge.outer);
                    quote!((#outer).to_owned().into_shared())
                }
                None => quote!(::core::default::Default::default()),
            };
            quote! {
                let #field = match #field {
                    ::core::option::Option::Some(packed) => packed.unpack::<#float>().into_shared(),
                    ::core::option::Option::None => #missing,
                };
            }
        });
        let edges = self
            .edges
            .iter()
            .filter(|e| !self.packed_states.iter().any(|s| s.field == e.field))
            .map(|e| {
                let (field, outer) = (&e.field, names.arg(e.outer));
                let at_edge = if e.first {
                    quote!(#position == 0)
                } else {
                    quote!(#position + 1 == #count)
                };
                quote!(let #field = if #at_edge { (#outer).to_owned().into_shared() } else { #field };)
            });
        if !self.edges.is_empty() {
            code.extend(quote!(let #count = #contexts.len();));
        }
        let pattern = quote!((#index, (#(#fields,)*)));
        let (pattern, iterations) = if self.edges.is_empty() {
            (pattern, quote!((#range).zip(#contexts).rev()))
        } else {
            (
                quote!((#position, #pattern)),
                quote!((#range).zip(#contexts).enumerate().rev()),
            )
        };
        code.extend(quote! {
            for #pattern in #iterations {
                #(#unpacked)*
                #(#edges)*
                #(#seeds)*
                let (#(#grads,)*) = { #backward_body };
                #updates
            }
        });
        plan.push(format!("for {index} in rev({range}) {{"));
        plan.extend(
            self.packed_states
                .iter()
                .map(|s| format!("    {0} = unpack({0}_packed)", s.field)),
        );
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
                Source::Captured(index) if function.kind(v).is_array() => {
                    let (acc, dim) = (accumulator(index), names.dim(v));
                    quote!(#acc.unwrap_or_else(|| ::autodiff::ndarray::Array::zeros(#dim.clone())))
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
