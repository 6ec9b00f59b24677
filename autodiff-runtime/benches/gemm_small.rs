//! Tiny and small matrix products: the fixed cost of each backend per call.
//!
//! For f32 and f64, shapes (m, k, n) from 16×8·8×4 up to 128³, in the three forms the
//! kernels use: `a·b` (forward), `aᵀ·b` (`matmul_grad_rhs`, `a` stored k×m) and `a·bᵀ`
//! (`matmul_grad_lhs`, `b` stored n×k), all views of C-order arrays. Variants:
//! - `gemm_crate`: `gemm_with_backend(Backend::Gemm, ..)`, the `gemm` crate as before;
//! - `mm`: ndarray's `general_mat_mul` (the `matrixmultiply` crate);
//! - `loop`: a plain dot-product triple loop on raw strides (tiniest shapes only);
//! - `gemm()`: the public entry point, with its size-based dispatch.
//!
//! Two parts. First an interleaved pass that prints a table of medians: every variant
//! runs one batch of calls (about 5 µs of work, the same count for all variants), then
//! the next variant, round after round (201 rounds), so drift and the other jobs on
//! the machine hit all variants alike; the median over rounds of ns per call is
//! reported. Then ordinary criterion groups (short samples) for the same cases.
//! Run: `cargo bench -p autodiff-runtime --bench gemm_small`
//! (`-- --table-only` skips criterion, `-- --criterion-only` skips the table).

use autodiff_runtime::kernels::gemm::{gemm, gemm_with_backend, set_num_threads, Backend};
use autodiff_runtime::Float;
use criterion::{black_box, BenchmarkId, Criterion};
use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use std::time::{Duration, Instant};

/// (m, k, n) for `m×k · k×n`.
const SHAPES: [(usize, usize, usize); 17] = [
    (16, 8, 4),
    (8, 16, 4),
    (4, 16, 8),
    (16, 4, 8),
    (8, 8, 8),
    // The products of a 16×8→16→4 MLP (benches/small_problems.rs) in its three forms.
    (16, 8, 16),
    (16, 16, 4),
    (16, 4, 16),
    (8, 16, 16),
    (16, 16, 8),
    (32, 4, 16),
    (16, 16, 16),
    (24, 24, 24),
    (64, 8, 4),
    (32, 32, 32),
    (64, 64, 64),
    (128, 128, 128),
];

/// The plain loop is only run up to this many multiply-adds.
const LOOP_MAX_WORK: usize = 32 * 32 * 32;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Form {
    /// `a · b`, both C order.
    Nn,
    /// `aᵀ · b`, `a` stored k×m.
    Tn,
    /// `a · bᵀ`, `b` stored n×k.
    Nt,
}

impl Form {
    fn name(self) -> &'static str {
        match self {
            Form::Nn => "a·b",
            Form::Tn => "aT·b",
            Form::Nt => "a·bT",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    GemmCrate,
    MatrixMultiply,
    Loop,
    Dispatch,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::GemmCrate => "gemm_crate",
            Variant::MatrixMultiply => "mm",
            Variant::Loop => "loop",
            Variant::Dispatch => "gemm()",
        }
    }
}

/// `c ← a·b` (beta 0) by dot products over raw strides: no packing, no dispatch.
fn plain_loop<F: Float>(a: ArrayView2<F>, b: ArrayView2<F>, mut c: ArrayViewMut2<F>) {
    let (m, k) = a.dim();
    let n = b.ncols();
    let (ars, acs) = (a.strides()[0], a.strides()[1]);
    let (brs, bcs) = (b.strides()[0], b.strides()[1]);
    let (crs, ccs) = (c.strides()[0], c.strides()[1]);
    let (ap, bp, cp) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
    for i in 0..m as isize {
        for j in 0..n as isize {
            let mut s = F::zero();
            for p in 0..k as isize {
                // SAFETY: i < m, j < n, p < k index inside the checked views.
                unsafe { s += *ap.offset(i * ars + p * acs) * *bp.offset(p * brs + j * bcs) };
            }
            // SAFETY: as above, inside c (m×n).
            unsafe { *cp.offset(i * crs + j * ccs) = s };
        }
    }
}

struct Case<F> {
    a: Array2<F>,
    b: Array2<F>,
    c: Array2<F>,
    form: Form,
}

impl<F: Float> Case<F> {
    fn new(m: usize, k: usize, n: usize, form: Form) -> Self {
        let fa = |i: usize, j: usize| F::of(((i * 7 + j * 3) % 11) as f64 * 0.1 - 0.5);
        let fb = |i: usize, j: usize| F::of(((i * 5 + j) % 13) as f64 * 0.1 - 0.6);
        let a = match form {
            Form::Tn => Array2::from_shape_fn((k, m), |(p, i)| fa(i, p)),
            _ => Array2::from_shape_fn((m, k), |(i, p)| fa(i, p)),
        };
        let b = match form {
            Form::Nt => Array2::from_shape_fn((n, k), |(j, p)| fb(p, j)),
            _ => Array2::from_shape_fn((k, n), |(p, j)| fb(p, j)),
        };
        Case {
            a,
            b,
            c: Array2::zeros((m, n)),
            form,
        }
    }

    fn run(&mut self, variant: Variant) {
        let a = if self.form == Form::Tn {
            self.a.t()
        } else {
            self.a.view()
        };
        let b = if self.form == Form::Nt {
            self.b.t()
        } else {
            self.b.view()
        };
        let (a, b) = (black_box(a), black_box(b));
        let c = self.c.view_mut();
        match variant {
            Variant::GemmCrate => gemm_with_backend(Backend::Gemm, F::one(), a, b, F::zero(), c),
            Variant::MatrixMultiply => {
                let mut c = c;
                ndarray::linalg::general_mat_mul(F::one(), &a, &b, F::zero(), &mut c)
            }
            Variant::Loop => plain_loop(a, b, c),
            Variant::Dispatch => gemm(F::one(), a, b, F::zero(), c),
        }
        black_box(&self.c);
    }
}

fn variants(m: usize, k: usize, n: usize) -> Vec<Variant> {
    let mut v = vec![Variant::GemmCrate, Variant::MatrixMultiply];
    if m * k * n <= LOOP_MAX_WORK {
        v.push(Variant::Loop);
    }
    v.push(Variant::Dispatch);
    v
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|x, y| x.total_cmp(y));
    v[v.len() / 2]
}

fn table<F: Float>() {
    const ROUNDS: usize = 201;
    println!("\n{}: median ns per call ({ROUNDS} interleaved rounds)", F::NAME);
    println!("| shape m×k×n | form | gemm_crate | mm | loop | gemm() | mm/gemm_crate | gemm()/gemm_crate |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for &(m, k, n) in &SHAPES {
        for form in [Form::Nn, Form::Tn, Form::Nt] {
            let mut case = Case::<F>::new(m, k, n, form);
            let vs = variants(m, k, n);
            // Batch size: about 5 µs of the slowest variant, at least one call.
            for &v in &vs {
                case.run(v);
            }
            let mut slowest = 0.0f64;
            for &v in &vs {
                let t = Instant::now();
                for _ in 0..20 {
                    case.run(v);
                }
                slowest = slowest.max(t.elapsed().as_secs_f64() / 20.0);
            }
            let batch = ((5e-6 / slowest) as usize).clamp(1, 10_000);
            let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(ROUNDS); vs.len()];
            for _ in 0..ROUNDS {
                for (slot, &v) in vs.iter().enumerate() {
                    let t = Instant::now();
                    for _ in 0..batch {
                        case.run(v);
                    }
                    times[slot].push(t.elapsed().as_nanos() as f64 / batch as f64);
                }
            }
            let med: Vec<f64> = times.into_iter().map(median).collect();
            let get = |want: Variant| vs.iter().position(|&v| v == want).map(|i| med[i]);
            let cell = |x: Option<f64>| x.map_or("–".to_string(), |x| format!("{x:.0}"));
            let (g, mm) = (get(Variant::GemmCrate).unwrap(), get(Variant::MatrixMultiply).unwrap());
            println!(
                "| {m}×{k}×{n} | {} | {} | {} | {} | {} | {:.2} | {:.2} |",
                form.name(),
                cell(Some(g)),
                cell(Some(mm)),
                cell(get(Variant::Loop)),
                cell(get(Variant::Dispatch)),
                mm / g,
                get(Variant::Dispatch).unwrap() / g
            );
        }
    }
}

fn criterion_groups<F: Float>(c: &mut Criterion) {
    for &(m, k, n) in &SHAPES {
        for form in [Form::Nn, Form::Tn, Form::Nt] {
            let mut group = c.benchmark_group(format!("gemm_small_{}_{m}x{k}x{n}_{}", F::NAME, form.name()));
            group
                .sample_size(20)
                .warm_up_time(Duration::from_millis(200))
                .measurement_time(Duration::from_millis(500));
            let mut case = Case::<F>::new(m, k, n, form);
            for v in variants(m, k, n) {
                group.bench_function(BenchmarkId::from_parameter(v.name()), |bencher| {
                    bencher.iter(|| case.run(v))
                });
            }
            group.finish();
        }
    }
}

fn main() {
    set_num_threads(1);
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    if !has("--criterion-only") {
        table::<f32>();
        table::<f64>();
    }
    if !has("--table-only") {
        let mut c = Criterion::default().configure_from_args();
        criterion_groups::<f32>(&mut c);
        criterion_groups::<f64>(&mut c);
        c.final_summary();
    }
}
