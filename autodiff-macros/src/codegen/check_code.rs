//! The `<name>_check` item: the three-way gradient check (static, tape, finite differences).
//!
//! The static and tape gradients are computed in the function's own float type. The
//! finite-difference reference is computed in `f64` whenever the function can be called at
//! `f64` ([`f64_reference`]): then every float and float-array argument is converted to
//! `f64` and the user's function is called as `loss::<f64, ..>(..)`. Otherwise (a function
//! fixed to `f32`, or one whose constants mention its float type) the reference is computed
//! in the function's own type, with the step and tolerance of that type.

use proc_macro2::{TokenStream, TokenTree};
use quote::{format_ident, quote};
use syn::{GenericParam, Ident, ItemFn, TypeParamBound, WherePredicate};

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
    let generics = &item.sig.generics;
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    let gradcheck = quote!(::autodiff::runtime::gradcheck);
    let f64_float = f64_reference(item, function, float);

    // Turbofish arguments: the function's type and const parameters in declaration order
    // (lifetimes omitted), so that a parameter no argument mentions cannot break inference.
    let turbofish = |replace: Option<&Ident>| -> TokenStream {
        let args: Vec<TokenStream> = generics
            .params
            .iter()
            .filter_map(|p| match p {
                GenericParam::Type(t) if Some(&t.ident) == replace => Some(quote!(f64)),
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
        if args.is_empty() {
            TokenStream::new()
        } else {
            quote!(::<#(#args),*>)
        }
    };
    let own_args = turbofish(None);
    let reference_args = turbofish(f64_float.as_ref());

    // The reference point: in f64 mode each float value converted once (`__ref_<name>`).
    let mut conversions = TokenStream::new();
    let reference_ident = |p: &crate::ir::Param| format_ident!("__ref_{}", p.ident);
    if f64_float.is_some() {
        for p in &function.params {
            let ParamRole::Value { kind, by_ref, .. } = p.role else {
                continue;
            };
            let (ident, converted) = (&p.ident, reference_ident(p));
            let conversion = match (kind, by_ref) {
                (Kind::Scalar | Kind::Loop | Kind::Bool, _) => quote!(#gradcheck::to_f64(#ident)),
                (Kind::Slice(_), _) => {
                    quote!(#ident.iter().map(|__a| #gradcheck::array_to_f64(__a)).collect::<::std::vec::Vec<_>>())
                }
                (_, true) => quote!(#gradcheck::array_to_f64(#ident)),
                (_, false) => quote!(#gradcheck::array_to_f64(&#ident)),
            };
            conversions.extend(quote!(let #converted = #conversion;));
        }
    }

    // The arguments of one call of the function at the reference point, `replacement`
    // standing for parameter `index`. Re-passed on every call: references are Copy, owned
    // values are cloned.
    let pass = |index: usize, replacement: Option<TokenStream>| -> Vec<TokenStream> {
        function
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                if i == index {
                    return replacement.clone().unwrap_or_default();
                }
                let ident = &p.ident;
                match (&p.role, f64_float.is_some()) {
                    (ParamRole::Value { kind, by_ref, view, .. }, true) => {
                        let converted = reference_ident(p);
                        match kind {
                            Kind::Scalar | Kind::Loop | Kind::Bool => quote!(#converted),
                            Kind::Array(_) => array_argument(quote!((&#converted)), *by_ref, *view),
                            Kind::Slice(_) => quote!(&#converted),
                        }
                    }
                    _ => match &p.ty {
                        syn::Type::Reference(_) => quote!(#ident),
                        _ => quote!(::core::clone::Clone::clone(&#ident)),
                    },
                }
            })
            .collect()
    };
    // The float type the reference is computed in, and the call of the function there.
    let (reference_float, reference) = match &f64_float {
        Some(_) => (quote!(f64), quote!(#gradcheck::Reference::F64FiniteDifferences)),
        None => (quote!(#float), quote!(#gradcheck::Reference::of::<#float>())),
    };
    let step = quote!(<#reference_float as ::autodiff::runtime::Float>::of(__reference.step()));
    let prefix_name = idents.grad.to_string().trim_end_matches("_grad").to_string();
    let mut entries = TokenStream::new();
    for (position, &index) in function.wrt.iter().enumerate() {
        let p = &function.params[index];
        let name = p.ident.to_string();
        let pos = syn::Index::from(position);
        let ParamRole::Value { kind, by_ref, view, .. } = p.role else {
            continue;
        };
        let ident = &p.ident;
        // The point probed: the converted value in f64 mode, the argument itself otherwise.
        let at = match &f64_float {
            Some(_) => {
                let converted = reference_ident(p);
                if kind == Kind::Scalar {
                    quote!(#converted)
                } else {
                    quote!(&#converted)
                }
            }
            None if kind == Kind::Scalar || by_ref => quote!(#ident),
            None => quote!(&#ident),
        };
        let entry = if let Kind::Slice(_) = kind {
            // Each element of the slice is probed in turn, in a copy of the slice.
            let args = pass(index, Some(quote!(&__s)));
            let at = match &f64_float {
                Some(_) => {
                    let converted = reference_ident(p);
                    quote!(#converted)
                }
                None => quote!(#ident),
            };
            quote! {
                for __j in 0..#at.len() {
                    let __probe = #gradcheck::probe_gradient(
                        |__p| {
                            let mut __s = #at.to_vec();
                            __s[__j] = ::core::clone::Clone::clone(__p);
                            #fn_ident #reference_args (#(#args),*)
                        },
                        &#at[__j],
                        #step,
                    );
                    __entries.push(#gradcheck::CheckEntry::from_probe(#name, &__static.1.#pos[__j], &__tape.1.#pos[__j], &__probe));
                }
            }
        } else if kind == Kind::Scalar {
            let args = pass(index, Some(quote!(__p)));
            quote! {
                let __probe = #gradcheck::probe_derivative(|__p| #fn_ident #reference_args (#(#args),*), #at, #step);
                __entries.push(#gradcheck::CheckEntry::from_probe_scalar(#name, __static.1.#pos, __tape.1.#pos, &__probe));
            }
        } else {
            let args = pass(index, Some(array_argument(quote!(__p), by_ref, view)));
            quote! {
                let __probe = #gradcheck::probe_gradient(|__p| #fn_ident #reference_args (#(#args),*), #at, #step);
                __entries.push(#gradcheck::CheckEntry::from_probe(#name, &__static.1.#pos, &__tape.1.#pos, &__probe));
            }
        };
        entries.extend(entry);
    }
    let how = if f64_float.is_some() {
        "in `f64` (the function is called at `f64` on the same point)"
    } else {
        "in the function's own float type"
    };
    let doc = format!(
        "Checks the static and tape gradients of `{fn_ident}` against each other and against finite differences computed {how}, at the given point. `autodiff::check!` asserts the report."
    );
    let all_own = all_own_args(function);
    quote! {
        #[doc = #doc]
        #[allow(clippy::all, unused_variables, non_snake_case)]
        #vis fn #check #impl_generics (#(#original_params),*) -> #gradcheck::CheckReport #where_clause {
            let __static = #grad #own_args (#(#all_own),*);
            let __tape = #tape_grad #own_args (#(#all_own),*);
            let __reference = #reference;
            #conversions
            let mut __entries = ::std::vec::Vec::new();
            #entries
            #gradcheck::CheckReport::new(
                #prefix_name,
                <#float as ::autodiff::runtime::Float>::NAME,
                __reference,
                __entries,
            )
        }
    }
}

/// An array argument of the parameter's type made from `owned`, a reference to an owned
/// array (a finite-difference probe, or the point converted to `f64`).
fn array_argument(owned: TokenStream, by_ref: bool, view: bool) -> TokenStream {
    match (by_ref, view) {
        (true, false) => owned,
        (false, false) => quote!(::core::clone::Clone::clone(#owned)),
        (false, true) => quote!(#owned.view()),
        (true, true) => quote!(&#owned.view()),
    }
}

/// The arguments of a call with the function's own arguments: references are Copy, owned
/// values are cloned.
fn all_own_args(function: &Function) -> Vec<TokenStream> {
    function
        .params
        .iter()
        .map(|p| {
            let ident = &p.ident;
            match &p.ty {
                syn::Type::Reference(_) => quote!(#ident),
                _ => quote!(::core::clone::Clone::clone(&#ident)),
            }
        })
        .collect()
}

/// Traits that `f64` has whenever `f32` has them: a float type parameter bounded only by
/// these can be instantiated at `f64`.
const F64_SAFE_BOUNDS: &[&str] = &[
    "Float",
    "NdFloat",
    "Copy",
    "Clone",
    "Debug",
    "Display",
    "LowerExp",
    "UpperExp",
    "Default",
    "Send",
    "Sync",
    "Sized",
    "Unpin",
    "PartialEq",
    "PartialOrd",
    "Sum",
    "Product",
    "ScalarOperand",
    "LinalgScalar",
    "FromPrimitive",
    "ToPrimitive",
    "NumCast",
    "Num",
    "NumOps",
    "NumAssign",
    "NumAssignOps",
    "NumRef",
    "Zero",
    "One",
    "Signed",
    "Bounded",
    "FloatConst",
    "Real",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Rem",
    "Neg",
    "AddAssign",
    "SubAssign",
    "MulAssign",
    "DivAssign",
    "RemAssign",
];

/// The float type parameter, when the function can be called at `f64` in its place: the
/// float type is one of the function's type parameters; every parameter whose type
/// mentions it is a float or float-array value (a constant like `&[F]` could not be
/// converted); and it is bounded only by traits that `f64` has whenever `f32` does
/// ([`F64_SAFE_BOUNDS`]), with no other bound mentioning it. Otherwise `None`: the
/// reference is computed in the function's own float type.
pub(super) fn f64_reference(item: &ItemFn, function: &Function, float: &syn::Type) -> Option<Ident> {
    let syn::Type::Path(path) = float else { return None };
    if path.qself.is_some() || path.path.segments.len() != 1 {
        return None;
    }
    let ident = &path.path.segments[0].ident;
    let generics = &item.sig.generics;
    let safe_bounds = |bounds: &syn::punctuated::Punctuated<TypeParamBound, syn::Token![+]>| {
        bounds.iter().all(|bound| match bound {
            TypeParamBound::Trait(t) => t
                .path
                .segments
                .last()
                .is_some_and(|s| F64_SAFE_BOUNDS.contains(&s.ident.to_string().as_str())),
            TypeParamBound::Lifetime(_) => true,
            _ => false,
        })
    };
    let mut is_type_param = false;
    for param in &generics.params {
        match param {
            GenericParam::Type(t) if t.ident == *ident => {
                is_type_param = true;
                if !safe_bounds(&t.bounds) {
                    return None;
                }
            }
            GenericParam::Type(t) => {
                if t.bounds.iter().any(|b| mentions(&quote!(#b), ident)) {
                    return None;
                }
            }
            GenericParam::Const(c) => {
                let ty = &c.ty;
                if mentions(&quote!(#ty), ident) {
                    return None;
                }
            }
            GenericParam::Lifetime(_) => {}
        }
    }
    if !is_type_param {
        return None;
    }
    if let Some(where_clause) = &generics.where_clause {
        for predicate in &where_clause.predicates {
            match predicate {
                WherePredicate::Type(p) => {
                    let bounded = &p.bounded_ty;
                    let is_float = matches!(bounded, syn::Type::Path(b) if b.qself.is_none() && b.path.is_ident(ident));
                    if is_float {
                        if p.lifetimes.is_some() || !safe_bounds(&p.bounds) {
                            return None;
                        }
                    } else if mentions(&quote!(#p), ident) {
                        return None;
                    }
                }
                WherePredicate::Lifetime(_) => {}
                _ => return None,
            }
        }
    }
    let constants_ok = function.params.iter().all(|p| {
        let ty = &p.ty;
        matches!(p.role, ParamRole::Value { .. }) || !mentions(&quote!(#ty), ident)
    });
    constants_ok.then(|| ident.clone())
}

/// Whether the identifier `ident` occurs anywhere in `tokens`.
fn mentions(tokens: &TokenStream, ident: &Ident) -> bool {
    tokens.clone().into_iter().any(|tree| match tree {
        TokenTree::Ident(i) => i == *ident,
        TokenTree::Group(g) => mentions(&g.stream(), ident),
        _ => false,
    })
}
