use autodiff::prelude::*;

#[differentiate]
fn loss(x: &Array1<f64>) -> f64 {
    let mut acc = 0.0;
    for _ in 0..3 {
        acc = x.exp();
    }
    acc.sum()
}

fn main() {}
