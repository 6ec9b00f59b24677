use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let g = |v: f64| v * x;
    x
}

fn main() {}
