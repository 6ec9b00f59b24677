//! On error: the errors, the function, and stubs of the generated items, so that the
//! user sees the real errors and not a cascade of "cannot find `loss_grad`" or "type
//! annotations needed" at their call sites (thiserror's `fallback.rs`).
//!
//! When the signature could be read, `_grad`, `_tape_grad`, `_forward`, `_backward` and
//! `_check` take the function's own generics and parameters and return their real types,
//! so `let (value, (dx, dw)) = loss_grad(&x, &w);` and `check!(loss, ..)` type-check as
//! they will once the error is fixed. Otherwise they take arguments of any type and
//! return `!`. A float type parameter without its `Float` bound gets the bound in the
//! emitted function, so the one error said is the macro's ("add `F: Float`").

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{FnArg, Ident, ItemFn};

use crate::codegen::Items;
use crate::ir::Kind;
use crate::signature::{self, Signature};

pub fn expand(item: &ItemFn, name: Option<&Ident>, errors: TokenStream, signature: Option<&Signature>) -> TokenStream {
    let mut item = item.clone();
    let float_bound_added = signature.is_none() && add_missing_float_bound(&mut item);
    let items = Items::new(name.unwrap_or(&item.sig.ident));
    let vis = &item.vis;
    let has_receiver = item.sig.inputs.iter().any(|input| matches!(input, FnArg::Receiver(_)));
    let typed = signature.filter(|_| !has_receiver && !float_bound_added);

    let generics = &item.sig.generics;
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    let inputs = &item.sig.inputs;
    let any_args = |arity: usize| {
        let params = (0..arity).map(|i| {
            let p = format_ident!("_arg{}", i);
            quote!(#p: impl ::core::marker::Sized)
        });
        quote!(<>(#(#params),*))
    };
    let body = quote!({ ::core::unreachable!("`#[differentiate]` reported an error for this function") });
    let allow = quote!(#[allow(dead_code, unused_variables, unused_mut, clippy::all)]);
    let Items {
        forward,
        backward,
        grad,
        on_tape,
        tape_grad,
        check,
        plan,
        source,
        context,
        vjp,
        tape_vjp,
        residual_bytes,
    } = &items;

    let typed_stubs = match typed {
        Some(sig) => {
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
                    Kind::Slice(Some(n)) => {
                        let ix = format_ident!("Ix{}", n);
                        quote!(::std::vec::Vec<::autodiff::ndarray::Array<#float, ::autodiff::ndarray::#ix>>)
                    }
                    Kind::Slice(None) => quote!(::std::vec::Vec<::autodiff::ndarray::ArrayD<#float>>),
                    Kind::Loop => quote!(()),
                    Kind::Bool => quote!(bool),
                });
            let grads = quote!((#(#grads,)*));
            let real = quote!(#impl_generics (#inputs));
            let out = match &item.sig.output {
                syn::ReturnType::Type(_, ty) => quote!(#ty),
                syn::ReturnType::Default => quote!(#float),
            };
            let with_seed = quote!(#impl_generics (#inputs, seed: #out));
            let entry = if sig.output == Kind::Scalar {
                quote! {
                    #allow #vis fn #grad #real -> (#float, #grads) #where_clause #body
                    #allow #vis fn #tape_grad #real -> (#float, #grads) #where_clause #body
                    #allow #vis fn #check #real -> ::autodiff::runtime::gradcheck::CheckReport #where_clause #body
                }
            } else {
                quote! {
                    #allow #vis fn #vjp #with_seed -> (#out, #grads) #where_clause #body
                    #allow #vis fn #tape_vjp #with_seed -> (#out, #grads) #where_clause #body
                }
            };
            quote! {
                #allow #vis struct #context;
                #entry
                #allow #vis fn #forward #real -> (#out, #context) #where_clause #body
                #allow #vis fn #residual_bytes #real -> ::core::option::Option<usize> #where_clause #body
                #allow #vis fn #backward #impl_generics (ctx: #context, seed: #out) -> #grads #where_clause #body
            }
        }
        None => {
            let n = inputs.len();
            let (all, two) = (any_args(n), any_args(2));
            quote! {
                #allow #vis fn #grad #all -> ! #body
                #allow #vis fn #tape_grad #all -> ! #body
                #allow #vis fn #forward #all -> ! #body
                #allow #vis fn #residual_bytes #all -> ! #body
                #allow #vis fn #backward #two -> ! #body
                #allow #vis fn #check #all -> ! #body
            }
        }
    };
    let on_tape_args = any_args(inputs.len());
    let name_text = items.grad.to_string().trim_end_matches("_grad").to_string();
    // The call protocol, for callers (`codegen/call_code.rs`), when it would be emitted.
    let call_stubs = if name.is_none() {
        let fn_name = crate::codegen::unraw(&item.sig.ident);
        let span = item.sig.ident.span();
        let saved = format_ident!("{}CallContext", crate::codegen::camel_case(&fn_name), span = span);
        let call_forward = format_ident!("{}_call_forward", fn_name, span = span);
        let call_backward = format_ident!("{}_call_backward", fn_name, span = span);
        let (forward_args, backward_args) = (any_args(inputs.len()), any_args(inputs.len() + 2));
        quote! {
            #[doc(hidden)] #allow #vis struct #saved<__F>(::core::marker::PhantomData<__F>);
            impl<__F> #saved<__F> {
                #[allow(dead_code)]
                pub fn held_bytes(&self) -> usize { 0 }
            }
            #[doc(hidden)] #allow #vis fn #call_forward #forward_args -> ! #body
            #[doc(hidden)] #allow #vis fn #call_backward #backward_args -> ! #body
        }
    } else {
        TokenStream::new()
    };
    quote! {
        #errors
        #item
        #typed_stubs
        #call_stubs
        #allow #vis fn #on_tape #on_tape_args -> ! #body
        #allow #vis fn #source() -> &'static str {
            "// `#[differentiate]` reported an error for this function"
        }
        #allow #vis const #plan: ::autodiff::Plan = ::autodiff::Plan {
            function: #name_text,
            wrt: &[],
            forward: &[],
            backward: &[],
            eliminated: &[],
            saved: &[],
            save: "auto",
            residuals: &[],
        };
    }
}

/// Adds `F: Float` to the function's float type parameter when the macro reported it missing.
fn add_missing_float_bound(item: &mut ItemFn) -> bool {
    let syn::ReturnType::Type(_, float_ty) = &item.sig.output else {
        return false;
    };
    let Some(param) = signature::unbounded_float_param(item, float_ty).cloned() else {
        return false;
    };
    let where_clause = item.sig.generics.make_where_clause();
    where_clause
        .predicates
        .push(syn::parse_quote!(#param: ::autodiff::runtime::Float));
    true
}
