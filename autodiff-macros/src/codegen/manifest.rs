//! The memory plan's residual manifest: one row per thing the context holds, with its
//! bytes as a formula of the input shapes (`shapes.rs`), and the same formulas as code for
//! `<name>_residual_bytes(..)`, which says what the context will hold before forward runs.
//!
//! Rows read `h_3 (relu sign mask): x[0]×w1[1] bits, in 8-byte words` or
//! `v5 (array): x[0]×w[1] × 4 B`; `x[k]` is the length of `x`'s axis `k`.

use proc_macro2::TokenStream;
use quote::quote;

use super::names::Names;
use super::static_code::Residual;
use crate::ir::Function;
use crate::shapes;

/// The manifest's rows, and code evaluating to the total bytes (`Option<usize>`: `None`
/// when a residual's size is only known at run time: a loop's or a call's context, or a
/// value whose shape the ops do not determine).
pub fn manifest(function: &Function, names: &Names, residuals: &[Residual]) -> (Vec<String>, TokenStream) {
    let shapes = shapes::infer(function);
    let float = &names.float;
    let float_text = float.to_string();
    let float_bytes = match float_text.as_str() {
        "f32" => "4 B".to_string(),
        "f64" => "8 B".to_string(),
        other => format!("size_of::<{other}>() B"),
    };
    let mut rows = Vec::new();
    let mut terms = Vec::new();
    let mut known = true;
    for residual in residuals {
        let (row, term) = match *residual {
            Residual::Array(v) | Residual::Mask(v) => {
                let what = match residual {
                    Residual::Mask(_) => "relu sign mask",
                    _ => "array",
                };
                let name = names.text(v);
                match &shapes[v.0] {
                    Some(shape) => {
                        let (count, n) = shapes::elements(function, shape);
                        match residual {
                            Residual::Mask(_) => (
                                format!("{name} ({what}): {count} bits, in 8-byte words"),
                                Some(quote!(#n.div_ceil(64) * 8)),
                            ),
                            _ => (
                                format!("{name} ({what}): {count} × {float_bytes}"),
                                Some(quote!(#n * ::core::mem::size_of::<#float>())),
                            ),
                        }
                    }
                    None => (format!("{name} ({what}): shape known at run time"), None),
                }
            }
            Residual::ColumnSums(v) => {
                let name = names.text(v);
                match shapes[v.0].as_ref().filter(|s| s.len() == 2) {
                    Some(shape) => {
                        let (count, n) = shapes::elements(function, &shape[1..].to_vec());
                        (
                            format!("{name} (column sums): {count} × {float_bytes}"),
                            Some(quote!(#n * ::core::mem::size_of::<#float>())),
                        )
                    }
                    None => (format!("{name} (column sums): shape known at run time"), None),
                }
            }
            Residual::Packed(v) => {
                let name = names.text(v);
                let format = names.analyses.residuals.format().unwrap_or("16 bits").to_lowercase();
                match &shapes[v.0] {
                    Some(shape) => {
                        let (count, n) = shapes::elements(function, shape);
                        (format!("{name} ({format}): {count} × 2 B"), Some(quote!(#n * 2)))
                    }
                    None => (format!("{name} ({format}): shape known at run time"), None),
                }
            }
            Residual::Loop(v) => (format!("loop {}: one context per iteration", names.text(v)), None),
            Residual::Call(v) => (format!("{} (call): the callee's context", names.text(v)), None),
        };
        rows.push(row);
        match term {
            Some(term) => terms.push(term),
            None => known = false,
        }
    }
    let total = if known {
        quote!(::core::option::Option::Some(0usize #(+ #terms)*))
    } else {
        quote!(::core::option::Option::None)
    };
    (rows, total)
}
