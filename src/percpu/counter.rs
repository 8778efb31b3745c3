//! [`Counter`]: per-CPU event counter.

use core::alloc::Layout;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use super::pool::{alloc_shared, Pool, RawAlloc};
use crate::{rseq, PerCpu, ThisThread};

rseq! {
    /// Adds `n` to the calling CPU's instance (`counters` is a view of the counter's `u64` in every
    /// pool chunk).
    #[inline]
    fn counter_add(counters: &PerCpu<u64>, n: u64) {
        let s = counters.current();
        let v = load(s);
        commit store(s, v + n);
    }

    /// `counter_add` with the thread's entry passed in (see [`LocalCounter`]).
    #[inline]
    fn counter_add_in(thread: ThisThread<'_>, counters: &PerCpu<u64>, n: u64) {
        let s = counters.current();
        let v = load(s);
        commit store(s, v + n);
    }
}

/// A per-CPU counter: [`add`](Counter::add) is one restartable sequence on the calling CPU's
/// instance (no atomic instruction, no shared cache line); [`sum`](Counter::sum) adds all CPUs'
/// instances up.
///
/// Arithmetic wraps (modulo 2^64): [`sub`](Counter::sub) adds the two's complement, so the sum is
/// exact whenever the true total is in `0..2^64`, even if single CPUs' instances "go negative".
///
/// # Reset from another thread
///
/// [`reset`](Counter::reset) never writes an instance (that would race with sections: a section that
/// loaded `v` before the reset and commits `v + n` after it would bring `v` back, and fencing after
/// the write cannot abort a section that already committed). Instead each CPU's instance is a running
/// total that only sections write, and the counter keeps, per CPU, the total already taken by
/// resets: `reset` reads each instance once (an atomic load: the value includes exactly the adds
/// committed before the read, because each commit is one store), returns the difference to what was
/// taken, and records the new total. Every add is therefore counted by exactly one `reset` (or by a
/// later [`sum`](Counter::sum)): nothing is lost or counted twice, with no fence and no cost on the
/// hot path. Resets are serialized by a mutex.
///
/// ```
/// use rseq_dsl::percpu::Counter;
///
/// let c = Counter::new();
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| (0..1000).for_each(|_| c.add(1)));
///     }
/// });
/// c.sub(10);
/// assert_eq!(c.sum(), 3990);
/// assert_eq!(c.reset(), 3990);
/// c.add(5);
/// assert_eq!(c.sum(), 5);
/// ```
pub struct Counter {
    /// This counter's u64 in every chunk of `raw`'s pool, held inline so that `add` loads the slot
    /// parameters from `self` directly, not through the pool's `Arc` (about half the cost per call).
    view: ManuallyDrop<PerCpu<u64>>,
    /// Keeps the pool (and so `view`'s memory) alive.
    raw: RawAlloc,
    /// Per CPU: the instance's value at the last reset. Written under `resets` only.
    taken: Box<[AtomicU64]>,
    resets: Mutex<()>,
}

impl core::fmt::Debug for Counter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Counter")
            .field("sum", &self.sum())
            .finish_non_exhaustive()
    }
}

impl Default for Counter {
    fn default() -> Self {
        Self::new()
    }
}

impl Counter {
    /// A zero counter in the shared [`Pool`].
    pub fn new() -> Counter {
        Counter::from_raw(alloc_shared(Layout::new::<u64>()).expect("a u64 fits any pool"))
    }

    /// A zero counter in `pool`, or `None` when the pool is full.
    pub fn new_in(pool: &Pool) -> Option<Counter> {
        pool.alloc_raw(Layout::new::<u64>()).map(Counter::from_raw)
    }

    fn from_raw(raw: RawAlloc) -> Counter {
        // SAFETY: `raw` is a zeroed u64 allocation (`Layout::new::<u64>()`), and `raw`, which keeps
        // the pool alive, is stored beside the view, which is never used after it.
        let view = unsafe { raw.view::<u64>() };
        Counter {
            taken: (0..raw.cpus()).map(|_| AtomicU64::new(0)).collect(),
            view,
            raw,
            resets: Mutex::new(()),
        }
    }

    /// Adds `n` (wrapping) to the calling CPU's instance.
    #[inline]
    pub fn add(&self, n: u64) {
        counter_add(&self.view, n);
    }

    /// A handle for adding from the calling thread in a loop: it holds the thread's token and a copy
    /// of the counter's slot parameters, so that, kept in a local, each
    /// [`add`](LocalCounter::add) is the section alone (no per-call lookup of the thread's area, no
    /// reload of the counter's fields: see `docs/benchmarks/README.md` for what that saves).
    ///
    /// ```
    /// use rseq_dsl::{percpu::Counter, this_thread};
    ///
    /// let c = Counter::new();
    /// this_thread(|t| {
    ///     let local = c.local(t);
    ///     for _ in 0..1000 {
    ///         local.add(1);
    ///     }
    /// })
    /// .expect("this thread can run sequences");
    /// assert_eq!(c.sum(), 1000);
    /// ```
    #[inline]
    pub fn local<'c, 't>(&'c self, thread: ThisThread<'t>) -> LocalCounter<'c, 't> {
        LocalCounter {
            // SAFETY: as in `from_raw`: the same zeroed u64 allocation, and the view does not
            // outlive `'c`, during which `self.raw` keeps the pool alive.
            view: unsafe { self.raw.view::<u64>() },
            thread,
            _counter: PhantomData,
        }
    }

    /// Subtracts `n` (wrapping; see the type's docs).
    #[inline]
    pub fn sub(&self, n: u64) {
        self.add(n.wrapping_neg());
    }

    /// One attempt of [`add`](Counter::add): `Err(Error::Aborted)` when the kernel restarted the
    /// section (nothing was added). For tests and abort statistics.
    ///
    /// # Errors
    /// Those of a generated `try_` function (see `docs/DSL.md`).
    #[inline]
    pub fn try_add(&self, n: u64) -> Result<(), crate::Error> {
        try_counter_add(&self.view, n)
    }

    fn instance(&self, cpu: usize) -> &AtomicU64 {
        // SAFETY: an in-bounds, 8-aligned u64 that lives as long as `self`; every access to it is
        // atomic (sections' single-copy-atomic aligned stores, and these atomic loads).
        unsafe { AtomicU64::from_ptr(self.raw.ptr(cpu).cast()) }
    }

    /// The total since creation or the last [`reset`](Counter::reset). Relaxed: each CPU's instance
    /// is read once, so adds racing with the call may or may not be included (but never half).
    pub fn sum(&self) -> u64 {
        (0..self.raw.cpus())
            .map(|cpu| {
                // Taken first (acquire pairs with reset's release): the instance read afterwards is
                // at least as recent as the value reset recorded, so the difference never underflows.
                let taken = self.taken[cpu].load(Ordering::Acquire);
                self.instance(cpu)
                    .load(Ordering::Relaxed)
                    .wrapping_sub(taken)
            })
            .fold(0, u64::wrapping_add)
    }

    /// Every CPU's share of [`sum`](Counter::sum), in CPU order.
    pub fn per_cpu(&self) -> Vec<u64> {
        (0..self.raw.cpus())
            .map(|cpu| {
                let taken = self.taken[cpu].load(Ordering::Acquire);
                self.instance(cpu)
                    .load(Ordering::Relaxed)
                    .wrapping_sub(taken)
            })
            .collect()
    }

    /// Returns the total and starts counting from zero, safely from any thread while others add
    /// (see the type's docs for why no add is lost or counted twice).
    pub fn reset(&self) -> u64 {
        let _serial = self.resets.lock().unwrap_or_else(PoisonError::into_inner);
        let mut total = 0u64;
        for cpu in 0..self.raw.cpus() {
            let now = self.instance(cpu).load(Ordering::Relaxed);
            let before = self.taken[cpu].swap(now, Ordering::Release);
            total = total.wrapping_add(now.wrapping_sub(before));
        }
        total
    }
}

/// [`Counter::add`] for one thread and one counter, with the lookups hoisted: see
/// [`Counter::local`].
pub struct LocalCounter<'c, 't> {
    /// The counter's view, copied: a local `LocalCounter` keeps these words in registers.
    view: ManuallyDrop<PerCpu<u64>>,
    thread: ThisThread<'t>,
    _counter: PhantomData<&'c Counter>,
}

impl LocalCounter<'_, '_> {
    /// Adds `n` (wrapping) to the calling CPU's instance.
    #[inline]
    pub fn add(&self, n: u64) {
        counter_add_in(self.thread, &self.view, n);
    }

    /// Subtracts `n` (wrapping).
    #[inline]
    pub fn sub(&self, n: u64) {
        self.add(n.wrapping_neg());
    }

    /// One attempt of [`add`](LocalCounter::add), as [`Counter::try_add`].
    ///
    /// # Errors
    /// Those of a generated `try_` function (see `docs/DSL.md`).
    #[inline]
    pub fn try_add(&self, n: u64) -> Result<(), crate::Error> {
        try_counter_add_in(self.thread, &self.view, n)
    }
}

impl core::fmt::Debug for LocalCounter<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LocalCounter")
            .field("thread", &self.thread)
            .finish_non_exhaustive()
    }
}
