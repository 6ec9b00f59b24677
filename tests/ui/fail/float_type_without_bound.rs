use autodiff::prelude::*;

#[differentiate]
fn loss<F>(x: &Array1<F>) -> F {
    x.sum()
}

fn main() {}
