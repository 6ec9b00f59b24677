//! The elementwise functions of one value.

/// Calls `$callback! { rows }` with one row per elementwise function of one value:
///
/// ```text
/// /// doc
/// Variant name (grad, scalar, grad_scalar, SAVES_CONST) forms(..), domain D,
///     forward |x| f(x), [vector V,] saves Input|Output|OutputSign, derivative |s| f'(in terms of s);
/// ```
///
/// - `name` is the method and function name users write; the other identifiers name the
///   runtime's kernels: `name(&a)`, `grad(g, &saved)`, `scalar(x)`, `grad_scalar(g, s)`,
///   and the constant saying what backward reads.
/// - `forms(..)` lists how users may write it besides the array method `x.name()`, which
///   every row has: `ext` (the method comes from the prelude's `ArrayExt`, since ndarray
///   has none), `function` (the prelude has a free function `name(&x)`), `float` (`f32` and
///   `f64` have a method of that name; the other rows get one from the prelude's
///   `FloatExt`). Every row applies to floats and inside `mapv` closures.
/// - `domain` is where tests draw inputs: `all` (mixed signs) or `positive`.
/// - `saves Output` means the derivative is written in terms of the output `y`, which is
///   then what both engines keep for backward (cheaper for `exp`, `tanh`, ...); `saves
///   Input` means it is written in terms of the input `x`. `saves OutputSign` is `saves
///   Output` for a derivative that reads only whether `y > 0` (relu): both engines then keep
///   one bit per element (`kernels::mask::SignMask`) instead of the output, unless the output
///   is kept anyway, and hand the formula 1 or 0 for `y`.
/// - `vector V` (optional) names the vectorised form of the forward on whole slices,
///   `kernels::vector::VectorFn::V`, which the runtime's array kernel runs on the float
///   types that have one (`f32`: SIMD, within a few ulp of `f(x)`) over contiguous arrays;
///   other types (`f64`, duals), strided arrays and the scalar forms run `f(x)` itself.
/// - The formulas are Rust over `F: Float` (`F::one()`, `F::of(0.5)`, ...), compiled by the
///   runtime, where `stable_sigmoid` is in scope.
#[macro_export]
macro_rules! for_each_unary {
    ($callback:path) => {
        $callback! {
            /// `eˣ`.
            Exp exp (exp_grad, exp_scalar, exp_grad_scalar, EXP_SAVES) forms(float), domain all,
                forward |x| x.exp(), vector Exp, saves Output, derivative |y| y;
            /// Natural logarithm.
            Ln ln (ln_grad, ln_scalar, ln_grad_scalar, LN_SAVES) forms(float), domain positive,
                forward |x| x.ln(), saves Input, derivative |x| x.recip();
            /// Square root.
            Sqrt sqrt (sqrt_grad, sqrt_scalar, sqrt_grad_scalar, SQRT_SAVES) forms(float), domain positive,
                forward |x| x.sqrt(), saves Output, derivative |y| F::of(0.5) / y;
            /// Hyperbolic tangent.
            Tanh tanh (tanh_grad, tanh_scalar, tanh_grad_scalar, TANH_SAVES) forms(ext, function, float), domain all,
                forward |x| x.tanh(), vector Tanh, saves Output, derivative |y| F::one() - y * y;
            /// Sine.
            Sin sin (sin_grad, sin_scalar, sin_grad_scalar, SIN_SAVES) forms(float), domain all,
                forward |x| x.sin(), saves Input, derivative |x| x.cos();
            /// Cosine.
            Cos cos (cos_grad, cos_scalar, cos_grad_scalar, COS_SAVES) forms(float), domain all,
                forward |x| x.cos(), saves Input, derivative |x| -x.sin();
            /// Absolute value; its derivative at 0 is taken as 0.
            Abs abs (abs_grad, abs_scalar, abs_grad_scalar, ABS_SAVES) forms(float), domain all,
                forward |x| x.abs(), saves Input,
                derivative |x| if x > F::zero() { F::one() } else if x < F::zero() { -F::one() } else { F::zero() };
            /// `1/x`.
            Recip recip (recip_grad, recip_scalar, recip_grad_scalar, RECIP_SAVES) forms(float), domain positive,
                forward |x| x.recip(), saves Output, derivative |y| -(y * y);
            /// `x²`.
            Square square (square_grad, square_scalar, square_grad_scalar, SQUARE_SAVES) forms(ext, function), domain all,
                forward |x| x * x, saves Input, derivative |x| x + x;
            /// `max(x, 0)`; its derivative at 0 is taken as 0, as in PyTorch.
            Relu relu (relu_grad, relu_scalar, relu_grad_scalar, RELU_SAVES) forms(ext, function), domain all,
                forward |x| if x > F::zero() { x } else { F::zero() }, saves OutputSign,
                derivative |y| if y > F::zero() { F::one() } else { F::zero() };
            /// The logistic function `1 / (1 + e⁻ˣ)`, stable at large `|x|`.
            Sigmoid sigmoid (sigmoid_grad, sigmoid_scalar, sigmoid_grad_scalar, SIGMOID_SAVES) forms(ext, function), domain all,
                forward |x| stable_sigmoid(x), vector Sigmoid, saves Output, derivative |y| y * (F::one() - y);
            /// `ln(1 + eˣ)`, a smooth relu, computed as `max(x, 0) + ln(1 + e^-|x|)` so that
            /// it neither overflows for large `x` nor loses its value for very negative `x`.
            Softplus softplus (softplus_grad, softplus_scalar, softplus_grad_scalar, SOFTPLUS_SAVES) forms(ext, function), domain all,
                forward |x| x.max(F::zero()) + (-x.abs()).exp().ln_1p(), saves Input,
                derivative |x| stable_sigmoid(x);
        }
    };
}
