//! A counting global allocator: current and peak heap bytes, for measuring the
//! peak memory of a region of code (the study, benches, memory tests).
//!
//! Install it in a binary or test crate:
//! ```ignore
//! #[global_allocator]
//! static ALLOC: autodiff_runtime::alloc::CountingAllocator = autodiff_runtime::alloc::CountingAllocator;
//! ```
//! and read it with [`current_bytes`], [`peak_bytes`], [`reset_peak`] or [`measure`].
//! Without it installed, every reading is zero ([`is_installed`] tells).
//! These counters are process-wide: measure with one thread doing the work.
//!
//! [`thread_bytes`] counts the calling thread's allocations alone (bytes it allocated
//! minus bytes it freed). Tests read it: a test harness runs other threads beside the
//! test (libtest's main thread, a finished test's thread freeing its output buffers after
//! the next test took its baseline), whose few hundred bytes made process-wide readings
//! flaky; the kernels run on the calling thread at one thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Bytes the thread allocated minus bytes it freed (negative when it frees what another
    /// thread allocated). Const-initialised, with no destructor: reading it never allocates,
    /// which the allocator itself relies on.
    static THREAD_CURRENT: Cell<isize> = const { Cell::new(0) };
    /// The highest value of `THREAD_CURRENT` since the thread's last [`reset_thread_peak`].
    static THREAD_PEAK: Cell<isize> = const { Cell::new(0) };
}

/// The system allocator with byte counters. Zero-sized; see the module docs.
pub struct CountingAllocator;

impl CountingAllocator {
    fn grow(size: usize) {
        let now = CURRENT.fetch_add(size, Ordering::Relaxed) + size;
        PEAK.fetch_max(now, Ordering::Relaxed);
        // `try_with`: during the thread's teardown the slot may be gone; nothing to count then.
        if let Ok(now) = THREAD_CURRENT.try_with(|c| {
            c.set(c.get().wrapping_add_unsigned(size));
            c.get()
        }) {
            let _ = THREAD_PEAK.try_with(|p| p.set(p.get().max(now)));
        }
    }

    fn shrink(size: usize) {
        CURRENT.fetch_sub(size, Ordering::Relaxed);
        let _ = THREAD_CURRENT.try_with(|c| c.set(c.get().wrapping_sub_unsigned(size)));
    }
}

// SAFETY: every call is forwarded to `System` unchanged; the counters only observe sizes.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        INSTALLED.store(true, Ordering::Relaxed);
        let ptr = System.alloc(layout);
        if !ptr.is_null() {
            Self::grow(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        INSTALLED.store(true, Ordering::Relaxed);
        let ptr = System.alloc_zeroed(layout);
        if !ptr.is_null() {
            Self::grow(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        Self::shrink(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = System.realloc(ptr, layout, new_size);
        if !new.is_null() {
            if new_size >= layout.size() {
                Self::grow(new_size - layout.size());
            } else {
                Self::shrink(layout.size() - new_size);
            }
        }
        new
    }
}

/// Whether a [`CountingAllocator`] is the global allocator of this process
/// (true once it has served one allocation).
pub fn is_installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

/// Heap bytes allocated and not yet freed.
pub fn current_bytes() -> usize {
    CURRENT.load(Ordering::Relaxed)
}

/// Heap bytes the calling thread allocated and has not freed, less what it freed of other
/// threads' allocations (see the module docs): differences of two readings measure what
/// the thread's own work between them kept, whatever other threads do meanwhile.
pub fn thread_bytes() -> isize {
    THREAD_CURRENT.try_with(Cell::get).unwrap_or(0)
}

/// The highest value [`thread_bytes`] has reached since the thread's last
/// [`reset_thread_peak`].
pub fn thread_peak_bytes() -> isize {
    THREAD_PEAK.try_with(Cell::get).unwrap_or(0)
}

/// Sets the calling thread's peak to its current [`thread_bytes`].
pub fn reset_thread_peak() {
    let _ = THREAD_PEAK.try_with(|p| p.set(thread_bytes()));
}

/// The highest value [`current_bytes`] has reached since the last [`reset_peak`].
pub fn peak_bytes() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// Sets the peak to the current value, starting a new measurement window.
pub fn reset_peak() {
    PEAK.store(CURRENT.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// What [`measure`] saw of one region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryReport {
    /// Bytes live when the region started.
    pub baseline: usize,
    /// The most bytes live at once during the region, above the baseline.
    pub peak_above_baseline: usize,
    /// Bytes live when the region ended, above the baseline (negative if it freed
    /// memory it did not allocate).
    pub retained: isize,
}

/// Runs `f` and reports its peak heap use above the bytes live when it started.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, MemoryReport) {
    reset_peak();
    let baseline = current_bytes();
    let result = f();
    let peak = peak_bytes();
    let end = current_bytes();
    let report = MemoryReport {
        baseline,
        peak_above_baseline: peak.saturating_sub(baseline),
        retained: end as isize - baseline as isize,
    };
    (result, report)
}

/// The heap bytes of a `Vec`'s own buffer (its capacity times its element's size), not of
/// what its elements own: what a loop's list of per-iteration contexts adds to their arrays.
pub fn buffer_bytes<T>(items: &Vec<T>) -> usize {
    items.capacity() * std::mem::size_of::<T>()
}

/// The buffers of reference-counted arrays counted so far, so that a buffer several
/// arrays share counts once: a loop's state saved by one iteration as its output and by
/// the next as its input is one allocation.
#[derive(Default)]
pub struct SharedBuffers {
    seen: std::collections::HashSet<usize>,
}

impl SharedBuffers {
    /// The heap bytes of `array`'s allocation (its elements and the reference counts
    /// beside them) the first time its buffer is seen, 0 after.
    /// An empty array's pointer is a placeholder shared by every empty buffer (a loop's edge
    /// iteration holds one where the code around the loop keeps the state), so each empty
    /// array counts its own header.
    pub fn count<F, D: ndarray::Dimension>(&mut self, array: &ndarray::ArcArray<F, D>) -> usize {
        // `Arc`'s two counters and ndarray's owned representation (pointer, length, capacity).
        let header = 2 * std::mem::size_of::<usize>() + std::mem::size_of::<Vec<F>>();
        if array.is_empty() {
            return header;
        }
        if !self.seen.insert(array.as_ptr() as usize) {
            return 0;
        }
        array.len() * std::mem::size_of::<F>() + header
    }

    /// The heap bytes of a loop state kept in 16 bits (`residuals = "bf16"`), shared by the
    /// iteration that made it and the next, the first time its allocation is seen: the
    /// `Arc`'s counters, the packing and its values. `None` (an edge iteration's state,
    /// which the code around the loop keeps) holds nothing.
    pub fn count_packed<D: ndarray::Dimension>(
        &mut self,
        packed: &Option<std::sync::Arc<crate::kernels::packed::Packed<D>>>,
    ) -> usize {
        let Some(packed) = packed else { return 0 };
        if !self.seen.insert(std::sync::Arc::as_ptr(packed) as usize) {
            return 0;
        }
        let header = 2 * std::mem::size_of::<usize>() + std::mem::size_of::<crate::kernels::packed::Packed<D>>();
        header + packed.bytes()
    }
}
