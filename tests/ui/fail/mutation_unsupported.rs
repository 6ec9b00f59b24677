use autodiff::prelude::*;

#[differentiate]
fn f(x: &Array1<f64>) -> f64 {
    let mut y = x * 2.0;
    y.sum()
}

fn main() {}
