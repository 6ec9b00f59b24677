use autodiff::prelude::*;

// A policy that does not exist, and `save` without a string.
#[differentiate(save = "none")]
fn loss(x: &Array1<f64>) -> f64 {
    x.exp().sum()
}

#[differentiate(save = min, name = loss_min)]
fn loss2(x: &Array1<f64>) -> f64 {
    x.exp().sum()
}

fn main() {}
