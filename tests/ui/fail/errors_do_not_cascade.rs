use autodiff::prelude::*;

// One real error; the calls of the generated items below must not add more (no "type
// annotations needed", no "unreachable" warning after `check!`).
#[differentiate]
fn f(x: &Array1<f64>, w: &Array1<f64>) -> f64 {
    let h = x * w;
    loop {}
}

#[differentiate]
fn g<F: Float>(x: &Array1<F>, s: F) -> F {
    x.mapv(|v| if v > s { v } else { s }).sum()
}

fn main() {
    let x = Array1::<f64>::zeros(3);
    let (_value, (dx, dw)) = f_grad(&x, &x);
    println!("{}", dx.len() + dw.len());
    let (_value, ctx) = f_forward(&x, &x);
    let _grads = f_backward(ctx, 1.0);
    let (_value, (dx, ds)) = g_grad(&x, 1.0);
    println!("{} {}", dx.sum(), ds.sqrt());
    let report = autodiff::check!(f, &x, &x);
    println!("{report} {}", F_GRAD_PLAN.function);
}
