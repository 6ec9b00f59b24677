use autodiff::prelude::*;

#[differentiate]
fn loss(x: &Array1<f64>) -> f64 {
    let s = x.sum();
    match s > 0.0 {
        true => s,
        false => -s,
    }
}

fn main() {}
