use autodiff::prelude::*;

#[differentiate]
fn loss(x: &Array1<f64>, c: bool) -> f64 {
    if c {
        let y = x.exp();
    }
    x.sum()
}

fn main() {}
