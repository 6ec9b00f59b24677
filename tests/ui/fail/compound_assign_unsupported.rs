use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let y = x * 2.0;
    y += x;
    y
}

fn main() {}
