use autodiff::prelude::*;

#[differentiate(vjp = f_rule)]
fn f(xs: &[Array1<f64>]) -> f64 {
    xs.len() as f64
}

fn f_rule(xs: &[Array1<f64>], _y: f64, _seed: f64) -> Vec<Array1<f64>> {
    xs.to_vec()
}

fn main() {}
