//! Number literals as floats: `2 * s` in a float function means `2.0 * s`, and `0.5 * s`
//! in a function generic over `F: Float` means `F::of(0.5) * s`.
//!
//! Rust has no implicit conversion, so `2 * s` with `s: f64` (or `0.5 * s` with `s: F`) does
//! not compile, but it is what people write. Lowering takes an unsuffixed integer literal that meets a float value
//! in `+ - * /` as a float constant, and records it; `apply` then rewrites the same literal
//! in the user's function, which is emitted beside the generated code, so both compile.
//!
//! Before: `fn f(s: f64) -> f64 { 2 * s }`, `fn g<F: Float>(s: F) -> F { 0.5 * s }`
//! After:  `fn f(s: f64) -> f64 { 2.0 * s }`, `fn g<F: Float>(s: F) -> F { F::of(0.5) * s }`
//! (the literal keeps its span)

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::visit_mut::VisitMut;
use syn::{Expr, ItemFn, Lit, Type};

/// The literals to rewrite, each named by the address of its `Expr` node in the user's
/// function: lowering borrows that very tree, and `apply` visits it unchanged, so the
/// addresses identify the nodes without any notion of span equality.
#[derive(Default)]
pub struct Rewrites(Vec<(usize, TokenStream)>);

impl Rewrites {
    /// Whether nothing is to be rewritten.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// If `expr` is an unsuffixed number literal that is not already a value of the float type,
/// the float constant it stands for, recorded in `rewrites`: an integer literal becomes
/// `2.0` for `f32`/`f64`, and any literal becomes `<F as Float>::of(2.0)` for a generic
/// float type `F` (where `x * 0.5` would not compile either).
pub fn as_float(expr: &Expr, float_ty: &Type, rewrites: &mut Rewrites) -> Option<TokenStream> {
    let Expr::Lit(lit) = expr else { return None };
    let concrete = matches!(float_ty, Type::Path(path) if path.path.is_ident("f32") || path.path.is_ident("f64"));
    let (float, span) = match &lit.lit {
        Lit::Int(int) if int.suffix().is_empty() => {
            let value: u64 = int.base10_parse().ok()?;
            (syn::LitFloat::new(&format!("{value}.0"), int.span()), int.span())
        }
        // A float literal is already a float of a concrete type.
        Lit::Float(float) if float.suffix().is_empty() && !concrete => (float.clone(), float.span()),
        _ => return None,
    };
    let tokens = if concrete {
        quote!(#float)
    } else {
        quote_spanned!(span=> <#float_ty as ::autodiff::runtime::Float>::of(#float))
    };
    rewrites.0.push((expr as *const Expr as usize, tokens.clone()));
    Some(tokens)
}

/// Rewrites the recorded literals in `item`, the function lowering read.
pub fn apply(item: &mut ItemFn, rewrites: &Rewrites) {
    struct Apply<'r>(&'r Rewrites);
    impl VisitMut for Apply<'_> {
        fn visit_expr_mut(&mut self, expr: &mut Expr) {
            let address = expr as *const Expr as usize;
            if let Some((_, tokens)) = self.0 .0.iter().find(|(a, _)| *a == address) {
                *expr = Expr::Verbatim(tokens.clone());
                return;
            }
            syn::visit_mut::visit_expr_mut(self, expr);
        }
    }
    if !rewrites.is_empty() {
        Apply(rewrites).visit_block_mut(&mut item.block);
    }
}
