use autodiff::prelude::*;

#[differentiate]
fn f(x: &Array1<f64>) -> Array1<f64> {
    x * 2.0
}

fn main() {}
