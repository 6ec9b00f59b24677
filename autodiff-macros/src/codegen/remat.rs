//! `save = "min"`: the forward half keeps nothing but the borrowed parameters, and the
//! backward half computes the forward again from them before it runs.
//!
//! Before: `let h = x.dot(w).tanh(); h.sum()` (context keeps `h_3`)
//! After (forward):  the value alone, every intermediate dropped after its last use
//!                   (the function with no parameter differentiated); context: `x`, `w`.
//! After (backward): `save = "all"`'s forward half (which binds `h_3`, ...), then its
//!                   backward half, reading those locals where it would read the context.
//!
//! This is rematerialisation at its limit: nothing is held between the halves (a caller
//! that runs many forwards before their backwards, as in pipelining or a batch of
//! per-example losses, holds no intermediates), and backward costs a forward more. The
//! backward's own peak is the `all` plan's.

use proc_macro2::TokenStream;

use super::names::Names;
use super::static_code::{self, Boundary, CtxField, StaticCode};
use crate::activity;
use crate::args::{Residuals, Save};
use crate::ir::{Function, ParamRole};
use crate::liveness::ForwardLiveness;

/// The static code of `function` under its policy (`names.analyses.save`): `min`'s here,
/// the others' in [`static_code::generate`].
pub fn generate_under_policy(
    function: &Function,
    activity: &activity::Activity,
    liveness: &ForwardLiveness,
    names: &Names,
    param_types: &[TokenStream],
    boundary: &Boundary,
) -> StaticCode {
    let generate = match names.analyses.save {
        Save::Min => generate,
        Save::Auto | Save::All => static_code::generate,
    };
    generate(function, activity, liveness, names, param_types, boundary)
}

/// The static code of `function` under `save = "min"`, from the same pieces as the other
/// policies: the primal forward (nothing differentiated) and the `all` plan's two halves.
/// At the top (`param_types` given) the context borrows every parameter; for a call the
/// caller passes the arguments to backward again, and the context is empty.
pub fn generate(
    function: &Function,
    activity: &activity::Activity,
    liveness: &ForwardLiveness,
    names: &Names,
    param_types: &[TokenStream],
    boundary: &Boundary,
) -> StaticCode {
    let mut primal_function = function.clone();
    primal_function.wrt.clear();
    for param in &mut primal_function.params {
        if let ParamRole::Value { differentiated, .. } = &mut param.role {
            *differentiated = false;
        }
    }
    let primal_activity = activity::analyse(&primal_function, true);
    let primal_names = names.with_function(&primal_function);
    let primal = static_code::generate(
        &primal_function,
        &primal_activity,
        liveness,
        &primal_names,
        param_types,
        boundary,
    );

    let mut all_analyses = names.analyses;
    all_analyses.save = Save::All;
    // Recomputed in backward, the residuals are never held: no reason to round them.
    all_analyses.residuals = Residuals::Full;
    let all_names = names.with_analyses(all_analyses);
    let all = static_code::generate(function, activity, liveness, &all_names, param_types, boundary);

    let fields = match boundary {
        Boundary::Top => function
            .params
            .iter()
            .zip(param_types)
            .map(|(param, ty)| CtxField {
                ident: param.ident.clone(),
                ty: ty.clone(),
                held: None,
            })
            .collect(),
        Boundary::Call | Boundary::Body { .. } => Vec::new(),
    };
    let (recompute, backward) = (&all.forward_body, &all.backward_body);
    let plan_backward = all
        .plan_forward
        .iter()
        .map(|line| format!("(recomputed) {line}"))
        .chain(all.plan_backward.iter().cloned())
        .collect();
    StaticCode {
        forward_body: primal.forward_body,
        fields,
        backward_body: quote::quote!(#recompute #backward),
        plan_forward: primal.plan_forward,
        plan_backward,
        plan_eliminated: all.plan_eliminated,
        plan_saved: Vec::new(),
        grads: all.grads,
        outer_reads: all.outer_reads,
        constant_reads: all.constant_reads,
        residuals: Vec::new(),
    }
}
