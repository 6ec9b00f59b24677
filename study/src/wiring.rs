//! The timed and measured closures shared by the four cases (`runs.rs`) and the
//! depth experiment (`depth.rs`): backward alone and one memory probe, for the
//! static mode (`p_forward` then `p_backward(ctx, 1)`) and for the tape (leaves and
//! `p_on_tape` recorded untimed, then `tape.backward(&y)`). Written once, as macros,
//! because every generated function has its own arity.
//!
//! A tape argument's `$kind` is `param` or `constant` (a leaf of that kind, passed
//! to `p_on_tape` by reference), `params` or `constants` (a slice of arrays: one
//! leaf per element, passed as `&[Var]`) or `plain` (a non-float parameter such as
//! a loop count, which `p_on_tape` takes as it is).

/// The tape-side value of one argument: a leaf, or the argument itself for `plain`.
macro_rules! tape_leaf {
    ($tape:ident, plain, $arg:ident) => {
        $arg
    };
    ($tape:ident, params, $arg:ident) => {
        $arg.iter().map(|a| $tape.param(a)).collect::<Vec<_>>()
    };
    ($tape:ident, constants, $arg:ident) => {
        $arg.iter().map(|a| $tape.constant(a)).collect::<Vec<_>>()
    };
    ($tape:ident, $kind:ident, $arg:ident) => {
        $tape.$kind($arg)
    };
}

/// How `p_on_tape` takes one argument: leaves by reference, `plain` ones by value.
macro_rules! tape_arg {
    (plain, $arg:ident) => {
        $arg
    };
    ($kind:ident, $arg:ident) => {
        &$arg
    };
}

/// Backward alone in the static mode: the context is prepared untimed.
macro_rules! static_backward {
    ($F:ty; $forward:path, $backward:path; ($($arg:ident),*)) => {
        Box::new(move || {
            let (_, ctx) = $forward($($arg),*);
            let (grads, elapsed) = $crate::measure::time(move || $backward(ctx, <$F as ::num_traits::One>::one()));
            std::hint::black_box(grads);
            elapsed
        })
    };
}

/// One forward+backward of the static mode under the counting allocator; the held
/// bytes reported are the context's own account.
macro_rules! static_memory {
    ($F:ty; $forward:path, $backward:path; ($($arg:ident),*)) => {
        Box::new(move || {
            let mut probe = $crate::measure::MemoryProbe::start();
            let (value, ctx) = $forward($($arg),*);
            probe.after_forward();
            let reported = ctx.held_bytes();
            let grads = $backward(ctx, <$F as ::num_traits::One>::one());
            let memory = probe.finish(reported);
            std::hint::black_box((value, grads));
            memory
        })
    };
}

/// Backward alone on the tape, on a graph freshly recorded untimed. `$kind` is
/// `param`, `constant` or `plain` for each argument. After `$F,` an expression making the
/// tape (`Tape::with_residuals(..)`); `Tape::new()` without.
macro_rules! tape_backward {
    ($F:ty; $on_tape:path; $args:tt) => {
        tape_backward!($F, ::autodiff::runtime::tape::Tape::<$F>::new(); $on_tape; $args)
    };
    ($F:ty, $new:expr; $on_tape:path; ($($arg:ident : $kind:ident),*)) => {
        Box::new(move || {
            let tape = $new;
            $(let $arg = tape_leaf!(tape, $kind, $arg);)*
            let y = $on_tape($(tape_arg!($kind, $arg)),*);
            let (grads, elapsed) = $crate::measure::time(|| tape.backward(&y));
            std::hint::black_box(grads);
            elapsed
        })
    };
}

/// One forward+backward on the tape under the counting allocator; the held bytes
/// reported are the tape's own account. The tape as in [`tape_backward!`].
macro_rules! tape_memory {
    ($F:ty; $on_tape:path; $args:tt) => {
        tape_memory!($F, ::autodiff::runtime::tape::Tape::<$F>::new(); $on_tape; $args)
    };
    ($F:ty, $new:expr; $on_tape:path; ($($arg:ident : $kind:ident),*)) => {
        Box::new(move || {
            let mut probe = $crate::measure::MemoryProbe::start();
            let tape = $new;
            $(let $arg = tape_leaf!(tape, $kind, $arg);)*
            let y = $on_tape($(tape_arg!($kind, $arg)),*);
            probe.after_forward();
            let reported = tape.memory().total();
            let grads = tape.backward(&y);
            let memory = probe.finish(reported);
            std::hint::black_box(grads);
            memory
        })
    };
}
