///What `smooth_backward` needs from `smooth_forward`: the intermediates (none) (parameters are borrowed, not copied).
#[allow(non_camel_case_types, dead_code)]
struct SmoothContext<'__ctx, F: Float> {
    x: &'__ctx Array1<F>,
    __marker: ::core::marker::PhantomData<(&'__ctx (), fn() -> F)>,
}
impl<'__ctx, F: Float> SmoothContext<'__ctx, F> {
    /// Bytes of the arrays this context owns (saved intermediates; parameters are borrowed).
    #[allow(dead_code)]
    pub fn held_bytes(&self) -> usize {
        0
    }
}
#[doc = concat!(
    "The forward half of `", stringify!(smooth_grad),
    "`: the value and the context its backward half reads."
)]
#[allow(clippy::all, unused_variables, unused_parens, non_snake_case)]
fn smooth_forward<'__ctx, F: Float>(
    x: &'__ctx Array1<F>,
) -> (F, SmoothContext<'__ctx, F>) {
    let v1 = (x).mapv(|v| (v * ::autodiff::runtime::kernels::unary::sin_scalar(v)));
    let v2 = ::autodiff::runtime::kernels::reduce::sum(&v1);
    ::core::mem::drop(v1);
    let __value = v2;
    (
        __value,
        SmoothContext {
            x,
            __marker: ::core::marker::PhantomData,
        },
    )
}
#[doc = concat!(
    "The backward half of `", stringify!(smooth_grad),
    "`: the gradients, given the context and the output's adjoint `seed` (1 for the gradient)."
)]
#[allow(clippy::all, unused_variables, unused_parens, unused_mut, non_snake_case)]
fn smooth_backward<'__ctx, F: Float>(
    ctx: SmoothContext<'__ctx, F>,
    __seed: F,
) -> (::autodiff::ndarray::Array<F, ::autodiff::ndarray::Ix1>,) {
    let SmoothContext { x, .. } = ctx;
    let d_v2 = __seed;
    let d_v1 = d_v2;
    let d_x = ::autodiff::runtime::kernels::fused::fill_chain1(
        d_v1,
        x,
        (|__g, __s0| ::autodiff::runtime::kernels::unary::map_grad_scalar(
            __g,
            __s0,
            |v| {
                (::autodiff::runtime::kernels::unary::sin_scalar(v)
                    + (::autodiff::runtime::kernels::unary::sin_grad_scalar(
                        ::autodiff::runtime::kernels::unary::one_like(v),
                        v,
                    ) * v))
            },
        )),
    );
    (d_x,)
}
///The value of `smooth` and its gradients with respect to (x), computed by generated static code. See `SMOOTH_GRAD_PLAN` and `smooth_grad_source()`.
#[allow(clippy::all)]
fn smooth_grad<F: Float>(
    x: &Array1<F>,
) -> (F, (::autodiff::ndarray::Array<F, ::autodiff::ndarray::Ix1>,)) {
    let (value, ctx) = smooth_forward::<F>(x);
    (value, smooth_backward::<F>(ctx, <F as ::autodiff::runtime::Float>::of(1.0)))
}
