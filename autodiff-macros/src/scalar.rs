//! Symbolic differentiation of `mapv` closure bodies (scalar expressions of one argument).
//!
//! Before: `x.mapv(|v| v * v + v.sin())`
//! After:  forward `|v| (v * v) + sin_scalar(v)`, derivative `|v| (v + v) + sin_grad_scalar(1, v)`
//! (after folding the zeros and ones the chain rule produces).

use proc_macro2::TokenStream;
use quote::quote;
use syn::Ident;

use crate::ir::{BinOp, ScalarExpr};

const UNARY: &str = "::autodiff::runtime::kernels::unary";

/// A derivative under construction: zero and one are kept symbolic so they fold away.
enum D {
    Zero,
    One,
    Expr(TokenStream),
}

/// `|arg| body` as a closure, from the symbolic body.
pub fn forward_closure(arg: &Ident, body: &ScalarExpr) -> TokenStream {
    let body = forward(arg, body);
    quote!(|#arg| #body)
}

/// `|arg| d(body)/d(arg)` as a closure.
pub fn derivative_closure(arg: &Ident, body: &ScalarExpr) -> TokenStream {
    let derivative = match derivative(arg, body) {
        D::Expr(t) => t,
        other => tokens(arg, other),
    };
    quote!(|#arg| #derivative)
}

fn unary_path(name: &str) -> TokenStream {
    let path: syn::Path = syn::parse_str(&format!("{UNARY}::{name}")).expect("static path parses");
    quote!(#path)
}

/// The body as tokens.
pub fn forward(arg: &Ident, e: &ScalarExpr) -> TokenStream {
    match e {
        ScalarExpr::Arg => quote!(#arg),
        ScalarExpr::Const(t) => quote!((#t)),
        ScalarExpr::Binary(op, a, b) => {
            let (a, b) = (forward(arg, a), forward(arg, b));
            match op {
                BinOp::Add => quote!((#a + #b)),
                BinOp::Sub => quote!((#a - #b)),
                BinOp::Mul => quote!((#a * #b)),
                BinOp::Div => quote!((#a / #b)),
            }
        }
        ScalarExpr::Neg(a) => {
            let a = forward(arg, a);
            quote!((-#a))
        }
        ScalarExpr::Unary(f, a) => {
            let a = forward(arg, a);
            let path = unary_path(f.scalar_kernel());
            quote!(#path(#a))
        }
        ScalarExpr::Powi(a, n) => {
            let a = forward(arg, a);
            quote!(#a.powi(#n))
        }
        ScalarExpr::Powf(a, p) => {
            let a = forward(arg, a);
            quote!(#a.powf(#p))
        }
        ScalarExpr::Clamp { is_max, arg: a, bound } => {
            let a = forward(arg, a);
            if *is_max {
                quote!(#a.max(#bound))
            } else {
                quote!(#a.min(#bound))
            }
        }
    }
}

fn derivative(arg: &Ident, e: &ScalarExpr) -> D {
    match e {
        ScalarExpr::Arg => D::One,
        ScalarExpr::Const(_) => D::Zero,
        ScalarExpr::Binary(op, a, b) => {
            let (da, db) = (derivative(arg, a), derivative(arg, b));
            let (fa, fb) = (forward(arg, a), forward(arg, b));
            match op {
                BinOp::Add => add(arg, da, db),
                BinOp::Sub => sub(arg, da, db),
                // (ab)' = a'b + ab'
                BinOp::Mul => add(arg, mul(da, fb.clone()), mul(db, fa)),
                // (a/b)' = a'/b - a·b'/b²
                BinOp::Div => {
                    let left = match da {
                        D::Zero => D::Zero,
                        D::One => D::Expr(quote!((#fb).recip())),
                        D::Expr(t) => D::Expr(quote!((#t / #fb))),
                    };
                    let right = match db {
                        D::Zero => D::Zero,
                        D::One => D::Expr(quote!((#fa / (#fb * #fb)))),
                        D::Expr(t) => D::Expr(quote!((#fa * #t / (#fb * #fb)))),
                    };
                    sub(arg, left, right)
                }
            }
        }
        ScalarExpr::Neg(a) => match derivative(arg, a) {
            D::Zero => D::Zero,
            D::One => {
                let one = tokens(arg, D::One);
                D::Expr(quote!((-#one)))
            }
            D::Expr(t) => D::Expr(quote!((-#t))),
        },
        ScalarExpr::Unary(f, a) => {
            let fa = forward(arg, a);
            let saved = if f.saves_output() {
                let path = unary_path(f.scalar_kernel());
                quote!(#path(#fa))
            } else {
                fa
            };
            let grad = unary_path(f.grad_scalar_kernel());
            match derivative(arg, a) {
                D::Zero => D::Zero,
                D::One => {
                    let one = tokens(arg, D::One);
                    D::Expr(quote!(#grad(#one, #saved)))
                }
                D::Expr(t) => D::Expr(quote!(#grad(#t, #saved))),
            }
        }
        ScalarExpr::Powi(a, n) => {
            let fa = forward(arg, a);
            let path = unary_path("powi_derivative");
            mul(derivative(arg, a), quote!(#path(#fa, #n)))
        }
        ScalarExpr::Powf(a, p) => {
            let fa = forward(arg, a);
            let path = unary_path("powf_derivative");
            mul(derivative(arg, a), quote!(#path(#fa, #p)))
        }
        ScalarExpr::Clamp { is_max, arg: a, bound } => {
            let fa = forward(arg, a);
            let path = unary_path(if *is_max { "max_derivative" } else { "min_derivative" });
            mul(derivative(arg, a), quote!(#path(#fa, #bound)))
        }
    }
}

fn add(arg: &Ident, a: D, b: D) -> D {
    match (a, b) {
        (D::Zero, x) | (x, D::Zero) => x,
        (x, y) => {
            let (x, y) = (tokens(arg, x), tokens(arg, y));
            D::Expr(quote!((#x + #y)))
        }
    }
}

fn sub(arg: &Ident, a: D, b: D) -> D {
    match (a, b) {
        (x, D::Zero) => x,
        (D::Zero, y) => {
            let y = tokens(arg, y);
            D::Expr(quote!((-#y)))
        }
        (x, y) => {
            let (x, y) = (tokens(arg, x), tokens(arg, y));
            D::Expr(quote!((#x - #y)))
        }
    }
}

/// `d · factor`.
fn mul(d: D, factor: TokenStream) -> D {
    match d {
        D::Zero => D::Zero,
        D::One => D::Expr(factor),
        D::Expr(t) => D::Expr(quote!((#t * #factor))),
    }
}

/// Tokens for a derivative; zero and one are spelled with the argument's own float
/// type (`zero_like(v)`, `one_like(v)`), so generic `F` code needs no literal.
fn tokens(arg: &Ident, d: D) -> TokenStream {
    match d {
        D::Zero => {
            let path = unary_path("zero_like");
            quote!(#path(#arg))
        }
        D::One => {
            let path = unary_path("one_like");
            quote!(#path(#arg))
        }
        D::Expr(t) => t,
    }
}
