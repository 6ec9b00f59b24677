use autodiff::prelude::*;

#[differentiate]
fn loss(x: &Array1<f64>) -> f64 {
    for _ in 0..3 {
        let y = x.exp();
    }
    x.sum()
}

fn main() {}
