//! PyTorch's side of the table: `pytorch_results.json`, written by
//! `benches/pytorch/bench_torch.py` in the same schema with the mode
//! `"pytorch"`. Optional: when the file is absent the study says so and runs on.

use std::path::Path;

use crate::report::{Results, TorchRows};

/// What was found of PyTorch's results.
pub struct Torch {
    /// PyTorch's rows by (case, wrt).
    pub rows: TorchRows,
    /// A one-line note for stdout: where the numbers came from, or why there are none.
    pub note: String,
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
