///What `classifier_backward` needs from `classifier_forward`: the intermediates h_7, v9 (parameters are borrowed, not copied).
#[allow(non_camel_case_types, dead_code)]
struct ClassifierContext<'__ctx> {
    x: &'__ctx Array2<f64>,
    w2: &'__ctx Array2<f64>,
    labels: &'__ctx [usize],
    h_7: ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix2>,
    v9: ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix2>,
    b1_dim: ::autodiff::ndarray::Ix1,
    b2_dim: ::autodiff::ndarray::Ix1,
    v5_dim: ::autodiff::ndarray::Ix2,
    v8_dim: ::autodiff::ndarray::Ix2,
    __marker: ::core::marker::PhantomData<(&'__ctx (),)>,
}
impl<'__ctx> ClassifierContext<'__ctx> {
    /// Bytes of the arrays this context owns (saved intermediates; parameters are borrowed).
    #[allow(dead_code)]
    pub fn held_bytes(&self) -> usize {
        0 + self.h_7.len() * ::core::mem::size_of::<f64>()
            + self.v9.len() * ::core::mem::size_of::<f64>()
    }
}
#[doc = concat!(
    "The forward half of `", stringify!(classifier_grad),
    "`: the value and the context its backward half reads."
)]
#[allow(clippy::all, unused_variables, unused_parens, non_snake_case)]
fn classifier_forward<'__ctx>(
    x: &'__ctx Array2<f64>,
    w1: &'__ctx Array2<f64>,
    b1: &'__ctx Array1<f64>,
    w2: &'__ctx Array2<f64>,
    b2: &'__ctx Array1<f64>,
    labels: &'__ctx [usize],
) -> (f64, ClassifierContext<'__ctx>) {
    let b1_dim = b1.raw_dim();
    let b2_dim = b2.raw_dim();
    let v5 = ::autodiff::runtime::kernels::matmul::matmul(x, w1);
    let v5_dim = (&v5).raw_dim();
    let v6 = ::autodiff::runtime::kernels::binary::add(&v5, b1);
    ::core::mem::drop(v5);
    let h_7 = ::autodiff::runtime::kernels::unary::relu(&v6);
    ::core::mem::drop(v6);
    let v8 = ::autodiff::runtime::kernels::matmul::matmul(&h_7, w2);
    let v8_dim = (&v8).raw_dim();
    let v9 = ::autodiff::runtime::kernels::binary::add(&v8, b2);
    ::core::mem::drop(v8);
    let v10 = ::autodiff::runtime::kernels::loss::cross_entropy(&v9, (labels));
    let __value = v10;
    (
        __value,
        ClassifierContext {
            x,
            w2,
            labels,
            h_7,
            v9,
            b1_dim,
            b2_dim,
            v5_dim,
            v8_dim,
            __marker: ::core::marker::PhantomData,
        },
    )
}
#[doc = concat!(
    "The backward half of `", stringify!(classifier_grad),
    "`: the gradients, given the context and the output's adjoint `seed` (1 for the gradient)."
)]
#[allow(clippy::all, unused_variables, unused_parens, unused_mut, non_snake_case)]
fn classifier_backward<'__ctx>(
    ctx: ClassifierContext<'__ctx>,
    __seed: f64,
) -> (
    ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix2>,
    ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix1>,
    ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix2>,
    ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix1>,
) {
    let ClassifierContext {
        x,
        w2,
        labels,
        h_7,
        v9,
        b1_dim,
        b2_dim,
        v5_dim,
        v8_dim,
        ..
    } = ctx;
    let d_v10 = __seed;
    let d_v9 = ::autodiff::runtime::kernels::loss::cross_entropy_grad(
        d_v10,
        &v9,
        (labels),
    );
    ::core::mem::drop(v9);
    let d_v8 = ::autodiff::runtime::kernels::binary::add_grad_lhs(d_v9.clone(), &v8_dim);
    let d_b2 = ::autodiff::runtime::kernels::binary::add_grad_rhs(d_v9, &b2_dim);
    let d_h_7 = ::autodiff::runtime::kernels::matmul::matmul_grad_lhs(&d_v8, w2);
    let d_w2 = ::autodiff::runtime::kernels::matmul::matmul_grad_rhs(&h_7, &d_v8);
    ::core::mem::drop(d_v8);
    let d_v6 = ::autodiff::runtime::kernels::unary::relu_grad(d_h_7, &h_7);
    ::core::mem::drop(h_7);
    let d_v5 = ::autodiff::runtime::kernels::binary::add_grad_lhs(d_v6.clone(), &v5_dim);
    let d_b1 = ::autodiff::runtime::kernels::binary::add_grad_rhs(d_v6, &b1_dim);
    let d_w1 = ::autodiff::runtime::kernels::matmul::matmul_grad_rhs(x, &d_v5);
    ::core::mem::drop(d_v5);
    (d_w1, d_b1, d_w2, d_b2)
}
///The value of `classifier` and its gradients with respect to (w1, b1, w2, b2), computed by generated static code. See `CLASSIFIER_GRAD_PLAN` and `classifier_grad_source()`.
#[allow(clippy::all)]
fn classifier_grad(
    x: &Array2<f64>,
    w1: &Array2<f64>,
    b1: &Array1<f64>,
    w2: &Array2<f64>,
    b2: &Array1<f64>,
    labels: &[usize],
) -> (
    f64,
    (
        ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix2>,
        ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix1>,
        ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix2>,
        ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix1>,
    ),
) {
    let (value, ctx) = classifier_forward(x, w1, b1, w2, b2, labels);
    (value, classifier_backward(ctx, <f64 as ::autodiff::runtime::Float>::of(1.0)))
}
