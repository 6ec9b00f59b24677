use autodiff::prelude::*;

#[differentiate(wrt(n))]
fn f(x: &Array1<f64>, n: usize) -> f64 {
    x.sum() * n as f64
}

fn main() {}
