//! The call protocol: what a `#[differentiate]` function publishes so that other
//! differentiated functions can call it (`calls.rs` is the caller's side).
//!
//! For `fn layer(x: &Array2<F>, w: &Array2<F>) -> Array2<F>` it emits:
//! - `struct LayerCallContext<F>`: what `layer`'s backward reads, owned (it borrows nothing, so a
//!   caller's context can hold it next to the values it was computed from);
//! - `layer_call_forward(x, w) -> (Array2<F>, LayerCallContext<F>)`;
//! - `layer_call_backward(saved, x, w, seed) -> (dx, dw)`: the caller passes the arguments
//!   again; one entry per parameter, `()` for constant parameters.
//!
//! Every float and array parameter gets its gradient here (the caller decides which it
//! uses), whatever the attribute's `wrt` says.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::{GenericParam, Ident, ItemFn};

use super::names::{camel_case, unraw, Names};
use super::static_code::Boundary;
use crate::activity;
use crate::ir::{Function, ParamRole};
use crate::liveness::ForwardLiveness;

/// The call protocol's items, or nothing when the function cannot be called from another
/// (its attribute renames it with `name = ..`, or it is generic over more than its float).
pub fn call_items(
    item: &ItemFn,
    prefix: &Ident,
    function: &Function,
    float: &syn::Type,
    analyses: crate::args::Analyses,
) -> TokenStream {
    let float_param = item.sig.generics.params.iter().find_map(|p| match p {
        GenericParam::Type(t) if t.ident == quote!(#float).to_string() => Some(t.ident.clone()),
        _ => None,
    });
    let only_float = item.sig.generics.params.iter().all(|p| match p {
        GenericParam::Lifetime(_) => true,
        GenericParam::Type(t) => Some(&t.ident) == float_param.as_ref(),
        GenericParam::Const(_) => false,
    });
    if *prefix != item.sig.ident || !only_float {
        return TokenStream::new();
    }

    // Every value parameter differentiated.
    let mut callable = function.clone();
    for param in &mut callable.params {
        if let ParamRole::Value { differentiated, .. } = &mut param.role {
            *differentiated = true;
        }
    }
    callable.wrt = (0..callable.params.len())
        .filter(|&i| matches!(callable.params[i].role, ParamRole::Value { .. }))
        .collect();
    let activity = activity::analyse(&callable, analyses.dead_gradients);
    let liveness = ForwardLiveness::of(&callable);
    let names = Names::new(&callable, float, analyses);
    let code = super::remat::generate_under_policy(&callable, &activity, &liveness, &names, &[], &Boundary::Call);

    let vis = &item.vis;
    let name = unraw(&item.sig.ident);
    let span = item.sig.ident.span();
    let saved = format_ident!("{}CallContext", camel_case(&name), span = span);
    let forward = format_ident!("{}_call_forward", name, span = span);
    let backward = format_ident!("{}_call_backward", name, span = span);
    let generic = float_param.unwrap_or_else(|| Ident::new("__F", Span::call_site()));
    let (impl_generics, _, where_clause) = item.sig.generics.split_for_impl();
    let out_ty = names.value_type(callable.kind(callable.output));

    let field_decls = code.fields.iter().map(|f| {
        let (ident, ty) = (&f.ident, &f.ty);
        quote!(#ident: #ty)
    });
    let field_idents: Vec<&Ident> = code.fields.iter().map(|f| &f.ident).collect();
    let counts = code.fields.iter().filter_map(|f| {
        let ident = &f.ident;
        f.held
            .as_ref()
            .map(|held| held.bytes(quote!(self.#ident), &quote!(#generic)))
    });
    let params: Vec<TokenStream> = item.sig.inputs.iter().map(|input| quote!(#input)).collect();
    let grads: Vec<Ident> = (0..callable.params.len())
        .map(|k| format_ident!("__grad{}", k, span = Span::mixed_site()))
        .collect();
    let value_grads = callable.wrt.iter().map(|&k| &grads[k]);
    let per_position = callable.params.iter().zip(&grads).map(|(p, g)| match p.role {
        ParamRole::Value { .. } => quote!(#g),
        ParamRole::Constant => quote!(()),
    });
    let grad_types = callable.params.iter().map(|p| match p.role {
        ParamRole::Value { kind, .. } => names.value_type(kind),
        ParamRole::Constant => quote!(()),
    });
    let (forward_body, backward_body) = (&code.forward_body, &code.backward_body);
    let saved_doc = format!(
        "What `{name}`'s backward reads when another differentiated function calls it (owned: it borrows nothing)."
    );
    quote! {
        #[doc = #saved_doc]
        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code)]
        #vis struct #saved<#generic> {
            #(#field_decls,)*
            __marker: ::core::marker::PhantomData<fn() -> #generic>,
        }

        impl<#generic> #saved<#generic> {
            /// Bytes of the arrays this context owns.
            #[allow(dead_code)]
            pub fn held_bytes(&self) -> usize {
                0 #(+ #counts)*
            }
        }

        #[doc(hidden)]
        #[allow(clippy::all, unused_variables, unused_parens, non_snake_case, dead_code)]
        #vis fn #forward #impl_generics (#(#params),*) -> (#out_ty, #saved<#float>) #where_clause {
            #forward_body
            (__value, #saved { #(#field_idents,)* __marker: ::core::marker::PhantomData })
        }

        #[doc(hidden)]
        #[allow(clippy::all, unused_variables, unused_parens, unused_mut, non_snake_case, dead_code)]
        #vis fn #backward #impl_generics (__saved: #saved<#float>, #(#params,)* __seed: #out_ty) -> (#(#grad_types,)*) #where_clause {
            let #saved { #(#field_idents,)* .. } = __saved;
            let (#(#value_grads,)*) = { #backward_body };
            (#(#per_position,)*)
        }
    }
}
