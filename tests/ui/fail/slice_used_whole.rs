use autodiff::prelude::*;

#[differentiate]
fn loss(ws: &[Array1<f64>], x: &Array1<f64>) -> f64 {
    (ws * x).sum()
}

fn main() {}
