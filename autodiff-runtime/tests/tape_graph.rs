//! The tape as a graph: pruning, hooks, inspection (`nodes`, `to_dot`),
//! consuming and retaining backward, and the `Gradients` accessors.

use autodiff_runtime::tape::Tape;
use ndarray::{array, Array0, Array1, Array2, Array4, ArrayD, Ix1, Ix2};

#[test]
fn constant_inputs_record_no_node() {
    let a = array![[1.0, 2.0], [3.0, 4.0]];
    let tape = Tape::<f64>::new();
    let x = tape.constant(&a);
    let y = x.exp().sum();
    assert!(!y.requires_grad());
    assert!(tape.is_empty(), "no input requires a gradient: nothing recorded");
    assert_eq!(tape.memory().saved_bytes, 0);
    assert_eq!(y.scalar(), a.mapv(f64::exp).sum());
}

#[test]
fn dot_with_constant_data_saves_only_the_data() {
    let data = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
    let weights = array![[1.0], [0.5], [-1.0]];
    let tape = Tape::<f64>::new();
    let x = tape.constant_owned(data.clone());
    let w = tape.param(&weights);
    let h = x.dot(&w); // node 2 reads x only (for w's adjoint)
    let c = x.exp().sum(); // pruned: x is constant
    let loss = (&h.tanh().sum() + &c).mul_scalar(2.0);
    let nodes = tape.nodes();
    let ops: Vec<_> = nodes.iter().map(|n| n.op).collect();
    assert_eq!(ops, ["matmul", "tanh", "sum", "add", "mul_scalar"]);
    assert_eq!(nodes[0].inputs, vec![x.id(), w.id()]);
    assert_eq!(nodes[0].shape, vec![2, 1]);
    assert_eq!(
        nodes[0].saved_bytes,
        6 * 8,
        "matmul saves the constant x (owned), not w"
    );
    assert_eq!(nodes[1].saved_bytes, 2 * 8, "tanh saves its output");
    assert_eq!(nodes[2].saved_bytes, 0, "sum saves only a shape");
    assert_eq!(
        nodes[3].inputs,
        vec![nodes[2].id, c.id()],
        "add reads the pruned sum as a plain input"
    );
    let mut grads = tape.backward(&loss);
    assert!(grads.get(&x).is_none(), "constants get no gradient");
    let expected = data.t().dot(
        &h.value()
            .into_dimensionality::<Ix2>()
            .unwrap()
            .mapv(|v| 2.0 * (1.0 - v.tanh().powi(2))),
    );
    let gw: Array2<f64> = grads.take_as(&w);
    assert!((&gw - &expected).iter().all(|d| d.abs() < 1e-12));
}

#[test]
fn pruning_skips_adjoints_of_constant_operands() {
    let a = array![1.0, 2.0, 3.0];
    let b = array![0.5, -1.0, 2.0];
    let tape = Tape::<f64>::new();
    let x = tape.param(&a);
    let k = tape.constant(&b);
    let y = (&x * &k).sum();
    // mul saves k (read by x's adjoint) but not x (k needs no adjoint).
    assert_eq!(tape.nodes()[0].op, "mul");
    assert_eq!(
        tape.memory().saved_bytes,
        0,
        "both operands are borrowed leaves: the tape owns nothing"
    );
    let g = tape.backward(&y);
    assert_eq!(g[&x], b.clone().into_dyn());
    assert_eq!(g.len(), 1);
}

#[test]
fn hook_that_doubles_a_gradient_doubles_the_leaf_gradient() {
    let a = array![0.1, -0.7, 1.3];
    let plain = {
        let tape = Tape::<f64>::new();
        let x = tape.param(&a);
        let y = x.sin().exp().sum();
        tape.backward(&y).take_as::<Ix1>(&x)
    };
    let tape = Tape::<f64>::new();
    let x = tape.param(&a);
    let s = x.sin();
    s.register_hook(|g| Some(g * 2.0));
    let y = s.exp().sum();
    let hooked: Array1<f64> = tape.backward(&y).take_as(&x);
    assert!((&hooked - &(&plain * 2.0)).iter().all(|d| d.abs() < 1e-15));

    // A hook on a leaf sees the accumulated gradient (two uses) and may replace it.
    let seen = std::cell::RefCell::new(None); // outlives the tape, which holds the hook
    let tape = Tape::<f64>::new();
    let x = tape.param(&a);
    x.register_hook(|g| {
        *seen.borrow_mut() = Some(g.clone());
        None
    });
    x.register_hook(|g| Some(g.mapv(|v| v + 1.0)));
    let y = (&x + &x).sum();
    let g = tape.backward(&y);
    assert_eq!(seen.borrow().clone().unwrap(), ArrayD::from_elem(vec![3], 2.0));
    assert_eq!(g[&x], ArrayD::from_elem(vec![3], 3.0));
}

#[test]
fn to_dot_lists_every_node_and_edge() {
    let a = array![[1.0, 2.0], [3.0, 4.0]];
    let tape = Tape::<f64>::new();
    let x = tape.param(&a);
    let y = x.t().dot(&x).relu().mean();
    let dot = tape.to_dot();
    assert!(dot.starts_with("digraph tape {"));
    for node in tape.nodes() {
        assert!(
            dot.contains(&format!("v{} [label=\"{}: {}", node.id, node.id, node.op)),
            "{dot}"
        );
        for input in node.inputs {
            assert!(dot.contains(&format!("v{input} -> v{};", node.id)));
        }
    }
    assert!(dot.contains(&format!("v{} [shape=box, label=\"{}: param\"]", x.id(), x.id())));
    assert_eq!(tape.len(), 4);
    drop(y);
}

#[test]
#[should_panic(expected = "already consumed by an earlier backward")]
fn second_backward_without_retain_panics() {
    let a = array![1.0, 2.0];
    let tape = Tape::<f64>::new();
    let x = tape.param(&a);
    let y = x.exp().sum();
    let _ = tape.backward(&y);
    let _ = tape.backward(&y);
}

#[test]
fn backward_retain_allows_a_second_backward() {
    let a = array![1.0, 2.0];
    let tape = Tape::<f64>::new();
    let x = tape.param(&a);
    let y = x.exp().sum();
    let first = tape.backward_retain(&y);
    assert!(tape.memory().saved_bytes > 0, "retained: exp's output is still saved");
    let second = tape.backward(&y);
    assert_eq!(first[&x], second[&x]);
    assert_eq!(tape.memory().saved_bytes, 0, "the consuming backward freed it");
}

#[test]
#[should_panic(expected = "exactly one element, but var 1 has shape [2]")]
fn backward_of_a_vector_panics_naming_its_shape() {
    let a = array![1.0, 2.0];
    let tape = Tape::<f64>::new();
    let x = tape.param(&a);
    let y = x.exp();
    let _ = tape.backward(&y);
}

#[test]
fn backward_with_seed_is_a_vector_jacobian_product() {
    let a = array![1.0, 2.0, 3.0];
    let tape = Tape::<f64>::new();
    let x = tape.param(&a);
    let y = x.square();
    let g = tape.backward_with_seed(&y, array![1.0, 0.0, -1.0].into_dyn(), false);
    assert_eq!(g[&x], array![2.0, 0.0, -6.0].into_dyn());
}

#[test]
#[should_panic(expected = "dot: shapes [2, 2, 1] and [2] are not supported")]
fn dot_of_unsupported_ranks_panics_naming_shapes() {
    let tape = Tape::<f64>::new();
    let a = tape.param_owned(ArrayD::zeros(vec![2, 2, 1]));
    let b = tape.param_owned(ArrayD::zeros(vec![2]));
    let _ = a.dot(&b);
}

#[test]
fn gradients_accessors() {
    let a = array![1.0, 2.0];
    let tape = Tape::<f64>::new();
    let x = tape.param(&a);
    let s = tape.param_scalar(3.0);
    let unused = tape.param_owned(array![[1.0, 2.0]]);
    let c = tape.constant_scalar(2.0);
    let y = (&(&x * &s).sum() * &c).add_scalar(1.0);
    assert_eq!(y.shape(), &[] as &[usize]);
    let mut g = tape.backward(&y);
    assert_eq!(g.take_scalar(&s), 2.0 * 3.0);
    assert_eq!(g.take_as::<Ix1>(&x), array![6.0, 6.0]);
    assert_eq!(
        g.take_as::<Ix2>(&unused),
        Array2::<f64>::zeros((1, 2)),
        "unreached: zeros"
    );
    assert!(g.is_empty());
    let zero: Array0<f64> = g.take_as(&s);
    assert_eq!(zero.into_scalar(), 0.0, "taken twice: zeros");
}

#[test]
#[should_panic(expected = "is not a leaf that requires a gradient")]
fn take_as_of_an_intermediate_panics() {
    let a = array![1.0, 2.0];
    let tape = Tape::<f64>::new();
    let x = tape.param(&a);
    let y = x.exp();
    let mut g = tape.backward(&y.sum());
    let _ = g.take_as::<Ix1>(&y);
}

#[test]
#[should_panic(expected = "no gradient for var")]
fn indexing_a_constant_panics() {
    let a = array![1.0, 2.0];
    let tape = Tape::<f64>::new();
    let x = tape.param(&a);
    let k = tape.constant(&a);
    let g = tape.backward(&(&x * &k).sum());
    let _ = &g[&k];
}

#[test]
fn relu_saves_a_bit_per_element() {
    let a = Array2::from_shape_fn((8, 16), |(i, j)| (i as f64 * 0.7 - j as f64 * 0.3).sin());
    let tape = Tape::<f64>::new();
    let x = tape.param(&a);
    let loss = x.relu().sum();
    let nodes = tape.nodes();
    assert_eq!(nodes[0].op, "relu");
    assert_eq!(
        nodes[0].saved_bytes,
        8 * 16 / 8,
        "128 elements: two 64-bit words, not 1 KB of floats"
    );
    let mut grads = tape.backward(&loss);
    let g: Array2<f64> = grads.take_as(&x);
    assert_eq!(g, a.mapv(|v| if v > 0.0 { 1.0 } else { 0.0 }));
}

#[test]
fn max_pool_keeps_its_window_indices_not_its_input() {
    let a = Array4::from_shape_fn((2, 3, 6, 7), |(n, c, i, j)| {
        ((n * 31 + c * 7 + i * 3 + j) as f64 * 0.37).sin()
    });
    let tape = Tape::<f64>::new();
    let x = tape.param(&a);
    let h = x.tanh(); // an array the tape owns: keeping it would cost its bytes
    let loss = h.max_pool2d(2, 2).sum();
    let nodes = tape.nodes();
    assert_eq!(nodes[1].op, "max_pool2d");
    assert_eq!(nodes[1].saved_bytes, 2 * 3 * 3 * 3, "one byte per output element");
    let mut grads = tape.backward(&loss);
    let g: Array4<f64> = grads.take_as(&x);
    // Each window's adjoint reaches its maximum, through tanh's derivative.
    let dh = autodiff_runtime::kernels::pool::max_pool2d_grad(
        &Array4::ones((2, 3, 3, 3)),
        &autodiff_runtime::kernels::pool::max_pool2d_keeping(&a.mapv(f64::tanh), 2, 2).1,
    );
    assert_eq!(g, dh * a.mapv(|v| 1.0 - v.tanh().powi(2)));
    // A constant input records no node, and pools without indices.
    let k = tape.constant(&a);
    let _ = k.max_pool2d(3, 1);
    assert_eq!(tape.nodes().len(), 3);
}

#[test]
fn batch_norm_keeps_what_the_adjoints_asked_for_read() {
    let a = Array4::from_shape_fn((2, 3, 4, 5), |(n, c, i, j)| {
        ((n * 31 + c * 7 + i * 3 + j) as f64 * 0.37).sin()
    });
    let (gamma, beta) = (Array1::from(vec![0.5, 1.5, -1.0]), Array1::from(vec![0.1, 0.2, 0.3]));
    let r = Array4::from_shape_fn((2, 3, 4, 5), |(n, c, i, j)| ((n + c + i + j) % 5) as f64 - 2.0);
    let x_bytes = 2 * 3 * 4 * 5 * 8;
    let stats_bytes = 2 * 3 * 8;
    // (x, gamma, beta) needing a gradient → the bytes the node keeps: x (an array the tape
    // owns) and the statistics for x's and gamma's adjoints; nothing for beta's alone, which
    // sums the adjoint.
    for (needs, kept) in [
        ([true, true, true], x_bytes + stats_bytes),
        ([true, false, false], x_bytes + stats_bytes),
        ([false, true, false], x_bytes + stats_bytes),
        ([false, true, true], x_bytes + stats_bytes),
        ([false, false, true], 0),
    ] {
        let tape = Tape::<f64>::new();
        let x0 = if needs[0] { tape.param(&a) } else { tape.constant(&a) };
        let x = x0.mul_scalar(1.0); // owned by the tape
        let leaf = |data, need: bool| if need { tape.param(data) } else { tape.constant(data) };
        let (g, b) = (leaf(&gamma, needs[1]), leaf(&beta, needs[2]));
        let y = x.batch_norm(&g, &b, 1e-5);
        let loss = (&y * &tape.constant(&r)).sum();
        let node = tape
            .nodes()
            .into_iter()
            .find(|n| n.op == "batch_norm")
            .unwrap_or_else(|| panic!("no node"));
        assert_eq!(node.saved_bytes, kept, "{needs:?}");
        let mut grads = tape.backward(&loss);
        if needs[2] {
            // Σr per channel, whichever kernel summed it.
            let db: Array1<f64> = grads.take_as(&b);
            let expected = r
                .sum_axis(ndarray::Axis(0))
                .sum_axis(ndarray::Axis(1))
                .sum_axis(ndarray::Axis(1));
            assert!((db - expected).iter().all(|d| d.abs() < 1e-12), "{needs:?}");
        }
    }
}
