//! Generates random `#[differentiate]` functions of the supported subset into
//! `OUT_DIR/random_functions.rs`, so that the macro is tested on code nobody wrote by hand.
//!
//! Every function takes 2–4 parameters (`&Array2<f64>` of shape (3,4), sometimes one of
//! shape (4,3), a `&Array1<f64>` of length 4 for broadcasting, an `f64`), runs 3–12 random
//! statements and returns a float. Most statements are `let`s of an op (elementwise methods,
//! `+ - * /` with broadcasting, `dot`, reductions, softmax, transposes, `mapv` closures that
//! capture floats, `clamp` or branch on `if`); with modest probabilities a statement is
//! instead
//!
//! - a `for` loop (1–3 iterations, `_` or an index `i` read as `let k = (i as f64 + 1.0) * c;`
//!   or in an `if i > 0`) with one or two carried `let mut` variables: states, reassigned
//!   from themselves (`h = (&h * &b).tanh();`, `h *= 0.5;`, `h = helper_squash(&h, s);`),
//!   sometimes in a nested loop or an `if` of the body, and accumulators (`acc += e;`);
//! - an `if`/`else` or `match` on constants (sizes of parameters, literals) or on a float
//!   kept away from the threshold, as a value (`let t = if a.ncols() == 4 { .. } else { .. };`,
//!   `let t = match a.nrows() { 3 => .., n if n > 3 => .., _ => .. };`) or as statements
//!   assigning a `let mut` variable; every arm is generated, only one runs;
//! - a call of one of the [`HELPERS`], `#[differentiate]` functions emitted once per file
//!   (`let t: Array2<f64> = helper_cell(&x, &r, s);`), some with a loop, a branch or a call
//!   inside.
//!
//! Each value carries a sound interval of the values it can take for inputs in the documented
//! ranges (interval arithmetic), and an op is only emitted where it is smooth and well
//! conditioned on that interval: `exp` on bounded inputs, `ln`/`sqrt`/division/`recip` away
//! from 0, `relu`/`abs` away from their kink, every value within [`MAX_MAGNITUDE`]. A branch's
//! value lies in the hull of its arms'; a loop state lies in an invariant interval every
//! assignment of the body is checked to land in (see [`Generator::loop_statement`]), so it
//! holds whatever the number of iterations; a closure's `if` decides the same way on the
//! whole interval of its input (or, with [`KINKS_IN_CLOSURES`], kinks continuously). So a
//! failed check is a bug of the macro or the kernels, not of the finite differences.
//!
//! Each function is expanded twice, the second time under `save = "min"`, and the check
//! asserts that both expansions compute the same gradients.
//!
//! `AUTODIFF_RANDOM_SEED` (default [`DEFAULT_SEED`]) picks the functions and
//! `AUTODIFF_RANDOM_COUNT` (default [`DEFAULT_COUNT`]) how many. The PRNG is a small
//! xorshift written here, so that the build script needs no dependency.

use std::fmt::Write as _;
use std::path::PathBuf;

/// The seed when `AUTODIFF_RANDOM_SEED` is not set.
const DEFAULT_SEED: u64 = 20240;
/// The number of functions when `AUTODIFF_RANDOM_COUNT` is not set.
const DEFAULT_COUNT: usize = 60;
/// Array inputs are drawn uniformly from this range (emitted for the test, which draws them).
const ARRAY_RANGE: (f64, f64) = (-1.0, 1.0);
/// Float inputs are drawn uniformly from this range.
const SCALAR_RANGE: (f64, f64) = (0.5, 1.5);
/// How far finite differences move an input (step `1e-6·max(1,|x|)`), rounded up, so the
/// intervals stay sound at the perturbed points too.
const PROBE: f64 = 1e-3;
/// No intermediate value may exceed this magnitude: it keeps the rounding error of finite
/// differences (which grows with |f|) far below the tolerance.
const MAX_MAGNITUDE: f64 = 6.0;
/// `relu` and `abs` only on values at least this far from their kink at 0.
const KINK_MARGIN: f64 = 0.05;
/// `ln`, `sqrt`, `powf`, `recip` and denominators only on values at least this far from 0.
const POLE_MARGIN: f64 = 0.4;
/// `exp` only on values at most this large.
const EXP_MAX: f64 = 1.75;
/// Workaround for a macro bug (reported to the lead): when a `mapv` backward is fused with an
/// adjacent elementwise backward into a `fused::chainN` call, its derivative closure is invoked
/// in place (`(|v| ...)(__s1)`), where rustc cannot infer `v`'s type ("type annotations
/// needed"). While this is true, a `mapv` never reads or feeds another elementwise op directly.
// Fixed in the macro (fused `mapv` derivatives go through `unary::map_grad_scalar`); kept as a switch
// so the generator can still produce the narrower set if a regression needs bisecting.
const AVOID_FUSED_MAPV_BUG: bool = false;
/// Workaround for a macro bug (reported to the lead): a loop whose carried variable starts as
/// a value the body also reads (`let mut h = x.to_owned(); for .. { h = &h * &x; }`) names
/// both of `x`'s gradient contributions `l1__result0` in backward: for an array, a compile
/// error ("use of moved value"); for a float, a wrong static gradient (the carried one is
/// dropped, the captured one counted twice); two carried variables that start as the same
/// value (`let mut g = h;` before the loop) the same way. An `if` assigning a variable that starts as a
/// value an arm reads (`let mut h = x.to_owned(); if c { h *= &x; }`) fails to compile the
/// same way (arrays only). While this is true, the value a `let mut` variable starts as is not
/// visible in the loop body or the branch arms that assign the variable.
// Fixed in the macro (2026-12-02, with a regression test each); kept as a switch so the
// generator can still produce the narrower set if a regression needs bisecting.
const AVOID_MUT_INIT_CAPTURE_BUG: bool = false;
/// Whether a `mapv` closure may `clamp` or branch (continuously: `if v > c { v } else { c +
/// (v - c) * k }`) at a point inside its input's interval. Such a kink is excused by
/// `check!` if a finite-difference stencil straddles it, which happens with probability
/// about 1e-6 per element; all other closure branches are decided the same way on the whole
/// interval, [`KINK_MARGIN`] away from the threshold.
const KINKS_IN_CLOSURES: bool = true;
/// Workaround for a macro bug (reported to the lead): a nested loop that reads a variable the
/// enclosing loop carries but the nested one does not assign (`for .. { h1 = h1.sin(); for ..
/// { h2 = &h2 * &h1; } }`) fails to compile ("use of moved value"). While this is true, a
/// nested loop reads no other carried variable.
// Fixed in the macro (2026-12-02, with a regression test each); kept as a switch so the
// generator can still produce the narrower set if a regression needs bisecting.
const AVOID_NESTED_CARRIED_READ_BUG: bool = false;
/// Workaround for a macro bug (reported to the lead): when the branch a constant condition
/// takes makes the output independent of every differentiated parameter
/// (`if c.len() > 5 { c.sum() } else { 0.5 }`), the static gradient is zero but the tape twin
/// (`_tape_grad`, run by `check!`) panics: "backward: var .. does not require a gradient: no
/// parameter reaches it". While this is true, a function with an `if`/`match` value adds a
/// differentiated parameter to its output.
// Fixed in the macro (2026-12-02, with a regression test each); kept as a switch so the
// generator can still produce the narrower set if a regression needs bisecting.
const AVOID_TAPE_UNREACHED_OUTPUT_BUG: bool = false;
/// Workaround for a macro bug (reported to the lead): a float constant computed by a method
/// (`let n = x.len() as f64; let t = n.recip();`, or from a loop index) passed as a float
/// argument of a `#[differentiate]` call fails to compile in the tape twin ("expected
/// `&Var<f64>`, found `f64`"); `n * 0.5` or `n` itself work. While this is true, a helper's
/// float argument reads no value computed from constants only.
// Fixed in the macro (2026-12-02, with a regression test each); kept as a switch so the
// generator can still produce the narrower set if a regression needs bisecting.
const AVOID_CONSTANT_METHOD_ARG_BUG: bool = false;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=AUTODIFF_RANDOM_SEED");
    println!("cargo:rerun-if-env-changed=AUTODIFF_RANDOM_COUNT");
    let seed = env_number("AUTODIFF_RANDOM_SEED").unwrap_or(DEFAULT_SEED);
    let count = env_number("AUTODIFF_RANDOM_COUNT").map_or(DEFAULT_COUNT, |n| n as usize);

    let mut rng = Rng::new(seed);
    let mut src = String::new();
    writeln!(
        src,
        "// @generated by random-functions/build.rs from seed {seed}: do not edit.\n"
    )
    .unwrap();
    writeln!(src, "/// The seed the functions below were generated from.").unwrap();
    writeln!(src, "pub const SEED: u64 = {seed};").unwrap();
    writeln!(
        src,
        "/// The range array inputs must be drawn from (the generator's intervals assume it)."
    )
    .unwrap();
    writeln!(
        src,
        "pub const ARRAY_RANGE: (f64, f64) = ({:?}, {:?});",
        ARRAY_RANGE.0, ARRAY_RANGE.1
    )
    .unwrap();
    writeln!(src, "/// The range float inputs must be drawn from.").unwrap();
    writeln!(
        src,
        "pub const SCALAR_RANGE: (f64, f64) = ({:?}, {:?});\n",
        SCALAR_RANGE.0, SCALAR_RANGE.1
    )
    .unwrap();

    for helper in HELPERS {
        writeln!(
            src,
            "/// A helper the random functions call.\n#[differentiate]\n{}\n",
            helper.source
        )
        .unwrap();
    }

    let mut cases = Vec::new();
    for index in 0..count {
        let name = format!("f{index}");
        let function = Generator::new(&mut rng).function(&name);
        writeln!(src, "/// The source text of [`{name}`], printed when its check fails.").unwrap();
        writeln!(
            src,
            "pub const {}_SOURCE: &str = r#\"{}\"#;\n",
            name.to_uppercase(),
            function.source
        )
        .unwrap();
        writeln!(src, "/// Random function {index} of seed {seed}.").unwrap();
        // A second expansion under `save = "min"` (backward recomputes the forward), which
        // the check compares with the first: the same gradients, to the bit.
        let source = function
            .source
            .lines()
            .map(|line| match line.strip_prefix("#[differentiate") {
                Some(rest) => {
                    let args = rest
                        .trim_start_matches('(')
                        .trim_end_matches(")]")
                        .trim_end_matches(']');
                    let sep = if args.is_empty() { "" } else { ", " };
                    format!("{line}\n#[differentiate({args}{sep}save = \"min\", name = {name}_min)]")
                }
                None => line.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        writeln!(src, "{source}\n").unwrap();
        writeln!(src, "fn check_{name}(input: &mut dyn crate::Uniform) -> CheckReport {{").unwrap();
        let mut args = Vec::new();
        for param in &function.params {
            let draw = match param.shape {
                Shape::Scalar => "crate::scalar(input)".to_string(),
                Shape::Vector(n) => format!("crate::array1(input, {n})"),
                Shape::Matrix(r, c) => format!("crate::array2(input, {r}, {c})"),
            };
            writeln!(src, "    let {} = {draw};", param.name).unwrap();
            args.push(if param.shape == Shape::Scalar {
                param.name.to_string()
            } else {
                format!("&{}", param.name)
            });
        }
        writeln!(
            src,
            "    assert_eq!({name}_grad({0}), {name}_min_grad({0}), \"save = \\\"min\\\" computes other gradients\");",
            args.join(", ")
        )
        .unwrap();
        writeln!(src, "    {name}_check({})", args.join(", ")).unwrap();
        writeln!(src, "}}\n").unwrap();
        cases.push(name);
    }
    writeln!(src, "/// Every generated function, with its source and its check.").unwrap();
    writeln!(src, "pub const CASES: &[Case] = &[").unwrap();
    for name in &cases {
        writeln!(
            src,
            "    Case {{ name: \"{name}\", source: {0}_SOURCE, check: check_{name}, plan: &{0}_GRAD_PLAN }},",
            name.to_uppercase()
        )
        .unwrap();
    }
    writeln!(src, "];").unwrap();

    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("random_functions.rs");
    std::fs::write(&out, src).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}

fn env_number(key: &str) -> Option<u64> {
    let value = std::env::var(key).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{key} must be a non-negative integer, got {value:?}")),
    )
}

// ---- the PRNG ------------------------------------------------------------------

/// xorshift64*: tiny, deterministic, good enough to pick ops.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // SplitMix64 of the seed, so that nearby seeds give unrelated streams (and 0 is fine).
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64) / ((1u64 << 53) as f64) < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A literal that is exact in binary and always written with a decimal point.
    fn literal(&mut self) -> (String, f64) {
        let value = *self.pick(&[0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0]);
        (format!("{value:?}"), value)
    }
}

// ---- interval arithmetic -------------------------------------------------------

/// A closed interval containing every value an expression can take.
#[derive(Clone, Copy, Debug)]
struct Iv {
    lo: f64,
    hi: f64,
}

impl Iv {
    fn new(a: f64, b: f64) -> Iv {
        Iv {
            lo: a.min(b),
            hi: a.max(b),
        }
    }
    fn point(v: f64) -> Iv {
        Iv { lo: v, hi: v }
    }
    fn magnitude(self) -> f64 {
        self.lo.abs().max(self.hi.abs())
    }
    fn away_from_zero(self, margin: f64) -> bool {
        self.lo >= margin || self.hi <= -margin
    }
    fn positive(self, margin: f64) -> bool {
        self.lo >= margin
    }
    fn add(self, o: Iv) -> Iv {
        Iv::new(self.lo + o.lo, self.hi + o.hi)
    }
    fn sub(self, o: Iv) -> Iv {
        Iv::new(self.lo - o.hi, self.hi - o.lo)
    }
    fn mul(self, o: Iv) -> Iv {
        let p = [self.lo * o.lo, self.lo * o.hi, self.hi * o.lo, self.hi * o.hi];
        Iv::new(
            p.iter().copied().fold(f64::INFINITY, f64::min),
            p.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        )
    }
    /// Only for denominators away from zero.
    fn recip(self) -> Iv {
        assert!(self.away_from_zero(1e-12));
        Iv::new(1.0 / self.lo, 1.0 / self.hi)
    }
    fn div(self, o: Iv) -> Iv {
        self.mul(o.recip())
    }
    fn hull(self, o: Iv) -> Iv {
        Iv::new(self.lo.min(o.lo), self.hi.max(o.hi))
    }
    fn inside(self, o: Iv) -> bool {
        o.lo <= self.lo && self.hi <= o.hi
    }
    fn neg(self) -> Iv {
        Iv::new(-self.hi, -self.lo)
    }
    fn scale(self, n: f64) -> Iv {
        Iv::new(self.lo * n, self.hi * n)
    }
    fn increasing(self, f: impl Fn(f64) -> f64) -> Iv {
        Iv::new(f(self.lo), f(self.hi))
    }
    fn square(self) -> Iv {
        if self.lo >= 0.0 || self.hi <= 0.0 {
            Iv::new(self.lo * self.lo, self.hi * self.hi)
        } else {
            Iv::new(0.0, self.magnitude().powi(2))
        }
    }
    fn abs(self) -> Iv {
        if self.lo >= 0.0 {
            self
        } else if self.hi <= 0.0 {
            self.neg()
        } else {
            Iv::new(0.0, self.magnitude())
        }
    }
    fn relu(self) -> Iv {
        Iv::new(self.lo.max(0.0), self.hi.max(0.0))
    }
    /// `sin(x + phase)`: the endpoints plus every extremum inside the interval.
    fn trig(self, phase: f64) -> Iv {
        let f = |x: f64| (x + phase).sin();
        if self.hi - self.lo >= 2.0 * std::f64::consts::PI {
            return Iv::new(-1.0, 1.0);
        }
        let (mut lo, mut hi) = (f(self.lo).min(f(self.hi)), f(self.lo).max(f(self.hi)));
        // Extrema of sin(x + phase) sit at x = π/2 - phase + kπ.
        let first = ((self.lo + phase - std::f64::consts::FRAC_PI_2) / std::f64::consts::PI).ceil() as i64;
        let mut k = first;
        while std::f64::consts::FRAC_PI_2 - phase + k as f64 * std::f64::consts::PI <= self.hi {
            let v = f(std::f64::consts::FRAC_PI_2 - phase + k as f64 * std::f64::consts::PI);
            lo = lo.min(v);
            hi = hi.max(v);
            k += 1;
        }
        Iv::new(lo, hi)
    }
    fn sin(self) -> Iv {
        self.trig(0.0)
    }
    fn cos(self) -> Iv {
        self.trig(std::f64::consts::FRAC_PI_2)
    }
    /// Widened a little, against rounding in the bounds themselves.
    fn padded(self) -> Iv {
        let pad = 1e-9 * (1.0 + self.magnitude());
        Iv::new(self.lo - pad, self.hi + pad)
    }
}

// ---- the generator -------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    Scalar,
    Vector(usize),
    Matrix(usize, usize),
}

impl Shape {
    fn len(self) -> usize {
        match self {
            Shape::Scalar => 1,
            Shape::Vector(n) => n,
            Shape::Matrix(r, c) => r * c,
        }
    }
}

/// Whether an expression can be used as a method receiver or operand without parentheses.
#[derive(Clone, Copy, PartialEq)]
enum Form {
    /// A parameter passed by reference (`a`, of type `&Array2<f64>`): an operand as is.
    ParamRef,
    /// A name, a call or a method chain: `&x` as an array operand.
    Atom,
    /// An operator expression: parenthesised as an operand or receiver.
    Compound,
}

/// A generated expression with its shape and value interval.
#[derive(Clone)]
struct Ex {
    code: String,
    shape: Shape,
    iv: Iv,
    form: Form,
    origin: Origin,
    /// An `ArrayView` (`x.view().reversed_axes()`), not an owned array: passed to a helper
    /// as `&x.to_owned()`, never assigned to an owned variable.
    view: bool,
}

/// The op that produced a value, as far as backward fusion is concerned (see [`AVOID_FUSED_MAPV_BUG`]).
#[derive(Clone, Copy, PartialEq)]
enum Origin {
    Map,
    Elementwise,
    Other,
}

impl Ex {
    fn new(code: String, shape: Shape, iv: Iv, form: Form) -> Ex {
        Ex {
            code,
            shape,
            iv: iv.padded(),
            form,
            origin: Origin::Other,
            view: false,
        }
    }

    fn from(mut self, origin: Origin) -> Ex {
        self.origin = origin;
        self
    }

    /// As the operand of `+ - * /` or the argument of `dot`/`softmax`/...: arrays by reference.
    fn operand(&self) -> String {
        match (self.shape, self.form) {
            (_, Form::ParamRef) => self.code.clone(),
            (Shape::Scalar, Form::Atom) => self.code.clone(),
            (Shape::Scalar, Form::Compound) => format!("({})", self.code),
            (_, Form::Atom) => format!("&{}", self.code),
            (_, Form::Compound) => format!("&({})", self.code),
        }
    }

    /// As the receiver of a method call.
    fn receiver(&self) -> String {
        match self.form {
            Form::Compound => format!("({})", self.code),
            _ => self.code.clone(),
        }
    }

    fn fits(&self) -> bool {
        self.iv.magnitude() <= MAX_MAGNITUDE && self.iv.lo.is_finite() && self.iv.hi.is_finite()
    }
}

#[derive(Clone)]
struct Value {
    name: String,
    origin: Origin,
    shape: Shape,
    iv: Iv,
    is_param_ref: bool,
    view: bool,
    /// Computed from constants only (a loop index), or may be (see
    /// [`AVOID_CONSTANT_METHOD_ARG_BUG`]).
    constant: bool,
    uses: usize,
    /// False once a later `let` shadows the name.
    visible: bool,
}

impl Value {
    fn ex(&self) -> Ex {
        let form = if self.is_param_ref { Form::ParamRef } else { Form::Atom };
        Ex {
            code: self.name.clone(),
            shape: self.shape,
            iv: self.iv,
            form,
            origin: self.origin,
            view: self.view,
        }
    }
}

struct Param {
    name: &'static str,
    shape: Shape,
}

struct Function {
    params: Vec<Param>,
    source: String,
}

struct Generator<'r> {
    rng: &'r mut Rng,
    values: Vec<Value>,
    /// Values read by the statement being built; counted as uses only if it is kept.
    reads: Vec<usize>,
    next_name: usize,
    /// The parameters' names and shapes (for conditions on sizes).
    params: Vec<(&'static str, Shape)>,
    /// A value the next [`value`](Self::value) call returns if it fits (an assignment's
    /// target, read by its right-hand side).
    force: Option<usize>,
    /// Whether a `let` took its value from a branch (see [`AVOID_TAPE_UNREACHED_OUTPUT_BUG`]).
    branched: bool,
    /// Whether the reads last committed were all of constants.
    constant: bool,
    /// Inside a loop body: the first value bound in it. Those still unread are preferred,
    /// since each must be read in the body.
    local_from: Option<usize>,
}

/// A variable carried across a loop's iterations.
struct Carried {
    index: usize,
    /// `acc += e;` only, not read in the body (else a state: read and reassigned).
    accumulator: bool,
    start: Iv,
    /// What the body's `+=`/`-=` add to an accumulator, over all iterations.
    increment: Iv,
}

impl<'r> Generator<'r> {
    fn new(rng: &'r mut Rng) -> Self {
        Generator {
            rng,
            values: Vec::new(),
            reads: Vec::new(),
            next_name: 0,
            params: Vec::new(),
            force: None,
            local_from: None,
            branched: false,
            constant: false,
        }
    }

    fn function(mut self, name: &str) -> Function {
        let (params, body, attribute) = loop {
            (self.values, self.next_name, self.branched) = (Vec::new(), 0, false);
            let params = self.params();
            self.params = params.iter().map(|p| (p.name, p.shape)).collect();
            let n_stmts = self.rng.range(3, 12);
            let mut body = String::new();
            for _ in 0..n_stmts {
                for line in self.statement() {
                    writeln!(body, "    {line}").unwrap();
                }
            }
            let mut differentiated: Vec<&str> = params.iter().map(|p| p.name).collect();
            let attribute = if self.rng.chance(0.3) && params.len() > 1 {
                // A random non-empty proper subset of the parameters, in a random order.
                let mut names = differentiated.clone();
                let keep = self.rng.range(1, names.len() - 1);
                let mut chosen = Vec::new();
                for _ in 0..keep {
                    let i = self.rng.below(names.len());
                    chosen.push(names.remove(i));
                }
                differentiated = chosen.clone();
                format!("#[differentiate(wrt({}))]", chosen.join(", "))
            } else {
                "#[differentiate]".to_string()
            };
            // See AVOID_TAPE_UNREACHED_OUTPUT_BUG: a parameter the output reads whatever the
            // branches do.
            let anchor = if AVOID_TAPE_UNREACHED_OUTPUT_BUG && self.branched {
                let reachable = self.unshadowed(|_| true);
                match differentiated.iter().find(|p| reachable.contains(p)) {
                    Some(p) => Some(p.to_string()),
                    None => continue,
                }
            } else {
                None
            };
            let output = self.output(anchor);
            writeln!(body, "    {output}").unwrap();
            break (params, body, attribute);
        };
        let signature: Vec<String> = params
            .iter()
            .map(|p| match p.shape {
                Shape::Scalar => format!("{}: f64", p.name),
                Shape::Vector(_) => format!("{}: &Array1<f64>", p.name),
                Shape::Matrix(..) => format!("{}: &Array2<f64>", p.name),
            })
            .collect();
        let source = format!(
            "{attribute}\npub fn {name}({}) -> f64 {{\n{body}}}",
            signature.join(", ")
        );
        Function { params, source }
    }

    /// 2–4 parameters, at least one a (3,4) matrix, in a fixed order.
    fn params(&mut self) -> Vec<Param> {
        let pool = [
            ("a", Shape::Matrix(3, 4), 1.0),
            ("b", Shape::Matrix(3, 4), 0.6),
            ("c", Shape::Matrix(3, 4), 0.25),
            ("w", Shape::Matrix(4, 3), 0.25),
            ("r", Shape::Vector(4), 0.5),
            ("s", Shape::Scalar, 0.5),
        ];
        let mut params: Vec<Param> = Vec::new();
        while params.len() < 2 {
            params.clear();
            for &(name, shape, p) in &pool {
                if params.len() < 4 && self.rng.chance(p) {
                    params.push(Param { name, shape });
                }
            }
        }
        for p in &params {
            let iv = match p.shape {
                Shape::Scalar => Iv::new(SCALAR_RANGE.0 - PROBE, SCALAR_RANGE.1 + PROBE),
                _ => Iv::new(ARRAY_RANGE.0 - PROBE, ARRAY_RANGE.1 + PROBE),
            };
            let is_param_ref = p.shape != Shape::Scalar;
            self.values.push(Value {
                name: p.name.to_string(),
                origin: Origin::Other,
                shape: p.shape,
                iv,
                is_param_ref,
                view: false,
                constant: false,
                uses: 0,
                visible: true,
            });
        }
        params
    }

    /// One statement (or block of statements, as lines relative to the body's indentation):
    /// mostly a `let`, sometimes a loop, a branch or a call of a helper.
    fn statement(&mut self) -> Vec<String> {
        let composite = match self.rng.below(100) {
            0..=7 => self.attempt(Self::loop_statement),
            8..=12 => self.attempt(Self::branch_let),
            13..=16 => self.attempt(Self::branch_assign),
            17..=22 => self.attempt(Self::call_let),
            _ => None,
        };
        composite.unwrap_or_else(|| {
            vec![self
                .let_statement(true)
                .expect("no valid statement found in 1000 attempts")]
        })
    }

    /// Runs `build` until it succeeds (at most 20 times), undoing what a failed try declared,
    /// read or hid.
    fn attempt(&mut self, build: fn(&mut Self) -> Option<Vec<String>>) -> Option<Vec<String>> {
        for _ in 0..20 {
            let snapshot = (self.values.clone(), self.next_name);
            self.reads.clear();
            if let Some(lines) = build(self) {
                self.reads.clear();
                return Some(lines);
            }
            (self.values, self.next_name) = snapshot;
            (self.force, self.local_from) = (None, None);
        }
        None
    }

    /// Counts the values read so far as used.
    fn commit_reads(&mut self) {
        self.constant = !self.reads.is_empty() && self.reads.iter().all(|&i| self.values[i].constant);
        for &i in &self.reads {
            self.values[i].uses += 1;
        }
        self.reads.clear();
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.next_name += 1;
        format!("{prefix}{}", self.next_name)
    }

    fn declare(&mut self, name: String, ex: &Ex) -> usize {
        self.values.push(Value {
            name,
            origin: ex.origin,
            shape: ex.shape,
            iv: ex.iv,
            is_param_ref: false,
            view: ex.view,
            constant: self.constant,
            uses: 0,
            visible: true,
        });
        self.values.len() - 1
    }

    /// One `let` statement; retries random ops until one is valid on the chosen values.
    /// `shadow`: whether it may rebind the name of a value it reads (not inside a block,
    /// where the shadowing would end with the block).
    fn let_statement(&mut self, shadow: bool) -> Option<String> {
        for _ in 0..1000 {
            self.reads.clear();
            let Some(ex) = self.expression() else { continue };
            if !ex.fits() {
                continue;
            }
            // Shadow one of the values just read (`let h = h.tanh();`) or bind a new name.
            let shadowed = if shadow && self.rng.chance(0.25) {
                self.reads.last().copied()
            } else {
                None
            };
            self.commit_reads();
            let name = match shadowed {
                Some(i) => {
                    self.values[i].visible = false;
                    self.values[i].name.clone()
                }
                None => self.fresh("t"),
            };
            let line = format!("let {name} = {};", ex.code);
            self.declare(name, &ex);
            return Some(line);
        }
        None
    }

    /// An owned expression (no view) that fits, of the given shape if any.
    fn owned_expression(&mut self, shape: Option<Shape>) -> Option<Ex> {
        for _ in 0..50 {
            let reads_before = self.reads.len();
            match self.expression() {
                Some(ex) if ex.fits() && !ex.view && shape.is_none_or(|s| s == ex.shape) => return Some(ex),
                _ => self.reads.truncate(reads_before),
            }
        }
        None
    }

    // ---- branches on constants -------------------------------------------------

    /// A condition the macro evaluates as a constant (sizes of parameters, literals), or,
    /// if `floats`, a comparison of a float of the function whose interval keeps it at least
    /// [`KINK_MARGIN`] from the threshold (so the branch taken never changes near the point).
    fn condition(&mut self, floats: bool) -> Option<String> {
        if floats && self.rng.chance(0.3) {
            let x = self.value(|s| s == Shape::Scalar)?;
            let mut thresholds: Vec<f64> = [-1.5, -0.5, 0.0, 0.25, 0.5, 1.0, 2.0]
                .into_iter()
                .filter(|&c| x.iv.lo >= c + KINK_MARGIN || x.iv.hi <= c - KINK_MARGIN)
                .collect();
            if thresholds.is_empty() {
                return None;
            }
            let c = thresholds.swap_remove(self.rng.below(thresholds.len()));
            let op = *self.rng.pick(&[">", "<", ">=", "<="]);
            return Some(format!("{} {op} {c:?}", x.code));
        }
        let matrices = self.unshadowed(|s| matches!(s, Shape::Matrix(..)));
        let vector = self.unshadowed(|s| matches!(s, Shape::Vector(_))).first().copied();
        let m = if matrices.is_empty() {
            None
        } else {
            Some(*self.rng.pick(&matrices))
        };
        let simple = |g: &mut Self| -> String {
            let Some(m) = m else {
                return format!("{} > {}", g.rng.range(1, 4), g.rng.range(1, 4));
            };
            match g.rng.below(6) {
                0 => format!("{m}.nrows() > 2"),
                1 => format!("{m}.ncols() == 4"),
                2 => format!("{m}.nrows() < {m}.ncols()"),
                3 => format!("{m}.ncols() != 3"),
                4 => match vector {
                    Some(r) => format!("{r}.len() > 3"),
                    None => format!("{m}.len() >= 12"),
                },
                _ => format!("{} > {}", g.rng.range(1, 4), g.rng.range(1, 4)),
            }
        };
        Some(match self.rng.below(6) {
            0 => format!("!({})", simple(self)),
            1 => format!("{} && {}", simple(self), simple(self)),
            2 => format!("{} || {}", simple(self), simple(self)),
            _ => simple(self),
        })
    }

    /// `let t = if c { e1 } else { e2 };` or `let t = match m.ncols() { 4 => e1, _ => e2 };`,
    /// every arm generated (only one runs): the value's interval is their hull.
    fn branch_let(&mut self) -> Option<Vec<String>> {
        let first = self.owned_expression(None)?;
        let shape = first.shape;
        let mut lines = Vec::new();
        let name = self.fresh("t");
        let mut iv = first.iv;
        if self.rng.chance(0.6) {
            let condition = self.condition(true)?;
            let second = self.owned_expression(Some(shape))?;
            iv = iv.hull(second.iv);
            lines.push(format!("let {name} = if {condition} {{"));
            lines.push(format!("    {}", first.code));
            lines.push("} else {".to_string());
            lines.push(format!("    {}", second.code));
            lines.push("};".to_string());
        } else {
            let (m, query) = self.size_query()?;
            let mut arms = vec![first];
            for _ in 0..self.rng.range(1, 2) {
                arms.push(self.owned_expression(Some(shape))?);
            }
            for arm in &arms[1..] {
                iv = iv.hull(arm.iv);
            }
            let patterns: Vec<String> = if arms.len() == 2 && self.rng.chance(0.3) {
                lines.push(format!("let {name} = match {m}.{query}() > 2 {{"));
                vec!["true".into(), "false".into()]
            } else {
                lines.push(format!("let {name} = match {m}.{query}() {{"));
                let k = self.rng.range(3, 4);
                let mut p = vec![k.to_string()];
                if arms.len() == 3 {
                    p.push(format!("n if n > {}", self.rng.range(2, 4)));
                }
                p.push("_".into());
                p
            };
            for (pattern, arm) in patterns.iter().zip(&arms) {
                lines.push(format!("    {pattern} => {},", arm.code));
            }
            lines.push("};".to_string());
        }
        self.commit_reads();
        let ex = Ex::new(String::new(), shape, iv, Form::Atom);
        self.declare(name, &ex);
        self.branched = true;
        Some(lines)
    }

    /// A matrix parameter and one of its size queries, for a `match`.
    fn size_query(&mut self) -> Option<(String, &'static str)> {
        let matrices = self.unshadowed(|s| matches!(s, Shape::Matrix(..)));
        if matrices.is_empty() {
            return None;
        }
        Some((
            self.rng.pick(&matrices).to_string(),
            *self.rng.pick(&["nrows", "ncols"]),
        ))
    }

    /// The parameters of a shape no `let` has shadowed yet: sizes asked of them are constants.
    fn unshadowed(&self, want: impl Fn(Shape) -> bool) -> Vec<&'static str> {
        self.params
            .iter()
            .filter(|p| want(p.1) && self.values.iter().any(|v| v.is_param_ref && v.visible && v.name == p.0))
            .map(|p| p.0)
            .collect()
    }

    /// `let mut t = ..; if c { t = ..; } else { t = ..; }`: a variable assigned in the arms,
    /// each assignment reading it; its interval after the branch is the hull of the arms'.
    fn branch_assign(&mut self) -> Option<Vec<String>> {
        let mut hidden = None;
        let init = if self.rng.chance(0.5) {
            let x = self.value(|_| true)?;
            if AVOID_MUT_INIT_CAPTURE_BUG {
                hidden = self.reads.last().map(|&i| (i, self.values[i].visible));
            }
            let code = if x.shape == Shape::Scalar {
                x.code.clone()
            } else {
                format!("{}.to_owned()", x.receiver())
            };
            Ex { code, view: false, ..x }
        } else {
            self.owned_expression(None)?
        };
        self.commit_reads();
        let name = self.fresh("t");
        let mut lines = vec![format!("let mut {name} = {};", init.code)];
        let v = self.declare(name, &init);
        if let Some((i, _)) = hidden {
            self.values[i].visible = false;
        }
        let condition = self.condition(true)?;
        lines.push(format!("if {condition} {{"));
        let with_else = self.rng.chance(0.7);
        let mut out = if with_else { None } else { Some(init.iv) };
        for arm in 0..1 + with_else as usize {
            if arm == 1 {
                lines.push("} else {".to_string());
            }
            self.values[v].iv = init.iv;
            for _ in 0..self.rng.range(1, 2) {
                let (line, iv) = self.update(v, None)?;
                self.commit_reads();
                self.values[v].iv = iv;
                lines.push(format!("    {line}"));
            }
            let iv = self.values[v].iv;
            out = Some(out.map_or(iv, |o| o.hull(iv)));
        }
        lines.push("}".to_string());
        self.branched = true;
        if let Some((i, visible)) = hidden {
            self.values[i].visible = visible;
        }
        self.values[v].iv = out?;
        self.values[v].uses = 0;
        Some(lines)
    }

    /// An assignment to the variable `v` that reads it: `v = f(v, ..);`, `v *= ..;` or
    /// `v = helper(&v, ..);`, with its interval. With `within`, the result must lie in it
    /// (a loop's invariant interval): an assignment may then be squashed by `tanh`/`sin`.
    fn update(&mut self, v: usize, within: Option<Iv>) -> Option<(String, Iv)> {
        let target = self.values[v].ex();
        let name = self.values[v].name.clone();
        let reads_before = self.reads.len();
        let result = match self.rng.below(10) {
            0..=5 => {
                self.force = Some(v);
                let ex = self.expression();
                self.force = None;
                let ex = ex.filter(|ex| {
                    ex.shape == target.shape && !ex.view && ex.fits() && self.reads[reads_before..].contains(&v)
                });
                ex.map(|ex| {
                    let squash = match within {
                        Some(w) => !ex.iv.inside(w) || self.rng.chance(0.4),
                        None => self.rng.chance(0.3),
                    };
                    let (code, iv) = if squash {
                        if self.rng.chance(0.5) {
                            (format!("{}.tanh()", ex.receiver()), ex.iv.increasing(f64::tanh))
                        } else {
                            (format!("{}.sin()", ex.receiver()), ex.iv.sin())
                        }
                    } else {
                        (ex.code, ex.iv)
                    };
                    (format!("{name} = {code};"), iv.padded())
                })
            }
            6..=8 => {
                let op = *self.rng.pick(&['*', '/', '+', '-']);
                let rhs = if self.rng.chance(0.4) {
                    let (lit, value) = self.rng.literal();
                    Some(Ex::new(lit, Shape::Scalar, Iv::point(value), Form::Atom))
                } else {
                    let shape = target.shape;
                    self.operand(move |s| compatible(shape, s) && broadcast(shape, s) == shape)
                };
                let reads_target = self.reads[reads_before..].contains(&v);
                rhs.filter(|r| !reads_target && (op != '/' || r.iv.away_from_zero(POLE_MARGIN)))
                    .map(|r| {
                        let iv = match op {
                            '*' => target.iv.mul(r.iv),
                            '/' => target.iv.div(r.iv),
                            '+' => target.iv.add(r.iv),
                            _ => target.iv.sub(r.iv),
                        };
                        // A float operand needs no parentheses on the right of `op=`.
                        let operand = if r.shape == Shape::Scalar {
                            r.code.clone()
                        } else {
                            r.operand()
                        };
                        (format!("{name} {op}= {operand};"), iv.padded())
                    })
            }
            _ => self
                .call(Some(v))
                .filter(|ex| ex.shape == target.shape && self.reads[reads_before..].contains(&v))
                .map(|ex| (format!("{name} = {};", ex.code), ex.iv)),
        };
        match result {
            Some((line, iv)) if iv.magnitude() <= MAX_MAGNITUDE && within.is_none_or(|w| iv.inside(w)) => {
                Some((line, iv))
            }
            _ => {
                self.reads.truncate(reads_before);
                None
            }
        }
    }

    // ---- loops ---------------------------------------------------------------------

    /// `let mut h = x.to_owned(); for _ in 0..n { ..; h = f(h, ..); }` with one or two
    /// carried variables, each either a state (read and reassigned by the body) or an
    /// accumulator (`acc += e;`, not read in the body).
    ///
    /// A state's interval is an invariant `H ⊇ initial ∪ [-1, 1]`: the body is generated with
    /// the state in `H` and every assignment must land in `H` again (squashing by `tanh` or
    /// `sin` lands in `[-1, 1]`), so every iteration's values lie in the intervals the body
    /// was checked on, whatever the number of iterations. An accumulator ends in
    /// `initial + [0, n]·e` for each `+= e` run at most `n` times.
    fn loop_statement(&mut self) -> Option<Vec<String>> {
        let mut lines = Vec::new();
        let mut carried: Vec<Carried> = Vec::new();
        let mut hidden: Vec<usize> = Vec::new();
        for j in 0..1 + self.rng.chance(0.35) as usize {
            let accumulator = self.rng.chance(if j == 0 { 0.25 } else { 0.4 });
            let init = if accumulator && self.rng.chance(0.5) {
                Ex::new("0.0_f64".into(), Shape::Scalar, Iv::point(0.0), Form::Atom)
            } else {
                let x = self.value(|_| true)?;
                let i = *self.reads.last()?;
                if AVOID_MUT_INIT_CAPTURE_BUG {
                    if hidden.contains(&i) || carried.iter().any(|c| c.index == i) {
                        return None;
                    }
                    hidden.push(i);
                }
                let code = if x.shape == Shape::Scalar {
                    x.code.clone()
                } else {
                    format!("{}.to_owned()", x.receiver())
                };
                Ex { code, view: false, ..x }
            };
            self.commit_reads();
            let name = self.fresh(if accumulator { "acc" } else { "h" });
            lines.push(format!("let mut {name} = {};", init.code));
            let index = self.declare(name, &init);
            if accumulator {
                // It may add constants only.
                self.values[index].constant = true;
                hidden.push(index);
            } else {
                self.values[index].iv = init.iv.hull(Iv::new(-1.0, 1.0)).padded();
            }
            carried.push(Carried {
                index,
                accumulator,
                start: init.iv,
                increment: Iv::point(0.0),
            });
        }
        let restore: Vec<(usize, bool)> = hidden.iter().map(|&i| (i, self.values[i].visible)).collect();
        for &i in &hidden {
            self.values[i].visible = false;
        }
        let n = self.rng.range(1, 3);
        let index = self.rng.below(3);
        let body_start = self.values.len();
        self.local_from = Some(body_start);
        let variable = if index == 0 { "_" } else { "i" };
        lines.push(format!("for {variable} in 0..{n} {{"));
        if index == 1 {
            // A float constant of the loop index, read by the body like any float.
            let (lit, value) = self.rng.literal();
            let name = self.fresh("k");
            lines.push(format!("    let {name} = (i as f64 + 1.0) * {lit};"));
            let ex = Ex::new(
                String::new(),
                Shape::Scalar,
                Iv::new(value, n as f64 * value),
                Form::Atom,
            );
            let k = self.declare(name, &ex);
            self.values[k].constant = true;
        }
        if self.rng.chance(0.4) {
            lines.push(format!("    {}", self.let_statement(false)?));
        }
        let body = self.loop_body(&mut carried, n, index == 2);
        self.local_from = None;
        for line in body? {
            lines.push(format!("    {line}"));
        }
        lines.push("}".to_string());
        // Every value bound in the body is read there (else rustc warns), and ends with it.
        for i in body_start..self.values.len() {
            if self.values[i].uses == 0 {
                return None;
            }
            self.values[i].visible = false;
        }
        for (i, visible) in restore {
            self.values[i].visible = visible;
        }
        for c in &carried {
            let value = &mut self.values[c.index];
            value.uses = 0;
            value.visible = true;
            if c.accumulator {
                value.iv = c.start.add(c.increment).padded();
                if value.iv.magnitude() > MAX_MAGNITUDE {
                    return None;
                }
            }
        }
        Some(lines)
    }

    /// The assignments of a loop body: one for each carried variable (in a random order), and
    /// sometimes a nested loop or an `if` (on the index `i` when `on_index`) assigning states.
    /// `n`: how many times the body runs, for the accumulators' intervals.
    fn loop_body(&mut self, carried: &mut [Carried], n: usize, on_index: bool) -> Option<Vec<String>> {
        let mut lines = Vec::new();
        let mut order: Vec<usize> = (0..carried.len()).collect();
        if self.rng.chance(0.5) {
            order.reverse();
        }
        let states: Vec<usize> = carried.iter().filter(|c| !c.accumulator).map(|c| c.index).collect();
        let mut extra = if on_index { 2 } else { self.rng.below(6) };
        if states.is_empty() && extra != 0 {
            if on_index {
                return None;
            }
            extra = 0;
        }
        let at = self.rng.range(0, order.len());
        for step in 0..=order.len() {
            if step == at && extra == 1 {
                // A nested loop over one state.
                let m = self.rng.range(1, 2);
                let v = *self.rng.pick(&states);
                let within = self.values[v].iv;
                let others: Vec<usize> = carried.iter().map(|c| c.index).filter(|&i| i != v).collect();
                if AVOID_NESTED_CARRIED_READ_BUG {
                    for &i in &others {
                        self.values[i].visible = false;
                    }
                }
                let update = self.update(v, Some(within));
                for &i in &others {
                    self.values[i].visible = !carried.iter().any(|c| c.index == i && c.accumulator);
                }
                let (line, _) = update?;
                self.commit_reads();
                lines.push(format!("for _ in 0..{m} {{"));
                lines.push(format!("    {line}"));
                lines.push("}".to_string());
            } else if step == at && extra == 2 {
                let condition = if on_index {
                    match self.rng.below(3) {
                        0 => "i > 0".to_string(),
                        1 => "i == 1".to_string(),
                        _ => format!("i + 1 < {n}"),
                    }
                } else {
                    self.condition(false)?
                };
                lines.push(format!("if {condition} {{"));
                let with_else = on_index || self.rng.chance(0.5);
                for arm in 0..1 + with_else as usize {
                    if arm == 1 {
                        lines.push("} else {".to_string());
                    }
                    let v = *self.rng.pick(&states);
                    let within = self.values[v].iv;
                    let (line, _) = self.update(v, Some(within))?;
                    self.commit_reads();
                    lines.push(format!("    {line}"));
                }
                lines.push("}".to_string());
                self.branched = true;
            }
            if step == order.len() {
                break;
            }
            let c = &mut carried[order[step]];
            let v = c.index;
            if c.accumulator {
                let shape = self.values[v].shape;
                let e = if shape == Shape::Scalar && self.rng.chance(0.5) {
                    self.reduce_to_scalar()
                } else {
                    self.operand(move |s| compatible(shape, s) && broadcast(shape, s) == shape)
                }?;
                if !e.fits() {
                    return None;
                }
                let (op, e_iv) = if self.rng.chance(0.7) {
                    ('+', e.iv)
                } else {
                    ('-', e.iv.neg())
                };
                let total = Iv::new((n as f64 * e_iv.lo).min(0.0), (n as f64 * e_iv.hi).max(0.0));
                c.increment = c.increment.add(total);
                let operand = if e.shape == Shape::Scalar {
                    e.code.clone()
                } else {
                    e.operand()
                };
                lines.push(format!("{} {op}= {operand};", self.values[v].name));
            } else {
                let within = self.values[v].iv;
                let (line, _) = self.update(v, Some(within))?;
                lines.push(line);
            }
            self.commit_reads();
        }
        Some(lines)
    }

    // ---- calls of helpers ------------------------------------------------------------

    /// `let t: Array2<f64> = helper_squash(&x, s);`
    fn call_let(&mut self) -> Option<Vec<String>> {
        let ex = self.call(None)?;
        self.commit_reads();
        let name = self.fresh("t");
        let line = format!("let {name}: {} = {};", rust_type(ex.shape), ex.code);
        self.declare(name, &ex);
        Some(vec![line])
    }

    /// A call of a random helper on random arguments (the first one `first` if given), with
    /// its result's interval from the helper's transfer function.
    fn call(&mut self, first: Option<usize>) -> Option<Ex> {
        let helper = self.rng.pick(HELPERS);
        let mut args: Vec<Ex> = Vec::new();
        for (k, kind) in helper.params.iter().enumerate() {
            if k == 0 {
                self.force = first;
            }
            let reads_before = self.reads.len();
            let arg = match *kind {
                Arg::Matrix => self.operand(|s| matches!(s, Shape::Matrix(..))),
                Arg::SameAs(j) => {
                    let want = args[j].shape;
                    self.operand(move |s| s == want)
                }
                Arg::Columns(j) => {
                    let Shape::Matrix(_, c) = args[j].shape else {
                        return None;
                    };
                    self.operand(move |s| s == Shape::Vector(c))
                }
                Arg::Vector => self.operand(|s| matches!(s, Shape::Vector(_))),
                Arg::Float => {
                    if self.rng.chance(0.3) {
                        let (lit, value) = self.rng.literal();
                        Some(Ex::new(lit, Shape::Scalar, Iv::point(value), Form::Atom))
                    } else {
                        self.operand(|s| s == Shape::Scalar)
                    }
                }
            };
            self.force = None;
            let constant = self.reads[reads_before..].iter().any(|&i| self.values[i].constant);
            if AVOID_CONSTANT_METHOD_ARG_BUG && *kind == Arg::Float && constant {
                return None;
            }
            args.push(arg?);
        }
        let (shape, iv) = (helper.transfer)(&args);
        let code: Vec<String> = args
            .iter()
            .map(|a| match (a.shape, a.view) {
                (Shape::Scalar, _) => a.code.clone(),
                (_, true) => format!("&{}.to_owned()", a.code),
                _ => a.operand(),
            })
            .collect();
        let ex = Ex::new(format!("{}({})", helper.name, code.join(", ")), shape, iv, Form::Atom);
        ex.fits().then_some(ex)
    }

    /// A visible value, preferring ones not used yet, optionally of a required shape.
    fn value(&mut self, want: impl Fn(Shape) -> bool) -> Option<Ex> {
        if let Some(i) = self.force.take() {
            if self.values[i].visible && want(self.values[i].shape) {
                self.reads.push(i);
                return Some(self.values[i].ex());
            }
        }
        let candidates: Vec<usize> = (0..self.values.len())
            .filter(|&i| self.values[i].visible && want(self.values[i].shape))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let unused: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&i| self.values[i].uses == 0)
            .collect();
        let local: Vec<usize> = match self.local_from {
            Some(from) => unused.iter().copied().filter(|&i| i >= from).collect(),
            None => Vec::new(),
        };
        let i = if !local.is_empty() && self.rng.chance(0.7) {
            *self.rng.pick(&local)
        } else if !unused.is_empty() && self.rng.chance(0.5) {
            *self.rng.pick(&unused)
        } else {
            *self.rng.pick(&candidates)
        };
        self.reads.push(i);
        Some(self.values[i].ex())
    }

    /// A value, sometimes wrapped in a unary op (so that expressions nest).
    fn operand(&mut self, want: impl Fn(Shape) -> bool) -> Option<Ex> {
        let x = self.value(want)?;
        if self.rng.chance(0.25) {
            // What a discarded unary read (a closure's captures) is not a use.
            let reads_before = self.reads.len();
            let wrapped = self.unary(&x).filter(Ex::fits);
            if wrapped.is_none() {
                self.reads.truncate(reads_before);
            }
            return wrapped.or(Some(x));
        }
        Some(x)
    }

    fn expression(&mut self) -> Option<Ex> {
        match self.rng.below(100) {
            0..=29 => {
                let x = self.operand(|_| true)?;
                self.unary(&x)
            }
            30..=64 => self.binary(),
            65..=74 => self.dot(),
            75..=81 => self.reduce_axis(),
            82..=88 => self.softmax(),
            89..=95 => self.reduce_to_scalar(),
            _ => self.transpose(),
        }
    }

    /// An elementwise function of `x` (array or float), valid on its interval, or `None`.
    fn unary(&mut self, x: &Ex) -> Option<Ex> {
        let iv = x.iv;
        let is_array = x.shape != Shape::Scalar;
        let r = x.receiver();
        let method = |name: &str, out: Iv| Some(Ex::new(format!("{r}.{name}()"), x.shape, out, Form::Atom));
        // The free-function form (`tanh(&x)`) exists for these four on arrays.
        let free_or_method = |rng: &mut Rng, name: &str, out: Iv| {
            if is_array && rng.chance(0.4) {
                Some(Ex::new(format!("{name}({})", x.operand()), x.shape, out, Form::Atom))
            } else {
                method(name, out)
            }
        };
        let choice = self.rng.below(20);
        // Under the fusion workaround, a `mapv` reads no elementwise result and feeds none.
        let (reads_as, produces) = match choice {
            14..=16 => (Origin::Map, Origin::Map),
            17 => (Origin::Map, Origin::Elementwise),
            _ => (Origin::Elementwise, Origin::Elementwise),
        };
        if AVOID_FUSED_MAPV_BUG && is_array && fuses(reads_as, x.origin) {
            return None;
        }
        let result = match choice {
            0 if iv.hi <= EXP_MAX => method("exp", iv.increasing(f64::exp)),
            1 => free_or_method(self.rng, "tanh", iv.increasing(f64::tanh)),
            2 => method("sin", iv.sin()),
            3 => method("cos", iv.cos()),
            4 if is_array => free_or_method(self.rng, "sigmoid", iv.increasing(|v| 1.0 / (1.0 + (-v).exp()))),
            5 if is_array => free_or_method(self.rng, "square", iv.square()),
            6 if is_array && iv.away_from_zero(KINK_MARGIN) => free_or_method(self.rng, "relu", iv.relu()),
            7 if iv.away_from_zero(KINK_MARGIN) => method("abs", iv.abs()),
            8 if iv.positive(POLE_MARGIN) => method("ln", iv.increasing(f64::ln)),
            9 if iv.positive(POLE_MARGIN) => method("sqrt", iv.increasing(f64::sqrt)),
            10 if iv.away_from_zero(POLE_MARGIN) => method("recip", iv.recip()),
            11 => {
                let n = self.rng.range(2, 3) as i32;
                let out = if n == 2 {
                    iv.square()
                } else {
                    iv.increasing(|v| v.powi(3))
                };
                Some(Ex::new(format!("{r}.powi({n})"), x.shape, out, Form::Atom))
            }
            12 if iv.positive(POLE_MARGIN) => {
                let e = *self.rng.pick(&[0.5, 1.5, 2.5]);
                Some(Ex::new(
                    format!("{r}.powf({e:?})"),
                    x.shape,
                    iv.increasing(|v| v.powf(e)),
                    Form::Atom,
                ))
            }
            13 => Some(Ex::new(format!("-{}", x.operand()), x.shape, iv.neg(), Form::Compound)),
            14..=16 if is_array => {
                let (arg, body, out) = self.closure(iv)?;
                Some(Ex::new(format!("{r}.mapv(|{arg}| {body})"), x.shape, out, Form::Atom).from(Origin::Map))
            }
            19 if is_array => {
                let softplus = |v: f64| v.max(0.0) + (-v.abs()).exp().ln_1p();
                free_or_method(self.rng, "softplus", iv.increasing(softplus))
            }
            // ln and sqrt of values made positive first, as a model would write them.
            17 if is_array => {
                let out = iv.square().add(Iv::point(1.0)).increasing(f64::ln);
                Some(
                    Ex::new(format!("({r}.mapv(|v| v * v) + 1.0).ln()"), x.shape, out, Form::Atom)
                        .from(Origin::Elementwise),
                )
            }
            18 if is_array => {
                let out = iv.square().add(Iv::point(0.5)).increasing(f64::sqrt);
                Some(Ex::new(
                    format!("({}.square() + 0.5).sqrt()", r),
                    x.shape,
                    out,
                    Form::Atom,
                ))
            }
            _ => None,
        };
        result.map(|ex| ex.from(produces))
    }

    /// A `mapv` closure with a random scalar body: `(argument, body, output interval)`.
    fn closure(&mut self, input: Iv) -> Option<(String, String, Iv)> {
        let arg = *self.rng.pick(&["v", "e", "q"]);
        let (mut code, mut iv, mut atomic) = (arg.to_string(), input, true);
        let steps = self.rng.range(1, 3);
        let mut done = 0;
        // An `if` is only allowed in a closure that captures no float of the function.
        let (mut captures, mut branches) = (false, false);
        for _ in 0..50 {
            if done == steps {
                break;
            }
            let p = if atomic { code.clone() } else { format!("({code})") };
            let (lit, value) = self.rng.literal();
            // A captured value counts as read only if its step is kept.
            let reads_before = self.reads.len();
            let mut kind = Step::Plain;
            let step: Option<(String, Iv, bool)> = match self.rng.below(21) {
                0 => Some((format!("{p} * {lit}"), iv.scale(value), false)),
                1 => Some((format!("{p} + {lit}"), iv.add(Iv::point(value)), false)),
                2 => Some((format!("{lit} - {p}"), Iv::point(value).sub(iv), false)),
                3 => Some((format!("{p} * {arg}"), iv.mul(input), false)),
                4 => Some((format!("{p} * {p}"), iv.square(), false)),
                5 => Some((format!("{p}.sin()"), iv.sin(), true)),
                6 => Some((format!("{p}.cos()"), iv.cos(), true)),
                7 => Some((format!("{p}.tanh()"), iv.increasing(f64::tanh), true)),
                8 if iv.hi <= EXP_MAX => Some((format!("{p}.exp()"), iv.increasing(f64::exp), true)),
                9 => Some((
                    format!("({p} * {p} + 1.0).ln()"),
                    iv.square().add(Iv::point(1.0)).increasing(f64::ln),
                    true,
                )),
                10 => Some((format!("{p}.powi(3)"), iv.increasing(|v| v.powi(3)), true)),
                11 => {
                    let shrink = Iv::new(1.0 / (1.0 + input.magnitude().powi(2)), 1.0);
                    Some((format!("{p} / (1.0 + {arg} * {arg})"), iv.mul(shrink), false))
                }
                12 if iv.positive(POLE_MARGIN) => Some((format!("{p}.sqrt()"), iv.increasing(f64::sqrt), true)),
                13 if iv.away_from_zero(POLE_MARGIN) => Some((format!("{p}.recip()"), iv.recip(), true)),
                14 if iv.away_from_zero(KINK_MARGIN) => Some((format!("{p}.abs()"), iv.abs(), true)),
                // A float of the function, captured: its gradient comes from the closure.
                15 | 16 if !branches => {
                    kind = Step::Capture;
                    self.value(|shape| shape == Shape::Scalar)
                        .map(|c| (format!("{p} * {}", c.code), iv.mul(c.iv), false))
                }
                17 => self.clamp_step(&p, iv).map(|(c, i)| (c, i, true)),
                18..=20 if !captures => {
                    kind = Step::Branch;
                    self.if_step(&code, &p, iv).map(|(c, i)| (c, i, false))
                }
                _ => None,
            };
            let Some((c, i, a)) = step else { continue };
            if i.magnitude() > MAX_MAGNITUDE {
                self.reads.truncate(reads_before);
                continue;
            }
            (code, iv, atomic) = (c, i.padded(), a);
            captures |= kind == Step::Capture;
            branches |= kind == Step::Branch;
            done += 1;
        }
        (done == steps).then(|| (arg.to_string(), code, iv))
    }

    /// `p.clamp(lo, hi)` with bounds around `iv` (identity), below it or above it (constant),
    /// [`KINK_MARGIN`] away; or, if [`KINKS_IN_CLOSURES`], bounds inside it.
    fn clamp_step(&mut self, p: &str, iv: Iv) -> Option<(String, Iv)> {
        let quarter_below = |x: f64| ((x - KINK_MARGIN) * 4.0).floor() / 4.0;
        let quarter_above = |x: f64| ((x + KINK_MARGIN) * 4.0).ceil() / 4.0;
        let width = *self.rng.pick(&[0.5, 1.0, 2.0]);
        let (lo, hi) = match self.rng.below(if KINKS_IN_CLOSURES { 4 } else { 3 }) {
            0 => (quarter_below(iv.lo), quarter_above(iv.hi)),
            1 => (quarter_below(iv.lo) - width, quarter_below(iv.lo)),
            2 => (quarter_above(iv.hi), quarter_above(iv.hi) + width),
            _ => {
                let mid = ((iv.lo + iv.hi) * 2.0).round() / 4.0;
                (mid - width / 2.0, mid)
            }
        };
        let out = iv.increasing(|v| v.clamp(lo, hi));
        Some((format!("{p}.clamp({lo:?}, {hi:?})"), out))
    }

    /// `if cond { A(p) } else { B(p) }`: a condition of `p` against thresholds outside `iv`
    /// (so the same arm runs on the whole interval), combined with `! && ||`; or, if
    /// [`KINKS_IN_CLOSURES`], a continuous leaky kink at a threshold inside `iv`.
    /// `raw` is the closure's expression so far, `p` the same as an operand (parenthesised).
    fn if_step(&mut self, raw: &str, p: &str, iv: Iv) -> Option<(String, Iv)> {
        let shift = |c: f64| {
            if c >= 0.0 {
                format!("{p} - {c:?}")
            } else {
                format!("{p} + {:?}", -c)
            }
        };
        if KINKS_IN_CLOSURES && self.rng.chance(0.25) {
            let c = ((iv.lo + iv.hi) * 2.0).round() / 4.0;
            if !(iv.lo < c && c < iv.hi) {
                return None;
            }
            let (lit, k) = self.rng.literal();
            if k > 1.0 {
                return None;
            }
            let f = |v: f64| if v > c { v } else { c + (v - c) * k };
            let code = format!("if {p} > {c:?} {{ {raw} }} else {{ {c:?} + ({}) * {lit} }}", shift(c));
            return Some((code, iv.increasing(f)));
        }
        let below = ((iv.lo - KINK_MARGIN) * 4.0).floor() / 4.0;
        let above = ((iv.hi + KINK_MARGIN) * 4.0).ceil() / 4.0;
        // (condition, whether it holds on the whole interval)
        let (condition, holds) = match self.rng.below(6) {
            0 => (format!("{p} > {below:?}"), true),
            1 => (format!("{p} > {above:?}"), false),
            2 => (format!("{p} < {above:?}"), true),
            3 => (format!("!({p} >= {below:?})"), false),
            4 => (format!("{p} > {below:?} && {p} < {above:?}"), true),
            _ => (format!("{p} < {below:?} || {p} >= {above:?}"), false),
        };
        let arm = |g: &mut Self| -> (String, Iv) {
            let (lit, value) = g.rng.literal();
            match g.rng.below(5) {
                0 => (format!("{p} * {lit}"), iv.scale(value)),
                1 => (format!("{p}.sin()"), iv.sin()),
                2 => (format!("{p}.tanh()"), iv.increasing(f64::tanh)),
                3 => (format!("{lit} - {p}"), Iv::point(value).sub(iv)),
                _ => (format!("{p} * {p}"), iv.square()),
            }
        };
        let (then, then_iv) = arm(self);
        let (other, other_iv) = arm(self);
        let out = if holds { then_iv } else { other_iv };
        Some((format!("if {condition} {{ {then} }} else {{ {other} }}"), out))
    }

    /// `x op y` with broadcasting, floats and literals on either side.
    fn binary(&mut self) -> Option<Ex> {
        let op = *self.rng.pick(&['+', '-', '*', '/']);
        let x = self.operand(|_| true)?;
        let with_literal = self.rng.chance(0.25);
        let y = if with_literal {
            let (lit, value) = self.rng.literal();
            Ex::new(lit, Shape::Scalar, Iv::point(value), Form::Atom)
        } else {
            let xs = x.shape;
            self.operand(move |s| compatible(xs, s))?
        };
        let swap = self.rng.chance(0.5);
        let (lhs, rhs) = if swap { (y, x) } else { (x, y) };
        // Literals are never 0; any other denominator near 0 is shifted away from it.
        let is_literal = with_literal && !swap;
        let rhs = if op == '/' && !is_literal && !rhs.iv.away_from_zero(POLE_MARGIN) {
            self.denominator(&rhs)?
        } else {
            rhs
        };
        let shape = broadcast(lhs.shape, rhs.shape);
        let iv = match op {
            '+' => lhs.iv.add(rhs.iv),
            '-' => lhs.iv.sub(rhs.iv),
            '*' => lhs.iv.mul(rhs.iv),
            _ => lhs.iv.div(rhs.iv),
        };
        Some(Ex::new(
            format!("{} {op} {}", lhs.operand(), rhs.operand()),
            shape,
            iv,
            Form::Compound,
        ))
    }

    /// `d` made safe to divide by: kept away from zero by a positive shift.
    fn denominator(&mut self, d: &Ex) -> Option<Ex> {
        let r = d.receiver();
        let choice = self.rng.below(4);
        let reads_as = if choice == 1 { Origin::Map } else { Origin::Elementwise };
        if AVOID_FUSED_MAPV_BUG && d.shape != Shape::Scalar && fuses(reads_as, d.origin) {
            return None;
        }
        let (code, iv) = match (d.shape, choice) {
            (_, 0) if d.iv.hi <= EXP_MAX && d.iv.lo >= -0.9 => (format!("{r}.exp()"), d.iv.increasing(f64::exp)),
            (Shape::Scalar, _) => (format!("{r}.powi(2) + 1.0"), d.iv.square().add(Iv::point(1.0))),
            (_, 1) => (format!("{r}.mapv(|v| v * v) + 1.0"), d.iv.square().add(Iv::point(1.0))),
            (_, 2) => (
                format!("sigmoid({}) + 0.5", d.operand()),
                d.iv.increasing(|v| 1.0 / (1.0 + (-v).exp()) + 0.5),
            ),
            _ => (format!("{r}.square() + 1.0"), d.iv.square().add(Iv::point(1.0))),
        };
        let form = if code.ends_with(".exp()") {
            Form::Atom
        } else {
            Form::Compound
        };
        Some(Ex::new(code, d.shape, iv, form))
    }

    /// Matrix products, including with a transpose: `a.dot(&b.t())`, `a.t().dot(&b)`, matrix·vector.
    fn dot(&mut self) -> Option<Ex> {
        let x = self.value(|s| s != Shape::Scalar)?;
        let y = self.value(|s| s != Shape::Scalar)?;
        let (xr, yo) = (x.receiver(), y.operand());
        let term = x.iv.mul(y.iv);
        let (code, shape, iv) = match (x.shape, y.shape) {
            (Shape::Matrix(r, c), Shape::Matrix(r2, c2)) => {
                let mut options = Vec::new();
                if c == r2 {
                    options.push((format!("{xr}.dot({yo})"), Shape::Matrix(r, c2), term.scale(c as f64)));
                }
                if c == c2 {
                    let yt = format!("&{}.t()", y.receiver());
                    options.push((format!("{xr}.dot({yt})"), Shape::Matrix(r, r2), term.scale(c as f64)));
                }
                if r == r2 {
                    options.push((
                        format!("{xr}.t().dot({yo})"),
                        Shape::Matrix(c, c2),
                        term.scale(r as f64),
                    ));
                }
                if options.is_empty() {
                    return None;
                }
                let i = self.rng.below(options.len());
                options.swap_remove(i)
            }
            (Shape::Matrix(r, c), Shape::Vector(n)) if c == n => {
                (format!("{xr}.dot({yo})"), Shape::Vector(r), term.scale(n as f64))
            }
            (Shape::Vector(n), Shape::Matrix(r, c)) if n == r => {
                (format!("{xr}.dot({yo})"), Shape::Vector(c), term.scale(n as f64))
            }
            (Shape::Vector(n), Shape::Vector(m)) if n == m => {
                (format!("{xr}.dot({yo})"), Shape::Scalar, term.scale(n as f64))
            }
            _ => return None,
        };
        Some(Ex::new(code, shape, iv, Form::Atom))
    }

    /// `sum_axis`/`mean_axis` of a matrix.
    fn reduce_axis(&mut self) -> Option<Ex> {
        let x = self.operand(|s| matches!(s, Shape::Matrix(..)))?;
        let Shape::Matrix(r, c) = x.shape else { return None };
        let axis = self.rng.below(2);
        let (kept, removed) = if axis == 0 { (c, r) } else { (r, c) };
        let (code, iv) = if self.rng.chance(0.5) {
            (
                format!("{}.sum_axis(Axis({axis}))", x.receiver()),
                x.iv.scale(removed as f64),
            )
        } else {
            (format!("{}.mean_axis(Axis({axis})).unwrap()", x.receiver()), x.iv)
        };
        Some(Ex::new(code, Shape::Vector(kept), iv, Form::Atom))
    }

    /// `softmax`/`log_softmax` along a random axis.
    fn softmax(&mut self) -> Option<Ex> {
        let x = self.operand(|s| s != Shape::Scalar)?;
        let (axis, n) = match x.shape {
            Shape::Matrix(r, c) => {
                let axis = self.rng.below(2);
                (axis, if axis == 0 { r } else { c })
            }
            Shape::Vector(n) => (0, n),
            Shape::Scalar => return None,
        };
        if self.rng.chance(0.5) {
            Some(Ex::new(
                format!("softmax({}, Axis({axis}))", x.operand()),
                x.shape,
                Iv::new(0.0, 1.0),
                Form::Atom,
            ))
        } else {
            let low = -(x.iv.hi - x.iv.lo) - (n as f64).ln();
            Some(Ex::new(
                format!("log_softmax({}, Axis({axis}))", x.operand()),
                x.shape,
                Iv::new(low, 0.0),
                Form::Atom,
            ))
        }
    }

    /// A float from an array, used by later statements (`let k = mean(&h); ... &x * k`).
    fn reduce_to_scalar(&mut self) -> Option<Ex> {
        let x = self.operand(|s| s != Shape::Scalar)?;
        Some(self.reduced(&x))
    }

    /// `x` reduced to a float by a random reduction; a sum only if it stays small.
    fn reduced(&mut self, x: &Ex) -> Ex {
        let n = x.shape.len() as f64;
        let summed = x.iv.scale(n);
        match self.rng.below(3) {
            0 if summed.magnitude() <= MAX_MAGNITUDE => {
                Ex::new(format!("{}.sum()", x.receiver()), Shape::Scalar, summed, Form::Atom)
            }
            1 => Ex::new(format!("mean({})", x.operand()), Shape::Scalar, x.iv, Form::Atom),
            _ => Ex::new(
                format!("{}.mean().unwrap()", x.receiver()),
                Shape::Scalar,
                x.iv,
                Form::Atom,
            ),
        }
    }

    /// A transposed copy (`x.t().to_owned()`) or view (`x.view().reversed_axes()`).
    fn transpose(&mut self) -> Option<Ex> {
        let x = self.value(|s| matches!(s, Shape::Matrix(..)))?;
        let Shape::Matrix(r, c) = x.shape else { return None };
        let view = self.rng.chance(0.5);
        let code = if view {
            format!("{}.view().reversed_axes()", x.code)
        } else {
            format!("{}.t().to_owned()", x.code)
        };
        let mut ex = Ex::new(code, Shape::Matrix(c, r), x.iv, Form::Atom);
        ex.view = view;
        Some(ex)
    }

    /// The returned float: every value nothing else read (so no parameter or `let` is
    /// unused), each reduced to a float, combined with random scalar arithmetic.
    fn output(&mut self, anchor: Option<String>) -> String {
        let leaves: Vec<usize> = (0..self.values.len())
            .filter(|&i| self.values[i].visible && self.values[i].uses == 0)
            .collect();
        let mut terms: Vec<Ex> = Vec::new();
        for i in leaves {
            let x = self.values[i].ex();
            let term = if x.shape == Shape::Scalar {
                if self.rng.chance(0.5) {
                    x
                } else {
                    self.unary(&x).filter(Ex::fits).unwrap_or(x)
                }
            } else {
                self.reduced(&x)
            };
            terms.push(term);
        }
        // Newest first, so the final statement usually leads.
        terms.reverse();
        if let Some(p) = anchor {
            let x = self
                .values
                .iter()
                .rev()
                .find(|v| v.visible && v.name == p)
                .unwrap()
                .ex();
            let term = if x.shape == Shape::Scalar { x } else { self.reduced(&x) };
            let term = Ex::new(
                format!("0.25 * {}", term.operand()),
                Shape::Scalar,
                term.iv.scale(0.25),
                Form::Compound,
            );
            terms.push(term);
        }
        let mut total = terms[0].clone();
        for term in &terms[1..] {
            total = match self.rng.below(4) {
                0 => {
                    let (lit, value) = self.rng.literal();
                    let iv = total.iv.add(term.iv.scale(value));
                    Ex::new(
                        format!("{} + {lit} * {}", total.code, term.operand()),
                        Shape::Scalar,
                        iv,
                        Form::Compound,
                    )
                }
                1 => Ex::new(
                    format!("{} - {}", total.code, term.operand()),
                    Shape::Scalar,
                    total.iv.sub(term.iv),
                    Form::Compound,
                ),
                2 if total.iv.mul(term.iv).magnitude() <= 4.0 * MAX_MAGNITUDE => {
                    let iv = total.iv.mul(term.iv);
                    Ex::new(
                        format!("{} * {}", total.operand(), term.operand()),
                        Shape::Scalar,
                        iv,
                        Form::Compound,
                    )
                }
                _ => Ex::new(
                    format!("{} + {}", total.code, term.operand()),
                    Shape::Scalar,
                    total.iv.add(term.iv),
                    Form::Compound,
                ),
            };
        }
        // Finite differences have an absolute rounding error of about ε·|f|/h, while the check's
        // floor is absolute for small gradients: scale |f| down to at most 1 by an exact power of 2.
        let mut scale = 1.0;
        while total.iv.magnitude() / scale > 1.0 {
            scale *= 2.0;
        }
        if scale > 1.0 {
            format!("{} / {scale:?}", total.operand())
        } else {
            total.code
        }
    }
}

/// Whether an op of `reader` kind applied to a value of `input` origin would have its backward
/// fused with a `mapv` backward (see [`AVOID_FUSED_MAPV_BUG`]).
fn fuses(reader: Origin, input: Origin) -> bool {
    match reader {
        Origin::Map => input != Origin::Other,
        Origin::Elementwise => input == Origin::Map,
        Origin::Other => false,
    }
}

/// What a closure step does, as far as the rule "no `if` in a closure that captures a float"
/// is concerned.
#[derive(Clone, Copy, PartialEq)]
enum Step {
    Plain,
    Capture,
    Branch,
}

/// Whether `a op b` is defined under ndarray's broadcasting, for the shapes generated here.
fn compatible(a: Shape, b: Shape) -> bool {
    match (a, b) {
        (Shape::Scalar, _) | (_, Shape::Scalar) => true,
        (Shape::Matrix(_, c), Shape::Vector(n)) | (Shape::Vector(n), Shape::Matrix(_, c)) => c == n,
        _ => a == b,
    }
}

fn broadcast(a: Shape, b: Shape) -> Shape {
    match (a, b) {
        (Shape::Scalar, s) | (s, Shape::Scalar) => s,
        (m @ Shape::Matrix(..), _) | (_, m @ Shape::Matrix(..)) => m,
        (v, _) => v,
    }
}

/// The type a value of `shape` is bound with, as a call's result must be.
fn rust_type(shape: Shape) -> &'static str {
    match shape {
        Shape::Scalar => "f64",
        Shape::Vector(_) => "Array1<f64>",
        Shape::Matrix(..) => "Array2<f64>",
    }
}

// ---- helpers: `#[differentiate]` functions the generated functions call ----------------

/// What a helper's parameter accepts.
#[derive(Clone, Copy, PartialEq)]
enum Arg {
    /// `&Array2<f64>` of any shape.
    Matrix,
    /// `&Array2<f64>` of the shape of argument `k`.
    SameAs(usize),
    /// `&Array1<f64>` as long as argument `k` (a matrix) has columns.
    Columns(usize),
    /// `&Array1<f64>` of any length.
    Vector,
    /// `f64`.
    Float,
}

/// A helper: its source (emitted once per file), parameters, and the shape and interval of
/// its result given its arguments'. Each is smooth everywhere, so any interval is valid.
struct Helper {
    name: &'static str,
    params: &'static [Arg],
    source: &'static str,
    transfer: fn(&[Ex]) -> (Shape, Iv),
}

fn sigmoid_iv(x: Iv) -> Iv {
    x.increasing(|v| 1.0 / (1.0 + (-v).exp()))
}

const HELPERS: &[Helper] = &[
    Helper {
        name: "helper_squash",
        params: &[Arg::Matrix, Arg::Float],
        source: "pub fn helper_squash(x: &Array2<f64>, s: f64) -> Array2<f64> {\n    (x * s).tanh()\n}",
        transfer: |a| (a[0].shape, a[0].iv.mul(a[1].iv).increasing(f64::tanh)),
    },
    Helper {
        name: "helper_gate",
        params: &[Arg::Matrix, Arg::SameAs(0)],
        source: "pub fn helper_gate(x: &Array2<f64>, y: &Array2<f64>) -> Array2<f64> {\n    sigmoid(y) * x\n}",
        transfer: |a| (a[0].shape, a[0].iv.mul(sigmoid_iv(a[1].iv))),
    },
    Helper {
        name: "helper_cell",
        params: &[Arg::Matrix, Arg::Columns(0), Arg::Float],
        source: "pub fn helper_cell(h: &Array2<f64>, b: &Array1<f64>, s: f64) -> Array2<f64> {\n    \
                 let mut z = h.to_owned();\n    for _ in 0..2 {\n        z = (&z * s + b).tanh();\n    }\n    z\n}",
        transfer: |a| {
            let step = |z: Iv| z.mul(a[2].iv).add(a[1].iv).increasing(f64::tanh);
            (a[0].shape, step(step(a[0].iv)))
        },
    },
    Helper {
        name: "helper_wave",
        params: &[Arg::Vector, Arg::Float],
        source: "pub fn helper_wave(x: &Array1<f64>, s: f64) -> Array1<f64> {\n    x.mapv(|v| (v * s).sin())\n}",
        transfer: |a| (a[0].shape, a[0].iv.mul(a[1].iv).sin()),
    },
    Helper {
        name: "helper_energy",
        params: &[Arg::Matrix],
        source: "pub fn helper_energy(x: &Array2<f64>) -> f64 {\n    (x * x + 1.0).ln().mean().unwrap()\n}",
        transfer: |a| (Shape::Scalar, a[0].iv.square().add(Iv::point(1.0)).increasing(f64::ln)),
    },
    Helper {
        name: "helper_nested",
        params: &[Arg::Matrix, Arg::Float],
        source: "pub fn helper_nested(x: &Array2<f64>, s: f64) -> f64 {\n    \
                 let t: Array2<f64> = helper_squash(x, s);\n    (&t * &t).mean().unwrap()\n}",
        transfer: |a| (Shape::Scalar, a[0].iv.mul(a[1].iv).increasing(f64::tanh).square()),
    },
    Helper {
        name: "helper_pick",
        params: &[Arg::Vector],
        source:
            "pub fn helper_pick(x: &Array1<f64>) -> f64 {\n    \
                 if x.len() > 3 {\n        x.sin().sum() * 0.5\n    } else {\n        x.cos().mean().unwrap()\n    }\n}",
        transfer: |a| {
            let n = a[0].shape.len() as f64;
            (Shape::Scalar, a[0].iv.sin().scale(0.5 * n).hull(a[0].iv.cos()))
        },
    },
];
