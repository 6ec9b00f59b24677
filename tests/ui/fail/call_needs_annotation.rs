use autodiff::prelude::*;

#[differentiate]
fn layer(x: &Array2<f64>, w: &Array2<f64>) -> Array2<f64> {
    x.dot(w).tanh()
}

#[differentiate]
fn loss(x: &Array2<f64>, w: &Array2<f64>) -> f64 {
    let h = layer(x, w);
    h.sum()
}

fn main() {}
