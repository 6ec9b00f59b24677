//! Array views as parameters (`ArrayView2<F>`, or a reference to one): the gradient is an
//! owned array of the view's shape. Each function is checked three ways in its own test,
//! at a view of a larger array (a slice with strides), not only of a whole one.

mod common;

use autodiff::ndarray::{s, ArrayView1};
use autodiff::prelude::*;
use common::{random, rng};

#[differentiate]
fn layer(x: ArrayView2<f64>, w: &Array2<f64>, b: ArrayView1<f64>) -> f64 {
    let h = (x.dot(w) + b).tanh();
    (&h * &h).sum() / x.nrows() as f64
}

#[test]
fn views_by_value() {
    let mut r = rng(30);
    let big = random(&mut r, (6, 8));
    let (w, b) = (random(&mut r, (3, 2)), random(&mut r, 2));
    // Every other row and three columns: a strided view.
    let x = big.slice(s![..;2, 1..4]);
    autodiff::check!(layer, x, &w, b.view());
    let (_, (dx, _, db)) = layer_grad(x, &w, b.view());
    assert_eq!((dx.dim(), db.dim()), ((3, 3), 2));
}

#[differentiate]
fn by_reference(x: &ArrayView2<f64>, s: f64) -> f64 {
    x.mapv(|v| (v * s).sin()).sum()
}

#[test]
fn a_view_by_reference() {
    let big = random(&mut rng(31), (4, 5));
    autodiff::check!(by_reference, &big.slice(s![1.., ..;2]), 0.6);
}

#[differentiate]
fn generic_view<F: Float>(x: ArrayView1<F>, y: &Array1<F>) -> F {
    (&x * y).mapv(|v| v.softplus()).sum()
}

#[test]
fn a_generic_view_in_both_float_types() {
    let mut r = rng(32);
    let (x, y) = (random(&mut r, 5), random(&mut r, 5));
    autodiff::check!(generic_view, x.view(), &y);
    let (x32, y32) = (x.mapv(|v| v as f32), y.mapv(|v| v as f32));
    autodiff::check!(generic_view, x32.view(), &y32);
}
