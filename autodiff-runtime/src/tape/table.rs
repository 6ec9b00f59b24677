//! The tape's side of the op table (`autodiff_primitives::for_each_op!`): one node variant
//! per row, holding what the row keeps, and its derivative rule, expanded from the row's
//! backward program. Nothing here is written per op: a new row is a new node and rule.

use ndarray::{ArrayD, Axis, Ix1, Ix2, Ix4, IxDyn};

use super::op::{fixed, needed, scalar_of, Emit, Saved};
use crate::kernels::{batch_norm, binary, conv, loss, matmul, pool, reduce, softmax, unary};
use crate::Float;

/// The Rust type a node holds for one `keeps` entry of a row.
macro_rules! keep_type {
    (saved, $a:lifetime, $f:ty) => { Option<Saved<$a, $f>> };
    (dim, $a:lifetime, $f:ty) => { IxDyn };
    (dim4, $a:lifetime, $f:ty) => { Ix4 };
    (axis, $a:lifetime, $f:ty) => { Axis };
    (usize, $a:lifetime, $f:ty) => { usize };
    (float, $a:lifetime, $f:ty) => { $f };
    (int, $a:lifetime, $f:ty) => { i32 };
    (labels, $a:lifetime, $f:ty) => { Box<[usize]> };
}

/// Puts a kept field in the next free slot of `$out` if it is a saved tensor (for memory
/// accounting; rows keep at most two).
macro_rules! push_saved {
    (saved, $field:ident, $out:ident, $next:ident) => {
        if let Some(saved) = $field {
            if $next < $out.len() {
                $out[$next] = Some(saved);
            }
            $next += 1;
        }
    };
    ($kind:ident, $field:ident, $out:ident, $next:ident) => {
        let _ = $field;
    };
}

/// Heap bytes a kept field holds besides saved tensors (copied labels).
macro_rules! extra_bytes {
    (labels, $field:ident) => {
        std::mem::size_of_val(&**$field)
    };
    ($kind:ident, $field:ident) => {{
        let _ = $field;
        0
    }};
}

/// Drops a saved tensor that no line whose input needs a gradient reads.
macro_rules! prune {
    (saved, $field:ident, $needs:ident, $inputs:tt, {
        $($target:ident = $module:ident :: $kernel:ident ($($arg:tt),*) $(or $tmodule:ident :: $twin:ident)?;)*
    }) => {
        let read = false $(|| ($needs[input_index!($inputs $target)] && reads!($field; $($arg)*)))*;
        if !read {
            *$field = None;
        }
    };
    ($kind:ident, $field:ident, $needs:ident, $inputs:tt, $vjp:tt) => {
        let _ = $field;
    };
}

/// Whether a line's arguments (`[val k]`, ...) read the kept field `$field`.
macro_rules! reads {
    ($field:ident; ) => { false };
    ($field:ident; [val $k:ident $(: $d:ident)?] $($rest:tt)*) => {
        crate::str_eq(stringify!($field), stringify!($k)) || reads!($field; $($rest)*)
    };
    ($field:ident; [$($arg:tt)*] $($rest:tt)*) => { reads!($field; $($rest)*) };
}

/// The position of input `$target` among `$inputs`: a local enum whose variants are the
/// inputs' names, so the position is a constant the compiler computes.
macro_rules! input_index {
    (($($input:ident),*) $target:ident) => {{
        #[allow(non_camel_case_types, dead_code)]
        enum Input {
            $($input),*
        }
        Input::$target as usize
    }};
}

/// Whether a line's arguments take the adjoint by value (`[g]`, for an array adjoint).
macro_rules! takes_g {
    (scalar; $($arg:tt)*) => { false };
    ($adjoint:ident; ) => { false };
    ($adjoint:ident; [g] $($rest:tt)*) => { true };
    ($adjoint:ident; [$($arg:tt)*] $($rest:tt)*) => { takes_g!($adjoint; $($rest)*) };
}

/// `$yes` if a line's arguments take an array adjoint by value (`[g]`), else `$no`: chosen
/// when expanding, since only one of the two calls type-checks.
macro_rules! if_takes_g {
    (scalar; $args:tt; { $($yes:tt)* } else { $($no:tt)* }) => { { $($no)* } };
    ($adjoint:ident; (); { $($yes:tt)* } else { $($no:tt)* }) => { { $($no)* } };
    ($adjoint:ident; ([g] $($rest:tt)*); { $($yes:tt)* } else { $($no:tt)* }) => { { $($yes)* } };
    ($adjoint:ident; ([$($arg:tt)*] $($rest:tt)*); $yes:tt else $no:tt) => {
        if_takes_g!($adjoint; ($($rest)*); $yes else $no)
    };
}

/// One argument of a kernel call, as the row writes it. `$mode` says how an array adjoint
/// taken by value is passed: `own` (moved: the last reader), `copy` (cloned), `borrow`
/// (the out-of-place twin's `&g`).
macro_rules! arg {
    (scalar, $mode:ident, $g:ident, $name:expr, [g]) => {
        $g
    };
    ($adjoint:ident, own, $g:ident, $name:expr, [g]) => {
        $g.take()
            .unwrap_or_else(|| unreachable!("{}: the adjoint was moved before its last reader", $name))
    };
    ($adjoint:ident, copy, $g:ident, $name:expr, [g]) => {
        $g.clone()
            .unwrap_or_else(|| unreachable!("{}: the adjoint was moved", $name))
    };
    ($adjoint:ident, borrow, $g:ident, $name:expr, [g]) => {
        $g.as_ref()
            .unwrap_or_else(|| unreachable!("{}: the adjoint was moved", $name))
    };
    ($adjoint:ident, $mode:ident, $g:ident, $name:expr, [&g]) => {
        $g.as_ref()
            .unwrap_or_else(|| unreachable!("{}: the adjoint was moved", $name))
    };
    ($adjoint:ident, $mode:ident, $g:ident, $name:expr, [val $k:ident]) => {
        &needed($k, stringify!($k)).view()
    };
    ($adjoint:ident, $mode:ident, $g:ident, $name:expr, [val $k:ident : $d:ident]) => {
        &needed($k, stringify!($k)).view_as::<$d>($name)
    };
    ($adjoint:ident, $mode:ident, $g:ident, $name:expr, [dim $k:ident]) => {
        $k
    };
    ($adjoint:ident, $mode:ident, $g:ident, $name:expr, [const $k:ident]) => {
        *$k
    };
    ($adjoint:ident, $mode:ident, $g:ident, $name:expr, [ref $k:ident]) => {
        $k
    };
}

/// The adjoint as the row's kernels take it: a float, or an array of the row's rank held in
/// an `Option` (moved out by its last reader).
macro_rules! adjoint {
    (scalar, $g:ident, $name:expr) => {
        scalar_of(&$g)
    };
    ($d:ident, $g:ident, $name:expr) => {
        Some(fixed::<_, $d>($g, $name))
    };
}

/// One line of a backward program: the adjoint of one input, if it needs one.
macro_rules! vjp_line {
    (
        $adjoint:ident, $g:ident, $name:expr, $owners:ident, $needs:ident, $emit:ident, $inputs:tt,
        $target:ident = $module:ident :: $kernel:ident ($([$($arg:tt)*]),*) $(or $tmodule:ident :: $twin:ident)?
    ) => {
        let k = input_index!($inputs $target);
        if $needs[k] {
            let adjoint = if_takes_g!($adjoint; ($([$($arg)*])*); {
                $owners -= 1;
                if $owners == 0 {
                    $module::$kernel($(arg!($adjoint, own, $g, $name, [$($arg)*])),*)
                } else {
                    vjp_line!(@shared $adjoint, $g, $name, $module::$kernel($([$($arg)*]),*) $(or $tmodule::$twin)?)
                }
            } else {
                $module::$kernel($(arg!($adjoint, borrow, $g, $name, [$($arg)*])),*)
            });
            $emit(k, adjoint.into_dyn());
        }
    };
    // Not the last reader of `g`: the out-of-place twin if the kernel has one, else a copy.
    (@shared $adjoint:ident, $g:ident, $name:expr, $module:ident :: $kernel:ident ($([$($arg:tt)*]),*) or $tmodule:ident :: $twin:ident) => {
        $tmodule::$twin($(arg!($adjoint, borrow, $g, $name, [$($arg)*])),*)
    };
    (@shared $adjoint:ident, $g:ident, $name:expr, $module:ident :: $kernel:ident ($([$($arg:tt)*]),*)) => {
        $module::$kernel($(arg!($adjoint, copy, $g, $name, [$($arg)*])),*)
    };
}

/// A row's backward program: counts the lines that take `g` by value, then runs each line.
macro_rules! vjp_program {
    ($adjoint:ident, $g:ident, $name:expr, $needs:ident, $emit:ident, $inputs:tt, {
        $($target:ident = $module:ident :: $kernel:ident ($([$($arg:tt)*]),*) $(or $tmodule:ident :: $twin:ident)?;)*
    }) => {
        // How many lines will take `g` by value: the last one gets the buffer.
        let mut owners = 0usize;
        $(
            if $needs[input_index!($inputs $target)] && takes_g!($adjoint; $([$($arg)*])*) {
                owners += 1;
            }
        )*
        $(
            vjp_line!($adjoint, $g, $name, owners, $needs, $emit, $inputs,
                $target = $module::$kernel($([$($arg)*]),*) $(or $tmodule::$twin)?);
        )*
    };
}

macro_rules! tape_table {
    ($(
        $(#[$doc:meta])*
        $variant:ident $name:ident $written:literal $inputs:tt -> $adjoint:ident
            forward $fmodule:ident :: $fkernel:ident ($([$($farg:tt)*]),*);
            keeps { $($field:ident : $kind:ident $source:tt),* $(,)? }
            vjp $vjp:tt
            example $params:tt => $example:block;
    )*) => {
        /// A node of an op of the table: one variant per row of
        /// `autodiff_primitives::for_each_op!`, holding what the row keeps (a saved tensor
        /// is `None` when no input that reads it needs a gradient).
        pub(crate) enum TableOp<'a, F: Float> {
            $(
                $(#[$doc])*
                $variant { $($field: keep_type!($kind, 'a, F)),* },
            )*
        }

        impl<'a, F: Float> TableOp<'a, F> {
            /// The op's name, as the `Var` method that records it.
            pub(crate) fn name(&self) -> &'static str {
                match self {
                    $(TableOp::$variant { .. } => stringify!($name),)*
                }
            }

            /// The tensors the node keeps for its backward (at most two per row).
            #[allow(unused_assignments)]
            pub(crate) fn saved(&self) -> [Option<&Saved<'a, F>>; 2] {
                let mut saved = [None, None];
                let mut next = 0;
                match self {
                    $(TableOp::$variant { $($field),* } => { $(push_saved!($kind, $field, saved, next);)* })*
                }
                saved
            }

            /// Heap bytes the node holds besides its saved tensors.
            pub(crate) fn extra_bytes(&self) -> usize {
                match self {
                    $(TableOp::$variant { $($field),* } => 0 $(+ extra_bytes!($kind, $field))*,)*
                }
            }

            /// The node without the saved tensors that no input needing a gradient (`needs`)
            /// reads: what the row's backward program reads decides what the tape keeps.
            pub(crate) fn pruned(mut self, needs: [bool; 3]) -> Self {
                match &mut self {
                    $(TableOp::$variant { $($field),* } => {
                        $(prune!($kind, $field, needs, $inputs, $vjp);)*
                    })*
                }
                self
            }

            /// The derivative rule: the row's backward program, run for the inputs that
            /// need a gradient (`needs`), each adjoint sent to `emit` with its input's position.
            #[allow(unused_mut, unused_variables, unused_assignments)]
            pub(crate) fn backward(&self, g: ArrayD<F>, needs: [bool; 3], emit: &mut Emit<'_, F>) {
                match self {
                    $(
                        TableOp::$variant { $($field),* } => {
                            let name = stringify!($name);
                            let mut g = adjoint!($adjoint, g, name);
                            vjp_program!($adjoint, g, name, needs, emit, $inputs, $vjp);
                        }
                    )*
                }
            }
        }
    };
}

autodiff_primitives::for_each_op!(tape_table);
