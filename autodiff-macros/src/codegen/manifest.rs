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
        // What is kept of which value, the shape whose elements it stores, and how many bytes
        // those elements take.
        let (v, what, shape, size) = match *residual {
            Residual::Array(v) => (v, "array".to_string(), shapes[v.0].clone(), Size::Floats),
            Residual::Mask(v) => (v, "relu sign mask".to_string(), shapes[v.0].clone(), Size::Bits),
            Residual::ColumnSums(v) => {
                let columns = shapes[v.0].as_ref().filter(|s| s.len() == 2).map(|s| s[1..].to_vec());
                (v, "column sums".to_string(), columns, Size::Floats)
            }
            Residual::Packed(v) => {
                let format = names.analyses.residuals.format().unwrap_or("16 bits").to_lowercase();
                (v, format, shapes[v.0].clone(), Size::Halves)
            }
            Residual::Loop(v) => {
                rows.push(format!("loop {}: one context per iteration", names.text(v)));
                known = false;
                continue;
            }
            Residual::Call(v) => {
                rows.push(format!("{} (call): the callee's context", names.text(v)));
                known = false;
                continue;
            }
        };
        let name = names.text(v);
        let Some(shape) = shape else {
            rows.push(format!("{name} ({what}): shape known at run time"));
            known = false;
            continue;
        };
        let (count, n) = shapes::elements(function, &shape);
        let (bytes, term) = match size {
            Size::Floats => (
                format!("{count} × {float_bytes}"),
                quote!(#n * ::core::mem::size_of::<#float>()),
            ),
            Size::Bits => (format!("{count} bits, in 8-byte words"), quote!(#n.div_ceil(64) * 8)),
            Size::Halves => (format!("{count} × 2 B"), quote!(#n * 2)),
        };
        rows.push(format!("{name} ({what}): {bytes}"));
        terms.push(term);
    }
    let total = if known {
        quote!(::core::option::Option::Some(0usize #(+ #terms)*))
    } else {
        quote!(::core::option::Option::None)
    };
    (rows, total)
}

/// How a residual stores each element of its shape.
enum Size {
    /// One float of the function's type.
    Floats,
    /// One bit, in 64-bit words.
    Bits,
    /// Two bytes (bf16 or f16).
    Halves,
}
