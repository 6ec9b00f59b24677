///What `recurrent_backward` needs from `recurrent_forward`: the intermediates h_4 (parameters are borrowed, not copied).
#[allow(non_camel_case_types, dead_code)]
struct RecurrentContext<'__ctx> {
    h0: &'__ctx Array2<f64>,
    w: &'__ctx Array2<f64>,
    xs: &'__ctx [Array2<f64>],
    h_4: ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix2>,
    l3__contexts: ::std::vec::Vec<
        (
            ::autodiff::ndarray::ArcArray<f64, ::autodiff::ndarray::Ix2>,
            ::autodiff::ndarray::ArcArray<f64, ::autodiff::ndarray::Ix2>,
            ::autodiff::ndarray::Ix2,
            ::autodiff::ndarray::Ix2,
        ),
    >,
    w_dim: ::autodiff::ndarray::Ix2,
    h_4_dim: ::autodiff::ndarray::Ix2,
    __marker: ::core::marker::PhantomData<(&'__ctx (),)>,
}
impl<'__ctx> RecurrentContext<'__ctx> {
    /// Bytes of the arrays this context owns (saved intermediates; parameters are borrowed).
    #[allow(dead_code)]
    pub fn held_bytes(&self) -> usize {
        0 + self.h_4.len() * ::core::mem::size_of::<f64>()
            + {
                let mut __shared = ::autodiff::runtime::alloc::SharedBuffers::default();
                let mut __bytes = ::autodiff::runtime::alloc::buffer_bytes(
                    &self.l3__contexts,
                );
                for __t in self.l3__contexts.iter() {
                    __bytes += 0 + __shared.count(&__t.0) + __shared.count(&__t.1);
                }
                __bytes
            }
    }
}
#[doc = concat!(
    "The forward half of `", stringify!(recurrent_grad),
    "`: the value and the context its backward half reads."
)]
#[allow(clippy::all, unused_variables, unused_parens, non_snake_case)]
fn recurrent_forward<'__ctx>(
    h0: &'__ctx Array2<f64>,
    w: &'__ctx Array2<f64>,
    xs: &'__ctx [Array2<f64>],
) -> (f64, RecurrentContext<'__ctx>) {
    let w_dim = w.raw_dim();
    let (l3__contexts, h_4) = {
        let mut l3__h_carried: ::autodiff::ndarray::ArcArray<
            f64,
            ::autodiff::ndarray::Ix2,
        > = ((h0).to_owned()).into_shared();
        let mut l3__contexts = ::std::vec::Vec::with_capacity(
            ::core::iter::ExactSizeIterator::len(&((0)..(xs.len()))),
        );
        let l3__count = ::core::iter::ExactSizeIterator::len(&((0)..(xs.len())));
        for __index1 in (0)..(xs.len()) {
            let l3__x_4_dim = (&xs[__index1]).raw_dim();
            let l3__v5 = ::autodiff::runtime::kernels::matmul::matmul(&l3__h_carried, w);
            let l3__v5_dim = (&l3__v5).raw_dim();
            let l3__v6 = ::autodiff::runtime::kernels::binary::add(
                &l3__v5,
                &xs[__index1],
            );
            ::core::mem::drop(l3__v5);
            let l3__h_7 = ::autodiff::runtime::kernels::unary::tanh(&l3__v6);
            ::core::mem::drop(l3__v6);
            let l3__next0 = l3__h_7.into_shared();
            let l3__h_7 = ::core::clone::Clone::clone(&l3__next0);
            l3__contexts
                .push((
                    if l3__contexts.is_empty() {
                        ::core::default::Default::default()
                    } else {
                        l3__h_carried
                    },
                    if l3__contexts.len() + 1 == l3__count {
                        ::core::default::Default::default()
                    } else {
                        l3__h_7
                    },
                    l3__x_4_dim,
                    l3__v5_dim,
                ));
            l3__h_carried = l3__next0;
        }
        (l3__contexts, l3__h_carried.into_owned())
    };
    let h_4_dim = (&h_4).raw_dim();
    let v5 = ::autodiff::runtime::kernels::reduce::sum(&h_4);
    let __value = v5;
    (
        __value,
        RecurrentContext {
            h0,
            w,
            xs,
            h_4,
            l3__contexts,
            w_dim,
            h_4_dim,
            __marker: ::core::marker::PhantomData,
        },
    )
}
#[doc = concat!(
    "The backward half of `", stringify!(recurrent_grad),
    "`: the gradients, given the context and the output's adjoint `seed` (1 for the gradient)."
)]
#[allow(clippy::all, unused_variables, unused_parens, unused_mut, non_snake_case)]
fn recurrent_backward<'__ctx>(
    ctx: RecurrentContext<'__ctx>,
    __seed: f64,
) -> (
    ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix2>,
    ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix2>,
    ::std::vec::Vec<::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix2>>,
) {
    let RecurrentContext { h0, w, xs, h_4, l3__contexts, w_dim, h_4_dim, .. } = ctx;
    let d_v5 = __seed;
    let mut d_xs: ::std::vec::Vec<::core::option::Option<_>> = xs
        .iter()
        .map(|_| ::core::option::Option::None)
        .collect();
    let d_h_4 = ::autodiff::runtime::kernels::reduce::sum_grad(d_v5, &h_4_dim);
    let mut l3__d_carried0 = d_h_4;
    let mut l3__d_captured2: ::core::option::Option<
        ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix2>,
    > = ::core::option::Option::None;
    let l3__count = l3__contexts.len();
    for (l3__position, (__index1, (l3__h_carried, l3__h_7, l3__x_4_dim, l3__v5_dim))) in ((0)..(xs
        .len()))
        .zip(l3__contexts)
        .enumerate()
        .rev()
    {
        let l3__h_carried = if l3__position == 0 {
            (h0).to_owned().into_shared()
        } else {
            l3__h_carried
        };
        let l3__h_7 = if l3__position + 1 == l3__count {
            (&h_4).to_owned().into_shared()
        } else {
            l3__h_7
        };
        let l3__seed0 = l3__d_carried0;
        let (l3__grad0,) = {
            let d_l3__h_7 = l3__seed0;
            let d_l3__v6 = ::autodiff::runtime::kernels::unary::tanh_grad(
                d_l3__h_7,
                &l3__h_7,
            );
            ::core::mem::drop(l3__h_7);
            let d_l3__v5 = ::autodiff::runtime::kernels::binary::add_grad_lhs(
                d_l3__v6.clone(),
                &l3__v5_dim,
            );
            let d_l3__x_4 = ::autodiff::runtime::kernels::binary::add_grad_rhs(
                d_l3__v6,
                &l3__x_4_dim,
            );
            let d_l3__h_carried = ::autodiff::runtime::kernels::matmul::matmul_grad_lhs(
                &d_l3__v5,
                w,
            );
            match l3__d_captured2.as_mut() {
                ::core::option::Option::Some(__acc) => {
                    ::autodiff::runtime::kernels::matmul::matmul_grad_rhs_acc(
                        (__acc),
                        &l3__h_carried,
                        &d_l3__v5,
                    );
                }
                ::core::option::Option::None => {
                    l3__d_captured2 = ::core::option::Option::Some(
                        ::autodiff::runtime::kernels::matmul::matmul_grad_rhs(
                            &l3__h_carried,
                            &d_l3__v5,
                        ),
                    );
                }
            }
            ::core::mem::drop(d_l3__v5);
            ::autodiff::runtime::kernels::binary::accumulate_slot(
                &mut d_xs[__index1],
                d_l3__x_4,
            );
            (d_l3__h_carried,)
        };
        l3__d_carried0 = l3__grad0;
    }
    let l3__result0 = l3__d_carried0;
    let l3__result1 = l3__d_captured2
        .unwrap_or_else(|| ::autodiff::ndarray::Array::zeros(w_dim.clone()));
    let d_h0 = l3__result0;
    let d_w = l3__result1;
    (d_h0, d_w, ::autodiff::runtime::kernels::binary::slots_or_zeros(d_xs, xs))
}
///The value of `recurrent` and its gradients with respect to (h0, w, xs), computed by generated static code. See `RECURRENT_GRAD_PLAN` and `recurrent_grad_source()`.
#[allow(clippy::all)]
fn recurrent_grad(
    h0: &Array2<f64>,
    w: &Array2<f64>,
    xs: &[Array2<f64>],
) -> (
    f64,
    (
        ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix2>,
        ::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix2>,
        ::std::vec::Vec<::autodiff::ndarray::Array<f64, ::autodiff::ndarray::Ix2>>,
    ),
) {
    let (value, ctx) = recurrent_forward(h0, w, xs);
    (value, recurrent_backward(ctx, <f64 as ::autodiff::runtime::Float>::of(1.0)))
}
