//! Invisible groups removed: a function written by a `macro_rules!` macro carries its
//! `$t:ty` and `$e:expr` fragments as `Type::Group` / `Expr::Group` (delimiters that print
//! as nothing). They mean the same as their content, so the macro reads through them
//! instead of rejecting `&Array2<f64>` that happened to come from a fragment.

use syn::visit_mut::VisitMut;

/// Replaces every invisible group in `item` by its content.
pub fn apply(item: &mut syn::ItemFn) {
    Ungroup.visit_item_fn_mut(item);
}

struct Ungroup;

impl VisitMut for Ungroup {
    fn visit_type_mut(&mut self, ty: &mut syn::Type) {
        while let syn::Type::Group(group) = ty {
            *ty = (*group.elem).clone();
        }
        syn::visit_mut::visit_type_mut(self, ty);
    }

    fn visit_expr_mut(&mut self, expr: &mut syn::Expr) {
        while let syn::Expr::Group(group) = expr {
            *expr = (*group.expr).clone();
        }
        syn::visit_mut::visit_expr_mut(self, expr);
    }
}
