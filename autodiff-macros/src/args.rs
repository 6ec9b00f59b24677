//! The attribute's arguments: `#[differentiate]`, `#[differentiate(wrt(w, b))]`,
//! `#[differentiate(wrt(w), name = loss_params)]`.

use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Ident, Token};

/// Parsed attribute arguments.
#[derive(Default)]
pub struct Args {
    /// `wrt(a, b)`: the parameters to differentiate with respect to, in order.
    /// `None` means every float or array parameter.
    pub wrt: Option<Vec<Ident>>,
    /// `name = prefix`: the prefix of the generated items instead of the function's name,
    /// so that one function can be differentiated in several ways.
    pub name: Option<Ident>,
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = Args::default();
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            if key == "wrt" {
                if args.wrt.is_some() {
                    return Err(syn::Error::new(key.span(), "`wrt` is given twice"));
                }
                let content;
                syn::parenthesized!(content in input);
                let names = Punctuated::<Ident, Token![,]>::parse_terminated(&content)?;
                if names.is_empty() {
                    return Err(syn::Error::new(
                        key.span(),
                        "`wrt()` names no parameter; list at least one, e.g. `wrt(w, b)`, or leave `wrt` out to differentiate every float or array parameter",
                    ));
                }
                args.wrt = Some(names.into_iter().collect());
            } else if key == "name" {
                if args.name.is_some() {
                    return Err(syn::Error::new(key.span(), "`name` is given twice"));
                }
                input.parse::<Token![=]>()?;
                args.name = Some(input.parse()?);
            } else {
                return Err(syn::Error::new(
                    key.span(),
                    format!("unknown argument `{key}`; supported: `wrt(param, ...)` and `name = prefix`"),
                ));
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(args)
    }
}
