//! Calls between differentiated functions (composition), each caller checked three ways
//! (static code, tape, finite differences in f64) in its own test. Callees live in this
//! crate's modules and in another crate (`autodiff::layers`).

mod common;

use autodiff::prelude::*;
use common::{random, rng};

mod nn {
    use autodiff::prelude::*;

    /// A layer generic over the float type, public to the crate.
    #[differentiate]
    pub fn layer<F: Float>(x: &Array2<F>, w: &Array2<F>, b: &Array1<F>) -> Array2<F> {
        (x.dot(w) + b).tanh()
    }

    /// A float-valued callee.
    #[differentiate]
    pub fn penalty<F: Float>(w: &Array2<F>) -> F {
        (w * w).sum()
    }
}

#[differentiate]
fn two_layers(x: &Array2<f64>, w1: &Array2<f64>, b1: &Array1<f64>, w2: &Array2<f64>, b2: &Array1<f64>) -> f64 {
    let h: Array2<f64> = nn::layer(x, w1, b1);
    let y: Array2<f64> = nn::layer(&h, w2, b2);
    let p: f64 = nn::penalty::<f64>(w1);
    (&y * &y).sum() + 0.1 * p.sqrt()
}

#[test]
fn a_layer_called_twice_from_another_module() {
    let mut r = rng(80);
    autodiff::check!(
        two_layers,
        &random(&mut r, (3, 4)),
        &random(&mut r, (4, 5)),
        &random(&mut r, 5),
        &random(&mut r, (5, 2)),
        &random(&mut r, 2)
    );
}

#[differentiate]
fn generic_caller<F: Float>(x: &Array2<F>, w: &Array2<F>, b: &Array1<F>) -> F {
    let h: Array2<F> = nn::layer(x, w, b);
    let p: F = nn::penalty(&h);
    p * F::of(0.5)
}

#[test]
fn a_generic_caller_passes_its_float_type_on() {
    let mut r = rng(81);
    let (x, w, b) = (random(&mut r, (2, 3)), random(&mut r, (3, 3)), random(&mut r, 3));
    autodiff::check!(generic_caller, &x, &w, &b);
    autodiff::check!(
        generic_caller,
        &x.mapv(|v| v as f32),
        &w.mapv(|v| v as f32),
        &b.mapv(|v| v as f32)
    );
}

#[differentiate]
fn deep(x: &Array2<f64>, ws: &[Array2<f64>], bs: &[Array1<f64>]) -> f64 {
    let mut h = x.to_owned();
    for l in 0..ws.len() {
        h = nn::layer(&h, &ws[l], &bs[l]);
    }
    h.mean().unwrap()
}

#[test]
fn a_layer_called_in_a_loop_over_weights_in_slices() {
    let mut r = rng(82);
    let ws: Vec<Array2<f64>> = (0..3).map(|_| random(&mut r, (4, 4))).collect();
    let bs: Vec<Array1<f64>> = (0..3).map(|_| random(&mut r, 4)).collect();
    autodiff::check!(deep, &random(&mut r, (2, 4)), &ws, &bs);
}

#[differentiate]
fn cell(h: &Array2<f64>, x: &Array2<f64>, w: &Array2<f64>, u: &Array2<f64>) -> Array2<f64> {
    (h.dot(w) + x.dot(u)).tanh()
}

#[differentiate]
fn recurrent(h0: &Array2<f64>, xs: &[Array2<f64>], w: &Array2<f64>, u: &Array2<f64>) -> f64 {
    let mut h = h0.to_owned();
    for x in xs {
        h = cell(&h, x, w, u);
    }
    h.sum()
}

#[test]
fn a_recurrent_cell_called_at_every_step() {
    let mut r = rng(83);
    let xs: Vec<Array2<f64>> = (0..4).map(|_| random(&mut r, (2, 3))).collect();
    autodiff::check!(
        recurrent,
        &random(&mut r, (2, 4)),
        &xs,
        &random(&mut r, (4, 4)),
        &random(&mut r, (3, 4))
    );
}

#[differentiate]
fn unrolled(x: &Array1<f64>, w: &Array1<f64>, steps: usize) -> Array1<f64> {
    let mut h = x.to_owned();
    for _ in 0..steps {
        h = (&h * w).sin();
    }
    h
}

#[differentiate]
fn calls_a_loop(x: &Array1<f64>, w: &Array1<f64>) -> f64 {
    let y: Array1<f64> = unrolled(x, w, 3);
    let z: Array1<f64> = unrolled(&y, w, 2);
    (&z * &y).sum()
}

#[test]
fn a_callee_with_a_loop_and_a_constant_parameter() {
    let mut r = rng(84);
    autodiff::check!(calls_a_loop, &random(&mut r, 4), &random(&mut r, 4));
}

#[differentiate]
fn classify(logits: &Array2<f64>, labels: &[usize]) -> f64 {
    cross_entropy(logits, labels)
}

#[differentiate]
fn owned_callee(z: Array2<f64>, s: f64) -> Array2<f64> {
    z * s
}

#[differentiate(wrt(w))]
fn classifier(x: &Array2<f64>, w: &Array2<f64>, labels: &[usize]) -> f64 {
    let z: Array2<f64> = owned_callee(x.dot(w), 0.5);
    let loss: f64 = classify(&z, labels);
    loss
}

#[test]
fn constants_owned_arrays_and_floats_as_arguments() {
    let mut r = rng(85);
    autodiff::check!(
        classifier,
        &random(&mut r, (3, 4)),
        &random(&mut r, (4, 3)),
        &[0, 2, 1][..]
    );
}

#[differentiate]
fn block(x: &Array2<f64>, w: &Array2<f64>) -> Array2<f64> {
    let b = Array1::zeros(w.ncols());
    let h: Array2<f64> = nn::layer(x, w, &b);
    let g: Array2<f64> = autodiff::layers::dense_relu(&h, w, &b);
    h + g
}

#[differentiate]
fn model(x: &Array2<f64>, w: &Array2<f64>) -> f64 {
    let a: Array2<f64> = block(x, w);
    let b: Array2<f64> = block(&a, w);
    b.sum()
}

#[test]
fn calls_three_deep_and_into_another_crate() {
    let mut r = rng(86);
    autodiff::check!(model, &random(&mut r, (2, 3)), &random(&mut r, (3, 3)));
}

#[test]
fn a_layers_vjp_agrees_with_the_tape() {
    let mut r = rng(87);
    let (x, w, b) = (random(&mut r, (3, 4)), random(&mut r, (4, 2)), random(&mut r, 2));
    let seed = random(&mut r, (3, 2));
    let (value, (dx, dw, db)) = nn::layer_vjp(&x, &w, &b, seed.clone());
    let (tape_value, (tx, tw, tb)) = nn::layer_tape_vjp(&x, &w, &b, seed);
    assert_eq!(value, tape_value);
    for (a, b) in [(&dx, &tx), (&dw, &tw)] {
        assert!((a - b).iter().all(|d| d.abs() < 1e-12), "{a} vs {b}");
    }
    assert!((&db - &tb).iter().all(|d| d.abs() < 1e-12), "{db} vs {tb}");
}

#[differentiate]
fn scaled(x: &Array1<f64>, t: f64) -> Array1<f64> {
    x * t
}

#[differentiate]
fn float_constant_from_a_method(x: &Array1<f64>) -> f64 {
    let n = x.len() as f64;
    let t = n.recip();
    let y: Array1<f64> = scaled(x, t);
    (&y * &y).sum()
}

#[test]
fn a_float_constant_computed_by_a_method_as_an_argument() {
    autodiff::check!(float_constant_from_a_method, &random(&mut rng(88), 4));
}

#[differentiate]
fn call_in_an_arm(x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>, twice: bool) -> f64 {
    let h: Array2<f64> = if twice { nn::layer(x, w, b) } else { x.dot(w) };
    let mut g = h.clone();
    g = match twice {
        true => nn::layer(&g, &w.t().to_owned().dot(w), b),
        false => g.tanh(),
    };
    g.sum()
}

#[test]
fn a_call_as_the_value_of_a_branch_arm() {
    let mut r = rng(89);
    let (x, w, b) = (random(&mut r, (2, 3)), random(&mut r, (3, 3)), random(&mut r, 3));
    autodiff::check!(call_in_an_arm, &x, &w, &b, true);
    autodiff::check!(call_in_an_arm, &x, &w, &b, false);
}
