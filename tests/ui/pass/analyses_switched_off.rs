use autodiff::prelude::*;

/// A macro_rules! macro may write the function: its `$ty` fragments are read through.
macro_rules! loss {
    ($name:ident, $x:ident: $t:ty) => {
        #[differentiate(opt(fusion = false, seed = false))]
        fn $name($x: $t, w: &Array1<f64>) -> f64 {
            ($x * w).mapv(|v| v * v).sum()
        }
    };
}

loss!(f, x: &Array1<f64>);

fn main() {
    let (x, w) = (Array1::from_elem(3, 0.5), Array1::from_elem(3, 2.0));
    let (_, (dx, dw)) = f_grad(&x, &w);
    assert_eq!(dx, Array1::from_elem(3, 4.0));
    assert_eq!(dw, Array1::from_elem(3, 1.0));
}
