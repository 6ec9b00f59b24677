mod model {
    use autodiff::prelude::*;

    #[differentiate]
    pub fn loss<F: Float>(x: &Array1<F>, scale: F, labels: &[usize]) -> F
    where
        F: Copy,
    {
        let y = x * scale;
        y.sum() + F::of_usize(labels.len())
    }
}

fn main() {
    use autodiff::ndarray::array;
    let x = array![1.0f32, 2.0];
    let (_, (dx, ds)) = model::loss_grad(&x, 2.0, &[1, 2]);
    let _: (autodiff::ndarray::Array1<f32>, f32) = (dx, ds);
    let _ = model::LOSS_GRAD_PLAN;
    let _ = model::loss_grad_source();
}
