//! Forward liveness: the statement at which each value is read for the last time in the
//! forward pass. Computed once per function and read by both emitters: the static forward
//! drops an intermediate there (unless backward keeps it), and the tape twin drops its
//! `Var` there, as Python drops a temporary, so the tape frees what no node saves.

use crate::ir::{Function, Stmt, ValueId};

/// Where each value is last read in forward.
pub struct ForwardLiveness {
    /// Indexed by `ValueId.0`: the id of the last statement reading it, if any does.
    last_read_by: Vec<Option<usize>>,
}

impl ForwardLiveness {
    /// Walks the statements once.
    pub fn of(function: &Function) -> Self {
        let mut last_read_by = vec![None; function.stmts.len()];
        for stmt in &function.stmts {
            for operand in stmt.op.operands() {
                last_read_by[operand.0] = Some(stmt.id.0);
            }
        }
        ForwardLiveness { last_read_by }
    }

    /// The operands `stmt` reads for the last time, each once (`&h * &h` reads `h` once).
    pub fn dying_at(&self, stmt: &Stmt) -> Vec<ValueId> {
        let mut dying: Vec<ValueId> = stmt
            .op
            .operands()
            .into_iter()
            .filter(|a| self.last_read_by[a.0] == Some(stmt.id.0))
            .collect();
        dying.sort();
        dying.dedup();
        dying
    }
}
