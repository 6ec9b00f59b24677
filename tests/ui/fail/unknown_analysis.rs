use autodiff::prelude::*;

#[differentiate(opt(fusoin = false))]
fn f(x: &Array1<f64>, w: &Array1<f64>) -> f64 {
    (x * w).sum()
}

fn main() {}
