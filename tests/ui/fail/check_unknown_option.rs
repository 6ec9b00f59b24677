use autodiff::prelude::*;

#[differentiate]
fn loss(x: &Array1<f64>) -> f64 {
    x.exp().sum()
}

fn main() {
    let x = array![1.0, 2.0];
    autodiff::check!(loss, &x; rtol = 1e-4, eps = 1e-3);
}
