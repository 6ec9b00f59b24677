//! The op table, walked: every row of `autodiff_primitives::for_each_op` brings a small
//! function of the subset built around its op (its `example`), which becomes here, at
//! compile time, a `#[differentiate]` function and two `#[test]`s: the three-way check
//! (static code, tape, central finite differences in f64), and a check that the tape
//! records the row's own op (so the example exercises the rule it stands for). A new row is
//! tested without writing a test.

mod common;

use autodiff::prelude::*;
use common::{rng, uniform};

/// Inputs in a row's test domain: `all` draws both signs, `positive` stays in `[0.5, 2)`.
fn points<Sh: autodiff::ndarray::IntoDimension>(domain: &str, seed: u64, shape: Sh) -> Array<f64, Sh::Dim>
where
    Sh::Dim: autodiff::ndarray::Dimension,
{
    let (lo, hi) = if domain == "positive" { (0.5, 2.0) } else { (-2.0, 2.0) };
    uniform(&mut rng(seed), shape, lo, hi)
}

macro_rules! op_tests {
    ($(
        $(#[$doc:meta])*
        $variant:ident $name:ident $written:literal $inputs:tt -> $adjoint:ident
            forward $fmodule:ident :: $fkernel:ident ($([$($farg:tt)*]),*) $(keeping $kmodule:ident :: $kkernel:ident)?;
            keeps $keeps:tt
            vjp $vjp:tt
            example ($($param:ident : $ty:ident $shape:tt $domain:ident),*) => $example:block;
    )*) => {$(
        mod $name {
            use super::*;

            #[differentiate]
            fn example($($param: &$ty<f64>),*) -> f64 $example

            #[test]
            fn checked_three_ways() {
                let mut seed = 0;
                $(
                    seed += 1;
                    let $param = points(stringify!($domain), seed, $shape);
                )*
                autodiff::check!(example, $(&$param),*);
            }

            #[test]
            fn the_tape_records_the_row() {
                let mut seed = 0;
                $(
                    seed += 1;
                    let $param = points(stringify!($domain), seed, $shape);
                )*
                let tape = Tape::new();
                $(let $param = tape.param(&$param);)*
                let _ = example_on_tape($(&$param),*);
                let ops: Vec<&str> = tape.nodes().iter().map(|node| node.op).collect();
                assert!(
                    ops.contains(&stringify!($name)),
                    "the example of `{}` records {ops:?}, not `{}`",
                    $written,
                    stringify!($name)
                );
            }
        }
    )*};
}

autodiff_primitives::for_each_op!(op_tests);
