use autodiff::prelude::*;

#[differentiate]
fn loss(ws: &Vec<Array1<f64>>, x: &Array1<f64>) -> f64 {
    x.sum()
}

fn main() {}
