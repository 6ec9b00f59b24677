use autodiff::prelude::*;

#[differentiate(opt(fusion = 0))]
fn f(x: &Array1<f64>, w: &Array1<f64>) -> f64 {
    (x * w).sum()
}

fn main() {}
