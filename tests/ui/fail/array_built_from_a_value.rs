use autodiff::prelude::*;

#[differentiate]
fn f(x: &Array1<f64>, s: f64) -> f64 {
    let filled = Array1::from_elem(x.len(), s);
    (x * &filled).sum()
}

fn main() {}
