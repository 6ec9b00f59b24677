//! conv2d, batch_norm and max_pool2d: forward values against direct loops written
//! here, every backward against central finite differences in f64, the chunked
//! im2col path against the adjoint identity, and shape-error messages.

use autodiff_runtime::gradcheck::{check_gradient, max_relative_error};
use autodiff_runtime::kernels::batch_norm::*;
use autodiff_runtime::kernels::conv::*;
use autodiff_runtime::kernels::pool::*;
use ndarray::{Array, Array1, Array4, Dimension};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TOL: f64 = 1e-6;

fn random<D: Dimension>(rng: &mut StdRng, shape: impl ndarray::ShapeBuilder<Dim = D>) -> Array<f64, D> {
    Array::from_shape_simple_fn(shape, || rng.gen_range(-1.0..1.0))
}

fn max_abs_diff<D: Dimension>(a: &Array<f64, D>, b: &Array<f64, D>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let err = std::panic::catch_unwind(f).expect_err("expected a panic");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// The convolution straight from its definition, with explicit zero padding.
fn naive_conv(
    x: &Array4<f64>,
    w: &Array4<f64>,
    bias: Option<&Array1<f64>>,
    stride: usize,
    padding: usize,
) -> Array4<f64> {
    let (n, c, h, wd) = x.dim();
    let (o, _, kh, kw) = w.dim();
    let oh = (h + 2 * padding - kh) / stride + 1;
    let ow = (wd + 2 * padding - kw) / stride + 1;
    let mut y = Array4::zeros((n, o, oh, ow));
    for b in 0..n {
        for oc in 0..o {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = bias.map_or(0.0, |bias| bias[oc]);
                    for ci in 0..c {
                        for ki in 0..kh {
                            for kj in 0..kw {
                                let iy = (oy * stride + ki) as isize - padding as isize;
                                let ix = (ox * stride + kj) as isize - padding as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                                    acc += x[[b, ci, iy as usize, ix as usize]] * w[[oc, ci, ki, kj]];
                                }
                            }
                        }
                    }
                    y[[b, oc, oy, ox]] = acc;
                }
            }
        }
    }
    y
}

#[test]
fn conv2d_matches_direct_loops_and_finite_differences() {
    let mut rng = StdRng::seed_from_u64(11);
    for n in [1, 2] {
        for stride in [1, 2] {
            for padding in [0, 1] {
                for with_bias in [false, true] {
                    let case = format!("n {n} stride {stride} padding {padding} bias {with_bias}");
                    let x = random(&mut rng, (n, 3, 7, 6));
                    let w = random(&mut rng, (4, 3, 3, 3));
                    let bias = random(&mut rng, 4);
                    let bias = with_bias.then_some(&bias);
                    let y = conv2d(&x, &w, bias, stride, padding);
                    assert!(
                        max_abs_diff(&y, &naive_conv(&x, &w, bias, stride, padding)) < 1e-12,
                        "{case}"
                    );

                    let r = random(&mut rng, y.raw_dim());
                    let dx = conv2d_grad_input(&r, &w, &x.raw_dim(), stride, padding);
                    let err = check_gradient(
                        |x: &Array4<f64>| (conv2d(x, &w, bias, stride, padding) * &r).sum(),
                        &x,
                        &dx,
                    );
                    assert!(err <= TOL, "grad_input {case}: {err}");
                    let dw = conv2d_grad_weight(&r, &x, &w.raw_dim(), stride, padding);
                    let err = check_gradient(
                        |w: &Array4<f64>| (conv2d(&x, w, bias, stride, padding) * &r).sum(),
                        &w,
                        &dw,
                    );
                    assert!(err <= TOL, "grad_weight {case}: {err}");
                    if let Some(bias) = bias {
                        let db = conv2d_grad_bias(&r);
                        let err = check_gradient(
                            |b: &Array1<f64>| (conv2d(&x, &w, Some(b), stride, padding) * &r).sum(),
                            bias,
                            &db,
                        );
                        assert!(err <= TOL, "grad_bias {case}: {err}");
                    }
                }
            }
        }
    }
}

#[test]
fn conv2d_accepts_non_standard_layouts() {
    let mut rng = StdRng::seed_from_u64(12);
    // Inputs given as permuted views of differently shaped buffers.
    let x_buf = random(&mut rng, (6, 7, 3, 2));
    let x = x_buf.view().permuted_axes([3, 2, 1, 0]);
    let w_buf = random(&mut rng, (3, 3, 3, 4));
    let w = w_buf.view().permuted_axes([3, 2, 1, 0]);
    let expected = naive_conv(&x.to_owned(), &w.to_owned(), None, 1, 1);
    assert!(max_abs_diff(&conv2d(&x, &w, None::<&Array1<f64>>, 1, 1), &expected) < 1e-12);
}

/// A case big enough that the patch matrix is built in several tiles, which split
/// output rows and span samples, checked against direct loops and by the adjoint identity
/// `⟨conv(x, w), r⟩ = ⟨x, grad_input(r)⟩ = ⟨w, grad_weight(r)⟩`, which holds exactly (up to
/// rounding) because conv2d without bias is bilinear.
#[test]
fn tiled_im2col_agrees_with_direct_loops_and_adjoint_identity() {
    let mut rng = StdRng::seed_from_u64(13);
    let x = random(&mut rng, (3, 8, 100, 100));
    let w = random(&mut rng, (2, 8, 3, 3));
    let tile = tile_columns(8 * 3 * 3);
    for (stride, padding) in [(1, 1), (2, 0)] {
        let y = conv2d(&x, &w, None::<&Array1<f64>>, stride, padding);
        let (oh, ow) = (y.dim().2, y.dim().3);
        assert!(
            tile < oh * ow && tile / ow * ow != tile && oh * ow / tile * tile != oh * ow,
            "tiles must split rows and samples"
        );
        assert!(max_abs_diff(&y, &naive_conv(&x, &w, None, stride, padding)) < 1e-11);
        let r = random(&mut rng, y.raw_dim());
        let inner = (&y * &r).sum();
        let dx = conv2d_grad_input(&r, &w, &x.raw_dim(), stride, padding);
        let dw = conv2d_grad_weight(&r, &x, &w.raw_dim(), stride, padding);
        assert!(((&dx * &x).sum() - inner).abs() <= 1e-9 * inner.abs().max(1.0));
        assert!(((&dw * &w).sum() - inner).abs() <= 1e-9 * inner.abs().max(1.0));
    }
}

#[test]
fn conv2d_f32_matches_f64() {
    let mut rng = StdRng::seed_from_u64(14);
    let x = random(&mut rng, (2, 5, 9, 9));
    let w = random(&mut rng, (6, 5, 3, 3));
    let y64 = conv2d(&x, &w, None::<&Array1<f64>>, 2, 1);
    let y32 = conv2d(&x.mapv(|v| v as f32), &w.mapv(|v| v as f32), None::<&Array1<f32>>, 2, 1);
    assert!(max_abs_diff(&y32.mapv(f64::from), &y64) < 1e-4);
}

#[test]
fn conv2d_shape_errors_name_the_shapes() {
    let message = panic_message(|| {
        conv2d(
            &Array4::<f64>::zeros((2, 3, 7, 6)),
            &Array4::<f64>::zeros((4, 2, 3, 3)),
            None::<&Array1<f64>>,
            1,
            0,
        );
    });
    assert!(
        message.contains("conv2d") && message.contains("[2, 3, 7, 6]") && message.contains("[4, 2, 3, 3]"),
        "{message}"
    );
    let message = panic_message(|| {
        conv2d(
            &Array4::<f64>::zeros((2, 3, 7, 6)),
            &Array4::<f64>::zeros((4, 3, 3, 3)),
            Some(&Array1::<f64>::zeros(5)),
            1,
            0,
        );
    });
    assert!(message.contains("[5]") && message.contains("[4, 3, 3, 3]"), "{message}");
    let message = panic_message(|| {
        conv2d(
            &Array4::<f64>::zeros((1, 1, 2, 2)),
            &Array4::<f64>::zeros((1, 1, 3, 3)),
            None::<&Array1<f64>>,
            1,
            0,
        );
    });
    assert!(
        message.contains("[1, 1, 2, 2]") && message.contains("[1, 1, 3, 3]"),
        "{message}"
    );
    let message = panic_message(|| {
        conv2d_grad_input(
            &Array4::<f64>::zeros((2, 4, 5, 5)),
            &Array4::<f64>::zeros((4, 3, 3, 3)),
            &ndarray::Dim([2, 3, 7, 6]),
            1,
            0,
        );
    });
    assert!(
        message.contains("[2, 4, 5, 5]") && message.contains("[2, 4, 5, 4]"),
        "{message}"
    );
}

/// Largest |a - b| over the largest |b|: the error relative to the array's scale.
fn scaled_error<D: Dimension>(a: &Array<f64, D>, b: &Array<f64, D>) -> f64 {
    max_abs_diff(a, b) / b.iter().fold(0.0, |m: f64, v| m.max(v.abs())).max(f64::MIN_POSITIVE)
}

/// The Winograd path (3×3, stride 1) against im2col on the same inputs, and against
/// direct loops and finite differences, on awkward shapes: padding 0/1/2, channel counts
/// that are not multiples of 8, odd, tiny and non-square images, batches of 1 and 3.
#[test]
fn winograd_matches_im2col_direct_loops_and_finite_differences() {
    let mut rng = StdRng::seed_from_u64(15);
    let shapes = [
        (1, 3, 5, 5, 2),
        (3, 5, 7, 4, 3),
        (2, 1, 1, 1, 1),
        (1, 2, 2, 9, 5),
        (2, 9, 6, 11, 7),
    ];
    for (n, c, h, wd, o) in shapes {
        for padding in [0, 1, 2] {
            if h + 2 * padding < 3 || wd + 2 * padding < 3 {
                continue;
            }
            let case = format!("x {:?} o {o} padding {padding}", (n, c, h, wd));
            let x = random(&mut rng, (n, c, h, wd));
            let w = random(&mut rng, (o, c, 3, 3));
            let bias = random(&mut rng, o);
            let y = conv2d_with(ConvAlgorithm::Winograd, &x, &w, Some(&bias), 1, padding);
            let y_ref = conv2d_with(ConvAlgorithm::Im2col, &x, &w, Some(&bias), 1, padding);
            assert!(scaled_error(&y, &y_ref) < 1e-13, "forward {case}");
            assert!(
                max_abs_diff(&y, &naive_conv(&x, &w, Some(&bias), 1, padding)) < 1e-12,
                "{case}"
            );

            let r = random(&mut rng, y.raw_dim());
            let dx = conv2d_grad_input_with(ConvAlgorithm::Winograd, &r, &w, &x.raw_dim(), 1, padding);
            let dx_ref = conv2d_grad_input_with(ConvAlgorithm::Im2col, &r, &w, &x.raw_dim(), 1, padding);
            assert!(scaled_error(&dx, &dx_ref) < 1e-13, "grad_input {case}");
            let dw = conv2d_grad_weight_with(ConvAlgorithm::Winograd, &r, &x, &w.raw_dim(), 1, padding);
            let dw_ref = conv2d_grad_weight_with(ConvAlgorithm::Im2col, &r, &x, &w.raw_dim(), 1, padding);
            assert!(scaled_error(&dw, &dw_ref) < 1e-13, "grad_weight {case}");

            // Winograd against finite differences of its own forward.
            let wino = ConvAlgorithm::Winograd;
            let none = None::<&Array1<f64>>;
            let dx = conv2d_grad_input_with(wino, &r, &w, &x.raw_dim(), 1, padding);
            let err = check_gradient(
                |x: &Array4<f64>| (conv2d_with(wino, x, &w, none, 1, padding) * &r).sum(),
                &x,
                &dx,
            );
            assert!(err <= TOL, "grad_input {case}: {err}");
            let dw = conv2d_grad_weight_with(wino, &r, &x, &w.raw_dim(), 1, padding);
            let err = check_gradient(
                |w: &Array4<f64>| (conv2d_with(wino, &x, w, none, 1, padding) * &r).sum(),
                &w,
                &dw,
            );
            assert!(err <= TOL, "grad_weight {case}: {err}");
        }
    }
}

#[test]
fn winograd_refuses_other_shapes_and_auto_keeps_im2col_there() {
    assert!(winograd_applies(3, 3, 1, 2));
    assert!(!winograd_applies(3, 3, 2, 1) && !winograd_applies(3, 3, 1, 3) && !winograd_applies(5, 5, 1, 1));
    let mut rng = StdRng::seed_from_u64(16);
    let x = random(&mut rng, (1, 2, 6, 6));
    let w = random(&mut rng, (2, 2, 3, 3));
    let message = panic_message(|| {
        conv2d_with(ConvAlgorithm::Winograd, &x, &w, None::<&Array1<f64>>, 2, 1);
    });
    assert!(
        message.contains("Winograd") && message.contains("stride 2"),
        "{message}"
    );
    // Stride 2 and padding 3 under Auto: im2col, equal to the direct loops.
    for (stride, padding) in [(2, 1), (1, 3)] {
        let y = conv2d(&x, &w, None::<&Array1<f64>>, stride, padding);
        assert!(max_abs_diff(&y, &naive_conv(&x, &w, None, stride, padding)) < 1e-12);
    }
    // Few channels: Auto is im2col; enough channels: Auto is Winograd, bit for bit.
    let none = None::<&Array1<f64>>;
    assert_eq!(
        conv2d(&x, &w, none, 1, 1),
        conv2d_with(ConvAlgorithm::Im2col, &x, &w, none, 1, 1)
    );
    let c = WINOGRAD_MIN_CHANNELS;
    let x = random(&mut rng, (1, c, 6, 5));
    let w = random(&mut rng, (c, c, 3, 3));
    assert_eq!(
        conv2d(&x, &w, none, 1, 1),
        conv2d_with(ConvAlgorithm::Winograd, &x, &w, none, 1, 1)
    );
}

/// Two threads split the batch (each chunk with its own buffers); the results equal the
/// single-threaded ones up to the order of grad_weight's sum over chunks.
#[test]
fn two_threads_match_one_on_both_paths() {
    use autodiff_runtime::kernels::gemm::set_num_threads;
    let mut rng = StdRng::seed_from_u64(17);
    let x = random(&mut rng, (3, 4, 9, 8));
    let w = random(&mut rng, (5, 4, 3, 3));
    let r = random(&mut rng, (3, 5, 9, 8));
    let run = |algorithm| {
        (
            conv2d_with(algorithm, &x, &w, None::<&Array1<f64>>, 1, 1),
            conv2d_grad_input_with(algorithm, &r, &w, &x.raw_dim(), 1, 1),
            conv2d_grad_weight_with(algorithm, &r, &x, &w.raw_dim(), 1, 1),
        )
    };
    // Large enough (over two of the kernels' 32768-element grains) for the bias's sums to split.
    let big_g = random(&mut rng, (4, 6, 64, 48));
    for algorithm in [ConvAlgorithm::Im2col, ConvAlgorithm::Winograd] {
        set_num_threads(1);
        let (y1, dx1, dw1) = run(algorithm);
        set_num_threads(2);
        let (y2, dx2, dw2) = run(algorithm);
        set_num_threads(1);
        assert_eq!(y1, y2, "{algorithm:?}");
        // The bias's sums split by channel: each channel still adds its samples in order.
        set_num_threads(2);
        let db2 = conv2d_grad_bias(&big_g);
        set_num_threads(1);
        assert_eq!(conv2d_grad_bias(&big_g), db2);
        // Batch norm's statistics and sums split by channel, its input adjoint by sample.
        let gamma = Array1::from_shape_fn(6, |c| 0.5 + c as f64 * 0.25);
        let beta = Array1::from_shape_fn(6, |c| c as f64 * 0.1 - 0.2);
        let bn = |threads| {
            set_num_threads(threads);
            let (y, stats) = batch_norm_keeping(&big_g, &gamma, &beta, 1e-5);
            let sums = batch_norm_sums(&y, &big_g, &stats);
            let dx = batch_norm_grad_input(y.clone(), &big_g, &gamma, &stats, &sums);
            set_num_threads(1);
            (y, batch_norm_grad_gamma(&sums), batch_norm_grad_beta(&sums), dx)
        };
        assert_eq!(bn(1), bn(2));
        assert_eq!(dx1, dx2, "{algorithm:?}");
        assert!(scaled_error(&dw2, &dw1) < 1e-14, "{algorithm:?}");
    }
}

/// Winograd in f32 against im2col in f64 on the same inputs (values in [-1, 1], 32
/// channels, so every output sums 288 products): the transforms add a few ulps.
/// Run with `--nocapture` to see the figures; im2col in f32 is printed alongside.
#[test]
fn winograd_f32_accuracy_against_f64() {
    let mut rng = StdRng::seed_from_u64(18);
    let x = random(&mut rng, (2, 32, 14, 14));
    let w = random(&mut rng, (32, 32, 3, 3));
    let r = random(&mut rng, (2, 32, 14, 14));
    let (x32, w32, r32) = (x.mapv(|v| v as f32), w.mapv(|v| v as f32), r.mapv(|v| v as f32));
    let none = None::<&Array1<f64>>;
    let y64 = conv2d_with(ConvAlgorithm::Im2col, &x, &w, none, 1, 1);
    let dx64 = conv2d_grad_input_with(ConvAlgorithm::Im2col, &r, &w, &x.raw_dim(), 1, 1);
    let dw64 = conv2d_grad_weight_with(ConvAlgorithm::Im2col, &r, &x, &w.raw_dim(), 1, 1);
    for algorithm in [ConvAlgorithm::Im2col, ConvAlgorithm::Winograd] {
        let y = conv2d_with(algorithm, &x32, &w32, None::<&Array1<f32>>, 1, 1).mapv(f64::from);
        let dx = conv2d_grad_input_with(algorithm, &r32, &w32, &x.raw_dim(), 1, 1).mapv(f64::from);
        let dw = conv2d_grad_weight_with(algorithm, &r32, &x32, &w.raw_dim(), 1, 1).mapv(f64::from);
        let errors = [
            scaled_error(&y, &y64),
            scaled_error(&dx, &dx64),
            scaled_error(&dw, &dw64),
        ];
        println!(
            "{algorithm:?} f32 vs f64 (max |err| / max |ref|): forward {:.1e}, grad_input {:.1e}, grad_weight {:.1e}",
            errors[0], errors[1], errors[2]
        );
        assert!(errors.iter().all(|&e| e < 1e-5), "{algorithm:?}: {errors:?}");
    }
}

/// Batch norm straight from its definition.
fn naive_batch_norm(x: &Array4<f64>, gamma: &Array1<f64>, beta: &Array1<f64>, eps: f64) -> Array4<f64> {
    let (n, c, h, w) = x.dim();
    let m = (n * h * w) as f64;
    let mut y = x.clone();
    for ch in 0..c {
        let values: Vec<f64> = x.index_axis(ndarray::Axis(1), ch).iter().copied().collect();
        let mean = values.iter().sum::<f64>() / m;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / m;
        y.index_axis_mut(ndarray::Axis(1), ch)
            .mapv_inplace(|v| gamma[ch] * (v - mean) / (var + eps).sqrt() + beta[ch]);
    }
    y
}

#[test]
fn batch_norm_matches_definition_and_finite_differences() {
    let mut rng = StdRng::seed_from_u64(21);
    let eps = 1e-5;
    // A shifted, scaled input so that the statistics are not trivial.
    let x = random(&mut rng, (3, 4, 5, 2)).mapv(|v| 2.0 * v + 0.5);
    let gamma = random(&mut rng, 4);
    let beta = random(&mut rng, 4);
    let (y, stats) = batch_norm_keeping(&x, &gamma, &beta, eps);
    assert!(max_abs_diff(&y, &naive_batch_norm(&x, &gamma, &beta, eps)) < 1e-12);
    assert_eq!(y, batch_norm(&x, &gamma, &beta, eps));
    assert_eq!(stats.bytes(), 2 * 4 * 8);

    let r = random(&mut rng, y.raw_dim());
    let sums = batch_norm_sums(&r, &x, &stats);
    let dx = batch_norm_grad_input(r.clone(), &x, &gamma, &stats, &sums);
    let err = check_gradient(
        |x: &Array4<f64>| (batch_norm(x, &gamma, &beta, eps) * &r).sum(),
        &x,
        &dx,
    );
    assert!(err <= TOL, "grad_input: {err}");
    let dgamma = batch_norm_grad_gamma(&sums);
    let err = check_gradient(
        |gm: &Array1<f64>| (batch_norm(&x, gm, &beta, eps) * &r).sum(),
        &gamma,
        &dgamma,
    );
    assert!(err <= TOL, "grad_gamma: {err}");
    let dbeta = batch_norm_grad_beta(&sums);
    assert_eq!(dbeta, batch_norm_grad_beta_direct(&r));
    let err = check_gradient(
        |bt: &Array1<f64>| (batch_norm(&x, &gamma, bt, eps) * &r).sum(),
        &beta,
        &dbeta,
    );
    assert!(err <= TOL, "grad_beta: {err}");
}

#[test]
fn batch_norm_output_is_normalised_per_channel() {
    let mut rng = StdRng::seed_from_u64(22);
    let x = random(&mut rng, (4, 3, 6, 6)).mapv(|v| 10.0 * v + 3.0);
    let y = batch_norm(&x, &Array1::ones(3), &Array1::zeros(3), 0.0);
    for channel in y.axis_iter(ndarray::Axis(1)) {
        let mean = channel.mean().unwrap_or(f64::NAN);
        let var = channel.mapv(|v| (v - mean).powi(2)).mean().unwrap_or(f64::NAN);
        assert!(
            mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-12,
            "mean {mean}, var {var}"
        );
    }
}

#[test]
fn batch_norm_shape_errors_name_the_shapes() {
    let message = panic_message(|| {
        batch_norm(
            &Array4::<f64>::zeros((2, 3, 4, 4)),
            &Array1::<f64>::ones(2),
            &Array1::<f64>::zeros(3),
            1e-5,
        );
    });
    assert!(
        message.contains("batch_norm") && message.contains("[2]") && message.contains("[2, 3, 4, 4]"),
        "{message}"
    );
    let (x, stats) = batch_norm_keeping(
        &Array4::<f64>::zeros((2, 3, 4, 4)),
        &Array1::<f64>::ones(3),
        &Array1::<f64>::zeros(3),
        1e-5,
    );
    let message = panic_message(|| {
        batch_norm_sums(&Array4::<f64>::zeros((2, 3, 4, 5)), &x, &stats);
    });
    assert!(
        message.contains("[2, 3, 4, 5]") && message.contains("[2, 3, 4, 4]"),
        "{message}"
    );
    // Statistics of another input.
    let message = panic_message(|| {
        let other = Array4::<f64>::zeros((2, 3, 4, 5));
        batch_norm_sums(&other, &other, &stats);
    });
    assert!(
        message.contains("batch_norm_sums") && message.contains("[2, 3, 4, 5]"),
        "{message}"
    );
}

fn naive_max_pool(x: &Array4<f64>, kernel: usize, stride: usize) -> Array4<f64> {
    let (n, c, h, w) = x.dim();
    let (oh, ow) = ((h - kernel) / stride + 1, (w - kernel) / stride + 1);
    Array4::from_shape_fn((n, c, oh, ow), |(b, ch, oy, ox)| {
        let mut best = f64::NEG_INFINITY;
        for ki in 0..kernel {
            for kj in 0..kernel {
                best = best.max(x[[b, ch, oy * stride + ki, ox * stride + kj]]);
            }
        }
        best
    })
}

#[test]
fn max_pool_matches_direct_loops_and_finite_differences() {
    let mut rng = StdRng::seed_from_u64(31);
    // Non-overlapping, overlapping, and a window that leaves a ragged border.
    for (kernel, stride) in [(2, 2), (3, 2), (3, 1), (2, 3)] {
        let x = random(&mut rng, (2, 3, 7, 6));
        let y = max_pool2d(&x, kernel, stride);
        assert_eq!(y, naive_max_pool(&x, kernel, stride), "kernel {kernel} stride {stride}");
        let (kept, argmax) = max_pool2d_keeping(&x, kernel, stride);
        assert_eq!(kept, y);
        let r = random(&mut rng, y.raw_dim());
        let dx = max_pool2d_grad(&r, &argmax);
        let err = check_gradient(|x: &Array4<f64>| (max_pool2d(x, kernel, stride) * &r).sum(), &x, &dx);
        assert!(err <= TOL, "kernel {kernel} stride {stride}: {err}");
    }
}

#[test]
fn max_pool_grad_goes_to_the_first_maximum_on_ties() {
    let x = Array4::from_shape_vec((1, 1, 2, 2), vec![1.0, 3.0, 3.0, 3.0]).unwrap_or_else(|e| panic!("{e}"));
    let g = Array4::from_elem((1, 1, 1, 1), 2.0);
    let dx = max_pool2d_grad(&g, &max_pool2d_keeping(&x, 2, 2).1);
    assert_eq!(dx.iter().copied().collect::<Vec<_>>(), vec![0.0, 2.0, 0.0, 0.0]);
}

#[test]
fn max_pool_shape_errors_name_the_shape() {
    let message = panic_message(|| {
        max_pool2d(&Array4::<f64>::zeros((1, 2, 3, 5)), 4, 1);
    });
    assert!(
        message.contains("max_pool2d") && message.contains("[1, 2, 3, 5]"),
        "{message}"
    );
    let (_, argmax) = max_pool2d_keeping(&Array4::<f64>::zeros((1, 2, 4, 4)), 2, 1);
    let message = panic_message(|| {
        max_pool2d_grad(&Array4::<f64>::zeros((1, 2, 2, 2)), &argmax);
    });
    assert!(
        message.contains("[1, 2, 2, 2]") && message.contains("[1, 2, 3, 3]"),
        "{message}"
    );
}

#[test]
fn relative_error_helper_sees_a_wrong_gradient() {
    // Guards the tests above: a deliberately wrong conv gradient must fail the tolerance.
    let mut rng = StdRng::seed_from_u64(41);
    let x = random(&mut rng, (1, 2, 5, 5));
    let w = random(&mut rng, (3, 2, 3, 3));
    let r = random(&mut rng, (1, 3, 3, 3));
    let wrong = conv2d_grad_input(&r, &w, &x.raw_dim(), 1, 0) * 1.01;
    let right = conv2d_grad_input(&r, &w, &x.raw_dim(), 1, 0);
    assert!(max_relative_error(&wrong, &right) > 1e-3);
}
