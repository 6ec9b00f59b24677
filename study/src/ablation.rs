//! The ablation: what each analysis buys. For each case, with respect to the parameters and
//! in `f32`, the static code with every analysis on, with each one switched off alone
//! (`#[differentiate(opt(.. = false))]`, `cases.rs`), with all of them off (the naive
//! generated code), under the memory plan's other two policies (`save = "all"`: every
//! residual as computed; `save = "min"`: nothing held, backward recomputes the forward;
//! "all on" is `save = "auto"`), with its array residuals in bfloat16, the tape, and the
//! tape with bf16 residuals (`Tape::with_residuals`); then, with respect to every input (the
//! published gradients), the policies alone: all on (`save = "auto"`), `save = "all"`,
//! `save = "min"`, bf16 residuals, the tape and the tape with bf16 residuals. Backward
//! time (median of interleaved samples, each wrt mode interleaved on its own) and held/peak
//! bytes. Every variant's gradients are compared with the all-on code's of its wrt mode, so
//! that a switch that changed the result would show.

use std::fmt::Write as _;
use std::path::Path;

use autodiff::ndarray::ArrayD;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::accuracy::error_of_largest;
use crate::cases::{Case, Inputs, Wrt};
use crate::measure::{interleaved, Budget, Memory, Sampler, Stats};
use crate::report::fmt_bytes_decimal;
use crate::runs::{ablation_modes, policy_modes, ModeRun};

/// One variant of one case.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AblationRow {
    /// The case.
    pub case: String,
    /// `"params"` (the analyses and the policies) or `"all"` (every input: the policies).
    #[serde(default = "params")]
    pub wrt: String,
    /// `"all on"`, `"no fusion"`, ..., `"all off"`, `"save = all"`, `"save = min"`,
    /// `"bf16 residuals"`, `"tape"`, `"tape, bf16 residuals"`.
    pub variant: String,
    /// Backward alone, µs.
    pub backward: Stats,
    /// Held and peak bytes of one forward+backward.
    pub memory: Memory,
    /// Largest difference of its gradients from the all-on code's, relative to each
    /// gradient's largest entry.
    pub max_rel_diff: f64,
}

fn params() -> String {
    Wrt::Params.name().to_string()
}

/// Measures every variant of `case`: the parameters' (the analyses and the policies), then
/// every input's (the policies).
pub fn run(case: Case, inputs: &Inputs<f32>, budget: Budget, mut tick: impl FnMut()) -> Vec<AblationRow> {
    let mut rows = measure(case, Wrt::Params, ablation_modes(inputs), budget, &mut tick);
    rows.extend(measure(case, Wrt::All, policy_modes(inputs), budget, &mut tick));
    rows
}

/// Measures `runs`, the variants of one case in one wrt mode (the first the reference),
/// interleaved.
fn measure(
    case: Case,
    wrt: Wrt,
    mut runs: Vec<(&'static str, ModeRun<'_>)>,
    budget: Budget,
    tick: impl FnMut(),
) -> Vec<AblationRow> {
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
            error_of_largest(grads, reference)
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
            wrt: wrt.name().to_string(),
            variant: variant.to_string(),
            backward,
            memory,
            max_rel_diff,
        })
        .collect()
}

fn micros(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.1} µs")
    }
}

/// The rows of one wrt mode.
fn of_wrt(rows: &[AblationRow], wrt: Wrt) -> Vec<&AblationRow> {
    rows.iter().filter(|r| r.wrt == wrt.name()).collect()
}

/// The cases of `rows`, in order.
fn cases_of<'r>(rows: &[&'r AblationRow]) -> Vec<&'r str> {
    let mut cases: Vec<&str> = rows.iter().map(|r| r.case.as_str()).collect();
    cases.dedup();
    cases
}

/// The ablation tables: per case, each variant's backward time (and its ratio to all on),
/// held and peak bytes, and its gradients' largest difference from all on; first with
/// respect to the parameters (every analysis and policy), then with respect to every input
/// (the policies); then the policies of both side by side ([`policy_table`]).
pub fn table(rows: &[AblationRow]) -> String {
    let mut out = String::new();
    let titles = [
        (
            Wrt::Params,
            "Ablation (f32, gradients w.r.t. the parameters): backward time of the static code with each analysis off",
            "max rel. diff from all on (dense seed: from its first row)",
        ),
        (
            Wrt::All,
            "Ablation (f32, gradients w.r.t. every input, as published): the memory plan's policies",
            "max rel. diff from all on",
        ),
    ];
    for (wrt, title, diff) in titles {
        let rows = of_wrt(rows, wrt);
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{title}");
        let _ = writeln!(
            out,
            "| case | variant | backward (median) | ÷ all on | held | peak | {diff} |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|");
        for case in cases_of(&rows) {
            let of_case: Vec<&AblationRow> = rows.iter().copied().filter(|r| r.case == case).collect();
            let base = of_case.first().map_or(1.0, |r| r.backward.median.max(1e-9));
            for row in of_case {
                let _ = writeln!(
                    out,
                    "| {case} | {} | {} | {:.2}× | {} | {} | {:.1e} |",
                    row.variant,
                    micros(row.backward.median),
                    row.backward.median / base,
                    fmt_bytes_decimal(row.memory.held_bytes),
                    fmt_bytes_decimal(row.memory.peak_bytes),
                    row.max_rel_diff
                );
            }
        }
    }
    out.push_str(&policy_table(rows));
    out
}

/// The memory plan's policies side by side, one line per case and wrt mode (the layout of
/// the README's "Memory plans, measured"): held bytes under `save = "auto"` (all on),
/// `"all"`, `"min"`, bf16 residuals, on the tape and on the tape with bf16 residuals;
/// backward time ÷ `save = "all"`'s (the tape's bf16 ÷ the tape's); and the bf16 residuals'
/// gradient difference from all on, relative to each gradient's largest entry.
pub fn policy_table(rows: &[AblationRow]) -> String {
    let mut out = String::new();
    let find = |case: &str, wrt: &str, variant: &str| {
        rows.iter()
            .find(|r| r.case == case && r.wrt == wrt && r.variant == variant)
    };
    let mut lines = Vec::new();
    for case in cases_of(&rows.iter().collect::<Vec<_>>()) {
        for wrt in [Wrt::Params, Wrt::All] {
            let wrt = wrt.name();
            let row = |variant| find(case, wrt, variant);
            let (Some(auto), Some(all), Some(min), Some(bf16), Some(tape), Some(tape_bf16)) = (
                row("all on"),
                row("save = all"),
                row("save = min"),
                row("bf16 residuals"),
                row("tape"),
                row("tape, bf16 residuals"),
            ) else {
                continue;
            };
            let ratio = |r: &AblationRow| {
                if all.backward.median > 0.0 {
                    format!("{:.2}×", r.backward.median / all.backward.median)
                } else {
                    "–".to_string()
                }
            };
            let tape_ratio = if tape.backward.median > 0.0 {
                format!("{:.2}×", tape_bf16.backward.median / tape.backward.median)
            } else {
                "–".to_string()
            };
            lines.push(format!(
                "| {case} | {wrt} | {} | {} | {} | {} | {} | {} | {} | {} | {} ({:.1e}) | {tape_ratio} ({:.1e}) |",
                fmt_bytes_decimal(auto.memory.held_bytes),
                fmt_bytes_decimal(all.memory.held_bytes),
                fmt_bytes_decimal(min.memory.held_bytes),
                fmt_bytes_decimal(bf16.memory.held_bytes),
                fmt_bytes_decimal(tape.memory.held_bytes),
                fmt_bytes_decimal(tape_bf16.memory.held_bytes),
                ratio(auto),
                ratio(min),
                ratio(bf16),
                bf16.max_rel_diff,
                tape_bf16.max_rel_diff
            ));
        }
    }
    if lines.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\nMemory plans per policy (f32; held = live between forward and backward; params = gradients w.r.t. the parameters, all = w.r.t. every input)"
    );
    let _ = writeln!(
        out,
        "| case | wrt | held: auto | all | min | bf16 residuals | tape | tape, bf16 | backward ÷ save = all: auto | min | bf16 (gradient error) | tape bf16 ÷ tape (gradient error) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// Writes `ablation.json`, `ablation_backward.svg` (the parameters' variants: backward time
/// relative to all on, one group of bars per case) and `ablation_backward_all.svg` (every
/// input's) into `dir`.
pub fn write(rows: &[AblationRow], dir: &Path) -> Result<Vec<String>, String> {
    let json = dir.join("ablation.json");
    let text = serde_json::to_string_pretty(rows).map_err(|e| e.to_string())?;
    std::fs::write(&json, text).map_err(|e| format!("{}: {e}", json.display()))?;
    let mut written = vec![json.display().to_string()];
    let plots = [
        (
            Wrt::Params,
            "ablation_backward.svg",
            "Backward time with each analysis off, ÷ all on (f32, params)",
        ),
        (
            Wrt::All,
            "ablation_backward_all.svg",
            "Backward time per memory-plan policy, ÷ all on (f32, every input)",
        ),
    ];
    for (wrt, file, caption) in plots {
        let rows = of_wrt(rows, wrt);
        if rows.is_empty() {
            continue;
        }
        let svg = dir.join(file);
        plot(&rows, &svg, caption)?;
        written.push(svg.display().to_string());
    }
    Ok(written)
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

fn plot(rows: &[&AblationRow], path: &Path, caption: &str) -> Result<(), String> {
    let cases = cases_of(rows);
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
        .caption(caption, ("sans-serif", 20))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::Shapes;
    use crate::runs::{POLICY_VARIANTS, RESIDUAL_PRECISIONS, TAPE_VARIANTS};

    /// With respect to every input, `save = "all"` and `save = "min"` compute the default's
    /// gradients (to f64 rounding: the summation order may change), bf16 residuals within
    /// bf16's rounding (8 significant bits) and not exactly, the tape the default's, and the
    /// tape with bf16 residuals within bf16's rounding; every variant returns a gradient for
    /// every input. `min` holds nothing, bf16 holds at most what the default holds, and the
    /// tape with bf16 residuals at most what the tape holds.
    #[test]
    fn every_input_policies_compute_the_default_gradients() {
        for case in Case::ALL {
            let inputs = Inputs::random(Shapes::tiny(case), 5);
            let mut runs = policy_modes(&inputs);
            let labels: Vec<&str> = runs.iter().map(|(label, _)| *label).collect();
            assert_eq!(labels[..POLICY_VARIANTS.len()], POLICY_VARIANTS);
            assert_eq!(labels[POLICY_VARIANTS.len()..], TAPE_VARIANTS);
            let gradients: Vec<Vec<ArrayD<f64>>> = runs.iter_mut().map(|(_, run)| (run.gradients)().1).collect();
            // The context's own account (`held_bytes_reported`): the allocator's counts every
            // test thread.
            let held_all: Vec<usize> = runs
                .iter_mut()
                .map(|(_, run)| (run.memory)().held_bytes_reported)
                .collect();
            let tape_held = held_all[POLICY_VARIANTS.len()];
            let reference = &gradients[0];
            assert_eq!(reference.len(), inputs.wrt_names(Wrt::All).len(), "{}", case.name());
            for ((label, grads), &held) in labels.iter().zip(&gradients).zip(&held_all) {
                let error = error_of_largest(grads, reference);
                let what = format!("{} {label}: {error:.1e}", case.name());
                match *label {
                    "bf16 residuals" => {
                        assert!(error < 2e-2, "{what}");
                        assert!(held <= held_all[0], "{what}");
                    }
                    "save = min" => {
                        assert!(error < 1e-12, "{what}");
                        assert_eq!(held, 0, "{what}");
                    }
                    "tape, bf16 residuals" => {
                        assert!(error < 2e-2, "{what}");
                        assert!(held <= tape_held, "{what}");
                    }
                    _ => assert!(error < 1e-12, "{what}"),
                }
            }
            // bf16 rounds where the case keeps an array (conv2d's convolution output, which
            // batch norm's measuring sums read against the statistics of the exact values;
            // attention's and the RNN's matrices).
            if matches!(case, Case::Conv2d | Case::Attention | Case::Rnn) {
                assert!(error_of_largest(&gradients[3], reference) > 0.0, "{}", case.name());
            }
            // The tape keeps computed arrays in every case but simple_quadratic's (whose one
            // saved array is its parameter, a leaf): its bf16 rounds them and holds less.
            if case != Case::SimpleQuadratic {
                assert!(error_of_largest(&gradients[5], reference) > 0.0, "{}", case.name());
                assert!(held_all[5] < tape_held, "{}: {held_all:?}", case.name());
            }
        }
    }

    /// The parameters' variants are the published analyses and policies, then the tape; the
    /// residual precisions are full, bf16, f16.
    #[test]
    fn variant_lists() {
        let inputs = Inputs::random(Shapes::tiny(Case::SmallMlp), 5);
        let labels: Vec<&str> = ablation_modes(&inputs).into_iter().map(|(l, _)| l).collect();
        assert_eq!(labels.len(), crate::runs::ABLATION_VARIANTS.len() + TAPE_VARIANTS.len());
        assert_eq!(labels[labels.len() - 2..], TAPE_VARIANTS);
        assert!(labels.contains(&"save = min") && labels.contains(&"bf16 residuals"));
        assert_eq!(RESIDUAL_PRECISIONS, ["full", "bf16", "f16"]);
    }

    fn row(case: &str, wrt: Wrt, variant: &str, median: f64, held: usize) -> AblationRow {
        AblationRow {
            case: case.to_string(),
            wrt: wrt.name().to_string(),
            variant: variant.to_string(),
            backward: Stats {
                median,
                min: median,
                max: median,
                samples: 3,
            },
            memory: Memory {
                peak_bytes: 2 * held,
                held_bytes: held,
                held_bytes_reported: held,
            },
            max_rel_diff: match variant {
                "bf16 residuals" => 2.5e-3,
                "tape, bf16 residuals" => 3.5e-3,
                _ => 0.0,
            },
        }
    }

    /// Each wrt mode gets its own table, whose ratios are to its own all-on row, and the
    /// policy table one line per case and wrt mode, backward ÷ `save = "all"`.
    #[test]
    fn tables_per_wrt_mode() {
        let mut rows = Vec::new();
        for (wrt, scale) in [(Wrt::Params, 1.0), (Wrt::All, 2.0)] {
            for (variant, time, held) in [
                ("all on", 10.0, 1000),
                ("save = all", 10.0, 2000),
                ("save = min", 20.0, 0),
                ("bf16 residuals", 11.0, 500),
                ("tape", 12.0, 2100),
                ("tape, bf16 residuals", 15.0, 1100),
            ] {
                rows.push(row("conv2d", wrt, variant, time * scale, held));
            }
        }
        let text = table(&rows);
        assert!(text.contains("w.r.t. the parameters"), "{text}");
        assert!(text.contains("w.r.t. every input"), "{text}");
        // The every-input all-on row is 20 µs, and its own base.
        assert!(text.contains("| conv2d | all on | 20.0 µs | 1.00× |"), "{text}");
        assert!(
            text.contains("| conv2d | save = min | 40.0 µs | 2.00× | 0 B |"),
            "{text}"
        );
        assert!(
            text.contains(
                "| conv2d | params | 1.0 KB | 2.0 KB | 0 B | 500 B | 2.1 KB | 1.1 KB | 1.00× | 2.00× | 1.10× (2.5e-3) | 1.25× (3.5e-3) |"
            ),
            "{text}"
        );
        assert!(text.contains("| conv2d | all | 1.0 KB |"), "{text}");
    }

    /// An ablation.json written before the every-input rows reads as the parameters'.
    #[test]
    fn old_json_is_params() {
        let text = r#"[{"case": "rnn", "variant": "all on",
            "backward": {"median": 1.0, "min": 1.0, "max": 1.0, "samples": 3},
            "memory": {"peak_bytes": 1, "held_bytes": 1, "held_bytes_reported": 1}, "max_rel_diff": 0.0}]"#;
        let rows: Vec<AblationRow> = serde_json::from_str(text).expect("parses");
        assert_eq!(rows[0].wrt, "params");
    }
}
