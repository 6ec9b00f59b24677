///What `conv_block_backward` needs from `conv_block_forward`: the intermediates v5, v7 (sign bits), v6 (stats), v8 (argmax) (parameters are borrowed, not copied).
#[allow(non_camel_case_types, dead_code)]
struct ConvBlockContext<'__ctx> {
    x: &'__ctx Array4<f64>,
    gamma: &'__ctx Array1<f64>,
    v5: ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix4>,
    w_dim: ::autodiff::ndarray::Ix4,
    v8_dim: ::autodiff::ndarray::Ix4,
    v6_stats: ::autodiff::runtime::kernels::batch_norm::BatchStats<f64>,
    v8_argmax: ::autodiff::runtime::kernels::pool::WindowArgmax,
    v7_sign: ::autodiff::runtime::kernels::mask::SignMask<::autodiff::ndarray::Ix4>,
    __marker: ::core::marker::PhantomData<(&'__ctx (),)>,
}
impl<'__ctx> ConvBlockContext<'__ctx> {
    /// Bytes of the arrays this context owns (saved intermediates; parameters are borrowed).
    #[allow(dead_code)]
    pub fn held_bytes(&self) -> usize {
        0 + self.v5.len() * ::core::mem::size_of::<f64>() + self.v6_stats.bytes()
            + self.v8_argmax.bytes() + self.v7_sign.bytes()
    }
}
#[doc = concat!(
    "The forward half of `", stringify!(conv_block_grad),
    "`: the value and the context its backward half reads."
)]
#[allow(clippy::all, unused_variables, unused_parens, non_snake_case)]
fn conv_block_forward<'__ctx>(
    x: &'__ctx Array4<f64>,
    w: &'__ctx Array4<f64>,
    b: &'__ctx Array1<f64>,
    gamma: &'__ctx Array1<f64>,
    beta: &'__ctx Array1<f64>,
) -> (f64, ConvBlockContext<'__ctx>) {
    let w_dim = w.raw_dim();
    let v5 = ::autodiff::runtime::kernels::conv::conv2d(
        x,
        w,
        ::core::option::Option::Some(b),
        (1),
        (1),
    );
    let (v6, v6_stats) = ::autodiff::runtime::kernels::batch_norm::batch_norm_keeping(
        &v5,
        gamma,
        beta,
        (1e-5),
    );
    let v7 = ::autodiff::runtime::kernels::unary::relu(&v6);
    let v7_sign = ::autodiff::runtime::kernels::mask::SignMask::positive(&v7);
    ::core::mem::drop(v6);
    let (v8, v8_argmax) = ::autodiff::runtime::kernels::pool::max_pool2d_keeping(
        &v7,
        (2),
        (2),
    );
    let v8_dim = (&v8).raw_dim();
    ::core::mem::drop(v7);
    let v9 = ::autodiff::runtime::kernels::reduce::sum(&v8);
    ::core::mem::drop(v8);
    let __value = v9;
    (
        __value,
        ConvBlockContext {
            x,
            gamma,
            v5,
            w_dim,
            v8_dim,
            v6_stats,
            v8_argmax,
            v7_sign,
            __marker: ::core::marker::PhantomData,
        },
    )
}
#[doc = concat!(
    "The backward half of `", stringify!(conv_block_grad),
    "`: the gradients, given the context and the output's adjoint `seed` (1 for the gradient)."
)]
#[allow(clippy::all, unused_variables, unused_parens, unused_mut, non_snake_case)]
fn conv_block_backward<'__ctx>(
    ctx: ConvBlockContext<'__ctx>,
    __seed: f64,
) -> (
    ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix4>,
    ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix1>,
    ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix1>,
) {
    let ConvBlockContext {
        x,
        gamma,
        v5,
        w_dim,
        v8_dim,
        v6_stats,
        v8_argmax,
        v7_sign,
        ..
    } = ctx;
    let d_v9 = __seed;
    let d_v8 = d_v9;
    let d_v8 = ::autodiff::runtime::kernels::reduce::sum_grad(d_v8, &v8_dim);
    let d_v7 = ::autodiff::runtime::kernels::pool::max_pool2d_grad(&d_v8, &v8_argmax);
    ::core::mem::drop(d_v8);
    ::core::mem::drop(v8_argmax);
    let d_v6 = ::autodiff::runtime::kernels::mask::relu_grad_masked(d_v7, &v7_sign);
    ::core::mem::drop(v7_sign);
    let v6_sums = ::autodiff::runtime::kernels::batch_norm::batch_norm_sums(
        &d_v6,
        &v5,
        &v6_stats,
    );
    let d_gamma = ::autodiff::runtime::kernels::batch_norm::batch_norm_grad_gamma(
        &v6_sums,
    );
    let d_beta = ::autodiff::runtime::kernels::batch_norm::batch_norm_grad_beta(
        &v6_sums,
    );
    let d_v5 = ::autodiff::runtime::kernels::batch_norm::batch_norm_grad_input(
        d_v6,
        &v5,
        gamma,
        &v6_stats,
        &v6_sums,
    );
    ::core::mem::drop(v5);
    ::core::mem::drop(v6_stats);
    ::core::mem::drop(v6_sums);
    let d_w = ::autodiff::runtime::kernels::conv::conv2d_grad_weight(
        &d_v5,
        x,
        &w_dim,
        (1),
        (1),
    );
    ::core::mem::drop(d_v5);
    (d_w, d_gamma, d_beta)
}
///The value of `conv_block` and its gradients with respect to (w, gamma, beta), computed by generated static code. See `CONV_BLOCK_GRAD_PLAN` and `conv_block_grad_source()`.
#[allow(clippy::all)]
fn conv_block_grad(
    x: &Array4<f64>,
    w: &Array4<f64>,
    b: &Array1<f64>,
    gamma: &Array1<f64>,
    beta: &Array1<f64>,
) -> (
    f64,
    (
        ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix4>,
        ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix1>,
        ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix1>,
    ),
) {
    let (value, ctx) = conv_block_forward(x, w, b, gamma, beta);
    (value, conv_block_backward(ctx, <f64 as ::autodiff::runtime::Float>::of(1.0)))
}
