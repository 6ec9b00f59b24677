//! The same function recorded on the runtime's dynamic tape: every value is a `Var`,
//! every op the `Var` method of the same name. Intermediate `Var`s are dropped after
//! their last use, as Python drops a temporary tensor, so the tape frees what no saved
//! slot holds.
//!
//! Before: `let h = x.dot(w).tanh(); h.sum() / 2.0`
//! After:  `let v2 = x.dot(w); let h_3 = v2.tanh(); drop(v2); let v4 = h_3.sum(); drop(h_3); let v5 = v4.div_scalar(2.0);`

use std::collections::HashMap;

use proc_macro2::TokenStream;
use quote::quote;

use super::calls;
use super::names::Names;
use crate::ir::{BinOp, Function, Init, Kind, Loop, Op, Origin, ParamRole, ScalarCond, ScalarExpr, Stmt, ValueId};
use crate::liveness::ForwardLiveness;
use crate::scalar::{Closure, Wrt};

/// The body of `<name>_on_tape`; float and array parameters are `&Var`s of the same names
/// (slices of arrays, `&[Var]`).
pub fn body(function: &Function, liveness: &ForwardLiveness, names: &Names) -> TokenStream {
    // Any `Var` parameter leads to the tape (a function has at least one); a slice's first element.
    let owner = |kinds: &dyn Fn(Kind) -> bool| {
        function.params.iter().find_map(|p| match p.role {
            ParamRole::Value { kind, .. } if kinds(kind) => Some(p.ident.clone()),
            _ => None,
        })
    };
    let tape_of = match owner(&|kind| !matches!(kind, Kind::Slice(_))) {
        Some(ident) => quote!(#ident.tape()),
        None => {
            let slice = owner(&|_| true);
            quote!(#slice[0].tape())
        }
    };
    let mut body = statements(function, liveness, names, &HashMap::new(), &tape_of, &[function.output]);
    let output = function.output;
    let result = match &function.stmt(output).op {
        Op::Param { .. } => {
            let ident = names.ident(output);
            quote!(::core::clone::Clone::clone(#ident))
        }
        Op::Const(_) => quote!(::core::panic!(
            "the function's value does not depend on its float parameters"
        )),
        _ => {
            let ident = names.ident(output);
            quote!(#ident)
        }
    };
    body.extend(result);
    body
}

/// The statements of `function` (the annotated one, or a loop body whose captured
/// parameters are the outer `Var`s `outer`, by parameter index), recorded op by op.
/// Values in `keep` are not dropped after their last use.
fn statements(
    function: &Function,
    liveness: &ForwardLiveness,
    names: &Names,
    outer: &HashMap<usize, TokenStream>,
    tape_of: &TokenStream,
    keep: &[ValueId],
) -> TokenStream {
    // A `Var` argument: the function's parameters are already references, locals are
    // borrowed, a slice's element is borrowed from it.
    let var = |v: ValueId| statements_var(function, names, outer, v);
    let constant = |v: ValueId| match &function.stmt(v).op {
        Op::Const(t) => Some(quote!((#t))),
        _ => None,
    };
    let mut body = TokenStream::new();
    for stmt in &function.stmts {
        let expr = match &stmt.op {
            Op::Param { .. } | Op::Const(_) | Op::Index(..) | Op::LoopOut { .. } => continue,
            Op::Loop(l) => {
                body.extend(loop_on_tape(function, names, stmt.id, l, &var, tape_of, liveness, keep));
                continue;
            }
            Op::Call(c) => calls::on_tape(c, &var, tape_of),
            Op::Custom { call, vjp } => custom_on_tape(function, names, stmt, call, vjp, &var, tape_of),
            // Conditions are plain `bool`s, read from the `Var`s' values.
            Op::Compare(cmp, a, b) => {
                let side = |v: ValueId| match constant(v) {
                    Some(c) => c,
                    None => {
                        let x = var(v);
                        quote!(#x.scalar())
                    }
                };
                let (x, y, symbol) = (side(*a), side(*b), cmp.symbol());
                quote!((#x) #symbol (#y))
            }
            Op::Not(a) => {
                let x = var(*a);
                quote!(!#x)
            }
            Op::And(a, b) => {
                let (x, y) = (var(*a), var(*b));
                quote!(#x && #y)
            }
            Op::Or(a, b) => {
                let (x, y) = (var(*a), var(*b));
                quote!(#x || #y)
            }
            // An array built in the body is a constant leaf, owned by the tape.
            Op::ConstArray(tokens) if stmt.kind == Kind::Bool => quote!({ let __value: bool = #tokens; __value }),
            Op::ConstArray(tokens) if stmt.kind == Kind::Scalar => {
                let float = &names.float;
                quote!(#tape_of.constant_scalar({ let __value: #float = #tokens; __value }))
            }
            Op::ConstArray(tokens) => {
                let dim = names.dim_type(stmt.kind);
                quote!(#tape_of.constant_owned::<#dim>(#tokens))
            }
            Op::Binary(op, a, b) => {
                let method = |name: &str| syn::Ident::new(name, proc_macro2::Span::call_site());
                match (constant(*a), constant(*b)) {
                    (None, None) => {
                        let (x, y, m) = (var(*a), var(*b), method(op.name()));
                        quote!(#x.#m(#y))
                    }
                    (None, Some(c)) => {
                        let (x, m) = (var(*a), method(&format!("{}_scalar", op.name())));
                        quote!(#x.#m(#c))
                    }
                    (Some(c), None) => {
                        let y = var(*b);
                        let m = match op {
                            BinOp::Add | BinOp::Mul => method(&format!("{}_scalar", op.name())),
                            BinOp::Sub | BinOp::Div => method(&format!("scalar_{}", op.name())),
                        };
                        quote!(#y.#m(#c))
                    }
                    (Some(_), Some(_)) => unreachable!("an op of two constants is itself a constant"),
                }
            }
            Op::Neg(a) => {
                let x = var(*a);
                quote!(#x.neg())
            }
            Op::Unary(f, a) => {
                let (x, m) = (var(*a), syn::Ident::new(f.name(), proc_macro2::Span::call_site()));
                quote!(#x.#m())
            }
            Op::Pairwise(f, a, b) => {
                let (x, y, m) = (
                    var(*a),
                    var(*b),
                    syn::Ident::new(f.name(), proc_macro2::Span::call_site()),
                );
                quote!(#x.#m(#y))
            }
            Op::Powi(a, n) => {
                let x = var(*a);
                quote!(#x.powi(#n))
            }
            Op::Powf(a, p) => {
                let x = var(*a);
                quote!(#x.powf(#p))
            }
            Op::Map {
                input,
                arg,
                body: scalar_body,
                captures,
            } if captures.is_empty() => {
                // The tape keeps the derivative closure, so it must own what it reads: the
                // body's constants (which may borrow parameters, `x.len()`, `*s`) are
                // evaluated once, here, and moved in.
                let x = var(*input);
                let mut constants = Vec::new();
                let body = hoist_constants(scalar_body, &mut constants);
                let closure = Closure {
                    arg,
                    body: &body,
                    captures: &[],
                };
                let (f, df) = (closure.forward_closure(), closure.derivative_closure(Wrt::Arg));
                let bindings = constants.iter().enumerate().map(|(k, tokens)| {
                    let name = constant_name(k);
                    quote!(let #name = #tokens;)
                });
                quote!({ #(#bindings)* #x.map(move #f, move #df) })
            }
            // A closure that captures floats is recorded op by op, so that the tape carries
            // the gradient to the captured values as it does everywhere else.
            Op::Map {
                input,
                body: scalar_body,
                captures,
                ..
            } => {
                let captures: Vec<TokenStream> = captures.iter().map(|&c| var(c)).collect();
                closure_on_tape(scalar_body, &var(*input), &captures)
            }
            Op::Dot(a, b) => {
                let (x, y) = (var(*a), var(*b));
                quote!(#x.dot(#y))
            }
            Op::Transpose(a) => {
                let x = var(*a);
                quote!(#x.t())
            }
            Op::Sum(a) => {
                let x = var(*a);
                quote!(#x.sum())
            }
            Op::Mean(a) => {
                let x = var(*a);
                quote!(#x.mean())
            }
            Op::SumAxis(a, axis) => {
                let x = var(*a);
                quote!(#x.sum_axis(#axis))
            }
            Op::MeanAxis(a, axis) => {
                let x = var(*a);
                quote!(#x.mean_axis(#axis))
            }
            Op::Softmax(a, axis) => {
                let x = var(*a);
                quote!(#x.softmax(#axis))
            }
            Op::LogSoftmax(a, axis) => {
                let x = var(*a);
                quote!(#x.log_softmax(#axis))
            }
            Op::Mse(p, t) => {
                let (x, y) = (var(*p), var(*t));
                quote!(#x.mse(#y))
            }
            Op::CrossEntropy(l, labels) => {
                let x = var(*l);
                quote!(#x.cross_entropy(#labels))
            }
            Op::Conv2d {
                input,
                weight,
                bias,
                stride,
                padding,
            } => {
                let (x, w) = (var(*input), var(*weight));
                let b = match bias {
                    Some(b) => {
                        let b = var(*b);
                        quote!(::core::option::Option::Some(#b))
                    }
                    None => quote!(::core::option::Option::None),
                };
                quote!(#x.conv2d(#w, #b, #stride, #padding))
            }
            Op::BatchNorm {
                input,
                gamma,
                beta,
                eps,
            } => {
                let (x, g, b) = (var(*input), var(*gamma), var(*beta));
                quote!(#x.batch_norm(#g, #b, #eps))
            }
            Op::MaxPool2d { input, kernel, stride } => {
                let x = var(*input);
                quote!(#x.max_pool2d(#kernel, #stride))
            }
        };
        let ident = names.ident(stmt.id);
        body.extend(quote!(let #ident = #expr;));
        body.extend(drops(function, liveness, names, stmt, keep));
    }
    body
}

/// A custom rule on the tape: one node, whose forward is the user's function on the
/// inputs' values and whose backward calls the user's VJP (which owns copies of the inputs,
/// the constants and the output, as a tape node saves what its backward reads).
fn custom_on_tape(
    function: &Function,
    names: &Names,
    stmt: &Stmt,
    call: &crate::ir::Call,
    vjp: &syn::Path,
    var: &dyn Fn(ValueId) -> TokenStream,
    tape_of: &TokenStream,
) -> TokenStream {
    use crate::ir::{CallArg, Passing};
    let float = &names.float;
    let arr0 = quote!(::autodiff::ndarray::arr0);
    let mut bindings = TokenStream::new();
    let mut inputs = Vec::new();
    let mut forward_args = Vec::new();
    let mut backward_args = Vec::new();
    let mut grads = Vec::new();
    for (k, arg) in call.args.iter().enumerate() {
        let local = quote::format_ident!("__arg{}", k, span = proc_macro2::Span::mixed_site());
        match arg {
            CallArg::Value(v, passing) => {
                let (x, kind) = (var(*v), function.kind(*v));
                inputs.push(x.clone());
                let grad = quote::format_ident!("__grad{}", k, span = proc_macro2::Span::mixed_site());
                if kind.is_array() {
                    let dim = names.dim_type(kind);
                    bindings.extend(quote! {
                        let #local = #x.value().to_owned().into_dimensionality::<#dim>()
                            .expect("a custom rule's input has the rank of its parameter");
                    });
                    let passed = match passing {
                        Passing::Ref => quote!(&#local),
                        Passing::Owned => quote!(::core::clone::Clone::clone(&#local)),
                        Passing::View => quote!(#local.view()),
                    };
                    forward_args.push(passed.clone());
                    backward_args.push(passed);
                    grads.push((grad.clone(), quote!(#grad.into_dyn())));
                } else {
                    bindings.extend(quote!(let #local: #float = #x.scalar();));
                    forward_args.push(quote!(#local));
                    backward_args.push(quote!(#local));
                    grads.push((grad.clone(), quote!(#arr0(#grad).into_dyn())));
                }
            }
            CallArg::Const(tokens) | CallArg::FloatConst(tokens) => {
                // Owned, so that the node's backward (kept by the tape) may hold it.
                let by_ref = matches!(function.params.get(k).map(|p| &p.ty), Some(syn::Type::Reference(_)));
                if by_ref {
                    bindings.extend(quote!(let #local = ::std::borrow::ToOwned::to_owned(#tokens);));
                    forward_args.push(quote!(&#local));
                    backward_args.push(quote!(&#local));
                } else {
                    bindings.extend(quote!(let #local = #tokens;));
                    forward_args.push(quote!(::core::clone::Clone::clone(&#local)));
                    backward_args.push(quote!(::core::clone::Clone::clone(&#local)));
                }
            }
        }
    }
    let path = &call.path;
    let out_kind = stmt.kind;
    let (value, seed, output) = if out_kind.is_array() {
        let dim = names.dim_type(out_kind);
        (
            quote!(::core::clone::Clone::clone(&__output).into_dyn()),
            quote!(::core::clone::Clone::clone(__seed).into_dimensionality::<#dim>().expect("the seed has the output's rank")),
            quote!(&__output),
        )
    } else {
        (
            quote!(#arr0(__output).into_dyn()),
            quote!(*__seed.first().expect("a float's seed has one element")),
            quote!(__output),
        )
    };
    let names_of: Vec<&syn::Ident> = grads.iter().map(|(g, _)| g).collect();
    let pattern = match names_of.as_slice() {
        [one] => quote!(#one),
        many => quote!((#(#many,)*)),
    };
    let dyn_grads = grads.iter().map(|(_, d)| d);
    quote!({
        #bindings
        let __output = #path(#(#forward_args),*);
        #tape_of.custom(&[#(#inputs),*], #value, move |__seed: &::autodiff::ndarray::ArrayD<#float>| {
            let #pattern = #vjp(#(#backward_args,)* #output, #seed);
            ::std::vec![#(#dyn_grads),*]
        })
    })
}

/// Drops the `Var`s `stmt` reads for the last time (not parameters, constants, slice
/// elements, or values in `keep`).
fn drops(function: &Function, liveness: &ForwardLiveness, names: &Names, stmt: &Stmt, keep: &[ValueId]) -> TokenStream {
    let mut tokens = TokenStream::new();
    for a in liveness.dying_at(stmt) {
        let local = !matches!(
            function.stmt(a).op,
            Op::Param { .. } | Op::Const(_) | Op::Index(..) | Op::Loop(_)
        ) && function.kind(a) != Kind::Bool;
        if local && !keep.contains(&a) {
            let ident = names.ident(a);
            tokens.extend(quote!(::core::mem::drop(#ident);));
        }
    }
    tokens
}

/// The `Var` (or `&[Var]`) of a slice value.
fn var_of_slice(
    function: &Function,
    names: &Names,
    outer: &HashMap<usize, TokenStream>,
    slice: ValueId,
) -> TokenStream {
    match function.stmt(slice).op {
        Op::Param { index } if outer.contains_key(&index) => outer[&index].clone(),
        _ => {
            let ident = names.ident(slice);
            quote!(#ident)
        }
    }
}

/// A loop on the tape: a real Rust loop whose iterations record their ops, so the tape
/// holds the unrolled graph, as PyTorch's does. `keep`: the enclosing body's outputs.
#[allow(clippy::too_many_arguments)]
fn loop_on_tape(
    function: &Function,
    names: &Names,
    id: ValueId,
    l: &Loop,
    var: &dyn Fn(ValueId) -> TokenStream,
    tape_of: &TokenStream,
    liveness: &ForwardLiveness,
    keep: &[ValueId],
) -> TokenStream {
    let body_names = names.body(id, l);
    let outer: HashMap<usize, TokenStream> = l.captured.iter().map(|&(index, v)| (index, var(v))).collect();
    let carried: Vec<syn::Ident> = (0..l.carried.len()).map(|k| body_names.ident(ValueId(k))).collect();
    let dying = liveness.dying_at(function.stmt(id));
    let mut code = TokenStream::new();
    for (k, (c, ident)) in l.carried.iter().zip(&carried).enumerate() {
        let init = match &c.init {
            // The last use of an outer local moves it in; anything else is a new handle.
            Init::Value(v)
                if dying.contains(v)
                    && !l.captured.iter().any(|&(_, w)| w == *v)
                    && function.param_of(*v).is_none()
                    && !matches!(function.stmt(*v).op, Op::Index(..))
                    && l.carried
                        .iter()
                        .filter(|c| matches!(c.init, Init::Value(w) if w == *v))
                        .count()
                        == 1 =>
            {
                let value = names.ident(*v);
                quote!(#value)
            }
            Init::Value(v) => {
                let value = var(*v);
                quote!(::core::clone::Clone::clone(#value))
            }
            Init::Const(t) => {
                let value = names.float_constant(t);
                quote!(#tape_of.constant_scalar(#value))
            }
            // Never read: an empty constant of the right rank.
            Init::Unset => {
                let kind = l.body.stmts[k].kind;
                if kind.is_array() {
                    let dim = names.dim_type(kind);
                    quote!(#tape_of.constant_owned::<#dim>(::autodiff::ndarray::Array::zeros(<#dim as ::core::default::Default>::default())))
                } else {
                    let float = &names.float;
                    quote!(#tape_of.constant_scalar(<#float as ::autodiff::runtime::Float>::of(0.0)))
                }
            }
        };
        code.extend(quote!(let mut #ident = #init;));
    }
    let body_liveness = ForwardLiveness::of(&l.body);
    let body = statements(&l.body, &body_liveness, &body_names, &outer, tape_of, &l.outputs);
    let mut nexts = Vec::new();
    let mut next_code = TokenStream::new();
    for (k, &out) in l.outputs.iter().enumerate() {
        let next = quote::format_ident!(
            "{}next{}",
            body_names.prefix(),
            k,
            span = proc_macro2::Span::mixed_site()
        );
        let moved = !l.outputs[..k].contains(&out) && !matches!(l.body.stmt(out).op, Op::Param { .. } | Op::Index(..));
        let expr = if moved {
            let ident = body_names.ident(out);
            quote!(#ident)
        } else {
            let value = statements_var(&l.body, &body_names, &outer, out);
            quote!(::core::clone::Clone::clone(#value))
        };
        next_code.extend(quote!(let #next = #expr;));
        nexts.push(next);
    }
    let index = match &l.index {
        Some(i) => quote!(#i),
        None => quote!(_),
    };
    let range = &match l.flag {
        Some(flag) => {
            let flag = var(flag);
            quote!((0)..((#flag) as usize))
        }
        None => l.range.clone(),
    };
    let outs: Vec<syn::Ident> = (0..l.carried.len())
        .map(|k| names.ident(function.loop_output(id, k).unwrap_or(id)))
        .collect();
    code.extend(quote! {
        for #index in #range {
            #body
            #next_code
            #(#carried = #nexts;)*
        }
    });
    let mut tokens = quote!(let (#(#outs,)*) = { #code (#(#carried,)*) };);
    // The initial values were moved in (or cloned, and dropped at the end of scope).
    // The enclosing function's kept values (a loop body's outputs) stay too.
    let inits: Vec<ValueId> = l
        .carried
        .iter()
        .filter_map(|c| match c.init {
            Init::Value(v) => Some(v),
            Init::Const(_) | Init::Unset => None,
        })
        .chain(keep.iter().copied())
        .collect();
    tokens.extend(drops(function, liveness, names, function.stmt(id), &inits));
    tokens
}

/// The `Var` argument of a loop body's value `v` (as `statements` spells it).
fn statements_var(function: &Function, names: &Names, outer: &HashMap<usize, TokenStream>, v: ValueId) -> TokenStream {
    match &function.stmt(v).op {
        // A condition is a plain `bool`, by value.
        op if function.kind(v) == Kind::Bool && !matches!(op, Op::Param { .. }) => {
            let ident = names.ident(v);
            quote!(#ident)
        }
        Op::Param { index } => match (outer.get(index), function.params[*index].origin) {
            (Some(tokens), _) => tokens.clone(),
            (None, Origin::Own) => {
                let ident = names.ident(v);
                quote!(#ident)
            }
            (None, _) => {
                let ident = names.ident(v);
                quote!((&#ident))
            }
        },
        Op::Index(slice, at) => {
            let slice = var_of_slice(function, names, outer, *slice);
            quote!((&#slice[#at]))
        }
        _ => {
            let ident = names.ident(v);
            quote!((&#ident))
        }
    }
}

/// A `mapv` body as `Var` ops on the whole array (`v` is the array `x`, a capture its 0-d
/// `Var`, which broadcasts): the tape's form of a closure that captures floats.
fn closure_on_tape(e: &ScalarExpr, x: &TokenStream, captures: &[TokenStream]) -> TokenStream {
    let method = |name: &str| syn::Ident::new(name, proc_macro2::Span::call_site());
    let on_tape = |e: &ScalarExpr| closure_on_tape(e, x, captures);
    match e {
        ScalarExpr::Arg => quote!(::core::clone::Clone::clone(#x)),
        ScalarExpr::Capture(k) => {
            let capture = &captures[*k];
            quote!(::core::clone::Clone::clone(#capture))
        }
        // Constants only stand beside a variable (a lone constant body is folded whole).
        ScalarExpr::Const(_) => quote!(::core::unreachable!("a constant on its own in a capturing closure")),
        ScalarExpr::Binary(op, a, b) => match (&**a, &**b) {
            (lhs, ScalarExpr::Const(c)) => {
                let (lhs, m) = (on_tape(lhs), method(&format!("{}_scalar", op.name())));
                quote!((#lhs).#m(#c))
            }
            (ScalarExpr::Const(c), rhs) => {
                let rhs = on_tape(rhs);
                let m = match op {
                    BinOp::Add | BinOp::Mul => method(&format!("{}_scalar", op.name())),
                    BinOp::Sub | BinOp::Div => method(&format!("scalar_{}", op.name())),
                };
                quote!((#rhs).#m(#c))
            }
            (lhs, rhs) => {
                let (lhs, rhs, m) = (on_tape(lhs), on_tape(rhs), method(op.name()));
                quote!((#lhs).#m(&#rhs))
            }
        },
        ScalarExpr::Neg(a) => {
            let a = on_tape(a);
            quote!((#a).neg())
        }
        ScalarExpr::Unary(f, a) => {
            let (a, m) = (on_tape(a), method(f.name()));
            quote!((#a).#m())
        }
        ScalarExpr::Powi(a, n) => {
            let a = on_tape(a);
            quote!((#a).powi(#n))
        }
        ScalarExpr::Powf(a, p) => {
            let a = on_tape(a);
            quote!((#a).powf(#p))
        }
        ScalarExpr::Clamp { is_max, arg, bound } => {
            let a = on_tape(arg);
            let unary = quote!(::autodiff::runtime::kernels::unary);
            let (select, derivative) = if *is_max {
                (quote!(max), quote!(max_derivative))
            } else {
                (quote!(min), quote!(min_derivative))
            };
            quote!({
                let __bound = #bound;
                (#a).map(move |v| v.#select(__bound), move |v| #unary::#derivative(v, __bound))
            })
        }
        // Lowering keeps `if` out of closures that capture floats.
        ScalarExpr::If { .. } => quote!(::core::compile_error!(
            "an `if` in a `mapv` closure that captures floats cannot be recorded op by op"
        )),
    }
}

/// The local a hoisted closure constant is bound to.
fn constant_name(k: usize) -> syn::Ident {
    quote::format_ident!("__constant{}", k, span = proc_macro2::Span::mixed_site())
}

/// `e` with every constant (`Const`, and the exponents and bounds of `powi`, `powf`, `max`,
/// `min`) replaced by a local named by [`constant_name`], whose tokens are pushed on
/// `constants` in order.
fn hoist_constants(e: &ScalarExpr, constants: &mut Vec<TokenStream>) -> ScalarExpr {
    let hoist = |tokens: &TokenStream, constants: &mut Vec<TokenStream>| {
        let name = constant_name(constants.len());
        constants.push(tokens.clone());
        quote!(#name)
    };
    match e {
        ScalarExpr::Arg | ScalarExpr::Capture(_) => e.clone(),
        ScalarExpr::Const(tokens) => ScalarExpr::Const(hoist(tokens, constants)),
        ScalarExpr::Binary(op, a, b) => {
            let a = hoist_constants(a, constants);
            let b = hoist_constants(b, constants);
            ScalarExpr::Binary(*op, Box::new(a), Box::new(b))
        }
        ScalarExpr::Neg(a) => ScalarExpr::Neg(Box::new(hoist_constants(a, constants))),
        ScalarExpr::Unary(f, a) => ScalarExpr::Unary(*f, Box::new(hoist_constants(a, constants))),
        ScalarExpr::Powi(a, n) => {
            let a = hoist_constants(a, constants);
            ScalarExpr::Powi(Box::new(a), hoist(n, constants))
        }
        ScalarExpr::Powf(a, p) => {
            let a = hoist_constants(a, constants);
            ScalarExpr::Powf(Box::new(a), hoist(p, constants))
        }
        ScalarExpr::Clamp { is_max, arg, bound } => {
            let arg = hoist_constants(arg, constants);
            ScalarExpr::Clamp {
                is_max: *is_max,
                arg: Box::new(arg),
                bound: hoist(bound, constants),
            }
        }
        ScalarExpr::If { cond, then, otherwise } => {
            let cond = hoist_condition(cond, constants);
            let then = hoist_constants(then, constants);
            let otherwise = hoist_constants(otherwise, constants);
            ScalarExpr::If {
                cond: Box::new(cond),
                then: Box::new(then),
                otherwise: Box::new(otherwise),
            }
        }
    }
}

/// [`hoist_constants`] for a condition.
fn hoist_condition(c: &ScalarCond, constants: &mut Vec<TokenStream>) -> ScalarCond {
    match c {
        ScalarCond::Compare(cmp, a, b) => {
            let a = hoist_constants(a, constants);
            let b = hoist_constants(b, constants);
            ScalarCond::Compare(*cmp, a, b)
        }
        ScalarCond::Not(a) => ScalarCond::Not(Box::new(hoist_condition(a, constants))),
        ScalarCond::And(a, b) => {
            let a = hoist_condition(a, constants);
            let b = hoist_condition(b, constants);
            ScalarCond::And(Box::new(a), Box::new(b))
        }
        ScalarCond::Or(a, b) => {
            let a = hoist_condition(a, constants);
            let b = hoist_condition(b, constants);
            ScalarCond::Or(Box::new(a), Box::new(b))
        }
    }
}
