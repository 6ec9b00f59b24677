//! Activity analysis: which values need an adjoint.
//!
//! A value is *varied* if it depends on a differentiated parameter, and *useful* if the
//! output depends on it. Only values that are both (*active*) get an adjoint; every
//! other adjoint is eliminated, and with it every backward product that would feed it
//! (in `x.dot(w)` with `wrt(w)`, no product for `x` is emitted).
//!
//! A loop body is analysed as a function of its own, to a fixed point over its carried
//! variables: a carried variable is varied if its value before the loop is, or if the
//! body makes it so (`h = h.dot(w)` with `w` varied); it is useful if the loop's result is,
//! or if the body reads it to compute something useful. A carried variable is varied and
//! useful as one value across all iterations, so its adjoint flows through every one.

use std::collections::BTreeMap;

use crate::ir::{Function, Init, Loop, Op, ParamRole, ValueId};

/// Per value (indexed by `ValueId.0`): whether it needs an adjoint; and the same for the
/// body of each loop statement.
pub struct Activity {
    pub active: Vec<bool>,
    pub loops: BTreeMap<ValueId, Activity>,
}

impl Activity {
    /// Whether `id` needs an adjoint.
    pub fn is_active(&self, id: ValueId) -> bool {
        self.active[id.0]
    }

    /// The activity of the body of the loop statement `id`.
    pub fn of_loop(&self, id: ValueId) -> &Activity {
        &self.loops[&id]
    }
}

/// Per-value flags of one function, with the flags of each loop body.
#[derive(Clone, Default)]
struct Flags {
    value: Vec<bool>,
    loops: BTreeMap<ValueId, Flags>,
}

/// Runs the forward (varied) and backward (useful) sweeps. Without `dead_gradients`
/// (an ablation), every float or array parameter counts as differentiated, so adjoints are
/// computed whether or not a requested gradient needs them.
pub fn analyse(function: &Function, dead_gradients: bool) -> Activity {
    let differentiated: Vec<bool> = function
        .params
        .iter()
        .map(|p| match p.role {
            ParamRole::Value { differentiated, .. } => differentiated || !dead_gradients,
            ParamRole::Constant => false,
        })
        .collect();
    let varied = varied(function, &differentiated);
    let useful = useful(function, &[function.output], &[]);
    combine(&varied, &useful)
}

fn combine(varied: &Flags, useful: &Flags) -> Activity {
    Activity {
        active: varied.value.iter().zip(&useful.value).map(|(v, u)| *v && *u).collect(),
        loops: varied
            .loops
            .iter()
            .map(|(id, body)| (*id, combine(body, &useful.loops[id])))
            .collect(),
    }
}

/// Which values depend on a varied parameter (`param_varied`, by parameter index).
fn varied(function: &Function, param_varied: &[bool]) -> Flags {
    let mut flags = Flags {
        value: vec![false; function.stmts.len()],
        loops: BTreeMap::new(),
    };
    for stmt in &function.stmts {
        flags.value[stmt.id.0] = match &stmt.op {
            Op::Param { index } => param_varied[*index],
            Op::Const(_) | Op::ConstArray(_) => false,
            Op::Compare(..) | Op::Not(_) | Op::And(..) | Op::Or(..) => false,
            Op::Loop(l) => {
                let (body, carried) = varied_loop(l, &flags.value);
                flags.loops.insert(stmt.id, body);
                carried.iter().any(|&v| v)
            }
            Op::LoopOut { of, k } => {
                let Op::Loop(l) = &function.stmt(*of).op else {
                    unreachable!("a loop output reads its loop")
                };
                flags.loops[of].value[l.body.param_id(*k).map_or(0, |id| id.0)]
            }
            op => op.operands().iter().any(|a| flags.value[a.0]),
        };
    }
    flags
}

/// The body's flags at the fixed point, and whether each carried variable is varied.
fn varied_loop(l: &Loop, outer: &[bool]) -> (Flags, Vec<bool>) {
    let mut params = vec![false; l.body.params.len()];
    for (k, carried) in l.carried.iter().enumerate() {
        params[k] = matches!(carried.init, Init::Value(v) if outer[v.0]);
    }
    for &(index, v) in &l.captured {
        params[index] = outer[v.0];
    }
    loop {
        let body = varied(&l.body, &params);
        let mut changed = false;
        for (k, output) in l.outputs.iter().enumerate() {
            if body.value[output.0] && !params[k] {
                params[k] = true;
                changed = true;
            }
        }
        if !changed {
            return (body, params[..l.carried.len()].to_vec());
        }
    }
}

/// Which values the `seeds` depend on; `forced` parameters (by index) count as useful.
fn useful(function: &Function, seeds: &[ValueId], forced: &[usize]) -> Flags {
    let mut flags = Flags {
        value: vec![false; function.stmts.len()],
        loops: BTreeMap::new(),
    };
    for seed in seeds {
        flags.value[seed.0] = true;
    }
    for &index in forced {
        if let Some(id) = function.param_id(index) {
            flags.value[id.0] = true;
        }
    }
    for stmt in function.stmts.iter().rev() {
        match &stmt.op {
            Op::Loop(l) => {
                // Which carried variables the rest of the function reads.
                let wanted: Vec<bool> = (0..l.carried.len())
                    .map(|k| function.loop_output(stmt.id, k).is_some_and(|out| flags.value[out.0]))
                    .collect();
                let body = useful_loop(l, wanted);
                for (k, carried) in l.carried.iter().enumerate() {
                    if let (Init::Value(v), Some(id)) = (&carried.init, l.body.param_id(k)) {
                        flags.value[v.0] |= body.value[id.0];
                    }
                }
                for &(index, v) in &l.captured {
                    if let Some(id) = l.body.param_id(index) {
                        flags.value[v.0] |= body.value[id.0];
                    }
                }
                flags.value[stmt.id.0] =
                    (0..l.carried.len()).any(|k| l.body.param_id(k).is_some_and(|id| body.value[id.0]));
                flags.loops.insert(stmt.id, body);
            }
            // A condition carries no gradient to what it compares.
            Op::Compare(..) | Op::Not(_) | Op::And(..) | Op::Or(..) => {}
            op if flags.value[stmt.id.0] => {
                for a in op.operands() {
                    flags.value[a.0] = true;
                }
            }
            _ => {}
        }
    }
    flags
}

/// The body's flags at the fixed point, given which carried variables are read after it.
/// A wanted carried variable is useful in the body both as its output and as its
/// parameter (the value from the iteration before), so its adjoint flows through.
fn useful_loop(l: &Loop, mut wanted: Vec<bool>) -> Flags {
    loop {
        let seeds: Vec<ValueId> = l
            .outputs
            .iter()
            .zip(&wanted)
            .filter(|(_, w)| **w)
            .map(|(o, _)| *o)
            .collect();
        let forced: Vec<usize> = (0..wanted.len()).filter(|&k| wanted[k]).collect();
        let body = useful(&l.body, &seeds, &forced);
        let mut changed = false;
        for (k, w) in wanted.iter_mut().enumerate() {
            let read = l.body.param_id(k).is_some_and(|id| body.value[id.0]);
            if read && !*w {
                *w = true;
                changed = true;
            }
        }
        if !changed {
            return body;
        }
    }
}
