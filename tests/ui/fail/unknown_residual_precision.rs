use autodiff::prelude::*;

// A precision the runtime cannot pack residuals in.
#[differentiate(residuals = "f8")]
fn loss(x: &Array1<f64>) -> f64 {
    x.exp().sum()
}

fn main() {}
