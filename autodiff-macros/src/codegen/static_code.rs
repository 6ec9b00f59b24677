//! The static reverse pass: plan the backward steps, decide what the forward must
//! keep (liveness), and emit the forward half, the context and the backward half.
//!
//! Before: `let h = x.dot(w).tanh(); h.sum()`
//! After (forward):  `let v2 = matmul(x, w); let h_3 = tanh(&v2); drop(v2); let v4 = sum(&h_3);`
//!                   context keeps `x`, `h_3`, `h_3_dim`;
//! After (backward): `let d_v4 = seed; let d_h_3 = d_v4 /* kept as a fill */;`
//!                   `let d_v2 = tanh_grad(sum_grad(d_h_3, &h_3_dim), &h_3); let d_w = matmul_grad_rhs(x, &d_v2);`

use std::collections::{BTreeMap, BTreeSet};

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::Ident;

use super::names::{kernels, Names};
use super::{calls, loops};
use crate::activity::Activity;
use crate::args::Save;
use crate::ir::{BinOp, Function, Init, Kind, Op, Origin, ParamRole, Stmt, UnaryFn, ValueId};
use crate::kernel::Kernel;
use crate::liveness::ForwardLiveness;
use crate::op_table::{Aux, ForwardArg};
use crate::rules::{self, Form, GradArg, GradCall, SharedStep};
use crate::scalar::{Closure, Wrt};

/// One step of the reverse sweep: the backward of one active statement.
struct Step {
    stmt: ValueId,
    /// How the statement's adjoint is held.
    form: Form,
    /// The symbolic adjoint must be materialised first (the rule has no form for it).
    materialize: bool,
    calls: Vec<GradCall>,
}

/// Where a function's adjoints start and its gradients go.
pub enum Boundary {
    /// The annotated function: one output (a float or an array) seeded with `__seed`;
    /// gradients of `wrt`; the context borrows the parameters backward reads.
    Top,
    /// The same function called from another differentiated function: gradients of every
    /// parameter, and a context that owns what it saves and borrows nothing (the caller
    /// passes the arguments again to backward), so the caller's context can hold it.
    Call,
    /// A loop body: `outputs[k]` (the carried variables' next values) is seeded with
    /// `seeds[k]`; gradients of every active parameter but slices, in order.
    /// A seed is `None` where the carried variable is not active (its adjoint is zero).
    /// The adjoints of the captured values in `accumulators` (by parameter index) are added
    /// in place into those outer locals, summed over the iterations, not returned.
    Body {
        outputs: Vec<ValueId>,
        seeds: Vec<Option<Ident>>,
        accumulators: BTreeMap<usize, Ident>,
    },
}

/// A field of the context struct that carries saved values from forward to backward.
pub struct CtxField {
    pub ident: Ident,
    pub ty: TokenStream,
    /// What the field owns, for `held_bytes` (`None`: nothing, it borrows or is a shape).
    pub held: Option<Held>,
}

/// What a context field owns.
#[derive(Clone)]
pub enum Held {
    /// One array.
    Array,
    /// An `ArcArray` whose buffer other fields may share (a loop's state, saved by one
    /// iteration as its output and by the next as its input): each buffer counts once.
    Shared,
    /// A loop's state kept in 16 bits (`Option<Arc<Packed<D>>>`), shared like [`Held::Shared`].
    SharedPacked,
    /// A residual in a compact form, a sign mask (`kernels::mask::SignMask`) or a 16-bit
    /// packing (`kernels::packed::Packed`), which counts its own bytes (`.bytes()`).
    Compact,
    /// A loop's per-iteration contexts: a `Vec` of tuples of these fields (its buffer counts too).
    Contexts(Vec<Option<Held>>),
    /// A called function's saved context (which counts its own).
    Call,
}

impl Held {
    /// The heap bytes held by the field at `access` (`self.h_3`), whose floats are `float`.
    pub fn bytes(&self, access: TokenStream, float: &TokenStream) -> TokenStream {
        match self {
            Held::Array => quote!(#access.len() * ::core::mem::size_of::<#float>()),
            Held::Compact => quote!(#access.bytes()),
            Held::Call => quote!(#access.held_bytes()),
            // Counted where the context list is, which knows the buffers seen so far.
            Held::Shared | Held::SharedPacked => quote!(0),
            Held::Contexts(items) => {
                let counts = items.iter().enumerate().filter_map(|(k, item)| {
                    let k = syn::Index::from(k);
                    item.as_ref().map(|held| match held {
                        Held::Shared => quote!(__shared.count(&__t.#k)),
                        Held::SharedPacked => quote!(__shared.count_packed(&__t.#k)),
                        _ => held.bytes(quote!(__t.#k), float),
                    })
                });
                quote!({
                    let mut __shared = ::autodiff::runtime::alloc::SharedBuffers::default();
                    let mut __bytes = ::autodiff::runtime::alloc::buffer_bytes(&#access);
                    for __t in #access.iter() {
                        __bytes += 0 #(+ #counts)*;
                    }
                    __bytes
                })
            }
        }
    }
}

/// One entry of the memory plan's residual manifest: what a context field holds.
#[derive(Clone, Copy, Debug)]
pub enum Residual {
    /// A value as forward computed it.
    Array(ValueId),
    /// A value's sign, a bit per element.
    Mask(ValueId),
    /// A matrix's column sums, one float per column.
    ColumnSums(ValueId),
    /// A value rounded to 16 bits (`residuals = "bf16"` or `"f16"`).
    Packed(ValueId),
    /// The aux residual the forward of this statement (a row of the op table) returned.
    Aux(ValueId),
    /// The per-iteration contexts of the loop statement.
    Loop(ValueId),
    /// The context of the call statement.
    Call(ValueId),
}

/// What an owned value of `kind` holds.
fn held_elements(kind: Kind, _names: &Names) -> Option<Held> {
    kind.is_array().then_some(Held::Array)
}

/// Everything the static items are built from.
pub struct StaticCode {
    pub forward_body: TokenStream,
    pub fields: Vec<CtxField>,
    pub backward_body: TokenStream,
    pub plan_forward: Vec<String>,
    pub plan_backward: Vec<String>,
    pub plan_eliminated: Vec<String>,
    pub plan_saved: Vec<String>,
    /// The parameters whose gradients backward returns, in order.
    pub grads: Vec<usize>,
    /// A loop body's captured parameters (by index) that its backward reads: the outer
    /// code keeps them for the loop's backward instead of the body saving a copy.
    pub outer_reads: BTreeSet<usize>,
    /// Constant expressions backward evaluates (they may name outer parameters).
    pub constant_reads: Vec<TokenStream>,
    /// What the context holds, one entry per owning field (the manifest).
    pub residuals: Vec<Residual>,
}

/// Plans and emits the static forward and backward code.
pub fn generate(
    function: &Function,
    activity: &Activity,
    liveness: &ForwardLiveness,
    names: &Names,
    param_types: &[TokenStream],
    boundary: &Boundary,
) -> StaticCode {
    let is_active = |v: ValueId| activity.is_active(v);
    let differentiable = |s: &&Stmt| !matches!(s.op, Op::Param { .. } | Op::Const(_));
    let outputs: Vec<ValueId> = match boundary {
        Boundary::Top | Boundary::Call => vec![function.output],
        Boundary::Body { outputs, .. } => outputs.clone(),
    };
    let grads: Vec<usize> = match boundary {
        Boundary::Top | Boundary::Call => function.wrt.clone(),
        Boundary::Body { accumulators, .. } => (0..function.params.len())
            .filter(|index| !accumulators.contains_key(index))
            .filter(|&index| match function.params[index].role {
                ParamRole::Value { id, kind, .. } => is_active(id) && !matches!(kind, Kind::Slice(_)),
                ParamRole::Constant => false,
            })
            .collect(),
    };

    // 1. How many contributions each adjoint receives (the seeds count for the outputs).
    let mut contributions: BTreeMap<ValueId, usize> = BTreeMap::new();
    let seeded = |k: usize| match boundary {
        Boundary::Top | Boundary::Call => true,
        Boundary::Body { seeds, .. } => seeds[k].is_some(),
    };
    for (k, &output) in outputs.iter().enumerate() {
        if is_active(output) && seeded(k) {
            *contributions.entry(output).or_default() += 1;
        }
    }
    for stmt in function.stmts.iter().filter(differentiable).filter(|s| is_active(s.id)) {
        let targets: Vec<ValueId> = match &stmt.op {
            Op::Loop(l) => loops::targets(function, stmt.id, l, activity),
            Op::Call(c) | Op::Custom { call: c, .. } => c.operands().into_iter().filter(|&v| is_active(v)).collect(),
            _ => rules::backward(function, stmt, &is_active, Form::Dense)
                .unwrap_or_default()
                .iter()
                .map(|c| c.target)
                .collect(),
        };
        for target in targets {
            *contributions.entry(target).or_default() += 1;
        }
    }

    // 2. The reverse sweep, keeping adjoints symbolic where they have one consumer: `sum`'s
    // seed as a fill, and what a fill becomes through matrix products as an outer product.
    let mut symbolic: BTreeMap<ValueId, Form> = BTreeMap::new();
    let mut steps = Vec::new();
    for stmt in function
        .stmts
        .iter()
        .rev()
        .filter(differentiable)
        .filter(|s| is_active(s.id))
    {
        let form = symbolic.get(&stmt.id).copied().unwrap_or(Form::Dense);
        let (mut calls, materialize) = match rules::backward(function, stmt, &is_active, form) {
            Some(calls) => (calls, false),
            None => (
                rules::backward(function, stmt, &is_active, Form::Dense).unwrap_or_default(),
                form != Form::Dense,
            ),
        };
        for call in calls.iter_mut().filter(|c| c.yields != Form::Dense) {
            let target = call.target;
            // A loop reads its outputs' adjoints as arrays.
            let loop_output = matches!(
                function.stmt(target).op,
                Op::LoopOut { .. } | Op::Call(_) | Op::Custom { .. }
            );
            let shape_fits = match call.yields {
                Form::Outer => function.kind(target) == Kind::Array(Some(2)),
                _ => function.kind(target).is_array(),
            };
            if names.analyses.seed
                && contributions[&target] == 1
                && function.param_of(target).is_none()
                && shape_fits
                && !loop_output
            {
                symbolic.insert(target, call.yields);
            } else {
                call.materialize = true;
            }
        }
        steps.push(Step {
            stmt: stmt.id,
            form,
            materialize,
            calls,
        });
    }

    // 2-. A matrix that backward reads only as its column sums `aᵀ·1` (a `sum`'s seed reaching
    // `a · b`, whose rule for `b` is those sums times the fill) is kept as them, taken in forward:
    // one float per column instead of the matrix. Not under `save = "all"`.
    if names.analyses.seed && names.analyses.liveness && names.analyses.save != Save::All {
        keep_column_sums(function, &mut steps, &outputs);
    }

    // 2a. Values whose every backward read is a sign-only rule's (relu's output), decided
    // before fusion hides which rule reads what.
    let sign_only = sign_only_reads(function, &steps);

    // 2b. Fuse chains of elementwise backward steps into one pass each.
    let steps = if names.analyses.fusion {
        fuse_elementwise_chains(function, names, steps, &contributions)
    } else {
        steps
    };

    // 2c. Each loop's body, generated first: the loop's backward step reads what the body's does.
    let bodies: BTreeMap<ValueId, loops::BodyCode> = function
        .stmts
        .iter()
        .filter_map(|stmt| match &stmt.op {
            Op::Loop(l) => Some((
                stmt.id,
                loops::BodyCode::generate(function, stmt.id, l, activity, names),
            )),
            _ => None,
        })
        .collect();

    // 3. Liveness: what the backward reads, and where it reads it last.
    let mut value_reads: BTreeMap<ValueId, usize> = BTreeMap::new(); // value -> last step index reading it
    let mut summed: BTreeMap<ValueId, usize> = BTreeMap::new(); // value -> last step reading its column sums
    let mut aux_reads: BTreeMap<ValueId, usize> = BTreeMap::new(); // statement -> last step reading its aux
    let mut dim_reads: BTreeSet<ValueId> = BTreeSet::new();
    let mut token_reads: Vec<TokenStream> = Vec::new();
    // An element of a slice is read through the slice, at its index.
    let read = |v: ValueId,
                i: usize,
                value_reads: &mut BTreeMap<ValueId, usize>,
                token_reads: &mut Vec<TokenStream>| match &function.stmt(v).op {
        Op::Const(t) => token_reads.push(t.clone()),
        Op::Index(slice, at) => {
            value_reads.insert(*slice, i);
            token_reads.push(at.clone());
        }
        _ => {
            value_reads.insert(v, i);
        }
    };
    for (i, step) in steps.iter().enumerate() {
        if step.materialize && step.form == Form::Fill {
            dim_reads.insert(step.stmt);
        }
        match &function.stmt(step.stmt).op {
            Op::Index(slice, at) => {
                value_reads.insert(*slice, i);
                token_reads.push(at.clone());
            }
            Op::Loop(l) => {
                let body = &bodies[&step.stmt];
                // Backward runs the range again, for the indices, or reads the arm's flag.
                match l.flag {
                    Some(flag) => read(flag, i, &mut value_reads, &mut token_reads),
                    None => token_reads.push(l.range.clone()),
                }
                for &(index, v) in &l.captured {
                    if body.code.outer_reads.contains(&index) {
                        read(v, i, &mut value_reads, &mut token_reads);
                    }
                }
                // The states its edge iterations leave to the code around it.
                for v in body.edge_reads() {
                    read(v, i, &mut value_reads, &mut token_reads);
                }
                token_reads.extend(body.code.constant_reads.iter().cloned());
                dim_reads.extend(loops::dims_read(function, step.stmt, l, activity));
            }
            Op::Call(c) | Op::Custom { call: c, .. } => {
                let (values, tokens) = calls::reads(c);
                for v in values {
                    read(v, i, &mut value_reads, &mut token_reads);
                }
                token_reads.extend(tokens);
                if !contributions.contains_key(&step.stmt) && function.kind(step.stmt).is_array() {
                    dim_reads.insert(step.stmt);
                }
                // A custom rule's VJP reads the output.
                if matches!(function.stmt(step.stmt).op, Op::Custom { .. }) {
                    value_reads.insert(step.stmt, i);
                }
            }
            _ => {}
        }
        for call in &step.calls {
            if call.materialize && call.yields == Form::Fill {
                dim_reads.insert(call.target);
            }
            for arg in call.reads() {
                match arg {
                    GradArg::Value(v) => read(*v, i, &mut value_reads, &mut token_reads),
                    // Read below, once what the rest of the backward reads is known.
                    GradArg::Factors(_) => {}
                    // Masks replace values below (3c), once their reads are known.
                    GradArg::Mask(_) => {}
                    GradArg::ColumnSums(v) => {
                        summed.insert(*v, i);
                    }
                    GradArg::Aux(v) => {
                        aux_reads.insert(*v, i);
                    }
                    // `reads` lists a step's arguments in its place.
                    GradArg::Step(_) => {}
                    GradArg::Dim(v) | GradArg::DimAxis(v, _) => {
                        dim_reads.insert(*v);
                    }
                    GradArg::Tokens(t) => token_reads.push(t.clone()),
                    // The derivative closure reads the captured floats and the body's constants.
                    GradArg::MapDerivative(map, wrt) => {
                        if let Op::Map { captures, .. } = &function.stmt(*map).op {
                            for &c in captures {
                                read(c, i, &mut value_reads, &mut token_reads);
                            }
                        }
                        token_reads.push(map_derivative(names, *map, *wrt));
                    }
                    GradArg::G | GradArg::GRef | GradArg::GScalar => {}
                }
            }
        }
    }
    // 3b. A matrix that backward only multiplies by vectors (an outer-product adjoint's
    // rules) is not kept when it is itself a product: the vectors go through its factors
    // instead (`(P·Q)ᵀ·u = Qᵀ·(Pᵀ·u)`), a few more matrix-vector products in exchange for
    // not holding `P·Q` from forward to backward.
    let mut steps = steps;
    for (i, step) in steps.iter_mut().enumerate() {
        for call in &mut step.calls {
            for arg in &mut call.args {
                let GradArg::Factors(factors) = arg else { continue };
                if names.analyses.seed {
                    *factors = expand_factors(function, factors, &value_reads, &outputs);
                }
                for &v in factors.iter() {
                    let mut reads = BTreeMap::new();
                    read(v, i, &mut reads, &mut token_reads);
                    for (v, i) in reads {
                        let last = value_reads.entry(v).or_insert(i);
                        *last = (*last).max(i);
                    }
                }
            }
        }
    }
    // 3c. What backward reads only through relu's rule is kept as a bit per element: a sign
    // mask taken in forward where the value is made, which that rule's kernel reads in place
    // of the value (`masked`: value -> the step reading it). Only where that kernel reads the
    // bits directly: a rule fused into a longer chain reads the float (decoding the bits
    // first would add a pass over memory), so there the value is kept as it is.
    // `save = "all"` keeps every residual as computed.
    // What loops and calls read by name: kept as it is whatever the form (3c, 3d).
    let structural = structural_reads(function, &steps, true);
    let mut masked: BTreeMap<ValueId, usize> = BTreeMap::new();
    if names.analyses.liveness && names.analyses.save != Save::All {
        for &v in &sign_only {
            if !value_reads.contains_key(&v)
                || !droppable(function, v)
                || outputs.contains(&v)
                || structural.contains(&v)
            {
                continue;
            }
            let readers: Vec<(usize, usize)> = steps
                .iter()
                .enumerate()
                .flat_map(|(i, s)| {
                    s.calls
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| c.reads().any(|a| matches!(a, GradArg::Value(x) if *x == v)))
                        .map(move |(k, _)| (i, k))
                })
                .collect();
            let [(i, k)] = readers[..] else { continue };
            let Some(direct) = masked_call(&steps[i].calls[k], v) else {
                continue;
            };
            steps[i].calls[k] = direct;
            value_reads.remove(&v);
            masked.insert(v, i);
        }
    }
    // 3e. Save or recompute (`save = "auto"`): an array kept as computed that forward made by
    // arithmetic (`+ - * /`, negation, `powi`) from values backward has anyway (parameters,
    // constants, values kept for their own reads, or values recomputed likewise) is not kept:
    // backward computes it again before its first read (`recomputed`: value -> the step
    // computing it and the last step reading it). One pass over memory for one array less
    // between the halves, and only where backward runs a matrix product or a convolution,
    // next to which such a pass costs little (a purely elementwise function would pay for
    // it in a backward made of such passes). Not transcendental functions: recomputing
    // swish's σ(z) (an exp per element) made backward 1.5× `all`'s at 256×512·512×1024,
    // against 1.00–1.04× for its product z·σ(z) (`benches/recompute.rs`, 2026-12-02, with
    // the scalar `exp` of the time; `f32` arrays' is vectorised since, `kernels/vector.rs`,
    // which may change that verdict for `f32`).
    let recomputed = recompute_plan(
        function,
        names,
        boundary,
        &steps,
        &outputs,
        &structural,
        &mut value_reads,
        &mut token_reads,
    );
    // The earliest step at which a recomputation reads each kept value (3d unpacks there).
    let mut recompute_reads: BTreeMap<ValueId, usize> = BTreeMap::new();
    for (&v, &(at, _)) in &recomputed {
        for u in function.stmt(v).op.operands() {
            let first = recompute_reads.entry(u).or_insert(at);
            *first = (*first).min(at);
        }
    }
    // 3d. `residuals = "bf16"` (or "f16"): the array residuals still kept as computed are kept
    // rounded to 16 bits, packed where forward makes them and unpacked before backward's
    // first read (`packed`: value -> first and last step reading it). Loop states, which
    // consecutive iterations share, are packed by the loop (`loops.rs`: one packing per
    // state, shared by both contexts); what loops and calls read by name stays as it is,
    // but for a loop's initial value and output, which its edge iterations read as states
    // (unpacked before that loop's step like before any other first read); so do aux
    // residuals (a row's statistics and indices are not in `value_reads`).
    let mut packed: BTreeMap<ValueId, (usize, usize)> = BTreeMap::new();
    if names.analyses.residuals.format().is_some() {
        let by_name = structural_reads(function, &steps, false);
        let first_edge_read = |v: ValueId| {
            steps.iter().position(|s| {
                bodies
                    .get(&s.stmt)
                    .is_some_and(|body| body.edge_reads().any(|e| e == v))
            })
        };
        // A value read beside an aux residual stays as computed: batch norm's input is read
        // with the statistics forward took of the exact values, and rounding the one but not
        // the other made x̂ inconsistent with them (conv2d's bf16 gradient error 2.3e-3 →
        // 5.9e-2 against f64, and 0.8 at the tests' small shapes). Unless the call reads a
        // shared step with a `rounded` twin: the twin (run below where a value it reads is
        // packed) measures the values as read, and the calls reading it normalise by that.
        let read_with_aux: BTreeSet<ValueId> = steps
            .iter()
            .flat_map(|s| s.calls.iter())
            .filter(|c| c.reads().any(|a| matches!(a, GradArg::Aux(_))))
            .filter(|c| !c.steps().any(|step| step.rounded.is_some()))
            .flat_map(|c| {
                c.reads()
                    .filter_map(|a| match a {
                        GradArg::Value(x) => Some(*x),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let kept: Vec<(ValueId, usize)> = value_reads.iter().map(|(&v, &last)| (v, last)).collect();
        for (v, last) in kept {
            if !function.kind(v).is_array()
                || !droppable(function, v)
                || outputs.contains(&v)
                || by_name.contains(&v)
                || names.is_shared(v)
                || read_with_aux.contains(&v)
            {
                continue;
            }
            let first = first_value_read(&steps, v)
                .into_iter()
                .chain(first_edge_read(v))
                .min()
                .unwrap_or(last)
                .min(recompute_reads.get(&v).copied().unwrap_or(usize::MAX));
            value_reads.remove(&v);
            packed.insert(v, (first, last));
        }
        // A shared step reading a value now kept rounded, beside an aux that describes the
        // value as computed, runs its twin that does not assume the two agree.
        for arg in steps
            .iter_mut()
            .flat_map(|s| s.calls.iter_mut())
            .flat_map(|c| c.args.iter_mut())
        {
            if let GradArg::Step(step) = arg {
                let reads_rounded = step
                    .args
                    .iter()
                    .any(|a| matches!(a, GradArg::Value(v) if packed.contains_key(v)));
                if let (Some(twin), true) = (step.rounded, reads_rounded) {
                    step.kernel = twin;
                }
            }
        }
    }
    // Differentiated parameters that receive no gradient need their shape for the zeros;
    // a differentiated slice's gradient starts as zeros shaped like it.
    for &index in &grads {
        match function.params[index].role {
            ParamRole::Value {
                id,
                kind: Kind::Array(_),
                ..
            } if !contributions.contains_key(&id) => {
                dim_reads.insert(id);
            }
            _ => {}
        }
    }
    if let Boundary::Top | Boundary::Call = boundary {
        for index in slice_gradients(function, &grads, &is_active) {
            if let Some(id) = function.param_id(index) {
                value_reads.entry(id).or_insert(0);
            }
        }
    }
    // Constants the backward reads may name parameters: constant ones, and float or array
    // ones through shape queries (`x.len() as f64`).
    let params_named_by_constants: Vec<usize> = function
        .params
        .iter()
        .enumerate()
        .filter(|(_, p)| token_reads.iter().any(|t| mentions_ident(t, &p.ident)))
        .map(|(i, _)| i)
        .collect();

    // 4. The context fields. A loop body's context is one iteration's; the outer values it
    // reads are the outer code's to keep.
    let mut fields = Vec::new();
    let mut outer_reads = BTreeSet::new();
    for (index, param) in function.params.iter().enumerate() {
        let read = params_named_by_constants.contains(&index)
            || matches!(param.role, ParamRole::Value { id, .. } if value_reads.contains_key(&id));
        let resupplied = matches!(boundary, Boundary::Call);
        match (param.origin, &param.role) {
            (_, _) if !read => {}
            (Origin::Own, _) if !resupplied => fields.push(CtxField {
                ident: param.ident.clone(),
                ty: param_types[index].clone(),
                held: None,
            }),
            (Origin::Carried, ParamRole::Value { id, kind, .. }) => fields.push(CtxField {
                ident: names.ident(*id),
                ty: names.value_type(*kind),
                held: held_elements(*kind, names),
            }),
            _ => {
                outer_reads.insert(index);
            }
        }
    }
    let mut residuals = Vec::new();
    for (&v, _) in value_reads.iter().filter(|(v, _)| function.param_of(**v).is_none()) {
        let kind = function.kind(v);
        if kind.is_array() {
            residuals.push(Residual::Array(v));
        }
        fields.push(CtxField {
            ident: names.ident(v),
            ty: names.value_type(kind),
            held: held_elements(kind, names),
        });
    }
    for (&id, body) in &bodies {
        if is_active(id) {
            residuals.push(Residual::Loop(id));
            fields.push(body.context_field());
        }
    }
    for stmt in function.stmts.iter().filter(|s| is_active(s.id)) {
        if let Op::Call(c) = &stmt.op {
            residuals.push(Residual::Call(stmt.id));
            fields.push(calls::context_field(names, stmt.id, c));
        }
    }
    for &v in &dim_reads {
        fields.push(CtxField {
            ident: names.dim(v),
            ty: names.dim_type(function.kind(v)),
            held: None,
        });
    }
    for &v in summed.keys() {
        residuals.push(Residual::ColumnSums(v));
        fields.push(CtxField {
            ident: column_sums(names, v),
            ty: names.value_type(Kind::Array(Some(1))),
            held: Some(Held::Array),
        });
    }
    for &v in packed.keys() {
        residuals.push(Residual::Packed(v));
        let dim = names.dim_type(function.kind(v));
        fields.push(CtxField {
            ident: packed_residual(names, v),
            ty: quote!(::autodiff::runtime::kernels::packed::Packed<#dim>),
            held: Some(Held::Compact),
        });
    }
    for &v in aux_reads.keys() {
        if let Some(aux) = rules::aux_of(function, v) {
            residuals.push(Residual::Aux(v));
            fields.push(CtxField {
                ident: aux_residual(names, v, aux.field),
                ty: aux_type(names, &aux),
                held: Some(Held::Compact),
            });
        }
    }
    for &v in masked.keys() {
        residuals.push(Residual::Mask(v));
        let dim = names.dim_type(function.kind(v));
        fields.push(CtxField {
            ident: sign_mask(names, v),
            ty: quote!(::autodiff::runtime::kernels::mask::SignMask<#dim>),
            held: Some(Held::Compact),
        });
    }

    // 5. The forward half.
    let mut forward_body = TokenStream::new();
    let mut plan_forward = Vec::new();
    for &v in &dim_reads {
        if function.param_of(v).is_some() {
            // By its argument: a loop body's parameter may stand for a slice element.
            let (dim, value) = (names.dim(v), receiver(names.arg(v)));
            forward_body.extend(quote!(let #dim = #value.raw_dim();));
        }
    }
    for stmt in function.stmts.iter().filter(differentiable) {
        let ident = names.ident(stmt.id);
        match &stmt.op {
            // Borrowed where it is used.
            Op::Index(..) => {}
            Op::Loop(l) => {
                let body = &bodies[&stmt.id];
                let movable: Vec<ValueId> = liveness
                    .dying_at(stmt)
                    .into_iter()
                    .filter(|&a| droppable(function, a) && !value_reads.contains_key(&a) && !outputs.contains(&a))
                    .filter(|_| names.analyses.liveness)
                    .collect();
                let (code, plan) = body.forward(function, stmt.id, l, names, is_active(stmt.id), &movable);
                forward_body.extend(code);
                plan_forward.extend(plan);
            }
            // Bound by their loop.
            Op::LoopOut { .. } => {}
            Op::Call(c) => {
                let (code, label) = calls::forward(names, stmt.id, c, is_active(stmt.id));
                forward_body.extend(code);
                plan_forward.push(label);
            }
            Op::Custom { call, .. } => {
                let (code, label) = calls::custom_forward(names, stmt.id, call);
                forward_body.extend(code);
                plan_forward.push(label);
            }
            _ => {
                // A row whose aux residual backward reads runs its `keeping` twin, which
                // returns the aux too.
                let aux = rules::aux_of(function, stmt.id).filter(|_| aux_reads.contains_key(&stmt.id));
                let (call, label) = forward_call(function, names, stmt, aux.is_some());
                match aux {
                    Some(aux) => {
                        let kept = aux_residual(names, stmt.id, aux.field);
                        plan_forward.push(format!("{0}, {0}_{1} = {label}", names.text(stmt.id), aux.field));
                        forward_body.extend(quote!(let (#ident, #kept) = #call;));
                    }
                    None => {
                        plan_forward.push(format!("{} = {}", names.text(stmt.id), label));
                        forward_body.extend(quote!(let #ident = #call;));
                    }
                }
            }
        }
        if dim_reads.contains(&stmt.id) {
            let (dim, value) = (names.dim(stmt.id), receiver(names.arg(stmt.id)));
            forward_body.extend(quote!(let #dim = #value.raw_dim();));
        }
        if summed.contains_key(&stmt.id) {
            let (sums, value, k) = (column_sums(names, stmt.id), names.arg(stmt.id), kernels());
            forward_body.extend(quote!(let #sums = #k::rank1::column_sums(#value);));
            plan_forward.push(format!("{0}_colsum = column_sums({0})", names.text(stmt.id)));
        }
        if let (true, Some(format)) = (packed.contains_key(&stmt.id), names.analyses.residuals.format()) {
            let (packed, value) = (packed_residual(names, stmt.id), names.arg(stmt.id));
            let format_ident = format_ident!("{}", format);
            forward_body.extend(quote!(let #packed = ::autodiff::runtime::kernels::packed::Packed::pack(#value, ::autodiff::runtime::kernels::packed::Half::#format_ident);));
            plan_forward.push(format!(
                "{0}_packed = {1}({0})",
                names.text(stmt.id),
                format.to_lowercase()
            ));
        }
        if masked.contains_key(&stmt.id) {
            let (mask, value) = (sign_mask(names, stmt.id), names.arg(stmt.id));
            forward_body.extend(quote!(let #mask = ::autodiff::runtime::kernels::mask::SignMask::positive(#value);));
            plan_forward.push(format!("{0}_sign = sign_mask({0})", names.text(stmt.id)));
        }
        for a in liveness.dying_at(stmt) {
            // A loop moves (or copies) its carried variables' initial values.
            let loop_init =
                matches!(&stmt.op, Op::Loop(l) if l.carried.iter().any(|c| matches!(c.init, Init::Value(v) if v == a)));
            if names.analyses.liveness
                && droppable(function, a)
                && !value_reads.contains_key(&a)
                && !outputs.contains(&a)
                && !loop_init
            {
                let ident = names.ident(a);
                forward_body.extend(quote!(::core::mem::drop(#ident);));
            }
        }
    }
    if let Boundary::Top | Boundary::Call = boundary {
        let output = function.output;
        let value = match function.kind(output) {
            Kind::Scalar => names.arg(output),
            // A layer's output: moved out unless backward keeps it (or it is borrowed).
            _ if droppable(function, output) && !value_reads.contains_key(&output) => {
                let ident = names.ident(output);
                quote!(#ident)
            }
            _ => {
                let arg = names.arg(output);
                quote!((#arg).to_owned())
            }
        };
        forward_body.extend(quote!(let __value = #value;));
    }

    // 6. The backward half.
    let mut backward_body = TokenStream::new();
    let mut plan_backward = Vec::new();
    let mut received: BTreeMap<ValueId, usize> = BTreeMap::new();
    // Adds `expr` to `target`'s adjoint (declaring it at the first contribution).
    // A loop body's captured value whose adjoint is summed in place into an outer local.
    let accumulator = |target: ValueId| -> Option<&Ident> {
        match (boundary, &function.stmt(target).op) {
            (Boundary::Body { accumulators, .. }, Op::Param { index }) => accumulators.get(index),
            _ => None,
        }
    };
    let contribute = |received: &mut BTreeMap<ValueId, usize>,
                      target: ValueId,
                      expr: TokenStream,
                      label: String,
                      backward_body: &mut TokenStream,
                      plan_backward: &mut Vec<String>| {
        let d = accumulator(target).cloned().unwrap_or_else(|| names.adjoint(target));
        let count = received.entry(target).or_default();
        *count += 1;
        let d_text = format!("d_{}", names.text(target));
        if *count == 1 && accumulator(target).is_none() {
            let mutability = (contributions[&target] > 1).then(|| quote!(mut));
            backward_body.extend(quote!(let #mutability #d = #expr;));
            plan_backward.push(format!("{d_text} = {label}"));
        } else if function.kind(target).is_array() {
            // A loop's accumulator starts empty and takes its first contribution's buffer.
            let k = kernels();
            let kernel = match accumulator(target) {
                Some(_) => quote!(accumulate_slot),
                None => quote!(accumulate),
            };
            backward_body.extend(quote!(#k::binary::#kernel(&mut #d, #expr);));
            plan_backward.push(format!("{d_text} += {label}"));
        } else {
            backward_body.extend(quote!(#d += #expr;));
            plan_backward.push(format!("{d_text} += {label}"));
        }
    };
    let seeds: Vec<Option<Ident>> = match boundary {
        Boundary::Top | Boundary::Call => vec![Some(format_ident!("__seed"))],
        Boundary::Body { seeds, .. } => seeds.clone(),
    };
    for (&output, seed) in outputs.iter().zip(&seeds) {
        if let (true, Some(seed)) = (is_active(output), seed) {
            contribute(
                &mut received,
                output,
                quote!(#seed),
                "seed".to_string(),
                &mut backward_body,
                &mut plan_backward,
            );
        }
    }
    // A differentiated slice's gradient: one empty slot per element, each taking its first
    // contribution's buffer and summing the others into it, by index (in loop bodies too,
    // which name it as the function does); zeros where none came, once backward is done.
    // Not zeros up front: they would be held through the whole sweep beside the residuals
    // (the RNN's 1.6 MB of `d_xs`), a pass to write and one more to add into.
    if let Boundary::Top | Boundary::Call = boundary {
        for index in slice_gradients(function, &grads, &is_active) {
            if let ParamRole::Value { id, .. } = function.params[index].role {
                let (d, slice) = (names.adjoint(id), names.ident(id));
                backward_body.extend(quote! {
                    let mut #d: ::std::vec::Vec<::core::option::Option<_>> = #slice.iter().map(|_| ::core::option::Option::None).collect();
                });
                plan_backward.push(format!("d_{} = empty slots like {}", names.text(id), names.text(id)));
            }
        }
    }
    for (i, step) in steps.iter().enumerate() {
        for (&v, _) in packed.iter().filter(|(_, (first, _))| *first == i) {
            let (value, packed, float) = (names.ident(v), packed_residual(names, v), &names.float);
            backward_body.extend(quote!(let #value = #packed.unpack::<#float>(); ::core::mem::drop(#packed);));
            plan_backward.push(format!("{0} = unpack({0}_packed)", names.text(v)));
        }
        // In statement order, so that a recomputed value's recomputed operands come first.
        for (&v, _) in recomputed.iter().filter(|(_, (at, _))| *at == i) {
            let stmt = function.stmt(v);
            let (call, label) = forward_call(function, names, stmt, false);
            let value = names.ident(v);
            backward_body.extend(quote!(let #value = #call;));
            plan_backward.push(format!("{} = {label} (recomputed)", names.text(v)));
        }
        let g = names.adjoint(step.stmt);
        let g_text = format!("d_{}", names.text(step.stmt));
        // A symbolic adjoint is not an array unless it was materialised at the start of the step.
        let g_is_array = function.kind(step.stmt).is_array() && (step.form == Form::Dense || step.materialize);
        if step.materialize {
            let (expr, label) = materialized(names, step.form, step.stmt, quote!(#g), &g_text);
            backward_body.extend(quote!(let #g = #expr;));
            plan_backward.push(format!("{g_text} = {label}"));
        }
        // A call (or a custom rule) runs the callee's backward, whose gradients are added.
        if let Some(call) = calls::backward_of(function, names, step.stmt, &is_active, &received) {
            backward_body.extend(call.code);
            plan_backward.push(call.label);
            for (target, g) in call.gradients {
                let label = format!("({} d_{})", call.whose, names.text(target));
                contribute(
                    &mut received,
                    target,
                    quote!(#g),
                    label,
                    &mut backward_body,
                    &mut plan_backward,
                );
            }
            continue;
        }
        match &function.stmt(step.stmt).op {
            // The loop reads its outputs' adjoints.
            Op::LoopOut { .. } => continue,
            Op::Index(slice, at) => {
                if received.contains_key(&step.stmt) {
                    let (k, d) = (kernels(), names.adjoint(*slice));
                    backward_body.extend(quote!(#k::binary::accumulate_slot(&mut #d[#at], #g);));
                    plan_backward.push(format!("d_{}[{at}] += {g_text}", names.text(*slice)));
                }
                continue;
            }
            Op::Loop(l) => {
                let body = &bodies[&step.stmt];
                let (code, results, plan) = body.backward(function, step.stmt, l, names, activity, &received);
                backward_body.extend(code);
                plan_backward.extend(plan);
                for (target, result) in results {
                    let label = names.text(target);
                    let label = format!("(loop's d_{label})");
                    contribute(
                        &mut received,
                        target,
                        quote!(#result),
                        label,
                        &mut backward_body,
                        &mut plan_backward,
                    );
                }
                continue;
            }
            _ => {}
        }
        // Calls that only borrow the adjoint go first; the last call that takes it by value
        // gets the buffer itself, earlier ones a copy.
        let mut calls: Vec<&GradCall> = step.calls.iter().collect();
        calls.sort_by_key(|c| c.args.iter().any(|a| matches!(a, GradArg::G)));
        let owners = calls
            .iter()
            .filter(|c| c.args.iter().any(|a| matches!(a, GradArg::G)))
            .count();
        let mut owners_seen = 0;
        // The shared steps the calls read, once each, before them.
        let mut shared: Vec<&SharedStep> = Vec::new();
        for step in calls.iter().flat_map(|c| c.steps()) {
            if !shared.contains(&step) {
                shared.push(step);
            }
        }
        for step in &shared {
            let local = shared_step(names, step);
            let (expr, label) = kernel_call(names, step.kernel, &step.args, &g, &g_text, false);
            backward_body.extend(quote!(let #local = #expr;));
            plan_backward.push(format!("{} = {label}", local));
        }
        for call in calls {
            let takes_g = call.args.iter().any(|a| matches!(a, GradArg::G));
            if takes_g {
                owners_seen += 1;
            }
            let moves = takes_g && owners_seen == owners && names.analyses.reuse;
            // A kernel that would get a clone of `g` runs out of place from `&g` instead
            // when it has such a form: one pass over memory instead of a copy plus a pass.
            let borrowed;
            let call = match call.borrowing {
                Some(kernel) if takes_g && !moves && names.analyses.reuse => {
                    borrowed = GradCall {
                        kernel: Some(kernel),
                        borrowing: None,
                        args: call
                            .args
                            .iter()
                            .map(|a| {
                                if matches!(a, GradArg::G) {
                                    GradArg::GRef
                                } else {
                                    a.clone()
                                }
                            })
                            .collect(),
                        ..call.clone()
                    };
                    &borrowed
                }
                _ => call,
            };
            // A matrix product summed into an accumulator runs as GEMM with β = 1: no
            // product buffer, no separate addition.
            if let (Some(acc), Some(kernel), false, true) = (
                accumulator(call.target),
                call.kernel.and_then(Kernel::accumulating),
                call.materialize,
                names.analyses.reuse,
            ) {
                // The accumulator is empty until its first contribution, which the
                // product's plain form writes (no zeros allocated before the sweep).
                let fused = GradCall {
                    kernel: Some(kernel),
                    args: std::iter::once(GradArg::Tokens(quote!(__acc)))
                        .chain(call.args.iter().cloned())
                        .collect(),
                    ..call.clone()
                };
                let (expr, label) = grad_call(names, &fused, &g, &g_text, moves);
                let (first, _) = grad_call(names, call, &g, &g_text, moves);
                received.entry(call.target).or_default();
                backward_body.extend(quote! {
                    match #acc.as_mut() {
                        ::core::option::Option::Some(__acc) => { #expr; }
                        ::core::option::Option::None => #acc = ::core::option::Option::Some(#first),
                    }
                });
                plan_backward.push(format!("d_{} += {label}", names.text(call.target)));
                continue;
            }
            let (expr, label) = grad_call(names, call, &g, &g_text, moves);
            contribute(
                &mut received,
                call.target,
                expr,
                label,
                &mut backward_body,
                &mut plan_backward,
            );
        }
        // An adjoint no kernel took is freed here (without reuse, none takes it).
        if g_is_array && (owners == 0 || !names.analyses.reuse) {
            backward_body.extend(quote!(::core::mem::drop(#g);));
        }
        let unpacked = packed.iter().map(|(v, (_, last))| (v, last));
        let recomputed_last = recomputed.iter().map(|(v, (_, last))| (v, last));
        for (&v, &last) in value_reads.iter().chain(unpacked).chain(recomputed_last) {
            if last == i && droppable(function, v) && names.analyses.liveness {
                let ident = names.ident(v);
                backward_body.extend(quote!(::core::mem::drop(#ident);));
            }
        }
        for (&v, _) in masked.iter().filter(|(_, &reader)| reader == i) {
            let mask = sign_mask(names, v);
            backward_body.extend(quote!(::core::mem::drop(#mask);));
        }
        for (&v, _) in summed.iter().filter(|(_, &last)| last == i) {
            let sums = column_sums(names, v);
            backward_body.extend(quote!(::core::mem::drop(#sums);));
        }
        for (&v, _) in aux_reads.iter().filter(|(_, &last)| last == i) {
            if let Some(aux) = rules::aux_of(function, v) {
                let kept = aux_residual(names, v, aux.field);
                backward_body.extend(quote!(::core::mem::drop(#kept);));
            }
        }
        for step in shared {
            let local = shared_step(names, step);
            backward_body.extend(quote!(::core::mem::drop(#local);));
        }
    }
    let float = &names.float;
    let grad_values: Vec<TokenStream> = grads
        .iter()
        .map(|&index| {
            let ParamRole::Value { id, kind, .. } = function.params[index].role else {
                unreachable!("wrt holds value parameters")
            };
            if matches!(kind, Kind::Slice(_)) {
                let (d, slice, k) = (names.adjoint(id), names.ident(id), kernels());
                quote!(#k::binary::slots_or_zeros(#d, #slice))
            } else if contributions.contains_key(&id) {
                let d = names.adjoint(id);
                quote!(#d)
            } else if kind.is_array() {
                let dim = names.dim(id);
                quote!(::autodiff::ndarray::Array::zeros(#dim))
            } else {
                quote!(<#float as ::autodiff::runtime::Float>::of(0.0))
            }
        })
        .collect();
    backward_body.extend(quote!((#(#grad_values,)*)));

    let plan_eliminated = function
        .stmts
        .iter()
        .filter(|s| !matches!(s.op, Op::Const(_) | Op::ConstArray(_) | Op::Loop(_)) && !is_active(s.id))
        .filter(
            |s| !matches!(s.op, Op::Param { index } if !matches!(function.params[index].role, ParamRole::Value { .. })),
        )
        .map(|s| names.text(s.id))
        .collect();
    let plan_saved = value_reads
        .keys()
        .filter(|v| function.param_of(**v).is_none())
        .map(|v| names.text(*v))
        .chain(masked.keys().map(|v| format!("{} (sign bits)", names.text(*v))))
        .chain(summed.keys().map(|v| format!("{} (column sums)", names.text(*v))))
        .chain(packed.keys().map(|v| format!("{} (16 bits)", names.text(*v))))
        .chain(
            aux_reads
                .keys()
                .filter_map(|&v| rules::aux_of(function, v).map(|aux| format!("{} ({})", names.text(v), aux.field))),
        )
        .collect();

    StaticCode {
        forward_body,
        fields,
        backward_body,
        plan_forward,
        plan_backward,
        plan_eliminated,
        plan_saved,
        grads,
        outer_reads,
        constant_reads: token_reads,
        residuals,
    }
}

/// One elementwise backward step `g ↦ g · f'(saved)`, as a scalar rule.
struct Factor {
    saved: ValueId,
    /// `|g, s| ...` applied to tokens.
    rule: FactorRule,
}

enum FactorRule {
    /// The kernel's scalar form, `k(g, s[, constant])`.
    Kernel(Kernel, Option<TokenStream>),
    /// `g * (derivative closure)(s)`.
    Map(ValueId),
}

impl Factor {
    fn of(function: &Function, step: &Step) -> Option<Factor> {
        let [call] = step.calls.as_slice() else { return None };
        let kernel = call.kernel?;
        let scalar = kernel.scalar_form()?;
        match (kernel, call.args.as_slice()) {
            // Not with captures: the fused closure would read them without liveness knowing.
            (Kernel::map_grad, [GradArg::G, GradArg::Value(s), GradArg::MapDerivative(map, Wrt::Arg)]) => {
                matches!(&function.stmt(*map).op, Op::Map { captures, .. } if captures.is_empty()).then_some(Factor {
                    saved: *s,
                    rule: FactorRule::Map(*map),
                })
            }
            (Kernel::map_grad, _) => None,
            (_, [GradArg::G, GradArg::Value(s)]) => Some(Factor {
                saved: *s,
                rule: FactorRule::Kernel(scalar, None),
            }),
            (_, [GradArg::G, GradArg::Value(s), GradArg::Tokens(e)]) => Some(Factor {
                saved: *s,
                rule: FactorRule::Kernel(scalar, Some(e.clone())),
            }),
            _ => None,
        }
    }

    fn apply(&self, names: &Names, g: TokenStream, s: &Ident) -> TokenStream {
        let k = kernels();
        match &self.rule {
            FactorRule::Kernel(kernel, constant) => {
                let (module, name) = kernel.path();
                let (m, f) = (format_ident!("{}", module), format_ident!("{}", name));
                match constant {
                    Some(e) => quote!(#k::#m::#f(#g, #s, (#e))),
                    None => quote!(#k::#m::#f(#g, #s)),
                }
            }
            FactorRule::Map(map) => {
                let closure = map_derivative(names, *map, Wrt::Arg);
                quote!(#k::unary::map_grad_scalar(#g, #s, #closure))
            }
        }
    }
}

/// Merges runs of elementwise backward steps (`exp`, `tanh`, `powi`, `mapv`, ...) whose
/// intermediate adjoints have no other use into one `fused::chainN` call (N ≤ 4): one pass
/// over memory instead of N, no intermediate adjoint buffers, the same scalar rules.
fn fuse_elementwise_chains(
    function: &Function,
    names: &Names,
    mut steps: Vec<Step>,
    contributions: &BTreeMap<ValueId, usize>,
) -> Vec<Step> {
    const MAX_CHAIN: usize = 4;
    let step_of: BTreeMap<ValueId, usize> = steps.iter().enumerate().map(|(i, s)| (s.stmt, i)).collect();
    let mut absorbed = vec![false; steps.len()];
    for i in 0..steps.len() {
        // A symbolic adjoint the step would materialise starts the chain as it is: the pass
        // that writes the full adjoint and the chain's pass become one.
        let symbolic_head = steps[i].form != Form::Dense;
        if absorbed[i] || (symbolic_head && !steps[i].materialize) {
            continue;
        }
        let Some(first) = Factor::of(function, &steps[i]) else {
            continue;
        };
        let mut factors = vec![first];
        let mut target = steps[i].calls[0].target;
        let mut chain = Vec::new();
        while factors.len() < MAX_CHAIN && contributions.get(&target) == Some(&1) && function.param_of(target).is_none()
        {
            let Some(&j) = step_of.get(&target) else { break };
            if steps[j].form != Form::Dense {
                break;
            }
            let Some(next) = Factor::of(function, &steps[j]) else {
                break;
            };
            target = steps[j].calls[0].target;
            factors.push(next);
            chain.push(j);
        }
        if factors.len() < 2 && !symbolic_head {
            continue;
        }
        let g = format_ident!("__g", span = proc_macro2::Span::mixed_site());
        let saved: Vec<Ident> = (0..factors.len())
            .map(|k| format_ident!("__s{}", k, span = proc_macro2::Span::mixed_site()))
            .collect();
        let mut body = quote!(#g);
        for (factor, s) in factors.iter().zip(&saved) {
            body = factor.apply(names, body, s);
        }
        let closure = quote!(|#g, #(#saved),*| #body);
        let (head, kernel) = match steps[i].form {
            Form::Dense => (GradArg::G, Kernel::chain(factors.len())),
            Form::Fill => (GradArg::GScalar, Kernel::fill_chain(factors.len())),
            Form::Outer => (GradArg::GRef, Kernel::outer_chain(factors.len())),
        };
        let mut args = vec![head];
        args.extend(factors.iter().map(|f| GradArg::Value(f.saved)));
        args.push(GradArg::Tokens(closure));
        let Some(kernel) = kernel else {
            continue;
        };
        steps[i].materialize = false;
        steps[i].calls = vec![GradCall {
            target,
            kernel: Some(kernel),
            args,
            borrowing: None,
            yields: Form::Dense,
            materialize: false,
            fallback: None,
        }];
        for j in chain {
            absorbed[j] = true;
        }
    }
    steps
        .into_iter()
        .zip(absorbed)
        .filter(|(_, a)| !a)
        .map(|(s, _)| s)
        .collect()
}

/// The factors a matrix-vector kernel multiplies through in place of `factors`: a product of
/// two matrices that nothing else in backward reads (`kept`) and the caller does not return is
/// replaced by its own two factors, up to [`MAX_FACTORS`] matrices in all, so that the cost
/// stays a few matrix-vector products per kernel (a longer chain keeps some products).
fn expand_factors(
    function: &Function,
    factors: &[ValueId],
    kept: &BTreeMap<ValueId, usize>,
    outputs: &[ValueId],
) -> Vec<ValueId> {
    const MAX_FACTORS: usize = 4;
    let matrix = |v: ValueId| function.kind(v) == Kind::Array(Some(2));
    let mut factors = factors.to_vec();
    while factors.len() < MAX_FACTORS {
        let expandable = factors
            .iter()
            .enumerate()
            .find_map(|(k, &v)| match function.stmt(v).op {
                Op::Dot(p, q)
                    if matrix(p)
                        && matrix(q)
                        && droppable(function, v)
                        && !kept.contains_key(&v)
                        && !outputs.contains(&v) =>
                {
                    Some((k, p, q))
                }
                _ => None,
            });
        let Some((k, p, q)) = expandable else { break };
        factors.splice(k..=k, [p, q]);
    }
    factors
}

/// `call` (the one backward call reading `v`, only through relu's rule) with relu's masked
/// kernel reading `v`'s sign mask instead of `v`, where there is one for the call's form.
fn masked_call(call: &GradCall, v: ValueId) -> Option<GradCall> {
    let (kernel, head) = match (call.kernel?, call.args.as_slice()) {
        (Kernel::UnaryGrad(UnaryFn::Relu), [GradArg::G, GradArg::Value(x)]) if *x == v => {
            (Kernel::relu_grad_masked, GradArg::G)
        }
        // A one-step chain is relu's rule alone: `v` is read only through relu's rule.
        (Kernel::fill_chain1, [GradArg::GScalar, GradArg::Value(x), GradArg::Tokens(_)]) if *x == v => {
            (Kernel::fill_masked, GradArg::GScalar)
        }
        (Kernel::outer_chain1, [GradArg::GRef, GradArg::Value(x), GradArg::Tokens(_)]) if *x == v => {
            (Kernel::outer_masked, GradArg::GRef)
        }
        _ => return None,
    };
    Some(GradCall {
        kernel: Some(kernel),
        args: vec![head, GradArg::Mask(v)],
        borrowing: None,
        ..call.clone()
    })
}

/// The context field holding the aux residual the forward of `v` returned (`v5_stats`).
fn aux_residual(names: &Names, v: ValueId, field: &str) -> Ident {
    format_ident!("{}_{}", names.text(v), field, span = proc_macro2::Span::mixed_site())
}

/// The type of an aux residual, in the runtime's kernels.
fn aux_type(names: &Names, aux: &Aux) -> TokenStream {
    let (module, ty, generic) = aux.ty;
    let (k, m, t) = (kernels(), format_ident!("{}", module), format_ident!("{}", ty));
    let float = &names.float;
    if generic {
        quote!(#k::#m::#t<#float>)
    } else {
        quote!(#k::#m::#t)
    }
}

/// The backward local holding a shared step's result (`v5_sums`).
fn shared_step(names: &Names, step: &SharedStep) -> Ident {
    format_ident!(
        "{}_{}",
        names.text(step.stmt),
        step.name,
        span = proc_macro2::Span::mixed_site()
    )
}

/// The context field holding `v` rounded to 16 bits.
fn packed_residual(names: &Names, v: ValueId) -> Ident {
    format_ident!("{}_packed", names.text(v), span = proc_macro2::Span::mixed_site())
}

/// The context field holding the column sums of `v`.
fn column_sums(names: &Names, v: ValueId) -> Ident {
    format_ident!("{}_colsum", names.text(v), span = proc_macro2::Span::mixed_site())
}

/// Rewrites the rules that read a matrix only as its column sums (the fill rule of `a · b`
/// for `b`) to read the sums forward keeps, where nothing else in backward reads the matrix
/// but relu's rule (through its sign, which a mask may keep).
fn keep_column_sums(function: &Function, steps: &mut [Step], outputs: &[ValueId]) {
    let structural = structural_reads(function, steps, true);
    let summable = |call: &GradCall| match (call.kernel, call.args.first()) {
        (Some(Kernel::filled_matmul_grad_rhs), Some(GradArg::Factors(factors))) => match factors[..] {
            [a] => Some(a),
            _ => None,
        },
        _ => None,
    };
    let candidates: BTreeSet<ValueId> = steps.iter().flat_map(|s| &s.calls).filter_map(summable).collect();
    for a in candidates {
        if !droppable(function, a) || outputs.contains(&a) || structural.contains(&a) {
            continue;
        }
        let other_reads = steps.iter().flat_map(|s| &s.calls).any(|call| {
            if summable(call) == Some(a) {
                return false;
            }
            let sign_rule = matches!(call.kernel, Some(Kernel::UnaryGrad(f)) if f.reads_output_sign());
            call.reads().any(|arg| match arg {
                GradArg::Value(v) => *v == a && !sign_rule,
                GradArg::Factors(factors) => factors.contains(&a),
                GradArg::MapDerivative(map, _) => {
                    matches!(&function.stmt(*map).op, Op::Map { captures, .. } if captures.contains(&a))
                }
                _ => false,
            })
        });
        if other_reads {
            continue;
        }
        for call in steps.iter_mut().flat_map(|s| s.calls.iter_mut()) {
            if summable(call) == Some(a) {
                call.kernel = Some(Kernel::summed_matmul_grad_rhs);
                call.args[0] = GradArg::ColumnSums(a);
            }
        }
    }
}

/// The context field holding the sign mask of `v`.
fn sign_mask(names: &Names, v: ValueId) -> Ident {
    format_ident!("{}_sign", names.text(v), span = proc_macro2::Span::mixed_site())
}

/// The values that every backward kernel reading them reads only through their sign (the
/// output of relu, whose row saves `OutputSign`), among the steps' calls.
fn sign_only_reads(function: &Function, steps: &[Step]) -> BTreeSet<ValueId> {
    let (mut sign, mut other) = (BTreeSet::new(), BTreeSet::new());
    for call in steps.iter().flat_map(|s| &s.calls) {
        // relu's alone: the masked kernels are relu's rule, and a fused one-step chain reading
        // a value of this set is recognised as relu's by the set being relu's (`masked_call`).
        let sign_rule = matches!(
            call.kernel,
            Some(Kernel::UnaryGrad(UnaryFn::Relu) | Kernel::UnaryGradScalar(UnaryFn::Relu))
        );
        for arg in call.reads() {
            match arg {
                GradArg::Value(v) if sign_rule => {
                    sign.insert(*v);
                }
                GradArg::Value(v) => {
                    other.insert(*v);
                }
                GradArg::Factors(factors) => other.extend(factors.iter().copied()),
                GradArg::MapDerivative(map, _) => {
                    if let Op::Map { captures, .. } = &function.stmt(*map).op {
                        other.extend(captures.iter().copied());
                    }
                }
                _ => {}
            }
        }
    }
    sign.difference(&other).copied().collect()
}

/// The values backward reads other than through kernel arguments: slices of indexed
/// elements, what loops and calls read, a custom rule's output.
fn structural_reads(function: &Function, steps: &[Step], edges: bool) -> BTreeSet<ValueId> {
    let mut reads = BTreeSet::new();
    for step in steps {
        match &function.stmt(step.stmt).op {
            Op::Index(slice, _) => {
                reads.insert(*slice);
            }
            Op::Loop(l) => {
                reads.extend(l.captured.iter().map(|&(_, v)| v));
                reads.extend(l.flag);
                // With `edges`, its edge iterations' states (`loops::BodyCode::edge_reads`),
                // a superset: every array initial value and output.
                if edges {
                    reads.extend(l.carried.iter().filter_map(|c| match c.init {
                        Init::Value(v) => Some(v),
                        _ => None,
                    }));
                    reads.extend((0..l.carried.len()).filter_map(|k| function.loop_output(step.stmt, k)));
                }
            }
            Op::Call(c) | Op::Custom { call: c, .. } => {
                reads.extend(calls::reads(c).0);
                reads.insert(step.stmt);
            }
            _ => {}
        }
    }
    reads
}

/// The first step whose calls read `v` as a value (or among a product's factors).
fn first_value_read(steps: &[Step], v: ValueId) -> Option<usize> {
    steps.iter().position(|s| {
        s.calls.iter().any(|c| {
            c.reads().any(|a| match a {
                GradArg::Value(x) => *x == v,
                GradArg::Factors(factors) => factors.contains(&v),
                _ => false,
            })
        })
    })
}

/// Section 3e of [`generate`]: the values backward computes again instead of keeping, each
/// with the step that computes it and the last step reading it, in statement order. Their
/// operands' reads are added to `value_reads` (kept values read up to the recomputation;
/// parameters, which the context then borrows) and `token_reads` (constants).
#[allow(clippy::too_many_arguments)]
fn recompute_plan(
    function: &Function,
    names: &Names,
    boundary: &Boundary,
    steps: &[Step],
    outputs: &[ValueId],
    structural: &BTreeSet<ValueId>,
    value_reads: &mut BTreeMap<ValueId, usize>,
    token_reads: &mut Vec<TokenStream>,
) -> BTreeMap<ValueId, (usize, usize)> {
    let mut recomputed = BTreeMap::new();
    let heavy = function
        .stmts
        .iter()
        .any(|s| matches!(s.op, Op::Dot(..) | Op::Conv2d { .. }));
    // A loop body's parameters are its carried and captured values, which its context or
    // the outer code hold: not recomputed from there.
    let top = matches!(boundary, Boundary::Top | Boundary::Call);
    if names.analyses.save != Save::Auto || !names.analyses.liveness || !heavy || !top {
        return recomputed;
    }
    // An operand backward has without keeping anything more for it.
    let available =
        |u: ValueId, recomputed: &BTreeMap<ValueId, (usize, usize)>, kept: &BTreeMap<ValueId, usize>| match &function
            .stmt(u)
            .op
        {
            Op::Param { .. } | Op::Const(_) => true,
            Op::Index(slice, _) => matches!(function.stmt(*slice).op, Op::Param { .. }),
            _ => kept.contains_key(&u) || recomputed.contains_key(&u),
        };
    let candidates: Vec<ValueId> = value_reads
        .keys()
        .copied()
        .filter(|&v| {
            droppable(function, v)
                && !outputs.contains(&v)
                && !structural.contains(&v)
                && !names.is_shared(v)
                && matches!(function.stmt(v).op, Op::Binary(..) | Op::Neg(_) | Op::Powi(..))
        })
        .collect();
    // In statement order: an operand is decided before the values made from it.
    for v in candidates {
        let operands = function.stmt(v).op.operands();
        if !operands.iter().all(|&u| available(u, &recomputed, value_reads)) {
            continue;
        }
        let last = value_reads.remove(&v).unwrap_or(0);
        let first = first_value_read(steps, v).unwrap_or(last);
        recomputed.insert(v, (first, last));
    }
    // A value recomputed for a later recomputation is computed before it and lives until then.
    let order: Vec<ValueId> = recomputed.keys().rev().copied().collect();
    for v in order {
        let (at, _) = recomputed[&v];
        for u in function.stmt(v).op.operands() {
            if let Some((first, last)) = recomputed.get_mut(&u) {
                *first = (*first).min(at);
                *last = (*last).max(at);
            }
        }
    }
    // Kept operands and parameters are read where the recomputation runs.
    for (&v, &(at, _)) in &recomputed {
        let op = &function.stmt(v).op;
        if let Op::Powi(_, t) | Op::Powf(_, t) = op {
            token_reads.push(t.clone());
        }
        for u in op.operands() {
            match &function.stmt(u).op {
                Op::Const(t) => token_reads.push(t.clone()),
                Op::Index(slice, at_index) => {
                    let last = value_reads.entry(*slice).or_insert(at);
                    *last = (*last).max(at);
                    token_reads.push(at_index.clone());
                }
                _ if recomputed.contains_key(&u) => {}
                _ => {
                    let last = value_reads.entry(u).or_insert(at);
                    *last = (*last).max(at);
                }
            }
        }
    }
    recomputed
}

/// The slice parameters whose gradient `Vec` the backward declares: the requested ones, and
/// any other that receives adjoints (when dead-gradient elimination is off).
fn slice_gradients(function: &Function, grads: &[usize], is_active: &dyn Fn(ValueId) -> bool) -> Vec<usize> {
    (0..function.params.len())
        .filter(|index| match function.params[*index].role {
            ParamRole::Value {
                id,
                kind: Kind::Slice(_),
                ..
            } => grads.contains(index) || is_active(id),
            _ => false,
        })
        .collect()
}

/// Whether `v` is an owned local of the generated code (not a parameter, not a constant,
/// not a float, not a borrowed slice element).
fn droppable(function: &Function, v: ValueId) -> bool {
    function.param_of(v).is_none()
        && !function.is_const(v)
        && function.kind(v).is_array()
        && !matches!(function.stmt(v).op, Op::Index(..))
}

/// An argument as the receiver of a method call: parenthesized unless it is a name.
fn receiver(arg: TokenStream) -> TokenStream {
    let mut tokens = arg.clone().into_iter();
    match (tokens.next(), tokens.next()) {
        (Some(proc_macro2::TokenTree::Ident(_)), None) => arg,
        _ => quote!((#arg)),
    }
}

/// Whether `tokens` contain the identifier `ident` anywhere.
pub fn mentions_ident(tokens: &TokenStream, ident: &Ident) -> bool {
    tokens.clone().into_iter().any(|tt| match tt {
        proc_macro2::TokenTree::Ident(i) => i == *ident,
        proc_macro2::TokenTree::Group(g) => mentions_ident(&g.stream(), ident),
        _ => false,
    })
}

/// The kernel call computing `stmt` in static code, and its label for the plan; for a row of
/// the op table with an aux residual, its `keeping` twin when `keeping` (returning the value
/// and the aux).
fn forward_call(function: &Function, names: &Names, stmt: &Stmt, keeping: bool) -> (TokenStream, String) {
    let k = kernels();
    let arg = |v: ValueId| names.arg(v);
    let text = |v: ValueId| match &function.stmt(v).op {
        Op::Const(t) => t.to_string(),
        _ => names.text(v),
    };
    let kind = |v: ValueId| function.kind(v);
    let call = |module: &str, func: &str, args: Vec<TokenStream>, labels: Vec<String>| {
        let module = format_ident!("{}", module);
        let func_ident = format_ident!("{}", func);
        (
            quote!(#k::#module::#func_ident(#(#args),*)),
            format!("{func}({})", labels.join(", ")),
        )
    };
    // An op of the table runs its row's forward kernel.
    if let Some((op, inputs, consts)) = rules::table_op(function, stmt) {
        let forward = op.forward(&inputs, stmt.id, &consts);
        let (module, func) = match forward.keeping {
            Some(twin) if keeping => twin,
            _ => forward.kernel,
        };
        let float = &names.float;
        let (args, labels) = forward
            .args
            .into_iter()
            .map(|a| match a {
                ForwardArg::Value(v) => (arg(v), text(v)),
                ForwardArg::Optional(Some(v)) => {
                    let x = arg(v);
                    (quote!(::core::option::Option::Some(#x)), text(v))
                }
                ForwardArg::Optional(None) => (
                    quote!(::core::option::Option::None::<&::autodiff::ndarray::Array1<#float>>),
                    "None".to_string(),
                ),
                ForwardArg::Tokens(t) => {
                    let label = t.to_string();
                    (quote!((#t)), label)
                }
            })
            .unzip();
        return call(module, func, args, labels);
    }
    match &stmt.op {
        Op::Compare(cmp, a, b) => {
            let (x, y, symbol) = (arg(*a), arg(*b), cmp.symbol());
            (quote!((#x) #symbol (#y)), format!("{} {symbol} {}", text(*a), text(*b)))
        }
        Op::Not(a) => {
            let x = arg(*a);
            (quote!(!#x), format!("!{}", text(*a)))
        }
        Op::And(a, b) => {
            let (x, y) = (arg(*a), arg(*b));
            (quote!(#x && #y), format!("{} && {}", text(*a), text(*b)))
        }
        Op::Or(a, b) => {
            let (x, y) = (arg(*a), arg(*b));
            (quote!(#x || #y), format!("{} || {}", text(*a), text(*b)))
        }
        Op::Param { .. }
        | Op::Const(_)
        | Op::Index(..)
        | Op::Loop(_)
        | Op::LoopOut { .. }
        | Op::Call(_)
        | Op::Custom { .. } => {
            unreachable!("parameters, constants, slice elements and loops have no single forward call")
        }
        // Typed here, so the float type is known even where the user's code left it to inference.
        Op::ConstArray(tokens) => {
            let ty = names.value_type(stmt.kind);
            (quote!({ let __array: #ty = #tokens; __array }), tokens.to_string())
        }
        Op::Binary(op, a, b) => {
            let (a, b) = (*a, *b);
            let name = op.name();
            match (kind(a).is_array(), kind(b).is_array()) {
                // Two arrays: the table's row (above).
                (true, _) => call(
                    "binary",
                    &format!("{name}_scalar"),
                    vec![arg(a), arg(b)],
                    vec![text(a), text(b)],
                ),
                (false, true) => match op {
                    BinOp::Add | BinOp::Mul => call(
                        "binary",
                        &format!("{name}_scalar"),
                        vec![arg(b), arg(a)],
                        vec![text(b), text(a)],
                    ),
                    BinOp::Sub | BinOp::Div => call(
                        "binary",
                        &format!("scalar_{name}"),
                        vec![arg(a), arg(b)],
                        vec![text(a), text(b)],
                    ),
                },
                (false, false) => {
                    let (x, y) = (arg(a), arg(b));
                    let (tokens, symbol) = match op {
                        BinOp::Add => (quote!(#x + #y), "+"),
                        BinOp::Sub => (quote!(#x - #y), "-"),
                        BinOp::Mul => (quote!(#x * #y), "*"),
                        BinOp::Div => (quote!(#x / #y), "/"),
                    };
                    (tokens, format!("{} {symbol} {}", text(a), text(b)))
                }
            }
        }
        // On an array: the table's row (above).
        Op::Neg(a) => {
            let x = arg(*a);
            (quote!(-#x), format!("-{}", text(*a)))
        }
        Op::Unary(f, a) => {
            let name = if kind(*a).is_array() {
                f.name()
            } else {
                f.scalar_kernel()
            };
            call("unary", name, vec![arg(*a)], vec![text(*a)])
        }
        Op::Pairwise(f, a, b) => call("pairwise", f.name(), vec![arg(*a), arg(*b)], vec![text(*a), text(*b)]),
        // On an array: the table's row (above).
        Op::Powi(a, n) => {
            let x = arg(*a);
            (quote!((#x).powi(#n)), format!("{}.powi({n})", text(*a)))
        }
        Op::Powf(a, p) => {
            let x = arg(*a);
            (quote!((#x).powf(#p)), format!("{}.powf({p})", text(*a)))
        }
        Op::Map {
            input,
            arg: closure_arg,
            body,
            captures,
        } => {
            let x = arg(*input);
            let captures: Vec<TokenStream> = captures.iter().map(|&c| arg(c)).collect();
            let closure = Closure {
                arg: closure_arg,
                body,
                captures: &captures,
            }
            .forward_closure();
            (
                quote!((#x).mapv(#closure)),
                format!("mapv({}, {})", text(*input), closure),
            )
        }
        Op::Dot(..)
        | Op::Transpose(_)
        | Op::Sum(_)
        | Op::Mean(_)
        | Op::SumAxis(..)
        | Op::MeanAxis(..)
        | Op::Softmax(..)
        | Op::LogSoftmax(..)
        | Op::Mse(..)
        | Op::CrossEntropy(..)
        | Op::Conv2d { .. }
        | Op::BatchNorm { .. }
        | Op::MaxPool2d { .. } => unreachable!("ops of the table run their row's forward (above)"),
    }
}

/// The derivative closure of the `mapv` statement `map` with respect to `wrt`, reading the
/// captured floats under their static-code names.
fn map_derivative(names: &Names, map: ValueId, wrt: Wrt) -> TokenStream {
    let Op::Map {
        arg, body, captures, ..
    } = &names.function.stmt(map).op
    else {
        unreachable!("a map derivative names a `mapv` statement")
    };
    let captures: Vec<TokenStream> = captures.iter().map(|&c| names.arg(c)).collect();
    Closure {
        arg,
        body,
        captures: &captures,
    }
    .derivative_closure(wrt)
}

/// The expression of one backward call, and its label for the plan.
fn grad_call(names: &Names, call: &GradCall, g: &Ident, g_text: &str, moves: bool) -> (TokenStream, String) {
    let (expr, label) = match call.kernel {
        Some(kernel) => kernel_call(names, kernel, &call.args, g, g_text, moves),
        None => {
            let (mut args, mut labels) = call_args(names, &call.args, g, g_text, moves);
            (args.remove(0), labels.remove(0))
        }
    };
    if call.materialize {
        materialized(names, call.yields, call.target, expr, &label)
    } else {
        (expr, label)
    }
}

/// `kernel(args)` as code, and its label for the plan (`g` is moved into it if `moves`).
fn kernel_call(
    names: &Names,
    kernel: Kernel,
    args: &[GradArg],
    g: &Ident,
    g_text: &str,
    moves: bool,
) -> (TokenStream, String) {
    let (args, labels) = call_args(names, args, g, g_text, moves);
    let (k, (module, func)) = (kernels(), kernel.path());
    let (m, f) = (format_ident!("{}", module), format_ident!("{}", func));
    (quote!(#k::#m::#f(#(#args),*)), format!("{func}({})", labels.join(", ")))
}

/// The arguments of a backward call as code, and their labels for the plan.
fn call_args(
    names: &Names,
    call_args: &[GradArg],
    g: &Ident,
    g_text: &str,
    moves: bool,
) -> (Vec<TokenStream>, Vec<String>) {
    let function = names.function;
    let mut args = Vec::new();
    let mut labels = Vec::new();
    for arg in call_args {
        let (tokens, label) = match arg {
            GradArg::G if moves => (quote!(#g), g_text.to_string()),
            GradArg::G => (quote!(#g.clone()), g_text.to_string()),
            GradArg::GRef => (quote!(&#g), g_text.to_string()),
            GradArg::GScalar => (quote!(#g), g_text.to_string()),
            GradArg::Factors(factors) => {
                let views = factors.iter().map(|&v| {
                    let arg = receiver(names.arg(v));
                    quote!(#arg.view())
                });
                let labels: Vec<String> = factors.iter().map(|&v| names.text(v)).collect();
                (quote!(&[#(#views),*]), format!("[{}]", labels.join("·")))
            }
            GradArg::Mask(v) => {
                let mask = sign_mask(names, *v);
                (quote!(&#mask), format!("{}_sign", names.text(*v)))
            }
            GradArg::ColumnSums(v) => {
                let sums = column_sums(names, *v);
                (quote!(&#sums), format!("{}_colsum", names.text(*v)))
            }
            GradArg::Aux(v) => {
                let field = rules::aux_of(function, *v).map_or("aux", |aux| aux.field);
                let kept = aux_residual(names, *v, field);
                (quote!(&#kept), kept.to_string())
            }
            GradArg::Step(step) => {
                let local = shared_step(names, step);
                (quote!(&#local), local.to_string())
            }
            GradArg::Value(v) => (
                names.arg(*v),
                match &function.stmt(*v).op {
                    Op::Const(t) => t.to_string(),
                    _ => names.text(*v),
                },
            ),
            GradArg::Dim(v) => {
                let dim = names.dim(*v);
                (quote!(&#dim), format!("{}.dim", names.text(*v)))
            }
            GradArg::DimAxis(v, axis) => {
                let dim = names.dim(*v);
                (quote!(#dim[#axis]), format!("{}.dim[{axis}]", names.text(*v)))
            }
            GradArg::MapDerivative(map, wrt) => (map_derivative(names, *map, *wrt), "|..| ..".to_string()),
            GradArg::Tokens(t) => {
                let text = t.to_string();
                // Closures (derivatives of `mapv`, fused rules) are summarised in the plan.
                let label = if text.starts_with('|') {
                    "|..| ..".to_string()
                } else {
                    text
                };
                (quote!((#t)), label)
            }
        };
        args.push(tokens);
        labels.push(label);
    }
    (args, labels)
}

/// `value`'s adjoint `expr`, held in `form`, written out as the array it stands for.
fn materialized(names: &Names, form: Form, value: ValueId, expr: TokenStream, label: &str) -> (TokenStream, String) {
    let (kernel, args, label) = match form {
        Form::Dense => return (expr, label.to_string()),
        Form::Fill => {
            let dim = names.dim(value);
            let label = format!("sum_grad({label}, {}.dim)", names.text(value));
            (Kernel::sum_grad, quote!(#expr, &#dim), label)
        }
        Form::Outer => (Kernel::outer_dense, quote!(&#expr), format!("outer_dense({label})")),
    };
    let (k, (module, func)) = (kernels(), kernel.path());
    let (m, f) = (format_ident!("{}", module), format_ident!("{}", func));
    (quote!(#k::#m::#f(#args)), label)
}
