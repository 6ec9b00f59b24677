//! One description per primitive, in the spirit of JAX's `lax.py`: everything about an op
//! sits in one row, and every part of the system reads that row.
//!
//! The descriptions are `macro_rules!` lists that call back a macro of the reader's choice
//! with every row (`for_each_unary!(my_macro)`). That way one row can carry both data (a
//! name, the forms users write, what backward reads) and code (the forward formula and the
//! derivative, as Rust over a float type `F: Float`), and neither reader depends on the
//! other:
//! - `autodiff-runtime` expands each row into its kernels (`tanh`, `tanh_grad`,
//!   `tanh_scalar`, `tanh_grad_scalar`, `TANH_SAVES`), the prelude's method and function
//!   forms, the tape's `Var` method and the tape's derivative rule;
//! - `autodiff-macros` expands the same rows into the table it lowers user code with (which
//!   names exist, in which forms, whether backward reads the input or the output) and names
//!   the kernels it emits from the row;
//! - `tests/primitives.rs` expands them into one gradient test per primitive and form,
//!   checked three ways (static code, tape, finite differences), so no row ships untested.
//!
//! Adding an elementwise function is adding one row here.

#![warn(missing_docs)]

mod binary;
mod kernels;
mod ops;
mod unary;

/// For readers of the table: expands `$($item)*` when `$form` (`ext`, `function` or
/// `float`) is among a row's forms, `if_form! { ext in ($($form),*) => items }`.
#[macro_export]
macro_rules! if_form {
    ($form:ident in () => $($item:tt)*) => {};
    (ext in (ext $(, $rest:ident)*) => $($item:tt)*) => { $($item)* };
    (function in (function $(, $rest:ident)*) => $($item:tt)*) => { $($item)* };
    (float in (float $(, $rest:ident)*) => $($item:tt)*) => { $($item)* };
    ($form:ident in ($first:ident $(, $rest:ident)*) => $($item:tt)*) => {
        $crate::if_form! { $form in ($($rest),*) => $($item)* }
    };
}

/// Expands `$($item)*` when `$form` is *not* among a row's forms.
#[macro_export]
macro_rules! unless_form {
    ($form:ident in () => $($item:tt)*) => { $($item)* };
    (ext in (ext $(, $rest:ident)*) => $($item:tt)*) => {};
    (function in (function $(, $rest:ident)*) => $($item:tt)*) => {};
    (float in (float $(, $rest:ident)*) => $($item:tt)*) => {};
    ($form:ident in ($first:ident $(, $rest:ident)*) => $($item:tt)*) => {
        $crate::unless_form! { $form in ($($rest),*) => $($item)* }
    };
}

/// `has_form!(ext in ($($form),*) ? yes, no)`: the expression `yes` if the row has the
/// form, `no` otherwise.
#[macro_export]
macro_rules! has_form {
    ($form:ident in () ? $yes:expr, $no:expr) => { $no };
    (ext in (ext $(, $rest:ident)*) ? $yes:expr, $no:expr) => { $yes };
    (function in (function $(, $rest:ident)*) ? $yes:expr, $no:expr) => { $yes };
    (float in (float $(, $rest:ident)*) ? $yes:expr, $no:expr) => { $yes };
    ($form:ident in ($first:ident $(, $rest:ident)*) ? $yes:expr, $no:expr) => {
        $crate::has_form!($form in ($($rest),*) ? $yes, $no)
    };
}

/// For readers of the op table (`for_each_op!`): a row's `vjp { .. }` block with its shared
/// steps (`let s = module::kernel(..);`) split from its lines, which a single pattern cannot
/// tell apart (`let` is an identifier to `macro_rules!`, like a line's input).
/// `vjp_parts!(callback!(args..) { vjp })` calls
/// `callback!(args.. [(s = module::kernel(..) [rounded module::twin]) ..] { lines } { vjp })`:
/// the steps, the lines, and the whole block again.
#[macro_export]
macro_rules! vjp_parts {
    ($callback:ident ! ($($args:tt)*) { $($vjp:tt)* }) => {
        $crate::vjp_parts!(@steps $callback ($($args)*) [] { $($vjp)* } $($vjp)*)
    };
    (@steps $callback:ident ($($args:tt)*) [$($steps:tt)*] $whole:tt
        let $step:ident = $module:ident :: $kernel:ident $stepargs:tt
        $(rounded $rmodule:ident :: $rkernel:ident)?; $($rest:tt)*) => {
        $crate::vjp_parts!(@steps $callback ($($args)*)
            [$($steps)* ($step = $module::$kernel $stepargs $(rounded $rmodule::$rkernel)?)] $whole $($rest)*)
    };
    (@steps $callback:ident ($($args:tt)*) [$($steps:tt)*] $whole:tt $($lines:tt)*) => {
        $callback!($($args)* [$($steps)*] { $($lines)* } $whole)
    };
}
