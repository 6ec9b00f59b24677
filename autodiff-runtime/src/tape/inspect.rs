//! Looking at a tape: its nodes, a Graphviz dump, and the memory it holds.

use std::fmt::Write;
use std::mem::size_of;

use ndarray::Dimension;

use super::op::Value;
use super::{Node, Tape};
use crate::Float;

/// One recorded node, as [`Tape::nodes`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// The id of the node's output value.
    pub id: usize,
    /// The op's name (`"mul"`, `"matmul"`, `"tanh"`...).
    pub op: &'static str,
    /// The ids of its inputs, in argument order.
    pub inputs: Vec<usize>,
    /// Bytes of the tensors it saved for backward that the tape owns (0 once freed;
    /// a buffer shared with another node is counted in each).
    pub saved_bytes: usize,
    /// The output's shape.
    pub shape: Vec<usize>,
}

/// What a tape holds now, from [`Tape::memory`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TapeMemory {
    /// Bytes of saved tensors the tape owns, each distinct buffer counted once
    /// (borrowed leaves cost nothing; a buffer also held by a live `Var` counts; a packed
    /// copy, `Tape::with_residuals`, two bytes per element, once however many nodes share it).
    pub saved_bytes: usize,
    /// Nodes recorded.
    pub nodes: usize,
    /// Approximate bytes of bookkeeping: the node vector, the `Rc` boxes of the
    /// saved tensors, labels and boxed closures in nodes, leaf and hook lists, and (on a
    /// tape with 16-bit residuals) the index of the packed copies.
    pub node_bytes: usize,
    /// Bytes of gradients the tape holds. Always 0 between calls: a backward
    /// hands every gradient to the returned `Gradients` (see `Gradients::bytes`),
    /// and frees each intermediate adjoint as soon as it is propagated.
    pub gradient_bytes: usize,
}

impl TapeMemory {
    /// All of the above, in bytes.
    pub fn total(&self) -> usize {
        self.saved_bytes + self.node_bytes + self.gradient_bytes
    }
}

impl<'a, F: Float> Tape<'a, F> {
    /// The recorded nodes, in creation (topological) order.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.graph.borrow().nodes.iter().map(node_info).collect()
    }

    /// The graph in Graphviz `dot` syntax: one box per leaf input, one ellipse
    /// per node (`id: op shape`), edges from inputs to the node.
    pub fn to_dot(&self) -> String {
        let graph = self.graph.borrow();
        let produced: Vec<usize> = graph.nodes.iter().map(|n| n.output).collect();
        let mut dot = String::from("digraph tape {\n  rankdir=LR;\n");
        let mut leaves: Vec<usize> = graph
            .nodes
            .iter()
            .flat_map(|n| n.inputs[..n.n_inputs as usize].iter().copied())
            .filter(|id| produced.binary_search(id).is_err())
            .collect();
        leaves.sort_unstable();
        leaves.dedup();
        for leaf in leaves {
            let kind = if graph.grad_leaves.binary_search(&leaf).is_ok() {
                "param"
            } else {
                "input"
            };
            let _ = writeln!(dot, "  v{leaf} [shape=box, label=\"{leaf}: {kind}\"];");
        }
        for node in &graph.nodes {
            let freed = if matches!(node.op, super::Op::Freed { .. }) {
                ", style=dashed"
            } else {
                ""
            };
            let _ = writeln!(
                dot,
                "  v{} [label=\"{}: {} {:?}\"{freed}];",
                node.output,
                node.output,
                node.op.name(),
                node.shape.slice()
            );
            for &input in &node.inputs[..node.n_inputs as usize] {
                let _ = writeln!(dot, "  v{input} -> v{};", node.output);
            }
        }
        dot.push_str("}\n");
        dot
    }

    /// The bytes this tape holds now (see [`TapeMemory`]).
    pub fn memory(&self) -> TapeMemory {
        let graph = self.graph.borrow();
        let mut buffers: Vec<(*const Value<'a, F>, usize)> = Vec::new();
        let (mut extra, mut residuals) = (0, 0);
        for node in &graph.nodes {
            for saved in node.op.saved().into_iter().flatten() {
                buffers.push((std::rc::Rc::as_ptr(saved), saved.owned_bytes()));
            }
            extra += node.op.extra_bytes();
            residuals += node.op.residual_bytes();
        }
        buffers.sort_unstable_by_key(|(ptr, _)| *ptr);
        buffers.dedup_by_key(|(ptr, _)| *ptr);
        // An `Rc` box is two counts and the value.
        let rc_box = 2 * size_of::<usize>() + size_of::<Value<'a, F>>();
        TapeMemory {
            saved_bytes: buffers.iter().map(|(_, bytes)| bytes).sum::<usize>() + residuals,
            nodes: graph.nodes.len(),
            node_bytes: graph.nodes.capacity() * size_of::<Node<'a, F>>()
                + buffers.len() * rc_box
                + extra
                + graph.grad_leaves.capacity() * size_of::<usize>()
                + self.hooks.borrow().capacity() * size_of::<(usize, super::Hook<'a, F>)>()
                + self.packed.borrow().capacity() * size_of::<(usize, std::rc::Weak<Value<'a, F>>)>(),
            gradient_bytes: 0,
        }
    }
}

fn node_info<F: Float>(node: &Node<'_, F>) -> NodeInfo {
    NodeInfo {
        id: node.output,
        op: node.op.name(),
        inputs: node.inputs[..node.n_inputs as usize].to_vec(),
        saved_bytes: node
            .op
            .saved()
            .into_iter()
            .flatten()
            .map(|s| s.owned_bytes())
            .sum::<usize>()
            + node.op.residual_bytes(),
        shape: node.shape.slice().to_vec(),
    }
}
