use autodiff::prelude::*;

fn my_activation(x: &Array1<f64>) -> Array1<f64> {
    x.clone()
}

#[differentiate]
fn f(x: &Array1<f64>) -> f64 {
    my_activation(x).sum()
}

fn main() {}
