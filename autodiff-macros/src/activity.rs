//! Activity analysis: which values need an adjoint.
//!
//! A value is *varied* if it depends on a differentiated parameter, and *useful* if the
//! output depends on it. Only values that are both (*active*) get an adjoint; every
//! other adjoint is eliminated, and with it every backward product that would feed it
//! (in `x.dot(w)` with `wrt(w)`, no product for `x` is emitted).

use crate::ir::{Function, Op, ParamRole};

/// Per value (indexed by `ValueId.0`): whether it needs an adjoint.
pub struct Activity {
    pub active: Vec<bool>,
}

impl Activity {
    /// Whether `id` needs an adjoint.
    pub fn is_active(&self, id: crate::ir::ValueId) -> bool {
        self.active[id.0]
    }
}

/// Runs the forward (varied) and backward (useful) sweeps.
pub fn analyse(function: &Function) -> Activity {
    let n = function.stmts.len();
    let mut varied = vec![false; n];
    for stmt in &function.stmts {
        varied[stmt.id.0] = match &stmt.op {
            Op::Param { index } => matches!(
                function.params[*index].role,
                ParamRole::Value {
                    differentiated: true,
                    ..
                }
            ),
            Op::Const(_) | Op::ConstArray(_) => false,
            op => op.operands().iter().any(|a| varied[a.0]),
        };
    }
    let mut useful = vec![false; n];
    useful[function.output.0] = true;
    for stmt in function.stmts.iter().rev() {
        if useful[stmt.id.0] {
            for a in stmt.op.operands() {
                useful[a.0] = true;
            }
        }
    }
    Activity {
        active: varied.iter().zip(&useful).map(|(v, u)| *v && *u).collect(),
    }
}
