use autodiff::prelude::*;

#[differentiate]
fn f(x: &Array1<f64>, s: f64) -> f64 {
    x.mapv(|v| v * s).sum()
}

fn main() {}
