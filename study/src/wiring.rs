//! The timed and measured closures shared by the four cases (`runs.rs`) and the
//! depth experiment (`depth.rs`): backward alone and one memory probe, for the
//! static mode (`p_forward` then `p_backward(ctx, 1)`) and for the tape (leaves and
//! `p_on_tape` recorded untimed, then `tape.backward(&y)`). Written once, as macros,
//! because every generated function has its own arity.

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
/// `param` or `constant` for each argument.
macro_rules! tape_backward {
    ($F:ty; $on_tape:path; ($($arg:ident : $kind:ident),*)) => {
        Box::new(move || {
            let tape = ::autodiff::runtime::tape::Tape::<$F>::new();
            $(let $arg = tape.$kind($arg);)*
            let y = $on_tape($(&$arg),*);
            let (grads, elapsed) = $crate::measure::time(|| tape.backward(&y));
            std::hint::black_box(grads);
            elapsed
        })
    };
}

/// One forward+backward on the tape under the counting allocator; the held bytes
/// reported are the tape's own account.
macro_rules! tape_memory {
    ($F:ty; $on_tape:path; ($($arg:ident : $kind:ident),*)) => {
        Box::new(move || {
            let mut probe = $crate::measure::MemoryProbe::start();
            let tape = ::autodiff::runtime::tape::Tape::<$F>::new();
            $(let $arg = tape.$kind($arg);)*
            let y = $on_tape($(&$arg),*);
            probe.after_forward();
            let reported = tape.memory().total();
            let grads = tape.backward(&y);
            let memory = probe.finish(reported);
            std::hint::black_box(grads);
            memory
        })
    };
}
