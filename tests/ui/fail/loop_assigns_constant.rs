use autodiff::prelude::*;

#[differentiate]
fn loss(x: &Array1<f64>) -> f64 {
    let mut s = x.sum();
    for _ in 0..3 {
        s = 2.0;
    }
    s
}

fn main() {}
