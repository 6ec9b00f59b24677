use autodiff::prelude::*;

// One real error; the calls of the generated items below must not add more.
#[differentiate]
fn f(x: &Array1<f64>, w: &Array1<f64>) -> f64 {
    loop {}
}

fn main() {
    let x = Array1::<f64>::zeros(3);
    let (_value, (_dx, _dw)) = f_grad(&x, &x);
    let (_value, ctx) = f_forward(&x, &x);
    let _grads = f_backward(ctx, 1.0);
}
