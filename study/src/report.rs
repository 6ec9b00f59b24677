//! The study's outputs: the JSON (the issue's schema, plus a few fields), the
//! stdout tables laid out like the published one, and SVG plots.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::depth::DepthResult;
use crate::measure::Stats;
use crate::stability::{ResidualPrecisionResult, StabilityResult};

/// Everything one run measured: `results/autograd_results.json`. The PyTorch
/// script writes the same shape with the single mode `"pytorch"`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Results {
    /// CPU model and OS.
    pub machine: String,
    /// Threads the kernels (or PyTorch) used.
    pub threads: usize,
    /// `"f32"`, `"f64"` or `"both"` (each case row has its own `dtype`).
    pub dtype: String,
    /// UTC date and time of the run.
    pub date: String,
    /// The `--scale` the shapes were built with.
    #[serde(default = "one")]
    pub scale: f64,
    /// Every case, wrt mode and dtype.
    pub cases: Vec<CaseResult>,
    /// The depth experiment.
    #[serde(default)]
    pub depth: Vec<DepthResult>,
    /// The stability experiment.
    #[serde(default)]
    pub stability: Vec<StabilityResult>,
    /// The stability experiment's residual-precision rows: each case's `f32` gradient with
    /// full, bf16 and f16 residuals against the `f64` one.
    #[serde(default)]
    pub residual_precision: Vec<ResidualPrecisionResult>,
}

fn one() -> f64 {
    1.0
}

/// One case in one wrt mode and float type.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CaseResult {
    /// `simple_quadratic`, `small_mlp`, `matmul_chain` or `conv2d`.
    pub name: String,
    /// `"all"` or `"params"`.
    pub wrt: String,
    /// `"f32"` or `"f64"`.
    #[serde(default = "f32_name")]
    pub dtype: String,
    /// The shapes, e.g. `"x 32×784, w1 784×128, ..."`.
    pub shapes: String,
    /// `"static"`, `"tape"`, `"floor"` (and `"pytorch"` in the script's file).
    pub modes: BTreeMap<String, ModeResult>,
}

fn f32_name() -> String {
    "f32".to_string()
}

/// The metrics of one mode of one case.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ModeResult {
    /// Backward alone, on a prepared context or freshly recorded graph.
    pub backward_us: Stats,
    /// Forward alone (for the tape: recording).
    pub forward_us: Stats,
    /// Forward and backward.
    pub forward_backward_us: Stats,
    /// Peak heap bytes over forward+backward, above the inputs.
    pub peak_bytes: usize,
    /// Heap bytes live between forward and backward, above the inputs.
    pub held_bytes: usize,
    /// What the mode itself reports holding (context, tape memory, saved tensors).
    #[serde(default)]
    pub held_bytes_reported: usize,
    /// Worst relative error against central finite differences in `f64`, at reduced shapes.
    #[serde(default)]
    pub max_rel_err_fd: Option<f64>,
    /// Worst relative error of the `f32` gradient against the `f64` one, at the timed shapes.
    #[serde(default)]
    pub max_rel_err_f32_vs_f64: Option<f64>,
    /// Worst relative error against the static mode's gradient, at the timed shapes.
    #[serde(default)]
    pub max_rel_err_vs_static: Option<f64>,
}

impl Results {
    /// Writes the JSON to `path`.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }

    /// Reads a results file (ours or the PyTorch script's).
    pub fn read(path: &Path) -> Result<Results, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// `1234.5` µs as `"1.23 ms"`, `12.3` as `"12.3 µs"`.
pub fn fmt_us(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.2} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.2} ms", us / 1e3)
    } else if us >= 100.0 {
        format!("{us:.0} µs")
    } else {
        format!("{us:.1} µs")
    }
}

/// Bytes as `"7.8 KB"`, with KB = 1024 bytes as in the published table.
pub fn fmt_bytes(bytes: usize) -> String {
    let b = bytes as f64;
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2} GB", b / (1024.0 * 1024.0 * 1024.0))
    } else if b >= 1024.0 * 1024.0 {
        format!("{:.1} MB", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.1} KB", b / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

/// Bytes in decimal units, as the ablation's tables and the README's memory-plan tables give
/// them: `"512 B"`, `"16.4 KB"`, `"6.62 MB"`.
pub fn fmt_bytes_decimal(bytes: usize) -> String {
    let b = bytes as f64;
    if b >= 1e6 {
        format!("{:.2} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} KB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

fn fmt_ratio(numerator: f64, denominator: f64) -> String {
    if denominator > 0.0 && numerator > 0.0 {
        format!("{:.2}×", numerator / denominator)
    } else {
        "–".to_string()
    }
}

fn fmt_err(err: Option<f64>) -> String {
    match err {
        None => "–".to_string(),
        Some(e) if !e.is_finite() => "non-finite".to_string(),
        Some(e) => format!("{e:.1e}"),
    }
}

/// A lookup of PyTorch's rows by (case, wrt).
pub type TorchRows = BTreeMap<(String, String), ModeResult>;

/// The two published tables (Backward Pass Time, Peak Memory Usage) and the
/// accuracy table, for one float type and wrt mode, as text.
pub fn tables(results: &Results, dtype: &str, wrt: &str, torch: &TorchRows) -> String {
    let rows: Vec<&CaseResult> = results
        .cases
        .iter()
        .filter(|c| c.dtype == dtype && c.wrt == wrt)
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let with_torch = rows
        .iter()
        .any(|c| torch.contains_key(&(c.name.clone(), c.wrt.clone())))
        && dtype == "f32";
    let mut out = String::new();
    let wrt_words = if wrt == "all" {
        "gradients w.r.t. every input (as published)"
    } else {
        "gradients w.r.t. parameters only"
    };
    let _ = writeln!(out, "\n== {dtype}, {} thread(s), {wrt_words} ==", results.threads);
    for row in &rows {
        let _ = writeln!(out, "  {:<17} {}", row.name, row.shapes);
    }

    let get = |row: &CaseResult, mode: &str| row.modes.get(mode).cloned();
    let torch_of = |row: &CaseResult| {
        if with_torch {
            torch.get(&(row.name.clone(), row.wrt.clone())).cloned()
        } else {
            None
        }
    };

    // Backward Pass Time.
    let _ = writeln!(out, "\nBackward Pass Time (median of backward alone; [min–max])");
    let mut header = format!("{:<17} {:>24} {:>24}", "case", "static (macro)", "tape");
    if with_torch {
        let _ = write!(header, " {:>12}", "PyTorch CPU");
    }
    let _ = write!(header, " {:>10} {:>12}", "floor", "tape/static");
    if with_torch {
        let _ = write!(header, " {:>14}", "torch/static");
    }
    let _ = write!(header, " {:>13}", "static/floor");
    let _ = writeln!(out, "{header}");
    for row in &rows {
        let (Some(s), Some(t), Some(f)) = (get(row, "static"), get(row, "tape"), get(row, "floor")) else {
            continue;
        };
        let spread = |m: &ModeResult| {
            format!(
                "{} [{}–{}]",
                fmt_us(m.backward_us.median),
                fmt_us(m.backward_us.min),
                fmt_us(m.backward_us.max)
            )
        };
        let mut line = format!("{:<17} {:>24} {:>24}", row.name, spread(&s), spread(&t));
        let p = torch_of(row);
        if with_torch {
            let _ = write!(
                line,
                " {:>12}",
                p.as_ref().map(|p| fmt_us(p.backward_us.median)).unwrap_or("–".into())
            );
        }
        let _ = write!(
            line,
            " {:>10} {:>12}",
            fmt_us(f.backward_us.median),
            fmt_ratio(t.backward_us.median, s.backward_us.median)
        );
        if with_torch {
            let _ = write!(
                line,
                " {:>14}",
                p.as_ref()
                    .map(|p| fmt_ratio(p.backward_us.median, s.backward_us.median))
                    .unwrap_or("–".into())
            );
        }
        let _ = write!(line, " {:>13}", fmt_ratio(s.backward_us.median, f.backward_us.median));
        let _ = writeln!(out, "{line}");
    }

    // Forward and forward+backward, for context.
    let _ = writeln!(out, "\nForward alone / forward+backward (medians)");
    let _ = writeln!(out, "{:<17} {:>22} {:>22} {:>22}", "case", "static", "tape", "floor");
    for row in &rows {
        let cell = |m: Option<ModeResult>| {
            m.map(|m| {
                format!(
                    "{} / {}",
                    fmt_us(m.forward_us.median),
                    fmt_us(m.forward_backward_us.median)
                )
            })
            .unwrap_or("–".into())
        };
        let _ = writeln!(
            out,
            "{:<17} {:>22} {:>22} {:>22}",
            row.name,
            cell(get(row, "static")),
            cell(get(row, "tape")),
            cell(get(row, "floor"))
        );
    }

    // Peak Memory Usage.
    let _ = writeln!(
        out,
        "\nPeak Memory Usage (heap over forward+backward above the inputs; held = live between forward and backward{})",
        if with_torch {
            "; *PyTorch: its allocator's, op by op, from torch.profiler"
        } else {
            ""
        }
    );
    let mut header = format!("{:<17} {:>22} {:>22}", "case", "static peak / held", "tape peak / held");
    if with_torch {
        let _ = write!(header, " {:>24}", "PyTorch peak* / saved");
    }
    let _ = write!(
        header,
        " {:>22} {:>12} {:>12}",
        "floor peak / held", "tape/static", "static/floor"
    );
    let _ = writeln!(out, "{header}");
    for row in &rows {
        let (Some(s), Some(t), Some(f)) = (get(row, "static"), get(row, "tape"), get(row, "floor")) else {
            continue;
        };
        let pair = |m: &ModeResult| format!("{} / {}", fmt_bytes(m.peak_bytes), fmt_bytes(m.held_bytes));
        let mut line = format!("{:<17} {:>22} {:>22}", row.name, pair(&s), pair(&t));
        if with_torch {
            // PyTorch's peak is its CPU allocator's, from its profiler, op by op
            // (bench_torch.py): 0 where it was not measured.
            let torch = torch_of(row).map(|p| match p.peak_bytes {
                0 => format!("– / {}", fmt_bytes(p.held_bytes)),
                peak => format!("{} / {}", fmt_bytes(peak), fmt_bytes(p.held_bytes)),
            });
            let _ = write!(line, " {:>24}", torch.unwrap_or("–".into()));
        }
        let _ = write!(
            line,
            " {:>22} {:>12} {:>12}",
            pair(&f),
            fmt_ratio(t.peak_bytes as f64, s.peak_bytes as f64),
            fmt_ratio(s.peak_bytes as f64, f.peak_bytes as f64)
        );
        let _ = writeln!(out, "{line}");
    }

    // Accuracy.
    let _ = writeln!(
        out,
        "\nAccuracy (worst relative error: vs finite differences in f64 at reduced shapes | f32 vs f64 | vs static)"
    );
    let _ = writeln!(out, "{:<17} {:>28} {:>28} {:>28}", "case", "static", "tape", "floor");
    for row in &rows {
        let cell = |m: Option<ModeResult>| {
            m.map(|m| {
                format!(
                    "{} | {} | {}",
                    fmt_err(m.max_rel_err_fd),
                    fmt_err(m.max_rel_err_f32_vs_f64),
                    fmt_err(m.max_rel_err_vs_static)
                )
            })
            .unwrap_or("–".into())
        };
        let _ = writeln!(
            out,
            "{:<17} {:>28} {:>28} {:>28}",
            row.name,
            cell(get(row, "static")),
            cell(get(row, "tape")),
            cell(get(row, "floor"))
        );
    }
    out
}

/// How the tables and plots name a depth row's `kind` (the JSON keeps the short key).
fn kind_label(kind: &str) -> &str {
    match kind {
        "tanh_chain" => "chain (straight)",
        "tanh_chain_loop" => "chain (loop)",
        other => other,
    }
}

/// The depth table: per-node backward time and held bytes.
pub fn depth_table(depth: &[DepthResult]) -> String {
    let mut out = String::new();
    if depth.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\nGraph depth (f32; backward alone; per node = divided by the op count)"
    );
    let _ = writeln!(
        out,
        "{:<16} {:>6} {:>6} | {:>10} {:>9} {:>10} | {:>10} {:>9} {:>10} | {:>11}",
        "kind", "depth", "nodes", "static bwd", "ns/node", "B/node", "tape bwd", "ns/node", "B/node", "tape/static"
    );
    let mut keys: Vec<(String, usize)> = depth.iter().map(|d| (d.kind.clone(), d.depth)).collect();
    keys.dedup();
    for (kind, d) in keys {
        let find = |mode: &str| depth.iter().find(|r| r.kind == kind && r.depth == d && r.mode == mode);
        let (Some(s), Some(t)) = (find("static"), find("tape")) else {
            continue;
        };
        let _ = writeln!(
            out,
            "{:<16} {:>6} {:>6} | {:>10} {:>9.1} {:>10.1} | {:>10} {:>9.1} {:>10.1} | {:>11}",
            kind_label(&kind),
            d,
            s.nodes,
            fmt_us(s.backward_us.median),
            s.backward_ns_per_node,
            s.held_bytes_per_node,
            fmt_us(t.backward_us.median),
            t.backward_ns_per_node,
            t.held_bytes_per_node,
            fmt_ratio(t.backward_us.median, s.backward_us.median)
        );
    }
    out
}

/// The stability table.
pub fn stability_table(rows: &[StabilityResult]) -> String {
    let mut out = String::new();
    if rows.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\nGradient stability (finite? and worst relative error vs the static f64 gradient)"
    );
    let _ = writeln!(
        out,
        "{:<17} {:<7} {:<4} {:>12} {:>6} {:>6} {:>11} {:>11}  input",
        "test", "mode", "type", "value", "v ok", "g ok", "max |g|", "err vs f64"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<17} {:<7} {:<4} {:>12.4e} {:>6} {:>6} {:>11.3e} {:>11}  {}",
            r.test,
            r.mode,
            r.dtype,
            r.value,
            if r.value_finite { "yes" } else { "NO" },
            if r.grad_finite { "yes" } else { "NO" },
            r.max_abs_grad,
            fmt_err(Some(r.rel_err_vs_f64)),
            r.input
        );
    }
    out
}

/// The residual-precision table: per case and wrt mode, the `f32` static gradient with its
/// array residuals as computed, in bf16 and in f16, and the tape's as computed and in bf16,
/// against the `f64` gradient, beside the bytes held between forward and backward. A 16-bit
/// row holding what its mode's full row holds packed nothing (the case keeps only relu's
/// bits, column sums or loop states, which stay as they are) and is the same code.
pub fn residual_table(rows: &[ResidualPrecisionResult]) -> String {
    let mut out = String::new();
    if rows.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\nResidual precision (#[differentiate(residuals = ..)], Tape::with_residuals): f32 gradients vs the f64 static ones, at the timed shapes (held: KB = 1000 B)"
    );
    let _ = writeln!(
        out,
        "  of largest  = each gradient's largest difference ÷ its largest entry, worst over the gradients (the ablation's measure)"
    );
    let _ = writeln!(
        out,
        "  per element = worst |a − b| / max(|a|, |b|, 1e-3·max |b|), the gradients as one vector (the accuracy table's f32 vs f64);"
    );
    let _ = writeln!(
        out,
        "                entries near 1e-3 of the largest, made by cancellation (batch norm's backward), dominate it in 16 bits"
    );
    let _ = writeln!(
        out,
        "{:<17} {:<6} {:<6} {:<9} {:>10} {:>5} {:>10} {:>11} {:>12}  note",
        "case", "wrt", "mode", "residuals", "held", "g ok", "max |g|", "of largest", "per element"
    );
    for r in rows {
        let full = rows
            .iter()
            .find(|f| f.case == r.case && f.wrt == r.wrt && f.mode == r.mode && f.residuals == "full");
        let note = match full {
            Some(f) if r.residuals != "full" && f.held_bytes == r.held_bytes => {
                "nothing to pack: holds what full holds"
            }
            _ => "",
        };
        let _ = writeln!(
            out,
            "{:<17} {:<6} {:<6} {:<9} {:>10} {:>5} {:>10.3e} {:>11} {:>12}  {note}",
            r.case,
            r.wrt,
            r.mode,
            r.residuals,
            fmt_bytes_decimal(r.held_bytes),
            if r.grad_finite { "yes" } else { "NO" },
            r.max_abs_grad,
            fmt_err(Some(r.err_of_largest_vs_f64)),
            fmt_err(Some(r.rel_err_vs_f64))
        );
    }
    out
}

const MODE_COLORS: [(&str, RGBColor); 4] = [
    ("static", RGBColor(31, 119, 180)),
    ("tape", RGBColor(255, 127, 14)),
    ("pytorch", RGBColor(44, 160, 44)),
    ("floor", RGBColor(127, 127, 127)),
];

/// A grouped bar chart on a log axis: one group per case, one bar per mode.
fn bar_chart(path: &Path, title: &str, y_label: &str, groups: &[(String, Vec<(&str, f64)>)]) -> Result<(), String> {
    let values: Vec<f64> = groups
        .iter()
        .flat_map(|(_, bars)| bars.iter().map(|b| b.1))
        .filter(|v| *v > 0.0)
        .collect();
    if values.is_empty() {
        return Ok(());
    }
    let lo = values.iter().cloned().fold(f64::INFINITY, f64::min) / 2.0;
    let hi = values.iter().cloned().fold(0.0, f64::max) * 2.0;
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let names: Vec<String> = groups.iter().map(|g| g.0.clone()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..groups.len() as f64, (lo..hi).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 && i < names.len() {
                names[i].clone()
            } else {
                String::new()
            }
        })
        .y_desc(y_label)
        .draw()
        .map_err(|e| e.to_string())?;
    for (mode, color) in MODE_COLORS {
        let mut rects = Vec::new();
        for (g, (_, bars)) in groups.iter().enumerate() {
            let n = bars.len().max(1) as f64;
            if let Some(k) = bars.iter().position(|b| b.0 == mode) {
                let width = 0.8 / n;
                let x0 = g as f64 + 0.1 + k as f64 * width;
                if bars[k].1 > 0.0 {
                    rects.push(Rectangle::new(
                        [(x0, lo), (x0 + width * 0.9, bars[k].1)],
                        color.filled(),
                    ));
                }
            }
        }
        if rects.is_empty() {
            continue;
        }
        chart
            .draw_series(rects)
            .map_err(|e| e.to_string())?
            .label(mode)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Log–log lines of a per-node quantity against depth, one per (kind, mode).
fn depth_chart(
    path: &Path,
    title: &str,
    y_label: &str,
    depth: &[DepthResult],
    value: impl Fn(&DepthResult) -> f64,
) -> Result<(), String> {
    let points: Vec<(f64, f64)> = depth
        .iter()
        .map(|d| (d.depth as f64, value(d)))
        .filter(|p| p.1 > 0.0)
        .collect();
    if points.is_empty() {
        return Ok(());
    }
    let x_hi = points.iter().map(|p| p.0).fold(1.0, f64::max) * 2.0;
    let y_lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min) / 2.0;
    let y_hi = points.iter().map(|p| p.1).fold(0.0, f64::max) * 2.0;
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d((0.5..x_hi).log_scale(), (y_lo..y_hi).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("depth (chain length or MLP layers)")
        .y_desc(y_label)
        .draw()
        .map_err(|e| e.to_string())?;
    for kind in ["tanh_chain", "tanh_chain_loop", "mlp"] {
        for (mode, color) in MODE_COLORS {
            let series: Vec<(f64, f64)> = depth
                .iter()
                .filter(|d| d.kind == kind && d.mode == mode)
                .map(|d| (d.depth as f64, value(d)))
                .filter(|p| p.1 > 0.0)
                .collect();
            if series.is_empty() {
                continue;
            }
            // Thick: straight chain; medium: loop chain; thin: MLP.
            let style = match kind {
                "mlp" => color.stroke_width(1),
                "tanh_chain_loop" => color.stroke_width(2),
                _ => color.stroke_width(3),
            };
            chart
                .draw_series(LineSeries::new(series.clone(), style))
                .map_err(|e| e.to_string())?
                .label(format!("{mode} {}", kind_label(kind)))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            chart
                .draw_series(series.into_iter().map(|p| Circle::new(p, 3, color.filled())))
                .map_err(|e| e.to_string())?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Writes every plot into `dir`; returns the files written.
pub fn plots(results: &Results, torch: &TorchRows, dir: &Path) -> Result<Vec<String>, String> {
    let mut written = Vec::new();
    let dtypes: Vec<String> = {
        let mut d: Vec<String> = results.cases.iter().map(|c| c.dtype.clone()).collect();
        d.dedup();
        d
    };
    for dtype in &dtypes {
        for wrt in ["all", "params"] {
            let rows: Vec<&CaseResult> = results
                .cases
                .iter()
                .filter(|c| &c.dtype == dtype && c.wrt == wrt)
                .collect();
            if rows.is_empty() {
                continue;
            }
            let group = |metric: &dyn Fn(&ModeResult) -> f64| -> Vec<(String, Vec<(&str, f64)>)> {
                rows.iter()
                    .map(|row| {
                        let mut bars = Vec::new();
                        for (mode, _) in MODE_COLORS {
                            let m = if mode == "pytorch" {
                                if dtype == "f32" {
                                    torch.get(&(row.name.clone(), row.wrt.clone())).cloned()
                                } else {
                                    None
                                }
                            } else {
                                row.modes.get(mode).cloned()
                            };
                            if let Some(m) = m {
                                bars.push((mode, metric(&m)));
                            }
                        }
                        (row.name.clone(), bars)
                    })
                    .collect()
            };
            let file = format!("backward_time_{dtype}_{wrt}.svg");
            bar_chart(
                &dir.join(&file),
                &format!("Backward pass time, {dtype}, wrt {wrt}, {} thread(s)", results.threads),
                "median µs (log)",
                &group(&|m| m.backward_us.median),
            )?;
            written.push(file);
            let file = format!("peak_memory_{dtype}_{wrt}.svg");
            bar_chart(
                &dir.join(&file),
                &format!("Peak heap over forward+backward, {dtype}, wrt {wrt} (PyTorch: saved tensors)"),
                "bytes (log)",
                &group(&|m| m.peak_bytes.max(m.held_bytes) as f64),
            )?;
            written.push(file);
        }
    }
    if !results.depth.is_empty() {
        depth_chart(
            &dir.join("depth_time_per_node.svg"),
            "Backward time per node vs depth",
            "ns per node (log)",
            &results.depth,
            |d| d.backward_ns_per_node,
        )?;
        written.push("depth_time_per_node.svg".into());
        depth_chart(
            &dir.join("depth_bytes_per_node.svg"),
            "Held bytes per node vs depth",
            "bytes per node (log)",
            &results.depth,
            |d| d.held_bytes_per_node,
        )?;
        written.push("depth_bytes_per_node.svg".into());
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_bytes(8000), "7.8 KB");
        assert_eq!(fmt_bytes(3 * 1024 * 1024), "3.0 MB");
        assert_eq!(fmt_us(15.0), "15.0 µs");
        assert_eq!(fmt_us(1500.0), "1.50 ms");
        assert_eq!(fmt_bytes_decimal(16_384), "16.4 KB");
        assert_eq!(fmt_bytes_decimal(6_620_000), "6.62 MB");
        assert_eq!(fmt_bytes_decimal(512), "512 B");
        assert_eq!(fmt_ratio(30.0, 15.0), "2.00×");
        assert_eq!(fmt_ratio(0.0, 15.0), "–");
    }

    #[test]
    fn depth_table_labels_both_chains() {
        let row = |mode: &str, kind: &str| DepthResult {
            mode: mode.into(),
            kind: kind.into(),
            depth: 10,
            nodes: 11,
            backward_us: Stats::default(),
            backward_ns_per_node: 0.0,
            held_bytes: 0,
            held_bytes_per_node: 0.0,
            peak_bytes: 0,
        };
        let rows: Vec<DepthResult> = ["tanh_chain", "tanh_chain_loop"]
            .into_iter()
            .flat_map(|kind| [row("static", kind), row("tape", kind)])
            .collect();
        let table = depth_table(&rows);
        assert!(table.contains("chain (straight)"), "{table}");
        assert!(table.contains("chain (loop)"), "{table}");
    }

    /// A 16-bit row that overflowed says so (non-finite gradient, non-finite error); one that
    /// holds what full precision holds is marked as having had nothing to pack.
    #[test]
    fn residual_table_reports_non_finite_and_nothing_packed() {
        let row = |residuals: &str, held: usize, err: f64| ResidualPrecisionResult {
            case: "conv2d".into(),
            wrt: "params".into(),
            mode: "static".into(),
            residuals: residuals.into(),
            dtype: "f32".into(),
            held_bytes: held,
            held_bytes_reported: held,
            grad_finite: err.is_finite(),
            max_abs_grad: 1.0,
            rel_err_vs_f64: err,
            err_of_largest_vs_f64: err,
        };
        let table = residual_table(&[
            row("full", 4096, 1e-7),
            row("bf16", 2048, 2e-3),
            row("f16", 2048, f64::INFINITY),
        ]);
        let f16 = table.lines().find(|l| l.contains(" f16 ")).expect("an f16 line");
        assert!(f16.contains("NO") && f16.contains("non-finite"), "{table}");
        assert!(!table.contains("nothing to pack"), "{table}");
        let table = residual_table(&[row("full", 576, 1e-7), row("bf16", 576, 1e-7)]);
        let bf16 = table.lines().find(|l| l.contains(" bf16 ")).expect("a bf16 line");
        assert!(bf16.contains("nothing to pack"), "{table}");
    }

    #[test]
    fn pytorch_schema_parses() {
        let text = r#"{"machine": "m", "threads": 1, "dtype": "f32", "date": "d",
            "cases": [{"name": "small_mlp", "wrt": "all", "shapes": "s",
              "modes": {"pytorch": {"backward_us": {"median": 1.0, "min": 1.0, "max": 2.0, "samples": 3},
                                     "forward_us": {"median": 1.0, "min": 1.0, "max": 2.0, "samples": 3},
                                     "forward_backward_us": {"median": 1.0, "min": 1.0, "max": 2.0, "samples": 3},
                                     "peak_bytes": 10, "held_bytes": 5, "max_rel_err_fd": null}}}]}"#;
        let r: Results = serde_json::from_str(text).expect("parses");
        assert_eq!(r.cases[0].modes["pytorch"].held_bytes, 5);
        assert_eq!(r.cases[0].dtype, "f32");
        assert!(r.depth.is_empty());
    }
}
