//! The primitive table, walked: every row of `autodiff_primitives::for_each_unary` and
//! `for_each_binary` becomes, at compile time, a module of `#[differentiate]` functions
//! (one per form users may write: array method, prelude function, float method, inside
//! `mapv`) and one `#[test]` per function, each checked three ways (static code, tape,
//! central finite differences in f64). A new row is tested without writing a test.

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

macro_rules! unary_tests {
    ($(
        $(#[$doc:meta])*
        $variant:ident $name:ident ($grad:ident, $scalar:ident, $grad_scalar:ident, $saves_const:ident)
            forms($($form:ident),*), domain $domain:ident,
            forward |$x:ident| $forward:expr, $(vector $vector:ident,)?
            saves $saves:ident,
            derivative |$s:ident| $derivative:expr;
    )*) => {$(
        mod $name {
            use super::*;

            /// The array method, composed so that the output's adjoint is not all ones.
            #[differentiate]
            fn array_method(x: &Array2<f64>, w: &Array2<f64>) -> f64 {
                (&x.$name() * w).sum()
            }

            #[test]
            fn as_an_array_method() {
                let domain = stringify!($domain);
                autodiff::check!(array_method, &points(domain, 1, (3, 4)), &points("all", 2, (3, 4)));
            }

            autodiff_primitives::if_form! { function in ($($form),*) =>
                #[differentiate]
                fn prelude_function(x: &Array1<f64>) -> f64 {
                    $name(&x).mapv(|v| v * v).sum()
                }

                #[test]
                fn as_a_prelude_function() {
                    autodiff::check!(prelude_function, &points(stringify!($domain), 3, 5));
                }
            }

            // Every row is a float method: natively, or through the prelude's `FloatExt`.
            mod float_forms {
                use super::*;

                #[differentiate]
                fn float_method(x: &Array1<f64>, s: f64) -> f64 {
                    x.sum() * s.$name()
                }

                #[differentiate]
                fn in_mapv(x: &Array1<f64>) -> f64 {
                    x.mapv(|v| v.$name() * v).sum()
                }

                #[test]
                fn as_a_float_method() {
                    let s = points(stringify!($domain), 4, 1)[0];
                    autodiff::check!(float_method, &points("all", 5, 3), s);
                }

                #[test]
                fn inside_mapv() {
                    autodiff::check!(in_mapv, &points(stringify!($domain), 6, 5));
                }
            }
        }
    )*};
}

autodiff_primitives::for_each_unary!(unary_tests);

macro_rules! pairwise_tests {
    ($(
        $(#[$doc:meta])*
        $variant:ident $name:ident ($grad_lhs:ident, $grad_rhs:ident) domain $domain:ident,
            forward |$a:ident, $b:ident| $forward:expr,
            derivative_lhs |$la:ident, $lb:ident| $lhs:expr,
            derivative_rhs |$ra:ident, $rb:ident| $rhs:expr;
    )*) => {$(
        mod $name {
            use super::*;

            #[differentiate]
            fn same_shapes(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
                $name(&a, &b).mapv(|v| v * v).sum()
            }

            /// A row vector broadcast over the rows of a matrix: its adjoint sums over them.
            #[differentiate]
            fn broadcast(a: &Array2<f64>, b: &Array1<f64>) -> f64 {
                ($name(&a, &b) * a).sum()
            }

            #[test]
            fn with_equal_shapes() {
                let domain = stringify!($domain);
                autodiff::check!(same_shapes, &points(domain, 7, (3, 4)), &points(domain, 8, (3, 4)));
            }

            #[test]
            fn with_broadcasting() {
                let domain = stringify!($domain);
                autodiff::check!(broadcast, &points(domain, 9, (4, 3)), &points(domain, 10, 3));
            }
        }
    )*};
}

autodiff_primitives::for_each_binary!(pairwise_tests);

// The names of the rows (the callbacks are expanded in item position).
macro_rules! unary_names {
    ($(
        $(#[$doc:meta])*
        $variant:ident $name:ident ($($kernel:ident),*) forms($($form:ident),*), domain $domain:ident,
            forward |$x:ident| $forward:expr, $(vector $vector:ident,)? saves $saves:ident, derivative |$s:ident| $derivative:expr;
    )*) => {
        const UNARY_NAMES: &[&str] = &[$(stringify!($name)),*];
    };
}
autodiff_primitives::for_each_unary!(unary_names);

macro_rules! pairwise_names {
    ($(
        $(#[$doc:meta])*
        $variant:ident $name:ident ($($kernel:ident),*) domain $domain:ident,
            forward |$a:ident, $b:ident| $forward:expr,
            derivative_lhs |$la:ident, $lb:ident| $lhs:expr,
            derivative_rhs |$ra:ident, $rb:ident| $rhs:expr;
    )*) => {
        const PAIRWISE_NAMES: &[&str] = &[$(stringify!($name)),*];
    };
}
autodiff_primitives::for_each_binary!(pairwise_names);

/// The README's list of the supported subset names every row of the table.
#[test]
fn readme_lists_every_primitive() {
    let readme = include_str!("../README.md");
    let start = readme
        .find("## The supported subset")
        .expect("the README has a subset section");
    let end = start + readme[start..].find("\n## ").expect("a section follows it");
    let subset = &readme[start..end];
    let missing: Vec<&&str> = UNARY_NAMES
        .iter()
        .chain(PAIRWISE_NAMES)
        .filter(|name| {
            !subset
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .any(|word| word == **name)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "the README's subset section does not mention {missing:?}"
    );
}
