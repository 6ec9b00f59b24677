use autodiff::prelude::*;

#[differentiate]
fn loss(x: &Array1<f64>) -> f64 {
    let s = x.sum();
    if s > 0.0 { s } else { -s }
}

fn main() {}
