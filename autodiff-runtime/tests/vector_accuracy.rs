//! The vectorised `f32` forms of the elementwise functions (`kernels::vector`), against
//! `f64`'s `std` functions over a sweep of inputs, at the edges, and at every length; and
//! the kernels that take them, against the scalar formula they replace for `f32` and keep
//! for every other type.
//!
//! The bounds, in units in the last place of the `f32` result (ulp of the exact value
//! rounded to `f32`; a subnormal's ulp is 2⁻¹⁴⁹): `exp` 2, `tanh` 4, `sigmoid` 5 where the
//! exact value is a normal float. `rten_vecmath` states 1 ulp against `f32::exp`, 3 against
//! `f32::tanh` and 4 against `1/(1 + f32::exp(−x))`, each of which is itself within about 1
//! ulp of exact; the bounds add that. Why they are enough: 5 ulp is 3·10⁻⁷ relative, the
//! size of the rounding of one `f32` product, far under the tolerances any `f32` gradient
//! check applies (1e-3 relative and up) and under the error of the `f32` arithmetic
//! around these calls (a 256-term dot product before the RNN's `tanh`).

use autodiff_runtime::dual::Dual;
use autodiff_runtime::kernels::vector::VectorFn;
use autodiff_runtime::kernels::{loss, softmax, unary};
use autodiff_runtime::tape::Tape;
use autodiff_runtime::Float;
use ndarray::{Array1, Array2, Axis};

/// The `f32` spacing at `exact` (rounded to `f32`), in `f64`; `f32::MAX`'s for infinities.
fn ulp(exact: f64) -> f64 {
    let r = (exact.abs() as f32).min(f32::MAX);
    if r < f32::MIN_POSITIVE {
        return 2f64.powi(-149);
    }
    let exponent = ((r.to_bits() >> 23) & 0xff) as i32 - 127;
    2f64.powi(exponent - 23)
}

/// `got`'s error from `exact` in `f32` ulps: 0 where both are the same infinity or both
/// NaN, infinite where only one is.
fn ulps(got: f32, exact: f64) -> f64 {
    if got.is_nan() || exact.is_nan() {
        return if got.is_nan() && exact.is_nan() {
            0.0
        } else {
            f64::INFINITY
        };
    }
    let exact_f32 = exact as f32;
    if got.is_infinite() || exact_f32.is_infinite() {
        return if got == exact_f32 { 0.0 } else { f64::INFINITY };
    }
    (f64::from(got) - exact).abs() / ulp(exact)
}

/// The sweep: a dense grid over `[lo, hi]`, plus values near 0 (both signs), subnormals,
/// the smallest normals, ±0, ±∞ and NaN; inputs whose exact result `keep` rejects are left
/// out (checked separately).
fn sweep(lo: f32, hi: f32) -> Vec<f32> {
    let mut xs: Vec<f32> = (0..=200_000).map(|i| lo + (hi - lo) * (i as f32 / 200_000.0)).collect();
    for e in -45..=-1 {
        let x = 10f32.powi(e);
        xs.extend([x, -x, 1.5 * x, -1.5 * x]);
    }
    xs.extend([
        0.0,
        -0.0,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::from_bits(1),
        -f32::from_bits(1),
        f32::from_bits(0x0040_0000),
        -f32::from_bits(0x0040_0000),
        f32::EPSILON,
        1.0,
        -1.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
    ]);
    xs
}

/// The vectorised `f32` form of `f` on `xs`.
fn vectorised(f: VectorFn, xs: &[f32]) -> Vec<f32> {
    <f32 as Float>::vectorised(f).expect("f32 has vectorised forms").map(xs)
}

/// The largest error in ulps of `f`'s vectorised form over `xs` against `exact`, with the
/// input where it happens; only inputs where `counted(exact)` holds are counted.
fn worst(f: VectorFn, xs: &[f32], exact: impl Fn(f64) -> f64, counted: impl Fn(f64) -> bool) -> (f64, f32) {
    let ys = vectorised(f, xs);
    assert_eq!(ys.len(), xs.len());
    xs.iter()
        .zip(&ys)
        .filter(|(&x, _)| counted(exact(f64::from(x))))
        .map(|(&x, &y)| (ulps(y, exact(f64::from(x))), x))
        .fold((0.0, 0.0), |w, e| if e.0 > w.0 { e } else { w })
}

fn sigmoid_f64(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

#[test]
fn tanh_is_within_4_ulp_of_f64_tanh() {
    let (err, at) = worst(VectorFn::Tanh, &sweep(-20.0, 20.0), f64::tanh, |_| true);
    eprintln!("tanh: {err} ulp at x = {at:e}");
    assert!(err <= 4.0, "tanh: {err} ulp at x = {at:e}");
}

#[test]
fn exp_is_within_2_ulp_of_f64_exp() {
    // From below the underflow threshold to past the overflow one: subnormal results
    // (x < −87.3), the largest finite ones, and overflow to ∞ (x > 88.73) are all counted.
    let (err, at) = worst(VectorFn::Exp, &sweep(-110.0, 95.0), f64::exp, |_| true);
    eprintln!("exp: {err} ulp at x = {at:e}");
    assert!(err <= 2.0, "exp: {err} ulp at x = {at:e}");
}

#[test]
fn sigmoid_is_within_5_ulp_of_f64_sigmoid_where_normal() {
    let normal = |y: f64| y == 0.0 || y.abs() >= f64::from(f32::MIN_POSITIVE) || y.is_nan();
    let (err, at) = worst(VectorFn::Sigmoid, &sweep(-110.0, 110.0), sigmoid_f64, normal);
    eprintln!("sigmoid: {err} ulp at x = {at:e}");
    assert!(err <= 5.0, "sigmoid: {err} ulp at x = {at:e}");
}

#[test]
fn sigmoid_flushes_only_subnormal_results_to_zero() {
    // `stable_sigmoid` gives e/(1+e) there, a subnormal; the vectorised form computes
    // 1/(1+e⁻ˣ) with e⁻ˣ = ∞ and gives 0: an absolute error under 2⁻¹²⁶, and y(1−y) = 0
    // as the derivative where the exact one is under 2⁻¹²⁶ too.
    let xs: Vec<f32> = (0..2000).map(|i| -87.0 - i as f32 * 0.01).collect();
    let ys = vectorised(VectorFn::Sigmoid, &xs);
    for (&x, &y) in xs.iter().zip(&ys) {
        let exact = sigmoid_f64(f64::from(x));
        assert!(
            (f64::from(y) - exact).abs() < f64::from(f32::MIN_POSITIVE),
            "sigmoid({x}) = {y:e}, exact {exact:e}"
        );
        assert!(y >= 0.0 && y.is_finite());
    }
}

#[test]
fn edges_follow_std() {
    let tanh = vectorised(
        VectorFn::Tanh,
        &[f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 0.0, -0.0, 9.5, -9.5],
    );
    assert_eq!(tanh[..2], [1.0, -1.0]);
    assert!(tanh[2].is_nan());
    assert_eq!(tanh[3..5], [0.0, 0.0]);
    // With the sign of zero std gives: `rten_vecmath` alone returns −0 for +0 (it takes
    // `x <= 0` as negative), which the kernel mends (`kernels::vector::SignedTanh`).
    assert!(
        tanh[3].is_sign_positive() && tanh[4].is_sign_negative(),
        "tanh(±0): {:?}",
        &tanh[3..5]
    );
    assert_eq!(tanh[5..], [1.0, -1.0]);

    let exp = vectorised(
        VectorFn::Exp,
        &[
            f32::NEG_INFINITY,
            f32::INFINITY,
            f32::NAN,
            0.0,
            -0.0,
            88.8,
            200.0,
            -200.0,
            1.0,
        ],
    );
    assert_eq!(exp[..2], [0.0, f32::INFINITY]);
    assert!(exp[2].is_nan());
    assert_eq!(exp[3..5], [1.0, 1.0]);
    assert_eq!(exp[5..8], [f32::INFINITY, f32::INFINITY, 0.0]);
    assert_eq!(exp[8], std::f32::consts::E);

    let sigmoid = vectorised(
        VectorFn::Sigmoid,
        &[f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 0.0, 200.0, -200.0],
    );
    assert_eq!(sigmoid[..2], [1.0, 0.0]);
    assert!(sigmoid[2].is_nan());
    assert_eq!(sigmoid[3..], [0.5, 1.0, 0.0]);
}

#[test]
fn tanh_keeps_the_sign_and_value_of_tiny_inputs() {
    // tanh x = x to within f32 precision below |x| ≈ 4e-4; subnormals come back unchanged.
    for x in [
        1e-4_f32,
        -1e-4,
        1e-30,
        -1e-30,
        f32::from_bits(1),
        -f32::from_bits(1),
        f32::MIN_POSITIVE,
    ] {
        // Against tanh correctly rounded (f64's, rounded once), not `f32::tanh`: libm's is
        // 1 ulp above at 1e-4 in a debug build (a release build folds the constant).
        let y = vectorised(VectorFn::Tanh, &[x])[0];
        assert_eq!(y, f64::from(x).tanh() as f32, "tanh({x:e})");
        assert_eq!(y.is_sign_negative(), x.is_sign_negative(), "tanh({x:e})");
    }
}

#[test]
fn every_length_gives_each_element_the_same_value() {
    // Tails shorter than a SIMD vector (16 lanes under AVX-512, 8 under AVX2) go through
    // masked loads: each element must come out as it does inside a full vector.
    let xs: Vec<f32> = (0..1000).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.173).collect();
    for f in [VectorFn::Exp, VectorFn::Tanh, VectorFn::Sigmoid] {
        let full = vectorised(f, &xs);
        for len in (0..=70).chain([127, 129, 255, 257, 999]) {
            assert_eq!(vectorised(f, &xs[..len]), full[..len], "{f:?}, length {len}");
            let mut in_place = xs[..len].to_vec();
            <f32 as Float>::vectorised(f).unwrap().map_in_place(&mut in_place);
            assert_eq!(in_place, full[..len], "{f:?} in place, length {len}");
        }
    }
}

#[test]
fn f32_kernels_take_the_vectorised_form_on_contiguous_arrays() {
    let a = Array2::from_shape_fn((33, 17), |(i, j)| (i as f32 - 16.0) * 0.3 + j as f32 * 0.05);
    let flat = a.as_slice().unwrap();
    assert_eq!(unary::tanh(&a).as_slice().unwrap(), vectorised(VectorFn::Tanh, flat));
    assert_eq!(unary::exp(&a).as_slice().unwrap(), vectorised(VectorFn::Exp, flat));
    assert_eq!(
        unary::sigmoid(&a).as_slice().unwrap(),
        vectorised(VectorFn::Sigmoid, flat)
    );
    // Dynamic rank, as the tape calls them.
    assert_eq!(unary::tanh(&a.clone().into_dyn()), unary::tanh(&a).into_dyn());
}

#[test]
fn strided_f32_arrays_keep_the_scalar_formula() {
    let a = Array2::from_shape_fn((33, 17), |(i, j)| (i as f32 - 16.0) * 0.3 + j as f32 * 0.05);
    let t = a.t();
    assert!(t.as_slice().is_none());
    assert_eq!(unary::tanh(&t), t.mapv(f32::tanh));
    assert_eq!(unary::exp(&t), t.mapv(f32::exp));
    assert_eq!(unary::sigmoid(&t), t.mapv(unary::stable_sigmoid));
}

#[test]
fn f64_and_dual_kernels_keep_the_scalar_formula_bit_for_bit() {
    assert!(<f64 as Float>::vectorised(VectorFn::Tanh).is_none());
    assert!(<Dual<f32> as Float>::vectorised(VectorFn::Tanh).is_none());
    let a = Array1::from_shape_fn(1001, |i| (i as f64 - 500.0) * 0.037);
    assert_eq!(unary::tanh(&a), a.mapv(f64::tanh));
    assert_eq!(unary::exp(&a), a.mapv(f64::exp));
    assert_eq!(unary::sigmoid(&a), a.mapv(unary::stable_sigmoid));
    let d = a.mapv(|x| Dual::new(x as f32, 1.0));
    assert_eq!(unary::tanh(&d), d.mapv(unary::tanh_scalar));
    assert_eq!(unary::exp(&d), d.mapv(unary::exp_scalar));
}

#[test]
fn the_tape_runs_the_same_vectorised_kernel() {
    let a = Array2::from_shape_fn((9, 13), |(i, j)| (i as f32 - 4.0) * 0.7 - j as f32 * 0.11);
    let tape = Tape::<f32>::new();
    let x = tape.param(&a);
    assert_eq!(x.tanh().value().into_dimensionality().unwrap(), unary::tanh(&a));
    assert_eq!(x.exp().value().into_dimensionality().unwrap(), unary::exp(&a));
    assert_eq!(
        x.softmax(Axis(1)).value().into_dimensionality().unwrap(),
        softmax::softmax(&a, Axis(1))
    );
    assert_eq!(
        unary::tanh(&a).as_slice().unwrap(),
        vectorised(VectorFn::Tanh, a.as_slice().unwrap())
    );
}

/// Today's (pre-vectorisation) softmax, copied as the reference the `f64` path must match
/// bit for bit.
fn softmax_reference<F: Float>(a: &Array2<F>, axis: Axis) -> Array2<F> {
    let mut y = a.to_owned();
    for mut lane in y.lanes_mut(axis) {
        let max = lane.fold(F::neg_infinity(), |m, &v| m.max(v));
        let mut total = F::zero();
        lane.mapv_inplace(|v| {
            let e = (v - max).exp();
            total += e;
            e
        });
        let inv = total.recip();
        lane.mapv_inplace(|e| e * inv);
    }
    y
}

fn logits() -> Array2<f64> {
    Array2::from_shape_fn((37, 129), |(i, j)| ((i * 131 + j * 71) % 97) as f64 * 0.21 - 10.0)
}

#[test]
fn f32_softmax_is_as_accurate_as_the_scalar_loop() {
    // The logits rounded to f32 first: the error measured is the kernel's, not the input's.
    // The shift `v − max` rounds in f32 (half an ulp of a value up to 20, 1e-6 absolute),
    // which moves `exp` by 1e-6 relative, some 16 ulp, in the scalar loop as much as in
    // the vectorised one: the vectorised softmax must be within 4 ulp of the scalar loop's
    // own worst error.
    let a = logits().mapv(|x| f64::from(x as f32));
    let a32 = a.mapv(|x| x as f32);
    let error =
        |y: &Array2<f32>, exact: &Array2<f64>| y.iter().zip(exact).map(|(&y, &e)| ulps(y, e)).fold(0.0, f64::max);
    let exact = softmax::softmax(&a, Axis(1));
    let (vectorised, scalar) = (
        error(&softmax::softmax(&a32, Axis(1)), &exact),
        error(&softmax_reference(&a32, Axis(1)), &exact),
    );
    eprintln!("softmax along rows: vectorised {vectorised} ulp, scalar {scalar} ulp");
    assert!(
        vectorised <= scalar + 4.0,
        "softmax: vectorised {vectorised} ulp, scalar {scalar} ulp"
    );
    // Large logits stay finite, a lane of one element is 1.
    let big = Array2::from_shape_fn((2, 33), |(i, j)| if i == 0 { 1000.0 * j as f32 } else { -1000.0 });
    let y = softmax::softmax(&big, Axis(1));
    assert!(y.iter().all(|v| v.is_finite()));
    assert_eq!(y[[0, 32]], 1.0);
    assert_eq!(
        softmax::softmax(&Array2::<f32>::zeros((3, 1)), Axis(1)),
        Array2::ones((3, 1))
    );
}

#[test]
fn f64_softmax_is_todays_loop_bit_for_bit() {
    let a = logits();
    for axis in [Axis(0), Axis(1)] {
        assert_eq!(softmax::softmax(&a, axis), softmax_reference(&a, axis));
    }
    let d = a.mapv(|x| Dual::new(x, 0.5));
    assert_eq!(softmax::softmax(&d, Axis(1)), softmax_reference(&d, Axis(1)));
}

#[test]
fn f32_softmax_of_contiguous_lanes_uses_the_vectorised_exp() {
    // Row by row: shift by the row's max, vectorised exp, sum (in 16 running sums), scale.
    let a = logits().mapv(|x| x as f32);
    let y = softmax::softmax(&a, Axis(1));
    for (row, out) in a.rows().into_iter().zip(y.rows()) {
        let max = row.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let shifted: Vec<f32> = row.iter().map(|&v| v - max).collect();
        let e = vectorised(VectorFn::Exp, &shifted);
        // The rest exactly: the sum of 129 terms in f32 and the scaling round by a few ulp.
        let total: f64 = e.iter().map(|&e| f64::from(e)).sum();
        let err = out
            .iter()
            .zip(&e)
            .map(|(&y, &e)| ulps(y, f64::from(e) / total))
            .fold(0.0, f64::max);
        assert!(err <= 4.0, "{err} ulp from exp(v − max) / Σ with the vectorised exp");
    }
    // Columns are strided: today's scalar loop.
    assert_eq!(softmax::softmax(&a, Axis(0)), softmax_reference(&a, Axis(0)));
}

#[test]
fn f32_cross_entropy_gradient_is_as_accurate_as_the_scalar_loop() {
    let a = logits().mapv(|x| f64::from(x as f32));
    let a32 = a.mapv(|x| x as f32);
    let labels: Vec<usize> = (0..a.nrows()).map(|i| i * 7 % a.ncols()).collect();
    let exact = loss::cross_entropy_grad(1.0, &a, &labels);
    // Absolute error, in units of the scale 1/batch: the label's entry is p − 1/batch, a
    // difference whose ulps say little. The reference is the scalar loop in f32, as it was.
    let scale = 1.0 / a.nrows() as f64;
    let error = |y: &Array2<f32>| {
        y.iter()
            .zip(&exact)
            .map(|(&y, &e)| (f64::from(y) - e).abs())
            .fold(0.0, f64::max)
            / scale
    };
    let mut reference = softmax_reference(&a32, Axis(1)).mapv(|p| p * scale as f32);
    for (i, &label) in labels.iter().enumerate() {
        reference[[i, label]] -= scale as f32;
    }
    let (vectorised, scalar) = (
        error(&loss::cross_entropy_grad(1.0_f32, &a32, &labels)),
        error(&reference),
    );
    eprintln!("cross_entropy_grad: vectorised {vectorised:e}, scalar {scalar:e} (× 1/batch)");
    assert!(
        vectorised <= scalar + 4.0 * f64::from(f32::EPSILON),
        "vectorised {vectorised:e}, scalar {scalar:e}"
    );
}

/// Today's (pre-vectorisation) log-softmax along rows, copied as the reference.
fn log_softmax_reference<F: Float>(a: &Array2<F>, axis: Axis) -> Array2<F> {
    let mut y = a.to_owned();
    for mut lane in y.lanes_mut(axis) {
        let max = lane.fold(F::neg_infinity(), |m, &v| m.max(v));
        let total = lane.fold(F::zero(), |acc, &v| acc + (v - max).exp());
        let log_total = total.ln();
        lane.mapv_inplace(|v| (v - max) - log_total);
    }
    y
}

#[test]
fn f32_log_softmax_and_cross_entropy_are_as_accurate_as_the_scalar_loop() {
    let a = logits().mapv(|x| f64::from(x as f32));
    let a32 = a.mapv(|x| x as f32);
    // log-softmax: absolute error (its values are logarithms, of magnitude up to 20 here;
    // the shift v − max rounds in f32 in both loops).
    let exact = softmax::log_softmax(&a, Axis(1));
    let error = |y: &Array2<f32>| {
        y.iter()
            .zip(&exact)
            .map(|(&y, &e)| (f64::from(y) - e).abs())
            .fold(0.0, f64::max)
    };
    let (vectorised, scalar) = (
        error(&softmax::log_softmax(&a32, Axis(1))),
        error(&log_softmax_reference(&a32, Axis(1))),
    );
    eprintln!("log_softmax: vectorised {vectorised:e}, scalar {scalar:e} absolute");
    assert!(
        vectorised <= scalar + 4.0 * f64::from(f32::EPSILON),
        "vectorised {vectorised:e}, scalar {scalar:e}"
    );
    // Columns are strided: today's scalar loop, bit for bit; f64 likewise.
    assert_eq!(
        softmax::log_softmax(&a32, Axis(0)),
        log_softmax_reference(&a32, Axis(0))
    );
    assert_eq!(softmax::log_softmax(&a, Axis(1)), log_softmax_reference(&a, Axis(1)));

    let labels: Vec<usize> = (0..a.nrows()).map(|i| i * 7 % a.ncols()).collect();
    let exact = loss::cross_entropy(&a, &labels);
    let got = loss::cross_entropy(&a32, &labels);
    let relative = (f64::from(got) - exact).abs() / exact;
    eprintln!("cross_entropy: {relative:e} relative");
    assert!(relative <= 1e-6, "cross_entropy {got} against {exact}: {relative:e}");
    // f64 and a view with strided rows (a transpose's transpose... of a column-major copy)
    // run today's scalar loop, bit for bit.
    assert_eq!(
        loss::cross_entropy(&a, &labels),
        cross_entropy_reference(&a.view(), &labels)
    );
    let column_major = a32.t().as_standard_layout().into_owned();
    let strided = column_major.t();
    assert!(strided.row(0).as_slice().is_none());
    assert_eq!(
        loss::cross_entropy(&strided, &labels),
        cross_entropy_reference(&strided, &labels)
    );
}

/// Today's (pre-vectorisation) cross-entropy, copied as the reference.
fn cross_entropy_reference<F: Float>(logits: &ndarray::ArrayView2<F>, labels: &[usize]) -> F {
    let mut total = F::zero();
    for (row, &label) in logits.rows().into_iter().zip(labels) {
        let max = row.fold(F::neg_infinity(), |m, &v| m.max(v));
        let sum_exp = row.fold(F::zero(), |acc, &v| acc + (v - max).exp());
        total = total + sum_exp.ln() - (row[label] - max);
    }
    total / F::of_usize(labels.len())
}

/// The in-place form computes what the out-of-place one does, zeros' signs included, over
/// lengths shorter and longer than a SIMD vector and a few of them.
#[test]
fn tanh_in_place_equals_tanh() {
    let tanh = <f32 as Float>::vectorised(VectorFn::Tanh).expect("f32 has vectorised forms");
    for n in [0, 1, 7, 255, 256, 257, 1000] {
        let xs: Vec<f32> = (0..n)
            .map(|i| match i % 5 {
                0 => 0.0,
                1 => -0.0,
                _ => (i as f32 * 0.37).sin() * 4.0,
            })
            .collect();
        let mut in_place = xs.clone();
        tanh.map_in_place(&mut in_place);
        let out = tanh.map(&xs);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&in_place), bits(&out), "length {n}");
        assert!(
            out.iter()
                .zip(&xs)
                .all(|(y, x)| y.is_sign_negative() == x.is_sign_negative()),
            "length {n}"
        );
    }
}
