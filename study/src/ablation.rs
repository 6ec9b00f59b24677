//! The ablation: what each analysis of the static code buys. For each case, with respect to
//! the parameters and in `f32`, the static code with every analysis on, with each one
//! switched off alone (`#[differentiate(opt(.. = false))]`, `cases.rs`), with all of them off
//! (the naive generated code), under the memory plan's other two policies (`save = "all"`:
//! every residual as computed; `save = "min"`: nothing held, backward recomputes the
//! forward; "all on" is `save = "auto"`), with its array residuals in bfloat16, and the tape:
//! backward time (median of interleaved samples)
//! and held/peak bytes. Every variant's gradients are compared with the all-on code's, so
//! that a switch that changed the result would show.

use std::fmt::Write as _;
use std::path::Path;

use autodiff::ndarray::ArrayD;
use autodiff::Float;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::cases::{Case, Inputs};
use crate::measure::{interleaved, Budget, Memory, Sampler, Stats};
use crate::runs::ablation_modes;

/// One variant of one case.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AblationRow {
    /// The case.
    pub case: String,
    /// `"all on"`, `"no fusion"`, ..., `"all off"`, `"save = all"`, `"save = min"`,
    /// `"bf16 residuals"`, `"tape"`.
    pub variant: String,
    /// Backward alone, µs.
    pub backward: Stats,
    /// Held and peak bytes of one forward+backward.
    pub memory: Memory,
    /// Largest difference of its gradients from the all-on code's, relative to each
    /// gradient's largest entry.
    pub max_rel_diff: f64,
}

/// Measures every variant of `case`.
pub fn run(case: Case, inputs: &Inputs<f32>, budget: Budget, tick: impl FnMut()) -> Vec<AblationRow> {
    measure(case, inputs, budget, tick)
}

fn measure<F: Float>(case: Case, inputs: &Inputs<F>, budget: Budget, tick: impl FnMut()) -> Vec<AblationRow> {
    let mut runs = ablation_modes(inputs);
    let largest = |g: &ArrayD<f64>| g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let all_gradients: Vec<Vec<ArrayD<f64>>> = runs.iter_mut().map(|(_, run)| (run.gradients)().1).collect();
    // The dense-seed twin is another function: its variants compare with its first.
    let twin = runs.iter().position(|(variant, _)| variant.starts_with("dense seed"));
    let diffs: Vec<f64> = all_gradients
        .iter()
        .enumerate()
        .map(|(k, grads)| {
            let reference = match twin {
                Some(t) if k >= t && runs[k].0.starts_with("dense seed") => &all_gradients[t],
                _ => &all_gradients[0],
            };
            let overall = reference.iter().map(largest).fold(0.0f64, f64::max);
            // Per gradient, the largest difference relative to the largest entry (f32
            // summation order alone moves small entries by more than their own size), or
            // to a thousandth of the largest entry of all the gradients when a gradient is
            // zero up to rounding (conv2d's bias, which batch norm cancels), whose
            // rounding noise relative to itself says nothing.
            grads
                .iter()
                .zip(reference)
                .map(|(a, b)| {
                    let scale = largest(b).max(1e-3 * overall).max(f64::MIN_POSITIVE);
                    a.iter().zip(b.iter()).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale
                })
                .fold(0.0, f64::max)
        })
        .collect();
    let memory: Vec<Memory> = runs.iter_mut().map(|(_, run)| (run.memory)()).collect();
    let stats = {
        let mut samplers: Vec<Sampler<'_>> = runs
            .iter_mut()
            .map(|(_, run)| Box::new(&mut run.backward) as Sampler<'_>)
            .collect();
        interleaved(&mut samplers, budget, tick)
    };
    runs.iter()
        .zip(stats)
        .zip(memory)
        .zip(diffs)
        .map(|((((variant, _), backward), memory), max_rel_diff)| AblationRow {
            case: case.name().to_string(),
            variant: variant.to_string(),
            backward,
            memory,
            max_rel_diff,
        })
        .collect()
}

fn mb(bytes: usize) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

fn micros(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.1} µs")
    }
}

/// The ablation table: per case, each variant's backward time (and its ratio to all on),
/// held and peak bytes, and its gradients' largest difference from all on.
pub fn table(rows: &[AblationRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nAblation (f32, gradients w.r.t. the parameters): backward time of the static code with each analysis off"
    );
    let _ = writeln!(
        out,
        "| case | variant | backward (median) | ÷ all on | held | peak | max rel. diff from all on (dense seed: from its first row) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    let mut cases: Vec<&str> = rows.iter().map(|r| r.case.as_str()).collect();
    cases.dedup();
    for case in cases {
        let of_case: Vec<&AblationRow> = rows.iter().filter(|r| r.case == case).collect();
        let base = of_case.first().map_or(1.0, |r| r.backward.median.max(1e-9));
        for row in of_case {
            let _ = writeln!(
                out,
                "| {case} | {} | {} | {:.2}× | {} | {} | {:.1e} |",
                row.variant,
                micros(row.backward.median),
                row.backward.median / base,
                mb(row.memory.held_bytes),
                mb(row.memory.peak_bytes),
                row.max_rel_diff
            );
        }
    }
    out
}

/// Writes `ablation.json` and `ablation_backward.svg` (backward time relative to all on,
/// one group of bars per case) into `dir`.
pub fn write(rows: &[AblationRow], dir: &Path) -> Result<Vec<String>, String> {
    let json = dir.join("ablation.json");
    let text = serde_json::to_string_pretty(rows).map_err(|e| e.to_string())?;
    std::fs::write(&json, text).map_err(|e| format!("{}: {e}", json.display()))?;
    let svg = dir.join("ablation_backward.svg");
    plot(rows, &svg)?;
    Ok(vec![json.display().to_string(), svg.display().to_string()])
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(127, 127, 127),
    RGBColor(23, 190, 207),
];

fn plot(rows: &[AblationRow], path: &Path) -> Result<(), String> {
    let mut cases: Vec<&str> = rows.iter().map(|r| r.case.as_str()).collect();
    cases.dedup();
    // The dense-seed twin is another function, whose time is in the table, not in the bars.
    let mut variants: Vec<&str> = Vec::new();
    for row in rows.iter().filter(|r| !r.variant.starts_with("dense seed")) {
        if !variants.contains(&row.variant.as_str()) {
            variants.push(&row.variant);
        }
    }
    let ratio = |case: &str, variant: &str| -> Option<f64> {
        let base = rows.iter().find(|r| r.case == case)?.backward.median;
        let row = rows.iter().find(|r| r.case == case && r.variant == variant)?;
        (base > 0.0).then(|| row.backward.median / base)
    };
    let hi = rows
        .iter()
        .filter(|r| variants.contains(&r.variant.as_str()))
        .filter_map(|r| ratio(&r.case, &r.variant))
        .fold(1.0, f64::max)
        * 1.5; // headroom for the legend above the bars
    let root = SVGBackend::new(path, (1000, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let names: Vec<String> = cases.iter().map(|c| c.to_string()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Backward time with each analysis off, ÷ all on (f32, params)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..cases.len() as f64, 0f64..hi)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(cases.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 && i < names.len() {
                names[i].clone()
            } else {
                String::new()
            }
        })
        .y_desc("backward time ÷ all on")
        .draw()
        .map_err(|e| e.to_string())?;
    let width = 0.8 / variants.len().max(1) as f64;
    for (k, variant) in variants.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let bars: Vec<Rectangle<(f64, f64)>> = cases
            .iter()
            .enumerate()
            .filter_map(|(g, case)| {
                let x0 = g as f64 + 0.1 + k as f64 * width;
                ratio(case, variant).map(|r| Rectangle::new([(x0, 0.0), (x0 + width * 0.9, r)], color.filled()))
            })
            .collect();
        chart
            .draw_series(bars)
            .map_err(|e| e.to_string())?
            .label(variant.to_string())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}
