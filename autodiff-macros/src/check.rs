//! `check!(path::to::loss, args...)` → `path::to::loss_check(args...)`, asserted.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Path, Token};

struct CheckInput {
    function: Path,
    args: Punctuated<Expr, Token![,]>,
}

impl Parse for CheckInput {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let function: Path = input.parse()?;
        let args = if input.is_empty() {
            Punctuated::new()
        } else {
            input.parse::<Token![,]>()?;
            Punctuated::parse_terminated(input)?
        };
        Ok(CheckInput { function, args })
    }
}

pub fn expand(input: TokenStream) -> TokenStream {
    let CheckInput { mut function, args } = match syn::parse2(input) {
        Ok(parsed) => parsed,
        Err(e) => return e.to_compile_error(),
    };
    let Some(last) = function.segments.last_mut() else {
        return quote!(::core::compile_error!(
            "`check!` needs the name of a `#[differentiate]` function"
        ));
    };
    last.ident = format_ident!("{}_check", last.ident, span = last.ident.span());
    let args = args.iter();
    quote! {{
        let __report = #function(#(#args),*);
        __report.assert_within(__report.default_tolerance());
        __report
    }}
}
