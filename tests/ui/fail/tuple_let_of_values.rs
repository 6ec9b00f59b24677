use autodiff::prelude::*;

// A tuple `let` destructures constants (`let (n, m) = x.dim();`), not values.
#[differentiate]
fn f(x: &Array1<f64>, y: &Array1<f64>) -> f64 {
    let (a, b) = (x.exp(), y.exp());
    (a * b).sum()
}

fn main() {}
