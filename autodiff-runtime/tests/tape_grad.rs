//! Every tape op's gradient against central finite differences (f64, relative
//! error <= 1e-6), alone and in composite graphs.
//!
//! Each check builds `loss = sum(f(inputs) * r)` with a fixed random `r`, so
//! that the adjoint reaching `f` is not a constant, and compares the tape's
//! gradient of every input with `gradcheck::numeric_gradient` of the same loss.

use autodiff_runtime::gradcheck::{default_step, max_relative_error, numeric_gradient};
use autodiff_runtime::tape::{Tape, Var};
use ndarray::{ArrayD, Axis, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TOLERANCE: f64 = 1e-6;

fn random(rng: &mut StdRng, shape: &[usize], lo: f64, hi: f64) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(shape), |_| rng.gen_range(lo..hi))
}

/// Values in `[lo, hi]` with a random sign: away from the kinks of relu and abs.
fn away_from_zero(rng: &mut StdRng, shape: &[usize], lo: f64, hi: f64) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(shape), |_| {
        let magnitude = rng.gen_range(lo..hi);
        if rng.gen_bool(0.5) {
            magnitude
        } else {
            -magnitude
        }
    })
}

/// The loss `sum(f(vars) * r)` on a tape whose leaves are all `param`s.
fn loss_value(
    inputs: &[ArrayD<f64>],
    r: &ArrayD<f64>,
    f: &dyn for<'t, 'a> Fn(&[Var<'t, 'a, f64>]) -> Var<'t, 'a, f64>,
) -> f64 {
    let tape = Tape::new();
    let vars: Vec<_> = inputs.iter().map(|x| tape.constant(x)).collect();
    let y = f(&vars);
    let r = tape.constant(r);
    (&y * &r).sum().scalar()
}

/// Checks the tape gradient of every input of `f` against finite differences; returns the worst error.
fn check(inputs: Vec<ArrayD<f64>>, f: impl for<'t, 'a> Fn(&[Var<'t, 'a, f64>]) -> Var<'t, 'a, f64>) -> f64 {
    check_within(TOLERANCE, inputs, f)
}

/// [`check`] with another tolerance, for a loss whose finite differences are noisier.
fn check_within(
    tolerance: f64,
    inputs: Vec<ArrayD<f64>>,
    f: impl for<'t, 'a> Fn(&[Var<'t, 'a, f64>]) -> Var<'t, 'a, f64>,
) -> f64 {
    let mut rng = StdRng::seed_from_u64(7);
    let tape = Tape::new();
    let vars: Vec<_> = inputs.iter().map(|x| tape.param(x)).collect();
    let y = f(&vars);
    let r = random(&mut rng, y.shape(), -1.0, 1.0);
    let r_var = tape.constant_owned(r.clone());
    let loss = (&y * &r_var).sum();
    let grads = tape.backward(&loss);
    let mut worst: f64 = 0.0;
    for (i, var) in vars.iter().enumerate() {
        let analytic = grads.get(var).cloned().unwrap_or_else(|| ArrayD::zeros(var.shape()));
        assert_eq!(
            analytic.shape(),
            inputs[i].shape(),
            "gradient {i} has the input's shape"
        );
        let numeric = numeric_gradient(
            |probe: &ArrayD<f64>| {
                let mut perturbed = inputs.to_vec();
                perturbed[i] = probe.clone();
                loss_value(&perturbed, &r, &f)
            },
            &inputs[i],
            default_step::<f64>(),
        );
        // A gradient that is exactly zero (a conv bias before batch norm) has no
        // scale to be relative to: both sides must then be zero up to rounding.
        let scale = numeric
            .iter()
            .chain(analytic.iter())
            .fold(0.0f64, |m, v| m.max(v.abs()));
        if scale < 1e-7 {
            continue;
        }
        let err = max_relative_error(&analytic, &numeric);
        assert!(
            err <= tolerance,
            "input {i}: relative error {err:e}\nanalytic {analytic}\nnumeric {numeric}"
        );
        worst = worst.max(err);
    }
    worst
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(42)
}

#[test]
fn binary_ops_same_shape() {
    let mut rng = rng();
    let a = random(&mut rng, &[3, 4], -2.0, 2.0);
    let b = random(&mut rng, &[3, 4], 0.5, 2.0);
    check(vec![a.clone(), b.clone()], |v| v[0].add(&v[1]));
    check(vec![a.clone(), b.clone()], |v| v[0].sub(&v[1]));
    check(vec![a.clone(), b.clone()], |v| v[0].mul(&v[1]));
    check(vec![a, b], |v| v[0].div(&v[1]));
}

#[test]
fn binary_ops_broadcast() {
    let mut rng = rng();
    // (2,3) with (3), (3,1) with (1,4), 0-d with (2,3).
    let cases: Vec<(Vec<usize>, Vec<usize>)> = vec![
        (vec![2, 3], vec![3]),
        (vec![3, 1], vec![1, 4]),
        (vec![], vec![2, 3]),
        (vec![2, 3], vec![]),
    ];
    for (sa, sb) in cases {
        let a = random(&mut rng, &sa, -2.0, 2.0);
        let b = random(&mut rng, &sb, 0.5, 2.0);
        check(vec![a.clone(), b.clone()], |v| v[0].add(&v[1]));
        check(vec![a.clone(), b.clone()], |v| v[0].sub(&v[1]));
        check(vec![a.clone(), b.clone()], |v| v[0].mul(&v[1]));
        check(vec![a.clone(), b.clone()], |v| v[0].div(&v[1]));
    }
}

#[test]
fn operators_and_neg() {
    let mut rng = rng();
    let a = random(&mut rng, &[4], -2.0, 2.0);
    let b = random(&mut rng, &[4], 0.5, 2.0);
    check(vec![a.clone(), b.clone()], |v| &v[0] + &v[1]);
    check(vec![a.clone(), b.clone()], |v| v[0].clone() - v[1].clone());
    check(vec![a.clone(), b.clone()], |v| v[0].clone() * &v[1]);
    check(vec![a.clone(), b.clone()], |v| &v[0] / v[1].clone());
    check(vec![a.clone()], |v| -&v[0]);
    check(vec![a], |v| -(v[0].clone()));
}

#[test]
fn scalar_ops() {
    let mut rng = rng();
    let a = random(&mut rng, &[2, 3], 0.5, 2.0);
    check(vec![a.clone()], |v| v[0].add_scalar(1.5));
    check(vec![a.clone()], |v| v[0].sub_scalar(1.5));
    check(vec![a.clone()], |v| v[0].scalar_sub(1.5));
    check(vec![a.clone()], |v| v[0].mul_scalar(-2.5));
    check(vec![a.clone()], |v| v[0].div_scalar(3.0));
    check(vec![a.clone()], |v| v[0].scalar_div(3.0));
    check(vec![a], |v| v[0].neg());
}

#[test]
fn unary_ops() {
    let mut rng = rng();
    let any = random(&mut rng, &[3, 4], -2.0, 2.0);
    let positive = random(&mut rng, &[3, 4], 0.5, 3.0);
    let signed = away_from_zero(&mut rng, &[3, 4], 0.1, 2.0);
    check(vec![any.clone()], |v| v[0].exp());
    check(vec![positive.clone()], |v| v[0].ln());
    check(vec![positive.clone()], |v| v[0].sqrt());
    check(vec![any.clone()], |v| v[0].tanh());
    check(vec![any.clone()], |v| v[0].sin());
    check(vec![any.clone()], |v| v[0].cos());
    check(vec![signed.clone()], |v| v[0].abs());
    check(vec![signed.clone()], |v| v[0].recip());
    check(vec![any.clone()], |v| v[0].square());
    check(vec![signed], |v| v[0].relu());
    check(vec![any.clone()], |v| v[0].sigmoid());
    check(vec![any.clone()], |v| v[0].powi(3));
    check(vec![positive.clone()], |v| v[0].powi(-2));
    check(vec![positive], |v| v[0].powf(1.5));
    check(vec![any], |v| v[0].map(|x| x.sin() * x, |x| x.cos() * x + x.sin()));
}

#[test]
fn dot_all_ranks() {
    let mut rng = rng();
    let m = random(&mut rng, &[3, 4], -1.0, 1.0);
    let n = random(&mut rng, &[4, 2], -1.0, 1.0);
    let u = random(&mut rng, &[4], -1.0, 1.0);
    let w = random(&mut rng, &[3], -1.0, 1.0);
    check(vec![m.clone(), n], |v| v[0].dot(&v[1]));
    check(vec![m.clone(), u.clone()], |v| v[0].dot(&v[1]));
    check(vec![w, m], |v| v[0].dot(&v[1]));
    check(vec![u.clone(), u.mapv(|x| x + 0.5)], |v| v[0].dot(&v[1]));
}

#[test]
fn transpose_and_reductions() {
    let mut rng = rng();
    let a = random(&mut rng, &[3, 4], -1.0, 1.0);
    let c = random(&mut rng, &[2, 3, 4], -1.0, 1.0);
    check(vec![a.clone()], |v| v[0].t());
    check(vec![a.clone()], |v| v[0].t().dot(&v[0])); // aᵀa: a used twice through a transpose
    check(vec![c.clone()], |v| v[0].sum());
    check(vec![c.clone()], |v| v[0].mean());
    for axis in 0..3 {
        check(vec![c.clone()], |v| v[0].sum_axis(Axis(axis)));
        check(vec![c.clone()], |v| v[0].mean_axis(Axis(axis)));
    }
}

#[test]
fn softmax_and_losses() {
    let mut rng = rng();
    let logits = random(&mut rng, &[4, 5], -3.0, 3.0);
    let target = random(&mut rng, &[4, 5], -1.0, 1.0);
    for axis in 0..2 {
        check(vec![logits.clone()], |v| v[0].softmax(Axis(axis)));
        check(vec![logits.clone()], |v| v[0].log_softmax(Axis(axis)));
    }
    check(vec![logits.clone(), target], |v| v[0].mse(&v[1]));
    check(vec![logits], |v| v[0].cross_entropy(&[0, 4, 2, 2]));
}

#[test]
fn conv2d_batch_norm_max_pool() {
    let mut rng = rng();
    let x = random(&mut rng, &[2, 3, 6, 5], -1.0, 1.0);
    let w = random(&mut rng, &[4, 3, 3, 3], -1.0, 1.0);
    let b = random(&mut rng, &[4], -1.0, 1.0);
    check(vec![x.clone(), w.clone(), b], |v| v[0].conv2d(&v[1], Some(&v[2]), 1, 1));
    check(vec![x.clone(), w], |v| v[0].conv2d(&v[1], None, 2, 0));
    let gamma = random(&mut rng, &[3], 0.5, 1.5);
    let beta = random(&mut rng, &[3], -1.0, 1.0);
    check(vec![x, gamma, beta], |v| v[0].batch_norm(&v[1], &v[2], 1e-5));
    // Distinct values so that no window has a tie within the finite-difference step.
    let mut values: Vec<f64> = (0..2 * 2 * 4 * 6).map(|i| i as f64 * 0.1).collect();
    for i in (1..values.len()).rev() {
        values.swap(i, rng.gen_range(0..=i));
    }
    let p = ArrayD::from_shape_vec(IxDyn(&[2, 2, 4, 6]), values).unwrap();
    check(vec![p.clone()], |v| v[0].max_pool2d(2, 2));
    check(vec![p], |v| v[0].max_pool2d(3, 1));
}

// ---- composite graphs --------------------------------------------------------

#[test]
fn mlp_with_bias_and_relu() {
    let mut rng = rng();
    let x = random(&mut rng, &[5, 4], -1.0, 1.0);
    let w1 = random(&mut rng, &[4, 6], -1.0, 1.0);
    let b1 = random(&mut rng, &[6], -1.0, 1.0);
    let w2 = random(&mut rng, &[6, 3], -1.0, 1.0);
    let b2 = random(&mut rng, &[3], -1.0, 1.0);
    check(vec![x, w1, b1, w2, b2], |v| {
        (&v[0].dot(&v[1]) + &v[2]).relu().dot(&v[3]) + v[4].clone()
    });
}

#[test]
fn matmul_chain() {
    let mut rng = rng();
    let a = random(&mut rng, &[2, 3], -1.0, 1.0);
    let b = random(&mut rng, &[3, 4], -1.0, 1.0);
    let c = random(&mut rng, &[4, 5], -1.0, 1.0);
    let d = random(&mut rng, &[5, 2], -1.0, 1.0);
    check(vec![a, b, c, d], |v| v[0].dot(&v[1]).dot(&v[2]).dot(&v[3]).sum());
}

#[test]
fn conv_batch_norm_relu_sum() {
    let mut rng = rng();
    let x = random(&mut rng, &[2, 2, 5, 5], -1.0, 1.0);
    let w = random(&mut rng, &[3, 2, 3, 3], -1.0, 1.0);
    let b = random(&mut rng, &[3], -1.0, 1.0);
    let gamma = random(&mut rng, &[3], 0.5, 1.5);
    let beta = random(&mut rng, &[3], -0.5, 0.5);
    // Central differences of this loss carry about 1e-8 of absolute noise (ε·|loss|/h, with
    // batch norm's 1/σ on top), which is 2e-6 of its smallest weight-gradient entries (5e-3):
    // 1e-5 leaves that margin, and a wrong rule is off by orders of magnitude more.
    check_within(1e-5, vec![x, w, b, gamma, beta], |v| {
        v[0].conv2d(&v[1], Some(&v[2]), 1, 1)
            .batch_norm(&v[3], &v[4], 1e-5)
            .relu()
            .sum()
    });
}

#[test]
fn softmax_cross_entropy_of_a_linear_layer() {
    let mut rng = rng();
    let x = random(&mut rng, &[6, 4], -1.0, 1.0);
    let w = random(&mut rng, &[4, 5], -1.0, 1.0);
    let b = random(&mut rng, &[5], -1.0, 1.0);
    let labels = [0, 1, 4, 3, 3, 2];
    check(vec![x.clone(), w.clone(), b.clone()], |v| {
        (&v[0].dot(&v[1]) + &v[2]).cross_entropy(&labels)
    });
    // The same loss spelled out: -mean(log_softmax picked by a one-hot mask).
    let mut onehot = ArrayD::zeros(IxDyn(&[6, 5]));
    for (row, &label) in labels.iter().enumerate() {
        onehot[[row, label]] = 1.0;
    }
    let tape = Tape::new();
    let (xv, wv, bv, mask) = (tape.param(&x), tape.param(&w), tape.param(&b), tape.constant(&onehot));
    let logits = &xv.dot(&wv) + &bv;
    let explicit = (&logits.log_softmax(Axis(1)) * &mask).sum().mul_scalar(-1.0 / 6.0);
    let fused = logits.cross_entropy(&labels);
    assert!((explicit.scalar() - fused.scalar()).abs() < 1e-12);
    let g_explicit = tape.backward_retain(&explicit);
    let g_fused = tape.backward(&fused);
    assert!(max_relative_error(&g_explicit[&wv], &g_fused[&wv]) < 1e-10);
    assert!(max_relative_error(&g_explicit[&bv], &g_fused[&bv]) < 1e-10);
}

#[test]
fn value_used_twice_accumulates() {
    let mut rng = rng();
    let a = random(&mut rng, &[5], -2.0, 2.0);
    check(vec![a.clone()], |v| &(&v[0] * &v[0]) + &v[0]);
    check(vec![a.clone()], |v| {
        let t = v[0].tanh();
        &(&t * &t.exp()) + &t.sin()
    });
    let tape = Tape::new();
    let x = tape.param(&a);
    let y = (&(&x * &x) + &x).sum();
    let g = tape.backward(&y);
    assert_eq!(g[&x], a.mapv(|v| 2.0 * v + 1.0));
}

#[test]
fn f32_gradients_agree_with_f64() {
    let a64 = random(&mut rng(), &[3, 4], -1.0, 1.0);
    let a32 = a64.mapv(|v| v as f32);
    let tape64 = Tape::new();
    let x64 = tape64.param(&a64);
    let g64 = tape64.backward(&x64.tanh().square().sum());
    let tape32 = Tape::new();
    let x32 = tape32.param(&a32);
    let g32 = tape32.backward(&x32.tanh().square().sum());
    let err = max_relative_error(&g32[&x32].mapv(f64::from), &g64[&x64]);
    assert!(err < 1e-5, "f32 vs f64 error {err:e}");
}
