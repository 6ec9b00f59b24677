use autodiff::prelude::*;

#[differentiate]
fn huber(x: &Array1<f64>) -> f64 {
    x.mapv(|v| if v.abs() < 1.0 { 0.5 * v * v } else { v.abs() - 0.5 }).sum()
}

fn main() {}
