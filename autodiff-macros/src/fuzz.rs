//! A fuzz test of the macro's invariant (`ARCHITECTURE.md`): it never panics on user
//! input, and every error it reports sits on the user's own tokens.
//!
//! Cases are mutations of a corpus of valid functions of the subset, at three levels:
//! tokens (delete, duplicate, swap, replace a token or a group), syntax (statements,
//! operators, methods, out-of-subset statements, parameter and return types, generics,
//! raw identifiers, with `syn::visit_mut`) and the attribute's arguments. Each case is
//! written out as source text, `#[differentiate(args)] item`, and parsed back as one
//! string, so that every input token has a byte range in the same (fallback) source
//! file; an error on `Span::call_site()` (the attribute, in a real expansion) has none.
//!
//! For each case: no panic; every `compile_error!` has all its tokens inside the input;
//! an output without one parses as a file. Failures are grouped by class (panic site
//! and message, or error message), and each class is minimised by deleting tokens.
//!
//! `AUTODIFF_FUZZ_SEED` replays the fresh-seed test with a given seed and
//! `AUTODIFF_FUZZ_CASES` sets the number of cases of both tests.

use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::ops::Range;
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use proc_macro2::{Delimiter, Group, Ident, Span, TokenStream, TokenTree};
use quote::ToTokens;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use syn::visit_mut::{self, VisitMut};

/// The seed of the fixed-seed test.
const FIXED_SEED: u64 = 0x5eed_2026;
/// Cases per test when `AUTODIFF_FUZZ_CASES` is not set (two tests run in parallel).
const DEFAULT_CASES: usize = 2000;
/// Expansions the minimiser may spend on one failure class.
const MINIMISE_BUDGET: usize = 1500;

/// Valid functions of the subset, `(attribute arguments, item)`: the starting points of
/// every mutation (from `tests/gradients.rs`, `tests/ui/pass`, the README, the study's
/// cases and the shape of `random-functions`' output).
const CORPUS: &[(&str, &str)] = &[
    (
        "",
        "fn loss(x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>) -> f64 {
            let h = (x.dot(w) + b).tanh();
            (&h * &h).sum() / 2.0
        }",
    ),
    (
        "wrt(w, b)",
        "fn loss_params(x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>) -> f64 {
            let h = (x.dot(w) + b).tanh();
            (&h * &h).sum() / 2.0
        }",
    ),
    ("", "fn add_arrays(a: &Array2<f64>, b: &Array2<f64>) -> f64 { (a + b).mapv(|v| v * v).sum() }"),
    (
        "",
        "fn sub_mul_div(a: &Array2<f64>, b: &Array2<f64>) -> f64 { let c = &(a - b) * a; (c / b).sum() }",
    ),
    (
        "",
        "fn unary_chain(x: &Array1<f64>) -> f64 {
            let y = x.exp().ln().sqrt();
            let z = y.sin() + y.cos() + y.tanh() + y.abs() + y.recip();
            (z.square() + z.sigmoid() + z.relu()).sum()
        }",
    ),
    (
        "",
        "fn free_functions(x: &Array2<f64>) -> f64 {
            let y = relu(x) + sigmoid(x) + tanh(x) + square(x);
            mean(&y)
        }",
    ),
    ("", "fn powers(x: &Array1<f64>) -> f64 { (x.powi(3) + x.powf(2.5)).sum() }"),
    (
        "",
        "fn matmul_all_ranks(a: &Array2<f64>, b: &Array2<f64>, u: &Array1<f64>, v: &Array1<f64>) -> f64 {
            let m = a.dot(b);
            let mv = m.dot(v);
            let vm = u.dot(&m);
            mv.dot(&mv) + vm.sum() + u.dot(u)
        }",
    ),
    (
        "",
        "fn transposes(a: &Array2<f64>, b: &Array2<f64>) -> f64 { a.t().dot(b).reversed_axes().tanh().sum() }",
    ),
    (
        "",
        "fn reductions(x: &Array3<f64>) -> f64 {
            let s = x.sum_axis(Axis(1));
            let m = s.mean_axis(Axis(0)).unwrap();
            (m.square()).sum() + x.mean().unwrap() * x.sum()
        }",
    ),
    (
        "",
        "fn softmaxes(x: &Array2<f64>, r: &Array2<f64>) -> f64 {
            let p = softmax(x, Axis(1));
            let q = log_softmax(x, Axis(0));
            (&p * r).sum() + (&q * r).sum()
        }",
    ),
    (
        "",
        "fn losses(pred: &Array2<f64>, target: &Array2<f64>, labels: &[usize]) -> f64 {
            mse(pred, target) + cross_entropy(pred, labels)
        }",
    ),
    (
        "",
        "fn conv_bn_relu(x: &Array4<f64>, w: &Array4<f64>, gamma: &Array1<f64>, beta: &Array1<f64>) -> f64 {
            let y = conv2d(x, w, None::<&Array1<f64>>, 1, 1);
            let z = batch_norm(&y, gamma, beta, 1e-5);
            relu(&z).powi(3).sum()
        }",
    ),
    (
        "",
        "fn conv_pool(x: &Array4<f64>, w: &Array4<f64>, b: &Array1<f64>, stride: usize) -> f64 {
            let y = conv2d(x, w, Some(b), stride, 0);
            max_pool2d(&y, 2, 2).mapv(|v| v * v).sum()
        }",
    ),
    (
        "",
        "fn broadcasting(m: &Array2<f64>, row: &Array1<f64>, col: &Array2<f64>, s: f64) -> f64 {
            let a = m + row;
            let b = &a * col;
            let c = &b / (row + 2.0);
            let d = s * &c - row * s;
            (d - s).sum() / (s * s)
        }",
    ),
    (
        "",
        "fn scalar_forms(x: &Array1<f64>, s: f64, t: f64) -> f64 {
            let a = 2.0 * x + s;
            let b = s - &a;
            let c = t / (&b * &b + 1.0);
            let d = &c / t;
            let total = d.sum() * s.exp() + s.sin() * t.powi(2) - s / t;
            total + t.tanh() * s.sqrt().ln()
        }",
    ),
    (
        "",
        "fn mapv_closures(x: &Array1<f64>) -> f64 {
            let y = x.mapv(|v| v * v * v - 2.0 * v + v.exp() / (1.0 + v * v));
            let z = y.mapv(|v| (v.sin() * v.cos()).powi(2) + v.max(0.1) + v.min(0.5) - (-v).tanh());
            let q = z.mapv(|_v| 3.0);
            (z + q).sum()
        }",
    ),
    (
        "",
        "pub fn mlp(x: &Array2<f64>, w1: &Array2<f64>, b1: &Array1<f64>, w2: &Array2<f64>, b2: &Array1<f64>, labels: &[usize]) -> f64 {
            let h = relu(&(x.dot(w1) + b1));
            let logits = h.dot(w2) + b2;
            cross_entropy(&logits, labels)
        }",
    ),
    (
        "",
        "fn generic<F: Float>(x: &Array2<F>, w: &Array1<F>, s: F) -> F {
            let y = x.dot(w).tanh();
            let z = &y * s;
            z.sum() * s
        }",
    ),
    (
        "",
        "pub fn loss<F: Float>(x: &Array1<F>, scale: F, labels: &[usize]) -> F where F: Copy {
            let y = x * scale;
            y.sum() + F::of_usize(labels.len())
        }",
    ),
    ("", "fn dynamic_rank(x: &ArrayD<f64>, y: &ArrayD<f64>) -> f64 { (x * y).exp().sum() }"),
    (
        "",
        "fn owned_params(x: Array1<f64>, scale: f64, n: usize) -> f64 { let y = &x * scale; y.sum() / n as f64 }",
    ),
    (
        "wrt(w)",
        "fn unreached_wrt(x: &Array1<f64>, w: &Array1<f64>) -> f64 { let _ignored = w.exp(); x.sum() }",
    ),
    (
        "wrt(w1, b1, w2, b2), name = small_mlp_params",
        "pub fn small_mlp<F: Float>(x: &Array2<F>, w1: &Array2<F>, b1: &Array1<F>, w2: &Array2<F>, b2: &Array1<F>) -> F {
            (relu(&(x.dot(w1) + b1)).dot(w2) + b2).sum()
        }",
    ),
    (
        "wrt(w, bias, gamma, beta), name = conv2d_block_params",
        "pub fn conv2d_block<F: Float>(x: &Array4<F>, w: &Array4<F>, bias: &Array1<F>, gamma: &Array1<F>, beta: &Array1<F>) -> F {
            relu(&batch_norm(&conv2d(x, w, Some(bias), 1, 1), gamma, beta, F::of(1e-5))).sum()
        }",
    ),
    (
        "wrt(a, s)",
        "pub fn f3(a: &Array2<f64>, c: &Array1<f64>, s: f64) -> f64 {
            let t0 = (&a.mapv(|v| v * 0.5 + 1.25) + c).tanh();
            let t1 = t0.t().dot(a);
            let t2 = (t1.square() + 0.5).sqrt() * s;
            t2.sum() + s.exp()
        }",
    ),
    (
        "",
        "fn everything(x: &Array2<f64>, w: &Array2<f64>, v: &Array1<f64>, s: f64, k: usize) -> f64 {
            let a: Array2<f64> = x.dot(w);
            let a = &a + v;
            let b = a.clone() / (s + 1.0);
            let c = -b.t().to_owned();
            let d = c.reversed_axes().mapv(|t| t.exp() - 1.0);
            let e = d.sum_axis(Axis(1));
            let m = d.mean_axis(Axis(0)).unwrap();
            let f = softmax(&d, Axis(1));
            let g = log_softmax(&d, Axis(0));
            let h = e.sum() + m.mean().unwrap() + mean(&f) + g.sum() * (k as f64);
            let i = h.exp().ln() * s.sin().cos() + s.powi(2) - s.powf(1.5);
            return i + relu(&d).sum() + sigmoid(&d).sum() + tanh(&d).sum() + square(&d).sum();
        }",
    ),
    (
        "",
        "fn rnn(h0: &Array2<f64>, w: &Array2<f64>, u: &Array2<f64>, xs: &[Array2<f64>]) -> f64 {
            let mut h = h0.to_owned();
            for t in 0..xs.len() {
                h = (h.dot(w) + xs[t].dot(u)).tanh();
            }
            h.sum()
        }",
    ),
    (
        "wrt(ws)",
        "fn nested(x: &Array1<f64>, ws: &[Array1<f64>], n: usize) -> f64 {
            let mut h = x.to_owned();
            let mut total = 0.0;
            for i in 0..n {
                for (j, w) in ws.iter().enumerate() {
                    h = (&h * w).sin() * (j as f64);
                }
                total += h.sum() / (i as f64 + 1.0);
            }
            total
        }",
    ),
    (
        "",
        "fn acc<F: Float>(xs: &[Array1<F>], s: F) -> F {
            let mut acc = Array1::zeros(xs[0].len());
            for x in xs {
                acc += &x.mapv(|v| (v * s).exp());
            }
            acc.sum()
        }",
    ),
    (
        "",
        "fn branches(x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>, bias: bool, mode: usize) -> f64 {
            let z = if bias { x.dot(w) + b } else { x.dot(w) };
            let h = match mode {
                0 => z.tanh(),
                n if n > 3 => relu(&z),
                _ => z,
            };
            let s = h.sum();
            if s > 0.0 && mode != 1 { s } else { -s * 0.5 }
        }",
    ),
    (
        "",
        "fn caller(x: &Array2<f64>, w: &Array2<f64>, labels: &[usize]) -> f64 {
            let h: Array2<f64> = nn::layer(x, w, 0.5);
            let mut g = h.clone();
            for _ in 0..2 {
                g = layer(&g, w, 1.0);
            }
            let l: f64 = classify(&g, labels);
            l + x.mapv(|v| if v > 0.5 { v.clamp(0.0, 1.0) } else { 0.1 * v }).sum()
        }",
    ),
    (
        "vjp = gelu_backward",
        "fn gelu<F: Float>(x: &Array2<F>) -> Array2<F> {
            x.mapv(|v| v * (F::one() + (v * F::of(0.79788456)).tanh()) * F::of(0.5))
        }",
    ),
];

/// Identifiers a token mutation may write: methods of the subset and beyond, keywords,
/// raw identifiers and names that are not valid at the start of a generated name.
const IDENTS: &[&str] = &[
    "dot", "sum", "exp", "len", "nrows", "mapv", "powf", "powi", "max", "min", "t", "tanh", "clone", "unwrap",
    "sum_axis", "mean", "relu", "softmax", "Axis", "if", "for", "loop", "mut", "self", "Self", "r#dyn", "r#type", "_1",
    "_2d", "x", "w", "s", "F", "f64", "f32", "usize", "None", "Some", "as", "let", "return", "fn", "where",
];
/// Literals a token mutation may write.
const LITERALS: &[&str] = &[
    "2", "2.0", "1e-3", "\"s\"", "0", "0.0", "1usize", "2.5f32", "'c'", "1e308", "3i32",
];
/// Punctuation a token mutation may write.
const PUNCTS: &[&str] = &[
    "+", "-", "*", "/", ";", ",", "&", ".", "=", "<", ">", "!", "|", "?", ":", "%", "#",
];
/// Attribute arguments; `P` and `Q` are replaced by parameter names.
const ARGS: &[&str] = &[
    "",
    "wrt(P)",
    "wrt(P, Q)",
    "wrt(P, P)",
    "wrt(nope)",
    "wrt()",
    "wrt(r#dyn)",
    "wrt(P,)",
    "wrt(P) wrt(Q)",
    "wrt(P), wrt(Q)",
    "wrt = P",
    "wrt[P]",
    "wrt(P::Q)",
    "wrt(1)",
    "wrt",
    "name = _1",
    "name = r#dyn",
    "name = _2d",
    "name = loss_p",
    "name = \"s\"",
    "name",
    "name =",
    "name = a, name = b",
    "name = P",
    "name = r#fn",
    "wrt(P), name = _1",
    "wrt(Q), name = r#loss",
    "wrt(P), name = _2d_loss",
    "foo",
    "42",
    ",",
    "wrt(P),",
    "vjp = back",
    "vjp = a::b::back",
    "vjp",
    "vjp =",
    "vjp = 1",
    "vjp = back, vjp = back",
    "wrt(P), vjp = back",
    "vjp = back, name = p2",
    "vjp = r#fn",
    "name = self",
    "save = \"min\"",
    "save = \"all\"",
    "wrt(P), save = \"min\"",
    "save = \"min\", opt(liveness = false)",
    "save = min",
    "save = \"none\"",
    "save",
    "save = \"min\", save = \"all\"",
    "vjp = back, save = \"min\"",
    "residuals = \"bf16\"",
    "residuals = \"f16\", save = \"min\"",
    "residuals = bf16",
    "residuals = \"f8\"",
];
/// Statements outside the subset (or at its edges) to insert; `P` is a parameter, `S` a
/// float parameter when there is one.
const STATEMENTS: &[&str] = &[
    "for i in 0..n { }",
    "if a > b { let z = a; }",
    "let mut h = P.clone();",
    "h += &P;",
    ";",
    "return P.sum();",
    "let _ = P;",
    "let e = P[0];",
    "let k = P.len() as f64;",
    "let m = P.mapv(|v| v * S);",
    "let q = 2 * S;",
    "let c = 2.0 * 3.0;",
    "let c = 2.0;",
    "let c = 2.0; let e = 3.0 * c;",
    "let k = 2.0; let m = &P * k;",
    "let c = S * 2.0;",
    "let m = P.mapv(|| 1.0);",
    "let m = P.mapv(|a, b| a);",
    "let d = P.sum() + 3.0 * 2.0;",
    "let t = (P, P);",
    "let (a, b) = (P, P);",
    "let u = |v: f64| v;",
    "let m = vec![1];",
    "let w = { P };",
    "let r = &P;",
    "let y = P.mapv(|v| { let a = v; a });",
    "let p = P?;",
    "let s: f32 = 1.0;",
    "let P = P;",
    "let z = P.dot(&P);",
    "let z = S.dot(&P);",
    "let n = P.nrows();",
    "let g = P.mapv(|v| v.powf(S));",
    "let g = P.mapv(|v| v.max(S));",
    "let g = P.powi(S);",
    "let a = P.sum_axis(Axis(7));",
    "let a = P.mean_axis(Axis(0));",
    "let a = softmax(&P, Axis(1), 2);",
    "let a = conv2d(P, P, None, 1);",
    "P;",
    "let x;",
    "let _2d = P;",
    "let r#dyn = P;",
    "let v: Array1<f64> = P;",
    "fn inner() {}",
    "use std::f64;",
    "loop { break; }",
    "while true {}",
    "match P { _ => () };",
    "let a = P as usize;",
    "let a = -S;",
    "let a = !S;",
    "let a = S.exp().exp().ln();",
    "let a = P.t().t().t();",
];
/// Binary operators a syntax mutation may write.
const BINOPS: &[&str] = &[
    "+", "-", "*", "/", "%", "&&", "||", "==", "<", "&", "|", "^", "<<", "+=", "*=",
];
/// Parameter types a syntax mutation may write.
const PARAM_TYPES: &[&str] = &[
    "&ArrayView2<f64>",
    "&[Array1<f64>]",
    "usize",
    "&mut Array1<f64>",
    "f32",
    "&f64",
    "Array2<f32>",
    "&Array1<F>",
    "&Array5<f64>",
    "&Array<f64, Ix2>",
    "impl Fn(f64) -> f64",
    "&ArrayD<f64>",
    "Vec<f64>",
    "(f64, f64)",
    "&&Array1<f64>",
    "Option<&Array1<f64>>",
    "F",
    "&Array2<T>",
    "[f64; 3]",
    "Self",
];
/// Parameter patterns a syntax mutation may write.
const PATTERNS: &[&str] = &["mut P", "_", "(a, b)", "ref P", "r#dyn", "_1", "&P", "P @ _"];
/// Return types a syntax mutation may write (`""` removes it).
const RETURN_TYPES: &[&str] = &[
    "",
    "-> Array1<f64>",
    "-> (f64, f64)",
    "-> usize",
    "-> f32",
    "-> F",
    "-> impl Float",
    "-> &f64",
    "-> Result<f64, ()>",
    "-> !",
    "-> T",
];
/// Generic parameters a syntax mutation may add.
const GENERICS: &[&str] = &["T: Clone", "const N: usize", "F", "'a", "F: Float", "G: Float", "T"];
/// Names a renaming may give a parameter or the function.
const NAMES: &[&str] = &[
    "r#dyn", "r#type", "r#match", "_1", "_2d", "r#x", "_2d_loss", "r#loss", "_",
];
/// Forms the tail expression may be wrapped in; `E` is the expression.
const TAILS: &[&str] = &[
    "{ E }",
    "(E)",
    "return E",
    "E?",
    "-E",
    "E as f64",
    "E.max(0.0)",
    "E.sqrt()",
    "(E, E)",
];

// ---- one case ------------------------------------------------------------------

/// A failure of the invariant: its class (for grouping) and what was seen.
#[derive(Clone, Debug)]
struct Failure {
    class: String,
    detail: String,
}

/// The source text of a case: the attribute and the item, as one string.
fn source(args: &TokenStream, item: &TokenStream) -> String {
    if args.is_empty() {
        format!("#[differentiate]\n{item}")
    } else {
        format!("#[differentiate({args})]\n{item}")
    }
}

/// Splits parsed source text back into the attribute's arguments and the item.
fn split(tokens: TokenStream) -> Option<(TokenStream, TokenStream)> {
    let mut trees = tokens.into_iter();
    trees.next()?;
    let Some(TokenTree::Group(attribute)) = trees.next() else {
        return None;
    };
    let args = match attribute.stream().into_iter().nth(1) {
        Some(TokenTree::Group(group)) if group.delimiter() == Delimiter::Parenthesis => group.stream(),
        _ => TokenStream::new(),
    };
    Some((args, trees.collect()))
}

/// The byte range from the first to the last token of a stream.
fn hull(stream: &TokenStream) -> Option<Range<usize>> {
    let ranges: Vec<Range<usize>> = stream.clone().into_iter().map(|t| t.span().byte_range()).collect();
    Some(ranges.first()?.start..ranges.last()?.end)
}

/// Runs the macro on one case. `None` if the text does not even tokenize (a mutation
/// can write, e.g., a lone `'`); otherwise the failures, empty when the case passes.
fn run(text: &str) -> Option<Vec<Failure>> {
    let tokens: TokenStream = text.parse().ok()?;
    let file = tokens.clone().into_iter().next()?.span().file();
    let (args, item) = split(tokens)?;
    let inputs: Vec<Range<usize>> = [hull(&args), hull(&item)].into_iter().flatten().collect();
    let inside = |span: Span| {
        let range = span.byte_range();
        span.file() == file
            && inputs
                .iter()
                .any(|input| input.start <= range.start && range.end <= input.end)
    };

    PANIC.with(|p| p.borrow_mut().take());
    CAPTURING.with(|c| c.set(true));
    let expanded = panic::catch_unwind(AssertUnwindSafe(|| crate::expand_differentiate(args, item)));
    CAPTURING.with(|c| c.set(false));
    let output = match expanded {
        Ok(output) => output,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(non-string panic payload)".into());
            let site = PANIC.with(|p| p.borrow_mut().take()).unwrap_or_default();
            return Some(vec![Failure {
                class: format!("panic at {site}: {}", normalise(&message)),
                detail: format!("panicked at {site}: {message}"),
            }]);
        }
    };

    let mut errors = Vec::new();
    compile_errors(&output, &mut errors);
    let mut failures = Vec::new();
    for (message, spans) in &errors {
        if let Some(span) = spans.iter().find(|span| !inside(**span)) {
            let place = if span.file() == file {
                format!("bytes {:?} of the case", span.byte_range())
            } else {
                "Span::call_site()".to_string()
            };
            failures.push(Failure {
                class: format!("error outside the input: {}", normalise(message)),
                detail: format!("error at {place}: {message}"),
            });
        }
    }
    if errors.is_empty() {
        if let Err(error) = syn::parse2::<syn::File>(output) {
            failures.push(Failure {
                class: format!(
                    "output without errors does not parse: {}",
                    normalise(&error.to_string())
                ),
                detail: format!("output does not parse as a file: {error}"),
            });
        }
    }
    Some(failures)
}

/// Every `compile_error!` invocation in `stream`: its message and the spans of its
/// tokens (`compile_error`, `!`, the group and the string; `syn::Error` puts the
/// error's start on the first two and its end on the others).
fn compile_errors(stream: &TokenStream, out: &mut Vec<(String, Vec<Span>)>) {
    let trees: Vec<TokenTree> = stream.clone().into_iter().collect();
    for (i, tree) in trees.iter().enumerate() {
        match tree {
            TokenTree::Ident(ident) if ident == "compile_error" => {
                let (Some(TokenTree::Punct(bang)), Some(TokenTree::Group(group))) =
                    (trees.get(i + 1), trees.get(i + 2))
                else {
                    continue;
                };
                let mut spans = vec![ident.span(), bang.span(), group.span()];
                let mut message = group.stream().to_string();
                if let Some(TokenTree::Literal(literal)) = group.stream().into_iter().next() {
                    spans.push(literal.span());
                    if let Ok(string) = syn::parse2::<syn::LitStr>(literal.to_token_stream()) {
                        message = string.value();
                    }
                }
                out.push((message, spans));
            }
            TokenTree::Group(group) => compile_errors(&group.stream(), out),
            _ => {}
        }
    }
}

/// A message with the user's names taken out (`...` and "..." become `_` and "_"), so
/// that one bug met with different names is one class.
fn normalise(message: &str) -> String {
    let mut out = String::new();
    let mut open: Option<char> = None;
    for c in message.chars() {
        match open {
            Some(quote) if c == quote => {
                out.push('_');
                out.push(c);
                open = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '`' || c == '"' {
                    open = Some(c);
                }
            }
        }
    }
    out
}

// ---- panics --------------------------------------------------------------------

thread_local! {
    /// Whether this thread is running a case: its panics are recorded, not printed.
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    /// Where the last panic of a case happened.
    static PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The panic hook this module installed, shared by the tests running at the same time:
/// how many are running, and the hook it replaced (restored when the last one ends).
static HOOK: Mutex<(usize, Option<Arc<Hook>>)> = Mutex::new((0, None));

type Hook = Box<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// While alive, panics on a thread running a case are recorded (their site) instead of
/// printed; other threads' panics go to the previous hook, which is restored when the
/// last `QuietPanics` is dropped.
struct QuietPanics;

impl QuietPanics {
    fn install() -> Self {
        let mut state = HOOK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.0 == 0 {
            let previous = Arc::new(panic::take_hook());
            let fallthrough = Arc::clone(&previous);
            panic::set_hook(Box::new(move |info| {
                if CAPTURING.with(Cell::get) {
                    PANIC.with(|p| *p.borrow_mut() = Some(panic_site(info)));
                } else {
                    fallthrough(info);
                }
            }));
            state.1 = Some(previous);
        }
        state.0 += 1;
        QuietPanics
    }
}

impl Drop for QuietPanics {
    fn drop(&mut self) {
        let mut state = HOOK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.0 -= 1;
        if state.0 == 0 {
            // Dropping our hook drops its handle on the previous one, which is then ours alone.
            drop(panic::take_hook());
            if let Some(previous) = state.1.take().and_then(Arc::into_inner) {
                panic::set_hook(previous);
            }
        }
    }
}

/// Where a panic happened. A panic inside a dependency (`format_ident!` in proc-macro2,
/// say) is also placed at the innermost frame of this crate, since the dependency's line
/// is the same for every caller.
fn panic_site(info: &PanicHookInfo<'_>) -> String {
    let location = info
        .location()
        .map_or_else(|| "?".to_string(), |l| format!("{}:{}", short_path(l.file()), l.line()));
    if location.starts_with("autodiff-macros/") || location.starts_with("src/") {
        return location;
    }
    let trace = Backtrace::force_capture().to_string();
    let mut lines = trace.lines();
    while let Some(line) = lines.next() {
        let symbol = line.trim_start().split_once(": ").map_or("", |(_, symbol)| symbol);
        if symbol.starts_with("autodiff_macros::") && !symbol.starts_with("autodiff_macros::fuzz") {
            let at = lines.next().and_then(|l| l.trim().strip_prefix("at ")).unwrap_or("");
            return format!("{location} via {symbol} ({})", short_path(at));
        }
    }
    location
}

/// A path from `src/` or from the crate's directory on.
fn short_path(path: &str) -> &str {
    path.find("autodiff-macros/").map_or(path, |i| &path[i..])
}

// ---- mutations -----------------------------------------------------------------

fn token(text: &str) -> TokenTree {
    text.parse::<TokenStream>().unwrap().into_iter().next().unwrap()
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.gen_range(0..items.len())]
}

/// Token trees in a stream, nested ones included.
fn count_trees(stream: &TokenStream) -> usize {
    stream
        .clone()
        .into_iter()
        .map(|tree| match tree {
            TokenTree::Group(group) => 1 + count_trees(&group.stream()),
            _ => 1,
        })
        .sum()
}

/// Applies `edit` to the sequence holding the `target`-th tree (in pre-order) at its index.
fn edit_nth(stream: TokenStream, target: usize, edit: &mut dyn FnMut(&mut Vec<TokenTree>, usize)) -> TokenStream {
    fn walk(
        stream: TokenStream,
        target: usize,
        seen: &mut usize,
        edit: &mut dyn FnMut(&mut Vec<TokenTree>, usize),
    ) -> TokenStream {
        let mut trees: Vec<TokenTree> = stream.into_iter().collect();
        let mut i = 0;
        while i < trees.len() && *seen <= target {
            if *seen == target {
                *seen += 1;
                edit(&mut trees, i);
                break;
            }
            *seen += 1;
            if let TokenTree::Group(group) = &trees[i] {
                let mut rebuilt = Group::new(group.delimiter(), walk(group.stream(), target, seen, edit));
                rebuilt.set_span(group.span());
                trees[i] = TokenTree::Group(rebuilt);
            }
            i += 1;
        }
        trees.into_iter().collect()
    }
    walk(stream, target, &mut 0, edit)
}

/// One token-level mutation: delete, duplicate or swap a tree, or replace it by one of
/// its kind (a group by the same tokens in other delimiters).
fn mutate_tokens(rng: &mut StdRng, stream: TokenStream) -> TokenStream {
    let n = count_trees(&stream);
    if n == 0 {
        return stream;
    }
    let target = rng.gen_range(0..n);
    let op = rng.gen_range(0..4);
    edit_nth(stream, target, &mut |trees, i| match op {
        0 => {
            trees.remove(i);
        }
        1 => trees.insert(i, trees[i].clone()),
        2 if i + 1 < trees.len() => trees.swap(i, i + 1),
        2 if i > 0 => trees.swap(i - 1, i),
        _ => {
            trees[i] = match &trees[i] {
                TokenTree::Ident(_) => token(pick(rng, IDENTS)),
                TokenTree::Literal(_) => token(pick(rng, LITERALS)),
                TokenTree::Punct(_) => token(pick(rng, PUNCTS)),
                TokenTree::Group(group) => {
                    let delimiters = [Delimiter::Parenthesis, Delimiter::Bracket, Delimiter::Brace];
                    TokenTree::Group(Group::new(delimiters[rng.gen_range(0..3)], group.stream()))
                }
            }
        }
    })
}

/// Attribute arguments from the list, with parameter names filled in.
fn mutate_args(rng: &mut StdRng, params: &[String]) -> TokenStream {
    let p = params
        .get(rng.gen_range(0..params.len().max(1)))
        .map_or("x", String::as_str);
    let q = params
        .get(rng.gen_range(0..params.len().max(1)))
        .map_or("w", String::as_str);
    let text = pick(rng, ARGS).replace('P', p).replace('Q', q);
    text.parse().unwrap_or_default()
}

/// The names of the function's simple parameters, and of those typed as a float.
fn params(item: &syn::ItemFn) -> (Vec<String>, Vec<String>) {
    let mut names = Vec::new();
    let mut floats = Vec::new();
    for input in &item.sig.inputs {
        if let syn::FnArg::Typed(typed) = input {
            if let syn::Pat::Ident(pat) = &*typed.pat {
                let name = pat.ident.to_string();
                let ty = typed.ty.to_token_stream().to_string();
                if ty == "f64" || ty == "F" || ty == "f32" {
                    floats.push(name.clone());
                }
                names.push(name);
            }
        }
    }
    (names, floats)
}

/// Calls `edit` on the `target`-th binary expression or method call (in visit order),
/// or counts them when `target` is past the end.
struct Nth<'a> {
    target: usize,
    seen: usize,
    binary: Option<&'a mut dyn FnMut(&mut syn::ExprBinary)>,
    method: Option<&'a mut dyn FnMut(&mut syn::ExprMethodCall)>,
    path: Option<&'a mut dyn FnMut(&mut syn::ExprPath)>,
}

impl Nth<'_> {
    fn hit(&mut self) -> bool {
        self.seen += 1;
        self.seen - 1 == self.target
    }
}

impl VisitMut for Nth<'_> {
    fn visit_expr_binary_mut(&mut self, e: &mut syn::ExprBinary) {
        if self.binary.is_some() && self.hit() {
            (self.binary.as_mut().unwrap())(e);
        }
        visit_mut::visit_expr_binary_mut(self, e);
    }
    fn visit_expr_method_call_mut(&mut self, e: &mut syn::ExprMethodCall) {
        if self.method.is_some() && self.hit() {
            (self.method.as_mut().unwrap())(e);
        }
        visit_mut::visit_expr_method_call_mut(self, e);
    }
    fn visit_expr_path_mut(&mut self, e: &mut syn::ExprPath) {
        if self.path.is_some() && self.hit() {
            (self.path.as_mut().unwrap())(e);
        }
        visit_mut::visit_expr_path_mut(self, e);
    }
}

/// Visits the body with `nth` twice: once to count, once to edit a random node.
fn edit_random_node(rng: &mut StdRng, item: &mut syn::ItemFn, mut nth: Nth<'_>) {
    nth.target = usize::MAX;
    nth.visit_block_mut(&mut item.block);
    if nth.seen == 0 {
        return;
    }
    nth.target = rng.gen_range(0..nth.seen);
    nth.seen = 0;
    nth.visit_block_mut(&mut item.block);
}

/// Renames every identifier equal to `from`.
struct Rename {
    from: String,
    to: Ident,
}

impl VisitMut for Rename {
    fn visit_ident_mut(&mut self, ident: &mut Ident) {
        if *ident == self.from {
            *ident = self.to.clone();
        }
    }
}

fn ident(text: &str) -> Ident {
    match text.strip_prefix("r#") {
        Some(raw) => Ident::new_raw(raw, Span::call_site()),
        None => Ident::new(text, Span::call_site()),
    }
}

/// One syntax-level mutation of a function.
fn mutate_syntax(rng: &mut StdRng, item: &mut syn::ItemFn) {
    let (names, floats) = params(item);
    let p = names
        .get(rng.gen_range(0..names.len().max(1)))
        .cloned()
        .unwrap_or_else(|| "x".into());
    let s = floats.first().cloned().unwrap_or_else(|| "2.0".into());
    let stmts = &mut item.block.stmts;
    let n = stmts.len();
    match rng.gen_range(0..16) {
        0 if n > 1 => {
            stmts.remove(rng.gen_range(0..n));
        }
        1 if n > 1 => {
            let i = rng.gen_range(0..n - 1);
            stmts.swap(i, i + 1);
        }
        2 if n > 0 => {
            let i = rng.gen_range(0..n);
            stmts.insert(i, stmts[i].clone());
        }
        3 => {
            let op: syn::BinOp = syn::parse_str(pick(rng, BINOPS)).unwrap();
            let mut edit = |e: &mut syn::ExprBinary| e.op = op;
            edit_random_node(
                rng,
                item,
                Nth {
                    target: 0,
                    seen: 0,
                    binary: Some(&mut edit),
                    method: None,
                    path: None,
                },
            );
        }
        4 => {
            let name = ident(pick(rng, IDENTS));
            let mut edit = |e: &mut syn::ExprMethodCall| e.method = name.clone();
            edit_random_node(
                rng,
                item,
                Nth {
                    target: 0,
                    seen: 0,
                    binary: None,
                    method: Some(&mut edit),
                    path: None,
                },
            );
        }
        5 => {
            let other = names
                .get(rng.gen_range(0..names.len().max(1)))
                .cloned()
                .unwrap_or_else(|| "y".into());
            let mut edit = |e: &mut syn::ExprPath| {
                if let Some(segment) = e.path.segments.last_mut() {
                    segment.ident = ident(&other);
                }
            };
            edit_random_node(
                rng,
                item,
                Nth {
                    target: 0,
                    seen: 0,
                    binary: None,
                    method: None,
                    path: Some(&mut edit),
                },
            );
        }
        6 | 7 => {
            let text = pick(rng, STATEMENTS).replace('P', &p).replace('S', &s);
            if let Ok(block) = syn::parse_str::<syn::Block>(&format!("{{ {text} }}")) {
                let at = rng.gen_range(0..=n.saturating_sub(1));
                for (k, stmt) in block.stmts.into_iter().enumerate() {
                    item.block.stmts.insert(at + k, stmt);
                }
            }
        }
        8 => {
            let typed: Vec<usize> = (0..item.sig.inputs.len())
                .filter(|&i| matches!(item.sig.inputs[i], syn::FnArg::Typed(_)))
                .collect();
            if let Some(&i) = typed.get(rng.gen_range(0..typed.len().max(1))) {
                if let syn::FnArg::Typed(arg) = &mut item.sig.inputs[i] {
                    if rng.gen_bool(0.7) {
                        *arg.ty = syn::parse_str(pick(rng, PARAM_TYPES)).unwrap();
                    } else {
                        let name = match &*arg.pat {
                            syn::Pat::Ident(pat) => pat.ident.to_string(),
                            _ => "x".into(),
                        };
                        let text = pick(rng, PATTERNS).replace('P', &name);
                        *arg.pat = syn::parse::Parser::parse_str(syn::Pat::parse_single, &text).unwrap();
                    }
                }
            }
        }
        9 => match rng.gen_range(0..3) {
            0 => {
                let param: syn::GenericParam = syn::parse_str(pick(rng, GENERICS)).unwrap();
                item.sig.generics.params.push(param);
            }
            1 => {
                let predicate: syn::WherePredicate = syn::parse_str("F: Copy").unwrap();
                item.sig.generics.make_where_clause().predicates.push(predicate);
            }
            _ => item.sig.generics = syn::Generics::default(),
        },
        10 => {
            let text = pick(rng, RETURN_TYPES);
            item.sig.output = if text.is_empty() {
                syn::ReturnType::Default
            } else {
                syn::parse_str(text).unwrap()
            };
        }
        11 => {
            let to = ident(pick(rng, NAMES));
            if rng.gen_bool(0.3) || names.is_empty() {
                item.sig.ident = to;
            } else {
                Rename { from: p, to }.visit_item_fn_mut(item);
            }
        }
        12 => {
            if let Some(syn::Stmt::Expr(tail, None)) = item.block.stmts.last_mut() {
                let text = pick(rng, TAILS).replace('E', &tail.to_token_stream().to_string());
                if let Ok(expr) = syn::parse_str(&text) {
                    *tail = expr;
                }
            } else if let Some(syn::Stmt::Expr(_, semi @ Some(_))) = item.block.stmts.last_mut() {
                *semi = None;
            }
        }
        13 => {
            if let Some(syn::Stmt::Expr(_, semi @ None)) = item.block.stmts.last_mut() {
                *semi = Some(Default::default());
            }
        }
        14 => match rng.gen_range(0..5) {
            0 => item.sig.asyncness = Some(Default::default()),
            1 => item.sig.constness = Some(Default::default()),
            2 => item.sig.unsafety = Some(Default::default()),
            3 => item.attrs.push(syn::parse_quote!(#[differentiate])),
            _ => item.sig.inputs.insert(0, syn::parse_quote!(&self)),
        },
        _ => {
            // A literal of the other kind: an integer where a float was, and back.
            let text = item.block.to_token_stream().to_string();
            let swapped = if rng.gen_bool(0.5) {
                text.replacen("2.0", "2", 1)
            } else {
                text.replacen(" 1 ", " 1.0 ", 1)
            };
            if let Ok(block) = syn::parse_str(&swapped) {
                *item.block = block;
            }
        }
    }
}

/// A case: a corpus entry with one to three mutations.
fn case(rng: &mut StdRng) -> (TokenStream, TokenStream) {
    let (args, item) = CORPUS[rng.gen_range(0..CORPUS.len())];
    let mut args: TokenStream = args.parse().unwrap();
    let mut item: TokenStream = item.parse().unwrap();
    let mutations = if rng.gen_bool(0.03) { 0 } else { rng.gen_range(1..=3) };
    for _ in 0..mutations {
        match rng.gen_range(0..10) {
            0..=3 => match syn::parse2::<syn::ItemFn>(item.clone()) {
                Ok(mut parsed) => {
                    mutate_syntax(rng, &mut parsed);
                    item = parsed.into_token_stream();
                }
                Err(_) => item = mutate_tokens(rng, item),
            },
            4..=7 => item = mutate_tokens(rng, item),
            8 => {
                let names = syn::parse2::<syn::ItemFn>(item.clone())
                    .map(|f| params(&f).0)
                    .unwrap_or_default();
                args = mutate_args(rng, &names);
            }
            _ => args = mutate_tokens(rng, args),
        }
    }
    (args, item)
}

// ---- minimising ----------------------------------------------------------------

/// Shrinks a failing case while it still fails with the same class: deletes the segments
/// between `;` or `,` of each sequence, then single trees, until nothing more goes.
fn minimise(args: TokenStream, item: TokenStream, class: &str) -> String {
    let mut budget = MINIMISE_BUDGET;
    let mut parts = [args, item];
    let mut still_fails = |parts: &[TokenStream; 2]| {
        budget = budget.saturating_sub(1);
        budget > 0
            && run(&source(&parts[0], &parts[1])).is_some_and(|failures| failures.iter().any(|f| f.class == class))
    };
    let mut progress = true;
    while progress {
        progress = false;
        for part in 0..2 {
            // Segments: from a tree to the next `;`/`,` of its sequence (inclusive).
            let mut target = 0;
            while target < count_trees(&parts[part]) {
                let mut candidate = parts.clone();
                candidate[part] = edit_nth(parts[part].clone(), target, &mut |trees, i| {
                    let end = trees[i..]
                        .iter()
                        .position(|t| matches!(t, TokenTree::Punct(p) if p.as_char() == ';' || p.as_char() == ','))
                        .map_or(trees.len(), |k| i + k + 1);
                    trees.drain(i..end);
                });
                if still_fails(&candidate) {
                    parts = candidate;
                    progress = true;
                } else {
                    target += 1;
                }
            }
            let mut target = 0;
            while target < count_trees(&parts[part]) {
                let mut candidate = parts.clone();
                candidate[part] = edit_nth(parts[part].clone(), target, &mut |trees, i| {
                    trees.remove(i);
                });
                if still_fails(&candidate) {
                    parts = candidate;
                    progress = true;
                } else {
                    target += 1;
                }
            }
        }
    }
    pretty(&parts[0], &parts[1], class)
}

/// A case as readable source: the item pretty-printed when it parses and still fails
/// the same way (prettyplease drops a stray `;`, for one), else as tokens.
fn pretty(args: &TokenStream, item: &TokenStream, class: &str) -> String {
    let raw = source(args, item);
    let Ok(file) = syn::parse2::<syn::File>(item.clone()) else {
        return raw;
    };
    let (attribute, _) = raw.split_once('\n').unwrap_or_default();
    let text = format!("{attribute}\n{}", prettyplease::unparse(&file).trim_end());
    match run(&text) {
        Some(failures) if failures.iter().any(|f| f.class == class) => text,
        _ => raw,
    }
}

// ---- the tests -----------------------------------------------------------------

/// A failure class: how often it was met, and its shortest case.
struct Class {
    count: usize,
    detail: String,
    args: TokenStream,
    item: TokenStream,
    length: usize,
}

fn env_number(key: &str) -> Option<u64> {
    std::env::var(key).ok().and_then(|v| v.trim().parse().ok())
}

/// Runs `cases` cases from `seed` and panics with every failure class, each minimised.
fn fuzz(seed: u64) {
    let cases = env_number("AUTODIFF_FUZZ_CASES").map_or(DEFAULT_CASES, |n| n as usize);
    eprintln!("fuzz: seed {seed}, {cases} cases (replay: AUTODIFF_FUZZ_SEED={seed})");
    let start = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut classes: BTreeMap<String, Class> = BTreeMap::new();
    let mut untokenizable = 0;
    let quiet = QuietPanics::install();
    for _ in 0..cases {
        let (args, item) = case(&mut rng);
        let text = source(&args, &item);
        let Some(failures) = run(&text) else {
            untokenizable += 1;
            continue;
        };
        for failure in failures {
            let class = classes.entry(failure.class).or_insert_with(|| Class {
                count: 0,
                detail: failure.detail.clone(),
                args: args.clone(),
                item: item.clone(),
                length: usize::MAX,
            });
            class.count += 1;
            if text.len() < class.length {
                (class.detail, class.args, class.item, class.length) =
                    (failure.detail, args.clone(), item.clone(), text.len());
            }
        }
    }
    let fuzzed = start.elapsed();
    let report: Vec<String> = classes
        .iter()
        .map(|(key, class)| {
            let minimal = minimise(class.args.clone(), class.item.clone(), key);
            format!("- {} ({} cases)\n{}\n", class.detail, class.count, minimal)
        })
        .collect();
    drop(quiet);
    eprintln!(
        "fuzz: seed {seed}: {cases} cases in {fuzzed:.1?} ({untokenizable} did not tokenize), {} failure classes",
        classes.len()
    );
    assert!(
        report.is_empty(),
        "the macro broke its invariant (seed {seed}); one minimised case per class:\n\n{}",
        report.join("\n")
    );
}

/// The corpus itself expands without errors: the mutations start from the subset.
#[test]
fn corpus_expands_cleanly() {
    for (args, item) in CORPUS {
        let output = crate::expand_differentiate(args.parse().unwrap(), item.parse().unwrap());
        let mut errors = Vec::new();
        compile_errors(&output, &mut errors);
        assert!(errors.is_empty(), "{item}: {errors:?}");
        syn::parse2::<syn::File>(output).unwrap();
    }
}

#[test]

fn fuzz_fixed_seed() {
    fuzz(FIXED_SEED);
}

/// A fresh seed each run (printed, and replayed by `AUTODIFF_FUZZ_SEED`), so that runs
/// together cover more than one seed can.
#[test]

fn fuzz_fresh_seed() {
    let seed = env_number("AUTODIFF_FUZZ_SEED").unwrap_or_else(|| {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        now.as_nanos() as u64
    });
    fuzz(seed);
}
