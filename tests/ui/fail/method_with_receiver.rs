use autodiff::prelude::*;

struct Model {
    w: Array1<f64>,
}

impl Model {
    #[differentiate]
    fn loss(&self, x: &Array1<f64>) -> f64 {
        (x * &self.w).sum()
    }
}

fn main() {}
