//! Data-parallel training over MPI: every rank computes the generated gradient
//! (`mlp_loss_grad`) on its shard of the batch, one `MPI_Allreduce` sums the gradients,
//! and every rank applies the same Adam step, so all ranks hold the same parameters
//! throughout. The transport is MPI's (rsmpi over OpenMPI), not ours.
//!
//! The model is a two-hidden-layer tanh MLP regressing a random teacher network's outputs
//! (plus noise) in `f64`; every rank generates the whole synthetic batch from the seed and
//! keeps its rows. `--verify` also trains a one-process copy on the whole batch from the
//! same start and checks that the parameters agree to 1e-12 and that all ranks hold
//! identical ones (the test `tests/ddp_mpi.rs` runs it on two ranks).
//!
//! ```sh
//! bash scripts/install-openmpi.sh                        # OpenMPI and libclang (Debian/Ubuntu)
//! mpirun -n 2 cargo run --release --example ddp_mpi --features mpi
//! mpirun -n 2 cargo run --release --example ddp_mpi --features mpi -- --quick --verify
//! ```
//!
//! (As root, OpenMPI's `mpirun` wants `--allow-run-as-root`; with more ranks than cores,
//! `--oversubscribe`.)

use std::ops::Range;
use std::process::ExitCode;
use std::time::Instant;

use autodiff::ndarray::s;
use autodiff::optim::{Adam, Params};
use autodiff::prelude::*;
use clap::Parser;
use mpi::collective::SystemOperation;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Mean squared error of a two-hidden-layer tanh network. `x` and `y` are data.
// One parameter per weight, so that the function reads as the model's formula.
#[allow(clippy::too_many_arguments)]
#[differentiate(wrt(w1, b1, w2, b2, w3, b3))]
fn mlp_loss(
    x: &Array2<f64>,
    y: &Array2<f64>,
    w1: &Array2<f64>,
    b1: &Array1<f64>,
    w2: &Array2<f64>,
    b2: &Array1<f64>,
    w3: &Array2<f64>,
    b3: &Array1<f64>,
) -> f64 {
    let h1 = (x.dot(w1) + b1).tanh();
    let h2 = (h1.dot(w2) + b2).tanh();
    mse(&(h2.dot(w3) + b3), y)
}

/// The MLP's parameters `(w1, b1, w2, b2, w3, b3)`, shaped as `mlp_loss_grad`'s gradients.
type Mlp = (
    Array2<f64>,
    Array1<f64>,
    Array2<f64>,
    Array1<f64>,
    Array2<f64>,
    Array1<f64>,
);

/// The leaves of [`Mlp`] in `Params` order, for messages.
const LEAF_NAMES: [&str; 6] = ["w1", "b1", "w2", "b2", "w3", "b3"];

/// The largest difference `--verify` accepts between the distributed and the
/// one-process parameters.
const TOLERANCE: f64 = 1e-12;

/// Command-line options. Every rank parses the same ones.
#[derive(Parser, Debug)]
#[command(about = "Data-parallel training of an MLP over MPI with autodiff's generated gradient")]
struct Args {
    /// A few steps, for a fast run (CI).
    #[arg(long)]
    quick: bool,
    /// Optimizer steps (default 100; 10 with --quick).
    #[arg(long)]
    steps: Option<usize>,
    /// After training, compare with one process trained on the whole batch; exit non-zero
    /// if they differ by more than 1e-12 or the ranks disagree.
    #[arg(long)]
    verify: bool,
    /// Rows in the (whole) batch. Odd by default, so that two ranks get unequal shards.
    #[arg(long, default_value_t = 4001)]
    batch: usize,
    /// Input features.
    #[arg(long, default_value_t = 32)]
    features: usize,
    /// Units in each of the two hidden layers.
    #[arg(long, default_value_t = 128)]
    hidden: usize,
    /// Outputs regressed.
    #[arg(long, default_value_t = 8)]
    outputs: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Seed of the data and the initialisation (the same on every rank).
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// The result of training on one rank: the parameters, the whole-batch loss before each
/// step, and per step the seconds of the whole step (gradient, all-reduce, optimizer
/// step), of the shard's gradient alone and of the all-reduce alone (which includes
/// waiting for the slowest rank's gradient).
struct Run {
    params: Mlp,
    losses: Vec<f64>,
    step_secs: Vec<f64>,
    gradient_secs: Vec<f64>,
    reduce_secs: Vec<f64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let steps = args.steps.unwrap_or(if args.quick { 10 } else { 100 });
    let Some(universe) = mpi::initialize() else {
        eprintln!("ddp_mpi: MPI was already initialised");
        return ExitCode::FAILURE;
    };
    let world = universe.world();
    let (rank, ranks) = (world.rank() as usize, world.size() as usize);

    // Every rank builds the same batch and the same start from the seed: nothing about
    // the data or the initialisation needs to be sent.
    let mut rng = StdRng::seed_from_u64(args.seed);
    let (x, y) = teacher_batch(args.batch, args.features, args.outputs, &mut rng);
    let init: Mlp = (
        glorot(args.features, args.hidden, &mut rng),
        Array1::zeros(args.hidden),
        glorot(args.hidden, args.hidden, &mut rng),
        Array1::zeros(args.hidden),
        glorot(args.hidden, args.outputs, &mut rng),
        Array1::zeros(args.outputs),
    );
    let rows = shard(args.batch, rank, ranks);
    let shard_x = x.slice(s![rows.clone(), ..]).to_owned();
    let shard_y = y.slice(s![rows.clone(), ..]).to_owned();
    if rank == 0 {
        let sizes: Vec<usize> = (0..ranks).map(|r| shard(args.batch, r, ranks).len()).collect();
        println!(
            "ddp_mpi: {ranks} rank(s), batch {} rows (shards {sizes:?}), MLP {}-{}-{}-{} tanh in f64 \
             ({} parameters, {} KiB of gradient per all-reduce), Adam lr {}, {steps} steps",
            args.batch,
            args.features,
            args.hidden,
            args.hidden,
            args.outputs,
            init.element_count(),
            (init.element_count() + 1) * 8 / 1024,
            args.lr,
        );
    }

    let run = train_distributed(&world, &shard_x, &shard_y, args.batch, init.clone(), args.lr, steps);
    if rank == 0 {
        println!(
            "time per step (medians over {steps} steps, rank 0): {:.2} ms; the shard's gradient {:.2} ms, \
             the all-reduce (with any wait for the other ranks) {:.3} ms, at the fastest {:.3} ms",
            1e3 * median(&run.step_secs),
            1e3 * median(&run.gradient_secs),
            1e3 * median(&run.reduce_secs),
            // The fastest all-reduce is the one where the ranks arrived together: about
            // the transfer alone.
            1e3 * run.reduce_secs.iter().copied().fold(f64::INFINITY, f64::min),
        );
        println!(
            "whole-batch loss: {:.6} before the first step, {:.6} before the last",
            run.losses.first().copied().unwrap_or(f64::NAN),
            run.losses.last().copied().unwrap_or(f64::NAN),
        );
    }
    if !args.verify {
        return ExitCode::SUCCESS;
    }

    // Every rank takes part in the spread's all-reduce; rank 0 alone trains the
    // one-process copy and sends its verdict, so that all ranks exit alike.
    let spread = spread_across_ranks(&world, &run.params);
    let mut passed = 0_u8; // rank 0's verdict, 1 for passed, after the broadcast
    if rank == 0 {
        let mut adam = Adam::new(args.lr);
        let mut reference = init;
        for _ in 0..steps {
            let (w1, b1, w2, b2, w3, b3) = &reference;
            let (_, grads) = mlp_loss_grad(&x, &y, w1, b1, w2, b2, w3, b3);
            adam.step(&mut reference, &grads);
        }
        let (leaf, difference) = largest_difference(&run.params, &reference);
        passed = u8::from(difference <= TOLERANCE && spread == 0.0);
        println!(
            "verify: {ranks} rank(s) against one process on the whole batch after {steps} steps: \
             max |difference| {difference:.3e} (at {leaf}, tolerance {TOLERANCE:e}); \
             spread across ranks {spread:.3e}: {}",
            if passed == 1 { "ok" } else { "FAILED" },
        );
    }
    world.process_at_rank(0).broadcast_into(&mut passed);
    // MPI is finalised when `universe` drops, before the exit code is returned.
    if passed == 1 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Trains `params` on this rank's shard of a `batch`-row batch: per step, the shard's
/// gradient weighted by its share of the batch, summed over the ranks by one all-reduce
/// (with the weighted loss riding along as the buffer's last element), then one Adam
/// step, the same on every rank.
///
/// Why the weights: each shard's loss is a mean over its own rows, and the shards may
/// differ in size; `Σ_r (n_r / n) · ∇ mean_r = ∇ mean`, so the sum is the whole batch's
/// gradient exactly (in exact arithmetic; in floating point, to rounding).
fn train_distributed(
    world: &SimpleCommunicator,
    x: &Array2<f64>,
    y: &Array2<f64>,
    batch: usize,
    mut params: Mlp,
    lr: f64,
    steps: usize,
) -> Run {
    let share = x.nrows() as f64 / batch as f64;
    let n = params.element_count();
    let (mut local, mut summed) = (vec![0.0; n + 1], vec![0.0; n + 1]);
    let mut adam = Adam::new(lr);
    let (mut losses, mut step_secs, mut gradient_secs, mut reduce_secs) = (vec![], vec![], vec![], vec![]);
    for _ in 0..steps {
        let start = Instant::now();
        let (loss, mut grads) = if x.nrows() == 0 {
            // More ranks than rows: this rank contributes nothing (a mean over no rows
            // would be NaN).
            let mut zeros = params.clone();
            zeros.scale(0.0);
            (0.0, zeros)
        } else {
            let (w1, b1, w2, b2, w3, b3) = &params;
            mlp_loss_grad(x, y, w1, b1, w2, b2, w3, b3)
        };
        gradient_secs.push(start.elapsed().as_secs_f64());
        flatten_into(&grads, share, &mut local[..n]);
        local[n] = share * loss;

        let reduce_start = Instant::now();
        world.all_reduce_into(&local[..], &mut summed[..], SystemOperation::sum());
        reduce_secs.push(reduce_start.elapsed().as_secs_f64());

        unflatten_from(&summed[..n], &mut grads);
        adam.step(&mut params, &grads);
        losses.push(summed[n]);
        step_secs.push(start.elapsed().as_secs_f64());
    }
    Run {
        params,
        losses,
        step_secs,
        gradient_secs,
        reduce_secs,
    }
}

/// The rows of rank `rank` out of `ranks`: contiguous, sizes differing by at most one
/// (the first `batch % ranks` ranks take the extra row).
fn shard(batch: usize, rank: usize, ranks: usize) -> Range<usize> {
    let (base, extra) = (batch / ranks, batch % ranks);
    let start = rank * base + rank.min(extra);
    start..start + base + usize::from(rank < extra)
}

/// Writes every float of `params`, leaf by leaf in `Params` order, times `factor`, into
/// `buffer` (whose length must be `params.element_count()`).
fn flatten_into(params: &impl Params<f64>, factor: f64, buffer: &mut [f64]) {
    let mut at = 0;
    params.visit(&mut |leaf| {
        for (slot, &value) in buffer[at..at + leaf.len()].iter_mut().zip(leaf.iter()) {
            *slot = factor * value;
        }
        at += leaf.len();
    });
    assert_eq!(at, buffer.len(), "the buffer holds exactly the parameters");
}

/// The inverse of [`flatten_into`] (with factor 1): overwrites `params` from `buffer`.
fn unflatten_from(buffer: &[f64], params: &mut impl Params<f64>) {
    let mut at = 0;
    params.visit_mut(&mut |mut leaf| {
        let len = leaf.len();
        for (value, &stored) in leaf.iter_mut().zip(&buffer[at..at + len]) {
            *value = stored;
        }
        at += len;
    });
    assert_eq!(at, buffer.len(), "the buffer holds exactly the parameters");
}

/// The largest difference, over all parameters, between any two ranks' copies: the
/// elementwise max minus min across ranks (two all-reduces). Zero when the ranks agree
/// bit for bit, which they should, since they apply the same step to the same sum.
fn spread_across_ranks(world: &SimpleCommunicator, params: &Mlp) -> f64 {
    let mut mine = vec![0.0; params.element_count()];
    flatten_into(params, 1.0, &mut mine);
    let (mut highest, mut lowest) = (vec![0.0; mine.len()], vec![0.0; mine.len()]);
    world.all_reduce_into(&mine[..], &mut highest[..], SystemOperation::max());
    world.all_reduce_into(&mine[..], &mut lowest[..], SystemOperation::min());
    highest.iter().zip(&lowest).fold(0.0, |m, (h, l)| m.max(h - l))
}

/// The leaf where `a` and `b` differ most, and that difference.
fn largest_difference(a: &Mlp, b: &Mlp) -> (&'static str, f64) {
    let mut differences = Vec::new();
    a.visit(&mut |leaf| differences.push(leaf.to_owned()));
    let mut leaf_index = 0;
    let mut worst = (LEAF_NAMES[0], 0.0);
    b.visit(&mut |leaf| {
        let difference = (&differences[leaf_index] - &leaf).fold(0.0_f64, |m, d| m.max(d.abs()));
        if difference > worst.1 || difference.is_nan() {
            worst = (LEAF_NAMES[leaf_index], difference);
        }
        leaf_index += 1;
    });
    worst
}

/// `batch` rows of inputs uniform in [-1, 1] and the outputs of a random tanh teacher
/// network (16 hidden units) plus Gaussian-ish noise of scale 0.05.
fn teacher_batch(batch: usize, features: usize, outputs: usize, rng: &mut StdRng) -> (Array2<f64>, Array2<f64>) {
    let x = Array2::from_shape_fn((batch, features), |_| rng.gen_range(-1.0..1.0));
    let teacher_in = glorot(features, 16, rng) * 2.0;
    let teacher_out = glorot(16, outputs, rng) * 2.0;
    let noise = Array2::from_shape_fn((batch, outputs), |_| {
        // The sum of three uniforms: close enough to a normal for noise.
        0.05 * (0..3).map(|_| rng.gen_range(-1.0..1.0)).sum::<f64>()
    });
    let y = x.dot(&teacher_in).tanh().dot(&teacher_out) + noise;
    (x, y)
}

/// Glorot (Xavier) uniform initialisation of a `fan_in × fan_out` weight matrix.
fn glorot(fan_in: usize, fan_out: usize, rng: &mut StdRng) -> Array2<f64> {
    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
    Array2::from_shape_fn((fan_in, fan_out), |_| rng.gen_range(-limit..limit))
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}
