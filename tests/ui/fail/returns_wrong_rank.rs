use autodiff::prelude::*;

#[differentiate]
fn layer(x: &Array2<f64>, w: &Array2<f64>) -> Array1<f64> {
    x.dot(w).tanh()
}

fn main() {}
