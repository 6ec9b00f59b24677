//! `#[differentiate]`: a small compiler from a subset of Rust over ndarray to static
//! reverse-mode gradient code. See the `autodiff` crate for the user documentation
//! and `ARCHITECTURE.md` for the map of this crate.
//!
//! Pipeline: `args` + `signature` (what the signature says) → `lower` (body to IR,
//! with kind inference) → `activity` (which adjoints exist) → `rules` (derivative of
//! each op, as runtime kernel calls) → `codegen` (liveness, static and tape code).
//! Every pass reports errors through `ctxt::Ctxt`; on error, `fallback` emits the
//! errors plus stubs so that the user sees only the real errors.

mod activity;
mod args;
mod check;
mod codegen;
mod ctxt;
mod fallback;
mod ir;
mod kernel;
mod literals;
mod liveness;
mod lower;
mod op_table;
mod rules;
mod scalar;
mod shapes;
mod signature;
mod ungroup;

#[cfg(test)]
mod fuzz;

use proc_macro::TokenStream;
use quote::quote;

/// Generates a reverse-mode gradient function (and its halves, a tape version, a
/// checker and a plan) beside the annotated function. See the `autodiff` crate docs.
#[proc_macro_attribute]
pub fn differentiate(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_differentiate(args.into(), item.into()).into()
}

/// The attribute's work over `proc_macro2` tokens, so that unit tests (the fuzz test in
/// `fuzz.rs`) can run it outside a real macro invocation.
fn expand_differentiate(
    args: proc_macro2::TokenStream,
    item_tokens: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let item: syn::ItemFn = match syn::parse2(item_tokens.clone()) {
        Ok(item) => item,
        Err(_) => {
            let error = syn::Error::new_spanned(
                &item_tokens,
                "`#[differentiate]` applies to a function: `fn loss(x: &Array1<f64>) -> f64 { ... }`",
            );
            let error = error.to_compile_error();
            return quote!(#error #item_tokens);
        }
    };
    let args = match syn::parse2::<args::Args>(args) {
        Ok(args) => args,
        Err(error) => return fallback::expand(&item, None, error.to_compile_error(), None),
    };
    if let Some(error) = args::same_prefix_twice(&args, &item) {
        // No stubs: the other attribute generates the items.
        let error = error.to_compile_error();
        return quote!(#error #item);
    }
    let mut item = item;
    ungroup::apply(&mut item);
    match try_expand(&args, &mut item) {
        Ok(tokens) => tokens,
        Err(failure) => {
            let (errors, signature) = *failure;
            fallback::expand(&item, args.name.as_ref(), errors, signature.as_ref())
        }
    }
}

/// The expansion, or the errors and (when the signature could be read) the signature,
/// from which the fallback stubs get their real types.
type Expansion = Result<proc_macro2::TokenStream, Box<(proc_macro2::TokenStream, Option<signature::Signature>)>>;

/// Expands `item`, which is left with its integer literals that meet floats rewritten
/// as floats (`literals.rs`), whether or not the expansion succeeds.
fn try_expand(args: &args::Args, item: &mut syn::ItemFn) -> Expansion {
    let cx = ctxt::Ctxt::default();
    let signature = signature::read(&cx, item, args);
    let (function, literals) = match (&signature, &args.vjp) {
        // A custom rule: the body is the user's to write, and is not read.
        (Some(sig), Some(vjp)) => (lower::custom(&cx, item, sig, vjp), literals::Rewrites::default()),
        (Some(sig), None) => lower::lower(&cx, item, sig),
        (None, _) => (None, literals::Rewrites::default()),
    };
    literals::apply(item, &literals);
    if let Err(errors) = cx.check() {
        return Err(Box::new((errors, signature)));
    }
    let (Some(signature), Some(function)) = (signature, function) else {
        let error = quote!(::core::compile_error!("`#[differentiate]` could not read this function"););
        return Err(Box::new((error, None)));
    };
    let activity = activity::analyse(&function, args.analyses.dead_gradients);
    let prefix = args.name.clone().unwrap_or_else(|| item.sig.ident.clone());
    let item = &*item;
    let generated = codegen::expand(item, &prefix, &function, &activity, &signature.float_ty, args.analyses);
    // The function stays as written. It is the reference the generated `_check` compares
    // against, so a caller who only uses `loss_grad` should not be told it is unused.
    Ok(quote!(#[allow(dead_code, clippy::needless_range_loop)] #item #generated))
}

/// `check!(loss, &x, &w, &b)` or `check!(loss, &x, &w, &b; rtol = 1e-4, atol = 1e-6)`:
/// checks the static gradient of a `#[differentiate]` function, its tape gradient and
/// central finite differences (in f64 whenever the function can run in f64) against each
/// other at the given point, element by element with `|a - b| <= atol + rtol·|b|`
/// (defaults chosen per precision), excusing elements near a kink; panics with the report
/// if any element fails, and returns the report.
#[proc_macro]
pub fn check(input: TokenStream) -> TokenStream {
    check::expand(input.into()).into()
}
