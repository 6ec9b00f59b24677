//! PyTorch's side of the table: `pytorch_results.json`, written by
//! `benches/pytorch/bench_torch.py` in the same schema with the mode
//! `"pytorch"`. Optional: when the file is absent the study says so and runs on.
//! `--pytorch PYTHON` runs the script first, on the same cases and settings.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::report::{Results, TorchRows};

/// What was found of PyTorch's results.
pub struct Torch {
    /// PyTorch's rows by (case, wrt).
    pub rows: TorchRows,
    /// A one-line note for stdout: where the numbers came from, or why there are none.
    pub note: String,
}

/// The settings the study passes on to the PyTorch script.
pub struct Settings<'a> {
    /// The case names, as on the study's command line.
    pub cases: Vec<&'a str>,
    /// Threads for PyTorch's intra-op pool.
    pub threads: usize,
    /// The study's `--scale`.
    pub scale: f64,
    /// Timed repetitions.
    pub reps: usize,
    /// Whether the study runs `--quick` (one warm-up, a 1 s budget per case).
    pub quick: bool,
    /// Where both write their JSON.
    pub out: &'a Path,
}

/// Runs `benches/pytorch/bench_torch.py` with `python` and the study's settings,
/// so that it writes `pytorch_results.json` into `settings.out`; its output goes
/// to stdout. Returns why it failed, if it did.
pub fn run(python: &Path, settings: &Settings<'_>) -> Result<(), String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../benches/pytorch/bench_torch.py");
    let mut command = Command::new(python);
    command
        .arg(&script)
        .arg("--cases")
        .arg(settings.cases.join(","))
        .arg("--threads")
        .arg(settings.threads.to_string())
        .arg("--scale")
        .arg(settings.scale.to_string())
        .arg("--reps")
        .arg(settings.reps.to_string())
        .arg("--out")
        .arg(settings.out);
    if settings.quick {
        command.arg("--quick");
    }
    let status = command
        .status()
        .map_err(|e| format!("cannot run {} {}: {e}", python.display(), script.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} {} failed ({status})", python.display(), script.display()))
    }
}

/// Reads `pytorch_results.json` from `dir`.
pub fn load(dir: &Path) -> Torch {
    let path = dir.join("pytorch_results.json");
    if !path.exists() {
        return Torch {
            rows: TorchRows::new(),
            note: format!(
                "PyTorch: no {} (run `python benches/pytorch/bench_torch.py` to add its columns); continuing without.",
                path.display()
            ),
        };
    }
    match Results::read(&path) {
        Err(e) => Torch {
            rows: TorchRows::new(),
            note: format!("PyTorch: could not read {e}; continuing without."),
        },
        Ok(results) => {
            let mut rows = TorchRows::new();
            for case in &results.cases {
                if let Some(m) = case.modes.get("pytorch") {
                    rows.insert((case.name.clone(), case.wrt.clone()), m.clone());
                }
            }
            Torch {
                note: format!(
                    "PyTorch: {} rows from {} ({}, {} thread(s), {}).",
                    rows.len(),
                    path.display(),
                    results.machine,
                    results.threads,
                    results.date
                ),
                rows,
            }
        }
    }
}
