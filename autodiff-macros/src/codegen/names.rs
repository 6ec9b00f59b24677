//! How generated code names values, adjoints and shapes.
//!
//! Parameters keep their own names (`x`, `w`); intermediates are named after the user's
//! `let` binding and their number (`h_5`), or `v5` when unnamed; the adjoint of `h_5` is
//! `d_h_5`, its shape `h_5_dim`. Every generated local uses a mixed-site span, so it can
//! never capture or shadow a name of the user's.

use crate::args::Analyses;
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::Ident;

use std::collections::HashMap;

use crate::ir::{Function, Kind, Loop, Op, Origin, ValueId};

/// Naming and type spelling for one function (or loop body).
pub struct Names<'f> {
    pub function: &'f Function,
    /// The float type, as the user wrote it.
    pub float: TokenStream,
    /// Prepended to a loop body's names (`l5__h_3`), so that its locals never shadow the
    /// outer values it reads: the body's code is inlined in the outer function's.
    prefix: String,
    /// A loop body's captured parameters, by index: the outer code's name for the value.
    outer: HashMap<usize, OuterName>,
    /// A loop body's values held as `ArcArray` (the carried states), which a function
    /// taking `&Array` cannot borrow as they are.
    shared: Vec<ValueId>,
    /// The analyses the attribute leaves on (`opt(..)` turns them off).
    pub analyses: Analyses,
}

/// How the code around a loop names a value its body reads.
struct OuterName {
    ident: Ident,
    arg: TokenStream,
    text: String,
}

/// The runtime's kernels module.
pub fn kernels() -> TokenStream {
    quote!(::autodiff::runtime::kernels)
}

impl<'f> Names<'f> {
    pub fn new(function: &'f Function, float: &syn::Type, analyses: Analyses) -> Self {
        Names {
            function,
            float: quote!(#float),
            prefix: String::new(),
            outer: HashMap::new(),
            shared: Vec::new(),
            analyses,
        }
    }

    /// The same names under other analyses (`save = "min"` builds on the `all` plan).
    pub fn with_analyses(&self, analyses: Analyses) -> Names<'f> {
        Names {
            analyses,
            ..self.with_function(self.function)
        }
    }

    /// The same names for another version of the function (the same values, differently
    /// differentiated: `save = "min"`'s primal forward). For a function's top level, which
    /// names no outer values (a loop body's own names come from [`Names::body`]).
    pub fn with_function<'g>(&self, function: &'g Function) -> Names<'g> {
        Names {
            function,
            float: self.float.clone(),
            prefix: self.prefix.clone(),
            outer: HashMap::new(),
            shared: self.shared.clone(),
            analyses: self.analyses,
        }
    }

    /// Marks values as held in `ArcArray`s.
    pub fn set_shared(&mut self, shared: Vec<ValueId>) {
        self.shared = shared;
    }

    /// Whether `id` is held in an `ArcArray`.
    pub fn is_shared(&self, id: ValueId) -> bool {
        self.shared.contains(&id)
    }

    /// The names of the body of the loop statement `id` of this function.
    pub fn body(&self, id: ValueId, l: &'f Loop) -> Names<'f> {
        let outer = l
            .captured
            .iter()
            .map(|&(index, v)| {
                let name = OuterName {
                    ident: self.ident(v),
                    arg: self.arg(v),
                    text: self.text(v),
                };
                (index, name)
            })
            .collect();
        Names {
            function: &l.body,
            float: self.float.clone(),
            prefix: format!("{}l{}__", self.prefix, id.0),
            outer,
            shared: Vec::new(),
            analyses: self.analyses,
        }
    }

    /// A float constant (a loop-carried variable's initial value) as a value of the float
    /// type: converted with `Float::of` when it is an `f64` expression (`0.0`,
    /// `n as f64`), taken as it is when it already names the float type (`F::zero()`,
    /// `F::of(0.5)`), which `Float::of` would reject.
    pub fn float_constant(&self, tokens: &TokenStream) -> TokenStream {
        let float = &self.float;
        let names_float = self
            .float
            .clone()
            .into_iter()
            .filter_map(|tt| match tt {
                proc_macro2::TokenTree::Ident(ident) => Some(ident),
                _ => None,
            })
            .any(|ident| super::static_code::mentions_ident(tokens, &ident));
        if names_float {
            quote!({ let __init: #float = #tokens; __init })
        } else {
            quote!(<#float as ::autodiff::runtime::Float>::of(#tokens))
        }
    }

    /// The prefix of this body's names (empty for the function itself).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The plain text name of a value (for plans and identifiers).
    pub fn text(&self, id: ValueId) -> String {
        let stmt = self.function.stmt(id);
        match (&stmt.op, &stmt.name) {
            (Op::Param { index }, _) => match (self.outer.get(index), self.function.params[*index].origin) {
                (Some(outer), _) => outer.text.clone(),
                (None, Origin::Own) => unraw(&self.function.params[*index].ident),
                (None, _) => format!("{}{}", self.prefix, unraw(&self.function.params[*index].ident)),
            },
            (_, Some(name)) => format!("{}{}_{}", self.prefix, name.trim_start_matches("r#"), id.0),
            (_, None) => format!("{}v{}", self.prefix, id.0),
        }
    }

    /// The identifier holding a value. Parameters keep the user's span (they are the
    /// user's own bindings); generated locals are hygienic.
    pub fn ident(&self, id: ValueId) -> Ident {
        match self.function.param_of(id) {
            Some(p) if p.origin == Origin::Own => p.ident.clone(),
            Some(_) => match self.outer.get(&param_index(self.function, id)) {
                Some(outer) => outer.ident.clone(),
                None => Ident::new(&self.text(id), Span::mixed_site()),
            },
            None => Ident::new(&self.text(id), Span::mixed_site()),
        }
    }

    /// The identifier of a value's adjoint.
    pub fn adjoint(&self, id: ValueId) -> Ident {
        format_ident!("d_{}", self.text(id), span = Span::mixed_site())
    }

    /// The identifier of a value's saved shape.
    pub fn dim(&self, id: ValueId) -> Ident {
        format_ident!("{}_dim", self.text(id), span = Span::mixed_site())
    }

    /// A value used as a kernel argument in static code: arrays by reference, floats by value,
    /// constants as written.
    pub fn arg(&self, id: ValueId) -> TokenStream {
        let stmt = self.function.stmt(id);
        match &stmt.op {
            Op::Const(tokens) => return quote!((#tokens)),
            // An element of a slice is borrowed where it is used, never copied.
            Op::Index(slice, at) => {
                let slice = self.ident(*slice);
                return quote!(&#slice[#at]);
            }
            Op::Param { index } => {
                if let Some(outer) = self.outer.get(index) {
                    return outer.arg.clone();
                }
            }
            _ => {}
        }
        let ident = self.ident(id);
        match (stmt.kind, self.function.param_of(id)) {
            (Kind::Scalar | Kind::Slice(_) | Kind::Loop | Kind::Bool, _) => quote!(#ident),
            // A view is held by value in the generated halves, even when the user takes it by reference.
            (Kind::Array(_), Some(p))
                if matches!(
                    p.role,
                    crate::ir::ParamRole::Value {
                        by_ref: true,
                        view: false,
                        ..
                    }
                ) =>
            {
                quote!(#ident)
            }
            (Kind::Array(_), _) => quote!(&#ident),
        }
    }

    /// The owned type of a value of `kind`.
    pub fn value_type(&self, kind: Kind) -> TokenStream {
        let float = &self.float;
        match kind {
            Kind::Scalar | Kind::Loop => float.clone(),
            Kind::Bool => quote!(bool),
            Kind::Array(rank) | Kind::Slice(rank) => {
                let dim = self.dim_type(Kind::Array(rank));
                let array = quote!(::autodiff::ndarray::Array<#float, #dim>);
                if kind.is_array() {
                    array
                } else {
                    quote!(::std::vec::Vec<#array>)
                }
            }
        }
    }

    /// The reference-counted array type of an array kind (a loop's carried state, shared
    /// between the iteration that computed it and the next).
    pub fn shared_type(&self, kind: Kind) -> TokenStream {
        let (float, dim) = (&self.float, self.dim_type(kind));
        quote!(::autodiff::ndarray::ArcArray<#float, #dim>)
    }

    /// The ndarray dimension type of an array kind.
    pub fn dim_type(&self, kind: Kind) -> TokenStream {
        match kind {
            Kind::Array(Some(n)) | Kind::Slice(Some(n)) => {
                let ix = format_ident!("Ix{}", n);
                quote!(::autodiff::ndarray::#ix)
            }
            _ => quote!(::autodiff::ndarray::IxDyn),
        }
    }
}

/// The index of the parameter `id` stands for.
fn param_index(function: &Function, id: ValueId) -> usize {
    match function.stmt(id).op {
        Op::Param { index } => index,
        _ => usize::MAX,
    }
}

/// The text of a user's identifier without its `r#` prefix (`r#dyn` → `dyn`), for
/// building other identifiers from it (`d_dyn`); `format_ident!("d_{}", r#dyn)` would panic.
pub fn unraw(ident: &Ident) -> String {
    syn::ext::IdentExt::unraw(ident).to_string()
}

/// `small_mlp` → `SmallMlp`. A name whose camel form would start with a digit keeps a
/// leading underscore (`_2d_loss` → `_2dLoss`), so `{camel}Context` is an identifier.
pub fn camel_case(name: &str) -> String {
    let camel: String = name
        .trim_start_matches("r#")
        .split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
                None => String::new(),
            }
        })
        .collect();
    if camel.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{camel}")
    } else {
        camel
    }
}
