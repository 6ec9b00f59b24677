//! `check!(path::to::loss, args..)` → `path::to::loss_check(args..)`, asserted;
//! `check!(loss, args..; rtol = 1e-4, atol = 1e-6)` judges the report with those
//! tolerances against finite differences (either or both; the others keep their defaults).

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Expr, Ident, Path, Token};

struct CheckInput {
    function: Path,
    args: Vec<Expr>,
    rtol: Option<Expr>,
    atol: Option<Expr>,
}

impl Parse for CheckInput {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let function: Path = input.parse()?;
        let mut args = Vec::new();
        if input.peek(Token![,]) {
            input.parse::<Token![,]>()?;
            while !input.is_empty() && !input.peek(Token![;]) {
                args.push(input.parse::<Expr>()?);
                if input.is_empty() || input.peek(Token![;]) {
                    break;
                }
                input.parse::<Token![,]>()?;
            }
        }
        let (mut rtol, mut atol) = (None, None);
        if input.peek(Token![;]) {
            let semicolon = input.parse::<Token![;]>()?;
            if input.is_empty() {
                return Err(syn::Error::new(
                    semicolon.span(),
                    "expected tolerances after `;`: `rtol = 1e-4`, `atol = 1e-6` or both, separated by a comma",
                ));
            }
            while !input.is_empty() {
                let name: Ident = input.parse().map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        "expected `rtol = ..` or `atol = ..` after `;` in `check!(f, args..; rtol = 1e-4, atol = 1e-6)`",
                    )
                })?;
                let slot = match name.to_string().as_str() {
                    "rtol" => &mut rtol,
                    "atol" => &mut atol,
                    other => {
                        return Err(syn::Error::new(
                            name.span(),
                            format!("unknown `check!` option `{other}`: the options are `rtol = ..` and `atol = ..` (the tolerance against finite differences is |a - b| <= atol + rtol·|b|)"),
                        ))
                    }
                };
                if slot.is_some() {
                    return Err(syn::Error::new(name.span(), format!("`{name}` is given twice")));
                }
                input.parse::<Token![=]>()?;
                *slot = Some(input.parse::<Expr>()?);
                if !input.is_empty() {
                    input.parse::<Token![,]>()?;
                }
            }
        } else if !input.is_empty() {
            return Err(input.error("expected `,` between arguments, or `;` before `rtol = ..`/`atol = ..`"));
        }
        Ok(CheckInput {
            function,
            args,
            rtol,
            atol,
        })
    }
}

pub fn expand(input: TokenStream) -> TokenStream {
    let CheckInput {
        mut function,
        args,
        rtol,
        atol,
    } = match syn::parse2(input) {
        Ok(parsed) => parsed,
        Err(e) => return e.to_compile_error(),
    };
    let Some(last) = function.segments.last_mut() else {
        return quote!(::core::compile_error!(
            "`check!` needs the name of a `#[differentiate]` function"
        ));
    };
    last.ident = format_ident!("{}_check", last.ident, span = last.ident.span());
    // Typed bindings, so that a tolerance of the wrong type is reported on the user's tokens.
    let rtol =
        rtol.map(|e| quote_spanned!(e.span()=> let __report = __report.with_rtol({ let __rtol: f64 = #e; __rtol });));
    let atol =
        atol.map(|e| quote_spanned!(e.span()=> let __report = __report.with_atol({ let __atol: f64 = #e; __atol });));
    quote! {{
        let __report: ::autodiff::runtime::gradcheck::CheckReport = #function(#(#args),*);
        #rtol
        #atol
        __report.assert_passed();
        __report
    }}
}
