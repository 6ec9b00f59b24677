//! Custom rules on the tape: a node whose backward is a user's function (the tape side of
//! `#[differentiate(vjp = ..)]`, usable directly through [`Tape::custom`]).
//!
//! A node has at most three inputs. A rule of more inputs is recorded as a chain: the first
//! node takes inputs 0..3, each later node the previous node's output and the next two
//! inputs. The last node (whose backward runs first) calls the rule once, leaves the earlier
//! inputs' adjoints in a cell the chain shares, passes the output's adjoint on to the node
//! before it, and sends its own inputs' adjoints; each earlier node takes its own from the cell.

use std::cell::RefCell;
use std::rc::Rc;

use ndarray::ArrayD;

use super::op::{Emit, Op};
use super::{Tape, Var};
use crate::Float;

/// A user's VJP: the output's adjoint → one adjoint per input, shaped like the input.
pub(crate) type Rule<'a, F> = dyn Fn(&ArrayD<F>) -> Vec<ArrayD<F>> + 'a;

/// A chain's adjoints, one slot per input of the rule, filled by the chain's last node.
type Shared<F> = Rc<RefCell<Vec<Option<ArrayD<F>>>>>;

/// One node of a custom rule.
pub(crate) struct Custom<'a, F: Float> {
    /// The rule, on the node that calls it (the only node, or a chain's last).
    rule: Option<Rc<Rule<'a, F>>>,
    /// A chain's adjoints, left by its last node for the earlier ones.
    shared: Option<Shared<F>>,
    /// The position, among the rule's inputs, of this node's first own input.
    first: usize,
    /// How many of the rule's inputs this node has.
    count: usize,
    /// Whether this node's input 0 is the previous node of the chain.
    chained: bool,
    /// How many inputs the rule has in all.
    total: usize,
}

impl<'a, F: Float> Custom<'a, F> {
    /// Sends each of this node's inputs its adjoint (and the chain's previous node `g`).
    pub(crate) fn backward(&self, g: ArrayD<F>, needs: [bool; 3], emit: &mut Emit<'_, F>) {
        let own: Vec<Option<ArrayD<F>>> = match (&self.rule, &self.shared) {
            (Some(rule), shared) => {
                let adjoints = rule(&g);
                assert_eq!(
                    adjoints.len(),
                    self.total,
                    "custom rule: the VJP returned {} adjoints for {} inputs",
                    adjoints.len(),
                    self.total
                );
                let mut adjoints: Vec<Option<ArrayD<F>>> = adjoints.into_iter().map(Some).collect();
                let own = adjoints[self.first..self.first + self.count]
                    .iter_mut()
                    .map(Option::take)
                    .collect();
                if let Some(shared) = shared {
                    *shared.borrow_mut() = adjoints;
                }
                own
            }
            (None, Some(shared)) => shared.borrow_mut()[self.first..self.first + self.count]
                .iter_mut()
                .map(Option::take)
                .collect(),
            (None, None) => unreachable!("a custom node has its rule or a chain's cell"),
        };
        let start = usize::from(self.chained);
        for (j, adjoint) in own.into_iter().enumerate() {
            if let (true, Some(adjoint)) = (needs[start + j], adjoint) {
                emit(start + j, adjoint);
            }
        }
        if self.chained && needs[0] {
            emit(0, g);
        }
    }
}

impl<'a, F: Float> Tape<'a, F> {
    /// Records a node computed outside the tape: `value` is the output (computed by the
    /// caller from the inputs' values), and `backward` maps the output's adjoint to one
    /// adjoint per input, each shaped like its input (0-d for a float). It is called once per
    /// backward, and kept (with whatever it owns) until the backward has run, as a saved tensor.
    ///
    /// # Panics
    /// In backward, if `backward` returns a number of adjoints other than `inputs.len()`.
    pub fn custom<'t>(
        &'t self,
        inputs: &[&Var<'t, 'a, F>],
        value: ArrayD<F>,
        backward: impl Fn(&ArrayD<F>) -> Vec<ArrayD<F>> + 'a,
    ) -> Var<'t, 'a, F> {
        let rule: Rc<Rule<'a, F>> = Rc::new(backward);
        let total = inputs.len();
        if total <= 3 {
            return self.record(value, inputs, |_| {
                Op::Custom(Box::new(Custom {
                    rule: Some(rule),
                    shared: None,
                    first: 0,
                    count: total,
                    chained: false,
                    total,
                }))
            });
        }
        let shared = Rc::new(RefCell::new(Vec::new()));
        let mut output = self.record(value.clone(), &inputs[..3], |_| {
            Op::Custom(Box::new(Custom {
                rule: None,
                shared: Some(shared.clone()),
                first: 0,
                count: 3,
                chained: false,
                total,
            }))
        });
        let mut first = 3;
        while first < total {
            let count = (total - first).min(2);
            let last = first + count == total;
            let mut node_inputs: Vec<&Var<'t, 'a, F>> = vec![&output];
            node_inputs.extend(&inputs[first..first + count]);
            let node = Custom {
                rule: last.then(|| rule.clone()),
                shared: Some(shared.clone()),
                first,
                count,
                chained: true,
                total,
            };
            let value = if last { value.clone() } else { output.value().to_owned() };
            let next = self.record(value, &node_inputs, |_| Op::Custom(Box::new(node)));
            output = next;
            first += count;
        }
        output
    }
}
