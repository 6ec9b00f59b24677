use autodiff::prelude::*;

// A closure may capture floats, but not a whole array: it sees one element at a time.
#[differentiate]
fn f(x: &Array1<f64>, y: &Array1<f64>) -> f64 {
    x.mapv(|v| v * y.sum()).sum()
}

fn main() {}
