use autodiff::prelude::*;

#[differentiate]
fn loss(x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>) -> f64 {
    let h = (x.dot(w) + b).tanh();
    (&h * &h).sum() / 2.0
}

#[differentiate(wrt(w, b))]
fn loss2(x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>) -> f64 {
    let h = (x.dot(w) + b).tanh();
    (&h * &h).sum() / 2.0
}

fn main() {
    let x = Array2::<f64>::ones((2, 3));
    let w = Array2::<f64>::ones((3, 4));
    let b = Array1::<f64>::ones(4);
    let (_value, (dx, dw, db)) = loss_grad(&x, &w, &b);
    let (_value, (dw2, db2)) = loss2_grad(&x, &w, &b);
    assert_eq!((dx.dim(), dw.dim(), db.dim()), ((2, 3), (3, 4), 4));
    assert_eq!((dw2, db2), (dw, db));
}
