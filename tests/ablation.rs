//! The analyses switched off one at a time (`#[differentiate(opt(.. = false))]`), and all
//! at once: the gradients must not change. Each case is differentiated seven ways (every
//! analysis on, each one off alone, all off), each checked three ways (static code, tape,
//! finite differences in f64), one `#[test]` per way and case. The last tests check that
//! each switch really changes the generated code.

mod common;

use autodiff::prelude::*;
use common::{random, rng};

/// `$case` differentiated with respect to `$wrt` every way, with one test per way.
macro_rules! ablated {
    (
        $(#[$doc:meta])*
        fn $case:ident($($param:ident : $ty:ty),*) -> f64 $body:block
        wrt($($wrt:ident),*);
        inputs($($input:expr),*);
    ) => {
        mod $case {
            use super::*;

            $(#[$doc])*
            #[differentiate(wrt($($wrt),*), name = all_on)]
            #[differentiate(wrt($($wrt),*), opt(fusion = false), name = fusion_off)]
            #[differentiate(wrt($($wrt),*), opt(liveness = false), name = liveness_off)]
            #[differentiate(wrt($($wrt),*), opt(reuse = false), name = reuse_off)]
            #[differentiate(wrt($($wrt),*), opt(seed = false), name = seed_off)]
            #[differentiate(wrt($($wrt),*), opt(dead_gradients = false), name = dead_gradients_off)]
            #[differentiate(
                wrt($($wrt),*),
                opt(fusion = false, liveness = false, reuse = false, seed = false, dead_gradients = false),
                name = all_off
            )]
            pub fn $case($($param: $ty),*) -> f64 $body

            ablated!(@tests [$($input),*] all_on fusion_off liveness_off reuse_off seed_off dead_gradients_off all_off);
        }
    };
    (@tests $inputs:tt $($way:ident)*) => {
        $(
            #[test]
            fn $way() {
                ablated!(@check $way $inputs);
            }
        )*
    };
    (@check $way:ident [$($input:expr),*]) => {
        autodiff::check!($way, $($input),*);
    };
}

ablated! {
    /// The study's two-layer perceptron, trained (data constant).
    fn small_mlp(x: &Array2<f64>, w1: &Array2<f64>, b1: &Array1<f64>, w2: &Array2<f64>, b2: &Array1<f64>) -> f64 {
        (relu(&(x.dot(w1) + b1)).dot(w2) + b2).sum()
    }
    wrt(w1, b1, w2, b2);
    inputs(&random(&mut rng(1), (4, 5)), &random(&mut rng(2), (5, 3)), &random(&mut rng(3), 3),
           &random(&mut rng(4), (3, 2)), &random(&mut rng(5), 2));
}

ablated! {
    /// A chain of elementwise functions (fusion's case) ending in an mse (no plain sum).
    fn elementwise_chain(x: &Array2<f64>, w: &Array2<f64>, t: &Array2<f64>) -> f64 {
        let h = x.dot(w);
        let y = h.tanh().mapv(|v| v * v + 1.0).ln().sin();
        mse(&y, t)
    }
    wrt(w);
    inputs(&random(&mut rng(6), (3, 4)), &random(&mut rng(7), (4, 2)), &random(&mut rng(8), (3, 2)));
}

ablated! {
    /// Three matrix products summed (the seed's and the accumulating GEMM's case).
    fn matmul_chain(a: &Array2<f64>, b: &Array2<f64>, c: &Array2<f64>, d: &Array2<f64>) -> f64 {
        a.dot(b).dot(c).dot(d).sum()
    }
    wrt(b, c, d);
    inputs(&random(&mut rng(9), (2, 3)), &random(&mut rng(10), (3, 4)), &random(&mut rng(11), (4, 3)),
           &random(&mut rng(12), (3, 2)));
}

ablated! {
    /// An RNN over a slice of inputs, weights shared across steps (a loop's case).
    fn rnn(xs: &[Array2<f64>], w: &Array2<f64>, u: &Array2<f64>, h0: &Array2<f64>) -> f64 {
        let mut h = h0.clone();
        for t in 0..xs.len() {
            h = (h.dot(w) + xs[t].dot(u)).tanh();
        }
        (&h * &h).sum()
    }
    wrt(w, u);
    inputs(&(0..4).map(|t| random(&mut rng(20 + t), (2, 3))).collect::<Vec<_>>(),
           &random(&mut rng(13), (4, 4)), &random(&mut rng(14), (3, 4)), &random(&mut rng(15), (2, 4)));
}

ablated! {
    /// Self-attention with an output projection and an mse loss.
    fn attention(x: &Array2<f64>, wq: &Array2<f64>, wk: &Array2<f64>, wv: &Array2<f64>, t: &Array2<f64>) -> f64 {
        let q = x.dot(wq);
        let k = x.dot(wk);
        let v = x.dot(wv);
        let a = softmax(&(q.dot(&k.t()) / 2.0), Axis(1));
        mse(&a.dot(&v), t)
    }
    wrt(wq, wk, wv);
    inputs(&random(&mut rng(16), (5, 4)), &random(&mut rng(17), (4, 4)), &random(&mut rng(18), (4, 4)),
           &random(&mut rng(19), (4, 3)), &random(&mut rng(30), (5, 3)));
}

/// Each switch changes the code it names (else the ablation would measure nothing).
mod switches {
    use super::*;

    #[test]
    fn fusion_off_leaves_elementwise_chains_unfused() {
        assert!(elementwise_chain::all_on_grad_source().contains("fused::chain"));
        assert!(!elementwise_chain::fusion_off_grad_source().contains("fused::chain"));
    }

    #[test]
    fn liveness_off_drops_nothing_early() {
        let drops = |source: &str| source.matches("drop(").count();
        let (on, off) = (
            drops(small_mlp::all_on_grad_source()),
            drops(small_mlp::liveness_off_grad_source()),
        );
        assert!(off < on, "liveness off: {off} drops, on: {on}");
    }

    #[test]
    fn reuse_off_copies_the_adjoint_and_sums_products_apart() {
        assert!(rnn::all_on_grad_source().contains("_acc("));
        assert!(!rnn::reuse_off_grad_source().contains("_acc("));
        assert!(small_mlp::reuse_off_grad_source().contains(".clone()"));
    }

    #[test]
    fn seed_off_materialises_the_sum_seed() {
        assert!(!matmul_chain::all_on_grad_source().contains("sum_grad("));
        assert!(matmul_chain::seed_off_grad_source().contains("sum_grad("));
    }

    #[test]
    fn dead_gradients_off_computes_the_data_adjoint() {
        assert!(small_mlp::ALL_ON_GRAD_PLAN.eliminated.contains(&"x"));
        assert!(!small_mlp::DEAD_GRADIENTS_OFF_GRAD_PLAN.eliminated.contains(&"x"));
    }
}
