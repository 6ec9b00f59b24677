use autodiff::prelude::*;

// `+= -= *= /=` rebind a `let mut` local; `%=` has no derivative rule.
#[differentiate]
fn f(x: f64) -> f64 {
    let mut y = x * 2.0;
    y %= x;
    y
}

fn main() {}
