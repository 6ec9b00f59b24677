//! On error: the errors, the function unchanged, and stubs of the generated
//! functions, so that the user sees the real errors and not a cascade of
//! "cannot find `loss_grad`" (thiserror's `fallback.rs`).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Ident, ItemFn};

pub fn expand(item: &ItemFn, name: Option<&Ident>, errors: TokenStream) -> TokenStream {
    let prefix = name.unwrap_or(&item.sig.ident).to_string();
    let prefix = prefix.trim_start_matches("r#");
    let vis = &item.vis;
    let stubs = [
        "grad",
        "tape_grad",
        "forward",
        "backward",
        "on_tape",
        "check",
        "grad_source",
    ]
    .iter()
    .map(|suffix| {
        let ident = format_ident!("{}_{}", prefix, suffix);
        quote! {
            #[allow(dead_code, unused_variables)]
            #vis fn #ident(_: impl ::core::any::Any) -> ! {
                ::core::unreachable!("`#[differentiate]` reported an error for this function")
            }
        }
    });
    quote! {
        #errors
        #item
        #(#stubs)*
    }
}
