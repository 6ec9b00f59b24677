use autodiff::prelude::*;

#[differentiate]
fn everything(x: &Array2<f64>, w: &Array2<f64>, v: &Array1<f64>, s: f64, k: usize) -> f64 {
    let a: Array2<f64> = x.dot(w);
    let a = &a + v;
    let b = a.clone() / (s + 1.0);
    let c = -b.t().to_owned();
    let d = c.reversed_axes().mapv(|t| t.exp() - 1.0);
    let e = d.sum_axis(Axis(1));
    let m = d.mean_axis(Axis(0)).unwrap();
    let f = softmax(&d, Axis(1));
    let g = log_softmax(&d, Axis(0));
    let h = e.sum() + m.mean().unwrap() + mean(&f) + g.sum() * (k as f64);
    let i = h.exp().ln() * s.sin().cos() + s.powi(2) - s.powf(1.5);
    return i + relu(&d).sum() + sigmoid(&d).sum() + tanh(&d).sum() + square(&d).sum();
}

fn main() {}
