//! The static analyses, asserted through the generated plans: dead-gradient
//! elimination, liveness (what the context keeps), and the symbolic `sum` seed.

use autodiff::prelude::*;

#[differentiate]
#[differentiate(wrt(w), name = layer_w_only)]
fn layer(x: &Array2<f64>, w: &Array2<f64>) -> f64 {
    x.dot(w).tanh().sum()
}

#[differentiate]
fn matmul_sum(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    a.dot(b).sum()
}

#[differentiate(wrt(w1))]
fn two_layers(x: &Array2<f64>, w1: &Array2<f64>, w2: &Array2<f64>) -> f64 {
    let h = x.dot(w1).exp();
    let y = h.dot(w2);
    let _unused = y.sin(); // reaches nothing: no adjoint, nothing kept for it
    y.sum()
}

#[differentiate]
fn elementwise(x: &Array1<f64>, y: &Array1<f64>) -> f64 {
    let a = x * y; // backward reads x and y (parameters: borrowed, not saved)
    let b = a.exp(); // backward reads b (its output): saved
    let c = &b + x; // backward reads only shapes
    c.sum()
}

#[test]
fn dead_gradient_elimination_drops_the_data_product() {
    assert_eq!(LAYER_GRAD_PLAN.backward_calls("matmul_grad"), 2, "{LAYER_GRAD_PLAN}");
    assert_eq!(
        LAYER_W_ONLY_GRAD_PLAN.backward_calls("matmul_grad"),
        1,
        "{LAYER_W_ONLY_GRAD_PLAN}"
    );
    assert_eq!(LAYER_W_ONLY_GRAD_PLAN.backward_calls("matmul_grad_rhs"), 1);
    assert!(LAYER_W_ONLY_GRAD_PLAN.eliminated.contains(&"x"));
    // The gradient for `w` alone equals the `w` part of the full gradient.
    let x = array![[0.1, 0.2, -0.3], [0.4, -0.5, 0.6]];
    let w = array![[0.3, -0.1], [0.2, 0.5], [-0.4, 0.1]];
    let (_, (_, dw_full)) = layer_grad(&x, &w);
    let (_, (dw,)) = layer_w_only_grad(&x, &w);
    assert_eq!(dw, dw_full);
}

#[test]
fn sum_seed_stays_symbolic_through_matmul() {
    // d/dB sum(A·B) needs only A's column sums: no GEMM, no filled array. The gradients are
    // outer products of row or column sums, written out once as the returned arrays.
    let plan = MATMUL_SUM_GRAD_PLAN;
    for line in [
        "d_a = outer_dense(filled_matmul_grad_lhs(",
        "d_b = outer_dense(filled_matmul_grad_rhs(",
    ] {
        assert!(plan.backward.iter().any(|l| l.starts_with(line)), "{plan}");
    }
    assert_eq!(plan.backward_calls("matmul_grad"), 0, "{plan}");
    assert_eq!(plan.backward_calls("sum_grad"), 0, "{plan}");
    let a = array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]];
    let b = array![[1.0, -1.0, 0.5], [2.0, 0.0, -2.0]];
    let (_, (da, db)) = matmul_sum_grad(&a, &b);
    // Every row of dA is the row sums of B; every column of dB the column sums of A.
    assert_eq!(da, array![[0.5, 0.0], [0.5, 0.0], [0.5, 0.0]]);
    assert_eq!(db, array![[9.0, 9.0, 9.0], [12.0, 12.0, 12.0]]);
}

#[test]
fn unused_values_get_no_adjoint_and_are_not_kept() {
    let plan = TWO_LAYERS_GRAD_PLAN;
    assert_eq!(plan.backward_calls("sin_grad"), 0, "{plan}");
    assert!(
        !plan
            .backward
            .iter()
            .any(|l| l.starts_with("d_x ") || l.starts_with("d_w2 ")),
        "{plan}"
    );
    // The seed reaches `h` as an outer product, which exp's backward reads element by element.
    assert_eq!(plan.backward_calls("filled_matmul_grad_lhs"), 1, "{plan}");
    assert_eq!(plan.backward_calls("outer_chain1"), 1, "{plan}");
    assert_eq!(plan.backward_calls("matmul_grad_rhs"), 1, "{plan}");
    assert!(plan.eliminated.iter().any(|v| v.starts_with("_unused")), "{plan}");
    assert!(
        plan.eliminated.contains(&"x") && plan.eliminated.contains(&"w2"),
        "{plan}"
    );
}

#[test]
fn liveness_keeps_only_what_backward_reads() {
    let plan = ELEMENTWISE_GRAD_PLAN;
    assert_eq!(plan.saved.len(), 1, "{plan}");
    assert!(plan.saved[0].starts_with("b_"), "{plan}");
    let x = array![0.1, 0.2, 0.3];
    let (_, ctx) = elementwise_forward(&x, &x);
    assert_eq!(ctx.held_bytes(), 3 * std::mem::size_of::<f64>());
}

#[test]
fn generated_source_is_inspectable() {
    let source = layer_grad_source();
    assert!(source.contains("fn layer_forward"));
    assert!(source.contains("fn layer_backward"));
    assert!(source.contains("kernels::matmul::matmul_grad_rhs"));
    assert!(!layer_w_only_grad_source().contains("matmul_grad_lhs"));
}

/// For every elementwise op, the value the generated backward reads (input or output)
/// is the one the runtime's kernel table declares (`kernels::unary::*_SAVES`).
#[test]
fn unary_rules_read_what_the_kernels_declare() {
    use autodiff::runtime::kernels::unary::{self, Saves};
    macro_rules! case {
        ($($op:ident => $saves:expr),* $(,)?) => {$({
            // Without the seed algebra, which would fuse the step into the seed's pass, and
            // with every residual as computed (relu's would otherwise be its sign bits).
            #[differentiate(opt(seed = false), save = "all")]
            fn $op(x: &Array1<f64>) -> f64 {
                x.$op().sum()
            }
            let plan = paste_plan!($op);
            let line = plan.backward.iter().find(|l| l.contains(concat!(stringify!($op), "_grad("))).unwrap_or_else(|| panic!("{plan}"));
            let reads_input = line.trim_end_matches(')').ends_with(", x");
            let expected = $saves;
            assert_eq!(reads_input, expected == Saves::Input, "{}: {line}", stringify!($op));
        })*};
    }
    macro_rules! paste_plan {
        (exp) => {
            EXP_GRAD_PLAN
        };
        (ln) => {
            LN_GRAD_PLAN
        };
        (sqrt) => {
            SQRT_GRAD_PLAN
        };
        (tanh) => {
            TANH_GRAD_PLAN
        };
        (sin) => {
            SIN_GRAD_PLAN
        };
        (cos) => {
            COS_GRAD_PLAN
        };
        (abs) => {
            ABS_GRAD_PLAN
        };
        (recip) => {
            RECIP_GRAD_PLAN
        };
        (square) => {
            SQUARE_GRAD_PLAN
        };
        (relu) => {
            RELU_GRAD_PLAN
        };
        (sigmoid) => {
            SIGMOID_GRAD_PLAN
        };
    }
    case! {
        exp => unary::EXP_SAVES, ln => unary::LN_SAVES, sqrt => unary::SQRT_SAVES, tanh => unary::TANH_SAVES,
        sin => unary::SIN_SAVES, cos => unary::COS_SAVES, abs => unary::ABS_SAVES, recip => unary::RECIP_SAVES,
        square => unary::SQUARE_SAVES, relu => unary::RELU_SAVES, sigmoid => unary::SIGMOID_SAVES,
    }
}

#[differentiate]
fn elementwise_chain(x: &Array1<f64>, w: &Array1<f64>) -> f64 {
    let h = (x * w).tanh().exp().mapv(|v| v * v + 1.0).ln();
    h.sum()
}

#[test]
fn elementwise_backward_steps_are_fused() {
    let plan = ELEMENTWISE_CHAIN_GRAD_PLAN;
    // tanh, exp, mapv and ln run backward as one pass, not four, starting from the seed.
    assert_eq!(plan.backward_calls("fill_chain4"), 1, "{plan}");
    for kernel in ["tanh_grad", "exp_grad", "map_grad", "ln_grad"] {
        assert_eq!(plan.backward_calls(kernel), 0, "{plan}");
    }
    let x = array![0.1, -0.4, 0.7];
    let w = array![1.5, 0.3, -0.8];
    autodiff::check!(elementwise_chain, &x, &w);
}

#[differentiate]
fn fused_mapv(x: &Array1<f64>) -> f64 {
    let a = x.exp().mapv(|v| 0.75 - v);
    let b = x.mapv(|v| v / (1.0 + v * v)).tanh();
    let c = x.square().mapv(|v| v.powi(3).cos());
    a.sum() + b.sum() + c.sum()
}

#[test]
fn fused_mapv_closures_compile_and_are_exact() {
    // Found by the random-function property test: fused `mapv` derivatives must type-check.
    assert_eq!(
        FUSED_MAPV_GRAD_PLAN.backward_calls("fill_chain2"),
        3,
        "{FUSED_MAPV_GRAD_PLAN}"
    );
    autodiff::check!(fused_mapv, &array![0.3, -0.2, 0.9]);
}

#[differentiate]
fn mlp_sum(x: &Array2<f64>, w1: &Array2<f64>, b1: &Array1<f64>, w2: &Array2<f64>, b2: &Array1<f64>) -> f64 {
    (relu(&(x.dot(w1) + b1)).dot(w2) + b2).sum()
}

#[differentiate]
fn fills_through_everything(x: &Array2<f64>, s: f64) -> f64 {
    let y = (-(x * s + 1.0) - s).t().to_owned();
    y.mean_axis(Axis(0)).unwrap().sum_axis(Axis(0)).sum() + mean(x)
}

#[test]
fn the_sum_seed_stays_symbolic_through_broadcasting_adds() {
    // `+ b2` passes the constant adjoint on (b2 receives it times the batch size), so the
    // last layer's products use row/column sums instead of GEMMs (relu's output's column
    // sums, taken in forward), and relu's backward reads the outer product they make
    // element by element, beside its sign bits.
    let plan = MLP_SUM_GRAD_PLAN;
    assert_eq!(plan.backward_calls("filled_matmul_grad_lhs"), 1, "{plan}");
    assert_eq!(plan.backward_calls("outer_masked"), 1, "{plan}");
    assert!(
        plan.backward
            .iter()
            .any(|l| l.starts_with("d_w2 = outer_dense(summed_matmul_grad_rhs(v7_colsum")),
        "{plan}"
    );
    assert!(
        !plan.backward.iter().any(|l| l.starts_with("d_w2 = matmul_grad_rhs(")),
        "{plan}"
    );
    assert!(
        plan.backward
            .iter()
            .any(|l| l.starts_with("d_b2 = sum_grad(add_grad_fill(")),
        "{plan}"
    );
    let mut r = 0.1;
    let mut next = |shape: (usize, usize)| {
        Array2::from_shape_simple_fn(shape, || {
            r = (r * 7.3 + 0.31) % 2.0;
            r - 1.0
        })
    };
    let (x, w1, w2) = (next((5, 4)), next((4, 6)), next((6, 3)));
    let (b1, b2) = (next((1, 6)).row(0).to_owned(), next((1, 3)).row(0).to_owned());
    autodiff::check!(mlp_sum, &x, &w1, &b1, &w2, &b2);
    let plan = FILLS_THROUGH_EVERYTHING_GRAD_PLAN;
    // Negation, scalar ops, transpose and both axis reductions pass the fill on; only the
    // two contributions to the parameter x are materialised.
    assert_eq!(plan.backward_calls("sum_grad"), 2, "{plan}");

    autodiff::check!(fills_through_everything, &x, 0.7);
}

#[differentiate(wrt(w, u))]
fn rnn_weights(h0: &Array2<f64>, w: &Array2<f64>, u: &Array2<f64>, xs: &[Array2<f64>]) -> f64 {
    let mut h = h0.to_owned();
    for x in xs {
        h = (h.dot(w) + x.dot(u)).tanh();
    }
    h.sum()
}

#[differentiate(wrt(u), name = rnn_u)]
fn rnn_input_weights(h0: &Array2<f64>, w: &Array2<f64>, u: &Array2<f64>, xs: &[Array2<f64>]) -> f64 {
    let mut h = h0.to_owned();
    for x in xs {
        h = (h.dot(w) + x.dot(u)).tanh();
    }
    h.sum()
}

/// Inside a loop body, activity decides per adjoint as it does in straight-line code: the
/// inputs' products are never computed, and the hidden state's adjoint is computed only
/// because earlier iterations' weights need it.
#[test]
fn loop_bodies_eliminate_dead_gradients() {
    let plan = RNN_WEIGHTS_GRAD_PLAN;
    assert!(!plan.backward.iter().any(|l| l.contains("d_xs")), "{plan}");
    // h·W and x·U: W and U get their products; h gets one to carry on; x none.
    assert_eq!(plan.backward_calls("matmul_grad_rhs"), 2, "{plan}");
    assert_eq!(plan.backward_calls("matmul_grad_lhs"), 1, "{plan}");
    let plan = RNN_U_GRAD_PLAN;
    assert_eq!(plan.backward_calls("matmul_grad_rhs"), 1, "{plan}");
    assert_eq!(plan.backward_calls("matmul_grad_lhs"), 1, "{plan}");
    assert!(!plan.backward.iter().any(|l| l.contains("d_w ")), "{plan}");
}

#[differentiate]
fn matmul_chain(a: &Array2<f64>, b: &Array2<f64>, c: &Array2<f64>, d: &Array2<f64>) -> f64 {
    a.dot(b).dot(c).dot(d).sum()
}

/// A test matrix of `shape` with distinct, irregular entries.
fn irregular(shape: (usize, usize), seed: f64) -> Array2<f64> {
    Array2::from_shape_fn(shape, |(i, j)| ((i * 7 + j * 3) as f64 * 0.37 + seed).sin())
}

#[test]
fn the_sum_seed_runs_a_matmul_chain_in_matrix_vector_products() {
    // Through every product the adjoint stays an outer product u·vᵀ: no GEMM in backward,
    // and the vectors pass through the factors of A·B, so forward keeps only the column sums
    // of A·B·C, which D's gradient reads (the fill's rule), taken where A·B·C is made.
    let plan = MATMUL_CHAIN_GRAD_PLAN;
    assert_eq!(plan.backward_calls("matmul_grad"), 0, "{plan}");
    assert_eq!(plan.backward_calls("outer_dense"), 4, "{plan}");
    assert_eq!(plan.saved, ["v5 (column sums)"], "{plan}");
    assert!(
        plan.backward.iter().any(|l| l.contains("[a·b]")),
        "C's vector runs through a and b: {plan}"
    );
    let (a, b, c, d) = (
        irregular((3, 4), 0.1),
        irregular((4, 5), 0.2),
        irregular((5, 2), 0.3),
        irregular((2, 3), 0.4),
    );
    let (_, ctx) = matmul_chain_forward(&a, &b, &c, &d);
    assert_eq!(ctx.held_bytes(), 2 * std::mem::size_of::<f64>());
    autodiff::check!(matmul_chain, &a, &b, &c, &d);
}

/// Every op that keeps an outer-product adjoint: transpose, negation, scaling from either
/// side, a float added or subtracted on either side, broadcast sums with a vector, a row
/// and a matrix of the same shape, and products on both sides.
#[differentiate]
fn outer_rules(
    x: &Array2<f64>,
    w: &Array2<f64>,
    b: &Array1<f64>,
    row: &Array2<f64>,
    same: &Array2<f64>,
    v: &Array2<f64>,
    s: f64,
) -> f64 {
    let p = -x.dot(w); // m×n
    let q = p.t().to_owned() * s; // n×m
    let q = s * q + b; // b: m, broadcast along rows
    let q = q - row; // row: 1×m
    let q = q + same; // n×m
    let q = (q + 0.5) - s;
    let q = 2.0 - q;
    let q = 1.5 + q;
    q.dot(v).sum()
}

#[test]
fn outer_product_adjoints_pass_through_every_rule_that_keeps_them() {
    let plan = OUTER_RULES_GRAD_PLAN;
    assert_eq!(plan.backward_calls("matmul_grad"), 0, "{plan}");
    assert_eq!(plan.backward_calls("sum_grad"), 0, "{plan}");
    for kernel in [
        "outer_transpose_grad",
        "outer_neg_grad",
        "outer_scale_grad",
        "outer_sub_grad_rhs",
    ] {
        assert!(plan.backward.iter().any(|l| l.contains(kernel)), "{kernel}: {plan}");
    }
    let (m, n, k) = (3, 4, 2);
    let x = irregular((m, 5), 0.5);
    let w = irregular((5, n), 0.6);
    let b = irregular((1, m), 0.7).row(0).to_owned();
    let row = irregular((1, m), 0.8);
    let same = irregular((n, m), 0.9);
    let v = irregular((m, k), 1.0);
    autodiff::check!(outer_rules, &x, &w, &b, &row, &same, &v, 0.7);
}

/// An outer-product adjoint meets a value used twice, an elementwise chain and a column
/// broadcast: it is written out where the form cannot go on, and nowhere earlier.
#[differentiate]
fn outer_meets_dense(x: &Array2<f64>, w: &Array2<f64>, col: &Array2<f64>, v: &Array2<f64>) -> f64 {
    let h = x.dot(w) + col; // col: m×1
    let t = h.tanh().exp();
    let y = &t + &t.mapv(|e| e * 0.5);
    (y.dot(v) * 2.0).sum()
}

#[test]
fn outer_product_adjoints_are_written_out_where_they_must_be() {
    let plan = OUTER_MEETS_DENSE_GRAD_PLAN;
    assert_eq!(plan.backward_calls("matmul_grad"), 2, "{plan}");
    let x = irregular((3, 4), 1.1);
    let w = irregular((4, 5), 1.2);
    let col = irregular((3, 1), 1.3);
    let v = irregular((5, 2), 1.4);
    autodiff::check!(outer_meets_dense, &x, &w, &col, &v);
}

#[differentiate(wrt(w))]
fn relu_sum(x: &Array2<f64>, w: &Array2<f64>) -> f64 {
    relu(&x.dot(w)).sum()
}

#[differentiate(wrt(h0, w, target))]
fn relu_in_loop(h0: &Array2<f64>, w: &Array2<f64>, v: &Array2<f64>, target: &Array2<f64>) -> f64 {
    let mut h = h0.to_owned();
    for _ in 0..3 {
        h = relu(&h.dot(w)).dot(v);
    }
    mse(&h, target)
}

#[test]
fn relu_output_read_only_by_its_own_backward_is_kept_as_bits() {
    let plan = RELU_SUM_GRAD_PLAN;
    assert!(plan.saved.iter().any(|s| s.ends_with("(sign bits)")), "{plan}");
    let x = irregular((8, 5), 1.5);
    let w = irregular((5, 16), 1.6);
    let (_, ctx) = relu_sum_forward(&x, &w);
    assert_eq!(
        ctx.held_bytes(),
        8 * 16 / 8,
        "a bit for each of 128 elements, not 1 KB of floats"
    );
    autodiff::check!(relu_sum, &x, &w);
}

/// The MLP of `mlp_sum` with a dense seed: the last product's rule for `w2` reads the
/// relu output as a matrix.
#[differentiate]
fn mlp_mse(x: &Array2<f64>, w1: &Array2<f64>, w2: &Array2<f64>, target: &Array2<f64>) -> f64 {
    mse(&relu(&x.dot(w1)).dot(w2), target)
}

#[test]
fn relu_output_read_by_a_product_is_kept_whole() {
    // The relu output feeds the last layer's product, whose backward reads it: a mask would
    // only add to it.
    assert!(
        !MLP_MSE_GRAD_PLAN.saved.iter().any(|s| s.contains("sign")),
        "{MLP_MSE_GRAD_PLAN}"
    );
    assert!(MLP_MSE_GRAD_PLAN.saved.contains(&"v5"), "{MLP_MSE_GRAD_PLAN}");
}

#[test]
fn sign_masks_work_in_loop_bodies() {
    // `v` is not differentiated: the relu output's only reader is relu's own rule.
    let plan = RELU_IN_LOOP_GRAD_PLAN;
    assert!(plan.to_string().contains("sign_mask"), "{plan}");
    assert!(plan.to_string().contains("relu_grad_masked"), "{plan}");
    let h0 = irregular((4, 6), 1.7);
    let w = irregular((6, 6), 1.8) * 0.5;
    let v = irregular((6, 6), 2.0) * 0.5;
    let target = irregular((4, 6), 1.9);
    autodiff::check!(relu_in_loop, &h0, &w, &v, &target);
}

#[differentiate(name = norm_all)]
#[differentiate(wrt(gamma, beta), name = norm_params)]
#[differentiate(wrt(gamma), name = norm_gamma)]
#[differentiate(wrt(beta), name = norm_beta)]
#[differentiate(wrt(x), name = norm_x)]
#[differentiate(wrt(x, beta), name = norm_x_beta)]
fn norm(x: &Array4<f64>, gamma: &Array1<f64>, beta: &Array1<f64>) -> f64 {
    batch_norm(x, gamma, beta, 1e-5).mapv(|v| v * v).sum()
}

#[test]
fn batch_norms_adjoints_share_one_pass_for_their_sums() {
    // Each plan: the per-channel sums' pass, the input's adjoint's pass, beta's adjoint from
    // the adjoint alone, and whether forward keeps the statistics.
    for (plan, sums, grad_input, beta_alone, stats) in [
        (NORM_ALL_GRAD_PLAN, 1, 1, 0, true),
        (NORM_PARAMS_GRAD_PLAN, 1, 0, 0, true),
        (NORM_GAMMA_GRAD_PLAN, 1, 0, 0, true),
        (NORM_BETA_GRAD_PLAN, 0, 0, 1, false),
        (NORM_X_GRAD_PLAN, 1, 1, 0, true),
        (NORM_X_BETA_GRAD_PLAN, 1, 1, 0, true),
    ] {
        assert_eq!(plan.backward_calls("batch_norm_sums"), sums, "{plan}");
        assert_eq!(plan.backward_calls("batch_norm_grad_input"), grad_input, "{plan}");
        assert_eq!(plan.backward_calls("batch_norm_grad_beta_direct"), beta_alone, "{plan}");
        assert_eq!(plan.saved.contains(&"v3 (stats)"), stats, "{plan}");
        let keeping = plan.forward.iter().any(|line| line.contains("batch_norm_keeping("));
        assert_eq!(keeping, stats, "{plan}");
    }
    // beta's adjoint alone reads neither x (a parameter here) nor the statistics.
    assert!(!NORM_BETA_GRAD_PLAN.backward.iter().any(|l| l.contains("stats")));
    let x = Array4::from_shape_fn((2, 3, 4, 5), |(n, c, i, j)| {
        ((n * 7 + c * 5 + i * 3 + j) as f64 * 0.3).sin()
    });
    let (gamma, beta) = (array![0.5, 1.5, -1.0], array![0.1, 0.2, 0.3]);
    let (_, (dx, dgamma, dbeta)) = norm_all_grad(&x, &gamma, &beta);
    assert_eq!(norm_params_grad(&x, &gamma, &beta).1, (dgamma.clone(), dbeta.clone()));
    assert_eq!(norm_gamma_grad(&x, &gamma, &beta).1, (dgamma,));
    assert_eq!(norm_beta_grad(&x, &gamma, &beta).1, (dbeta.clone(),));
    assert_eq!(norm_x_grad(&x, &gamma, &beta).1, (dx.clone(),));
    assert_eq!(norm_x_beta_grad(&x, &gamma, &beta).1, (dx, dbeta));
}
