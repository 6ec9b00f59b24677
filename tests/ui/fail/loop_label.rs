use autodiff::prelude::*;

#[differentiate]
fn loss(x: &Array1<f64>) -> f64 {
    let mut h = x.to_owned();
    'outer: for _ in 0..3 {
        h = h.tanh();
    }
    h.sum()
}

fn main() {}
