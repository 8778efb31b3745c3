//! [`Counter`]: per-CPU event counter.

use core::alloc::Layout;
use core::mem::ManuallyDrop;
#[cfg(not(target_pointer_width = "64"))]
use core::sync::atomic::AtomicUsize;
use core::sync::atomic::{AtomicU64, Ordering};

use super::pool::{alloc_shared, Pool, RawAlloc};
use crate::remote::RemoteLock;
use crate::{rseq, PerCpu, ThisThread};

// The per-CPU instance is a machine word: `u64` where registers hold 64 bits. Where they hold 32
// (arm), a section cannot commit a 64-bit value in one store, so each instance is a `usize` running
// total modulo 2^32 and the counter keeps the carries out of it in one shared `AtomicU64`: an add
// whose commit wrapped the instance adds 2^32 there right after the commit (see `Counter::add`).
#[cfg(target_pointer_width = "64")]
type Instance = u64;
#[cfg(not(target_pointer_width = "64"))]
type Instance = usize;

#[cfg(target_pointer_width = "64")]
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

#[cfg(not(target_pointer_width = "64"))]
rseq! {
    /// Adds `n` (modulo the word) to the calling CPU's instance; returns the instance's value
    /// before the add, from which the caller sees whether the commit wrapped.
    #[inline]
    fn counter_add_word(counters: &PerCpu<usize>, n: usize) -> usize {
        let s = counters.current();
        let v = load(s);
        commit store(s, v + n);
        v
    }

    /// `counter_add_word` with the thread's entry passed in (see [`LocalCounter`]).
    #[inline]
    fn counter_add_word_in(thread: ThisThread<'_>, counters: &PerCpu<usize>, n: usize) -> usize {
        let s = counters.current();
        let v = load(s);
        commit store(s, v + n);
        v
    }
}

/// 32-bit targets: what an add of `n` leaves for the shared carry after its section added
/// `n mod 2^32` to an instance that held `before`: the high half of `n`, plus 2^32 when the
/// instance wrapped (all modulo 2^64).
#[cfg_attr(target_pointer_width = "64", allow(dead_code))]
#[inline]
fn carry_of(n: u64, before: u32) -> u64 {
    #[allow(clippy::cast_possible_truncation)]
    let low = n as u32; // the low half, which the section added
    let wrapped = before.checked_add(low).is_none();
    (n & !u64::from(u32::MAX)).wrapping_add(if wrapped { 1 << 32 } else { 0 })
}

/// A per-CPU counter: [`add`](Counter::add) is one restartable sequence on the calling CPU's
/// instance (no atomic instruction, no shared cache line); [`sum`](Counter::sum) adds all CPUs'
/// instances up.
///
/// Arithmetic wraps (modulo 2^64): [`sub`](Counter::sub) adds the two's complement, so the sum is
/// exact whenever the true total is in `0..2^64`, even if single CPUs' instances "go negative".
///
/// # On 32-bit targets (arm)
///
/// The same API and the same exact totals, with one difference in cost and one in timing. A
/// section can commit only a 32-bit instance there, so the counter also keeps one shared carry
/// word: an add whose 32-bit commit wrapped (or whose `n` has a high half, as every `sub` has)
/// adds the rest to the carry with one atomic add right after its section. Such adds are rare for
/// small positive `n` (one per 2^32 counted per CPU) and every `sub` takes one. A [`sum`](Counter::sum)
/// or [`reset`](Counter::reset) that runs between such an add's commit and its carry update is off
/// by 2^32 (or by the high half of `n`) for that moment; the carry is never lost, so the next read
/// is exact again and every add is still counted by exactly one `reset`.
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
    /// This counter's instance in every chunk of `raw`'s pool, held inline so that `add` loads the
    /// slot parameters from `self` directly, not through the pool's `Arc` (about half the cost per
    /// call).
    view: ManuallyDrop<PerCpu<Instance>>,
    /// Keeps the pool (and so `view`'s memory) alive.
    raw: RawAlloc,
    /// Per CPU: the instance's value at the last reset (as a u64). Written under `resets` only.
    taken: Box<[AtomicU64]>,
    /// 32-bit targets: what adds carried out of the 32-bit instances, and the high halves of `n`
    /// (always 0 on 64-bit targets).
    carry: AtomicU64,
    resets: RemoteLock,
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
        Counter::from_raw(alloc_shared(Layout::new::<Instance>()).expect("a word fits any pool"))
    }

    /// A zero counter in `pool`, or `None` when the pool is full.
    pub fn new_in(pool: &Pool) -> Option<Counter> {
        pool.alloc_raw(Layout::new::<Instance>())
            .map(Counter::from_raw)
    }

    fn from_raw(raw: RawAlloc) -> Counter {
        // SAFETY: `raw` is a zeroed `Instance` allocation (`Layout::new::<Instance>()`), and `raw`,
        // which keeps the pool alive, is stored beside the view, which is never used after it.
        let view = unsafe { raw.view::<Instance>() };
        Counter {
            taken: (0..raw.cpus()).map(|_| AtomicU64::new(0)).collect(),
            view,
            raw,
            carry: AtomicU64::new(0),
            resets: RemoteLock::new(),
        }
    }

    /// Adds `n` (wrapping) to the calling CPU's instance.
    #[inline]
    pub fn add(&self, n: u64) {
        #[cfg(target_pointer_width = "64")]
        counter_add(&self.view, n);
        #[cfg(not(target_pointer_width = "64"))]
        self.carry_after(n, counter_add_word(&self.view, n as usize));
    }

    /// 32-bit targets: the part of an add of `n` that the section (which found `before` in the
    /// instance) could not hold goes to the shared carry.
    #[cfg(not(target_pointer_width = "64"))]
    #[inline]
    fn carry_after(&self, n: u64, before: usize) {
        let carry = carry_of(n, before as u32);
        if carry != 0 {
            self.carry.fetch_add(carry, Ordering::Relaxed);
        }
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
            // SAFETY: as in `from_raw`: the same zeroed allocation, and the view does not outlive
            // `'c`, during which `self.raw` keeps the pool alive.
            view: unsafe { self.raw.view::<Instance>() },
            thread,
            counter: self,
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
        #[cfg(target_pointer_width = "64")]
        return try_counter_add(&self.view, n);
        #[cfg(not(target_pointer_width = "64"))]
        try_counter_add_word(&self.view, n as usize).map(|before| self.carry_after(n, before))
    }

    /// CPU `cpu`'s instance, read atomically, as a u64.
    fn instance(&self, cpu: usize) -> u64 {
        // SAFETY: an in-bounds, aligned `Instance` that lives as long as `self`; every access to it
        // is atomic (sections' single-copy-atomic aligned word stores, and these atomic loads).
        #[cfg(target_pointer_width = "64")]
        return unsafe { AtomicU64::from_ptr(self.raw.ptr(cpu).cast()) }.load(Ordering::Relaxed);
        // SAFETY: as above.
        #[cfg(not(target_pointer_width = "64"))]
        (unsafe { AtomicUsize::from_ptr(self.raw.ptr(cpu).cast()) }.load(Ordering::Relaxed) as u64)
    }

    /// The total since creation or the last [`reset`](Counter::reset). Relaxed: each CPU's instance
    /// is read once, so adds racing with the call may or may not be included (but never half).
    pub fn sum(&self) -> u64 {
        self.per_cpu_shares()
            .fold(self.carry.load(Ordering::Relaxed), u64::wrapping_add)
    }

    /// Every CPU's share of [`sum`](Counter::sum), in CPU order (on 32-bit targets, the shared
    /// carry is not in any CPU's share).
    pub fn per_cpu(&self) -> Vec<u64> {
        self.per_cpu_shares().collect()
    }

    fn per_cpu_shares(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.raw.cpus()).map(|cpu| {
            // Taken first (acquire pairs with reset's release): the instance read afterwards is at
            // least as recent as the value reset recorded, so the difference never underflows.
            let taken = self.taken[cpu].load(Ordering::Acquire);
            self.instance(cpu).wrapping_sub(taken)
        })
    }

    /// Returns the total and starts counting from zero, safely from any thread while others add
    /// (see the type's docs for why no add is lost or counted twice).
    pub fn reset(&self) -> u64 {
        let _serial = self.resets.lock();
        let mut total = self.carry.swap(0, Ordering::Relaxed);
        for cpu in 0..self.raw.cpus() {
            let now = self.instance(cpu);
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
    view: ManuallyDrop<PerCpu<Instance>>,
    thread: ThisThread<'t>,
    /// The counter (its carry, on 32-bit targets).
    #[cfg_attr(target_pointer_width = "64", allow(dead_code))]
    counter: &'c Counter,
}

impl LocalCounter<'_, '_> {
    /// Adds `n` (wrapping) to the calling CPU's instance.
    #[inline]
    pub fn add(&self, n: u64) {
        #[cfg(target_pointer_width = "64")]
        counter_add_in(self.thread, &self.view, n);
        #[cfg(not(target_pointer_width = "64"))]
        self.counter
            .carry_after(n, counter_add_word_in(self.thread, &self.view, n as usize));
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
        #[cfg(target_pointer_width = "64")]
        return try_counter_add_in(self.thread, &self.view, n);
        #[cfg(not(target_pointer_width = "64"))]
        try_counter_add_word_in(self.thread, &self.view, n as usize)
            .map(|before| self.counter.carry_after(n, before))
    }
}

impl core::fmt::Debug for LocalCounter<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LocalCounter")
            .field("thread", &self.thread)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::carry_of;

    /// The 32-bit carry rule, checked on every target: instance + carry always changes by `n`
    /// modulo 2^64.
    #[test]
    fn carry_keeps_the_total() {
        let cases = [
            0u64,
            1,
            5,
            u64::from(u32::MAX),
            1 << 32,
            (1 << 32) + 7,
            u64::MAX,
            u64::MAX - 3,
        ];
        for before in [0u32, 1, 7, u32::MAX - 3, u32::MAX] {
            for &n in &cases {
                #[allow(clippy::cast_possible_truncation)]
                let after = before.wrapping_add(n as u32);
                let total_before = u64::from(before);
                let total_after = u64::from(after).wrapping_add(carry_of(n, before));
                assert_eq!(
                    total_after,
                    total_before.wrapping_add(n),
                    "before {before}, n {n}"
                );
            }
        }
        assert_eq!(carry_of(1, 5), 0, "a small add carries nothing");
    }
}
