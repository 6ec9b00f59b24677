//! Fork-join for the kernels: `for_parts(parts, f)` runs `f(0)` on the calling thread and
//! `f(1..parts)` on the team's worker threads at the same time, and returns when all are done.
//!
//! Why not rayon (which the kernels used before): a product of the study's small cases
//! takes 30–100 µs, and on a virtual machine a thread that blocks (rayon's workers once
//! idle for a few µs, and the caller while it waits for them) lets its vCPU halt; waking it
//! costs 50–90 µs, as much as the product itself. Measured on the study machine (Intel Xeon,
//! 2 vCPUs): a 512×256·256×128 f32 product took 174 µs on one thread and 167–184 µs split
//! over rayon's pool, although each half alone took 88 µs; the `gemm` crate's own rayon
//! split made every product of small_mlp, attention and the RNN 1.1–2.6× *slower* on two
//! threads. OpenMP runtimes avoid this by spinning: an idle worker polls for new work for
//! a while (Intel's `KMP_BLOCKTIME` is 200 ms) before it sleeps. This team does the same,
//! for [`SPIN`], and the caller works on part 0 and then spins for the rest, so a
//! split product costs about a microsecond of synchronisation. rayon offers no spin
//! setting; the crates that do (micropool, fork_union) need a newer compiler than ours or
//! a C++ build, hence these hundred lines.
//!
//! One caller at a time: a call made while the team is busy (from another user thread, or
//! from inside a part) runs its parts one after another on its own thread, so nested or
//! concurrent calls are correct, only not parallel.

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, TryLockError};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

/// How long an idle worker polls for its next part before it parks. Long enough to
/// bridge the gaps between one backward pass's products (elementwise work between them
/// takes microseconds to a few milliseconds), short enough that a program that stops
/// calling the kernels gets its cores back almost at once.
pub(crate) const SPIN: Duration = Duration::from_millis(2);

/// A part handed to a worker: the function (type-erased, borrowed from the caller's
/// stack; see the safety argument in [`for_parts`]) and which part to run.
#[derive(Clone, Copy)]
struct Job {
    function: *const (dyn Fn(usize) + Sync),
    part: usize,
}

/// What the caller and one worker share.
struct Slot {
    /// Bumped by the caller for every new job (the job is written before).
    posted: AtomicUsize,
    /// Set by the worker to the `posted` value of the job it finished.
    finished: AtomicUsize,
    /// The job of the latest `posted` value.
    job: UnsafeCell<Option<Job>>,
    /// Whether the latest job panicked (the payload is dropped; the caller panics anew).
    panicked: AtomicBool,
    /// The worker is parked (or about to): the caller must unpark it after posting.
    sleeping: AtomicBool,
    /// Ends the worker's loop (when the team is replaced).
    stop: AtomicBool,
}

// SAFETY: `job` is written only by the caller before it bumps `posted` (Release), and read
// only by the worker after it sees that value (Acquire); the caller does not write it again
// before `finished` says the worker is done with it. The raw function pointer it holds is
// only dereferenced while the caller waits in `for_parts`.
unsafe impl Sync for Slot {}
unsafe impl Send for Slot {}

struct Worker {
    slot: Arc<Slot>,
    thread: Thread,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.slot.stop.store(true, Ordering::SeqCst);
        self.thread.unpark();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// The workers (threads − 1 of them: the caller is the other).
static TEAM: Mutex<Vec<Worker>> = Mutex::new(Vec::new());

fn spawn_worker() -> Option<Worker> {
    let slot = Arc::new(Slot {
        posted: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
        job: UnsafeCell::new(None),
        panicked: AtomicBool::new(false),
        sleeping: AtomicBool::new(false),
        stop: AtomicBool::new(false),
    });
    let shared = Arc::clone(&slot);
    let handle = thread::Builder::new()
        .name("autodiff-kernels".into())
        .spawn(move || work(&shared))
        .ok()?;
    Some(Worker {
        slot,
        thread: handle.thread().clone(),
        handle: Some(handle),
    })
}

/// A worker's loop: wait (spinning, then parked) for a new `posted` value, run its job, report.
fn work(slot: &Slot) {
    let mut seen = 0;
    loop {
        let started = Instant::now();
        let mut polls = 0u32;
        let posted = loop {
            let posted = slot.posted.load(Ordering::Acquire);
            if posted != seen || slot.stop.load(Ordering::Relaxed) {
                break posted;
            }
            std::hint::spin_loop();
            polls = polls.wrapping_add(1);
            if polls.is_multiple_of(256) && started.elapsed() > SPIN {
                slot.sleeping.store(true, Ordering::SeqCst);
                while slot.posted.load(Ordering::SeqCst) == seen && !slot.stop.load(Ordering::SeqCst) {
                    thread::park();
                }
                slot.sleeping.store(false, Ordering::SeqCst);
            }
        };
        if slot.stop.load(Ordering::SeqCst) {
            return;
        }
        seen = posted;
        // SAFETY: see `Slot`: the job of `posted` was written before it was published.
        let job = unsafe { *slot.job.get() };
        if let Some(job) = job {
            // SAFETY: the caller keeps the function alive until `finished` reaches `posted`.
            let function = unsafe { &*job.function };
            let result = catch_unwind(AssertUnwindSafe(|| function(job.part)));
            slot.panicked.store(result.is_err(), Ordering::Relaxed);
        }
        slot.finished.store(posted, Ordering::Release);
    }
}

/// Waits for the posted jobs of `workers[..count]` when dropped, so that the caller's
/// stack (which the jobs borrow) outlives them even when the caller's own part panics.
struct Joiner<'a> {
    workers: &'a [Worker],
}

impl Joiner<'_> {
    /// Spins until every worker has finished its job; whether one of them panicked.
    fn wait(&self) -> bool {
        let mut panicked = false;
        for worker in self.workers {
            let posted = worker.slot.posted.load(Ordering::Relaxed);
            while worker.slot.finished.load(Ordering::Acquire) != posted {
                std::hint::spin_loop();
            }
            panicked |= worker.slot.panicked.load(Ordering::Relaxed);
        }
        panicked
    }
}

impl Drop for Joiner<'_> {
    fn drop(&mut self) {
        self.wait();
    }
}

/// Runs `f(0)`, …, `f(parts − 1)`, in parallel on up to `parts` threads (the caller and
/// `parts − 1` workers, started on first use), and returns when every part has returned.
/// The parts must not depend on each other's order. A panic in any part is raised again
/// here once all parts have stopped.
pub(crate) fn for_parts(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    if parts <= 1 {
        if parts == 1 {
            f(0);
        }
        return;
    }
    let mut team = match TEAM.try_lock() {
        Ok(team) => team,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        // Busy (a nested or concurrent call): run the parts here, one after another.
        Err(TryLockError::WouldBlock) => return (0..parts).for_each(f),
    };
    while team.len() < parts - 1 {
        match spawn_worker() {
            Some(worker) => team.push(worker),
            None => break,
        }
    }
    // Parts beyond the workers available (if a thread could not be started) run on the caller.
    let helpers = team.len().min(parts - 1);
    let posted = &team[..helpers];
    // SAFETY: the pointer borrows `f`, which lives on the caller's stack; it is
    // dereferenced only by the workers' jobs posted here, and `joiner` (also on failure,
    // when dropped during unwinding) waits until each of those has finished before this
    // function returns, so it never outlives `f`. The lifetime is erased only to store it.
    let function: *const (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(f) };
    for (i, worker) in posted.iter().enumerate() {
        // SAFETY: the worker finished its previous job (every call waits for its jobs),
        // so nothing reads `job` now.
        unsafe { *worker.slot.job.get() = Some(Job { function, part: i + 1 }) };
        worker.slot.posted.fetch_add(1, Ordering::SeqCst);
        if worker.slot.sleeping.load(Ordering::SeqCst) {
            worker.thread.unpark();
        }
    }
    let joiner = Joiner { workers: posted };
    f(0);
    (helpers + 1..parts).for_each(f);
    let panicked = joiner.wait();
    drop(joiner);
    drop(team);
    if panicked {
        resume_unwind(Box::new("a kernel part panicked on a worker thread"));
    }
}

/// Runs `f(i, &mut parts[i])` for every part, each on its own thread as [`for_parts`]
/// runs them (part 0 on this one), and hands the parts back: the way threaded kernels give
/// each thread its own block of an output (a `&mut` slice or view) or collect a result per
/// part. A part whose `f` panicked is handed back as it was left.
pub(crate) fn for_each_part<T: Send>(parts: Vec<T>, f: &(dyn Fn(usize, &mut T) + Sync)) -> Vec<T> {
    let cells: Vec<Mutex<T>> = parts.into_iter().map(Mutex::new).collect();
    for_parts(cells.len(), &|i| {
        // Each part is locked by its own call alone: the lock is never contended.
        let mut part = cells[i].lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(i, &mut part);
    });
    cells
        .into_iter()
        .map(|cell| cell.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner()))
        .collect()
}

/// Elements below which a loop stays on the calling thread: PyTorch's grain size
/// (`at::internal::GRAIN_SIZE`).
///
/// Which loops split: only those that are compute-bound *and* write little (a sign mask,
/// per-channel sums). Memory-bound elementwise loops measured no faster on two threads of
/// the study machine, and a large output written by both threads made the
/// single-threaded kernels that read it next slower: `mask::fill_masked` split this way
/// ran 1.5× faster itself but made conv2d's backward 2 ms slower (10.4 against 8.3 ms),
/// as if the pages the other vCPU wrote first were far from this one. The one large write
/// that is split is the static code's outer product written out (`rank1::PARALLEL_DENSE`,
/// whose comment has the measurements): there one thread alone paid for lines the other
/// vCPU wrote last, in blocks the allocator handed back.
pub(crate) const GRAIN: usize = 32_768;

/// Runs `f(offset, chunk)` over `data` cut into one contiguous chunk per thread (each a
/// multiple of `align` items but the last; `offset` is the chunk's first index), in
/// parallel when [`super::gemm::num_threads`] is above 1 and the loop's work, `elements`
/// elements (a bit mask: 64 per item of `data`), is at least two [`GRAIN`]s; else
/// `f(0, data)` on this thread.
///
/// Generic in `f` (not `dyn`), so that on one thread the loop compiles exactly as if it
/// were written in place: a dynamic call hid the captured values from the optimiser and
/// made a masked fill 1.8× slower.
#[inline]
pub(crate) fn for_chunks_mut<T: Send>(
    elements: usize,
    data: &mut [T],
    align: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let parts = super::gemm::num_threads().min(elements / GRAIN).min(data.len()).max(1);
    if parts == 1 {
        return f(0, data);
    }
    let chunk = data.len().div_ceil(parts).next_multiple_of(align.max(1));
    for_each_part(data.chunks_mut(chunk).collect(), &|i, part| f(i * chunk, part));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_slice_once_aligned() {
        for threads in [1, 2, 3] {
            crate::kernels::gemm::set_num_threads(threads);
            let mut data = vec![0usize; 5 * GRAIN + 7];
            for_chunks_mut(data.len(), &mut data, 64, |offset, chunk: &mut [usize]| {
                assert_eq!(offset % 64, 0);
                chunk.iter_mut().enumerate().for_each(|(i, v)| *v += offset + i + 1);
            });
            crate::kernels::gemm::set_num_threads(1);
            assert!(data.iter().enumerate().all(|(i, &v)| v == i + 1), "threads {threads}");
        }
    }

    #[test]
    fn every_part_runs_exactly_once() {
        for parts in 0..6 {
            let counts: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
            for _ in 0..50 {
                for_parts(parts, &|i| {
                    counts[i].fetch_add(1, Ordering::Relaxed);
                });
            }
            assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 50), "parts {parts}");
        }
    }

    #[test]
    fn parts_write_disjoint_halves() {
        let mut data = vec![0usize; 1000];
        let parts = for_each_part(data.chunks_mut(250).collect(), &|i, chunk| {
            chunk.iter_mut().for_each(|v| *v = i + 1);
        });
        assert_eq!(parts.len(), 4);
        assert!(data.chunks(250).enumerate().all(|(i, c)| c.iter().all(|&v| v == i + 1)));
        let sums = for_each_part(vec![0usize; 3], &|i, sum| *sum = 10 * i);
        assert_eq!(sums, [0, 10, 20]);
    }

    #[test]
    fn nested_calls_run_serially_and_complete() {
        let total = AtomicUsize::new(0);
        for_parts(2, &|_| {
            for_parts(3, &|j| {
                total.fetch_add(j + 1, Ordering::Relaxed);
            });
        });
        assert_eq!(total.load(Ordering::Relaxed), 12);
    }

    #[test]
    fn a_panicking_worker_part_is_raised_in_the_caller_after_all_parts_stop() {
        let finished = AtomicUsize::new(0);
        let result = catch_unwind(AssertUnwindSafe(|| {
            for_parts(2, &|i| {
                if i == 1 {
                    panic!("part one fails");
                }
                finished.fetch_add(1, Ordering::Relaxed);
            });
        }));
        assert!(result.is_err());
        assert_eq!(finished.load(Ordering::Relaxed), 1);
        // The team still works afterwards.
        let total = AtomicUsize::new(0);
        for_parts(2, &|i| {
            total.fetch_add(i + 1, Ordering::Relaxed);
        });
        assert_eq!(total.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_worker_parked_after_the_spin_wakes_for_the_next_call() {
        for_parts(2, &|_| {});
        thread::sleep(SPIN * 3);
        let total = AtomicUsize::new(0);
        for_parts(2, &|i| {
            total.fetch_add(i + 1, Ordering::Relaxed);
        });
        assert_eq!(total.load(Ordering::Relaxed), 3);
    }
}
