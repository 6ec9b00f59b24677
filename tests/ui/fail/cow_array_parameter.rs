use autodiff::ndarray::CowArray;
use autodiff::prelude::*;

#[differentiate]
fn loss(x: CowArray<f64, Ix2>, w: &Array1<f64>) -> f64 {
    x.dot(w).sum()
}

fn main() {}
