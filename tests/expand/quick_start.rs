///What `quick_start_backward` needs from `quick_start_forward`: the intermediates h_5 (parameters are borrowed, not copied).
#[allow(non_camel_case_types, dead_code)]
struct QuickStartContext<'__ctx> {
    x: &'__ctx Array2<f64>,
    w: &'__ctx Array2<f64>,
    h_5: ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix2>,
    b_dim: ::autodiff::ndarray::Ix1,
    v3_dim: ::autodiff::ndarray::Ix2,
    __marker: ::core::marker::PhantomData<(&'__ctx (),)>,
}
impl<'__ctx> QuickStartContext<'__ctx> {
    /// Bytes of the arrays this context owns (saved intermediates; parameters are borrowed).
    #[allow(dead_code)]
    pub fn held_bytes(&self) -> usize {
        0 + self.h_5.len() * ::core::mem::size_of::<f64>()
    }
}
#[doc = concat!(
    "The forward half of `", stringify!(quick_start_grad),
    "`: the value and the context its backward half reads."
)]
#[allow(clippy::all, unused_variables, unused_parens, non_snake_case)]
fn quick_start_forward<'__ctx>(
    x: &'__ctx Array2<f64>,
    w: &'__ctx Array2<f64>,
    b: &'__ctx Array1<f64>,
) -> (f64, QuickStartContext<'__ctx>) {
    let b_dim = b.raw_dim();
    let v3 = ::autodiff::runtime::kernels::matmul::matmul(x, w);
    let v3_dim = (&v3).raw_dim();
    let v4 = ::autodiff::runtime::kernels::binary::add(&v3, b);
    ::core::mem::drop(v3);
    let h_5 = ::autodiff::runtime::kernels::unary::tanh(&v4);
    ::core::mem::drop(v4);
    let v6 = ::autodiff::runtime::kernels::binary::mul(&h_5, &h_5);
    let v7 = ::autodiff::runtime::kernels::reduce::sum(&v6);
    ::core::mem::drop(v6);
    let v9 = v7 / (2.0);
    let __value = v9;
    (
        __value,
        QuickStartContext {
            x,
            w,
            h_5,
            b_dim,
            v3_dim,
            __marker: ::core::marker::PhantomData,
        },
    )
}
#[doc = concat!(
    "The backward half of `", stringify!(quick_start_grad),
    "`: the gradients, given the context and the output's adjoint `seed` (1 for the gradient)."
)]
#[allow(clippy::all, unused_variables, unused_parens, unused_mut, non_snake_case)]
fn quick_start_backward<'__ctx>(
    ctx: QuickStartContext<'__ctx>,
    __seed: f64,
) -> (
    ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix2>,
    ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix2>,
    ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix1>,
) {
    let QuickStartContext { x, w, h_5, b_dim, v3_dim, .. } = ctx;
    let d_v9 = __seed;
    let d_v7 = ::autodiff::runtime::kernels::binary::div_grad_lhs_scalar(d_v9, (2.0));
    let d_v6 = d_v7;
    let d_v4 = ::autodiff::runtime::kernels::fused::fill_chain2(
        d_v6,
        &h_5,
        &h_5,
        (|__g, __s0, __s1| ::autodiff::runtime::kernels::unary::tanh_grad_scalar(
            ::autodiff::runtime::kernels::unary::square_grad_scalar(__g, __s0),
            __s1,
        )),
    );
    ::core::mem::drop(h_5);
    let d_v3 = ::autodiff::runtime::kernels::binary::add_grad_lhs(d_v4.clone(), &v3_dim);
    let d_b = ::autodiff::runtime::kernels::binary::add_grad_rhs(d_v4, &b_dim);
    let d_x = ::autodiff::runtime::kernels::matmul::matmul_grad_lhs(&d_v3, w);
    let d_w = ::autodiff::runtime::kernels::matmul::matmul_grad_rhs(x, &d_v3);
    ::core::mem::drop(d_v3);
    (d_x, d_w, d_b)
}
///The value of `quick_start` and its gradients with respect to (x, w, b), computed by generated static code. See `QUICK_START_GRAD_PLAN` and `quick_start_grad_source()`.
#[allow(clippy::all)]
fn quick_start_grad(
    x: &Array2<f64>,
    w: &Array2<f64>,
    b: &Array1<f64>,
) -> (
    f64,
    (
        ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix2>,
        ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix2>,
        ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix1>,
    ),
) {
    let (value, ctx) = quick_start_forward(x, w, b);
    (value, quick_start_backward(ctx, <f64 as ::autodiff::runtime::Float>::of(1.0)))
}
