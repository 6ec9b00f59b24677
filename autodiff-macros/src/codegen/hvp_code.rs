//! The `<name>_jvp` and `<name>_hvp` items: forward mode and Hessian-vector products, by
//! running the function, or its generated `_grad`, at dual numbers
//! (`::autodiff::runtime::dual::Dual<F>`, which implements `Float`).
//!
//! Before:
//! ```text
//! #[differentiate]
//! fn loss<F: Float>(x: &Array2<F>, w: &Array2<F>, s: F) -> F { .. }
//! ```
//! After (beside `loss_grad` and the rest):
//! ```text
//! fn loss_jvp<F: Float>(x: &Array2<F>, w: &Array2<F>, s: F,
//!                       directions: &(Array2<F>, Array2<F>, F)) -> (F, F) {
//!     let x = dual::seed(x, &directions.0);   // x + dx·ε
//!     ..
//!     let y = loss::<Dual<F>>(&x, &w, s);     // the user's function, at duals
//!     (y.value, y.tangent)                    // the value, and ∇loss · directions
//! }
//! fn loss_hvp<F: Float>(.., directions: &(..)) -> (F, (grads), (hvps)) {
//!     ..                                      // the same dual arguments
//!     let (y, g) = loss_grad::<Dual<F>>(&x, &w, s);
//!     // values of g: the gradient; tangents of g: H·directions (forward over reverse)
//! }
//! ```
//!
//! Both are emitted only where the function can be called at `Dual<F>`: its float type is
//! one of its type parameters, bounded only by traits a dual number has too, and no
//! constant parameter mentions it (the same condition as `_check`'s `f64` reference,
//! [`f64_reference`]), and it returns a float. A function with a concrete float type
//! (`f64`), or a layer (returning an array), gets neither.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::{GenericParam, Ident, ItemFn};

use super::check_code::f64_reference;
use super::names::unraw;
use super::Items;
use crate::ir::{Function, Kind, ParamRole};

/// `_jvp` and `_hvp`, or nothing when the function cannot run at dual numbers.
pub(super) fn hvp_items(
    item: &ItemFn,
    prefix: &Ident,
    function: &Function,
    idents: &Items,
    original_params: &[TokenStream],
    float: &syn::Type,
    grads_ty: &TokenStream,
) -> TokenStream {
    let Some(float_ident) = f64_reference(item, function, float) else {
        return TokenStream::new();
    };
    if function.kind(function.output) != Kind::Scalar {
        return TokenStream::new();
    }
    let vis = &item.vis;
    let fn_ident = &item.sig.ident;
    let grad = &idents.grad;
    let generics = &item.sig.generics;
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    let dual_mod = quote!(::autodiff::runtime::dual);
    let dual_float = quote!(#dual_mod::Dual<#float>);

    // `::<Dual<F>, T, N>`: the function's type and const parameters, the float replaced.
    let turbofish_args: Vec<TokenStream> = generics
        .params
        .iter()
        .filter_map(|p| match p {
            GenericParam::Type(t) if t.ident == float_ident => Some(dual_float.clone()),
            GenericParam::Type(t) => {
                let ident = &t.ident;
                Some(quote!(#ident))
            }
            GenericParam::Const(c) => {
                let ident = &c.ident;
                Some(quote!(#ident))
            }
            GenericParam::Lifetime(_) => None,
        })
        .collect();
    let turbofish = quote!(::<#(#turbofish_args),*>);

    // The directions parameter, named so that it cannot clash with the user's parameters.
    let directions = if function.params.iter().any(|p| unraw(&p.ident) == "directions") {
        Ident::new("__directions", Span::call_site())
    } else {
        Ident::new("directions", Span::call_site())
    };

    // Each float or array argument made dual: seeded with its direction if differentiated,
    // a constant otherwise; constants are passed as they are.
    let mut conversions = TokenStream::new();
    let mut args = Vec::new();
    for (index, p) in function.params.iter().enumerate() {
        let ident = &p.ident;
        let ParamRole::Value { kind, by_ref, view, .. } = p.role else {
            args.push(quote!(#ident));
            continue;
        };
        let dual = Ident::new(&format!("__dual_{}", unraw(ident)), Span::mixed_site());
        let position = function.wrt.iter().position(|&i| i == index).map(syn::Index::from);
        let name = unraw(ident);
        let conversion = match (kind, &position) {
            (Kind::Scalar | Kind::Loop | Kind::Bool, _) => {
                let value = if by_ref { quote!(*#ident) } else { quote!(#ident) };
                match &position {
                    Some(pos) => quote!(#dual_mod::Dual::new(#value, #directions.#pos)),
                    None => quote!(#dual_mod::Dual::constant(#value)),
                }
            }
            (Kind::Slice(_), Some(pos)) => {
                let message = format!("{{}} directions for the {{}} elements of `{name}`");
                quote! {{
                    assert_eq!(#ident.len(), #directions.#pos.len(), #message, #directions.#pos.len(), #ident.len());
                    #ident
                        .iter()
                        .zip(#directions.#pos.iter())
                        .map(|(__a, __d)| #dual_mod::seed(__a, __d))
                        .collect::<::std::vec::Vec<_>>()
                }}
            }
            (Kind::Slice(_), None) => {
                quote!(#ident.iter().map(|__a| #dual_mod::constant(__a)).collect::<::std::vec::Vec<_>>())
            }
            (Kind::Array(_), _) => {
                let source = if by_ref { quote!(#ident) } else { quote!(&#ident) };
                match &position {
                    Some(pos) => quote!(#dual_mod::seed(#source, &#directions.#pos)),
                    None => quote!(#dual_mod::constant(#source)),
                }
            }
        };
        conversions.extend(quote!(let #dual = #conversion;));
        args.push(match (kind, by_ref, view) {
            (Kind::Slice(_), ..) => quote!(&#dual),
            (_, true, true) => quote!(&#dual.view()),
            (_, false, true) => quote!(#dual.view()),
            (_, true, false) => quote!(&#dual),
            (_, false, false) => quote!(#dual),
        });
    }

    let splits: Vec<TokenStream> = (0..function.wrt.len())
        .map(|position| {
            let pos = syn::Index::from(position);
            let (g, h) = (format_ident!("__g{}", position), format_ident!("__h{}", position));
            quote!(let (#g, #h) = #dual_mod::Split::split(__grads.#pos);)
        })
        .collect();
    let gradients = (0..function.wrt.len()).map(|position| format_ident!("__g{}", position));
    let products = (0..function.wrt.len()).map(|position| format_ident!("__h{}", position));

    let wrt_names = function
        .wrt
        .iter()
        .map(|&i| unraw(&function.params[i].ident))
        .collect::<Vec<_>>()
        .join(", ");
    let name = unraw(prefix);
    let (jvp, hvp) = (
        format_ident!("{}_jvp", name, span = prefix.span()),
        format_ident!("{}_hvp", name, span = prefix.span()),
    );
    let jvp_doc = format!(
        "The value of `{fn_ident}` and its directional derivative along `{directions}` (one direction per parameter in ({wrt_names}), shaped like the gradients of `{grad}`), by forward mode: `{fn_ident}` run at dual numbers whose tangents are the directions."
    );
    let hvp_doc = format!(
        "The value of `{fn_ident}`, its gradients with respect to ({wrt_names}), and the Hessian-vector products along `{directions}` (shaped like the gradients), by forward over reverse: `{grad}` run at dual numbers whose tangents are the directions. About the cost of two gradients."
    );
    quote! {
        #[doc = #jvp_doc]
        #[allow(clippy::all, unused_variables, non_snake_case)]
        #vis fn #jvp #impl_generics (#(#original_params,)* #directions: &#grads_ty) -> (#float, #float) #where_clause {
            #conversions
            let __value = #fn_ident #turbofish (#(#args),*);
            (__value.value, __value.tangent)
        }

        #[doc = #hvp_doc]
        #[allow(clippy::all, unused_variables, non_snake_case)]
        #vis fn #hvp #impl_generics (#(#original_params,)* #directions: &#grads_ty) -> (#float, #grads_ty, #grads_ty) #where_clause {
            #conversions
            let (__value, __grads) = #grad #turbofish (#(#args),*);
            #(#splits)*
            (__value.value, (#(#gradients,)*), (#(#products,)*))
        }
    }
}
