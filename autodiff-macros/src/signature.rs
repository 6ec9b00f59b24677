//! Reading the annotated function's signature: the float type, each parameter's
//! role (differentiable value or constant), and the `wrt` set.

use quote::ToTokens;
use syn::{FnArg, GenericParam, Ident, ItemFn, Pat, ReturnType, Type};

use crate::args::Args;
use crate::ctxt::Ctxt;
use crate::ir::{Kind, ParamRole};

/// What the signature says, before the body is lowered.
pub struct Signature {
    /// The function's float type (`f32`, `f64` or a generic type parameter): what it
    /// returns, or the element type of the array it returns.
    pub float_ty: Type,
    /// What the function returns: a float, or an array (a layer).
    pub output: Kind,
    /// `(ident, type, kind if a float value, by reference)`, in order.
    pub params: Vec<ParamInfo>,
    /// Indices of the differentiated parameters, in gradient order.
    pub wrt: Vec<usize>,
}

/// One parameter as the signature describes it.
pub struct ParamInfo {
    pub ident: Ident,
    pub ty: Type,
    /// `Some(kind)` for a float scalar or float array, `None` for a constant parameter.
    pub kind: Option<Kind>,
    pub by_ref: bool,
    /// An array view (`ArrayView2<F>`), by value or by reference.
    pub view: bool,
}

impl ParamInfo {
    /// The role of this parameter given whether it is differentiated; `id` is its value.
    pub fn role(&self, id: crate::ir::ValueId, differentiated: bool) -> ParamRole {
        match self.kind {
            Some(kind) => ParamRole::Value {
                id,
                kind,
                by_ref: self.by_ref,
                view: self.view,
                differentiated,
            },
            None => ParamRole::Constant,
        }
    }
}

/// Reads the signature; errors go to `cx`. Returns `None` when it cannot go on.
pub fn read(cx: &Ctxt, item: &ItemFn, args: &Args) -> Option<Signature> {
    let sig = &item.sig;
    if let Some(asyncness) = &sig.asyncness {
        cx.error_spanned_by(asyncness, "`#[differentiate]` does not support `async fn`");
    }
    if let Some(constness) = &sig.constness {
        cx.error_spanned_by(constness, "`#[differentiate]` does not support `const fn`");
    }
    if let Some(variadic) = &sig.variadic {
        cx.error_spanned_by(variadic, "`#[differentiate]` does not support variadic functions");
    }
    let (float_ty, output) = match &sig.output {
        ReturnType::Type(_, ty) if is_float_type(ty, item) => ((**ty).clone(), Kind::Scalar),
        ReturnType::Type(_, ty) => match array_element(ty).filter(|elem| is_float_type(elem, item) && !is_view(ty)) {
            // A layer: `-> Array2<F>`; its backward takes the output's adjoint.
            Some(elem) => match classify(ty, &elem) {
                Some(kind @ Kind::Array(_)) => (elem, kind),
                _ => {
                    cx.error_spanned_by(ty, "a differentiated function returns its float type or an owned array of it (`Array1<F>` .. `Array4<F>`, `ArrayD<F>`)");
                    return None;
                }
            },
            None => {
                cx.error_spanned_by(
                    ty,
                    "a differentiated function must return its float type (`f32`, `f64`, or a type parameter bounded by `Float`, e.g. `fn loss<F: Float>(..) -> F`) or an owned array of it (`-> Array2<F>`, a layer)",
                );
                return None;
            }
        },
        ReturnType::Default => {
            cx.error_spanned_by(
                &sig.ident,
                "a differentiated function must return a float (`-> f64`, `-> f32` or `-> F` with `F: Float`): the value whose gradient is taken",
            );
            return None;
        }
    };

    if let Some(param) = unbounded_float_param(item, &float_ty) {
        cx.error_spanned_by(
            param,
            format!("add the bound `{param}: Float` (from `autodiff::prelude`): the generated gradient code calls kernels that are generic over `Float`"),
        );
        return None;
    }

    let mut params = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                cx.error_spanned_by(
                    receiver,
                    "`#[differentiate]` works on free functions, not methods: take the arrays as parameters",
                );
            }
            FnArg::Typed(pat_type) => {
                let ident = match &*pat_type.pat {
                    Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => {
                        if let Some(m) = &p.mutability {
                            cx.error_spanned_by(m, "`mut` parameters are not supported: the function must not mutate its inputs; bind a new name with `let` instead");
                        }
                        p.ident.clone()
                    }
                    other => {
                        cx.error_spanned_by(
                            other,
                            "parameters must be plain names (`x: &Array2<f64>`), not patterns",
                        );
                        continue;
                    }
                };
                let (inner, by_ref) = match &*pat_type.ty {
                    Type::Reference(r) => {
                        if let Some(m) = &r.mutability {
                            cx.error_spanned_by(
                                m,
                                "`&mut` parameters are not supported: the function must not mutate its inputs",
                            );
                        }
                        (&*r.elem, true)
                    }
                    other => (other, false),
                };
                // Reported, then read as its array kind, so that the body's errors are its own.
                if let Some(message) = unsupported_array_type(inner, &float_ty) {
                    cx.error_spanned_by(&pat_type.ty, message);
                }
                let kind = match inner {
                    // `&[Array2<F>]`: a slice of arrays, indexed in the body (`ws[i]`).
                    Type::Slice(slice) if by_ref => match classify(&slice.elem, &float_ty) {
                        Some(Kind::Array(rank)) if !is_view(&slice.elem) => Some(Kind::Slice(rank)),
                        _ => None,
                    },
                    _ => classify(inner, &float_ty),
                };
                // A float scalar passed by reference is treated as a constant: gradients of
                // `&f64` would need a place to write to. Say so when it is asked for.
                let kind = match (kind, by_ref) {
                    (Some(Kind::Scalar), true) => None,
                    (k, _) => k,
                };
                let view = kind.is_some_and(Kind::is_array) && is_view(inner);
                params.push(ParamInfo {
                    ident,
                    ty: (*pat_type.ty).clone(),
                    kind,
                    by_ref,
                    view,
                });
            }
        }
    }

    let wrt = match &args.wrt {
        None => params
            .iter()
            .enumerate()
            .filter(|(_, p)| p.kind.is_some())
            .map(|(i, _)| i)
            .collect(),
        Some(names) => {
            let mut wrt = Vec::new();
            for name in names {
                match params.iter().position(|p| p.ident == *name) {
                    None => cx.error_spanned_by(
                        name,
                        format!(
                            "`wrt({name})` names no parameter of this function; its parameters are: {}",
                            params.iter().map(|p| p.ident.to_string()).collect::<Vec<_>>().join(", ")
                        ),
                    ),
                    Some(i) if params[i].kind.is_none() => cx.error_spanned_by(
                        name,
                        format!(
                            "`{name}` has type `{}`, which is not differentiable; `wrt` takes parameters of the float type `{}` or arrays of it (`&Array2<{}>`, ...)",
                            params[i].ty.to_token_stream(),
                            float_ty.to_token_stream(),
                            float_ty.to_token_stream(),
                        ),
                    ),
                    Some(i) if wrt.contains(&i) => cx.error_spanned_by(name, format!("`{name}` is named twice in `wrt`")),
                    Some(i) => wrt.push(i),
                }
            }
            wrt
        }
    };
    if wrt.is_empty() && args.wrt.is_none() && !cx.has_errors() {
        cx.error_spanned_by(
            &sig.ident,
            format!(
                "this function has no parameter to differentiate: give it a float (`{0}`) or float-array (`&Array1<{0}>`, ...) parameter",
                float_ty.to_token_stream()
            ),
        );
    }
    Some(Signature {
        float_ty,
        output,
        params,
        wrt,
    })
}

/// The element type of an ndarray array type (`Array2<F>` → `F`, `Array<F, Ix2>` → `F`).
fn array_element(ty: &Type) -> Option<Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if !last.ident.to_string().starts_with("Array") {
        return None;
    }
    let syn::PathArguments::AngleBracketed(generic) = &last.arguments else {
        return None;
    };
    generic.args.iter().find_map(|a| match a {
        syn::GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    })
}

/// Whether `ty` can be the function's float type.
fn is_float_type(ty: &Type, item: &ItemFn) -> bool {
    let Type::Path(path) = ty else { return false };
    if path.qself.is_some() || path.path.segments.len() != 1 {
        return false;
    }
    let ident = &path.path.segments[0].ident;
    ident == "f32"
        || ident == "f64"
        || item
            .sig
            .generics
            .params
            .iter()
            .any(|p| matches!(p, GenericParam::Type(t) if t.ident == *ident))
}

/// The float type's generic parameter, if the function's float type is one and it has no
/// `Float` bound (in the parameter list or the `where` clause).
pub fn unbounded_float_param<'a>(item: &'a ItemFn, float_ty: &Type) -> Option<&'a Ident> {
    let Type::Path(path) = float_ty else { return None };
    let ident = path.path.get_ident()?;
    let generics = &item.sig.generics;
    let param = generics.type_params().find(|t| t.ident == *ident)?;
    let is_float = |bound: &syn::TypeParamBound| matches!(bound, syn::TypeParamBound::Trait(t) if t.path.segments.last().is_some_and(|s| s.ident == "Float"));
    let in_where = generics
        .where_clause
        .iter()
        .flat_map(|w| &w.predicates)
        .any(|p| match p {
            syn::WherePredicate::Type(t) => {
                matches!(&t.bounded_ty, Type::Path(b) if b.path.is_ident(ident)) && t.bounds.iter().any(is_float)
            }
            _ => false,
        });
    (!param.bounds.iter().any(is_float) && !in_where).then_some(&param.ident)
}

/// What to write instead, for a parameter type that holds floats of the function's type in
/// a form the subset does not differentiate yet (`CowArray`, slices and `Vec`s of arrays).
/// A slice of floats (`&[F]`) stays a constant parameter.
fn unsupported_array_type(ty: &Type, float_ty: &Type) -> Option<String> {
    let float = float_ty.to_token_stream().to_string();
    let text = ty.to_token_stream().to_string();
    let mentions_float = text
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|word| word == float);
    if !mentions_float {
        return None;
    }
    let last = match ty {
        Type::Path(path) => path.path.segments.last()?.ident.to_string(),
        Type::Slice(_) | Type::Array(_) => "slice".to_string(),
        _ => return None,
    };
    if last.starts_with("CowArray") {
        Some(format!(
            "`CowArray` parameters are not supported: take an array view (`ArrayView2<{float}>`) or the array by reference (`&Array2<{float}>`)"
        ))
    } else if last == "slice" && text.contains("ArrayView") {
        Some(format!(
            "slices of array views are not supported as parameters: take a slice of arrays (`ws: &[Array2<{float}>]`)"
        ))
    } else if (last == "Vec" || matches!(ty, Type::Array(_))) && text.contains("Array") {
        Some(format!(
            "`Vec`s and fixed-size arrays of arrays are not supported as parameters: take a slice (`ws: &[Array2<{float}>]`, called with `&ws`)"
        ))
    } else {
        None
    }
}

/// Whether `ty` is an array view (`ArrayView2<F>`, `ArrayViewD<F>`, ...).
fn is_view(ty: &Type) -> bool {
    matches!(ty, Type::Path(path) if path.path.segments.last().is_some_and(|s| s.ident.to_string().starts_with("ArrayView")))
}

/// The kind of a parameter type: a float scalar, a float array of some rank, or `None` (a constant).
pub fn classify(ty: &Type, float_ty: &Type) -> Option<Kind> {
    let float = float_ty.to_token_stream().to_string();
    if ty.to_token_stream().to_string() == float {
        return Some(Kind::Scalar);
    }
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    let syn::PathArguments::AngleBracketed(generic) = &last.arguments else {
        return None;
    };
    let types: Vec<&Type> = generic
        .args
        .iter()
        .filter_map(|a| match a {
            syn::GenericArgument::Type(t) => Some(t),
            _ => None,
        })
        .collect();
    let elem_is_float = |t: &&Type| t.to_token_stream().to_string() == float;
    let name = last.ident.to_string();
    // Views read as arrays; so does `CowArray` (reported, then lowered as the array it holds).
    let name = name.replace("ArrayView", "Array").replace("CowArray", "Array");
    let rank = match (name.as_str(), types.as_slice()) {
        ("Array0", [e]) if elem_is_float(e) => Some(0),
        ("Array1", [e]) if elem_is_float(e) => Some(1),
        ("Array2", [e]) if elem_is_float(e) => Some(2),
        ("Array3", [e]) if elem_is_float(e) => Some(3),
        ("Array4", [e]) if elem_is_float(e) => Some(4),
        ("Array5", [e]) if elem_is_float(e) => Some(5),
        ("Array6", [e]) if elem_is_float(e) => Some(6),
        ("ArrayD", [e]) if elem_is_float(e) => None,
        ("Array", [e, d]) if elem_is_float(e) => match d.to_token_stream().to_string().as_str() {
            "Ix0" => Some(0),
            "Ix1" => Some(1),
            "Ix2" => Some(2),
            "Ix3" => Some(3),
            "Ix4" => Some(4),
            "Ix5" => Some(5),
            "Ix6" => Some(6),
            "IxDyn" => None,
            _ => return None,
        },
        _ => return None,
    };
    Some(Kind::Array(rank))
}
