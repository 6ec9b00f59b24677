use autodiff::prelude::*;

#[differentiate]
struct Model {
    w: Array1<f64>,
}

fn main() {}
