//! `Tape::custom`: a node whose backward is the caller's function, with up to three inputs
//! in one node and more as a chain of nodes; pruning of inputs that need no gradient.

use autodiff_runtime::tape::Tape;
use ndarray::{array, ArrayD, IxDyn};

/// The product of `n` arrays, elementwise, recorded as one custom rule.
fn product_rule(n: usize, grad_mask: &[bool]) -> Vec<Option<ArrayD<f64>>> {
    let values: Vec<ArrayD<f64>> = (0..n)
        .map(|k| array![0.5 + k as f64, -1.0 + 0.25 * k as f64].into_dyn())
        .collect();
    let tape = Tape::new();
    let vars: Vec<_> = values
        .iter()
        .zip(grad_mask)
        .map(|(v, &grad)| if grad { tape.param(v) } else { tape.constant(v) })
        .collect();
    let inputs: Vec<_> = vars.iter().collect();
    let product = values.iter().fold(ArrayD::ones(IxDyn(&[2])), |acc, v| acc * v);
    let owned = values.clone();
    let y = tape.custom(&inputs, product, move |g| {
        (0..owned.len())
            .map(|k| {
                let others = owned
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != k)
                    .fold(ArrayD::<f64>::ones(IxDyn(&[2])), |acc, (_, v)| acc * v);
                g * &others
            })
            .collect()
    });
    let mut grads = tape.backward(&y.sum());
    vars.iter().map(|v| grads.take(v)).collect()
}

fn expected(n: usize, k: usize) -> ArrayD<f64> {
    (0..n)
        .filter(|&j| j != k)
        .map(|j| array![0.5 + j as f64, -1.0 + 0.25 * j as f64].into_dyn())
        .fold(ArrayD::ones(IxDyn(&[2])), |acc, v| acc * v)
}

#[test]
fn one_node_for_up_to_three_inputs() {
    let grads = product_rule(3, &[true, true, true]);
    for (k, g) in grads.iter().enumerate() {
        assert_eq!(g.as_ref().unwrap(), &expected(3, k));
    }
}

#[test]
fn a_chain_of_nodes_for_more_inputs() {
    for n in [4, 5, 6, 7] {
        let grads = product_rule(n, &vec![true; n]);
        for (k, g) in grads.iter().enumerate() {
            assert_eq!(g.as_ref().unwrap(), &expected(n, k), "input {k} of {n}");
        }
    }
}

#[test]
fn inputs_that_need_no_gradient_get_none() {
    let mask = [false, false, false, true, false, true];
    let grads = product_rule(6, &mask);
    for (k, g) in grads.iter().enumerate() {
        match mask[k] {
            true => assert_eq!(g.as_ref().unwrap(), &expected(6, k)),
            false => assert!(g.is_none(), "input {k} is a constant"),
        }
    }
}

#[test]
#[should_panic(expected = "custom rule: the VJP returned 1 adjoints for 2 inputs")]
fn a_rule_returning_too_few_adjoints_is_named() {
    let (a, b) = (array![1.0, 2.0], array![3.0, 4.0]);
    let tape = Tape::new();
    let (x, y) = (tape.param(&a), tape.param(&b));
    let z = tape.custom(&[&x, &y], (&a * &b).into_dyn(), |g| vec![g.clone()]);
    tape.backward(&z.sum());
}
