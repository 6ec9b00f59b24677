use autodiff::prelude::*;

#[differentiate]
fn f(x: &Array1<f64>) -> f64 {
    x.cumsum().sum()
}

fn main() {}
