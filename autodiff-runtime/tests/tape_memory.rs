//! The tape's memory, measured with the counting allocator: what `memory()`
//! reports matches the heap (with residuals kept in 16 bits too), saved tensors are freed
//! as backward proceeds, and everything returns to the baseline once the tape and its
//! results are dropped.
//!
//! It reads the calling thread's counters (`alloc::thread_bytes`), which the test
//! harness's other threads do not move; everything runs in one `#[test]`, in order.

use autodiff_runtime::alloc::{self, CountingAllocator};
use autodiff_runtime::kernels::packed::Half;
use autodiff_runtime::tape::Tape;
use ndarray::{Array1, Array2};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

const N: usize = 10_000;
const DEPTH: usize = 20;
const ARRAY_BYTES: usize = N * 8;

/// Bytes this thread allocated since `baseline` (a reading of `alloc::thread_bytes`) and
/// still holds.
fn held_since(baseline: isize) -> usize {
    usize::try_from(alloc::thread_bytes() - baseline)
        .expect("the thread freed more than it allocated since the baseline")
}

#[test]
fn tape_memory_matches_the_allocator() {
    let a = Array1::from_shape_fn(N, |i| (i as f64 * 0.37).sin());
    let baseline = alloc::thread_bytes();
    assert!(alloc::is_installed());

    {
        let tape = Tape::<f64>::new();
        let x = tape.param(&a);
        let mut y = x.clone();
        for _ in 0..DEPTH {
            y = y.tanh(); // saves its output; the previous value lives only in that slot
        }
        let loss = y.sum();
        let memory = tape.memory();
        let held = held_since(baseline);
        assert_eq!(memory.nodes, DEPTH + 1);
        assert_eq!(
            memory.saved_bytes,
            DEPTH * ARRAY_BYTES,
            "one tanh output per node, counted once"
        );
        // What the tape reports is what the heap holds, up to the handles the test keeps
        // (`x`, `y`, `loss`: their Rc boxes and the 0-d loss value).
        assert!(held >= memory.total(), "held {held} < reported {}", memory.total());
        assert!(held - memory.total() < 1024, "held {held} vs reported {memory:?}");

        alloc::reset_thread_peak();
        let grads = tape.backward(&loss);
        let peak = usize::try_from(alloc::thread_peak_bytes() - baseline).expect("a peak above the baseline");
        let gradient_bytes = grads.bytes();
        assert_eq!(gradient_bytes, ARRAY_BYTES);
        // Saved tensors are freed as the sweep goes, so the peak is the forward's
        // bytes plus one live adjoint (which becomes the gradient), plus the adjoint slots.
        let slots = (DEPTH + 4) * 128;
        assert!(
            peak <= held + gradient_bytes + slots,
            "peak {peak} > held {held} + gradients {gradient_bytes}"
        );
        assert_eq!(tape.memory().saved_bytes, 0, "every saved tensor was freed");
        let after = held_since(baseline);
        // Left: the gradient, `y`'s value (the test still holds it) and bookkeeping.
        let bookkeeping = tape.memory().node_bytes;
        assert!(
            after <= gradient_bytes + ARRAY_BYTES + bookkeeping + 1024,
            "after backward {after}, bookkeeping {bookkeeping}"
        );
        let expected = a.mapv(|v| {
            let mut t = v;
            let mut d = 1.0;
            for _ in 0..DEPTH {
                t = t.tanh();
                d *= 1.0 - t * t;
            }
            d
        });
        assert!((&grads[&x] - &expected.into_dyn()).iter().all(|e| e.abs() < 1e-12));
    }
    assert_eq!(
        alloc::thread_bytes(),
        baseline,
        "tape, vars and gradients dropped: back to the baseline"
    );

    // A retained graph keeps its saved tensors until the tape is dropped.
    {
        let tape = Tape::<f64>::new();
        let x = tape.param(&a);
        let loss = x.exp().sin().sum();
        let _ = tape.backward_retain(&loss);
        assert_eq!(
            tape.memory().saved_bytes,
            ARRAY_BYTES,
            "exp's output is sin's input: one buffer"
        );
    }
    assert_eq!(alloc::thread_bytes(), baseline);

    // A buffer saved by several nodes is counted once.
    {
        let tape = Tape::<f64>::new();
        let x = tape.param(&a);
        let e = x.exp(); // saves e
        let p = &e * &e; // saves e twice (each operand for the other's adjoint)
        let memory = tape.memory();
        assert_eq!(memory.saved_bytes, ARRAY_BYTES);
        assert_eq!(
            tape.nodes()[1].saved_bytes,
            2 * ARRAY_BYTES,
            "per node, each slot counts"
        );
        drop((e, p));
        assert_eq!(
            tape.memory().saved_bytes,
            ARRAY_BYTES,
            "still saved after the Vars are gone"
        );
    }
    assert_eq!(alloc::thread_bytes(), baseline);

    // Pruned ops keep nothing: once the result is dropped, the heap is back.
    {
        let tape = Tape::<f64>::new();
        let k = tape.constant(&a);
        let before = alloc::thread_bytes();
        let y = k.exp().tanh().sum();
        drop(y);
        assert_eq!(alloc::thread_bytes(), before, "no node, no saved tensor");
        assert!(tape.is_empty());
    }
    assert_eq!(alloc::thread_bytes(), baseline);

    // With bf16 residuals (`Tape::with_residuals`) the saved value takes half the bytes,
    // counted once though three slots of two nodes save it, and its f32 array is freed with
    // the last `Var` referring to it: what the tape reports is again what the heap holds.
    {
        const M: usize = 20_000;
        let a = Array2::from_shape_fn((M / 100, 100), |(i, j)| ((i * 100 + j) as f32 * 0.37).sin());
        let w = Array2::from_shape_fn((100, 100), |(i, j)| ((i + 3 * j) as f32 * 0.11).cos() / 10.0);
        let mut held = Vec::new();
        // Once first: the products' first calls allocate the GEMM's per-thread scratch,
        // which stays (hence last in this test, and a baseline of its own).
        for (run, residuals) in [None, None, Some(Half::Bf16)].into_iter().enumerate() {
            let baseline = alloc::thread_bytes();
            let tape = residuals.map_or_else(Tape::new, Tape::with_residuals);
            let (x, w) = (tape.constant(&a), tape.param(&w));
            let loss = {
                let h = x.dot(&w).tanh(); // keeps h (its output)
                (&h * &h).sum() // keeps h twice (each operand for the other's adjoint)
            }; // the product x·w, h and h·h: their Vars are gone
            let memory = tape.memory();
            let bytes = held_since(baseline);
            assert!(bytes >= memory.total(), "held {bytes} < reported {memory:?}");
            // Up to the loss's 0-d value and the leaves' handles.
            assert!(bytes - memory.total() < 512, "held {bytes}, reported {memory:?}");
            held.push((memory.saved_bytes, bytes, memory.node_bytes));
            let grads = tape.backward(&loss);
            assert_eq!(tape.memory().saved_bytes, 0, "every saved tensor was freed");
            drop((grads, loss, x, w));
            // The packed copies' index is emptied once their nodes are freed.
            assert!(tape.memory().node_bytes < 4096, "{:?}", tape.memory());
            drop(tape);
            if run > 0 {
                assert_eq!(alloc::thread_bytes(), baseline, "{residuals:?}: back to the baseline");
            }
        }
        let (full, half) = (held[1], held[2]);
        assert_eq!((full.0, half.0), (M * 4, M * 2));
        // Measured: the f32 tape holds M two-byte halves more than the bf16 one, less the
        // bf16 tape's index of its packed copies (in its bookkeeping).
        assert_eq!(full.1 + (half.2 - full.2), half.1 + M * 2);
    }
}
