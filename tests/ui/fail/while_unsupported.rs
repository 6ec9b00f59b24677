use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let y = x * 2.0;
    while y > 1.0 {}
    y
}

fn main() {}
