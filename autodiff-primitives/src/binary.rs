//! The elementwise functions of two arrays, with broadcasting (besides `+ - * /`, whose
//! array/float combinations and symbolic-seed rules are written out in the runtime's
//! `kernels::binary`).

/// Calls `$callback! { rows }` with one row per elementwise function of two arrays:
///
/// ```text
/// /// doc
/// Variant name (grad_lhs, grad_rhs) domain D,
///     forward |a, b| f(a, b), derivative_lhs |a, b| ∂f/∂a, derivative_rhs |a, b| ∂f/∂b;
/// ```
///
/// Users write `name(&a, &b)` (a prelude function); the operands broadcast as in ndarray's
/// arithmetic. Backward reads both operands; each adjoint is `g · ∂f`, summed back to its
/// operand's shape. Formulas are Rust over `F: Float`, compiled by the runtime.
#[macro_export]
macro_rules! for_each_binary {
    ($callback:path) => {
        $callback! {
            /// `max(a, b)` elementwise; at a tie the gradient goes to `a`.
            Maximum maximum (maximum_grad_lhs, maximum_grad_rhs) domain all,
                forward |a, b| if a >= b { a } else { b },
                derivative_lhs |a, b| if a >= b { F::one() } else { F::zero() },
                derivative_rhs |a, b| if a >= b { F::zero() } else { F::one() };
            /// `min(a, b)` elementwise; at a tie the gradient goes to `a`.
            Minimum minimum (minimum_grad_lhs, minimum_grad_rhs) domain all,
                forward |a, b| if a <= b { a } else { b },
                derivative_lhs |a, b| if a <= b { F::one() } else { F::zero() },
                derivative_rhs |a, b| if a <= b { F::zero() } else { F::one() };
        }
    };
}
