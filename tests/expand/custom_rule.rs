///What `__softsign_backward` needs from `__softsign_forward`: the intermediates v1 (parameters are borrowed, not copied).
#[allow(non_camel_case_types, dead_code)]
struct SoftsignContext<'__ctx> {
    x: &'__ctx Array1<f64>,
    v1: ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix1>,
    __marker: ::core::marker::PhantomData<(&'__ctx (),)>,
}
impl<'__ctx> SoftsignContext<'__ctx> {
    /// Bytes of the arrays this context owns (saved intermediates; parameters are borrowed).
    #[allow(dead_code)]
    pub fn held_bytes(&self) -> usize {
        0 + self.v1.len() * ::core::mem::size_of::<f64>()
    }
}
#[doc = concat!(
    "The forward half of `", stringify!(softsign_grad),
    "`: the value and the context its backward half reads."
)]
#[allow(clippy::all, unused_variables, unused_parens, non_snake_case)]
fn __softsign_forward<'__ctx>(
    x: &'__ctx Array1<f64>,
) -> (
    ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix1>,
    SoftsignContext<'__ctx>,
) {
    let v1 = softsign(x);
    let __value = (&v1).to_owned();
    (
        __value,
        SoftsignContext {
            x,
            v1,
            __marker: ::core::marker::PhantomData,
        },
    )
}
#[doc = concat!(
    "The backward half of `", stringify!(softsign_grad),
    "`: the gradients, given the context and the output's adjoint `seed` (1 for the gradient)."
)]
#[allow(clippy::all, unused_variables, unused_parens, unused_mut, non_snake_case)]
fn __softsign_backward<'__ctx>(
    ctx: SoftsignContext<'__ctx>,
    __seed: ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix1>,
) -> (::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix1>,) {
    let SoftsignContext { x, v1, .. } = ctx;
    let d_v1 = __seed;
    let r1__g0 = softsign_backward(x, &v1, d_v1);
    let d_x = r1__g0;
    (d_x,)
}
///The value of `softsign` (an array) and the vector-Jacobian products of `seed` (the output's adjoint, shaped like it) with respect to (x), computed by generated static code.
#[allow(clippy::all)]
fn softsign_vjp(
    x: &Array1<f64>,
    seed: ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix1>,
) -> (
    ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix1>,
    (::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix1>,),
) {
    let (value, ctx) = __softsign_forward(x);
    (value, __softsign_backward(ctx, seed))
}
