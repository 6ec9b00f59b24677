use autodiff::prelude::*;

#[differentiate]
fn f(x: &ArrayD<f64>, y: &ArrayD<f64>) -> f64 {
    x.sum() + y.sum() + x.dot(y)
}

fn main() {}
