//! The static-vs-dynamic study: one command that measures, on this CPU, how the
//! gradient code `#[differentiate]` generates compares with the runtime's
//! dynamic tape (and with PyTorch, when its results are present) in backward
//! time, memory, per-node overhead as graphs grow deep, and gradient accuracy.
//!
//! `cargo run --release -p autodiff-study -- [--quick] [--cases a,b] [--threads N]
//! [--dtype f32|f64|both] [--scale S] [--reps N] [--out DIR] [--skip depth,stability]`
//!
//! Modules, one job each: `cases` (the six functions, shapes, inputs), `floor`
//! (the hand-written kernel sequence), `runs` (the three modes behind one
//! interface), `measure` (timing and heap), `accuracy`, `depth`, `stability`,
//! `report` (JSON, tables, plots), `pytorch` (PyTorch's results), `hvp` (what a
//! Hessian-vector product costs against two gradients).

#[macro_use]
mod wiring;

mod ablation;
mod accuracy;
mod cases;
mod depth;
mod floor;
mod hvp;
mod measure;
mod pytorch;
mod report;
mod runs;
mod stability;

use std::path::PathBuf;
use std::time::Duration;

use autodiff::runtime::alloc::CountingAllocator;
use autodiff::Float;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

use cases::{Case, Inputs, Shapes, Wrt};
use measure::{interleaved, Budget};
use report::{CaseResult, ModeResult, Results};
use runs::{modes, phase_samplers, Mode, Phase};

/// Every allocation of the process is counted: peak and held bytes come from here.
#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

/// The seed of the timed inputs.
const SEED: u64 = 2024;

/// The static-vs-dynamic reverse-mode study (see the README).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// A seconds-long smoke run: scale 0.125 (unless --scale is given), 3 repetitions,
    /// straight-line chains up to depth 1000 (loop chains up to 10000), MLPs up to 8 layers.
    #[arg(long)]
    quick: bool,
    /// Comma-separated cases: simple_quadratic, small_mlp, matmul_chain, conv2d, attention, rnn (default: all).
    #[arg(long, value_delimiter = ',')]
    cases: Option<Vec<String>>,
    /// Threads for the GEMM backend (matmul, conv2d).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Float type of the timed runs: f32 (as published), f64, or both.
    #[arg(long, default_value = "f32", value_parser = ["f32", "f64", "both"])]
    dtype: String,
    /// Multiplies the batch sizes (x rows, A rows, conv batch) and conv2d's spatial size;
    /// parameter shapes stay as published. Default 1 (0.125 with --quick).
    #[arg(long)]
    scale: Option<f64>,
    /// Timed repetitions per phase and mode (default 20; 3 with --quick).
    #[arg(long)]
    reps: Option<usize>,
    /// Output directory for the JSON and the SVG plots.
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// Print the plans `#[differentiate]` made for the cases, then exit.
    #[arg(long)]
    show_plans: bool,
    /// Run only the ablation (each analysis of the static code switched off in turn).
    #[arg(long)]
    ablate: bool,
    /// Run PyTorch's side first with this Python (`benches/pytorch/bench_torch.py` on the
    /// same cases, scale, threads and repetitions, writing into --out), so its columns fill in.
    #[arg(long, value_name = "PYTHON")]
    pytorch: Option<PathBuf>,
    /// Parts to skip: depth, stability, accuracy, plots, hvp, ablation.
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
}

fn main() {
    let args = Args::parse();
    if args.show_plans {
        for plan in cases::plans() {
            println!("{plan}\n");
        }
        return;
    }
    let scale = args.scale.unwrap_or(if args.quick { 0.125 } else { 1.0 });
    let reps = args.reps.unwrap_or(if args.quick { 3 } else { 20 }).max(1);
    let budget = Budget {
        warmup: if args.quick { 1 } else { 3 },
        reps,
        max_time: Duration::from_secs(if args.quick { 1 } else { 15 }),
    };
    // Quick mode keeps the loop chain at full depth: its 10000 iterations take
    // milliseconds, while the straight chain's depth 10000 costs compile time.
    let limits = if args.quick {
        depth::Limits {
            max_depth: 1000,
            max_loop_depth: 10000,
            max_layers: 8,
        }
    } else {
        depth::Limits {
            max_depth: usize::MAX,
            max_loop_depth: usize::MAX,
            max_layers: usize::MAX,
        }
    };
    let skip = |part: &str| args.skip.iter().any(|s| s == part);

    let selected: Vec<Case> = match &args.cases {
        None => Case::ALL.to_vec(),
        Some(names) => names
            .iter()
            .map(|n| {
                Case::from_name(n).unwrap_or_else(|| {
                    let known: Vec<&str> = Case::ALL.iter().map(|c| c.name()).collect();
                    panic!("--cases: unknown case `{n}` (known: {})", known.join(", "))
                })
            })
            .collect(),
    };
    let dtypes: Vec<&str> = match args.dtype.as_str() {
        "both" => vec!["f32", "f64"],
        other => vec![other],
    };

    autodiff::runtime::kernels::gemm::set_num_threads(args.threads);
    std::fs::create_dir_all(&args.out).unwrap_or_else(|e| panic!("cannot create {}: {e}", args.out.display()));
    if let Some(python) = &args.pytorch {
        let settings = pytorch::Settings {
            cases: selected.iter().map(|c| c.name()).collect(),
            threads: args.threads,
            scale,
            reps,
            quick: args.quick,
            out: &args.out,
        };
        if let Err(e) = pytorch::run(python, &settings) {
            eprintln!("PyTorch: {e}; continuing without running it.");
        }
    }

    if args.ablate {
        run_ablation(&selected, scale, budget, &args.out);
        return;
    }

    let units = dtypes.len() * selected.len() * 2
        + if skip("depth") { 0 } else { depth::units(limits) }
        + if skip("stability") { 0 } else { 1 };
    let progress = ProgressBar::new(units as u64);
    progress.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    let mut results = Results {
        machine: machine(),
        threads: args.threads,
        dtype: args.dtype.clone(),
        date: utc_now(),
        scale,
        ..Results::default()
    };

    for case in &selected {
        let shapes = Shapes::published(*case, scale);
        let inputs = Inputs::random(shapes, SEED);
        for wrt in Wrt::BOTH {
            let fd = if skip("accuracy") {
                Vec::new()
            } else {
                accuracy::fd_errors(*case, wrt)
            };
            let f32_f64 = if skip("accuracy") {
                Vec::new()
            } else {
                accuracy::f32_vs_f64(&inputs, wrt)
            };
            for dtype in &dtypes {
                progress.set_message(format!("{} wrt {} {dtype}", case.name(), wrt.name()));
                let mut row = match *dtype {
                    "f64" => run_case(&inputs, wrt, budget, &progress),
                    _ => run_case(&inputs.cast::<f32>(), wrt, budget, &progress),
                };
                row.shapes = shapes.describe();
                for (mode, err) in &fd {
                    if let Some(m) = row.modes.get_mut(mode.name()) {
                        m.max_rel_err_fd = Some(*err);
                    }
                }
                for (mode, err) in &f32_f64 {
                    if let Some(m) = row.modes.get_mut(mode.name()) {
                        m.max_rel_err_f32_vs_f64 = Some(*err);
                    }
                }
                results.cases.push(row);
                progress.inc(1);
            }
        }
    }

    if !skip("depth") {
        results.depth = depth::run(budget, limits, |msg| {
            progress.set_message(msg.to_string());
            progress.inc(1);
        });
        if depth::deepest_chain() < 10000 {
            progress.println(format!(
                "note: chains capped at depth {} in this build (STUDY_MAX_DEPTH)",
                depth::deepest_chain()
            ));
        }
    }
    if !skip("stability") {
        progress.set_message("stability");
        results.stability = stability::run();
        results.residual_precision = stability::residual_precision(&selected, scale, SEED);
        progress.inc(1);
    }
    progress.finish_and_clear();

    let torch = pytorch::load(&args.out);
    let json = args.out.join("autograd_results.json");
    results
        .write(&json)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", json.display()));

    println!(
        "Static (#[differentiate]) vs dynamic tape, measured on {}",
        results.machine
    );
    println!(
        "{}, {} thread(s), scale {scale}, {} repetitions after warm-up",
        results.date, results.threads, budget.reps
    );
    println!("{}", torch.note);
    for dtype in &dtypes {
        for wrt in Wrt::BOTH {
            print!("{}", report::tables(&results, dtype, wrt.name(), &torch.rows));
        }
    }
    print!("{}", report::depth_table(&results.depth));
    print!("{}", report::stability_table(&results.stability));
    print!("{}", report::residual_table(&results.residual_precision));
    if !skip("hvp") {
        print!("{}", hvp::run(reps, scale));
    }
    if !skip("ablation") {
        run_ablation(&selected, scale, budget, &args.out);
    }
    println!("\nwrote {}", json.display());
    if !skip("plots") {
        match report::plots(&results, &torch.rows, &args.out) {
            Ok(files) => println!("plots: {}", files.join(", ")),
            Err(e) => eprintln!("plots failed: {e}"),
        }
    }
}

/// Checks the three modes' gradients against each other, then times and
/// measures them (interleaved) for one case, wrt mode and float type.
/// The ablation of the selected cases: measured, printed, written to `out`.
fn run_ablation(selected: &[Case], scale: f64, budget: Budget, out: &std::path::Path) {
    let progress = ProgressBar::new(selected.len() as u64);
    let mut rows = Vec::new();
    for case in selected {
        progress.set_message(format!("ablation: {}", case.name()));
        let inputs = Inputs::random(Shapes::published(*case, scale), SEED).cast::<f32>();
        rows.extend(ablation::run(*case, &inputs, budget, || {}));
        progress.inc(1);
    }
    progress.finish_and_clear();
    print!("{}", ablation::table(&rows));
    match ablation::write(&rows, out) {
        Ok(files) => println!("ablation: {}", files.join(", ")),
        Err(e) => eprintln!("ablation output failed: {e}"),
    }
}

fn run_case<F: Float>(inputs: &Inputs<F>, wrt: Wrt, budget: Budget, progress: &ProgressBar) -> CaseResult {
    let mut runs = modes(inputs, wrt);
    // Correctness first: every mode against the static one, at the timed shapes.
    let gradients: Vec<Vec<_>> = runs.iter_mut().map(|(_, run)| (run.gradients)().1).collect();
    let tolerance = if F::NAME == "f64" { 1e-8 } else { 1e-3 };
    let mut vs_static = Vec::new();
    for ((mode, _), grads) in runs.iter().zip(&gradients) {
        let err = accuracy::worst_error(grads, &gradients[0]);
        if err > tolerance {
            progress.println(format!(
                "WARNING: {} wrt {} {}: {} gradient differs from static by {err:.2e} (tolerance {tolerance:.0e})",
                inputs.case().name(),
                wrt.name(),
                F::NAME,
                mode.name()
            ));
        }
        vs_static.push(err);
    }
    drop(gradients);

    let mut stats = Vec::new();
    for phase in [Phase::Backward, Phase::Forward, Phase::ForwardBackward] {
        let mut samplers = phase_samplers(&mut runs, phase);
        stats.push(interleaved(&mut samplers, budget, || progress.tick()));
    }
    let memories: Vec<_> = runs.iter_mut().map(|(_, run)| (run.memory)()).collect();

    let mut row = CaseResult {
        name: inputs.case().name().to_string(),
        wrt: wrt.name().to_string(),
        dtype: F::NAME.to_string(),
        ..CaseResult::default()
    };
    for (i, (mode, _)) in runs.iter().enumerate() {
        let mode: &Mode = mode;
        row.modes.insert(
            mode.name().to_string(),
            ModeResult {
                backward_us: stats[0][i],
                forward_us: stats[1][i],
                forward_backward_us: stats[2][i],
                peak_bytes: memories[i].peak_bytes,
                held_bytes: memories[i].held_bytes,
                held_bytes_reported: memories[i].held_bytes_reported,
                max_rel_err_vs_static: Some(vs_static[i]),
                ..ModeResult::default()
            },
        );
    }
    row
}

/// The CPU model and OS, from /proc/cpuinfo where there is one.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    format!(
        "{cpu}, {cores} cores, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// The current UTC time as `YYYY-MM-DD HH:MM UTC` (days-to-civil conversion, so
/// no date crate is needed).
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}
