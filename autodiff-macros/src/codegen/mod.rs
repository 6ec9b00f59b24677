//! Code generation: the items emitted beside the annotated function.
//!
//! For `fn loss(..) -> F` (or the `name = ...` prefix) it emits `loss_forward`,
//! `LossContext`, `loss_backward`, `loss_grad`, `loss_on_tape`, `loss_tape_grad`,
//! `loss_check`, `LOSS_GRAD_PLAN` and `loss_grad_source()`; for a function generic over
//! its float type, also `loss_jvp` and `loss_hvp` (`hvp_code.rs`).

mod call_code;
mod calls;
mod check_code;
mod hvp_code;
mod loops;
mod manifest;
mod names;
mod remat;
mod static_code;
mod tape_code;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, ToTokens};
use syn::visit_mut::VisitMut;
use syn::{GenericParam, Ident, ItemFn, Lifetime};

use crate::activity::Activity;
use crate::args::Save;
use crate::ir::{Function, Kind, ParamRole};
use crate::liveness::ForwardLiveness;
use check_code::check_item;
use names::Names;
pub use names::{camel_case, unraw};

/// Everything generated for one function, as tokens.
pub fn expand(
    item: &ItemFn,
    prefix: &Ident,
    function: &Function,
    activity: &Activity,
    float: &syn::Type,
    analyses: crate::args::Analyses,
) -> TokenStream {
    let names = Names::new(function, float, analyses);
    let vis = &item.vis;
    let ctx_lifetime = Lifetime::new("'__ctx", Span::call_site());

    // Parameter types as the context stores them: elided reference lifetimes become the
    // context's, and a view (even one taken by reference) is a view of the context's lifetime.
    let ctx_param_types: Vec<TokenStream> = function
        .params
        .iter()
        .map(|p| match p.role {
            ParamRole::Value { kind, view: true, .. } => {
                let dim = names.dim_type(kind);
                quote!(::autodiff::ndarray::ArrayView<#ctx_lifetime, #float, #dim>)
            }
            _ => {
                let mut ty = p.ty.clone();
                ElidedLifetimes(&ctx_lifetime).visit_type_mut(&mut ty);
                ty.to_token_stream()
            }
        })
        .collect();
    // Computed once, read by both emitters.
    let liveness = ForwardLiveness::of(function);
    let code = remat::generate_under_policy(
        function,
        activity,
        &liveness,
        &names,
        &ctx_param_types,
        &static_code::Boundary::Top,
    );

    // A custom rule's halves are the user's function and VJP, which is often named
    // `<name>_backward`: the generated halves step aside.
    let custom_rule = function
        .stmts
        .iter()
        .any(|s| matches!(s.op, crate::ir::Op::Custom { .. }));
    let mut idents = Items::new(prefix);
    if custom_rule {
        idents.forward = format_ident!("__{}", idents.forward);
        idents.backward = format_ident!("__{}", idents.backward);
    }
    let Items {
        forward,
        backward,
        grad,
        plan,
        source,
        context,
        ..
    } = &idents;

    // Generics: the function's own, plus the context lifetime for the halves.
    let generics = &item.sig.generics;
    let (_, _, where_clause) = generics.split_for_impl();
    let mut ctx_generics = generics.clone();
    ctx_generics
        .params
        .insert(0, GenericParam::Lifetime(syn::LifetimeParam::new(ctx_lifetime.clone())));
    let (ctx_impl_generics, ctx_ty_generics, _) = ctx_generics.split_for_impl();
    let marker_types: Vec<TokenStream> = generics
        .params
        .iter()
        .map(|p| match p {
            GenericParam::Type(t) => {
                let ident = &t.ident;
                quote!(fn() -> #ident)
            }
            GenericParam::Lifetime(l) => {
                let lifetime = &l.lifetime;
                quote!(&#lifetime ())
            }
            GenericParam::Const(_) => quote!(()),
        })
        .collect();

    // What `_grad` passes to `_forward`: views are re-viewed, so that views of different
    // lifetimes meet at the context's one (`ArrayView` is invariant in its lifetime).
    let forward_args: Vec<TokenStream> = function
        .params
        .iter()
        .map(|p| {
            let ident = &p.ident;
            match p.role {
                ParamRole::Value { view: true, .. } => quote!(#ident.view()),
                _ => quote!(#ident),
            }
        })
        .collect();
    let original_params: Vec<TokenStream> = function
        .params
        .iter()
        .map(|p| {
            let (ident, ty) = (&p.ident, &p.ty);
            quote!(#ident: #ty)
        })
        .collect();
    let ctx_params: Vec<TokenStream> = function
        .params
        .iter()
        .zip(&ctx_param_types)
        .map(|(p, ty)| {
            let ident = &p.ident;
            quote!(#ident: #ty)
        })
        .collect();

    let grad_types: Vec<TokenStream> = function
        .wrt
        .iter()
        .map(|&i| match function.params[i].role {
            ParamRole::Value { kind, .. } => names.value_type(kind),
            ParamRole::Constant => unreachable!("wrt holds value parameters"),
        })
        .collect();
    let grads_ty = quote!((#(#grad_types,)*));
    let output_kind = function.kind(function.output);
    let scalar_output = output_kind == Kind::Scalar;
    // What the function returns: its float, or an array of it (a layer).
    let out_ty = names.value_type(output_kind);

    // The context struct.
    let field_decls = code.fields.iter().map(|f| {
        let (ident, ty) = (&f.ident, &f.ty);
        quote!(#ident: #ty)
    });
    let field_idents: Vec<&Ident> = code.fields.iter().map(|f| &f.ident).collect();
    let held_counts = code.fields.iter().filter_map(|f| {
        let ident = &f.ident;
        f.held
            .as_ref()
            .map(|held| held.bytes(quote!(self.#ident), &quote!(#float)))
    });
    let saved_labels = &code.plan_saved;
    let context_doc = format!(
        "What `{backward}` needs from `{forward}`: the intermediates {} (parameters are borrowed, not copied).",
        if saved_labels.is_empty() {
            "(none)".to_string()
        } else {
            saved_labels.join(", ")
        }
    );
    let forward_body = &code.forward_body;
    let backward_body = &code.backward_body;
    let static_items = quote! {
        #[doc = #context_doc]
        #[allow(non_camel_case_types, dead_code)]
        #vis struct #context #ctx_impl_generics #where_clause {
            #(#field_decls,)*
            __marker: ::core::marker::PhantomData<(&#ctx_lifetime (), #(#marker_types,)*)>,
        }

        impl #ctx_impl_generics #context #ctx_ty_generics #where_clause {
            /// Bytes of the arrays this context owns (saved intermediates; parameters are borrowed).
            #[allow(dead_code)]
            pub fn held_bytes(&self) -> usize {
                0 #(+ #held_counts)*
            }
        }

        #[doc = concat!("The forward half of `", stringify!(#grad), "`: the value and the context its backward half reads.")]
        #[allow(clippy::all, unused_variables, unused_parens, non_snake_case)]
        #vis fn #forward #ctx_impl_generics (#(#ctx_params),*) -> (#out_ty, #context #ctx_ty_generics) #where_clause {
            #forward_body
            (__value, #context { #(#field_idents,)* __marker: ::core::marker::PhantomData })
        }

        #[doc = concat!("The backward half of `", stringify!(#grad), "`: the gradients, given the context and the output's adjoint `seed` (1 for the gradient).")]
        #[allow(clippy::all, unused_variables, unused_parens, unused_mut, non_snake_case)]
        #vis fn #backward #ctx_impl_generics (ctx: #context #ctx_ty_generics, __seed: #out_ty) -> #grads_ty #where_clause {
            let #context { #(#field_idents,)* .. } = ctx;
            #backward_body
        }
    };

    let (impl_generics, _, _) = generics.split_for_impl();
    let turbofish = turbofish(generics);
    let fn_ident = &item.sig.ident;
    let grad_doc = format!(
        "The value of `{fn_ident}` and its gradients with respect to ({}), computed by generated static code. See `{plan}` and `{source}()`.",
        function.wrt.iter().map(|&i| function.params[i].ident.to_string()).collect::<Vec<_>>().join(", ")
    );
    let wrapper_items = if scalar_output {
        quote! {
            #[doc = #grad_doc]
            #[allow(clippy::all)]
            #vis fn #grad #impl_generics (#(#original_params),*) -> (#float, #grads_ty) #where_clause {
                let (value, ctx) = #forward #turbofish(#(#forward_args),*);
                (value, #backward #turbofish(ctx, <#float as ::autodiff::runtime::Float>::of(1.0)))
            }
        }
    } else {
        let vjp = &idents.vjp;
        let vjp_doc = format!(
            "The value of `{fn_ident}` (an array) and the vector-Jacobian products of `seed` (the output's adjoint, shaped like it) with respect to ({}), computed by generated static code.",
            function.wrt.iter().map(|&i| function.params[i].ident.to_string()).collect::<Vec<_>>().join(", ")
        );
        quote! {
            #[doc = #vjp_doc]
            #[allow(clippy::all)]
            #vis fn #vjp #impl_generics (#(#original_params,)* seed: #out_ty) -> (#out_ty, #grads_ty) #where_clause {
                let (value, ctx) = #forward #turbofish(#(#forward_args),*);
                (value, #backward #turbofish(ctx, seed))
            }
        }
    };

    let tape_items = tape_items(item, function, &liveness, &names, &idents, &original_params, &grads_ty);
    // `check!` compares gradients of a float; a layer is checked through a loss that calls it.
    let check_item = if scalar_output {
        check_item(item, function, &idents, &original_params, float)
    } else {
        TokenStream::new()
    };
    let call_items = call_code::call_items(item, prefix, function, float, analyses);
    let hvp_items = hvp_code::hvp_items(item, prefix, function, &idents, &original_params, float, &grads_ty);
    let (residual_rows, residual_total) = manifest::manifest(function, &names, &code.residuals);
    let plan_item = plan_item(item, prefix, function, &code, plan, analyses.save, &residual_rows);
    let residual_bytes = &idents.residual_bytes;
    let residual_doc = format!(
        "The heap bytes `{forward}`'s context will hold for these arguments (the residual manifest of `{plan}`, evaluated), or `None` where a residual's size is only known at run time (a loop's or a call's context)."
    );
    let residual_item = quote! {
        #[doc = #residual_doc]
        #[allow(dead_code, unused_variables, clippy::all)]
        #vis fn #residual_bytes #impl_generics (#(#original_params),*) -> ::core::option::Option<usize> #where_clause {
            #residual_total
        }
    };

    // The readable source of the static part, for `<name>_grad_source()`.
    let source_text = syn::parse2::<syn::File>(quote!(#static_items #wrapper_items))
        .map(|file| prettyplease::unparse(&file))
        .unwrap_or_else(|e| format!("// the generated code could not be pretty-printed: {e}"));
    let source_doc = format!("The generated static gradient code of `{fn_ident}`, pretty-printed.");

    quote! {
        #static_items
        #wrapper_items
        #call_items
        #tape_items
        #check_item
        #hvp_items
        #plan_item
        #residual_item
        #[doc = #source_doc]
        #[allow(dead_code)]
        #vis fn #source() -> &'static str {
            #source_text
        }
    }
}

/// The names of the generated items.
pub struct Items {
    pub forward: Ident,
    pub backward: Ident,
    pub grad: Ident,
    pub vjp: Ident,
    pub tape_vjp: Ident,
    pub on_tape: Ident,
    pub tape_grad: Ident,
    pub check: Ident,
    pub plan: Ident,
    pub source: Ident,
    pub context: Ident,
    pub residual_bytes: Ident,
}

impl Items {
    pub fn new(prefix: &Ident) -> Self {
        let p = prefix.to_string();
        let p = p.trim_start_matches("r#");
        let span = prefix.span();
        Items {
            forward: format_ident!("{}_forward", p, span = span),
            residual_bytes: format_ident!("{}_residual_bytes", p, span = span),
            backward: format_ident!("{}_backward", p, span = span),
            grad: format_ident!("{}_grad", p, span = span),
            vjp: format_ident!("{}_vjp", p, span = span),
            tape_vjp: format_ident!("{}_tape_vjp", p, span = span),
            on_tape: format_ident!("{}_on_tape", p, span = span),
            tape_grad: format_ident!("{}_tape_grad", p, span = span),
            check: format_ident!("{}_check", p, span = span),
            plan: format_ident!("{}_GRAD_PLAN", p.to_uppercase(), span = span),
            source: format_ident!("{}_grad_source", p, span = span),
            context: format_ident!("{}Context", camel_case(p), span = span),
        }
    }
}

fn tape_items(
    item: &ItemFn,
    function: &Function,
    liveness: &ForwardLiveness,
    names: &Names,
    idents: &Items,
    original_params: &[TokenStream],
    grads_ty: &TokenStream,
) -> TokenStream {
    let vis = &item.vis;
    let float = &names.float;
    let Items { on_tape, tape_grad, .. } = idents;
    let (tape_lt, data_lt) = (
        Lifetime::new("'__tape", Span::call_site()),
        Lifetime::new("'__data", Span::call_site()),
    );
    let var_ty = quote!(::autodiff::runtime::tape::Var<#tape_lt, #data_lt, #float>);
    let mut generics = item.sig.generics.clone();
    generics
        .params
        .insert(0, GenericParam::Lifetime(syn::LifetimeParam::new(data_lt.clone())));
    generics
        .params
        .insert(0, GenericParam::Lifetime(syn::LifetimeParam::new(tape_lt.clone())));
    let (tape_generics, _, where_clause) = generics.split_for_impl();
    let tape_params = function.params.iter().map(|p| {
        let ident = &p.ident;
        match p.role {
            ParamRole::Value {
                kind: Kind::Slice(_), ..
            } => quote!(#ident: &[#var_ty]),
            ParamRole::Value { .. } => quote!(#ident: &#var_ty),
            ParamRole::Constant => {
                let ty = &p.ty;
                quote!(#ident: #ty)
            }
        }
    });
    let body = tape_code::body(function, liveness, names);
    let fn_ident = &item.sig.ident;
    let on_tape_doc =
        format!("`{fn_ident}` recorded on the dynamic tape: float and array parameters are tape variables.");

    // `_tape_grad`: make leaves (parameters for `wrt`, constants otherwise), run, backward.
    let mut leaves = TokenStream::new();
    let mut args = Vec::new();
    for (index, p) in function.params.iter().enumerate() {
        let ident = &p.ident;
        match p.role {
            ParamRole::Value { kind, by_ref, .. } => {
                let leaf = format_ident!("__leaf_{}", names::unraw(ident));
                let wrt = function.wrt.contains(&index);
                let source = if by_ref { quote!(#ident) } else { quote!(&#ident) };
                let make = match (kind, wrt) {
                    (Kind::Slice(_), true) => {
                        quote!(#ident.iter().map(|__a| __tape.param(__a)).collect::<::std::vec::Vec<_>>())
                    }
                    (Kind::Slice(_), false) => {
                        quote!(#ident.iter().map(|__a| __tape.constant(__a)).collect::<::std::vec::Vec<_>>())
                    }
                    (Kind::Scalar, true) => quote!(__tape.param_scalar(#ident)),
                    (Kind::Scalar, false) => quote!(__tape.constant_scalar(#ident)),
                    (_, true) => quote!(__tape.param(#source)),
                    (_, false) => quote!(__tape.constant(#source)),
                };
                leaves.extend(quote!(let #leaf = #make;));
                args.push(quote!(&#leaf));
            }
            ParamRole::Constant => args.push(quote!(#ident)),
        }
    }
    let takes = function.wrt.iter().map(|&index| {
        let p = &function.params[index];
        let leaf = format_ident!("__leaf_{}", names::unraw(&p.ident));
        match p.role {
            ParamRole::Value { kind: Kind::Scalar, .. } => quote!(__grads.take_scalar(&#leaf)),
            ParamRole::Value {
                kind: Kind::Slice(rank),
                ..
            } => {
                let dim = names.dim_type(Kind::Array(rank));
                quote!(#leaf.iter().map(|__l| __grads.take_as::<#dim>(__l)).collect::<::std::vec::Vec<_>>())
            }
            ParamRole::Value { kind, .. } => {
                let dim = names.dim_type(kind);
                quote!(__grads.take_as::<#dim>(&#leaf))
            }
            ParamRole::Constant => unreachable!("wrt holds value parameters"),
        }
    });
    let (impl_generics, _, _) = item.sig.generics.split_for_impl();
    let turbofish = turbofish(&item.sig.generics);
    let output_kind = function.kind(function.output);
    let runner = if output_kind == Kind::Scalar {
        let tape_grad_doc = format!("The value of `{fn_ident}` and its gradients, computed on the dynamic tape (the baseline the static code is compared with).");
        quote! {
            #[doc = #tape_grad_doc]
            #[allow(clippy::all, unused_variables, non_snake_case)]
            #vis fn #tape_grad #impl_generics (#(#original_params),*) -> (#float, #grads_ty) #where_clause {
                let __tape = ::autodiff::runtime::tape::Tape::new();
                #leaves
                let __output = #on_tape #turbofish(#(#args),*);
                let __value = __output.scalar();
                // An output that no parameter reaches (a branch that ignores them) has zero gradients.
                let mut __grads = if __output.requires_grad() {
                    __tape.backward(&__output)
                } else {
                    ::autodiff::runtime::tape::Gradients::default()
                };
                (__value, (#(#takes,)*))
            }
        }
    } else {
        let (out_ty, dim) = (names.value_type(output_kind), names.dim_type(output_kind));
        let tape_vjp = &idents.tape_vjp;
        let tape_vjp_doc = format!("The value of `{fn_ident}` and the vector-Jacobian products of `seed`, computed on the dynamic tape (the baseline the static code is compared with).");
        quote! {
            #[doc = #tape_vjp_doc]
            #[allow(clippy::all, unused_variables, non_snake_case)]
            #vis fn #tape_vjp #impl_generics (#(#original_params,)* seed: #out_ty) -> (#out_ty, #grads_ty) #where_clause {
                let __tape = ::autodiff::runtime::tape::Tape::new();
                #leaves
                let __output = #on_tape #turbofish(#(#args),*);
                let __value = __output
                    .value()
                    .to_owned()
                    .into_dimensionality::<#dim>()
                    .expect("the tape's output has the rank the function returns");
                let mut __grads = if __output.requires_grad() {
                    __tape.backward_with_seed(&__output, seed.into_dyn(), false)
                } else {
                    ::autodiff::runtime::tape::Gradients::default()
                };
                (__value, (#(#takes,)*))
            }
        }
    };
    quote! {
        #[doc = #on_tape_doc]
        #[allow(clippy::all, unused_variables, unused_parens, non_snake_case)]
        #vis fn #on_tape #tape_generics (#(#tape_params),*) -> #var_ty #where_clause {
            #body
        }

        #runner
    }
}

fn plan_item(
    item: &ItemFn,
    prefix: &Ident,
    function: &Function,
    code: &static_code::StaticCode,
    plan: &Ident,
    save: Save,
    residuals: &[String],
) -> TokenStream {
    let vis = &item.vis;
    let name = prefix.to_string();
    let wrt: Vec<String> = function
        .wrt
        .iter()
        .map(|&i| function.params[i].ident.to_string())
        .collect();
    let (forward, backward, eliminated, saved) = (
        &code.plan_forward,
        &code.plan_backward,
        &code.plan_eliminated,
        &code.plan_saved,
    );
    let save = save.name();
    let doc = format!("What `#[differentiate]` generated for `{name}`: forward ops, backward kernel calls, eliminated adjoints, saved intermediates, the memory plan.");
    quote! {
        #[doc = #doc]
        #[allow(dead_code)]
        #vis const #plan: ::autodiff::Plan = ::autodiff::Plan {
            function: #name,
            wrt: &[#(#wrt),*],
            forward: &[#(#forward),*],
            backward: &[#(#backward),*],
            eliminated: &[#(#eliminated),*],
            saved: &[#(#saved),*],
            save: #save,
            residuals: &[#(#residuals),*],
        };
    }
}

/// `::<F, T, N>`: the type and const parameters of `generics`, for calls between generated
/// functions, so that a parameter no argument mentions (`<T: Clone>` unused) is still known.
/// Lifetimes are left to inference. Empty when there are none.
pub fn turbofish(generics: &syn::Generics) -> TokenStream {
    let args: Vec<&Ident> = generics
        .params
        .iter()
        .filter_map(|p| match p {
            GenericParam::Type(t) => Some(&t.ident),
            GenericParam::Const(c) => Some(&c.ident),
            GenericParam::Lifetime(_) => None,
        })
        .collect();
    if args.is_empty() {
        TokenStream::new()
    } else {
        quote!(::<#(#args),*>)
    }
}

/// Gives every elided reference lifetime (`&T`, `&'_ T`) a name.
struct ElidedLifetimes<'a>(&'a Lifetime);

impl VisitMut for ElidedLifetimes<'_> {
    fn visit_type_reference_mut(&mut self, reference: &mut syn::TypeReference) {
        match &reference.lifetime {
            None => reference.lifetime = Some(self.0.clone()),
            Some(l) if l.ident == "_" => reference.lifetime = Some(self.0.clone()),
            Some(_) => {}
        }
        syn::visit_mut::visit_type_reference_mut(self, reference);
    }

    /// `ArrayView2<F>` elides its lifetime in the path: give it the context's.
    fn visit_path_segment_mut(&mut self, segment: &mut syn::PathSegment) {
        if segment.ident.to_string().starts_with("ArrayView") {
            if let syn::PathArguments::AngleBracketed(args) = &mut segment.arguments {
                if !args.args.iter().any(|a| matches!(a, syn::GenericArgument::Lifetime(_))) {
                    args.args.insert(0, syn::GenericArgument::Lifetime(self.0.clone()));
                }
            }
        }
        syn::visit_mut::visit_path_segment_mut(self, segment);
    }

    fn visit_lifetime_mut(&mut self, lifetime: &mut Lifetime) {
        if lifetime.ident == "_" {
            *lifetime = self.0.clone();
        }
    }
}
