//! The cases of the study, each written ONCE as an ordinary generic function
//! with `#[differentiate]`, plus their shapes and seeded random inputs: the four
//! published ones, and two programs with loops over slices (a self-attention
//! block over a batch of sequences, a recurrent network over 50 steps).
//!
//! Every function carries two expansions of the macro:
//! - the plain `#[differentiate]`: gradients w.r.t. every array input, data
//!   included, as in the published script (prefix = the function's name; for
//!   the two programs, `wrt(..)` lists every input but the regression target,
//!   which is data no model differentiates);
//! - `#[differentiate(wrt(..), name = <case>_params)]`: gradients w.r.t. the
//!   parameters only, the data constant, as a model is trained. There the
//!   macro's dead-gradient elimination shows (no `dx`), and the tape prunes the
//!   same way because the data enters it as a `constant`.
//!
//! Six more expansions per case, with respect to the parameters, switch the static code's
//! analyses off for the ablation (`ablation.rs`): `<case>_no_fusion`, `_no_liveness`,
//! `_no_reuse`, `_no_seed`, `_no_dge` (dead-gradient elimination) and `_naive` (all off);
//! two more change the memory plan's policy (`save = "all"`, `save = "min"`: `_save_all`,
//! `_save_min`; the others are `save = "auto"`, the default), and two keep its array
//! residuals in 16 bits (`residuals = "bf16"`: `_bf16`; `residuals = "f16"`: `_f16`, for the
//! residual-precision rows of the stability study, `stability.rs`). The same four policies
//! are expanded again with respect to every input (`<case>_all_inputs_save_all`,
//! `_all_inputs_save_min`, `_all_inputs_bf16`, `_all_inputs_f16`), so that the ablation and
//! the residual-precision rows cover both wrt modes; simple_quadratic, whose only input is
//! its parameter, uses its parameter expansions for both. The four cases whose loss is a
//! plain `sum` have a dense-seed twin (`<case>_dense`, `sum(out²)` or `x²·x`, where the seed
//! algebra has nothing to carry), with and without the seed algebra, so that the ablation
//! shows what it buys on an ordinary loss beside what it buys on the published ones.
//!
//! From each expansion the macro emits `p_grad`, `p_forward` + `p_backward`
//! (the two halves, used to time backward alone), `p_on_tape` (the same source
//! recorded on the runtime's tape) and `P_GRAD_PLAN`. Nothing here is
//! specialised for the study: these are the functions a user would write.
//!
//! This file only depends on `autodiff` and `rand`, so the criterion bench
//! (`benches/study_cases.rs`) includes it with `#[path]` instead of copying it.

use autodiff::ndarray::{Array, Array1, Array2, Array4, ArrayD, Axis, Dimension, Ix3, ShapeBuilder};
use autodiff::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `sum(x²)`: the smallest case, where any per-call overhead shows.
/// `x` is its only input, so "parameters only" is the same as "everything".
#[differentiate]
#[differentiate(wrt(x), name = simple_quadratic_params)]
#[differentiate(wrt(x), opt(fusion = false), name = simple_quadratic_no_fusion)]
#[differentiate(wrt(x), opt(liveness = false), name = simple_quadratic_no_liveness)]
#[differentiate(wrt(x), opt(reuse = false), name = simple_quadratic_no_reuse)]
#[differentiate(wrt(x), opt(seed = false), name = simple_quadratic_no_seed)]
#[differentiate(wrt(x), opt(dead_gradients = false), name = simple_quadratic_no_dge)]
#[differentiate(wrt(x), opt(fusion = false, liveness = false, reuse = false, seed = false, dead_gradients = false), name = simple_quadratic_naive)]
#[differentiate(wrt(x), save = "all", name = simple_quadratic_save_all)]
#[differentiate(wrt(x), save = "min", name = simple_quadratic_save_min)]
#[differentiate(wrt(x), residuals = "bf16", name = simple_quadratic_bf16)]
#[differentiate(wrt(x), residuals = "f16", name = simple_quadratic_f16)]
pub fn simple_quadratic<F: Float>(x: &Array1<F>) -> F {
    (x * x).sum()
}

/// simple_quadratic's dense-seed twin, `x²·x`: the product's adjoint reaches `x²` as an array
/// (`g·x`), so no fill starts a fused pass. With the seed algebra and without, for the ablation.
#[differentiate(wrt(x), name = simple_quadratic_dense)]
#[differentiate(wrt(x), opt(seed = false), name = simple_quadratic_dense_no_seed)]
pub fn simple_quadratic_dense<F: Float>(x: &Array1<F>) -> F {
    (x * x).dot(x)
}

/// `sum(relu(x·w1 + b1)·w2 + b2)`: a two-layer perceptron on a batch.
#[differentiate]
#[differentiate(wrt(w1, b1, w2, b2), name = small_mlp_params)]
#[differentiate(wrt(w1, b1, w2, b2), opt(fusion = false), name = small_mlp_no_fusion)]
#[differentiate(wrt(w1, b1, w2, b2), opt(liveness = false), name = small_mlp_no_liveness)]
#[differentiate(wrt(w1, b1, w2, b2), opt(reuse = false), name = small_mlp_no_reuse)]
#[differentiate(wrt(w1, b1, w2, b2), opt(seed = false), name = small_mlp_no_seed)]
#[differentiate(wrt(w1, b1, w2, b2), opt(dead_gradients = false), name = small_mlp_no_dge)]
#[differentiate(wrt(w1, b1, w2, b2), opt(fusion = false, liveness = false, reuse = false, seed = false, dead_gradients = false), name = small_mlp_naive)]
#[differentiate(wrt(w1, b1, w2, b2), save = "all", name = small_mlp_save_all)]
#[differentiate(wrt(w1, b1, w2, b2), save = "min", name = small_mlp_save_min)]
#[differentiate(wrt(w1, b1, w2, b2), residuals = "bf16", name = small_mlp_bf16)]
#[differentiate(wrt(w1, b1, w2, b2), residuals = "f16", name = small_mlp_f16)]
#[differentiate(save = "all", name = small_mlp_all_inputs_save_all)]
#[differentiate(save = "min", name = small_mlp_all_inputs_save_min)]
#[differentiate(residuals = "bf16", name = small_mlp_all_inputs_bf16)]
#[differentiate(residuals = "f16", name = small_mlp_all_inputs_f16)]
pub fn small_mlp<F: Float>(x: &Array2<F>, w1: &Array2<F>, b1: &Array1<F>, w2: &Array2<F>, b2: &Array1<F>) -> F {
    (relu(&(x.dot(w1) + b1)).dot(w2) + b2).sum()
}

/// small_mlp's dense-seed twin, `sum(out²)`: the output's adjoint is `2·out`, an array, so the
/// seed algebra has nothing to carry. With it and without, for the ablation.
#[differentiate(wrt(w1, b1, w2, b2), name = small_mlp_dense)]
#[differentiate(wrt(w1, b1, w2, b2), opt(seed = false), name = small_mlp_dense_no_seed)]
pub fn small_mlp_dense<F: Float>(x: &Array2<F>, w1: &Array2<F>, b1: &Array1<F>, w2: &Array2<F>, b2: &Array1<F>) -> F {
    let out = relu(&(x.dot(w1) + b1)).dot(w2) + b2;
    (&out * &out).sum()
}

/// `sum(A·B·C·D)`: three matrix products, where the kernels dominate.
#[differentiate]
#[differentiate(wrt(b, c, d), name = matmul_chain_params)]
#[differentiate(wrt(b, c, d), opt(fusion = false), name = matmul_chain_no_fusion)]
#[differentiate(wrt(b, c, d), opt(liveness = false), name = matmul_chain_no_liveness)]
#[differentiate(wrt(b, c, d), opt(reuse = false), name = matmul_chain_no_reuse)]
#[differentiate(wrt(b, c, d), opt(seed = false), name = matmul_chain_no_seed)]
#[differentiate(wrt(b, c, d), opt(dead_gradients = false), name = matmul_chain_no_dge)]
#[differentiate(wrt(b, c, d), opt(fusion = false, liveness = false, reuse = false, seed = false, dead_gradients = false), name = matmul_chain_naive)]
#[differentiate(wrt(b, c, d), save = "all", name = matmul_chain_save_all)]
#[differentiate(wrt(b, c, d), save = "min", name = matmul_chain_save_min)]
#[differentiate(wrt(b, c, d), residuals = "bf16", name = matmul_chain_bf16)]
#[differentiate(wrt(b, c, d), residuals = "f16", name = matmul_chain_f16)]
#[differentiate(save = "all", name = matmul_chain_all_inputs_save_all)]
#[differentiate(save = "min", name = matmul_chain_all_inputs_save_min)]
#[differentiate(residuals = "bf16", name = matmul_chain_all_inputs_bf16)]
#[differentiate(residuals = "f16", name = matmul_chain_all_inputs_f16)]
pub fn matmul_chain<F: Float>(a: &Array2<F>, b: &Array2<F>, c: &Array2<F>, d: &Array2<F>) -> F {
    a.dot(b).dot(c).dot(d).sum()
}

/// matmul_chain's dense-seed twin, `sum(out²)` (see [`small_mlp_dense`]).
#[differentiate(wrt(b, c, d), name = matmul_chain_dense)]
#[differentiate(wrt(b, c, d), opt(seed = false), name = matmul_chain_dense_no_seed)]
pub fn matmul_chain_dense<F: Float>(a: &Array2<F>, b: &Array2<F>, c: &Array2<F>, d: &Array2<F>) -> F {
    let out = a.dot(b).dot(c).dot(d);
    (&out * &out).sum()
}

/// `sum(relu(batch_norm(conv2d(x, w, bias))))`: a convolutional block, stride 1,
/// padding 1, training-mode batch norm (eps 1e-5) over the output channels.
#[differentiate]
#[differentiate(wrt(w, bias, gamma, beta), name = conv2d_block_params)]
#[differentiate(wrt(w, bias, gamma, beta), opt(fusion = false), name = conv2d_block_no_fusion)]
#[differentiate(wrt(w, bias, gamma, beta), opt(liveness = false), name = conv2d_block_no_liveness)]
#[differentiate(wrt(w, bias, gamma, beta), opt(reuse = false), name = conv2d_block_no_reuse)]
#[differentiate(wrt(w, bias, gamma, beta), opt(seed = false), name = conv2d_block_no_seed)]
#[differentiate(wrt(w, bias, gamma, beta), opt(dead_gradients = false), name = conv2d_block_no_dge)]
#[differentiate(wrt(w, bias, gamma, beta), opt(fusion = false, liveness = false, reuse = false, seed = false, dead_gradients = false), name = conv2d_block_naive)]
#[differentiate(wrt(w, bias, gamma, beta), save = "all", name = conv2d_block_save_all)]
#[differentiate(wrt(w, bias, gamma, beta), save = "min", name = conv2d_block_save_min)]
#[differentiate(wrt(w, bias, gamma, beta), residuals = "bf16", name = conv2d_block_bf16)]
#[differentiate(wrt(w, bias, gamma, beta), residuals = "f16", name = conv2d_block_f16)]
#[differentiate(save = "all", name = conv2d_block_all_inputs_save_all)]
#[differentiate(save = "min", name = conv2d_block_all_inputs_save_min)]
#[differentiate(residuals = "bf16", name = conv2d_block_all_inputs_bf16)]
#[differentiate(residuals = "f16", name = conv2d_block_all_inputs_f16)]
pub fn conv2d_block<F: Float>(
    x: &Array4<F>,
    w: &Array4<F>,
    bias: &Array1<F>,
    gamma: &Array1<F>,
    beta: &Array1<F>,
) -> F {
    relu(&batch_norm(&conv2d(x, w, Some(bias), 1, 1), gamma, beta, F::of(1e-5))).sum()
}

/// conv2d_block's dense-seed twin, `sum(out²)` (see [`small_mlp_dense`]).
#[differentiate(wrt(w, bias, gamma, beta), name = conv2d_block_dense)]
#[differentiate(wrt(w, bias, gamma, beta), opt(seed = false), name = conv2d_block_dense_no_seed)]
pub fn conv2d_block_dense<F: Float>(
    x: &Array4<F>,
    w: &Array4<F>,
    bias: &Array1<F>,
    gamma: &Array1<F>,
    beta: &Array1<F>,
) -> F {
    let out = relu(&batch_norm(&conv2d(x, w, Some(bias), 1, 1), gamma, beta, F::of(1e-5)));
    (&out * &out).sum()
}

/// Single-head self-attention over a batch of sequences, each `x` seq×width:
/// `Q, K, V = x·Wq, x·Wk, x·Wv`, `A = softmax(Q·Kᵀ/√d)` along rows,
/// `O = (A·V)·Wo`, loss `Σ_sequences mse(O, target)`. `d` is the width of Q.
#[differentiate(wrt(xs, wq, wk, wv, wo))]
#[differentiate(wrt(wq, wk, wv, wo), name = attention_params)]
#[differentiate(wrt(wq, wk, wv, wo), opt(fusion = false), name = attention_no_fusion)]
#[differentiate(wrt(wq, wk, wv, wo), opt(liveness = false), name = attention_no_liveness)]
#[differentiate(wrt(wq, wk, wv, wo), opt(reuse = false), name = attention_no_reuse)]
#[differentiate(wrt(wq, wk, wv, wo), opt(seed = false), name = attention_no_seed)]
#[differentiate(wrt(wq, wk, wv, wo), opt(dead_gradients = false), name = attention_no_dge)]
#[differentiate(wrt(wq, wk, wv, wo), opt(fusion = false, liveness = false, reuse = false, seed = false, dead_gradients = false), name = attention_naive)]
#[differentiate(wrt(wq, wk, wv, wo), save = "all", name = attention_save_all)]
#[differentiate(wrt(wq, wk, wv, wo), save = "min", name = attention_save_min)]
#[differentiate(wrt(wq, wk, wv, wo), residuals = "bf16", name = attention_bf16)]
#[differentiate(wrt(wq, wk, wv, wo), residuals = "f16", name = attention_f16)]
#[differentiate(wrt(xs, wq, wk, wv, wo), save = "all", name = attention_all_inputs_save_all)]
#[differentiate(wrt(xs, wq, wk, wv, wo), save = "min", name = attention_all_inputs_save_min)]
#[differentiate(wrt(xs, wq, wk, wv, wo), residuals = "bf16", name = attention_all_inputs_bf16)]
#[differentiate(wrt(xs, wq, wk, wv, wo), residuals = "f16", name = attention_all_inputs_f16)]
pub fn attention<F: Float>(
    xs: &[Array2<F>],
    wq: &Array2<F>,
    wk: &Array2<F>,
    wv: &Array2<F>,
    wo: &Array2<F>,
    targets: &[Array2<F>],
) -> F {
    let scale = F::one() / F::of_usize(wq.ncols()).sqrt();
    // The first sequence starts the sum: a carried float of a generic function
    // cannot start as a constant yet (`F::zero()` fails to compile in the
    // generated loop, `0.0` in this function).
    let a = softmax(&(xs[0].dot(wq).dot(&xs[0].dot(wk).t()) * scale), Axis(1));
    let mut loss = mse(&a.dot(&xs[0].dot(wv)).dot(wo), &targets[0]);
    for t in 1..xs.len() {
        let a = softmax(&(xs[t].dot(wq).dot(&xs[t].dot(wk).t()) * scale), Axis(1));
        loss += mse(&a.dot(&xs[t].dot(wv)).dot(wo), &targets[t]);
    }
    loss
}

/// A recurrent network: `h ← tanh(h·W + x_t·U)` over the steps of `xs` (each
/// batch×input), from `h0`; loss `mse(h_T, target)`.
#[differentiate(wrt(h0, w, u, xs))]
#[differentiate(wrt(w, u), name = rnn_params)]
#[differentiate(wrt(w, u), opt(fusion = false), name = rnn_no_fusion)]
#[differentiate(wrt(w, u), opt(liveness = false), name = rnn_no_liveness)]
#[differentiate(wrt(w, u), opt(reuse = false), name = rnn_no_reuse)]
#[differentiate(wrt(w, u), opt(seed = false), name = rnn_no_seed)]
#[differentiate(wrt(w, u), opt(dead_gradients = false), name = rnn_no_dge)]
#[differentiate(wrt(w, u), opt(fusion = false, liveness = false, reuse = false, seed = false, dead_gradients = false), name = rnn_naive)]
#[differentiate(wrt(w, u), save = "all", name = rnn_save_all)]
#[differentiate(wrt(w, u), save = "min", name = rnn_save_min)]
#[differentiate(wrt(w, u), residuals = "bf16", name = rnn_bf16)]
#[differentiate(wrt(w, u), residuals = "f16", name = rnn_f16)]
#[differentiate(wrt(h0, w, u, xs), save = "all", name = rnn_all_inputs_save_all)]
#[differentiate(wrt(h0, w, u, xs), save = "min", name = rnn_all_inputs_save_min)]
#[differentiate(wrt(h0, w, u, xs), residuals = "bf16", name = rnn_all_inputs_bf16)]
#[differentiate(wrt(h0, w, u, xs), residuals = "f16", name = rnn_all_inputs_f16)]
pub fn rnn<F: Float>(h0: &Array2<F>, w: &Array2<F>, u: &Array2<F>, xs: &[Array2<F>], target: &Array2<F>) -> F {
    let mut h = h0.to_owned();
    for x in xs {
        h = (h.dot(w) + x.dot(u)).tanh();
    }
    mse(&h, target)
}

/// The plans `#[differentiate]` made for every case, both wrt modes: what
/// it saves, which backward kernels it calls, which adjoints it eliminated.
pub fn plans() -> [autodiff::Plan; 12] {
    [
        SIMPLE_QUADRATIC_GRAD_PLAN,
        SIMPLE_QUADRATIC_PARAMS_GRAD_PLAN,
        SMALL_MLP_GRAD_PLAN,
        SMALL_MLP_PARAMS_GRAD_PLAN,
        MATMUL_CHAIN_GRAD_PLAN,
        MATMUL_CHAIN_PARAMS_GRAD_PLAN,
        CONV2D_BLOCK_GRAD_PLAN,
        CONV2D_BLOCK_PARAMS_GRAD_PLAN,
        ATTENTION_GRAD_PLAN,
        ATTENTION_PARAMS_GRAD_PLAN,
        RNN_GRAD_PLAN,
        RNN_PARAMS_GRAD_PLAN,
    ]
}

/// The cases: the four published ones in the published table's order, then
/// the two programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// [`simple_quadratic`].
    SimpleQuadratic,
    /// [`small_mlp`].
    SmallMlp,
    /// [`matmul_chain`].
    MatmulChain,
    /// [`conv2d_block`].
    Conv2d,
    /// [`attention`].
    Attention,
    /// [`rnn`].
    Rnn,
}

impl Case {
    /// Every case, in table order.
    pub const ALL: [Case; 6] = [
        Case::SimpleQuadratic,
        Case::SmallMlp,
        Case::MatmulChain,
        Case::Conv2d,
        Case::Attention,
        Case::Rnn,
    ];

    /// The name used on the command line, in the JSON and by the PyTorch script.
    pub fn name(self) -> &'static str {
        match self {
            Case::SimpleQuadratic => "simple_quadratic",
            Case::SmallMlp => "small_mlp",
            Case::MatmulChain => "matmul_chain",
            Case::Conv2d => "conv2d",
            Case::Attention => "attention",
            Case::Rnn => "rnn",
        }
    }

    /// The case with this command-line name.
    pub fn from_name(name: &str) -> Option<Case> {
        Case::ALL.into_iter().find(|case| case.name() == name.trim())
    }
}

/// Which inputs gradients are taken with respect to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wrt {
    /// Every input, data included (the published script).
    All,
    /// The parameters only; the data is a constant.
    Params,
}

impl Wrt {
    /// Both modes, published first.
    pub const BOTH: [Wrt; 2] = [Wrt::All, Wrt::Params];

    /// `"all"` or `"params"`, as in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Wrt::All => "all",
            Wrt::Params => "params",
        }
    }
}

/// The dimensions of one case. `--scale` multiplies the batch sizes (and, for
/// conv2d, the spatial size; for attention, the sequence length; for the RNN,
/// the number of steps); feature widths and channels, i.e. the parameter
/// shapes, stay as published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shapes {
    /// `x` of `n` elements.
    SimpleQuadratic { n: usize },
    /// `x` batch×inputs, `w1` inputs×hidden, `w2` hidden×outputs.
    SmallMlp {
        batch: usize,
        inputs: usize,
        hidden: usize,
        outputs: usize,
    },
    /// `A` m×k1, `B` k1×k2, `C` k2×k3, `D` k3×n.
    MatmulChain {
        m: usize,
        k1: usize,
        k2: usize,
        k3: usize,
        n: usize,
    },
    /// `x` batch×channels×size×size, `w` out_channels×channels×3×3.
    Conv2d {
        batch: usize,
        channels: usize,
        out_channels: usize,
        size: usize,
    },
    /// `batch` sequences `x` of seq×width; `Wq, Wk, Wv, Wo` width×width.
    Attention { batch: usize, seq: usize, width: usize },
    /// `steps` inputs `x_t` of batch×input; `h0` batch×hidden, `W` hidden×hidden, `U` input×hidden.
    Rnn {
        steps: usize,
        batch: usize,
        input: usize,
        hidden: usize,
    },
}

/// `value · scale`, rounded, at least `min`.
fn scaled(value: usize, scale: f64, min: usize) -> usize {
    ((value as f64 * scale).round() as usize).max(min)
}

impl Shapes {
    /// The published shapes, with batch sizes (and conv2d's spatial size,
    /// attention's sequence length, the RNN's steps) multiplied by `scale`.
    pub fn published(case: Case, scale: f64) -> Shapes {
        match case {
            Case::SimpleQuadratic => Shapes::SimpleQuadratic {
                n: scaled(1000, scale, 1),
            },
            Case::SmallMlp => Shapes::SmallMlp {
                batch: scaled(32, scale, 1),
                inputs: 784,
                hidden: 128,
                outputs: 10,
            },
            Case::MatmulChain => Shapes::MatmulChain {
                m: scaled(64, scale, 1),
                k1: 128,
                k2: 256,
                k3: 512,
                n: 128,
            },
            Case::Conv2d => Shapes::Conv2d {
                batch: scaled(8, scale, 1),
                channels: 64,
                out_channels: 64,
                size: scaled(56, scale, 3),
            },
            Case::Attention => Shapes::Attention {
                batch: scaled(4, scale, 1),
                seq: scaled(128, scale, 2),
                width: 256,
            },
            Case::Rnn => Shapes::Rnn {
                steps: scaled(50, scale, 2),
                batch: scaled(32, scale, 1),
                input: 256,
                hidden: 256,
            },
        }
    }

    /// Small shapes for finite differences (which call the function twice per
    /// input element): every dimension reduced, the structure kept.
    pub fn tiny(case: Case) -> Shapes {
        match case {
            Case::SimpleQuadratic => Shapes::SimpleQuadratic { n: 20 },
            Case::SmallMlp => Shapes::SmallMlp {
                batch: 4,
                inputs: 12,
                hidden: 8,
                outputs: 3,
            },
            Case::MatmulChain => Shapes::MatmulChain {
                m: 3,
                k1: 4,
                k2: 5,
                k3: 6,
                n: 2,
            },
            Case::Conv2d => Shapes::Conv2d {
                batch: 2,
                channels: 3,
                out_channels: 4,
                size: 5,
            },
            Case::Attention => Shapes::Attention {
                batch: 2,
                seq: 3,
                width: 4,
            },
            Case::Rnn => Shapes::Rnn {
                steps: 4,
                batch: 2,
                input: 3,
                hidden: 4,
            },
        }
    }

    /// The shapes as printed and stored: `"x 32×784, w1 784×128, ..."`.
    pub fn describe(&self) -> String {
        match *self {
            Shapes::SimpleQuadratic { n } => format!("x {n}"),
            Shapes::SmallMlp { batch, inputs, hidden, outputs } => {
                format!("x {batch}×{inputs}, w1 {inputs}×{hidden}, b1 {hidden}, w2 {hidden}×{outputs}, b2 {outputs}")
            }
            Shapes::MatmulChain { m, k1, k2, k3, n } => format!("A {m}×{k1}, B {k1}×{k2}, C {k2}×{k3}, D {k3}×{n}"),
            Shapes::Conv2d { batch, channels, out_channels, size } => format!(
                "x {batch}×{channels}×{size}×{size}, w {out_channels}×{channels}×3×3, bias {out_channels}, gamma {out_channels}, beta {out_channels}"
            ),
            Shapes::Attention { batch, seq, width } => {
                format!("xs {batch}×({seq}×{width}), wq wk wv wo {width}×{width}, targets {batch}×({seq}×{width})")
            }
            Shapes::Rnn {
                steps,
                batch,
                input,
                hidden,
            } => format!(
                "h0 {batch}×{hidden}, w {hidden}×{hidden}, u {input}×{hidden}, xs {steps}×({batch}×{input}), target {batch}×{hidden}"
            ),
        }
    }
}

/// The inputs of one case, in the function's parameter order.
#[derive(Clone, Debug)]
pub enum Inputs<F> {
    /// Inputs of [`simple_quadratic`].
    SimpleQuadratic { x: Array1<F> },
    /// Inputs of [`small_mlp`].
    SmallMlp {
        x: Array2<F>,
        w1: Array2<F>,
        b1: Array1<F>,
        w2: Array2<F>,
        b2: Array1<F>,
    },
    /// Inputs of [`matmul_chain`].
    MatmulChain {
        a: Array2<F>,
        b: Array2<F>,
        c: Array2<F>,
        d: Array2<F>,
    },
    /// Inputs of [`conv2d_block`].
    Conv2d {
        x: Array4<F>,
        w: Array4<F>,
        bias: Array1<F>,
        gamma: Array1<F>,
        beta: Array1<F>,
    },
    /// Inputs of [`attention`].
    Attention {
        xs: Vec<Array2<F>>,
        wq: Array2<F>,
        wk: Array2<F>,
        wv: Array2<F>,
        wo: Array2<F>,
        targets: Vec<Array2<F>>,
    },
    /// Inputs of [`rnn`].
    Rnn {
        h0: Array2<F>,
        w: Array2<F>,
        u: Array2<F>,
        xs: Vec<Array2<F>>,
        target: Array2<F>,
    },
}

/// A slice of arrays as one array with a new first axis (how the study stores a
/// slice input, or its gradient, for finite differences and comparisons).
///
/// # Panics
/// If the arrays' shapes differ.
pub fn stack<F: Float, D: Dimension>(arrays: &[Array<F, D>]) -> ArrayD<F> {
    let views: Vec<_> = arrays.iter().map(|a| a.view().into_dyn()).collect();
    autodiff::ndarray::stack(Axis(0), &views)
        .unwrap_or_else(|e| panic!("stack: the arrays of a slice differ in shape: {e}"))
}

/// The inverse of [`stack`] for a slice of matrices.
///
/// # Panics
/// If `a` is not of rank 3.
pub fn unstack<F: Float>(a: &ArrayD<F>) -> Vec<Array2<F>> {
    let shape = a.shape().to_vec();
    let a = a
        .view()
        .into_dimensionality::<Ix3>()
        .unwrap_or_else(|_| panic!("unstack: array of shape {shape:?} is not a stack of matrices"));
    a.outer_iter().map(|m| m.to_owned()).collect()
}

/// Uniform in `[-bound, bound)`, from the seeded generator.
fn uniform<Sh: ShapeBuilder>(rng: &mut StdRng, shape: Sh, bound: f64) -> Array<f64, Sh::Dim> {
    Array::from_shape_simple_fn(shape, || rng.gen_range(-bound..bound))
}

impl Inputs<f64> {
    /// Seeded random inputs in `f64` (cast them with [`Inputs::cast`], so both
    /// float types see the same values). Weights are scaled by `1/√fan_in`, so
    /// activations stay of order one at every size.
    pub fn random(shapes: Shapes, seed: u64) -> Inputs<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let rng = &mut rng;
        match shapes {
            Shapes::SimpleQuadratic { n } => Inputs::SimpleQuadratic {
                x: uniform(rng, n, 1.0),
            },
            Shapes::SmallMlp {
                batch,
                inputs,
                hidden,
                outputs,
            } => Inputs::SmallMlp {
                x: uniform(rng, (batch, inputs), 1.0),
                w1: uniform(rng, (inputs, hidden), 1.0 / (inputs as f64).sqrt()),
                b1: uniform(rng, hidden, 0.1),
                w2: uniform(rng, (hidden, outputs), 1.0 / (hidden as f64).sqrt()),
                b2: uniform(rng, outputs, 0.1),
            },
            Shapes::MatmulChain { m, k1, k2, k3, n } => Inputs::MatmulChain {
                a: uniform(rng, (m, k1), 1.0),
                b: uniform(rng, (k1, k2), 1.0 / (k1 as f64).sqrt()),
                c: uniform(rng, (k2, k3), 1.0 / (k2 as f64).sqrt()),
                d: uniform(rng, (k3, n), 1.0 / (k3 as f64).sqrt()),
            },
            Shapes::Conv2d {
                batch,
                channels,
                out_channels,
                size,
            } => Inputs::Conv2d {
                x: uniform(rng, (batch, channels, size, size), 1.0),
                w: uniform(
                    rng,
                    (out_channels, channels, 3, 3),
                    1.0 / ((channels * 9) as f64).sqrt(),
                ),
                bias: uniform(rng, out_channels, 0.1),
                gamma: Array1::from_shape_simple_fn(out_channels, || 1.0 + rng.gen_range(-0.2..0.2)),
                beta: uniform(rng, out_channels, 0.1),
            },
            Shapes::Attention { batch, seq, width } => {
                let bound = 1.0 / (width as f64).sqrt();
                Inputs::Attention {
                    xs: (0..batch).map(|_| uniform(rng, (seq, width), 1.0)).collect(),
                    wq: uniform(rng, (width, width), bound),
                    wk: uniform(rng, (width, width), bound),
                    wv: uniform(rng, (width, width), bound),
                    wo: uniform(rng, (width, width), bound),
                    targets: (0..batch).map(|_| uniform(rng, (seq, width), 1.0)).collect(),
                }
            }
            Shapes::Rnn {
                steps,
                batch,
                input,
                hidden,
            } => Inputs::Rnn {
                h0: uniform(rng, (batch, hidden), 1.0),
                w: uniform(rng, (hidden, hidden), 1.0 / (hidden as f64).sqrt()),
                u: uniform(rng, (input, hidden), 1.0 / (input as f64).sqrt()),
                xs: (0..steps).map(|_| uniform(rng, (batch, input), 1.0)).collect(),
                target: uniform(rng, (batch, hidden), 1.0),
            },
        }
    }

    /// The same inputs in another float type (`f32` rounds).
    pub fn cast<G: Float>(&self) -> Inputs<G> {
        let c1 = |a: &Array1<f64>| a.mapv(G::of);
        let c2 = |a: &Array2<f64>| a.mapv(G::of);
        let c4 = |a: &Array4<f64>| a.mapv(G::of);
        let cs = |s: &[Array2<f64>]| s.iter().map(c2).collect();
        match self {
            Inputs::SimpleQuadratic { x } => Inputs::SimpleQuadratic { x: c1(x) },
            Inputs::SmallMlp { x, w1, b1, w2, b2 } => Inputs::SmallMlp {
                x: c2(x),
                w1: c2(w1),
                b1: c1(b1),
                w2: c2(w2),
                b2: c1(b2),
            },
            Inputs::MatmulChain { a, b, c, d } => Inputs::MatmulChain {
                a: c2(a),
                b: c2(b),
                c: c2(c),
                d: c2(d),
            },
            Inputs::Conv2d {
                x,
                w,
                bias,
                gamma,
                beta,
            } => Inputs::Conv2d {
                x: c4(x),
                w: c4(w),
                bias: c1(bias),
                gamma: c1(gamma),
                beta: c1(beta),
            },
            Inputs::Attention {
                xs,
                wq,
                wk,
                wv,
                wo,
                targets,
            } => Inputs::Attention {
                xs: cs(xs),
                wq: c2(wq),
                wk: c2(wk),
                wv: c2(wv),
                wo: c2(wo),
                targets: cs(targets),
            },
            Inputs::Rnn { h0, w, u, xs, target } => Inputs::Rnn {
                h0: c2(h0),
                w: c2(w),
                u: c2(u),
                xs: cs(xs),
                target: c2(target),
            },
        }
    }
}

impl<F: Float> Inputs<F> {
    /// The names of the inputs gradients are taken for, in the order every
    /// mode returns them.
    pub fn wrt_names(&self, wrt: Wrt) -> &'static [&'static str] {
        match (self, wrt) {
            (Inputs::SimpleQuadratic { .. }, _) => &["x"],
            (Inputs::SmallMlp { .. }, Wrt::All) => &["x", "w1", "b1", "w2", "b2"],
            (Inputs::SmallMlp { .. }, Wrt::Params) => &["w1", "b1", "w2", "b2"],
            (Inputs::MatmulChain { .. }, Wrt::All) => &["a", "b", "c", "d"],
            (Inputs::MatmulChain { .. }, Wrt::Params) => &["b", "c", "d"],
            (Inputs::Conv2d { .. }, Wrt::All) => &["x", "w", "bias", "gamma", "beta"],
            (Inputs::Conv2d { .. }, Wrt::Params) => &["w", "bias", "gamma", "beta"],
            (Inputs::Attention { .. }, Wrt::All) => &["xs", "wq", "wk", "wv", "wo"],
            (Inputs::Attention { .. }, Wrt::Params) => &["wq", "wk", "wv", "wo"],
            (Inputs::Rnn { .. }, Wrt::All) => &["h0", "w", "u", "xs"],
            (Inputs::Rnn { .. }, Wrt::Params) => &["w", "u"],
        }
    }

    /// Every input, in parameter order, as dynamic-rank copies (for finite
    /// differences, which perturb one input at a time); a slice of arrays is
    /// one array, [`stack`]ed.
    pub fn to_dyn(&self) -> Vec<(&'static str, ArrayD<F>)> {
        match self {
            Inputs::SimpleQuadratic { x } => vec![("x", x.clone().into_dyn())],
            Inputs::SmallMlp { x, w1, b1, w2, b2 } => vec![
                ("x", x.clone().into_dyn()),
                ("w1", w1.clone().into_dyn()),
                ("b1", b1.clone().into_dyn()),
                ("w2", w2.clone().into_dyn()),
                ("b2", b2.clone().into_dyn()),
            ],
            Inputs::MatmulChain { a, b, c, d } => vec![
                ("a", a.clone().into_dyn()),
                ("b", b.clone().into_dyn()),
                ("c", c.clone().into_dyn()),
                ("d", d.clone().into_dyn()),
            ],
            Inputs::Conv2d {
                x,
                w,
                bias,
                gamma,
                beta,
            } => vec![
                ("x", x.clone().into_dyn()),
                ("w", w.clone().into_dyn()),
                ("bias", bias.clone().into_dyn()),
                ("gamma", gamma.clone().into_dyn()),
                ("beta", beta.clone().into_dyn()),
            ],
            Inputs::Attention {
                xs,
                wq,
                wk,
                wv,
                wo,
                targets,
            } => vec![
                ("xs", stack(xs)),
                ("wq", wq.clone().into_dyn()),
                ("wk", wk.clone().into_dyn()),
                ("wv", wv.clone().into_dyn()),
                ("wo", wo.clone().into_dyn()),
                ("targets", stack(targets)),
            ],
            Inputs::Rnn { h0, w, u, xs, target } => vec![
                ("h0", h0.clone().into_dyn()),
                ("w", w.clone().into_dyn()),
                ("u", u.clone().into_dyn()),
                ("xs", stack(xs)),
                ("target", target.clone().into_dyn()),
            ],
        }
    }

    /// Rebuilds inputs of the same case from dynamic-rank arrays in parameter
    /// order (the inverse of [`Inputs::to_dyn`]).
    ///
    /// # Panics
    /// If the count or a rank does not match the case.
    pub fn with_arrays(&self, arrays: &[ArrayD<F>]) -> Inputs<F> {
        fn fix<F: Float, D: Dimension>(a: &ArrayD<F>) -> Array<F, D> {
            let shape = a.shape().to_vec();
            a.clone().into_dimensionality::<D>().unwrap_or_else(|_| {
                panic!("Inputs::with_arrays: array of shape {shape:?} has the wrong rank for its input")
            })
        }
        let n = self.to_dyn().len();
        assert_eq!(
            arrays.len(),
            n,
            "Inputs::with_arrays: expected {n} arrays, got {}",
            arrays.len()
        );
        match self {
            Inputs::SimpleQuadratic { .. } => Inputs::SimpleQuadratic { x: fix(&arrays[0]) },
            Inputs::SmallMlp { .. } => Inputs::SmallMlp {
                x: fix(&arrays[0]),
                w1: fix(&arrays[1]),
                b1: fix(&arrays[2]),
                w2: fix(&arrays[3]),
                b2: fix(&arrays[4]),
            },
            Inputs::MatmulChain { .. } => Inputs::MatmulChain {
                a: fix(&arrays[0]),
                b: fix(&arrays[1]),
                c: fix(&arrays[2]),
                d: fix(&arrays[3]),
            },
            Inputs::Conv2d { .. } => Inputs::Conv2d {
                x: fix(&arrays[0]),
                w: fix(&arrays[1]),
                bias: fix(&arrays[2]),
                gamma: fix(&arrays[3]),
                beta: fix(&arrays[4]),
            },
            Inputs::Attention { .. } => Inputs::Attention {
                xs: unstack(&arrays[0]),
                wq: fix(&arrays[1]),
                wk: fix(&arrays[2]),
                wv: fix(&arrays[3]),
                wo: fix(&arrays[4]),
                targets: unstack(&arrays[5]),
            },
            Inputs::Rnn { .. } => Inputs::Rnn {
                h0: fix(&arrays[0]),
                w: fix(&arrays[1]),
                u: fix(&arrays[2]),
                xs: unstack(&arrays[3]),
                target: fix(&arrays[4]),
            },
        }
    }

    /// The case these inputs belong to.
    pub fn case(&self) -> Case {
        match self {
            Inputs::SimpleQuadratic { .. } => Case::SimpleQuadratic,
            Inputs::SmallMlp { .. } => Case::SmallMlp,
            Inputs::MatmulChain { .. } => Case::MatmulChain,
            Inputs::Conv2d { .. } => Case::Conv2d,
            Inputs::Attention { .. } => Case::Attention,
            Inputs::Rnn { .. } => Case::Rnn,
        }
    }

    /// The loss itself (no gradient), through the plain function.
    pub fn loss(&self) -> F {
        match self {
            Inputs::SimpleQuadratic { x } => simple_quadratic(x),
            Inputs::SmallMlp { x, w1, b1, w2, b2 } => small_mlp(x, w1, b1, w2, b2),
            Inputs::MatmulChain { a, b, c, d } => matmul_chain(a, b, c, d),
            Inputs::Conv2d {
                x,
                w,
                bias,
                gamma,
                beta,
            } => conv2d_block(x, w, bias, gamma, beta),
            Inputs::Attention {
                xs,
                wq,
                wk,
                wv,
                wo,
                targets,
            } => attention(xs, wq, wk, wv, wo, targets),
            Inputs::Rnn { h0, w, u, xs, target } => rnn(h0, w, u, xs, target),
        }
    }
}
