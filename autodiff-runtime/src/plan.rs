//! What `#[differentiate]` decided for one function, kept as data so that tests
//! and readers can check the static analyses without reading the generated code.

/// The plan of one generated gradient function, emitted as a `const` beside it
/// (`LOSS_GRAD_PLAN` for `fn loss`).
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// The differentiated function's name.
    pub function: &'static str,
    /// The parameters gradients are returned for, in order.
    pub wrt: &'static [&'static str],
    /// Forward statements, one per op, e.g. `"v3 = matmul(x, w)"`.
    pub forward: &'static [&'static str],
    /// Backward kernel calls emitted, in execution order, e.g. `"dw = matmul_grad_rhs(x, dv3)"`.
    pub backward: &'static [&'static str],
    /// Values whose adjoint is never computed (inactive: they depend on no
    /// differentiated input, or they do not reach the output).
    pub eliminated: &'static [&'static str],
    /// Intermediates (not parameters) kept from the forward pass for the backward pass.
    pub saved: &'static [&'static str],
    /// The memory plan's policy (`#[differentiate(save = "..")]`): `"auto"`, `"all"` or `"min"`.
    pub save: &'static str,
    /// The residual manifest: one row per thing the context holds, with its bytes as a
    /// formula of the input shapes, e.g. `"h_3 (relu sign mask): x[0]×w1[1] bits, in 8-byte words"`
    /// (`x[k]`: the length of `x`'s axis `k`). `<name>_residual_bytes(..)` evaluates it.
    pub residuals: &'static [&'static str],
}

impl Plan {
    /// How many backward statements call the kernel `kernel` (matched on the
    /// function name: `"matmul_grad_lhs"`, or a prefix such as `"matmul_grad"`).
    pub fn backward_calls(&self, kernel: &str) -> usize {
        self.backward
            .iter()
            .filter(|line| {
                line.split_once('=')
                    .map(|(_, call)| call.trim_start().starts_with(kernel))
                    .unwrap_or(false)
            })
            .count()
    }
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "plan for `{}`, gradients w.r.t. ({})",
            self.function,
            self.wrt.join(", ")
        )?;
        writeln!(f, "forward ({} ops):", self.forward.len())?;
        for line in self.forward {
            writeln!(f, "  {line}")?;
        }
        writeln!(f, "backward ({} kernel calls):", self.backward.len())?;
        for line in self.backward {
            writeln!(f, "  {line}")?;
        }
        writeln!(f, "adjoints eliminated: [{}]", self.eliminated.join(", "))?;
        writeln!(f, "intermediates saved: [{}]", self.saved.join(", "))?;
        write!(f, "memory plan (save = \"{}\"):", self.save)?;
        if self.residuals.is_empty() {
            write!(f, " nothing held")?;
        }
        for row in self.residuals {
            write!(f, "\n  {row}")?;
        }
        Ok(())
    }
}
