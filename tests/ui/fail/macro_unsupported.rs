use autodiff::prelude::*;

#[differentiate]
fn f(x: &Array1<f64>) -> f64 {
    let y = x * 2.0;
    println!("{}", y);
    y.sum()
}

fn main() {}
