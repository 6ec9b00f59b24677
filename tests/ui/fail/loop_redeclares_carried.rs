use autodiff::prelude::*;

#[differentiate]
fn loss(x: &Array1<f64>) -> f64 {
    let mut h = x.to_owned();
    for _ in 0..3 {
        let h = h.exp();
        h = h.tanh();
    }
    h.sum()
}

fn main() {}
