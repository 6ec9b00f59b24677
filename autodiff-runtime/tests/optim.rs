//! The optimizers against closed forms and scalar recurrences on the quadratic
//! f(x) = ½‖x − c‖², whose gradient is x − c, so that each element follows its own
//! scalar sequence; the `Params` structures (arrays, floats, tuples, `Vec`s, layouts);
//! and the panics on mismatched shapes.

use autodiff_runtime::optim::{Adam, AdamW, Optimizer, Params, Sgd};
use ndarray::{array, Array1, Array2, ArrayD, IxDyn, ShapeBuilder};

const STEPS: usize = 6;
const TOL: f64 = 1e-12;

/// The start x₀ and the minimum c, with elements of both signs and a zero gradient.
fn start_and_target() -> (Array1<f64>, Array1<f64>) {
    (array![1.0, -2.0, 0.5, 3.0, 0.0], array![0.25, 1.0, 0.5, -4.0, 2.0])
}

/// Runs `STEPS` steps of `opt` on the quadratic from x₀ and returns every iterate.
fn run<O: Optimizer<f64>>(mut opt: O) -> Vec<Array1<f64>> {
    let (mut x, c) = start_and_target();
    (0..STEPS)
        .map(|_| {
            let grad = &x - &c;
            opt.step(&mut x, &grad);
            x.clone()
        })
        .collect()
}

/// Each element's sequence from a scalar recurrence `next(step t, x, g) -> x`.
fn reference(mut next: impl FnMut(usize, usize, f64, f64) -> f64) -> Vec<Array1<f64>> {
    let (x0, c) = start_and_target();
    let mut x = x0.to_vec();
    (1..=STEPS)
        .map(|t| {
            for (i, xi) in x.iter_mut().enumerate() {
                *xi = next(t, i, *xi, *xi - c[i]);
            }
            Array1::from(x.clone())
        })
        .collect()
}

fn assert_sequences_close(actual: &[Array1<f64>], expected: &[Array1<f64>]) {
    assert_eq!(actual.len(), expected.len());
    for (t, (a, e)) in actual.iter().zip(expected).enumerate() {
        for (i, (a, e)) in a.iter().zip(e).enumerate() {
            assert!((a - e).abs() <= TOL, "step {}, element {i}: {a} against {e}", t + 1);
        }
    }
}

/// Adam's textbook form, `θ ← θ − γ m̂ / (√v̂ + ε)`, with L2 (`g + λθ`) or decoupled
/// (`θ ← θ − γλθ`) decay, one scalar sequence per element.
fn adam_reference(lr: f64, (b1, b2): (f64, f64), eps: f64, l2: f64, decoupled: f64) -> Vec<Array1<f64>> {
    let n = start_and_target().0.len();
    let (mut m, mut v) = (vec![0.0; n], vec![0.0; n]);
    reference(|t, i, x, g| {
        let g = g + l2 * x;
        let x = x - lr * decoupled * x;
        m[i] = b1 * m[i] + (1.0 - b1) * g;
        v[i] = b2 * v[i] + (1.0 - b2) * g * g;
        let m_hat = m[i] / (1.0 - b1.powi(t as i32));
        let v_hat = v[i] / (1.0 - b2.powi(t as i32));
        x - lr * m_hat / (v_hat.sqrt() + eps)
    })
}

#[test]
fn sgd_matches_the_closed_form() {
    // x_k − c = (1 − γ)^k (x₀ − c).
    let lr = 0.3;
    let (x0, c) = start_and_target();
    let expected: Vec<_> = (1..=STEPS)
        .map(|k| &c + &((&x0 - &c) * (1.0_f64 - lr).powi(k as i32)))
        .collect();
    assert_sequences_close(&run(Sgd::new(lr)), &expected);
}

#[test]
fn sgd_with_weight_decay_matches_the_closed_form() {
    // g = x − c + λx, so x_k − x* = (1 − γ(1 + λ))^k (x₀ − x*) with x* = c / (1 + λ).
    let (lr, wd) = (0.3, 0.5);
    let (x0, c) = start_and_target();
    let fixed = &c / (1.0 + wd);
    let rate: f64 = 1.0 - lr * (1.0 + wd);
    let expected: Vec<_> = (1..=STEPS)
        .map(|k| &fixed + &((&x0 - &fixed) * rate.powi(k as i32)))
        .collect();
    assert_sequences_close(&run(Sgd::new(lr).weight_decay(wd)), &expected);
}

#[test]
fn sgd_with_momentum_matches_the_recurrence() {
    let (lr, mu) = (0.1, 0.9);
    let mut buffer = [0.0; 5];
    let expected = reference(|t, i, x, g| {
        buffer[i] = if t == 1 { g } else { mu * buffer[i] + g };
        x - lr * buffer[i]
    });
    assert_sequences_close(&run(Sgd::new(lr).momentum(mu)), &expected);
}

#[test]
fn sgd_with_momentum_matches_the_heavy_ball_closed_form() {
    // With b₁ = g₁ and no dampening, momentum is the heavy ball:
    // x_{k+1} = x_k − γ(x_k − c) + μ(x_k − x_{k−1}), with x₋₁ = x₀.
    let (lr, mu) = (0.1, 0.9);
    let (x0, c) = start_and_target();
    let (mut previous, mut x) = (x0.clone(), x0);
    let expected: Vec<_> = (0..STEPS)
        .map(|_| {
            let next = &x - &((&x - &c) * lr) + &((&x - &previous) * mu);
            previous = std::mem::replace(&mut x, next);
            x.clone()
        })
        .collect();
    assert_sequences_close(&run(Sgd::new(lr).momentum(mu)), &expected);
}

#[test]
fn sgd_with_dampening_starts_its_buffer_at_the_first_gradient() {
    let (lr, mu, tau) = (0.1, 0.8, 0.3);
    let mut buffer = [0.0; 5];
    let expected = reference(|t, i, x, g| {
        buffer[i] = if t == 1 { g } else { mu * buffer[i] + (1.0 - tau) * g };
        x - lr * buffer[i]
    });
    assert_sequences_close(&run(Sgd::new(lr).momentum(mu).dampening(tau)), &expected);
}

#[test]
fn sgd_nesterov_with_weight_decay_matches_the_recurrence() {
    let (lr, mu, wd) = (0.1, 0.9, 0.01);
    let mut buffer = [0.0; 5];
    let expected = reference(|t, i, x, g| {
        let g = g + wd * x;
        buffer[i] = if t == 1 { g } else { mu * buffer[i] + g };
        x - lr * (g + mu * buffer[i])
    });
    assert_sequences_close(
        &run(Sgd::new(lr).momentum(mu).nesterov(true).weight_decay(wd)),
        &expected,
    );
}

#[test]
#[should_panic(expected = "Nesterov momentum needs a positive momentum and zero dampening")]
fn sgd_nesterov_without_momentum_panics() {
    run(Sgd::new(0.1).nesterov(true));
}

#[test]
fn adam_first_step_moves_each_element_by_the_learning_rate() {
    // m̂₁ = g and v̂₁ = g², so θ₁ = θ₀ − γ g / (|g| + ε): a step of γ against the sign.
    let (lr, eps) = (0.05, 1e-8);
    let (x0, c) = start_and_target();
    let first = &run(Adam::new(lr))[0];
    for i in 0..x0.len() {
        let g: f64 = x0[i] - c[i];
        assert!(
            (first[i] - (x0[i] - lr * g / (g.abs() + eps))).abs() <= TOL,
            "element {i}"
        );
    }
}

#[test]
fn adam_matches_the_recurrence() {
    let expected = adam_reference(0.05, (0.9, 0.999), 1e-8, 0.0, 0.0);
    assert_sequences_close(&run(Adam::new(0.05)), &expected);
}

#[test]
fn adam_with_other_betas_and_eps_matches_the_recurrence() {
    let expected = adam_reference(0.2, (0.5, 0.75), 1e-3, 0.0, 0.0);
    assert_sequences_close(&run(Adam::new(0.2).betas(0.5, 0.75).eps(1e-3)), &expected);
}

#[test]
fn adam_weight_decay_is_l2_in_the_gradient() {
    let expected = adam_reference(0.05, (0.9, 0.999), 1e-8, 0.1, 0.0);
    assert_sequences_close(&run(Adam::new(0.05).weight_decay(0.1)), &expected);
}

#[test]
fn adamw_weight_decay_is_decoupled() {
    let expected = adam_reference(0.05, (0.9, 0.999), 1e-8, 0.0, 0.1);
    assert_sequences_close(&run(AdamW::new(0.05).weight_decay(0.1)), &expected);
    // Without decay, AdamW is Adam.
    assert_sequences_close(&run(AdamW::new(0.05).weight_decay(0.0)), &run(Adam::new(0.05)));
}

#[test]
fn adamw_defaults_are_pytorchs() {
    let opt = AdamW::<f64>::default();
    assert_eq!(opt.lr(), 1e-3);
    let expected = adam_reference(1e-3, (0.9, 0.999), 1e-8, 0.0, 1e-2);
    assert_sequences_close(&run(opt), &expected);
}

#[test]
fn set_lr_changes_the_next_steps_only() {
    let (x0, c) = start_and_target();
    let mut x = x0.clone();
    let mut opt = Sgd::new(0.5);
    let grad = &x - &c;
    opt.step(&mut x, &grad);
    opt.set_lr(0.25);
    assert_eq!(opt.lr(), 0.25);
    let grad = &x - &c;
    opt.step(&mut x, &grad);
    let expected = &c + &((&x0 - &c) * (0.5 * 0.75));
    assert!((&x - &expected).iter().all(|d| d.abs() <= TOL));
    assert_eq!(opt.steps(), 2);
}

/// Stepping one structure equals stepping each of its leaves with its own optimizer.
#[test]
fn tuples_vecs_and_floats_step_leaf_by_leaf() {
    type Model = (Array2<f64>, Array1<f64>, f64, Vec<Array1<f64>>, ArrayD<f64>);
    let mut model: Model = (
        Array2::from_shape_fn((3, 2), |(i, j)| i as f64 - j as f64),
        array![0.5, -0.5],
        1.5,
        vec![array![1.0, 2.0, 3.0], array![-1.0]],
        ArrayD::from_elem(IxDyn(&[2, 1, 2]), 0.25),
    );
    assert_eq!(model.leaf_count(), 6);
    assert_eq!(model.element_count(), 6 + 2 + 1 + 4 + 4);
    let (mut w, mut b, mut s, mut vs, mut d) = model.clone();
    let mut opt = Adam::new(0.1).weight_decay(0.01);
    let mut single: Vec<Adam<f64>> = (0..6).map(|_| Adam::new(0.1).weight_decay(0.01)).collect();
    for step in 0..4 {
        let scale = 1.0 + step as f64;
        let grads: Model = (
            model.0.mapv(|v| scale * v.sin()),
            model.1.mapv(|v| v - scale),
            model.2 * scale,
            model.3.iter().map(|a| a.mapv(|v| v * v - scale)).collect(),
            model.4.mapv(|v| v + scale),
        );
        opt.step(&mut model, &grads);
        single[0].step(&mut w, &grads.0);
        single[1].step(&mut b, &grads.1);
        single[2].step(&mut s, &grads.2);
        single[3].step(&mut vs[0], &grads.3[0]);
        single[4].step(&mut vs[1], &grads.3[1]);
        single[5].step(&mut d, &grads.4);
    }
    assert_eq!(model, (w, b, s, vs, d));
}

#[test]
fn a_float_parameter_steps_like_a_one_element_array() {
    let (mut x, mut a) = (2.0_f64, array![2.0_f64]);
    let (mut opt_x, mut opt_a) = (Sgd::new(0.1).momentum(0.5), Sgd::new(0.1).momentum(0.5));
    for _ in 0..5 {
        let (grad_x, grad_a) = (x * x, a.mapv(|v| v * v));
        opt_x.step(&mut x, &grad_x);
        opt_a.step(&mut a, &grad_a);
    }
    assert_eq!(x, a[0]);
}

#[test]
fn gradients_in_another_memory_layout_pair_up_by_index() {
    // A column-major parameter with a row-major gradient: elements pair by index.
    let c = Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f64);
    let mut x = Array2::<f64>::zeros((3, 4).f());
    let mut opt = Adam::new(0.1);
    for _ in 0..3 {
        let grad = (&x - &c).as_standard_layout().to_owned();
        opt.step(&mut x, &grad);
    }
    let mut reference = Array2::<f64>::zeros((3, 4));
    let mut opt = Adam::new(0.1);
    for _ in 0..3 {
        let grad = &reference - &c;
        opt.step(&mut reference, &grad);
    }
    assert_eq!(x, reference);
}

#[test]
fn f32_parameters_step_too() {
    let mut params = (array![[1.0_f32, 2.0]], 0.5_f32);
    let mut opt = Adam::new(0.01_f32);
    opt.step(&mut params, &(array![[1.0_f32, -1.0]], 2.0_f32));
    assert!((params.0[[0, 0]] - 0.99).abs() < 1e-6 && (params.0[[0, 1]] - 2.01).abs() < 1e-6);
    assert!((params.1 - 0.49).abs() < 1e-6);
}

#[test]
fn norm_and_scale_cover_every_leaf() {
    let mut grads = (array![3.0, 0.0], 4.0_f64, vec![array![[0.0]]]);
    assert_eq!(grads.norm(), 5.0);
    grads.scale(0.5);
    assert_eq!(grads.norm(), 2.5);
}

#[test]
#[should_panic(expected = "parameter 1 has shape [2] but its gradient has shape [3]")]
fn a_gradient_of_another_shape_panics() {
    let mut params = (Array2::<f64>::zeros((3, 2)), Array1::<f64>::zeros(2));
    let grads = (Array2::<f64>::zeros((3, 2)), Array1::<f64>::zeros(3));
    Adam::new(0.1).step(&mut params, &grads);
}

#[test]
#[should_panic(
    expected = "2 parameter leaves but 1 gradient leaves: parameter shapes [[3, 2], [2]], gradient shapes [[3, 2]]"
)]
fn missing_gradients_panic() {
    let mut params = (Array2::<f64>::zeros((3, 2)), Array1::<f64>::zeros(2));
    Sgd::new(0.1).step(&mut params, &Array2::<f64>::zeros((3, 2)));
}

#[test]
#[should_panic(
    expected = "the optimizer's state was made for shapes [[3, 2], [2]], the parameters now have shapes [[3, 2], [4]]"
)]
fn parameters_that_change_shape_after_the_first_step_panic() {
    let mut opt = Sgd::new(0.1).momentum(0.9);
    let mut params = (Array2::<f64>::zeros((3, 2)), Array1::<f64>::zeros(2));
    let grads = params.clone();
    opt.step(&mut params, &grads);
    let mut other = (Array2::<f64>::zeros((3, 2)), Array1::<f64>::zeros(4));
    let grads = other.clone();
    opt.step(&mut other, &grads);
}

#[test]
fn a_panicking_step_leaves_the_parameters_unchanged() {
    let mut params = (Array1::<f64>::ones(2), Array1::<f64>::ones(2));
    let grads = (Array1::<f64>::ones(2), Array1::<f64>::ones(5));
    let mut opt = Adam::new(0.1);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| opt.step(&mut params, &grads)));
    assert!(result.is_err());
    assert_eq!(params, (Array1::ones(2), Array1::ones(2)));
}

#[test]
fn tuples_of_twelve_nest() {
    let mut params = (
        1.0,
        2.0,
        3.0,
        4.0,
        5.0,
        6.0,
        7.0,
        8.0,
        9.0,
        10.0,
        11.0,
        (array![12.0], 13.0_f64),
    );
    let grads = params.clone();
    assert_eq!(params.leaf_count(), 13);
    Sgd::new(0.5).step(&mut params, &grads);
    assert_eq!(
        (params.0, params.8, params.11 .0[0], params.11 .1),
        (0.5, 4.5, 6.0, 6.5)
    );
}
