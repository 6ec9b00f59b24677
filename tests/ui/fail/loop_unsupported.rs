use autodiff::prelude::*;

#[differentiate]
fn f(x: &Array1<f64>) -> f64 {
    let mut total = 0.0;
    for v in x.iter() {
        total += v;
    }
    total
}

fn main() {}
