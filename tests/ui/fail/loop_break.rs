use autodiff::prelude::*;

#[differentiate]
fn loss(x: &Array1<f64>) -> f64 {
    let mut h = x.to_owned();
    for _ in 0..3 {
        h = h.tanh();
        break;
    }
    h.sum()
}

fn main() {}
