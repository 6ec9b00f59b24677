//! The macro's side of the op table (`autodiff_primitives::for_each_op!`): each row's
//! backward program, expanded into the `GradCall`s of the static code. The tape expands the
//! same rows into its derivative rules (`autodiff-runtime/src/tape/table.rs`), so the two
//! engines share one VJP per op.

use proc_macro2::TokenStream;

use crate::ir::ValueId;
use crate::kernel::Kernel;
use crate::rules::{Form, GradArg, GradCall};

/// Binds a `keeps` entry: a value or shape entry to the value it is read from (`out`, the
/// op's output, or an input; an absent optional input, which no line then reads, stands as
/// the output), a constant entry to the next of the op's constant arguments.
macro_rules! keep_binding {
    (saved, $field:ident, (out), $consts:ident, $out:ident) => {
        let $field: ValueId = $out;
    };
    (saved, $field:ident, ($source:ident), $consts:ident, $out:ident) => {
        let $field: ValueId = $source.unwrap_or($out);
    };
    (dim, $field:ident, ($source:ident), $consts:ident, $out:ident) => {
        let $field: ValueId = $source.unwrap_or($out);
    };
    (dim4, $field:ident, ($source:ident), $consts:ident, $out:ident) => {
        let $field: ValueId = $source.unwrap_or($out);
    };
    ($kind:ident, $field:ident, (), $consts:ident, $out:ident) => {
        let $field: TokenStream = $consts.next().cloned().unwrap_or_default();
    };
}

/// One argument of a kernel call, as the static code passes it.
macro_rules! static_arg {
    (scalar, [g]) => {
        GradArg::GScalar
    };
    ($adjoint:ident, [g]) => {
        GradArg::G
    };
    ($adjoint:ident, [&g]) => {
        GradArg::GRef
    };
    ($adjoint:ident, [val $k:ident $(: $d:ident)?]) => {
        GradArg::Value($k)
    };
    ($adjoint:ident, [dim $k:ident]) => {
        GradArg::Dim($k)
    };
    ($adjoint:ident, [const $k:ident]) => {
        GradArg::Tokens($k.clone())
    };
    ($adjoint:ident, [ref $k:ident]) => {
        GradArg::Tokens($k.clone())
    };
}

/// A row's backward program as `GradCall`s, one per present input.
macro_rules! static_program {
    ($adjoint:ident, {
        $($target:ident = $module:ident :: $kernel:ident ($([$($arg:tt)*]),*) $(or $tmodule:ident :: $twin:ident)?;)*
    }) => {{
        let mut calls = Vec::new();
        $(
            if let Some(target) = $target {
                calls.push(GradCall {
                    target,
                    kernel: Some(Kernel::$kernel),
                    args: vec![$(static_arg!($adjoint, [$($arg)*])),*],
                    borrowing: None $(.or(Some(Kernel::$twin)))?,
                    yields: Form::Dense,
                    materialize: false,
                });
            }
        )*
        calls
    }};
}

/// One argument of a row's forward kernel.
#[derive(Clone, Debug)]
pub enum ForwardArg {
    /// An input, borrowed.
    Value(ValueId),
    /// An optional input, passed as `Option<&_>`.
    Optional(Option<ValueId>),
    /// A constant argument, as the user wrote it.
    Tokens(TokenStream),
}

/// One argument of a row's forward call, from the row's bindings.
macro_rules! forward_arg {
    ([in $k:ident]) => {
        ForwardArg::Value($k.unwrap_or(ValueId(0)))
    };
    ([opt $k:ident]) => {
        ForwardArg::Optional($k)
    };
    ([const $k:ident]) => {
        ForwardArg::Tokens($k.clone())
    };
}

macro_rules! macro_table {
    ($(
        $(#[$doc:meta])*
        $variant:ident $name:ident $written:literal ($($input:ident),*) -> $adjoint:ident
            forward $fmodule:ident :: $fkernel:ident ($([$($farg:tt)*]),*);
            keeps { $($field:ident : $kind:ident ($($source:ident)?)),* $(,)? }
            vjp $vjp:tt
            example $params:tt => $example:block;
    )*) => {
        /// An op of the table: one variant per row of `autodiff_primitives::for_each_op!`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum TableOp {
            $($(#[$doc])* $variant,)*
        }

        // `ALL`, `name` and `written` describe the table for its tests (the README must list
        // every row); the macro itself only runs the programs.
        #[cfg_attr(not(test), allow(dead_code))]
        impl TableOp {
            /// Every row, in the table's order.
            pub const ALL: &'static [TableOp] = &[$(TableOp::$variant),*];

            /// The op's name (as the tape's node listings show it).
            pub fn name(self) -> &'static str {
                match self {
                    $(TableOp::$variant => stringify!($name),)*
                }
            }

            /// How users write it, for the docs.
            pub fn written(self) -> &'static str {
                match self {
                    $(TableOp::$variant => $written,)*
                }
            }

            /// The row's forward kernel (module and function of `autodiff_runtime::kernels`) and
            /// its arguments, for the op's `inputs` and constant arguments as in `vjp`.
            #[allow(unused_variables, unused_mut)]
            pub fn forward(
                self,
                inputs: &[Option<ValueId>],
                out: ValueId,
                consts: &[TokenStream],
            ) -> ((&'static str, &'static str), Vec<ForwardArg>) {
                let mut consts = consts.iter();
                let mut inputs = inputs.iter().copied();
                match self {
                    $(TableOp::$variant => {
                        $(let $input: Option<ValueId> = inputs.next().flatten();)*
                        $(keep_binding!($kind, $field, ($($source)?), consts, out);)*
                        (
                            (stringify!($fmodule), stringify!($fkernel)),
                            vec![$(forward_arg!([$($farg)*])),*],
                        )
                    })*
                }
            }

            /// The row's backward program: the adjoint contribution of each present input
            /// (`inputs`, in the row's order; `None` for an absent optional input), given the
            /// op's output `out` and its constant arguments in the order users write them.
            #[allow(unused_variables, unused_mut)]
            pub fn vjp(self, inputs: &[Option<ValueId>], out: ValueId, consts: &[TokenStream]) -> Vec<GradCall> {
                let mut consts = consts.iter();
                let mut inputs = inputs.iter().copied();
                match self {
                    $(TableOp::$variant => {
                        $(let $input: Option<ValueId> = inputs.next().flatten();)*
                        $(keep_binding!($kind, $field, ($($source)?), consts, out);)*
                        static_program!($adjoint, $vjp)
                    })*
                }
            }
        }
    };
}

autodiff_primitives::for_each_op!(macro_table);

#[cfg(test)]
mod tests {
    use super::TableOp;

    /// The README's list of ops is checked against the table: every row, as users write it.
    #[test]
    fn the_readme_lists_every_op_of_the_table() {
        let readme = include_str!("../../README.md");
        for op in TableOp::ALL {
            let row = format!("| `{}` | {} |", op.written(), op.name());
            assert!(readme.contains(&row), "README.md lacks the table row `{row}`");
        }
    }
}
