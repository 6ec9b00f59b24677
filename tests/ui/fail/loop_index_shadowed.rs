use autodiff::prelude::*;

#[differentiate]
fn loss(x: &Array1<f64>, xs: &[Array1<f64>]) -> f64 {
    let mut h = x.to_owned();
    for i in 0..2 {
        for i in 0..xs.len() {
            h = &h * &xs[i];
        }
    }
    h.sum()
}

fn main() {}
