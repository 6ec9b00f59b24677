use autodiff::prelude::*;

#[differentiate]
fn f(x: &Array1<f64>) -> Vec<f64> {
    (x * 2.0).to_vec()
}

fn main() {}
