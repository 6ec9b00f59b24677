use autodiff::prelude::*;

#[differentiate]
fn loss(x: &Array1<f64>) -> f64 {
    x.exp().sum()
}

fn main() {
    let x = array![1.0, 2.0];
    autodiff::check!(loss, &x; atol = "tight");
}
