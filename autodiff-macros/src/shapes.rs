//! Symbolic shapes: each value's axis lengths as formulas of the parameters' (`x[0]` is the
//! length of `x`'s first axis), where the ops determine them. The memory plan states its
//! residuals' bytes with them (`relu mask of h: x[0]×w1[1] bits`), and the generated
//! `<name>_residual_bytes(..)` evaluates them for given inputs before anything runs.
//!
//! Before: `let h = relu(&(x.dot(w1) + b1));`
//! After: `x.dot(w1)` is `[x[0], w1[1]]`; `+ b1` broadcasts, `[x[0], max(w1[1], b1[0])]`
//! (equal lengths are written once, so a row vector of the right length keeps `w1[1]`); relu
//! keeps its input's. A value whose shape depends on what the ops cannot say (a called
//! function's result, a loop's state, an array built from run-time sizes) has none.

use proc_macro2::TokenStream;
use quote::quote;

use crate::ir::{Function, Kind, Op, ValueId};

/// The length of one axis.
#[derive(Clone, Debug)]
pub enum Dim {
    /// Axis `axis` of parameter `param`.
    Axis { param: usize, axis: usize },
    /// Axis `axis` of the element `at` of the slice parameter `param` (`ws[i]`).
    Element { param: usize, at: TokenStream, axis: usize },
    /// The longer of two broadcast axes (one of them is 1 or they are equal).
    Max(Box<Dim>, Box<Dim>),
    /// A sliding window's output: `(input + 2·padding − window) / stride + 1`.
    Window {
        input: Box<Dim>,
        window: Box<Dim>,
        padding: TokenStream,
        stride: TokenStream,
    },
    /// A window of a constant size: `(input − window) / stride + 1` (max-pooling).
    ConstWindow {
        input: Box<Dim>,
        window: TokenStream,
        stride: TokenStream,
    },
}

/// A value's axis lengths, outermost first (empty for a float).
pub type Shape = Vec<Dim>;

impl Dim {
    /// The formula as the plan prints it.
    pub fn text(&self, function: &Function) -> String {
        let name = |param: usize| function.params[param].ident.to_string();
        match self {
            Dim::Axis { param, axis } => format!("{}[{axis}]", name(*param)),
            Dim::Element { param, at, axis } => format!("{}[{at}][{axis}]", name(*param)),
            Dim::Max(a, b) => format!("max({}, {})", a.text(function), b.text(function)),
            Dim::Window {
                input,
                window,
                padding,
                stride,
            } => {
                let padding = match literal(padding) {
                    Some(0) => String::new(),
                    Some(p) => format!(" + {}", 2 * p),
                    None => format!(" + 2·{padding}"),
                };
                let difference = format!("{}{padding} − {}", input.text(function), window.text(function));
                match literal(stride) {
                    Some(1) => format!("({difference} + 1)"),
                    _ => format!("(({difference}) / {stride} + 1)"),
                }
            }
            Dim::ConstWindow { input, window, stride } => {
                format!("(({} − {window}) / {stride} + 1)", input.text(function))
            }
        }
    }

    /// The formula as code over the function's parameters (a `usize`).
    pub fn tokens(&self, function: &Function) -> TokenStream {
        let name = |param: usize| &function.params[param].ident;
        match self {
            Dim::Axis { param, axis } => {
                let p = name(*param);
                quote!(#p.shape()[#axis])
            }
            Dim::Element { param, at, axis } => {
                let p = name(*param);
                quote!(#p[#at].shape()[#axis])
            }
            Dim::Max(a, b) => {
                let (a, b) = (a.tokens(function), b.tokens(function));
                quote!(::core::cmp::Ord::max(#a, #b))
            }
            Dim::Window {
                input,
                window,
                padding,
                stride,
            } => {
                let (input, window) = (input.tokens(function), window.tokens(function));
                quote!(((#input + 2 * (#padding) as usize - #window) / (#stride) as usize + 1))
            }
            Dim::ConstWindow { input, window, stride } => {
                let input = input.tokens(function);
                quote!(((#input - (#window) as usize) / (#stride) as usize + 1))
            }
        }
    }

    fn same(&self, other: &Dim, function: &Function) -> bool {
        self.text(function) == other.text(function)
    }
}

/// The shape of every value of `function` (indexed by `ValueId.0`), where the ops say it.
pub fn infer(function: &Function) -> Vec<Option<Shape>> {
    let mut shapes: Vec<Option<Shape>> = Vec::with_capacity(function.stmts.len());
    for stmt in &function.stmts {
        let of = |v: &ValueId| shapes.get(v.0).cloned().flatten();
        let shape = match (&stmt.op, stmt.kind) {
            (_, Kind::Scalar) => Some(Vec::new()),
            (_, Kind::Bool | Kind::Loop | Kind::Slice(_)) => None,
            (Op::Param { index }, Kind::Array(Some(rank))) => {
                Some((0..rank).map(|axis| Dim::Axis { param: *index, axis }).collect())
            }
            (Op::Index(slice, at), Kind::Array(Some(rank))) => match function.stmt(*slice).op {
                Op::Param { index } => Some(
                    (0..rank)
                        .map(|axis| Dim::Element {
                            param: index,
                            at: at.clone(),
                            axis,
                        })
                        .collect(),
                ),
                _ => None,
            },
            (Op::Binary(_, a, b) | Op::Pairwise(_, a, b), _) => broadcast(function, of(a), of(b)),
            (
                Op::Neg(a)
                | Op::Unary(_, a)
                | Op::Powi(a, _)
                | Op::Powf(a, _)
                | Op::Map { input: a, .. }
                | Op::Softmax(a, _)
                | Op::LogSoftmax(a, _)
                | Op::BatchNorm { input: a, .. },
                _,
            ) => of(a),
            (Op::Transpose(a), _) => of(a).map(|s| s.into_iter().rev().collect()),
            (Op::Dot(a, b), _) => match (of(a), of(b)) {
                (Some(a), Some(b)) => match (a.len(), b.len()) {
                    (2, 2) => Some(vec![a[0].clone(), b[1].clone()]),
                    (2, 1) => Some(vec![a[0].clone()]),
                    (1, 2) => Some(vec![b[1].clone()]),
                    _ => None,
                },
                _ => None,
            },
            (Op::SumAxis(a, axis) | Op::MeanAxis(a, axis), _) => {
                let axis = literal_axis(axis);
                match (of(a), axis) {
                    (Some(mut s), Some(axis)) if axis < s.len() => {
                        s.remove(axis);
                        Some(s)
                    }
                    _ => None,
                }
            }
            (
                Op::Conv2d {
                    input,
                    weight,
                    stride,
                    padding,
                    ..
                },
                _,
            ) => match (of(input), of(weight)) {
                (Some(x), Some(w)) if x.len() == 4 && w.len() == 4 => {
                    let window = |k: usize| Dim::Window {
                        input: Box::new(x[k].clone()),
                        window: Box::new(w[k].clone()),
                        padding: padding.clone(),
                        stride: stride.clone(),
                    };
                    Some(vec![x[0].clone(), w[0].clone(), window(2), window(3)])
                }
                _ => None,
            },
            (Op::MaxPool2d { input, kernel, stride }, _) => of(input).filter(|x| x.len() == 4).map(|x| {
                let window = |k: usize| Dim::ConstWindow {
                    input: Box::new(x[k].clone()),
                    window: kernel.clone(),
                    stride: stride.clone(),
                };
                vec![x[0].clone(), x[1].clone(), window(2), window(3)]
            }),
            _ => None,
        };
        shapes.push(shape);
    }
    shapes
}

/// The shape of a broadcasting op's result: axes aligned from the last, each the longer.
fn broadcast(function: &Function, a: Option<Shape>, b: Option<Shape>) -> Option<Shape> {
    let (a, b) = (a?, b?);
    let (long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    let offset = long.len() - short.len();
    Some(
        long.iter()
            .enumerate()
            .map(|(k, d)| match k.checked_sub(offset).map(|j| &short[j]) {
                Some(e) if !d.same(e, function) => Dim::Max(Box::new(d.clone()), Box::new(e.clone())),
                _ => d.clone(),
            })
            .collect(),
    )
}

/// The value of an integer literal.
fn literal(tokens: &TokenStream) -> Option<u64> {
    match syn::parse2::<syn::LitInt>(tokens.clone()) {
        Ok(n) => n.base10_parse().ok(),
        Err(_) => None,
    }
}

/// The axis of `Axis(k)` when `k` is a literal.
fn literal_axis(tokens: &TokenStream) -> Option<usize> {
    let expr: syn::Expr = syn::parse2(tokens.clone()).ok()?;
    let arg = match &expr {
        syn::Expr::Call(call) if call.args.len() == 1 => call.args.first()?,
        _ => &expr,
    };
    match arg {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(n), ..
        }) => n.base10_parse().ok(),
        _ => None,
    }
}

/// The number of elements of `shape`, as text (`x[0]×w1[1]`) and as code.
pub fn elements(function: &Function, shape: &Shape) -> (String, TokenStream) {
    if shape.is_empty() {
        return ("1".to_string(), quote!(1usize));
    }
    let text = shape.iter().map(|d| d.text(function)).collect::<Vec<_>>().join("×");
    let factors = shape.iter().map(|d| d.tokens(function));
    (text, quote!((1usize #(* #factors)*)))
}
