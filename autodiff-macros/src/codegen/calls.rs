//! Static code for calls of other `#[differentiate]` functions.
//!
//! The callee publishes a call protocol beside its own items (`call_code.rs`):
//! `layer_call_forward(args) -> (value, LayerCallContext<F>)`, whose context owns what it saved
//! and borrows nothing, and `layer_call_backward(saved, args, seed)`, to which the caller
//! passes the arguments again. So the caller's context can hold the callee's.
//!
//! Before: `let h: Array2<f64> = layer(&x, &w);`
//! After (forward):  `let (h_3, c3__saved) = layer_call_forward(x, w);`
//! After (backward): `let (_, c3__g1) = layer_call_backward(c3__saved, x, w, d_h_3);`

use std::collections::BTreeMap;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::Ident;

use super::names::{camel_case, unraw, Names};
use super::static_code::{CtxField, Held};
use crate::ir::{Call, CallArg, Function, Kind, Op, Passing, ValueId};

/// The callee's path with its last segment renamed `{name}{suffix}` (keeping turbofish
/// arguments and the user's span, so errors point at the call).
fn renamed(call: &Call, suffix: &str) -> TokenStream {
    let mut path = call.path.clone();
    if let Some(last) = path.segments.last_mut() {
        last.ident = format_ident!("{}{}", unraw(&last.ident), suffix, span = last.ident.span());
    }
    quote!(#path)
}

/// The callee's saved-context type at the caller's float type.
fn saved_type(call: &Call, float: &TokenStream) -> TokenStream {
    let mut path = call.path.clone();
    if let Some(last) = path.segments.last_mut() {
        let camel = camel_case(&unraw(&last.ident));
        last.ident = format_ident!("{}CallContext", camel, span = last.ident.span());
        last.arguments = syn::PathArguments::None;
    }
    quote!(#path<#float>)
}

/// The local (and context field) holding the callee's saved context.
fn saved_ident(names: &Names, id: ValueId) -> Ident {
    format_ident!("{}c{}__saved", names.prefix(), id.0, span = Span::mixed_site())
}

/// The arguments, passed as the user passed them.
fn args(names: &Names, call: &Call) -> Vec<TokenStream> {
    call.args
        .iter()
        .map(|a| match a {
            CallArg::Const(tokens) | CallArg::FloatConst(tokens) => quote!(#tokens),
            CallArg::Value(v, passing) => {
                let arg = names.arg(*v);
                match (names.function.kind(*v), passing) {
                    (Kind::Scalar, _) => arg,
                    // A loop's carried state is an `ArcArray`; the callee takes `&Array`.
                    (_, Passing::Ref) if names.is_shared(*v) => quote!(&(#arg).to_owned()),
                    (_, Passing::Ref) => arg,
                    (_, Passing::Owned) => quote!((#arg).to_owned()),
                    (_, Passing::View) => quote!((#arg).view()),
                }
            }
        })
        .collect()
}

/// The context field holding the callee's saved context.
pub fn context_field(names: &Names, id: ValueId, call: &Call) -> CtxField {
    CtxField {
        ident: saved_ident(names, id),
        ty: saved_type(call, &names.float),
        held: Some(Held::Call),
    }
}

/// The call in forward: through the call protocol when backward needs the callee's
/// context (`keep`), else the user's function itself.
pub fn forward(names: &Names, id: ValueId, call: &Call, keep: bool) -> (TokenStream, String) {
    let (ident, args) = (names.ident(id), args(names, call));
    let label = format!(
        "{} = {}({})",
        names.text(id),
        call.path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default(),
        call.args.len()
    );
    if keep {
        let (forward, saved) = (renamed(call, "_call_forward"), saved_ident(names, id));
        (quote!(let (#ident, #saved) = #forward(#(#args),*);), label)
    } else {
        let path = &call.path;
        (quote!(let #ident = #path(#(#args),*);), label)
    }
}

/// A call's (or a custom rule's) step in backward.
pub struct CallBackward {
    pub code: TokenStream,
    /// `(argument, local holding its adjoint)`, for the caller to add.
    pub gradients: Vec<(ValueId, Ident)>,
    /// The plan's line.
    pub label: String,
    /// Whose gradients these are, for the plan: `"call's"` or `"rule's"`.
    pub whose: &'static str,
}

/// The backward of statement `id` if it is a call or a custom rule; `None` for any other op.
pub fn backward_of(
    function: &Function,
    names: &Names,
    id: ValueId,
    is_active: &dyn Fn(ValueId) -> bool,
    received: &BTreeMap<ValueId, usize>,
) -> Option<CallBackward> {
    let ((code, gradients, label), whose) = match &function.stmt(id).op {
        Op::Call(call) => (backward(function, names, id, call, is_active, received), "call's"),
        Op::Custom { call, vjp } => (
            custom_backward(function, names, id, call, vjp, is_active, received),
            "rule's",
        ),
        _ => return None,
    };
    Some(CallBackward {
        code,
        gradients,
        label,
        whose,
    })
}

/// The call in backward: the code, the `(argument value, local holding its adjoint)` pairs
/// for the caller to add, and the plan's line. `received` says which adjoints exist.
fn backward(
    function: &Function,
    names: &Names,
    id: ValueId,
    call: &Call,
    is_active: &dyn Fn(ValueId) -> bool,
    received: &BTreeMap<ValueId, usize>,
) -> (TokenStream, Vec<(ValueId, Ident)>, String) {
    let seed = seed(function, names, id, received);
    let (patterns, pairs) = bindings(names, id, call, is_active, 'c', true);
    let (backward, saved, args) = (
        renamed(call, "_call_backward"),
        saved_ident(names, id),
        args(names, call),
    );
    let code = quote!(let (#(#patterns,)*) = #backward(#saved, #(#args,)* #seed););
    let label = format!(
        "{} = {}_backward(d_{})",
        adjoint_list(names, &pairs),
        call.path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default(),
        names.text(id)
    );
    (code, pairs, label)
}

/// A custom rule's forward: the user's function itself.
pub fn custom_forward(names: &Names, id: ValueId, call: &Call) -> (TokenStream, String) {
    let (ident, args, path) = (names.ident(id), args(names, call), &call.path);
    let label = format!(
        "{} = {}(..) (custom rule)",
        names.text(id),
        path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default()
    );
    (quote!(let #ident = #path(#(#args),*);), label)
}

/// A custom rule's backward: the user's VJP, given the arguments, the output and the seed,
/// returns one gradient per float or array parameter (a tuple when there are several).
fn custom_backward(
    function: &Function,
    names: &Names,
    id: ValueId,
    call: &Call,
    vjp: &syn::Path,
    is_active: &dyn Fn(ValueId) -> bool,
    received: &BTreeMap<ValueId, usize>,
) -> (TokenStream, Vec<(ValueId, Ident)>, String) {
    let seed = seed(function, names, id, received);
    let (patterns, pairs) = bindings(names, id, call, is_active, 'r', false);
    let pattern = match patterns.as_slice() {
        [one] => one.clone(),
        many => quote!((#(#many,)*)),
    };
    let (args, output) = (args(names, call), names.arg(id));
    let code = quote!(let #pattern = #vjp(#(#args,)* #output, #seed););
    let label = format!(
        "{} = {}(.., {}, d_{})",
        adjoint_list(names, &pairs),
        quote!(#vjp).to_string().replace(' ', ""),
        names.text(id),
        names.text(id)
    );
    (code, pairs, label)
}

/// The seed of a call's backward: the result's adjoint, or zeros where none reached it.
fn seed(function: &Function, names: &Names, id: ValueId, received: &BTreeMap<ValueId, usize>) -> TokenStream {
    let float = &names.float;
    if received.contains_key(&id) {
        let d = names.adjoint(id);
        quote!(#d)
    } else if function.kind(id).is_array() {
        let dim = names.dim(id);
        quote!(::autodiff::ndarray::Array::zeros(#dim.clone()))
    } else {
        quote!(<#float as ::autodiff::runtime::Float>::of(0.0))
    }
}

/// The patterns binding what a call's backward returns, one per argument: a local
/// (`{tag}{id}__g{k}`) for each active value, `_` for the other values and, where the
/// backward returns an entry for them (`constants_bound`: the call protocol returns `()`),
/// for constants; and the `(argument, local)` pairs for the caller to add.
fn bindings(
    names: &Names,
    id: ValueId,
    call: &Call,
    is_active: &dyn Fn(ValueId) -> bool,
    tag: char,
    constants_bound: bool,
) -> (Vec<TokenStream>, Vec<(ValueId, Ident)>) {
    let mut pairs = Vec::new();
    let patterns = call
        .args
        .iter()
        .enumerate()
        .filter_map(|(k, a)| match a {
            CallArg::Value(v, _) if is_active(*v) => {
                let g = format_ident!("{}{}{}__g{}", names.prefix(), tag, id.0, k, span = Span::mixed_site());
                pairs.push((*v, g.clone()));
                Some(quote!(#g))
            }
            CallArg::Value(..) => Some(quote!(_)),
            CallArg::Const(_) | CallArg::FloatConst(_) => constants_bound.then(|| quote!(_)),
        })
        .collect();
    (patterns, pairs)
}

/// `d_a, d_b`: the adjoints a call's backward produces, for the plan.
fn adjoint_list(names: &Names, pairs: &[(ValueId, Ident)]) -> String {
    pairs
        .iter()
        .map(|(v, _)| format!("d_{}", names.text(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What backward reads besides the saved context: every argument again (values and
/// constants), and the result's shape when no adjoint may reach it.
pub fn reads(call: &Call) -> (Vec<ValueId>, Vec<TokenStream>) {
    let mut values = Vec::new();
    let mut tokens = Vec::new();
    for a in &call.args {
        match a {
            CallArg::Value(v, _) => values.push(*v),
            CallArg::Const(t) | CallArg::FloatConst(t) => tokens.push(t.clone()),
        }
    }
    (values, tokens)
}

/// The call on the tape: the callee's `_on_tape`, with `Var`s for values and float constants.
pub fn on_tape(call: &Call, var: &dyn Fn(ValueId) -> TokenStream, tape_of: &TokenStream) -> TokenStream {
    let on_tape = renamed(call, "_on_tape");
    let args = call.args.iter().map(|a| match a {
        CallArg::Const(tokens) => quote!(#tokens),
        CallArg::FloatConst(tokens) => quote!(&#tape_of.constant_scalar(#tokens)),
        CallArg::Value(v, _) => var(*v),
    });
    quote!(#on_tape(#(#args),*))
}
