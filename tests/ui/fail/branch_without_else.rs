use autodiff::prelude::*;

#[differentiate]
fn loss(x: &Array1<f64>, c: bool) -> f64 {
    let h = if c { x.exp() };
    h.sum()
}

fn main() {}
