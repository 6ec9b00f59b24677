use autodiff::prelude::*;

#[differentiate]
fn loss(x: ArrayView2<f64>, w: &Array1<f64>) -> f64 {
    x.dot(w).sum()
}

fn main() {}
