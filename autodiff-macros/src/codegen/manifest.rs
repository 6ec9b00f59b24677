//! The memory plan's residual manifest: one row per thing the context holds, with its
//! bytes as a formula of the input shapes (`shapes.rs`), and the same formulas as code for
//! `<name>_residual_bytes(..)`, which says what the context will hold before forward runs.
//!
//! Rows read `h_3 (relu sign mask): x[0]×w1[1] bits, in 8-byte words`,
//! `v5 (array): x[0]×w[1] × 4 B` or `v6 (batch_norm stats): 2×w[0] × 4 B` (an aux residual,
//! its bytes as its row of the op table states them); `x[k]` is the length of `x`'s axis `k`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::names::Names;
use super::static_code::Residual;
use crate::ir::{Function, ValueId};
use crate::op_table::SizeFactor;
use crate::{rules, shapes};

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
            Residual::Aux(v) => {
                match aux_size(function, names, &shapes, v, &float_bytes) {
                    Some((row, term)) => {
                        rows.push(row);
                        terms.push(term);
                    }
                    None => {
                        rows.push(format!("{} (aux): size known at run time", names.text(v)));
                        known = false;
                    }
                }
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

/// The row and the code of the aux residual statement `v`'s forward returned, from the size
/// its row of the op table states (`2 * x[1] * float`); `None` where a factor's length is
/// only known at run time.
fn aux_size(
    function: &Function,
    names: &Names,
    shapes: &[Option<shapes::Shape>],
    v: ValueId,
    float_bytes: &str,
) -> Option<(String, TokenStream)> {
    let (op, ..) = rules::table_op(function, function.stmt(v))?;
    let aux = rules::aux_of(function, v)?;
    let float = &names.float;
    // Element counts (`2×w[0]`) and bytes per element (`8 B`), as text; all of it as code.
    let (mut counts, mut units, mut code) = (Vec::new(), Vec::new(), Vec::new());
    for factor in &aux.size {
        match factor {
            SizeFactor::Int(n) => {
                counts.push(n.to_string());
                code.push(quote!(#n));
            }
            SizeFactor::Axis(x, k) => {
                let dim = shapes.get(x.0)?.as_ref()?.get(*k)?;
                counts.push(dim.text(function));
                code.push(dim.tokens(function));
            }
            SizeFactor::Out => {
                let (text, n) = shapes::elements(function, shapes.get(v.0)?.as_ref()?);
                counts.push(text);
                code.push(n);
            }
            SizeFactor::Float => {
                units.push(float_bytes.to_string());
                code.push(quote!(::core::mem::size_of::<#float>()));
            }
            SizeFactor::Function {
                module,
                function: name,
                arg,
            } => {
                units.push(format!("{name}({arg}) B"));
                let (m, f) = (format_ident!("{}", module), format_ident!("{}", name));
                code.push(quote!(::autodiff::runtime::kernels::#m::#f((#arg) as usize)));
            }
        }
    }
    if units.is_empty() {
        units.push("B".to_string());
    }
    let count = if counts.is_empty() {
        "1".to_string()
    } else {
        counts.join("×")
    };
    let row = format!(
        "{} ({} {}): {count} × {}",
        names.text(v),
        op.name(),
        aux.field,
        units.join(" × ")
    );
    Some((row, quote!((1usize #(* #code)*))))
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
