use autodiff::prelude::*;

// Shape queries are constants on parameters only.
#[differentiate]
fn loss(x: &Array2<f64>) -> f64 {
    let h = x.tanh();
    h.sum() / h.len() as f64
}

fn main() {}
