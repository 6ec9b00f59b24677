use autodiff::prelude::*;

// Rebinding a `let mut` local is supported; writing into an array is not.
#[differentiate]
fn f(x: &Array1<f64>) -> f64 {
    let mut y = x * 2.0;
    y[0] = 1.0;
    y.sum()
}

fn main() {}
