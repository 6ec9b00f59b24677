//! A function with a custom derivative rule (`#[differentiate(vjp = gelu_backward)]`): its
//! body is not read. The IR is its parameters and one `Op::Custom`, which calls the function
//! itself in forward and the user's VJP in backward; every emitter then treats it like any
//! other function (the call protocol, the tape's one node, `check!`).

use quote::quote;

use crate::ctxt::Ctxt;
use crate::ir::{Call, CallArg, Function, Kind, Op, Param, Passing, Stmt, ValueId};
use crate::signature::Signature;

/// The IR of `item` with the custom rule `vjp`, or `None` (errors in `cx`).
pub fn custom(cx: &Ctxt, item: &syn::ItemFn, sig: &Signature, vjp: &syn::Path) -> Option<Function> {
    let mut stmts = Vec::new();
    let mut params = Vec::new();
    let mut args = Vec::new();
    for (index, info) in sig.params.iter().enumerate() {
        let ident = &info.ident;
        let role = match info.kind {
            Some(Kind::Slice(_)) => {
                cx.error_spanned_by(
                    &info.ty,
                    "a function with a custom rule takes floats and arrays (and constants), not slices of arrays",
                );
                return None;
            }
            Some(kind) => {
                let id = ValueId(stmts.len());
                stmts.push(Stmt {
                    id,
                    op: Op::Param { index },
                    kind,
                    name: Some(ident.to_string()),
                });
                let passing = match (info.view, info.by_ref) {
                    (true, _) => Passing::View,
                    (false, true) => Passing::Ref,
                    (false, false) => Passing::Owned,
                };
                args.push(CallArg::Value(id, passing));
                info.role(id, sig.wrt.contains(&index))
            }
            None => {
                args.push(CallArg::Const(match info.ty {
                    syn::Type::Reference(_) => quote!(#ident),
                    _ => quote!(::core::clone::Clone::clone(&#ident)),
                }));
                info.role(ValueId(usize::MAX), false)
            }
        };
        params.push(Param {
            ident: info.ident.clone(),
            ty: info.ty.clone(),
            role,
            origin: crate::ir::Origin::Own,
        });
    }
    let output = ValueId(stmts.len());
    let ident = &item.sig.ident;
    stmts.push(Stmt {
        id: output,
        op: Op::Custom {
            call: Box::new(Call {
                path: syn::parse_quote!(#ident),
                args,
            }),
            vjp: vjp.clone(),
        },
        kind: sig.output,
        name: None,
    });
    Some(Function {
        params,
        stmts,
        output,
        wrt: sig.wrt.clone(),
    })
}
