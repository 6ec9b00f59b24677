//! The `<name>_check` item: the three-way gradient check (static, tape, finite differences).

use proc_macro2::TokenStream;
use quote::quote;
use syn::ItemFn;

use super::Items;
use crate::ir::{Function, Kind, ParamRole};

pub(super) fn check_item(
    item: &ItemFn,
    function: &Function,
    idents: &Items,
    original_params: &[TokenStream],
    float: &syn::Type,
) -> TokenStream {
    let vis = &item.vis;
    let fn_ident = &item.sig.ident;
    let Items {
        grad, tape_grad, check, ..
    } = idents;
    let (impl_generics, _, where_clause) = item.sig.generics.split_for_impl();
    // Arguments re-passed on every call: references are Copy, owned values are cloned.
    let pass = |index: usize, replacement: Option<TokenStream>| -> Vec<TokenStream> {
        function
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let ident = &p.ident;
                if i == index {
                    return replacement.clone().unwrap_or_default();
                }
                match &p.ty {
                    syn::Type::Reference(_) => quote!(#ident),
                    _ => quote!(::core::clone::Clone::clone(&#ident)),
                }
            })
            .collect()
    };
    let all = pass(usize::MAX, None);
    let prefix_name = idents.grad.to_string().trim_end_matches("_grad").to_string();
    let mut entries = TokenStream::new();
    for (position, &index) in function.wrt.iter().enumerate() {
        let p = &function.params[index];
        let name = p.ident.to_string();
        let pos = syn::Index::from(position);
        let ParamRole::Value { kind, by_ref, .. } = p.role else {
            continue;
        };
        let ident = &p.ident;
        let entry = if kind == Kind::Scalar {
            let args = pass(index, Some(quote!(__p)));
            quote! {
                let __numeric = ::autodiff::runtime::gradcheck::numeric_derivative(|__p| #fn_ident(#(#args),*), #ident, ::autodiff::runtime::gradcheck::default_step::<#float>());
                __entries.push(::autodiff::runtime::gradcheck::CheckEntry::new_scalar(#name, __static.1.#pos, __tape.1.#pos, __numeric));
            }
        } else {
            let arg = if by_ref {
                quote!(__p)
            } else {
                quote!(::core::clone::Clone::clone(__p))
            };
            let args = pass(index, Some(arg));
            let at = if by_ref { quote!(#ident) } else { quote!(&#ident) };
            quote! {
                let __numeric = ::autodiff::runtime::gradcheck::numeric_gradient(|__p| #fn_ident(#(#args),*), #at, ::autodiff::runtime::gradcheck::default_step::<#float>());
                __entries.push(::autodiff::runtime::gradcheck::CheckEntry::new(#name, &__static.1.#pos, &__tape.1.#pos, &__numeric));
            }
        };
        entries.extend(entry);
    }
    let doc = format!("Checks the static and tape gradients of `{fn_ident}` against each other and against central finite differences at the given point.");
    quote! {
        #[doc = #doc]
        #[allow(clippy::all, unused_variables, non_snake_case)]
        #vis fn #check #impl_generics (#(#original_params),*) -> ::autodiff::runtime::gradcheck::CheckReport #where_clause {
            let __static = #grad(#(#all),*);
            let __tape = #tape_grad(#(#all),*);
            let mut __entries = ::std::vec::Vec::new();
            #entries
            ::autodiff::runtime::gradcheck::CheckReport {
                function: #prefix_name,
                float: <#float as ::autodiff::runtime::Float>::NAME,
                entries: __entries,
            }
        }
    }
}
