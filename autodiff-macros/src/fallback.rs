//! On error: the errors, the function unchanged, and stubs of the generated
//! functions, so that the user sees the real errors and not a cascade of
//! "cannot find `loss_grad`" (thiserror's `fallback.rs`).
//!
//! Each stub takes as many arguments as the real item would, of any type. `_grad` and
//! `_tape_grad` return their real types when the signature could be read (so that
//! `let (value, (dx, dw)) = loss_grad(..)` type-checks); the others return `!`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Ident, ItemFn};

use crate::ir::Kind;
use crate::signature::Signature;

pub fn expand(item: &ItemFn, name: Option<&Ident>, errors: TokenStream, signature: Option<&Signature>) -> TokenStream {
    let prefix = name.unwrap_or(&item.sig.ident).to_string();
    let prefix = prefix.trim_start_matches("r#");
    let vis = &item.vis;
    let n_params = item.sig.inputs.len();
    let arities = [
        ("grad", n_params),
        ("tape_grad", n_params),
        ("forward", n_params),
        ("backward", 2),
        ("on_tape", n_params),
        ("check", n_params),
        ("grad_source", 0),
    ];
    // With type parameters the stub could not infer them from `impl Sized` arguments: use `!` then.
    let has_type_params = item.sig.generics.type_params().next().is_some();
    let value_and_grads = signature.filter(|_| !has_type_params).map(|sig| {
        let float = &sig.float_ty;
        let grads = sig
            .wrt
            .iter()
            .filter_map(|&i| sig.params[i].kind)
            .map(|kind| match kind {
                Kind::Scalar => quote!(#float),
                Kind::Array(Some(n)) => {
                    let ix = format_ident!("Ix{}", n);
                    quote!(::autodiff::ndarray::Array<#float, ::autodiff::ndarray::#ix>)
                }
                Kind::Array(None) => quote!(::autodiff::ndarray::ArrayD<#float>),
            });
        (quote!(#float), quote!((#(#grads,)*)))
    });
    let context = format_ident!("{}Context", crate::codegen::camel_case(prefix));
    let stubs = arities.iter().map(|(suffix, arity)| {
        let ident = format_ident!("{}_{}", prefix, suffix);
        let params = (0..*arity).map(|i| {
            let p = format_ident!("_arg{}", i);
            quote!(#p: impl ::core::marker::Sized)
        });
        let output = match (*suffix, &value_and_grads) {
            ("grad" | "tape_grad", Some((float, grads))) => quote!((#float, #grads)),
            ("forward", Some((float, _))) => quote!((#float, #context)),
            ("backward", Some((_, grads))) => grads.clone(),
            _ => quote!(!),
        };
        quote! {
            #[allow(dead_code, unused_variables, clippy::all)]
            #vis fn #ident(#(#params),*) -> #output {
                ::core::unreachable!("`#[differentiate]` reported an error for this function")
            }
        }
    });
    let context_stub = value_and_grads.is_some().then(|| {
        quote! {
            #[allow(dead_code)]
            #vis struct #context;
        }
    });
    quote! {
        #errors
        #item
        #context_stub
        #(#stubs)*
    }
}
