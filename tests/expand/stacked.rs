///What `stacked_backward` needs from `stacked_forward`: the intermediates h_3 (parameters are borrowed, not copied).
#[allow(non_camel_case_types, dead_code)]
struct StackedContext<'__ctx> {
    x: &'__ctx Array2<f64>,
    w1: &'__ctx Array2<f64>,
    w2: &'__ctx Array2<f64>,
    h_3: ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix2>,
    c3__saved: LayerCallContext<f64>,
    c4__saved: LayerCallContext<f64>,
    y_4_dim: ::autodiff::ndarray::Ix2,
    __marker: ::core::marker::PhantomData<(&'__ctx (),)>,
}
impl<'__ctx> StackedContext<'__ctx> {
    /// Bytes of the arrays this context owns (saved intermediates; parameters are borrowed).
    #[allow(dead_code)]
    pub fn held_bytes(&self) -> usize {
        0 + self.h_3.len() * ::core::mem::size_of::<f64>() + self.c3__saved.held_bytes()
            + self.c4__saved.held_bytes()
    }
}
#[doc = concat!(
    "The forward half of `", stringify!(stacked_grad),
    "`: the value and the context its backward half reads."
)]
#[allow(clippy::all, unused_variables, unused_parens, non_snake_case)]
fn stacked_forward<'__ctx>(
    x: &'__ctx Array2<f64>,
    w1: &'__ctx Array2<f64>,
    w2: &'__ctx Array2<f64>,
) -> (f64, StackedContext<'__ctx>) {
    let (h_3, c3__saved) = layer_call_forward(x, w1);
    let (y_4, c4__saved) = layer_call_forward(&h_3, w2);
    let y_4_dim = (&y_4).raw_dim();
    let v5 = ::autodiff::runtime::kernels::reduce::sum(&y_4);
    ::core::mem::drop(y_4);
    let __value = v5;
    (
        __value,
        StackedContext {
            x,
            w1,
            w2,
            h_3,
            c3__saved,
            c4__saved,
            y_4_dim,
            __marker: ::core::marker::PhantomData,
        },
    )
}
#[doc = concat!(
    "The backward half of `", stringify!(stacked_grad),
    "`: the gradients, given the context and the output's adjoint `seed` (1 for the gradient)."
)]
#[allow(clippy::all, unused_variables, unused_parens, unused_mut, non_snake_case)]
fn stacked_backward<'__ctx>(
    ctx: StackedContext<'__ctx>,
    __seed: f64,
) -> (
    ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix2>,
    ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix2>,
) {
    let StackedContext { x, w1, w2, h_3, c3__saved, c4__saved, y_4_dim, .. } = ctx;
    let d_v5 = __seed;
    let d_y_4 = ::autodiff::runtime::kernels::reduce::sum_grad(d_v5, &y_4_dim);
    let (c4__g0, c4__g1) = layer_call_backward(c4__saved, &h_3, w2, d_y_4);
    let d_h_3 = c4__g0;
    let d_w2 = c4__g1;
    let (_, c3__g1) = layer_call_backward(c3__saved, x, w1, d_h_3);
    let d_w1 = c3__g1;
    (d_w1, d_w2)
}
///The value of `stacked` and its gradients with respect to (w1, w2), computed by generated static code. See `STACKED_GRAD_PLAN` and `stacked_grad_source()`.
#[allow(clippy::all)]
fn stacked_grad(
    x: &Array2<f64>,
    w1: &Array2<f64>,
    w2: &Array2<f64>,
) -> (
    f64,
    (
        ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix2>,
        ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix2>,
    ),
) {
    let (value, ctx) = stacked_forward(x, w1, w2);
    (value, stacked_backward(ctx, <f64 as ::autodiff::runtime::Float>::of(1.0)))
}
