//! Generated gradients of many functions of the subset, each checked three ways:
//! static code against the dynamic tape and against central finite differences (f64,
//! relative error <= 1e-6), through the public `check!` macro.

mod common;

use autodiff::prelude::*;
use common::{positive, random, rng};

// ---- each op alone -------------------------------------------------------------

#[differentiate]
fn add_arrays(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    (a + b).mapv(|v| v * v).sum()
}

#[differentiate]
fn sub_mul_div(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    let c = &(a - b) * a;
    (c / b).sum()
}

#[differentiate]
fn negation(a: &Array1<f64>) -> f64 {
    (-a).exp().sum()
}

#[differentiate]
fn unary_chain(x: &Array1<f64>) -> f64 {
    let y = x.exp().ln().sqrt();
    let z = y.sin() + y.cos() + y.tanh() + y.abs() + y.recip();
    (z.square() + z.sigmoid() + z.relu()).sum()
}

#[differentiate]
fn free_functions(x: &Array2<f64>) -> f64 {
    let y = relu(x) + sigmoid(x) + tanh(x) + square(x);
    mean(&y)
}

#[differentiate]
fn powers(x: &Array1<f64>) -> f64 {
    (x.powi(3) + x.powf(2.5)).sum()
}

#[differentiate]
fn matmul_all_ranks(a: &Array2<f64>, b: &Array2<f64>, u: &Array1<f64>, v: &Array1<f64>) -> f64 {
    let m = a.dot(b);
    let mv = m.dot(v);
    let vm = u.dot(&m);
    mv.dot(&mv) + vm.sum() + u.dot(u)
}

#[differentiate]
fn transposes(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    a.t().dot(b).reversed_axes().tanh().sum()
}

#[differentiate]
fn reductions(x: &Array3<f64>) -> f64 {
    let s = x.sum_axis(Axis(1));
    let m = s.mean_axis(Axis(0)).unwrap();
    (m.square()).sum() + x.mean().unwrap() * x.sum()
}

#[differentiate]
fn softmaxes(x: &Array2<f64>, r: &Array2<f64>) -> f64 {
    let p = softmax(x, Axis(1));
    let q = log_softmax(x, Axis(0));
    (&p * r).sum() + (&q * r).sum()
}

#[differentiate]
fn losses(pred: &Array2<f64>, target: &Array2<f64>, labels: &[usize]) -> f64 {
    mse(pred, target) + cross_entropy(pred, labels)
}

#[differentiate]
fn conv_bn_relu(x: &Array4<f64>, w: &Array4<f64>, gamma: &Array1<f64>, beta: &Array1<f64>) -> f64 {
    // No conv bias: batch norm removes any per-channel constant, so its gradient is exactly 0.
    let y = conv2d(x, w, None::<&Array1<f64>>, 1, 1);
    let z = batch_norm(&y, gamma, beta, 1e-5);
    // relu's kink at 0 is smoothed by the cube, so that finite differences stay exact to O(h²).
    relu(&z).powi(3).sum()
}

#[differentiate]
fn conv_pool(x: &Array4<f64>, w: &Array4<f64>, b: &Array1<f64>, stride: usize) -> f64 {
    let y = conv2d(x, w, Some(b), stride, 0);
    max_pool2d(&y, 2, 2).mapv(|v| v * v).sum()
}

// ---- broadcasting, scalars, reuse, shadowing ---------------------------------

#[differentiate]
fn broadcasting(m: &Array2<f64>, row: &Array1<f64>, col: &Array2<f64>, s: f64) -> f64 {
    let a = m + row; // (3,4) + (4,)
    let b = &a * col; // (3,4) * (3,1)
    let c = &b / (row + 2.0); // (3,4) / (4,)
    let d = s * &c - row * s; // scalar * array - array * scalar
    (d - s).sum() / (s * s)
}

#[differentiate]
fn scalar_forms(x: &Array1<f64>, s: f64, t: f64) -> f64 {
    let a = 2.0 * x + s;
    let b = s - &a;
    let c = t / (&b * &b + 1.0);
    let d = &c / t;
    let total = d.sum() * s.exp() + s.sin() * t.powi(2) - s / t;
    total + t.tanh() * s.sqrt().ln()
}

#[differentiate]
fn reuse_and_shadowing(x: &Array1<f64>, w: &Array1<f64>) -> f64 {
    let h = x * w;
    let h = &h * &h + &h; // h used three times
    let h = h.tanh();
    let g = &h * x; // x used again
    g.sum() + h.sum() * x.sum()
}

#[differentiate]
fn mapv_closures(x: &Array1<f64>) -> f64 {
    let y = x.mapv(|v| v * v * v - 2.0 * v + v.exp() / (1.0 + v * v));
    let z = y.mapv(|v| (v.sin() * v.cos()).powi(2) + v.max(0.1) + v.min(0.5) - (-v).tanh());
    let q = z.mapv(|_v| 3.0);
    (z + q).sum()
}

#[differentiate]
pub fn mlp(
    x: &Array2<f64>,
    w1: &Array2<f64>,
    b1: &Array1<f64>,
    w2: &Array2<f64>,
    b2: &Array1<f64>,
    labels: &[usize],
) -> f64 {
    let h = relu(&(x.dot(w1) + b1));
    let logits = h.dot(w2) + b2;
    cross_entropy(&logits, labels)
}

#[differentiate]
fn generic<F: Float>(x: &Array2<F>, w: &Array1<F>, s: F) -> F {
    let y = x.dot(w).tanh();
    let z = &y * s;
    z.sum() * s
}

#[differentiate]
fn dynamic_rank(x: &ArrayD<f64>, y: &ArrayD<f64>) -> f64 {
    (x * y).exp().sum()
}

#[differentiate]
fn owned_params(x: Array1<f64>, scale: f64, n: usize) -> f64 {
    let y = &x * scale;
    y.sum() / n as f64
}

#[differentiate]
fn returns_param(x: f64, y: f64) -> f64 {
    let _unused = y * 2.0;
    x
}

#[differentiate(wrt(w))]
fn unreached_wrt(x: &Array1<f64>, w: &Array1<f64>) -> f64 {
    let _ignored = w.exp();
    x.sum()
}

// ---- tests ---------------------------------------------------------------------

#[test]
fn each_op_alone() {
    let mut r = rng(1);
    let (a, b) = (random(&mut r, (3, 4)), positive(&mut r, (3, 4)));
    autodiff::check!(add_arrays, &a, &b);
    autodiff::check!(sub_mul_div, &a, &b);
    autodiff::check!(negation, &random(&mut r, 5));
    autodiff::check!(unary_chain, &positive(&mut r, 6));
    autodiff::check!(free_functions, &random(&mut r, (4, 3)));
    autodiff::check!(powers, &positive(&mut r, 5));
    let (m1, m2) = (random(&mut r, (3, 4)), random(&mut r, (4, 5)));
    autodiff::check!(matmul_all_ranks, &m1, &m2, &random(&mut r, 3), &random(&mut r, 5));
    autodiff::check!(transposes, &random(&mut r, (4, 3)), &random(&mut r, (4, 2)));
    autodiff::check!(reductions, &random(&mut r, (2, 3, 4)));
    autodiff::check!(softmaxes, &random(&mut r, (3, 5)), &random(&mut r, (3, 5)));
    autodiff::check!(
        losses,
        &random(&mut r, (4, 3)),
        &random(&mut r, (4, 3)),
        &[0usize, 2, 1, 2]
    );
}

#[test]
fn convolution_batch_norm_pooling() {
    let mut r = rng(2);
    let x = random(&mut r, (2, 2, 5, 5));
    let w = random(&mut r, (3, 2, 3, 3));
    let b = random(&mut r, 3);
    let gamma = positive(&mut r, 3);
    let beta = random(&mut r, 3);
    autodiff::check!(conv_bn_relu, &x, &w, &gamma, &beta);
    let x = random(&mut r, (1, 2, 9, 9));
    autodiff::check!(conv_pool, &x, &w, &b, 1);
    autodiff::check!(conv_pool, &x, &w, &b, 2);
}

#[test]
fn broadcasting_scalars_reuse_shadowing() {
    let mut r = rng(3);
    let m = random(&mut r, (3, 4));
    let row = positive(&mut r, 4);
    let col = random(&mut r, (3, 1));
    autodiff::check!(broadcasting, &m, &row, &col, 1.3);
    autodiff::check!(scalar_forms, &random(&mut r, 4), 0.7, 1.9);
    autodiff::check!(reuse_and_shadowing, &random(&mut r, 5), &random(&mut r, 5));
    autodiff::check!(mapv_closures, &random(&mut r, 7));
}

#[test]
fn mlp_generic_dynamic_owned() {
    let mut r = rng(4);
    let x = random(&mut r, (5, 4));
    let (w1, b1) = (random(&mut r, (4, 6)), random(&mut r, 6));
    let (w2, b2) = (random(&mut r, (6, 3)), random(&mut r, 3));
    autodiff::check!(mlp, &x, &w1, &b1, &w2, &b2, &[0, 1, 2, 1, 0]);
    autodiff::check!(generic, &random(&mut r, (3, 4)), &random(&mut r, 4), 0.8);
    autodiff::check!(
        dynamic_rank,
        &random(&mut r, (2, 3)).into_dyn(),
        &random(&mut r, (2, 3)).into_dyn()
    );
    autodiff::check!(owned_params, random(&mut r, 4), 1.5, 4);
}

#[test]
fn gradients_have_parameter_types_and_order() {
    let mut r = rng(5);
    let x = random(&mut r, (3, 4));
    let w = random(&mut r, 4);
    let (value, (dx, dw, ds)): (f64, (Array2<f64>, Array1<f64>, f64)) = generic_grad(&x, &w, 0.5);
    assert_eq!(value, generic(&x, &w, 0.5));
    assert_eq!(dx.shape(), x.shape());
    assert_eq!(dw.shape(), w.shape());
    assert!(ds.is_finite());
    // f32 instance of the same generic function.
    let x32 = x.mapv(|v| v as f32);
    let w32 = w.mapv(|v| v as f32);
    let (v32, _) = generic_grad(&x32, &w32, 0.5f32);
    assert!((f64::from(v32) - value).abs() < 1e-5);
}

#[test]
fn trivial_and_unreached_gradients() {
    let (value, (dx, dy)) = returns_param_grad(2.0, 3.0);
    assert_eq!((value, dx, dy), (2.0, 1.0, 0.0));
    let x = autodiff::ndarray::array![1.0, 2.0];
    let (_, (dw,)) = unreached_wrt_grad(&x, &x);
    assert_eq!(dw, Array1::<f64>::zeros(2));
    assert!(UNREACHED_WRT_GRAD_PLAN.backward.is_empty());
}

#[test]
fn halves_compose_to_the_gradient() {
    let mut r = rng(6);
    let x = random(&mut r, (5, 4));
    let (w1, b1) = (random(&mut r, (4, 6)), random(&mut r, 6));
    let (w2, b2) = (random(&mut r, (6, 3)), random(&mut r, 3));
    let labels = [0, 1, 2, 1, 0];
    let (value, ctx) = mlp_forward(&x, &w1, &b1, &w2, &b2, &labels);
    assert!(ctx.held_bytes() > 0);
    let grads = mlp_backward(ctx, 2.0);
    let (value2, unit) = mlp_grad(&x, &w1, &b1, &w2, &b2, &labels);
    assert_eq!(value, value2);
    // The seed scales every gradient.
    assert!(grads
        .2
        .iter()
        .zip(unit.2.iter())
        .all(|(a, b)| (a - 2.0 * b).abs() < 1e-12));
}
