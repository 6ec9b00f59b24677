use autodiff::prelude::*;

// Two expansions of one function need two prefixes.
#[differentiate]
#[differentiate(wrt(w))]
fn loss(x: &Array1<f64>, w: &Array1<f64>) -> f64 {
    (x * w).sum()
}

fn main() {}
