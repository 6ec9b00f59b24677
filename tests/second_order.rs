//! Second derivatives: `_jvp` (forward mode) and `_hvp` (forward over reverse), and the
//! dual numbers under them, one `#[test]` per function.
//!
//! Each function is checked in f64 against independent oracles:
//! - the JVP against the gradient dotted with the direction, and against finite
//!   differences of the function along the direction;
//! - the HVP's gradient against `_grad`, and its Hessian-vector product against central
//!   finite differences of the gradient along the direction (a gradgradcheck, with
//!   Richardson extrapolation so that the tolerance can be tight);
//! - the tape at dual numbers (`_tape_grad::<Dual<f64>>`) against the static code there.
//!
//! The parameter forms (views, owned arrays, floats) and a custom rule run at duals too.

mod common;

use autodiff::ndarray::{Array, Dimension};
use autodiff::prelude::*;
use autodiff::runtime::dual::{self, Dual, Split};
use common::{positive, random, rng};

type D64 = Dual<f64>;

// ---------------------------------------------------------------------------------------
// The oracle.

/// Gradients, directions and products, flattened into one vector.
trait Flat {
    fn flat_into(&self, out: &mut Vec<f64>);

    fn flat(&self) -> Vec<f64> {
        let mut out = Vec::new();
        self.flat_into(&mut out);
        out
    }
}

impl Flat for f64 {
    fn flat_into(&self, out: &mut Vec<f64>) {
        out.push(*self);
    }
}

impl<D: Dimension> Flat for Array<f64, D> {
    fn flat_into(&self, out: &mut Vec<f64>) {
        out.extend(self.iter().copied());
    }
}

impl<T: Flat> Flat for Vec<T> {
    fn flat_into(&self, out: &mut Vec<f64>) {
        self.iter().for_each(|t| t.flat_into(out));
    }
}

macro_rules! flat_tuples {
    ($(($($t:ident $i:tt),*))*) => {$(
        impl<$($t: Flat),*> Flat for ($($t,)*) {
            fn flat_into(&self, out: &mut Vec<f64>) {
                $(self.$i.flat_into(out);)*
            }
        }
    )*};
}

flat_tuples! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, E 3)
    (A 0, B 1, C 2, E 3, G 4)
}

/// The derivative at 0 of `f: t ↦ vector` by central differences with Richardson
/// extrapolation (`(4·D(h/2) − D(h)) / 3`, error O(h⁴)).
fn derivative_along(f: impl Fn(f64) -> Vec<f64>) -> Vec<f64> {
    let central = |h: f64| -> Vec<f64> {
        let (plus, minus) = (f(h), f(-h));
        plus.iter().zip(&minus).map(|(p, m)| (p - m) / (2.0 * h)).collect()
    };
    let h = 1e-3;
    let (coarse, fine) = (central(h), central(h / 2.0));
    fine.iter().zip(&coarse).map(|(f, c)| (4.0 * f - c) / 3.0).collect()
}

/// `max |a − b| ≤ tol · (1 + max |b|)`, with a message naming `what`.
fn assert_close(what: &str, a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    let scale = b.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    let (index, err) = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .enumerate()
        .fold((0, 0.0), |best, (i, e)| if e > best.1 { (i, e) } else { best });
    assert!(
        err <= tol * (1.0 + scale),
        "{what}: element {index} is {} against {} (max error {err:e}, scale {scale:e})",
        a[index],
        b[index]
    );
}

/// What one function's items returned at one point, and how to move the point.
struct Second<'a> {
    value: f64,
    gradient: Vec<f64>,
    jvp: (f64, f64),
    hvp: (f64, Vec<f64>, Vec<f64>),
    directions: Vec<f64>,
    /// The function's value at `point + t·directions`.
    value_at: &'a dyn Fn(f64) -> f64,
    /// The flattened gradient at `point + t·directions`.
    gradient_at: &'a dyn Fn(f64) -> Vec<f64>,
}

impl Second<'_> {
    /// Every check of the module's doc.
    fn check(&self, hvp_tol: f64) {
        let dot: f64 = self.gradient.iter().zip(&self.directions).map(|(g, d)| g * d).sum();
        // The JVP runs the user's function (ndarray's own `dot`), `_grad` the kernels: the
        // values agree to rounding, not bit for bit.
        assert_close("jvp value", &[self.jvp.0], &[self.value], 1e-14);
        assert_close("jvp against gradient · direction", &[self.jvp.1], &[dot], 1e-12);
        let fd = derivative_along(|t| vec![(self.value_at)(t)]);
        assert_close("jvp against finite differences", &[self.jvp.1], &fd, 1e-8);
        assert_close("hvp value", &[self.hvp.0], &[self.value], 1e-14);
        assert_close("hvp's gradient against _grad", &self.hvp.1, &self.gradient, 1e-12);
        let fd = derivative_along(self.gradient_at);
        assert_close(
            "hvp against finite differences of the gradient",
            &self.hvp.2,
            &fd,
            hvp_tol,
        );
    }
}

/// `_tape_grad` at dual numbers against `_grad` there: value, gradient and tangents.
fn assert_tape_matches_static<G: Split<Real = R>, R: Flat>(static_: (D64, G), tape: (D64, G)) {
    let ((static_value, static_grads), (tape_value, tape_grads)) = (static_, tape);
    assert_close("tape value", &[tape_value.value], &[static_value.value], 1e-12);
    assert_close("tape jvp", &[tape_value.tangent], &[static_value.tangent], 1e-12);
    let ((sg, sh), (tg, th)) = (static_grads.split(), tape_grads.split());
    assert_close("tape gradient", &tg.flat(), &sg.flat(), 1e-12);
    assert_close("tape hvp", &th.flat(), &sh.flat(), 1e-12);
}

/// Splits a tuple of dual gradients (up to five), for [`assert_tape_matches_static`].
macro_rules! split_tuples {
    ($(($($t:ident $v:ident $i:tt),*))*) => {$(
        impl<$($t: Split),*> Split for Tuple<($($t,)*)> {
            type Real = ($($t::Real,)*);
            fn split(self) -> (Self::Real, Self::Real) {
                $(let $v = self.0.$i.split();)*
                (($($v.0,)*), ($($v.1,)*))
            }
        }
    )*};
}

/// A tuple, so that this file may implement [`Split`] for it.
struct Tuple<T>(T);

split_tuples! {
    (A a 0)
    (A a 0, B b 1)
    (A a 0, B b 1, C c 2)
    (A a 0, B b 1, C c 2, E e 3)
    (A a 0, B b 1, C c 2, E e 3, G g 4)
}

fn tuple<T>((value, grads): (D64, T)) -> (D64, Tuple<T>) {
    (value, Tuple(grads))
}

// ---------------------------------------------------------------------------------------
// The functions.

/// `½·xᵀAx`: gradient `(A + Aᵀ)x/2`, Hessian `(A + Aᵀ)/2`, exactly.
#[differentiate(wrt(x))]
fn quadratic_form<F: Float>(x: &Array1<F>, a: &Array2<F>) -> F {
    let ax = a.dot(x);
    x.dot(&ax) / 2
}

#[test]
fn quadratic_form_has_the_known_hessian() {
    let mut r = rng(1);
    let (x, a, v) = (random(&mut r, 6), random(&mut r, (6, 6)), random(&mut r, 6));
    let symmetric = (&a + &a.t()) / 2.0;
    let (value, (g,)) = quadratic_form_grad(&x, &a);
    let (jvp_value, jvp) = quadratic_form_jvp(&x, &a, &(v.clone(),));
    let (hvp_value, (hg,), (hv,)) = quadratic_form_hvp(&x, &a, &(v.clone(),));
    assert_close("values", &[jvp_value, hvp_value], &[value, value], 1e-14);
    assert_close("gradient", &g.flat(), &symmetric.dot(&x).flat(), 1e-14);
    assert_close("gradient from hvp", &hg.flat(), &symmetric.dot(&x).flat(), 1e-14);
    assert_close("hvp = (A + Aᵀ)v/2", &hv.flat(), &symmetric.dot(&v).flat(), 1e-14);
    assert_close("jvp = xᵀ(A + Aᵀ)v/2", &[jvp], &[x.dot(&symmetric.dot(&v))], 1e-14);
    let tape = quadratic_form_tape_grad::<D64>(&dual::seed(&x, &v), &dual::constant(&a));
    let static_ = quadratic_form_grad::<D64>(&dual::seed(&x, &v), &dual::constant(&a));
    assert_tape_matches_static(tuple(static_), tuple(tape));
}

/// Logistic regression: mean of `softplus(z) − y·z`, `z = x·w + b`.
#[differentiate(wrt(w, b))]
fn logistic<F: Float>(x: &Array2<F>, w: &Array1<F>, b: F, y: &Array1<F>) -> F {
    let z = x.dot(w) + b;
    (z.softplus() - y * &z).mean().unwrap()
}

#[test]
fn logistic_regression() {
    let mut r = rng(2);
    let (x, w, y) = (random(&mut r, (12, 4)), random(&mut r, 4), positive(&mut r, 12) / 2.0);
    let (b, dw, db) = (0.3, random(&mut r, 4), -0.7);
    let directions = (dw.clone(), db);
    let (value, gradient) = logistic_grad(&x, &w, b, &y);
    let value_at = |t: f64| logistic(&x, &(&w + &(t * &dw)), b + t * db, &y);
    let gradient_at = |t: f64| logistic_grad(&x, &(&w + &(t * &dw)), b + t * db, &y).1.flat();
    let hvp = logistic_hvp(&x, &w, b, &y, &directions);
    Second {
        value,
        gradient: gradient.flat(),
        jvp: logistic_jvp(&x, &w, b, &y, &directions),
        hvp: (hvp.0, hvp.1.flat(), hvp.2.flat()),
        directions: directions.flat(),
        value_at: &value_at,
        gradient_at: &gradient_at,
    }
    .check(1e-8);
    let args = (
        dual::constant(&x),
        dual::seed(&w, &dw),
        Dual::new(b, db),
        dual::constant(&y),
    );
    let static_ = logistic_grad::<D64>(&args.0, &args.1, args.2, &args.3);
    let tape = logistic_tape_grad::<D64>(&args.0, &args.1, args.2, &args.3);
    assert_tape_matches_static(tuple(static_), tuple(tape));
}

/// A two-layer MLP with tanh, softmax cross-entropy on labels.
#[differentiate]
fn mlp_tanh<F: Float>(
    x: &Array2<F>,
    w1: &Array2<F>,
    b1: &Array1<F>,
    w2: &Array2<F>,
    b2: &Array1<F>,
    labels: &[usize],
) -> F {
    let h = (x.dot(w1) + b1).tanh();
    cross_entropy(&(h.dot(w2) + b2), labels)
}

#[test]
fn mlp_with_tanh_and_cross_entropy() {
    let mut r = rng(3);
    let (x, w1, b1) = (random(&mut r, (5, 4)), random(&mut r, (4, 6)), random(&mut r, 6));
    let (w2, b2) = (random(&mut r, (6, 3)), random(&mut r, 3));
    let labels = [0, 2, 1, 1, 0];
    let directions = (
        random(&mut r, (5, 4)),
        random(&mut r, (4, 6)),
        random(&mut r, 6),
        random(&mut r, (6, 3)),
        random(&mut r, 3),
    );
    let (dx, dw1, db1, dw2, db2) = &directions;
    let at = |t: f64| {
        (
            &x + &(t * dx),
            &w1 + &(t * dw1),
            &b1 + &(t * db1),
            &w2 + &(t * dw2),
            &b2 + &(t * db2),
        )
    };
    let value_at = |t: f64| {
        let p = at(t);
        mlp_tanh(&p.0, &p.1, &p.2, &p.3, &p.4, &labels)
    };
    let gradient_at = |t: f64| {
        let p = at(t);
        mlp_tanh_grad(&p.0, &p.1, &p.2, &p.3, &p.4, &labels).1.flat()
    };
    let (value, gradient) = mlp_tanh_grad(&x, &w1, &b1, &w2, &b2, &labels);
    let hvp = mlp_tanh_hvp(&x, &w1, &b1, &w2, &b2, &labels, &directions);
    Second {
        value,
        gradient: gradient.flat(),
        jvp: mlp_tanh_jvp(&x, &w1, &b1, &w2, &b2, &labels, &directions),
        hvp: (hvp.0, hvp.1.flat(), hvp.2.flat()),
        directions: directions.flat(),
        value_at: &value_at,
        gradient_at: &gradient_at,
    }
    .check(1e-8);
    let args = (
        dual::seed(&x, dx),
        dual::seed(&w1, dw1),
        dual::seed(&b1, db1),
        dual::seed(&w2, dw2),
        dual::seed(&b2, db2),
    );
    let static_ = mlp_tanh_grad::<D64>(&args.0, &args.1, &args.2, &args.3, &args.4, &labels);
    let tape = mlp_tanh_tape_grad::<D64>(&args.0, &args.1, &args.2, &args.3, &args.4, &labels);
    assert_tape_matches_static(tuple(static_), tuple(tape));
}

/// A recurrent loop over a slice: carried state, slice parameters and their directions.
#[differentiate]
fn recurrent<F: Float>(h0: &Array2<F>, w: &Array2<F>, xs: &[Array2<F>]) -> F {
    let mut h = h0.to_owned();
    for x in xs {
        h = (h.dot(w) + x).tanh();
    }
    (&h * &h).sum()
}

#[test]
fn recurrent_loop_over_a_slice() {
    let mut r = rng(4);
    let (h0, w) = (random(&mut r, (2, 3)), random(&mut r, (3, 3)));
    let xs: Vec<_> = (0..4).map(|_| random(&mut r, (2, 3))).collect();
    let directions = (
        random(&mut r, (2, 3)),
        random(&mut r, (3, 3)),
        (0..4).map(|_| random(&mut r, (2, 3))).collect::<Vec<_>>(),
    );
    let (dh0, dw, dxs) = &directions;
    let at = |t: f64| {
        let xs: Vec<_> = xs.iter().zip(dxs).map(|(x, d)| x + &(t * d)).collect();
        (&h0 + &(t * dh0), &w + &(t * dw), xs)
    };
    let value_at = |t: f64| {
        let p = at(t);
        recurrent(&p.0, &p.1, &p.2)
    };
    let gradient_at = |t: f64| {
        let p = at(t);
        recurrent_grad(&p.0, &p.1, &p.2).1.flat()
    };
    let (value, gradient) = recurrent_grad(&h0, &w, &xs);
    let hvp = recurrent_hvp(&h0, &w, &xs, &directions);
    Second {
        value,
        gradient: gradient.flat(),
        jvp: recurrent_jvp(&h0, &w, &xs, &directions),
        hvp: (hvp.0, hvp.1.flat(), hvp.2.flat()),
        directions: directions.flat(),
        value_at: &value_at,
        gradient_at: &gradient_at,
    }
    .check(1e-8);
    let dual_xs: Vec<_> = xs.iter().zip(dxs).map(|(x, d)| dual::seed(x, d)).collect();
    let args = (dual::seed(&h0, dh0), dual::seed(&w, dw));
    let static_ = recurrent_grad::<D64>(&args.0, &args.1, &dual_xs);
    let tape = recurrent_tape_grad::<D64>(&args.0, &args.1, &dual_xs);
    assert_tape_matches_static(tuple(static_), tuple(tape));
}

/// Softmax cross-entropy written out: `−mean(Σ onehot · ln softmax(x·w))`; `onehot` is
/// an array that is not differentiated (a constant dual).
#[differentiate(wrt(w))]
fn softmax_cross_entropy<F: Float>(x: &Array2<F>, w: &Array2<F>, onehot: &Array2<F>) -> F {
    let p = softmax(&x.dot(w), Axis(1));
    let picked = &p.ln() * onehot;
    -picked.sum_axis(Axis(1)).mean().unwrap()
}

#[test]
fn softmax_cross_entropy_written_out() {
    let mut r = rng(5);
    let (x, w, dw) = (random(&mut r, (6, 4)), random(&mut r, (4, 3)), random(&mut r, (4, 3)));
    let onehot = Array2::from_shape_fn((6, 3), |(i, j)| f64::from(u8::from(i % 3 == j)));
    let directions = (dw.clone(),);
    let value_at = |t: f64| softmax_cross_entropy(&x, &(&w + &(t * &dw)), &onehot);
    let gradient_at = |t: f64| softmax_cross_entropy_grad(&x, &(&w + &(t * &dw)), &onehot).1.flat();
    let (value, gradient) = softmax_cross_entropy_grad(&x, &w, &onehot);
    let hvp = softmax_cross_entropy_hvp(&x, &w, &onehot, &directions);
    Second {
        value,
        gradient: gradient.flat(),
        jvp: softmax_cross_entropy_jvp(&x, &w, &onehot, &directions),
        hvp: (hvp.0, hvp.1.flat(), hvp.2.flat()),
        directions: directions.flat(),
        value_at: &value_at,
        gradient_at: &gradient_at,
    }
    .check(1e-8);
    let args = (dual::constant(&x), dual::seed(&w, &dw), dual::constant(&onehot));
    let static_ = softmax_cross_entropy_grad::<D64>(&args.0, &args.1, &args.2);
    let tape = softmax_cross_entropy_tape_grad::<D64>(&args.0, &args.1, &args.2);
    assert_tape_matches_static(tuple(static_), tuple(tape));
}

/// An MLP with relu, `log_softmax`, a vector `dot` and a `mapv` closure differentiated
/// symbolically (its derivative closure runs at duals too), with a captured float.
#[differentiate]
fn mlp_relu<F: Float>(x: &Array2<F>, w: &Array2<F>, v: &Array1<F>, s: F) -> F {
    let h = relu(&x.dot(w)).mapv(|e| (e * s).sin() + e * e);
    let scores = log_softmax(&h, Axis(1));
    let row = scores.sum_axis(Axis(0));
    row.dot(v)
}

#[test]
fn mlp_with_relu_log_softmax_and_a_closure() {
    let mut r = rng(6);
    // Away from relu's kink, so that finite differences see a smooth function.
    let x = random(&mut r, (5, 3));
    let w = random(&mut r, (3, 4));
    let z = x.dot(&w);
    assert!(z.iter().all(|v| v.abs() > 1e-3), "a pre-activation at the kink");
    let (v, s) = (random(&mut r, 4), 0.8);
    let directions = (random(&mut r, (5, 3)), random(&mut r, (3, 4)), random(&mut r, 4), 0.6);
    let (dx, dw, dv, ds) = &directions;
    let at = |t: f64| (&x + &(t * dx), &w + &(t * dw), &v + &(t * dv), s + t * ds);
    let value_at = |t: f64| {
        let p = at(t);
        mlp_relu(&p.0, &p.1, &p.2, p.3)
    };
    let gradient_at = |t: f64| {
        let p = at(t);
        mlp_relu_grad(&p.0, &p.1, &p.2, p.3).1.flat()
    };
    let (value, gradient) = mlp_relu_grad(&x, &w, &v, s);
    let hvp = mlp_relu_hvp(&x, &w, &v, s, &directions);
    Second {
        value,
        gradient: gradient.flat(),
        jvp: mlp_relu_jvp(&x, &w, &v, s, &directions),
        hvp: (hvp.0, hvp.1.flat(), hvp.2.flat()),
        directions: directions.flat(),
        value_at: &value_at,
        gradient_at: &gradient_at,
    }
    .check(1e-8);
    let args = (
        dual::seed(&x, dx),
        dual::seed(&w, dw),
        dual::seed(&v, dv),
        Dual::new(s, *ds),
    );
    let static_ = mlp_relu_grad::<D64>(&args.0, &args.1, &args.2, args.3);
    let tape = mlp_relu_tape_grad::<D64>(&args.0, &args.1, &args.2, args.3);
    assert_tape_matches_static(tuple(static_), tuple(tape));
}

/// The same JVP in f32 (`Dual<f32>`) agrees with f64 to f32 precision.
#[test]
fn jvp_and_hvp_in_f32() {
    let mut r = rng(7);
    let (x, w1, b1) = (random(&mut r, (5, 4)), random(&mut r, (4, 6)), random(&mut r, 6));
    let (w2, b2) = (random(&mut r, (6, 3)), random(&mut r, 3));
    let labels = [0, 2, 1, 1, 0];
    let d = (
        random(&mut r, (5, 4)),
        random(&mut r, (4, 6)),
        random(&mut r, 6),
        random(&mut r, (6, 3)),
        random(&mut r, 3),
    );
    let f = |a: &Array2<f64>| a.mapv(|v| v as f32);
    let g = |a: &Array1<f64>| a.mapv(|v| v as f32);
    let d32 = (f(&d.0), f(&d.1), g(&d.2), f(&d.3), g(&d.4));
    let (_, jvp64) = mlp_tanh_jvp(&x, &w1, &b1, &w2, &b2, &labels, &d);
    let (_, jvp32) = mlp_tanh_jvp(&f(&x), &f(&w1), &g(&b1), &f(&w2), &g(&b2), &labels, &d32);
    assert_close("f32 jvp", &[f64::from(jvp32)], &[jvp64], 1e-5);
    let (_, _, hvp64) = mlp_tanh_hvp(&x, &w1, &b1, &w2, &b2, &labels, &d);
    let (_, _, hvp32) = mlp_tanh_hvp(&f(&x), &f(&w1), &g(&b1), &f(&w2), &g(&b2), &labels, &d32);
    let hvp32 = (
        hvp32.0.mapv(f64::from),
        hvp32.1.mapv(f64::from),
        hvp32.2.mapv(f64::from),
        hvp32.3.mapv(f64::from),
        hvp32.4.mapv(f64::from),
    );
    assert_close("f32 hvp", &hvp32.flat(), &hvp64.flat(), 1e-5);
}

/// Views (by value and by reference), an owned array and a float: every way a parameter
/// is passed, seeded with its direction.
#[differentiate]
fn parameter_forms<F: Float>(x: ArrayView1<F>, y: Array1<F>, z: &ArrayView1<F>, s: F) -> F {
    let p = &x * &y;
    (&p * z).mapv(|v| (v * s).sin()).sum()
}

#[test]
fn views_owned_arrays_and_floats() {
    let mut r = rng(8);
    let (x, y, z, s) = (random(&mut r, 4), random(&mut r, 4), random(&mut r, 4), 0.7);
    let directions = (random(&mut r, 4), random(&mut r, 4), random(&mut r, 4), -0.4);
    let (dx, dy, dz, ds) = &directions;
    let value_at = |t: f64| {
        let z = &z + &(t * dz);
        parameter_forms((&x + &(t * dx)).view(), &y + &(t * dy), &z.view(), s + t * ds)
    };
    let gradient_at = |t: f64| {
        let z = &z + &(t * dz);
        parameter_forms_grad((&x + &(t * dx)).view(), &y + &(t * dy), &z.view(), s + t * ds)
            .1
            .flat()
    };
    let (value, gradient) = parameter_forms_grad(x.view(), y.clone(), &z.view(), s);
    let hvp = parameter_forms_hvp(x.view(), y.clone(), &z.view(), s, &directions);
    Second {
        value,
        gradient: gradient.flat(),
        jvp: parameter_forms_jvp(x.view(), y.clone(), &z.view(), s, &directions),
        hvp: (hvp.0, hvp.1.flat(), hvp.2.flat()),
        directions: directions.flat(),
        value_at: &value_at,
        gradient_at: &gradient_at,
    }
    .check(1e-8);
}

/// A custom rule, generic: `_hvp` differentiates the rule itself at dual numbers.
#[differentiate(vjp = sum_of_squares_backward)]
fn sum_of_squares<F: Float>(x: &Array1<F>) -> F {
    x.iter().map(|&v| v * v).sum()
}

fn sum_of_squares_backward<F: Float>(x: &Array1<F>, _y: F, seed: F) -> Array1<F> {
    x.mapv(|v| F::of(2.0) * v * seed)
}

#[differentiate]
fn custom_rule_caller<F: Float>(x: &Array1<F>, w: &Array1<F>) -> F {
    let z = (x * w).tanh();
    let s: F = sum_of_squares(&z);
    s * s
}

#[test]
fn custom_rule_at_dual_numbers() {
    let mut r = rng(9);
    let (x, w) = (random(&mut r, 5), random(&mut r, 5));
    let directions = (random(&mut r, 5), random(&mut r, 5));
    let (dx, dw) = &directions;
    // The rule alone: H = 2·I.
    let (_, (g,), (h,)) = sum_of_squares_hvp(&x, &(dx.clone(),));
    assert_close("rule's gradient", &g.flat(), &(2.0 * &x).flat(), 1e-15);
    assert_close("rule's hvp", &h.flat(), &(2.0 * dx).flat(), 1e-15);
    let value_at = |t: f64| custom_rule_caller(&(&x + &(t * dx)), &(&w + &(t * dw)));
    let gradient_at = |t: f64| custom_rule_caller_grad(&(&x + &(t * dx)), &(&w + &(t * dw))).1.flat();
    let (value, gradient) = custom_rule_caller_grad(&x, &w);
    let hvp = custom_rule_caller_hvp(&x, &w, &directions);
    Second {
        value,
        gradient: gradient.flat(),
        jvp: custom_rule_caller_jvp(&x, &w, &directions),
        hvp: (hvp.0, hvp.1.flat(), hvp.2.flat()),
        directions: directions.flat(),
        value_at: &value_at,
        gradient_at: &gradient_at,
    }
    .check(1e-8);
}

/// Batch norm and a max-pool, whose backward reads the statistics and window indices forward
/// kept: at dual numbers those are duals too (the statistics' tangents) or exact (the indices).
#[differentiate]
fn norm_pool<F: Float>(x: &Array4<F>, gamma: &Array1<F>, beta: &Array1<F>) -> F {
    max_pool2d(&batch_norm(x, gamma, beta, F::of(1e-5)), 2, 1)
        .mapv(|v| v * v * v)
        .sum()
}

#[test]
fn batch_norm_and_max_pool_from_kept_residuals() {
    let mut r = rng(9);
    let (x, gamma, beta) = (random(&mut r, (2, 3, 4, 5)), positive(&mut r, 3), random(&mut r, 3));
    let (dx, dgamma, dbeta) = (random(&mut r, (2, 3, 4, 5)), random(&mut r, 3), random(&mut r, 3));
    let directions = (dx.clone(), dgamma.clone(), dbeta.clone());
    let at = |t: f64| (&x + &(t * &dx), &gamma + &(t * &dgamma), &beta + &(t * &dbeta));
    let (value, gradient) = norm_pool_grad(&x, &gamma, &beta);
    let value_at = |t: f64| {
        let (x, gamma, beta) = at(t);
        norm_pool(&x, &gamma, &beta)
    };
    let gradient_at = |t: f64| {
        let (x, gamma, beta) = at(t);
        norm_pool_grad(&x, &gamma, &beta).1.flat()
    };
    let hvp = norm_pool_hvp(&x, &gamma, &beta, &directions);
    Second {
        value,
        gradient: gradient.flat(),
        jvp: norm_pool_jvp(&x, &gamma, &beta, &directions),
        hvp: (hvp.0, hvp.1.flat(), hvp.2.flat()),
        directions: directions.flat(),
        value_at: &value_at,
        gradient_at: &gradient_at,
    }
    .check(1e-7);
    let args = (
        dual::seed(&x, &dx),
        dual::seed(&gamma, &dgamma),
        dual::seed(&beta, &dbeta),
    );
    let static_ = norm_pool_grad::<D64>(&args.0, &args.1, &args.2);
    let tape = norm_pool_tape_grad::<D64>(&args.0, &args.1, &args.2);
    assert_tape_matches_static(tuple(static_), tuple(tape));
}
