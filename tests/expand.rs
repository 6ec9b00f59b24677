//! Expansion snapshots: the generated static code of representative functions,
//! pretty-printed, compared with `tests/expand/<name>.rs`. A change to codegen shows up
//! here as a diff to review. Regenerate with `UPDATE_EXPAND=1 cargo test --test expand`.

use autodiff::prelude::*;

/// The quick-start example: broadcasting, a value used twice, a scalar tail.
#[differentiate]
fn quick_start(x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>) -> f64 {
    let h = (x.dot(w) + b).tanh();
    (&h * &h).sum() / 2.0
}

/// A classifier trained on its parameters only: the data's gradient is never computed.
#[differentiate(wrt(w1, b1, w2, b2))]
fn classifier(
    x: &Array2<f64>,
    w1: &Array2<f64>,
    b1: &Array1<f64>,
    w2: &Array2<f64>,
    b2: &Array1<f64>,
    labels: &[usize],
) -> f64 {
    let h = relu(&(x.dot(w1) + b1));
    cross_entropy(&(h.dot(w2) + b2), labels)
}

/// A `mapv` closure differentiated symbolically, generic over the float type.
#[differentiate]
fn smooth<F: Float>(x: &Array1<F>) -> F {
    x.mapv(|v| v * v.sin()).sum()
}

/// A loop over a slice with a carried state: one body, run forward and in reverse.
#[differentiate]
fn recurrent(h0: &Array2<f64>, w: &Array2<f64>, xs: &[Array2<f64>]) -> f64 {
    let mut h = h0.to_owned();
    for x in xs {
        h = (h.dot(w) + x).tanh();
    }
    h.sum()
}

/// A layer (an array-valued function) called twice: the caller's context holds the
/// callee's call contexts, and backward calls the callee's backward.
#[differentiate]
fn layer(x: &Array2<f64>, w: &Array2<f64>) -> Array2<f64> {
    x.dot(w).tanh()
}

#[differentiate(wrt(w1, w2))]
fn stacked(x: &Array2<f64>, w1: &Array2<f64>, w2: &Array2<f64>) -> f64 {
    let h: Array2<f64> = layer(x, w1);
    let y: Array2<f64> = layer(&h, w2);
    y.sum()
}

/// A custom rule: the function and its VJP are the user's; a caller calls both.
#[differentiate(vjp = softsign_backward)]
fn softsign(x: &Array1<f64>) -> Array1<f64> {
    x.mapv(|v| v / (1.0 + v.abs()))
}

fn softsign_backward(x: &Array1<f64>, _y: &Array1<f64>, seed: Array1<f64>) -> Array1<f64> {
    seed * x.mapv(|v| 1.0 / ((1.0 + v.abs()) * (1.0 + v.abs())))
}

#[differentiate]
fn softsign_loss(x: &Array1<f64>) -> f64 {
    let y: Array1<f64> = softsign(x);
    (&y * &y).sum()
}

/// A convolutional block: batch norm keeps its statistics and its three adjoints share one
/// pass for their sums; the pool keeps its window indices, so relu's output is read only
/// through its sign.
#[differentiate(wrt(w, gamma, beta))]
fn conv_block(x: &Array4<f64>, w: &Array4<f64>, b: &Array1<f64>, gamma: &Array1<f64>, beta: &Array1<f64>) -> f64 {
    max_pool2d(
        &relu(&batch_norm(&conv2d(x, w, Some(b), 1, 1), gamma, beta, 1e-5)),
        2,
        2,
    )
    .sum()
}

fn check(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/expand")
        .join(format!("{name}.rs"));
    if std::env::var_os("UPDATE_EXPAND").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_EXPAND=1 to create it", path.display()));
    assert!(
        expected == actual,
        "the generated code of `{name}` changed; review it and run `UPDATE_EXPAND=1 cargo test --test expand`.\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

#[test]
fn quick_start_expansion() {
    check("quick_start", quick_start_grad_source());
}

#[test]
fn classifier_expansion() {
    check("classifier", classifier_grad_source());
}

#[test]
fn smooth_expansion() {
    check("smooth", smooth_grad_source());
}

#[test]
fn recurrent_expansion() {
    check("recurrent", recurrent_grad_source());
}

#[test]
fn stacked_expansion() {
    check("stacked", stacked_grad_source());
}

#[test]
fn conv_block_expansion() {
    check("conv_block", conv_block_grad_source());
}

#[test]
fn custom_rule_expansion() {
    check("custom_rule", softsign_grad_source());
}

#[test]
fn custom_rule_is_checked() {
    autodiff::check!(softsign_loss, &autodiff::ndarray::array![0.3, -1.2, 2.0]);
}
