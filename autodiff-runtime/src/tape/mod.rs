//! The dynamic, PyTorch-style reverse mode: ops record themselves on a [`Tape`]
//! as they run, and [`Tape::backward`] sweeps the recording in reverse.
//!
//! It is the baseline that the compile-time mode is compared with, so it is
//! built to be a good tape, on the very same kernels (`crate::kernels`):
//! - **record**: each [`Var`] op runs its forward kernel and, if an input
//!   requires a gradient, pushes one node holding exactly what the kernel's
//!   backward reads (`exp` its output, `mul` the other operand, `add` only
//!   shapes). If no input requires a gradient nothing is recorded or saved
//!   (pruning), and adjoints of inputs that do not require one are never computed;
//! - **topological order**: node ids are creation order, which is topological;
//! - **reverse sweep**: walk the nodes backwards, run each node's rule (one
//!   exhaustive `match` in `op.rs`), accumulate adjoints with `+=` where a value
//!   is used twice, run hooks, and free each node's saved tensors and its adjoint
//!   as soon as it is done (unless the graph is retained).
//!
//! Leaves borrow their data (no copy). Values are reference-counted: an
//! intermediate is freed when no [`Var`] and no saved-tensor slot refers to it.
//!
//! ```
//! use autodiff_runtime::tape::Tape;
//! use ndarray::array;
//!
//! let a = array![[1.0, -2.0], [3.0, 4.0]];
//! let b = array![[0.5], [0.25]];
//! let tape = Tape::new();
//! let x = tape.param(&a);
//! let w = tape.param(&b);
//! let y = x.dot(&w).relu().sum(); // relu([0, 2.5]) summed
//! assert_eq!(y.scalar(), 2.5);
//! let g = tape.backward(&y);
//! // dy/dw = xᵀ · relu'(x·w) = row 1 of x (row 0 is cut by the relu).
//! assert_eq!(g[&w], array![[3.0], [4.0]].into_dyn());
//! ```

mod gradients;
mod inspect;
mod op;
mod var;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use ndarray::{Array, ArrayBase, ArrayD, Data, Dimension, IxDyn};

use crate::Float;
use op::{Op, Value};

pub use gradients::Gradients;
pub use inspect::{NodeInfo, TapeMemory};
pub use var::Var;

/// A hook registered with [`Var::register_hook`]: sees a full adjoint, may replace it.
type Hook<'a, F> = Box<dyn Fn(&ArrayD<F>) -> Option<ArrayD<F>> + 'a>;

/// The dynamic recording of a computation: leaves, and one node per op that
/// needs a backward. `'a` is the lifetime of the leaf data it borrows.
pub struct Tape<'a, F: Float> {
    /// The next value id; every `Var` (leaf, node output, or pruned result) takes one.
    next_id: Cell<usize>,
    graph: RefCell<Graph<'a, F>>,
    /// Hooks by value id, in registration order (few, so a scan is cheapest).
    hooks: RefCell<Vec<(usize, Hook<'a, F>)>>,
}

/// What the tape records.
struct Graph<'a, F: Float> {
    /// In creation order, hence in increasing `output` id: a topological order.
    nodes: Vec<Node<'a, F>>,
    /// Ids of the leaves that require a gradient, increasing.
    grad_leaves: Vec<usize>,
}

/// One recorded op: `output = op(inputs)`.
struct Node<'a, F: Float> {
    output: usize,
    inputs: [usize; 3],
    n_inputs: u8,
    /// Which inputs require a gradient (the only adjoints the rule computes).
    needs: [bool; 3],
    name: &'static str,
    shape: IxDyn,
    op: Op<'a, F>,
}

impl<'a, F: Float> Default for Tape<'a, F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, F: Float> Tape<'a, F> {
    /// An empty tape.
    pub fn new() -> Self {
        Tape {
            next_id: Cell::new(0),
            graph: RefCell::new(Graph {
                nodes: Vec::new(),
                grad_leaves: Vec::new(),
            }),
            hooks: RefCell::new(Vec::new()),
        }
    }

    /// A leaf that requires a gradient, borrowing `value` (no copy).
    pub fn param<S: Data<Elem = F>, D: Dimension>(&self, value: &'a ArrayBase<S, D>) -> Var<'_, 'a, F> {
        self.leaf(Value::Borrowed(value.view().into_dyn()), true)
    }

    /// A leaf that does not require a gradient, borrowing `value` (no copy).
    pub fn constant<S: Data<Elem = F>, D: Dimension>(&self, value: &'a ArrayBase<S, D>) -> Var<'_, 'a, F> {
        self.leaf(Value::Borrowed(value.view().into_dyn()), false)
    }

    /// A leaf that requires a gradient, owning `value`.
    pub fn param_owned<D: Dimension>(&self, value: Array<F, D>) -> Var<'_, 'a, F> {
        self.leaf(Value::Owned(value.into_dyn()), true)
    }

    /// A leaf that does not require a gradient, owning `value`.
    pub fn constant_owned<D: Dimension>(&self, value: Array<F, D>) -> Var<'_, 'a, F> {
        self.leaf(Value::Owned(value.into_dyn()), false)
    }

    /// A 0-d leaf that requires a gradient.
    pub fn param_scalar(&self, value: F) -> Var<'_, 'a, F> {
        self.leaf(Value::Owned(op::scalar_array(value)), true)
    }

    /// A 0-d leaf that does not require a gradient.
    pub fn constant_scalar(&self, value: F) -> Var<'_, 'a, F> {
        self.leaf(Value::Owned(op::scalar_array(value)), false)
    }

    /// Nodes recorded (ops with a backward; pruned ops and leaves do not count).
    pub fn len(&self) -> usize {
        self.graph.borrow().nodes.len()
    }

    /// Whether no node has been recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn fresh_id(&self) -> usize {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    fn leaf(&self, value: Value<'a, F>, requires_grad: bool) -> Var<'_, 'a, F> {
        let id = self.fresh_id();
        if requires_grad {
            self.graph.borrow_mut().grad_leaves.push(id);
        }
        Var::new(self, Rc::new(value), id, requires_grad, true)
    }

    // ---- record -------------------------------------------------------------

    /// Wraps an op's forward result and, if any input requires a gradient,
    /// records a node whose op `make_op` builds (given the output, for ops whose
    /// backward reads it). Otherwise nothing is recorded and `make_op` never runs,
    /// so nothing is saved.
    pub(crate) fn record(
        &self,
        value: ArrayD<F>,
        inputs: &[&Var<'_, 'a, F>],
        make_op: impl FnOnce(&Rc<Value<'a, F>>) -> Op<'a, F>,
    ) -> Var<'_, 'a, F> {
        let output = self.fresh_id();
        let value = Rc::new(Value::Owned(value));
        let mut ids = [usize::MAX; 3];
        let mut needs = [false; 3];
        for (k, input) in inputs.iter().enumerate() {
            assert!(
                std::ptr::eq(input.tape(), self),
                "tape: input {k} of an op (var {}) belongs to another tape",
                input.id()
            );
            ids[k] = input.id();
            needs[k] = input.requires_grad();
        }
        if !needs.contains(&true) {
            return Var::new(self, value, output, false, false);
        }
        let op = make_op(&value);
        let node = Node {
            output,
            inputs: ids,
            n_inputs: inputs.len() as u8,
            needs,
            name: op.name(),
            shape: IxDyn(value.shape()),
            op,
        };
        self.graph.borrow_mut().nodes.push(node);
        Var::new(self, value, output, true, false)
    }

    pub(crate) fn push_hook(&self, id: usize, hook: Hook<'a, F>) {
        self.hooks.borrow_mut().push((id, hook));
    }

    // ---- reverse sweep ------------------------------------------------------

    /// Gradients of `output` (which must hold exactly one element) with respect
    /// to every leaf that requires a gradient, seeded with 1. The graph is
    /// consumed: each node's saved tensors are freed right after its backward
    /// ran, and a second backward through it panics (see [`Tape::backward_retain`]).
    ///
    /// # Panics
    /// If `output` has more than one element (naming its shape), does not
    /// require a gradient, or its graph was consumed by an earlier backward.
    pub fn backward(&self, output: &Var<'_, 'a, F>) -> Gradients<F> {
        let seed = Self::unit_seed(output);
        self.backward_with_seed(output, seed, false)
    }

    /// [`Tape::backward`], keeping the graph (and its saved tensors) for another backward.
    pub fn backward_retain(&self, output: &Var<'_, 'a, F>) -> Gradients<F> {
        let seed = Self::unit_seed(output);
        self.backward_with_seed(output, seed, true)
    }

    fn unit_seed(output: &Var<'_, 'a, F>) -> ArrayD<F> {
        assert_eq!(
            output.value().len(),
            1,
            "backward: the output must hold exactly one element, but var {} has shape {:?} \
             (use backward_with_seed for a vector-Jacobian product)",
            output.id(),
            output.shape()
        );
        Array::from_elem(output.shape(), F::one())
    }

    /// The vector-Jacobian product `seedᵀ·∂output/∂leaf` for every leaf that
    /// requires a gradient. With `retain_graph = false` the graph is consumed as
    /// in [`Tape::backward`].
    ///
    /// # Panics
    /// If `seed`'s shape differs from `output`'s (naming both), `output` does not
    /// require a gradient, or a node on the way was freed by an earlier backward.
    pub fn backward_with_seed(&self, output: &Var<'_, 'a, F>, seed: ArrayD<F>, retain_graph: bool) -> Gradients<F> {
        assert_eq!(
            seed.shape(),
            output.shape(),
            "backward: seed shape {:?} differs from the output shape {:?}",
            seed.shape(),
            output.shape()
        );
        assert!(
            std::ptr::eq(output.tape(), self),
            "backward: var {} belongs to another tape",
            output.id()
        );
        assert!(
            output.requires_grad(),
            "backward: var {} (shape {:?}) does not require a gradient: no parameter reaches it",
            output.id(),
            output.shape()
        );
        let mut graph = self.graph.borrow_mut();
        let hooks = self.hooks.borrow();
        let Graph { nodes, grad_leaves } = &mut *graph;

        // One adjoint slot per value id up to the output; `None` = no contribution yet.
        let mut adjoints: Vec<Option<ArrayD<F>>> = Vec::with_capacity(output.id() + 1);
        adjoints.resize_with(output.id() + 1, || None);
        adjoints[output.id()] = Some(seed);

        // Reverse creation order is a reverse topological order: when a node is
        // reached, every consumer of its output has already contributed.
        let end = nodes.partition_point(|node| node.output <= output.id());
        for node in nodes[..end].iter_mut().rev() {
            let Some(mut g) = adjoints[node.output].take() else {
                continue; // does not reach the output
            };
            if !hooks.is_empty() {
                g = run_hooks(&hooks, node.output, g);
            }
            if let Op::Freed = node.op {
                panic!(
                    "backward: node {} ({}) was already consumed by an earlier backward that freed its saved \
                     tensors; use backward_retain (or backward_with_seed with retain_graph = true) to \
                     backward through a graph more than once",
                    node.output, node.name
                );
            }
            let input_adjoints = if retain_graph {
                node.op.backward(g, node.needs)
            } else {
                // The op, and with it the node's saved tensors, is dropped right after its rule ran.
                std::mem::replace(&mut node.op, Op::Freed).backward(g, node.needs)
            };
            for (k, adjoint) in input_adjoints.into_iter().enumerate().take(node.n_inputs as usize) {
                if let Some(adjoint) = adjoint {
                    accumulate(&mut adjoints[node.inputs[k]], adjoint);
                }
            }
        }

        let mut grads = Vec::new();
        for &leaf in grad_leaves.iter().take_while(|&&leaf| leaf <= output.id()) {
            if let Some(mut g) = adjoints[leaf].take() {
                if !hooks.is_empty() {
                    g = run_hooks(&hooks, leaf, g);
                }
                grads.push((leaf, Some(g)));
            }
        }
        Gradients::new(grads)
    }
}

/// Adds one contribution to an adjoint: the first is moved in, later ones `+=`
/// (over flat slices when both are contiguous, which skips `IxDyn` iteration).
fn accumulate<F: Float>(slot: &mut Option<ArrayD<F>>, g: ArrayD<F>) {
    match slot {
        Some(sum) => {
            assert_eq!(
                sum.shape(),
                g.shape(),
                "backward: adjoint contributions of shapes {:?} and {:?}",
                sum.shape(),
                g.shape()
            );
            match (sum.as_slice_mut(), g.as_slice()) {
                (Some(sum), Some(g)) => sum.iter_mut().zip(g).for_each(|(s, &g)| *s += g),
                _ => *sum += &g,
            }
        }
        None => *slot = Some(g),
    }
}

/// Runs the hooks of value `id` in registration order; each sees the previous one's result.
fn run_hooks<F: Float>(hooks: &[(usize, Hook<'_, F>)], id: usize, mut g: ArrayD<F>) -> ArrayD<F> {
    for (hook_id, hook) in hooks {
        if *hook_id == id {
            if let Some(replaced) = hook(&g) {
                assert_eq!(
                    replaced.shape(),
                    g.shape(),
                    "register_hook: the hook of var {id} returned shape {:?} for a gradient of shape {:?}",
                    replaced.shape(),
                    g.shape()
                );
                g = replaced;
            }
        }
    }
    g
}
