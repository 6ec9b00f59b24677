//! The attribute's arguments: `#[differentiate]`, `#[differentiate(wrt(w, b))]`,
//! `#[differentiate(wrt(w), name = loss_params)]`, `#[differentiate(vjp = gelu_backward)]`.

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
    /// `vjp = path`: a custom derivative rule. The body is then not differentiated (it may
    /// be any Rust); both engines call this function for the backward.
    pub vjp: Option<syn::Path>,
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
                if !input.peek(syn::token::Paren) {
                    return Err(syn::Error::new(
                        key.span(),
                        "`wrt` takes a list of parameters: `wrt(w, b)`",
                    ));
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
                // Errors at the end of the arguments would have no token to sit on: put them on `name`.
                if !input.peek(Token![=]) || !input.peek2(Ident) {
                    return Err(syn::Error::new(
                        key.span(),
                        "`name` takes an identifier, the prefix of the generated items: `name = loss_params`",
                    ));
                }
                input.parse::<Token![=]>()?;
                args.name = Some(input.parse()?);
            } else if key == "vjp" {
                if args.vjp.is_some() {
                    return Err(syn::Error::new(key.span(), "`vjp` is given twice"));
                }
                if !input.peek(Token![=]) || input.peek2(Token![,]) || input.is_empty() {
                    return Err(syn::Error::new(
                        key.span(),
                        "`vjp` takes the path of the function computing this one's vector-Jacobian product: `vjp = gelu_backward`",
                    ));
                }
                input.parse::<Token![=]>()?;
                let path: syn::Path = input.parse().map_err(|_| {
                    syn::Error::new(
                        key.span(),
                        "`vjp` takes the path of the function computing this one's vector-Jacobian product: `vjp = gelu_backward`",
                    )
                })?;
                args.vjp = Some(path);
            } else {
                return Err(syn::Error::new(
                    key.span(),
                    format!("unknown argument `{key}`; supported: `wrt(param, ...)`, `name = prefix` and `vjp = backward_fn`"),
                ));
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(args)
    }
}

impl Args {
    /// The prefix of the generated items: `name = ..`, or the function's own name.
    pub fn prefix<'a>(&'a self, item: &'a syn::ItemFn) -> &'a Ident {
        self.name.as_ref().unwrap_or(&item.sig.ident)
    }
}

/// A second `#[differentiate]` still on the item (the outer attribute expands first and sees
/// the inner one) that would generate the same items: an error on that attribute, which
/// says to give it its own `name = ..`. Rustc would otherwise report `loss_grad` defined
/// twice, at the attribute, without saying what to do.
pub fn same_prefix_twice(args: &Args, item: &syn::ItemFn) -> Option<syn::Error> {
    let prefix = crate::codegen::unraw(args.prefix(item));
    item.attrs
        .iter()
        .filter(|attr| attr.path().segments.last().is_some_and(|s| s.ident == "differentiate"))
        .find_map(|attr| {
            let other = match &attr.meta {
                syn::Meta::Path(_) => Args::default(),
                syn::Meta::List(list) => list.parse_args::<Args>().ok()?,
                syn::Meta::NameValue(_) => return None,
            };
            (crate::codegen::unraw(other.prefix(item)) == prefix).then(|| {
                syn::Error::new_spanned(
                    attr,
                    format!(
                        "`{prefix}` already has a `#[differentiate]` that generates `{prefix}_grad`, `{prefix}_forward`, ...; \
                         give this one its own prefix: `#[differentiate(name = {prefix}_2, ..)]`"
                    ),
                )
            })
        })
}
