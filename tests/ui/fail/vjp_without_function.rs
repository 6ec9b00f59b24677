use autodiff::prelude::*;

#[differentiate(vjp)]
fn f(x: &Array1<f64>) -> f64 {
    x.sum()
}

fn main() {}
