//! The README's quick start: a generated gradient, its three-way check, its plan and
//! its source, and the same function on the dynamic tape.

use autodiff::prelude::*;

/// A one-layer model with a squared-activation loss.
#[differentiate]
fn loss(x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>) -> f64 {
    let h = (x.dot(w) + b).tanh();
    (&h * &h).sum() / 2.0
}

/// The same loss, differentiated only with respect to the parameters.
#[differentiate(wrt(w, b))]
fn loss_params(x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>) -> f64 {
    let h = (x.dot(w) + b).tanh();
    (&h * &h).sum() / 2.0
}

fn main() {
    let x = Array2::from_shape_fn((4, 3), |(i, j)| (i as f64 - j as f64) * 0.3);
    let w = Array2::from_shape_fn((3, 2), |(i, j)| 0.1 * (i + 2 * j) as f64 - 0.2);
    let b = array![0.05, -0.1];

    let (value, (dx, dw, db)) = loss_grad(&x, &w, &b);
    println!("loss = {value:.6}\ndx =\n{dx:.4}\ndw =\n{dw:.4}\ndb = {db:.4}\n");

    let (_, (dw2, db2)) = loss_params_grad(&x, &w, &b);
    assert_eq!((&dw, &db), (&dw2, &db2));

    let report = autodiff::check!(loss, &x, &w, &b);
    println!("{report}");

    println!("{LOSS_GRAD_PLAN}\n");
    println!("{LOSS_PARAMS_GRAD_PLAN}\n");
    println!("generated code:\n{}", loss_grad_source());

    // The same source, recorded on the dynamic tape.
    let tape = Tape::new();
    let (xv, wv, bv) = (tape.constant(&x), tape.param(&w), tape.param(&b));
    let out = loss_on_tape(&xv, &wv, &bv);
    let grads = tape.backward(&out);
    println!("tape: loss = {:.6}, dw =\n{:.4}", out.scalar(), grads[&wv]);
}
