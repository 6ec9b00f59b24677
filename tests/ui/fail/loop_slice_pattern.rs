use autodiff::prelude::*;

#[differentiate]
fn loss(x: &Array1<f64>, xs: &[Array1<f64>]) -> f64 {
    let mut h = x.to_owned();
    for (i, w) in xs {
        h = &h * w;
    }
    h.sum()
}

fn main() {}
