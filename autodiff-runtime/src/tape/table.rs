//! The tape's side of the op table (`autodiff_primitives::for_each_op!`): one node variant
//! per row, holding what the row keeps (saved tensors, an aux residual its forward kernel
//! returned, shapes, constants), and its derivative rule, expanded from the row's backward
//! program (its shared steps, run once when a needed line reads them, then its lines).
//! Nothing here is written per op: a new row is a new node and rule.

use ndarray::{ArrayD, Axis, Ix1, Ix2, Ix4, IxDyn};

use super::op::{fixed, needed, scalar_of, Emit, Saved};
use crate::kernels::{batch_norm, binary, conv, loss, matmul, pool, reduce, softmax, unary};
use crate::Float;

/// The Rust type a node holds for one `keeps` entry of a row.
macro_rules! keep_type {
    (saved, $source:tt, $a:lifetime, $f:ty) => { Option<Saved<$a, $f>> };
    (aux, ($module:ident :: $ty:ident <$param:ident> ; $($size:tt)*), $a:lifetime, $f:ty) => { Option<$module::$ty<$f>> };
    (aux, ($module:ident :: $ty:ident ; $($size:tt)*), $a:lifetime, $f:ty) => { Option<$module::$ty> };
    (dim, $source:tt, $a:lifetime, $f:ty) => { IxDyn };
    (dim4, $source:tt, $a:lifetime, $f:ty) => { Ix4 };
    (axis, $source:tt, $a:lifetime, $f:ty) => { Axis };
    (usize, $source:tt, $a:lifetime, $f:ty) => { usize };
    (float, $source:tt, $a:lifetime, $f:ty) => { $f };
    (int, $source:tt, $a:lifetime, $f:ty) => { i32 };
    (labels, $source:tt, $a:lifetime, $f:ty) => { Box<[usize]> };
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

/// [`push_saved!`] for the saved tensors a tape with 16-bit residuals may keep packed: not a
/// value a kernel reads beside an aux residual (see [`field_exact!`]).
macro_rules! push_packable {
    (saved, $field:ident, $out:ident, $next:ident, $vjp:tt) => {
        if !field_exact!($field, $vjp) {
            push_saved!(saved, $field, $out, $next);
        }
    };
    ($kind:ident, $field:ident, $out:ident, $next:ident, $vjp:tt) => {
        let _ = $field;
    };
}

/// Whether the kept field `$field` must stay as computed on a tape with 16-bit residuals: a
/// kernel reads it beside an aux residual, which describes the value unrounded (batch norm's
/// statistics), and the call reads no shared step with a `rounded` twin that measures the
/// value as read. The static code's rule (`static_code.rs` §3d); no row has such a field
/// today (batch norm's sums have their twin), but a new row would.
macro_rules! field_exact {
    ($field:ident, $vjp:tt) => {
        autodiff_primitives::vjp_parts!(field_exact!(@parts $field,) $vjp)
    };
    (@parts $field:ident,
        [$(($step:ident = $smodule:ident :: $skernel:ident $sargs:tt $(rounded $rmodule:ident :: $rkernel:ident)?))*]
        { $($target:ident = $module:ident :: $kernel:ident $args:tt $(or $tmodule:ident :: $twin:ident)? $(else $emodule:ident :: $ekernel:ident $eargs:tt)?;)* }
        $vjp:tt
    ) => {{
        // Per step, whether it has a `rounded` twin.
        $(let $step: bool = has_twin!($($rkernel)?);)*
        false
            $(|| (!$step && reads!($field; $sargs) && reads_an_aux!($sargs)))*
            $(
                || (reads!($field; $args) && reads_an_aux!($args) && !reads_a_twin_step!($args))
                $(|| (reads!($field; $eargs) && reads_an_aux!($eargs) && !reads_a_twin_step!($eargs)))?
            )*
    }};
}

/// Whether a step names a `rounded` twin.
macro_rules! has_twin {
    () => {
        false
    };
    ($twin:ident) => {
        true
    };
}

/// Whether a kernel's arguments read an aux residual.
macro_rules! reads_an_aux {
    (()) => { false };
    (([aux $k:ident] $(, $rest:tt)*)) => { true };
    (($first:tt $(, $rest:tt)*)) => { reads_an_aux!(($($rest),*)) };
}

/// Whether a kernel's arguments read a shared step with a `rounded` twin (the steps are
/// `bool` locals saying so).
macro_rules! reads_a_twin_step {
    (()) => { false };
    (([step $k:ident] $(, $rest:tt)*)) => { $k || reads_a_twin_step!(($($rest),*)) };
    (($first:tt $(, $rest:tt)*)) => { reads_a_twin_step!(($($rest),*)) };
}

/// Whether a step's arguments read a saved value that was kept in 16 bits and unpacked for
/// this rule.
macro_rules! reads_unpacked {
    (()) => { false };
    (([val $k:ident $(: $d:ident)?] $(, $rest:tt)*)) => {
        needed($k, stringify!($k)).is_unpacked() || reads_unpacked!(($($rest),*))
    };
    (($first:tt $(, $rest:tt)*)) => { reads_unpacked!(($($rest),*)) };
}

/// A shared step's call: its `rounded` twin where a value it reads was kept in 16 bits (the
/// twin measures the value as read, where the plain kernel trusts an aux residual taken of
/// the value as computed), else its kernel.
macro_rules! step_call {
    ($adjoint:ident, $g:ident, $name:expr, $smodule:ident :: $skernel:ident ($($sarg:tt),*) rounded $rmodule:ident :: $rkernel:ident) => {
        if reads_unpacked!(($($sarg),*)) {
            $rmodule::$rkernel($(arg!($adjoint, borrow, $g, $name, $sarg)),*)
        } else {
            $smodule::$skernel($(arg!($adjoint, borrow, $g, $name, $sarg)),*)
        }
    };
    ($adjoint:ident, $g:ident, $name:expr, $smodule:ident :: $skernel:ident ($($sarg:tt),*)) => {
        $smodule::$skernel($(arg!($adjoint, borrow, $g, $name, $sarg)),*)
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

/// Bytes of a kept aux residual (its own `bytes()`), counted with the saved tensors.
macro_rules! aux_bytes {
    (aux, $field:ident) => {
        $field.as_ref().map_or(0, |aux| aux.bytes())
    };
    ($kind:ident, $field:ident) => {{
        let _ = $field;
        0
    }};
}

/// Whether the kept field is an aux residual that the backward program reads for `$needs`.
macro_rules! aux_read {
    (aux, $field:ident, $needs:ident, $inputs:tt, $vjp:tt) => {
        field_read!($field, $needs, $inputs, $vjp)
    };
    ($kind:ident, $field:ident, $needs:ident, $inputs:tt, $vjp:tt) => {
        false
    };
}

/// Drops a saved tensor or an aux residual that no line whose input needs a gradient reads
/// (directly, or through a shared step that runs).
macro_rules! prune {
    (saved, $field:ident, $needs:ident, $inputs:tt, $vjp:tt) => {
        if !field_read!($field, $needs, $inputs, $vjp) {
            *$field = None;
        }
    };
    (aux, $field:ident, $needs:ident, $inputs:tt, $vjp:tt) => {
        if !field_read!($field, $needs, $inputs, $vjp) {
            *$field = None;
        }
    };
    ($kind:ident, $field:ident, $needs:ident, $inputs:tt, $vjp:tt) => {
        let _ = $field;
    };
}

/// Whether the backward program reads the kept field `$field` when the inputs `$needs`
/// say need a gradient: a shared step that runs and reads it, or a needed line whose
/// kernel (its own, or its `else` one) reads it.
macro_rules! field_read {
    ($field:ident, $needs:ident, $inputs:tt, $vjp:tt) => {
        autodiff_primitives::vjp_parts!(field_read!(@parts $field, $needs, $inputs,) $vjp)
    };
    (@parts $field:ident, $needs:ident, $inputs:tt,
        [$(($step:ident = $smodule:ident :: $skernel:ident $sargs:tt $(rounded $rmodule:ident :: $rkernel:ident)?))*]
        { $($target:ident = $module:ident :: $kernel:ident $args:tt $(or $tmodule:ident :: $twin:ident)? $(else $emodule:ident :: $ekernel:ident $eargs:tt)?;)* }
        $vjp:tt
    ) => {{
        $(let $step: bool = step_runs!($step, $needs, $inputs, $vjp);)*
        false
            $(|| ($step && reads!($field; $sargs)))*
            $(|| line_reads!($field, $needs, $inputs, ($target = $module::$kernel $args $(else $emodule::$ekernel $eargs)?)))*
    }};
}

/// Whether one line reads `$field`, when its input needs a gradient (the steps it reads
/// are `bool` locals saying whether they run).
macro_rules! line_reads {
    ($field:ident, $needs:ident, $inputs:tt, ($target:ident = $module:ident :: $kernel:ident $args:tt else $emodule:ident :: $ekernel:ident $eargs:tt)) => {
        $needs[input_index!($inputs $target)]
            && if steps_ready!(bool; $args) {
                reads!($field; $args)
            } else {
                reads!($field; $eargs)
            }
    };
    ($field:ident, $needs:ident, $inputs:tt, ($target:ident = $module:ident :: $kernel:ident $args:tt)) => {
        $needs[input_index!($inputs $target)] && reads!($field; $args)
    };
}

/// Whether the shared step `$step` runs: a line without `else` whose input needs a gradient
/// reads it.
macro_rules! step_runs {
    ($step:ident, $needs:ident, $inputs:tt, $vjp:tt) => {
        autodiff_primitives::vjp_parts!(step_runs!(@parts $step, $needs, $inputs,) $vjp)
    };
    (@parts $step:ident, $needs:ident, $inputs:tt, $steps:tt
        { $($target:ident = $module:ident :: $kernel:ident $args:tt $(or $tmodule:ident :: $twin:ident)? $(else $emodule:ident :: $ekernel:ident $eargs:tt)?;)* }
        $vjp:tt
    ) => {
        false $(|| line_runs_step!($step, $needs, $inputs, ($target $args $(else $ekernel)?)))*
    };
}

/// Whether one line makes the step `$step` run: it has no `else`, its input needs a
/// gradient, and it reads the step.
macro_rules! line_runs_step {
    ($step:ident, $needs:ident, $inputs:tt, ($target:ident $args:tt else $ekernel:ident)) => {
        false
    };
    ($step:ident, $needs:ident, $inputs:tt, ($target:ident $args:tt)) => {
        $needs[input_index!($inputs $target)] && reads_step!($step; $args)
    };
}

/// Whether a kernel's arguments (`([val k], [g], ..)`) read the kept field `$field`.
macro_rules! reads {
    ($field:ident; ()) => { false };
    ($field:ident; ([val $k:ident $(: $d:ident)?] $(, $rest:tt)*)) => {
        crate::str_eq(stringify!($field), stringify!($k)) || reads!($field; ($($rest),*))
    };
    ($field:ident; ([aux $k:ident] $(, $rest:tt)*)) => {
        crate::str_eq(stringify!($field), stringify!($k)) || reads!($field; ($($rest),*))
    };
    ($field:ident; ($first:tt $(, $rest:tt)*)) => { reads!($field; ($($rest),*)) };
}

/// Whether a kernel's arguments read the shared step `$step`.
macro_rules! reads_step {
    ($step:ident; ()) => { false };
    ($step:ident; ([step $k:ident] $(, $rest:tt)*)) => {
        crate::str_eq(stringify!($step), stringify!($k)) || reads_step!($step; ($($rest),*))
    };
    ($step:ident; ($first:tt $(, $rest:tt)*)) => { reads_step!($step; ($($rest),*)) };
}

/// Whether every shared step a kernel's arguments read runs: the steps are `bool` locals
/// (`bool`) or `Option`s of their results (`option`).
macro_rules! steps_ready {
    ($mode:ident; ()) => { true };
    (bool; ([step $k:ident] $(, $rest:tt)*)) => { $k && steps_ready!(bool; ($($rest),*)) };
    (option; ([step $k:ident] $(, $rest:tt)*)) => { $k.is_some() && steps_ready!(option; ($($rest),*)) };
    ($mode:ident; ($first:tt $(, $rest:tt)*)) => { steps_ready!($mode; ($($rest),*)) };
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

/// Whether a kernel's arguments take the adjoint by value (`[g]`, for an array adjoint).
macro_rules! takes_g {
    (scalar; $args:tt) => { false };
    ($adjoint:ident; ()) => { false };
    ($adjoint:ident; ([g] $(, $rest:tt)*)) => { true };
    ($adjoint:ident; ($first:tt $(, $rest:tt)*)) => { takes_g!($adjoint; ($($rest),*)) };
}

/// `$yes` if a kernel's arguments take an array adjoint by value (`[g]`), else `$no`: chosen
/// when expanding, since only one of the two calls type-checks.
macro_rules! if_takes_g {
    (scalar; $args:tt; { $($yes:tt)* } else { $($no:tt)* }) => { { $($no)* } };
    ($adjoint:ident; (); { $($yes:tt)* } else { $($no:tt)* }) => { { $($no)* } };
    ($adjoint:ident; ([g] $(, $rest:tt)*); { $($yes:tt)* } else { $($no:tt)* }) => { { $($yes)* } };
    ($adjoint:ident; ($first:tt $(, $rest:tt)*); $yes:tt else $no:tt) => {
        if_takes_g!($adjoint; ($($rest),*); $yes else $no)
    };
}

/// One argument of a kernel call, as the row writes it. `$mode` says how an array adjoint
/// taken by value is passed: `own` (moved: the last reader), `copy` (cloned), `borrow`
/// (the out-of-place twin's `&g`, or a shared step's).
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
    ($adjoint:ident, $mode:ident, $g:ident, $name:expr, [aux $k:ident]) => {
        $k.as_ref().unwrap_or_else(|| {
            unreachable!(
                "{}: {} was not kept although its reader needs a gradient",
                $name,
                stringify!($k)
            )
        })
    };
    ($adjoint:ident, $mode:ident, $g:ident, $name:expr, [step $k:ident]) => {
        $k.as_ref()
            .unwrap_or_else(|| unreachable!("{}: the shared step {} did not run", $name, stringify!($k)))
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

/// One kernel call of a line: its adjoint contribution. A call taking `g` by value gets the
/// buffer if it is the last to take it (`$owners`), else the out-of-place twin if the kernel
/// has one, else a copy.
macro_rules! kernel_call {
    ($adjoint:ident, $g:ident, $name:expr, $owners:ident, $module:ident :: $kernel:ident ($($arg:tt),*) $(or $tmodule:ident :: $twin:ident)?) => {
        if_takes_g!($adjoint; ($($arg),*); {
            $owners -= 1;
            if $owners == 0 {
                $module::$kernel($(arg!($adjoint, own, $g, $name, $arg)),*)
            } else {
                kernel_call!(@shared $adjoint, $g, $name, $module::$kernel($($arg),*) $(or $tmodule::$twin)?)
            }
        } else {
            $module::$kernel($(arg!($adjoint, borrow, $g, $name, $arg)),*)
        })
    };
    (@shared $adjoint:ident, $g:ident, $name:expr, $module:ident :: $kernel:ident ($($arg:tt),*) or $tmodule:ident :: $twin:ident) => {
        $tmodule::$twin($(arg!($adjoint, borrow, $g, $name, $arg)),*)
    };
    (@shared $adjoint:ident, $g:ident, $name:expr, $module:ident :: $kernel:ident ($($arg:tt),*)) => {
        $module::$kernel($(arg!($adjoint, copy, $g, $name, $arg)),*)
    };
}

/// Runs `$body` if the kernel's arguments `$args` fit the sweep `$sweep`: `borrowing` (the
/// kernel does not take `g` by value) or `taking` (it does).
macro_rules! in_sweep {
    (borrowing, $adjoint:ident, $args:tt, $body:tt) => {
        if_takes_g!($adjoint; $args; {} else $body)
    };
    (taking, $adjoint:ident, $args:tt, $body:tt) => {
        if_takes_g!($adjoint; $args; $body else {})
    };
}

/// One line of a backward program, in one of the two sweeps: the adjoint of one input, if
/// it needs one, by its own kernel or (when the steps it reads do not run) its `else` one.
macro_rules! vjp_line {
    (
        $sweep:ident, $adjoint:ident, $g:ident, $name:expr, $owners:ident, $needs:ident, $emit:ident, $inputs:tt,
        ($target:ident = $module:ident :: $kernel:ident $args:tt $(or $tmodule:ident :: $twin:ident)? else $emodule:ident :: $ekernel:ident $eargs:tt)
    ) => {
        let k = input_index!($inputs $target);
        if $needs[k] {
            if steps_ready!(option; $args) {
                in_sweep!($sweep, $adjoint, $args, {
                    let adjoint = kernel_call!($adjoint, $g, $name, $owners, $module::$kernel $args $(or $tmodule::$twin)?);
                    $emit(k, adjoint.into_dyn());
                });
            } else {
                in_sweep!($sweep, $adjoint, $eargs, {
                    let adjoint = kernel_call!($adjoint, $g, $name, $owners, $emodule::$ekernel $eargs);
                    $emit(k, adjoint.into_dyn());
                });
            }
        }
    };
    (
        $sweep:ident, $adjoint:ident, $g:ident, $name:expr, $owners:ident, $needs:ident, $emit:ident, $inputs:tt,
        ($target:ident = $module:ident :: $kernel:ident $args:tt $(or $tmodule:ident :: $twin:ident)?)
    ) => {
        let k = input_index!($inputs $target);
        if $needs[k] {
            in_sweep!($sweep, $adjoint, $args, {
                let adjoint = kernel_call!($adjoint, $g, $name, $owners, $module::$kernel $args $(or $tmodule::$twin)?);
                $emit(k, adjoint.into_dyn());
            });
        }
    };
}

/// Counts a line in `$owners` if its input needs a gradient and the kernel it runs takes `g`
/// by value.
macro_rules! count_owner {
    ($owners:ident, $adjoint:ident, $needs:ident, $inputs:tt, ($target:ident $args:tt else $eargs:tt)) => {
        if $needs[input_index!($inputs $target)] {
            let takes = if steps_ready!(option; $args) {
                takes_g!($adjoint; $args)
            } else {
                takes_g!($adjoint; $eargs)
            };
            $owners += usize::from(takes);
        }
    };
    ($owners:ident, $adjoint:ident, $needs:ident, $inputs:tt, ($target:ident $args:tt)) => {
        if $needs[input_index!($inputs $target)] && takes_g!($adjoint; $args) {
            $owners += 1;
        }
    };
}

/// A row's backward program: runs the shared steps some needed line reads, counts the lines
/// that take `g` by value, then runs the lines that borrow `g` and after them those that
/// take it (the last of which gets its buffer). A step's `rounded` twin runs where a value
/// the step reads was kept in 16 bits (`Tape::with_residuals`), as in the static code.
macro_rules! vjp_program {
    ($adjoint:ident, $g:ident, $name:expr, $needs:ident, $emit:ident, $inputs:tt, $vjp:tt) => {
        autodiff_primitives::vjp_parts!(vjp_program!(@parts $adjoint, $g, $name, $needs, $emit, $inputs,) $vjp)
    };
    (@parts $adjoint:ident, $g:ident, $name:expr, $needs:ident, $emit:ident, $inputs:tt,
        [$(($step:ident = $smodule:ident :: $skernel:ident ($($sarg:tt),*) $(rounded $rmodule:ident :: $rkernel:ident)?))*]
        { $($target:ident = $module:ident :: $kernel:ident $args:tt $(or $tmodule:ident :: $twin:ident)? $(else $emodule:ident :: $ekernel:ident $eargs:tt)?;)* }
        $vjp:tt
    ) => {{
        $(
            let $step = if step_runs!($step, $needs, $inputs, $vjp) {
                Some(step_call!($adjoint, $g, $name, $smodule::$skernel ($($sarg),*) $(rounded $rmodule::$rkernel)?))
            } else {
                None
            };
        )*
        // How many lines will take `g` by value: the last one gets the buffer.
        let mut owners = 0usize;
        $(count_owner!(owners, $adjoint, $needs, $inputs, ($target $args $(else $eargs)?));)*
        $(vjp_line!(borrowing, $adjoint, $g, $name, owners, $needs, $emit, $inputs,
            ($target = $module::$kernel $args $(or $tmodule::$twin)? $(else $emodule::$ekernel $eargs)?));)*
        $(vjp_line!(taking, $adjoint, $g, $name, owners, $needs, $emit, $inputs,
            ($target = $module::$kernel $args $(or $tmodule::$twin)? $(else $emodule::$ekernel $eargs)?));)*
    }};
}

macro_rules! tape_table {
    ($(
        $(#[$doc:meta])*
        $variant:ident $name:ident $written:literal $inputs:tt -> $adjoint:ident
            forward $fmodule:ident :: $fkernel:ident ($([$($farg:tt)*]),*) $(keeping $kmodule:ident :: $kkernel:ident)?;
            keeps { $($field:ident : $kind:ident $source:tt),* $(,)? }
            vjp $vjp:tt
            example $params:tt => $example:block;
    )*) => {
        /// A node of an op of the table: one variant per row of
        /// `autodiff_primitives::for_each_op!`, holding what the row keeps (a saved tensor
        /// or an aux residual is `None` when no input that reads it needs a gradient).
        pub(crate) enum TableOp<'a, F: Float> {
            $(
                $(#[$doc])*
                $variant { $($field: keep_type!($kind, $source, 'a, F)),* },
            )*
        }

        /// Per row (a function named as the op), whether its backward program reads the
        /// row's aux residual when the inputs `needs` says need a gradient: whether the
        /// `Var` method runs the row's `keeping` forward kernel or the plain one.
        #[allow(dead_code, unused_variables)]
        pub(crate) mod reads_aux {
            $(
                #[doc = concat!("Whether `", stringify!($name), "`'s backward reads its aux residual.")]
                pub(crate) fn $name(needs: [bool; 3]) -> bool {
                    false $(|| aux_read!($kind, $field, needs, $inputs, $vjp))*
                }
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

            /// The saved-tensor slots, mutably, in the order of [`TableOp::saved`].
            #[allow(unused_assignments)]
            pub(crate) fn saved_mut(&mut self) -> [Option<&mut Saved<'a, F>>; 2] {
                let mut saved = [None, None];
                let mut next = 0;
                match self {
                    $(TableOp::$variant { $($field),* } => { $(push_saved!($kind, $field, saved, next);)* })*
                }
                saved
            }

            /// The saved-tensor slots a tape with 16-bit residuals may keep packed: every one
            /// but a value read beside an aux residual that describes it as computed.
            #[allow(unused_assignments, unused_variables)]
            pub(crate) fn packable_mut(&mut self) -> [Option<&mut Saved<'a, F>>; 2] {
                let mut saved = [None, None];
                let mut next = 0;
                match self {
                    $(TableOp::$variant { $($field),* } => { $(push_packable!($kind, $field, saved, next, $vjp);)* })*
                }
                saved
            }

            /// Bytes of the aux residual the node keeps (its own form, not a shared tensor),
            /// counted with the saved tensors.
            pub(crate) fn residual_bytes(&self) -> usize {
                match self {
                    $(TableOp::$variant { $($field),* } => 0 $(+ aux_bytes!($kind, $field))*,)*
                }
            }

            /// Heap bytes the node holds besides its saved tensors.
            pub(crate) fn extra_bytes(&self) -> usize {
                match self {
                    $(TableOp::$variant { $($field),* } => 0 $(+ extra_bytes!($kind, $field))*,)*
                }
            }

            /// The node without the saved tensors and aux residual that no input needing a
            /// gradient (`needs`) reads: what the row's backward program reads decides what
            /// the tape keeps.
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
