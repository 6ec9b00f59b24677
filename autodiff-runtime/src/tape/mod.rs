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
//!   as soon as it is done (unless the graph is retained). Each node holds the slot
//!   of its output's adjoint and knows which node (or leaf) each input came from, so
//!   the sweep allocates nothing per node and looks nothing up.
//!
//! Leaves borrow their data (no copy). Values are reference-counted: an
//! intermediate is freed when no [`Var`] and no saved-tensor slot refers to it.
//! A tape made with [`Tape::with_residuals`] keeps the computed arrays its nodes save
//! rounded to 16 bits instead (one packed copy per value), unpacked for each rule.
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

mod custom;
mod gradients;
mod inspect;
mod op;
mod table;
mod var;

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use ndarray::{Array, ArrayBase, ArrayD, Data, Dimension, IxDyn};

use crate::kernels::packed::{Half, Packed};
use crate::Float;
use op::{Op, Saved, Value};

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
    /// The 16-bit format computed arrays are kept in for backward (`None`: as computed).
    residuals: Option<Half>,
    /// With `residuals`: the packed copy of each computed value some node saves, by value id
    /// (increasing), so that every node saving a value shares one copy. Weak, so that the
    /// copy is freed with the last node holding it; dead entries are dropped after a backward.
    packed: RefCell<Vec<(usize, Weak<Value<'a, F>>)>>,
}

/// What the tape records.
struct Graph<'a, F: Float> {
    /// In creation order, hence in increasing `output` id: a topological order.
    nodes: Vec<Node<'a, F>>,
    /// Ids of the leaves that require a gradient, increasing; a leaf's [`Slot::Leaf`] indexes this.
    grad_leaves: Vec<usize>,
    /// Set while a backward sweeps: if it is still set when the next one starts, that
    /// sweep unwound (a hook or a kernel panicked) and may have left adjoints in nodes.
    sweeping: bool,
}

/// Where the adjoint of a value is accumulated during a backward. Each `Var` carries
/// its value's slot and each node its inputs' slots, so that the reverse sweep reaches
/// them by index: no map from value ids, and no table as long as the value ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The value requires no gradient (a constant, or computed from constants only).
    None,
    /// The output of the node at this index of `Graph::nodes`.
    Node(u32),
    /// The leaf at this index of `Graph::grad_leaves`.
    Leaf(u32),
}

impl Slot {
    /// A slot index from a vector length; `u32` keeps a node's three input slots in 24 bytes.
    fn index(len: usize) -> u32 {
        u32::try_from(len).unwrap_or_else(|_| panic!("tape: more than {} nodes or leaves", u32::MAX))
    }
}

/// One recorded op: `output = op(inputs)`.
struct Node<'a, F: Float> {
    op: Op<'a, F>,
    /// The adjoint of `output` while a backward sweeps: contributions of the node's
    /// consumers accumulate here, and the node takes it when its turn comes. Kept in
    /// the node, whose memory the recording already touched, so that a backward
    /// allocates no table of adjoints.
    adjoint: Option<ArrayD<F>>,
    /// The output's shape, for `Tape::nodes` and `Tape::to_dot`.
    shape: IxDyn,
    /// The output's value id.
    output: usize,
    /// The inputs' value ids, in argument order.
    inputs: [usize; 3],
    /// Where each input's adjoint goes; [`Slot::None`] for an input that needs no gradient,
    /// whose adjoint the rule never computes.
    sources: [Slot; 3],
    n_inputs: u8,
}

impl<F: Float> Node<'_, F> {
    /// Which inputs require a gradient (the only adjoints the rule computes).
    fn needs(&self) -> [bool; 3] {
        self.sources.map(|source| source != Slot::None)
    }
}

impl<'a, F: Float> Default for Tape<'a, F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, F: Float> Tape<'a, F> {
    /// An empty tape, which keeps what backward reads as forward computed it.
    pub fn new() -> Self {
        Tape {
            next_id: Cell::new(0),
            graph: RefCell::new(Graph {
                nodes: Vec::new(),
                grad_leaves: Vec::new(),
                sweeping: false,
            }),
            hooks: RefCell::new(Vec::new()),
            residuals: None,
            packed: RefCell::new(Vec::new()),
        }
    }

    /// An empty tape that keeps the arrays it computed, where a node saves them for
    /// backward, rounded to 16 bits (`format`): the tape's side of
    /// `#[differentiate(residuals = "bf16")]` (or `"f16"`). Forward computes in `F` as
    /// usual; each saved computed array is packed once (one copy shared by every node that
    /// saves it, counted once by [`Tape::memory`]) and unpacked into an `F` array just before
    /// the rule of a node reading it runs, which computes and accumulates in `F`. Once the
    /// `Var`s of a value are dropped, the tape holds its packed copy only: half the bytes of
    /// an `f32` array, a quarter of an `f64` one.
    ///
    /// Kept as they are: leaves (a borrowed one costs the tape nothing, an owned one is the
    /// caller's data), 0-d values (the static code's floats), relu's sign masks, and a table
    /// row's aux residuals (batch norm's statistics, max-pooling's window indices). Batch
    /// norm reading its input rounded measures that input's statistics in its backward sums
    /// (`batch_norm_sums_measuring`), the exact derivative at the rounded input, as the
    /// static code does.
    ///
    /// The gradients are those of the static code under the same option where both keep
    /// the same values rounded (up to the order of float operations). They may differ in
    /// functions with loops: the static code keeps a loop's carried states as computed (one
    /// buffer shared between iterations), where the tape, which sees no loop, packs them.
    ///
    /// ```
    /// use autodiff_runtime::kernels::packed::Half;
    /// use autodiff_runtime::tape::Tape;
    /// use ndarray::{Array2, ArrayD};
    ///
    /// /// `sum(tanh(x·w)²)`: its gradient in `w`, and the bytes saved for backward.
    /// fn run<'a>(tape: &Tape<'a, f32>, x: &'a Array2<f32>, w: &'a Array2<f32>) -> (ArrayD<f32>, usize) {
    ///     let (x, w) = (tape.constant(x), tape.param(w));
    ///     let h = x.dot(&w).tanh(); // tanh keeps its output, 64×16, for its rule
    ///     let y = h.mul(&h).sum(); // mul keeps h too: the same buffer (the same packed copy)
    ///     let saved = tape.memory().saved_bytes;
    ///     (tape.backward(&y).take(&w).unwrap(), saved)
    /// }
    ///
    /// let x = Array2::from_shape_fn((64, 32), |(i, j)| ((i * 32 + j) as f32 * 0.01).sin());
    /// let w = Array2::from_shape_fn((32, 16), |(i, j)| ((i + 2 * j) as f32 * 0.1).cos() / 8.0);
    /// let (exact, full) = run(&Tape::new(), &x, &w);
    /// let (rounded, half) = run(&Tape::with_residuals(Half::Bf16), &x, &w);
    /// // h, counted once (x is borrowed: the tape holds none of it).
    /// assert_eq!((full, half), (64 * 16 * 4, 64 * 16 * 2));
    /// // Within bf16's rounding (8 significant bits) of the largest entry, and not exact.
    /// let scale = exact.iter().fold(0f32, |m, g| m.max(g.abs()));
    /// assert!((&rounded - &exact).iter().all(|e| e.abs() < 1e-2 * scale));
    /// assert_ne!(rounded, exact);
    /// ```
    pub fn with_residuals(format: Half) -> Self {
        Tape {
            residuals: Some(format),
            ..Self::new()
        }
    }

    /// The 16-bit format this tape keeps its saved computed arrays in
    /// ([`Tape::with_residuals`]); `None` for a tape that keeps them as computed.
    pub fn residuals(&self) -> Option<Half> {
        self.residuals
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
        let slot = if requires_grad {
            let grad_leaves = &mut self.graph.borrow_mut().grad_leaves;
            grad_leaves.push(id);
            Slot::Leaf(Slot::index(grad_leaves.len() - 1))
        } else {
            Slot::None
        };
        Var::new(self, Rc::new(value), id, slot, true)
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
        let mut sources = [Slot::None; 3];
        for (k, input) in inputs.iter().enumerate() {
            assert!(
                std::ptr::eq(input.tape(), self),
                "tape: input {k} of an op (var {}) belongs to another tape",
                input.id()
            );
            ids[k] = input.id();
            sources[k] = input.slot();
        }
        if sources == [Slot::None; 3] {
            return Var::new(self, value, output, Slot::None, false);
        }
        let mut op = make_op(&value);
        if let Some(format) = self.residuals {
            self.pack_saved(&mut op, format, inputs, &value, output);
        }
        let nodes = &mut self.graph.borrow_mut().nodes;
        let slot = Slot::Node(Slot::index(nodes.len()));
        nodes.push(Node {
            op,
            adjoint: None,
            // A clone of the value's own dimension: building an `IxDyn` from a slice costs more.
            shape: value.raw_dim(),
            output,
            inputs: ids,
            sources,
            n_inputs: inputs.len() as u8,
        });
        Var::new(self, value, output, slot, false)
    }

    /// Replaces each saved computed array of a new node by its value's packed copy (made
    /// now if no earlier node saved the value). A saved tensor is one of the node's inputs
    /// or its output; which one says whether it is a leaf (kept as it is) and its id.
    /// Not inlined: `record` runs for every op of every tape, and stays as small as it was.
    #[inline(never)]
    fn pack_saved(
        &self,
        op: &mut Op<'a, F>,
        format: Half,
        inputs: &[&Var<'_, 'a, F>],
        output_value: &Saved<'a, F>,
        output: usize,
    ) {
        for slot in op.packable_mut().into_iter().flatten() {
            let id = if Rc::ptr_eq(slot, output_value) {
                output
            } else {
                match inputs.iter().find(|input| input.holds(slot)) {
                    Some(input) if !input.is_leaf() => input.id(),
                    _ => continue,
                }
            };
            // A 0-d value is a float in the static code, which keeps those as they are.
            let Value::Owned(array) = &**slot else { continue };
            if array.ndim() == 0 {
                continue;
            }
            let mut packed = self.packed.borrow_mut();
            let at = match packed.binary_search_by_key(&id, |(id, _)| *id) {
                Ok(at) => {
                    if let Some(copy) = packed[at].1.upgrade() {
                        *slot = copy;
                        continue;
                    }
                    at // packed before, and freed by a backward since
                }
                Err(at) => {
                    packed.insert(at, (id, Weak::new()));
                    at
                }
            };
            let copy = Rc::new(Value::Packed(Packed::pack(array, format)));
            packed[at].1 = Rc::downgrade(&copy);
            *slot = copy;
        }
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
        let packing = self.residuals.is_some();
        let Graph {
            nodes,
            grad_leaves,
            sweeping,
        } = &mut *graph;
        if std::mem::replace(sweeping, true) {
            // The previous sweep unwound part-way; its adjoints must not leak into this one.
            nodes.iter_mut().for_each(|node| node.adjoint = None);
        }

        // Leaves up to the output; a leaf created after it cannot reach it.
        let n_leaves = grad_leaves.partition_point(|&leaf| leaf <= output.id());
        let mut leaf_adjoints: Vec<Option<ArrayD<F>>> = Vec::with_capacity(n_leaves);
        leaf_adjoints.resize_with(n_leaves, || None);
        let end = match output.slot() {
            Slot::Node(index) => {
                nodes[index as usize].adjoint = Some(seed);
                index as usize + 1
            }
            Slot::Leaf(index) => {
                leaf_adjoints[index as usize] = Some(seed);
                0
            }
            Slot::None => unreachable!("checked above: the output requires a gradient"),
        };

        // Reverse creation order is a reverse topological order: when a node is
        // reached, every consumer of its output has already contributed, and its
        // inputs are earlier nodes (or leaves), still to come.
        for index in (0..end).rev() {
            let (earlier, rest) = nodes.split_at_mut(index);
            let node = &mut rest[0];
            let Some(mut g) = node.adjoint.take() else {
                continue; // does not reach the output
            };
            if !hooks.is_empty() {
                g = run_hooks(&hooks, node.output, g);
            }
            if let Op::Freed { name } = node.op {
                panic!(
                    "backward: node {} ({name}) was already consumed by an earlier backward that freed its saved \
                     tensors; use backward_retain (or backward_with_seed with retain_graph = true) to \
                     backward through a graph more than once",
                    node.output
                );
            }
            // Packed residuals widened for this rule only: a value saved by several nodes is
            // unpacked for each, and the wide copy freed with the rule.
            let packed = if packing { unpack(&mut node.op) } else { [None, None] };
            let sources = node.sources;
            node.op.backward(g, node.needs(), &mut |k, adjoint| match sources[k] {
                Slot::Node(input) => accumulate(&mut earlier[input as usize].adjoint, adjoint),
                Slot::Leaf(leaf) => accumulate(&mut leaf_adjoints[leaf as usize], adjoint),
                Slot::None => unreachable!("a rule computes adjoints of needed inputs only"),
            });
            if !retain_graph {
                // The node's saved tensors are freed as soon as its rule has run.
                node.op = Op::Freed { name: node.op.name() };
            } else if packing {
                // A retained graph keeps the packed copies, shared as before.
                repack(&mut node.op, packed);
            }
        }
        *sweeping = false;
        if packing {
            // Copies whose last node this sweep freed.
            self.packed.borrow_mut().retain(|(_, copy)| copy.strong_count() > 0);
        }

        let mut grads = Vec::new();
        for (&leaf, adjoint) in grad_leaves.iter().zip(leaf_adjoints) {
            if let Some(mut g) = adjoint {
                if !hooks.is_empty() {
                    g = run_hooks(&hooks, leaf, g);
                }
                grads.push((leaf, Some(g)));
            }
        }
        Gradients::new(grads)
    }
}

/// Widens the packed residuals a node holds into arrays of `F` for its rule, returning the
/// packed copies (by slot) to put back if the graph is retained. Not inlined, as
/// [`repack`]: the sweep's loop stays the unpacked tape's.
#[inline(never)]
fn unpack<'a, F: Float>(op: &mut Op<'a, F>) -> [Option<Saved<'a, F>>; 2] {
    let mut packed = [None, None];
    for (slot, out) in op.saved_mut().into_iter().zip(&mut packed) {
        if let Some(slot) = slot {
            if let Value::Packed(copy) = &**slot {
                let wide = Rc::new(Value::Unpacked(copy.unpack::<F>()));
                *out = Some(std::mem::replace(slot, wide));
            }
        }
    }
    packed
}

/// Puts back the packed copies [`unpack`] took out of a node's slots.
#[inline(never)]
fn repack<'a, F: Float>(op: &mut Op<'a, F>, packed: [Option<Saved<'a, F>>; 2]) {
    for (slot, packed) in op.saved_mut().into_iter().zip(packed) {
        if let (Some(slot), Some(packed)) = (slot, packed) {
            *slot = packed;
        }
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

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    use super::Tape;

    /// A sweep that unwinds part-way leaves adjoints in nodes it had not reached yet;
    /// the next backward must not add them in.
    #[test]
    fn a_backward_after_an_unwound_one_starts_clean() {
        let tape = Tape::new();
        let x = tape.param_scalar(1.0);
        let (twice, thrice) = (x.mul_scalar(2.0), x.mul_scalar(3.0));
        let y = twice.add(&thrice);
        let armed = Cell::new(true);
        // `thrice` is swept before `twice`, which holds its adjoint when the hook panics.
        thrice.register_hook(move |_| {
            assert!(!armed.replace(false), "the hook panics once");
            None
        });
        let unwound = catch_unwind(AssertUnwindSafe(|| tape.backward_retain(&y)));
        assert!(unwound.is_err());
        let mut grads = tape.backward_retain(&y);
        assert_eq!(grads.take_scalar(&x), 5.0);
    }

    /// The output of a backward may be a leaf: its gradient is the seed, and no node runs.
    #[test]
    fn the_gradient_of_a_leaf_is_the_seed() {
        let tape = Tape::new();
        let x = tape.param_scalar(2.0);
        let y = x.mul_scalar(3.0);
        let mut grads = tape.backward(&x);
        assert_eq!(grads.take_scalar(&x), 1.0);
        // The graph after the leaf was not consumed.
        assert_eq!(tape.backward(&y).take_scalar(&x), 3.0);
    }
}
