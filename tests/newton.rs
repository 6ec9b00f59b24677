//! Newton's method with `loss_hvp` and conjugate gradients, from `examples/newton.rs`:
//! it reaches `‖g‖ < 1e-8` in at most 10 steps, gradient descent reaches it too, and the
//! two answers agree to 1e-5.

#[path = "../examples/newton.rs"]
mod newton;

#[test]
fn newton_converges_in_a_handful_of_steps() {
    let c = newton::run(500, 10);
    c.assert_converged();
    assert!(
        c.gd_steps > 10 * c.newton.len(),
        "gradient descent took {} steps, Newton {}",
        c.gd_steps,
        c.newton.len()
    );
}
