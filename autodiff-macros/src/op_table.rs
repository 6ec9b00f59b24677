//! The macro's side of the op table (`autodiff_primitives::for_each_op!`): each row's
//! forward call, the aux residual it keeps (its type and its bytes, for the context and the
//! manifest), and its backward program, expanded into the `GradCall`s of the static code.
//! The tape expands the same rows into its derivative rules
//! (`autodiff-runtime/src/tape/table.rs`), so the two engines share one VJP per op.

use proc_macro2::TokenStream;

use crate::ir::ValueId;
use crate::kernel::Kernel;
use crate::rules::{Form, GradArg, GradCall, SharedStep};

/// Binds a `keeps` entry: a value or shape entry to the value it is read from (`out`, the
/// op's output, or an input; an absent optional input, which no line then reads, stands as
/// the output), an aux entry to the output (the statement whose forward returns it), a
/// constant entry to the next of the op's constant arguments.
macro_rules! keep_binding {
    (saved, $field:ident, (out), $consts:ident, $out:ident) => {
        let $field: ValueId = $out;
    };
    (saved, $field:ident, ($source:ident), $consts:ident, $out:ident) => {
        let $field: ValueId = $source.unwrap_or($out);
    };
    (aux, $field:ident, $source:tt, $consts:ident, $out:ident) => {
        let $field: ValueId = $out;
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
    ($adjoint:ident, [aux $k:ident]) => {
        GradArg::Aux($k)
    };
    ($adjoint:ident, [step $k:ident]) => {
        GradArg::Step(Box::new($k.clone()))
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

/// A row's backward program as `GradCall`s, one per present input (a line's `else` as its
/// fallback), reading its shared steps as `GradArg::Step`s.
macro_rules! static_program {
    ($adjoint:ident, $out:ident, $vjp:tt) => {
        autodiff_primitives::vjp_parts!(static_program!(@parts $adjoint, $out,) $vjp)
    };
    (@parts $adjoint:ident, $out:ident,
        [$(($step:ident = $smodule:ident :: $skernel:ident ($([$($sarg:tt)*]),*) $(rounded $rmodule:ident :: $rkernel:ident)?))*]
        { $($target:ident = $module:ident :: $kernel:ident ($([$($arg:tt)*]),*) $(or $tmodule:ident :: $twin:ident)? $(else $emodule:ident :: $ekernel:ident ($([$($earg:tt)*]),*))?;)* }
        $vjp:tt
    ) => {{
        $(
            let $step = SharedStep {
                stmt: $out,
                name: stringify!($step),
                kernel: Kernel::$skernel,
                rounded: None $(.or(Some(Kernel::$rkernel)))?,
                args: vec![$(static_arg!($adjoint, [$($sarg)*])),*],
            };
        )*
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
                    fallback: None $(.or(Some(Box::new(GradCall {
                        target,
                        kernel: Some(Kernel::$ekernel),
                        args: vec![$(static_arg!($adjoint, [$($earg)*])),*],
                        borrowing: None,
                        yields: Form::Dense,
                        materialize: false,
                        fallback: None,
                    }))))?,
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

/// A row's forward call: its kernel and arguments, and the twin returning the aux residual
/// too.
#[derive(Clone, Debug)]
pub struct ForwardCall {
    /// Module and function of `autodiff_runtime::kernels`.
    pub kernel: (&'static str, &'static str),
    /// The `keeping` twin (same arguments, returns `(value, aux)`), if the row keeps an aux.
    pub keeping: Option<(&'static str, &'static str)>,
    pub args: Vec<ForwardArg>,
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

/// The aux residual a row keeps: what its `keeping` forward kernel returns besides the value.
#[derive(Clone, Debug)]
pub struct Aux {
    /// The `keeps` entry's name (`stats`), which names the residual in code and plans.
    pub field: &'static str,
    /// Its type: module and name in `autodiff_runtime::kernels`, and whether it is generic
    /// over the float type (`BatchStats<F>`).
    pub ty: (&'static str, &'static str, bool),
    /// Its heap bytes, the product of these.
    pub size: Vec<SizeFactor>,
}

/// A factor of an aux residual's bytes, as the row states them.
#[derive(Clone, Debug)]
pub enum SizeFactor {
    /// An integer.
    Int(usize),
    /// The length of axis `k` of an input.
    Axis(ValueId, usize),
    /// The op's output's element count.
    Out,
    /// The bytes of one float.
    Float,
    /// A function of `autodiff_runtime::kernels` (module and name) of one of the op's
    /// constants (as the user wrote it): bytes per element.
    Function {
        module: &'static str,
        function: &'static str,
        arg: TokenStream,
    },
}

/// The factors of an aux entry's size (`2 * x[1] * float`), as a `Vec<SizeFactor>`.
macro_rules! size_factors {
    ($out:ident; $($size:tt)*) => {
        size_factors!(@munch [] $out; $($size)*)
    };
    (@munch [$($done:expr),*] $out:ident; ) => {
        vec![$($done),*]
    };
    (@munch [$($done:expr),*] $out:ident; * $($rest:tt)*) => {
        size_factors!(@munch [$($done),*] $out; $($rest)*)
    };
    (@munch [$($done:expr),*] $out:ident; out $($rest:tt)*) => {
        size_factors!(@munch [$($done,)* SizeFactor::Out] $out; $($rest)*)
    };
    (@munch [$($done:expr),*] $out:ident; float $($rest:tt)*) => {
        size_factors!(@munch [$($done,)* SizeFactor::Float] $out; $($rest)*)
    };
    (@munch [$($done:expr),*] $out:ident; $module:ident :: $function:ident ($k:ident) $($rest:tt)*) => {
        size_factors!(@munch [$($done,)* SizeFactor::Function {
            module: stringify!($module),
            function: stringify!($function),
            arg: $k.clone(),
        }] $out; $($rest)*)
    };
    (@munch [$($done:expr),*] $out:ident; $input:ident [$axis:literal] $($rest:tt)*) => {
        size_factors!(@munch [$($done,)* SizeFactor::Axis($input.unwrap_or($out), $axis)] $out; $($rest)*)
    };
    (@munch [$($done:expr),*] $out:ident; $n:literal $($rest:tt)*) => {
        size_factors!(@munch [$($done,)* SizeFactor::Int($n)] $out; $($rest)*)
    };
}

/// A `keeps` entry as an [`Aux`], if it is one.
macro_rules! aux_entry {
    (aux, $field:ident, ($module:ident :: $ty:ident <$param:ident> ; $($size:tt)*), $out:ident) => {
        aux_entry!(@make $field, $module, $ty, true, $out; $($size)*)
    };
    (aux, $field:ident, ($module:ident :: $ty:ident ; $($size:tt)*), $out:ident) => {
        aux_entry!(@make $field, $module, $ty, false, $out; $($size)*)
    };
    (@make $field:ident, $module:ident, $ty:ident, $generic:expr, $out:ident; $($size:tt)*) => {
        Some(Aux {
            field: stringify!($field),
            ty: (stringify!($module), stringify!($ty), $generic),
            size: size_factors!($out; $($size)*),
        })
    };
    ($kind:ident, $field:ident, $source:tt, $out:ident) => {
        None
    };
}

/// 1 for an `aux` entry of a row's `keeps`, 0 for the others: [`macro_table!`] counts them.
macro_rules! aux_count {
    (aux) => {
        1
    };
    ($kind:ident) => {
        0
    };
}

macro_rules! macro_table {
    ($(
        $(#[$doc:meta])*
        $variant:ident $name:ident $written:literal ($($input:ident),*) -> $adjoint:ident
            forward $fmodule:ident :: $fkernel:ident ($([$($farg:tt)*]),*) $(keeping $kmodule:ident :: $kkernel:ident)?;
            keeps { $($field:ident : $kind:ident $source:tt),* $(,)? }
            vjp $vjp:tt
            example $params:tt => $example:block;
    )*) => {
        /// An op of the table: one variant per row of `autodiff_primitives::for_each_op!`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum TableOp {
            $($(#[$doc])* $variant,)*
        }

        // A row keeps at most one aux residual, which its `keeping` twin returns beside the
        // value: checked when the table is compiled, naming the row.
        $(
            const _: () = assert!(
                0 $(+ aux_count!($kind))* <= 1,
                concat!("op table row `", stringify!($name), "`: at most one `aux(..)` entry in `keeps` (the `keeping` twin returns one aux beside the value)")
            );
            const _: () = assert!(
                ((0 $(+ aux_count!($kind))*) > 0) == ((0 $(+ { let _ = stringify!($kkernel); 1 })?) > 0),
                concat!("op table row `", stringify!($name), "`: an `aux(..)` entry in `keeps` needs a `keeping` twin of the forward kernel, and a twin needs the aux it returns")
            );
        )*

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

            /// The row's forward kernel (module and function of `autodiff_runtime::kernels`),
            /// its `keeping` twin, and their arguments, for the op's `inputs` and constant
            /// arguments as in `vjp`.
            #[allow(unused_variables, unused_mut)]
            pub fn forward(self, inputs: &[Option<ValueId>], out: ValueId, consts: &[TokenStream]) -> ForwardCall {
                let mut consts = consts.iter();
                let mut inputs = inputs.iter().copied();
                match self {
                    $(TableOp::$variant => {
                        $(let $input: Option<ValueId> = inputs.next().flatten();)*
                        $(keep_binding!($kind, $field, $source, consts, out);)*
                        ForwardCall {
                            kernel: (stringify!($fmodule), stringify!($fkernel)),
                            keeping: None $(.or(Some((stringify!($kmodule), stringify!($kkernel)))))?,
                            args: vec![$(forward_arg!([$($farg)*])),*],
                        }
                    })*
                }
            }

            /// The aux residual the row keeps, if it keeps one, for the op's `inputs`, output
            /// `out` and constant arguments as in `vjp`.
            #[allow(unused_variables, unused_mut)]
            pub fn aux(self, inputs: &[Option<ValueId>], out: ValueId, consts: &[TokenStream]) -> Option<Aux> {
                let mut consts = consts.iter();
                let mut inputs = inputs.iter().copied();
                match self {
                    $(TableOp::$variant => {
                        $(let $input: Option<ValueId> = inputs.next().flatten();)*
                        $(keep_binding!($kind, $field, $source, consts, out);)*
                        None $(.or(aux_entry!($kind, $field, $source, out)))*
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
                        $(keep_binding!($kind, $field, $source, consts, out);)*
                        static_program!($adjoint, out, $vjp)
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
