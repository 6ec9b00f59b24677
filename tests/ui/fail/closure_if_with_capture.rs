use autodiff::prelude::*;

#[differentiate]
fn loss(x: &Array1<f64>, t: f64) -> f64 {
    x.mapv(|v| if v > 0.0 { v * t } else { v }).sum()
}

fn main() {}
