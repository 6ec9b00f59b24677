//! Symbolic differentiation of `mapv` closure bodies (scalar expressions of one argument).
//!
//! Before: `x.mapv(|v| v * v + v.sin())`
//! After:  forward `|v| (v * v) + sin_scalar(v)`, derivative `|v| (v + v) + sin_grad_scalar(1, v)`
//! (after folding the zeros and ones the chain rule produces).

use proc_macro2::TokenStream;
use quote::quote;
use syn::Ident;

use crate::ir::{BinOp, ScalarCond, ScalarExpr};

const UNARY: &str = "::autodiff::runtime::kernels::unary";

/// A derivative under construction: zero and one are kept symbolic so they fold away.
enum D {
    Zero,
    One,
    Expr(TokenStream),
}

/// A closure body with what its free names stand for: the argument, and the tokens of
/// each captured float (`ScalarExpr::Capture(k)` is `captures[k]`).
#[derive(Clone, Copy)]
pub struct Closure<'a> {
    pub arg: &'a Ident,
    pub body: &'a ScalarExpr,
    pub captures: &'a [TokenStream],
}

/// What a derivative is taken with respect to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wrt {
    /// The closure's argument (the array's elements).
    Arg,
    /// The `k`-th captured float.
    Capture(usize),
}

impl Closure<'_> {
    /// `|arg| body` as a closure, from the symbolic body.
    pub fn forward_closure(self) -> TokenStream {
        let (arg, body) = (self.arg, self.forward(self.body));
        quote!(|#arg| #body)
    }

    /// `|arg| ∂body/∂wrt` as a closure.
    pub fn derivative_closure(self, wrt: Wrt) -> TokenStream {
        let derivative = match self.derivative(self.body, wrt) {
            D::Expr(t) => t,
            other => self.tokens(other),
        };
        let arg = self.arg;
        quote!(|#arg| #derivative)
    }
}

fn unary_path(name: &str) -> TokenStream {
    let path: syn::Path = syn::parse_str(&format!("{UNARY}::{name}")).expect("static path parses");
    quote!(#path)
}

impl Closure<'_> {
    /// The body as tokens.
    fn forward(self, e: &ScalarExpr) -> TokenStream {
        let arg = self.arg;
        match e {
            ScalarExpr::Arg => quote!(#arg),
            ScalarExpr::Capture(k) => {
                let capture = &self.captures[*k];
                quote!((#capture))
            }
            ScalarExpr::Const(t) => quote!((#t)),
            ScalarExpr::Binary(op, a, b) => {
                let (a, b) = (self.forward(a), self.forward(b));
                match op {
                    BinOp::Add => quote!((#a + #b)),
                    BinOp::Sub => quote!((#a - #b)),
                    BinOp::Mul => quote!((#a * #b)),
                    BinOp::Div => quote!((#a / #b)),
                }
            }
            ScalarExpr::Neg(a) => {
                let a = self.forward(a);
                quote!((-#a))
            }
            ScalarExpr::Unary(f, a) => {
                let a = self.forward(a);
                let path = unary_path(f.scalar_kernel());
                quote!(#path(#a))
            }
            ScalarExpr::Powi(a, n) => {
                let a = self.forward(a);
                quote!(#a.powi(#n))
            }
            ScalarExpr::Powf(a, p) => {
                let a = self.forward(a);
                quote!(#a.powf(#p))
            }
            ScalarExpr::Clamp { is_max, arg: a, bound } => {
                let a = self.forward(a);
                if *is_max {
                    quote!(#a.max(#bound))
                } else {
                    quote!(#a.min(#bound))
                }
            }
            ScalarExpr::If { cond, then, otherwise } => {
                let (c, a, b) = (self.condition(cond), self.forward(then), self.forward(otherwise));
                quote!((if #c { #a } else { #b }))
            }
        }
    }

    /// A condition as tokens.
    fn condition(self, c: &ScalarCond) -> TokenStream {
        match c {
            ScalarCond::Compare(cmp, a, b) => {
                let (a, b, symbol) = (self.forward(a), self.forward(b), cmp.symbol());
                quote!((#a #symbol #b))
            }
            ScalarCond::Not(a) => {
                let a = self.condition(a);
                quote!((!#a))
            }
            ScalarCond::And(a, b) => {
                let (a, b) = (self.condition(a), self.condition(b));
                quote!((#a && #b))
            }
            ScalarCond::Or(a, b) => {
                let (a, b) = (self.condition(a), self.condition(b));
                quote!((#a || #b))
            }
        }
    }

    fn derivative(self, e: &ScalarExpr, wrt: Wrt) -> D {
        match e {
            ScalarExpr::Arg => {
                if wrt == Wrt::Arg {
                    D::One
                } else {
                    D::Zero
                }
            }
            ScalarExpr::Capture(k) => {
                if wrt == Wrt::Capture(*k) {
                    D::One
                } else {
                    D::Zero
                }
            }
            ScalarExpr::Const(_) => D::Zero,
            ScalarExpr::Binary(op, a, b) => {
                let (da, db) = (self.derivative(a, wrt), self.derivative(b, wrt));
                let (fa, fb) = (self.forward(a), self.forward(b));
                match op {
                    BinOp::Add => self.add(da, db),
                    BinOp::Sub => self.sub(da, db),
                    // (ab)' = a'b + ab'
                    BinOp::Mul => self.add(mul(da, fb.clone()), mul(db, fa)),
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
                        self.sub(left, right)
                    }
                }
            }
            ScalarExpr::Neg(a) => match self.derivative(a, wrt) {
                D::Zero => D::Zero,
                D::One => {
                    let one = self.tokens(D::One);
                    D::Expr(quote!((-#one)))
                }
                D::Expr(t) => D::Expr(quote!((-#t))),
            },
            ScalarExpr::Unary(f, a) => {
                let fa = self.forward(a);
                let saved = if f.saves_output() {
                    let path = unary_path(f.scalar_kernel());
                    quote!(#path(#fa))
                } else {
                    fa
                };
                let grad = unary_path(f.grad_scalar_kernel());
                match self.derivative(a, wrt) {
                    D::Zero => D::Zero,
                    D::One => {
                        let one = self.tokens(D::One);
                        D::Expr(quote!(#grad(#one, #saved)))
                    }
                    D::Expr(t) => D::Expr(quote!(#grad(#t, #saved))),
                }
            }
            ScalarExpr::Powi(a, n) => {
                let fa = self.forward(a);
                let path = unary_path("powi_derivative");
                mul(self.derivative(a, wrt), quote!(#path(#fa, #n)))
            }
            ScalarExpr::Powf(a, p) => {
                let fa = self.forward(a);
                let path = unary_path("powf_derivative");
                mul(self.derivative(a, wrt), quote!(#path(#fa, #p)))
            }
            ScalarExpr::Clamp { is_max, arg: a, bound } => {
                let fa = self.forward(a);
                let path = unary_path(if *is_max { "max_derivative" } else { "min_derivative" });
                mul(self.derivative(a, wrt), quote!(#path(#fa, #bound)))
            }
            ScalarExpr::If { cond, then, otherwise } => {
                match (self.derivative(then, wrt), self.derivative(otherwise, wrt)) {
                    (D::Zero, D::Zero) => D::Zero,
                    (da, db) => {
                        let (c, da, db) = (self.condition(cond), self.tokens(da), self.tokens(db));
                        D::Expr(quote!((if #c { #da } else { #db })))
                    }
                }
            }
        }
    }

    fn add(self, a: D, b: D) -> D {
        match (a, b) {
            (D::Zero, x) | (x, D::Zero) => x,
            (x, y) => {
                let (x, y) = (self.tokens(x), self.tokens(y));
                D::Expr(quote!((#x + #y)))
            }
        }
    }

    fn sub(self, a: D, b: D) -> D {
        match (a, b) {
            (x, D::Zero) => x,
            (D::Zero, y) => {
                let y = self.tokens(y);
                D::Expr(quote!((-#y)))
            }
            (x, y) => {
                let (x, y) = (self.tokens(x), self.tokens(y));
                D::Expr(quote!((#x - #y)))
            }
        }
    }

    /// Tokens for a derivative; zero and one are spelled with the argument's own float
    /// type (`zero_like(v)`, `one_like(v)`), so generic `F` code needs no literal.
    fn tokens(self, d: D) -> TokenStream {
        let arg = self.arg;
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
}

/// `d · factor`.
fn mul(d: D, factor: TokenStream) -> D {
    match d {
        D::Zero => D::Zero,
        D::One => D::Expr(factor),
        D::Expr(t) => D::Expr(quote!((#t * #factor))),
    }
}
