//! [`SpinLock`]: one lock (and one protected value) per CPU.

use core::alloc::Layout;
use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::pool::{alloc_shared, Pool, RawAlloc, POOL_STRIDE};
use crate::{rseq, Error, PerCpu, ThisThread};

rseq! {
    /// Takes the calling CPU's lock (0 free, 1 held) if it is free; returns the lock word's address
    /// (which gives the CPU's index), or 0 when the lock is held.
    #[inline]
    fn spin_trylock(locks: &PerCpu<usize>) -> usize {
        let s = locks.current();
        // Acquire: the previous holder's writes to the CPU's value happen before its unlock
        // (a release store of 0); the load that sees that 0 must order our accesses after it.
        let held = load_acquire(s);
        if held != 0 { return 0; }
        commit store(s, 1usize);
        s as usize
    }

    /// `spin_trylock` with the thread's entry passed in (see [`LocalSpinLock`]).
    #[inline]
    fn spin_trylock_in(thread: ThisThread<'_>, locks: &PerCpu<usize>) -> usize {
        let s = locks.current();
        let held = load_acquire(s);
        if held != 0 { return 0; }
        commit store(s, 1usize);
        s as usize
    }
}

#[repr(align(128))]
struct Padded<T>(UnsafeCell<T>);

/// A per-CPU spinlock protecting one `T` per CPU: [`lock`](SpinLock::lock) takes the calling
/// CPU's lock with one restartable sequence (no atomic read-modify-write instruction), and the
/// guard gives `&mut` access to that CPU's `T`. The guard unlocks with a release store, from
/// whatever CPU the thread has moved to meanwhile.
///
/// Mutual exclusion: only sections running on CPU `i` ever set lock `i` (sections on one CPU are
/// atomic with respect to each other: the kernel aborts a preempted one), and a section only sets it
/// after reading 0 inside the same section; only the holder clears it.
///
/// Ordering (every architecture): the unlock is a release store of 0, and the section reads the
/// lock word with `load_acquire`, so the holder that sees that 0 sees everything the previous
/// holder wrote to the value. The acquire is an instruction where loads can pass later accesses:
/// `dmb ishld` after the load on aarch64, `dmb ish` on arm, `fence r, rw` on riscv64, `lwsync` on
/// ppc64le, `dbar 0x14` on loongarch64; nothing on x86_64 and s390x, whose loads are never
/// reordered with later loads or stores (the `asm!` block is a compiler barrier everywhere). A
/// section that aborts after the barrier has taken nothing, and the retry loads again. The guard's
/// `&mut T` is created after the section, so no access to `T` can move before the barrier.
///
/// In fallback mode the sequence runs under the runtime's per-index lock, which makes the same
/// test-and-set atomic, and its `load_acquire` is a relaxed load followed by an acquire fence.
///
/// Do not lock from a signal handler (the interrupted code may hold the lock of this CPU; use
/// [`try_lock`](SpinLock::try_lock) there).
///
/// ```
/// use rseq_dsl::percpu::SpinLock;
///
/// let lists: SpinLock<Vec<u32>> = SpinLock::new(|_cpu| Vec::new());
/// std::thread::scope(|s| {
///     for t in 0..4 {
///         let lists = &lists;
///         s.spawn(move || lists.lock().push(t));
///     }
/// });
/// let mut all: Vec<u32> = lists.into_inner().into_iter().flatten().collect();
/// all.sort();
/// assert_eq!(all, [0, 1, 2, 3]);
/// ```
pub struct SpinLock<T> {
    /// The lock words, one per CPU (a view of `raw`'s word in every chunk), held inline so that
    /// the section's operands are loaded from the lock itself (see docs/benchmarks).
    view: ManuallyDrop<PerCpu<usize>>,
    /// Address of CPU 0's lock word: a section's lock word address gives its index,
    /// `(word - base) / POOL_STRIDE` (a shift).
    base: usize,
    data: Box<[Padded<T>]>,
    /// Keeps the pool (and so `view`'s memory) alive.
    raw: RawAlloc,
}

// SAFETY: the `T`s move with the lock (they are dropped or returned by whoever owns it).
unsafe impl<T: Send> Send for SpinLock<T> {}
// SAFETY: a `T` is only reached through a guard, and at most one guard per index exists at a time
// (mutual exclusion, see the type's docs); a guard may hand `&mut T` to another thread than the one
// that created the value, hence `T: Send`.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> core::fmt::Debug for SpinLock<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SpinLock")
            .field("cpus", &self.data.len())
            .finish_non_exhaustive()
    }
}

impl<T> SpinLock<T> {
    /// Locks with CPU `cpu`'s value `init(cpu)`, in the shared [`Pool`].
    pub fn new(init: impl FnMut(usize) -> T) -> SpinLock<T> {
        let raw = alloc_shared(Layout::new::<usize>()).expect("a usize fits any pool");
        Self::from_raw(raw, init)
    }

    /// As [`new`](SpinLock::new), with the lock words in `pool`; `None` when it is full.
    pub fn new_in(pool: &Pool, init: impl FnMut(usize) -> T) -> Option<SpinLock<T>> {
        let raw = pool.alloc_raw(Layout::new::<usize>())?;
        Some(Self::from_raw(raw, init))
    }

    fn from_raw(raw: RawAlloc, init: impl FnMut(usize) -> T) -> SpinLock<T> {
        let data: Box<[Padded<T>]> = (0..raw.cpus())
            .map(init)
            .map(|v| Padded(UnsafeCell::new(v)))
            .collect();
        // SAFETY: a zeroed usize allocation (every lock free); the view is stored beside `raw`,
        // which keeps the pool alive, and is never used after it.
        let view = unsafe { raw.view::<usize>() };
        let base = raw.ptr(0) as usize;
        debug_assert_eq!(view.len(), data.len());
        SpinLock {
            view,
            base,
            data,
            raw,
        }
    }

    /// Number of instances (possible CPUs).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Always false.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// One attempt at the calling CPU's lock: `Ok(None)` when it is held, `Err(Error::Aborted)`
    /// when the section was restarted (nothing happened).
    ///
    /// # Errors
    /// Those of a generated `try_` function (see `docs/DSL.md`).
    #[inline]
    pub fn try_lock_once(&self) -> Result<Option<SpinGuard<'_, T>>, Error> {
        let word = try_spin_trylock(&self.view)?;
        Ok((word != 0).then(|| self.guard(word)))
    }

    /// The guard of the lock whose word is at `word` (a slot of `view`, just taken).
    #[inline(always)]
    fn guard(&self, word: usize) -> SpinGuard<'_, T> {
        let index = (word - self.base) / POOL_STRIDE;
        // SAFETY: `word` is a slot of `view`, whose slots are `base + i * POOL_STRIDE` for
        // `i < view.len() == data.len()` (the section checked the index against the length), so
        // `index` is in bounds of `data`; and it is an aligned usize living as long as `self`,
        // accessed only atomically.
        unsafe {
            SpinGuard {
                word: AtomicUsize::from_ptr(word as *mut usize),
                value: self.data.get_unchecked(index).0.get(),
                index,
                _not_send: PhantomData,
            }
        }
    }

    /// Takes the calling CPU's lock if it is free (retrying restarted sections).
    #[inline]
    pub fn try_lock(&self) -> Option<SpinGuard<'_, T>> {
        let word = spin_trylock(&self.view);
        (word != 0).then(|| self.guard(word))
    }

    /// Takes the calling CPU's lock, spinning (then yielding) while it is held. The CPU is chosen
    /// anew at each attempt, so a thread that migrates takes its new CPU's lock.
    #[inline]
    pub fn lock(&self) -> SpinGuard<'_, T> {
        let mut round = 0u32;
        loop {
            if let Some(g) = self.try_lock() {
                return g;
            }
            spin_wait(&mut round);
        }
    }

    /// A handle for locking from the calling thread in a loop: it holds the thread's token and a
    /// copy of the lock's slot parameters, so that, kept in a local, each
    /// [`lock`](LocalSpinLock::lock) is the section and the guard's address arithmetic alone (as
    /// [`Counter::local`](super::Counter::local)).
    ///
    /// ```
    /// use rseq_dsl::{percpu::SpinLock, this_thread};
    ///
    /// let l = SpinLock::new(|_cpu| 0u64);
    /// this_thread(|t| {
    ///     let local = l.local(t);
    ///     for _ in 0..1000 {
    ///         *local.lock() += 1;
    ///     }
    /// })
    /// .expect("this thread can run sequences");
    /// assert_eq!(l.into_inner().iter().sum::<u64>(), 1000);
    /// ```
    #[inline]
    pub fn local<'l, 't>(&'l self, thread: ThisThread<'t>) -> LocalSpinLock<'l, 't, T> {
        LocalSpinLock {
            // SAFETY: as in `from_raw`: the same allocation, and the view does not outlive `'l`,
            // during which `self.raw` keeps the pool alive.
            view: unsafe { self.raw.view::<usize>() },
            thread,
            lock: self,
        }
    }

    /// Whether CPU `cpu`'s lock is held now (a snapshot).
    pub fn is_locked(&self, cpu: usize) -> bool {
        cpu < self.len() && self.word(cpu).load(Ordering::Relaxed) != 0
    }

    fn word(&self, cpu: usize) -> &AtomicUsize {
        // SAFETY: an in-bounds, 8-aligned usize living as long as `self`; every access is atomic.
        unsafe { AtomicUsize::from_ptr(self.raw.ptr(cpu).cast()) }
    }

    /// Mutable access to every CPU's value (no lock needed: `&mut self` excludes guards).
    pub fn get_mut(&mut self, cpu: usize) -> Option<&mut T> {
        self.data.get_mut(cpu).map(|p| p.0.get_mut())
    }

    /// The values, in CPU order.
    pub fn into_inner(self) -> Vec<T> {
        self.data
            .into_vec()
            .into_iter()
            .map(|p| p.0.into_inner())
            .collect()
    }
}

/// Spins, then yields, while a lock is held.
fn spin_wait(round: &mut u32) {
    if *round < 64 {
        core::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
    *round = round.saturating_add(1);
}

/// [`SpinLock::lock`] for one thread and one lock, with the lookups hoisted: see
/// [`SpinLock::local`].
pub struct LocalSpinLock<'l, 't, T> {
    /// The lock words' view, copied: a local `LocalSpinLock` keeps these words in registers.
    view: ManuallyDrop<PerCpu<usize>>,
    thread: ThisThread<'t>,
    lock: &'l SpinLock<T>,
}

impl<'l, T> LocalSpinLock<'l, '_, T> {
    /// One attempt, as [`SpinLock::try_lock_once`].
    ///
    /// # Errors
    /// Those of a generated `try_` function (see `docs/DSL.md`).
    #[inline]
    pub fn try_lock_once(&self) -> Result<Option<SpinGuard<'l, T>>, Error> {
        let word = try_spin_trylock_in(self.thread, &self.view)?;
        Ok((word != 0).then(|| self.lock.guard(word)))
    }

    /// As [`SpinLock::try_lock`].
    #[inline]
    pub fn try_lock(&self) -> Option<SpinGuard<'l, T>> {
        let word = spin_trylock_in(self.thread, &self.view);
        (word != 0).then(|| self.lock.guard(word))
    }

    /// As [`SpinLock::lock`].
    #[inline]
    pub fn lock(&self) -> SpinGuard<'l, T> {
        let mut round = 0u32;
        loop {
            if let Some(g) = self.try_lock() {
                return g;
            }
            spin_wait(&mut round);
        }
    }
}

impl<T> core::fmt::Debug for LocalSpinLock<'_, '_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LocalSpinLock")
            .field("thread", &self.thread)
            .finish_non_exhaustive()
    }
}

/// A held per-CPU lock of a [`SpinLock`]; dereferences to that CPU's value; unlocks on drop.
///
/// Not `Send`, like `std`'s guards (dropping it on another thread would be sound for this lock, but
/// it keeps the usual discipline).
pub struct SpinGuard<'a, T> {
    /// The held lock's word.
    word: &'a AtomicUsize,
    /// The value it protects.
    value: *mut T,
    index: usize,
    /// Borrows the lock's values; not `Send`.
    _not_send: PhantomData<(&'a T, *const ())>,
}

// SAFETY: sharing a guard only shares `&T`, which needs `T: Sync`.
unsafe impl<T: Sync> Sync for SpinGuard<'_, T> {}

impl<T> core::fmt::Debug for SpinGuard<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SpinGuard")
            .field("cpu", &self.index)
            .finish_non_exhaustive()
    }
}

impl<T> SpinGuard<'_, T> {
    /// The index (CPU) whose lock is held: the CPU the thread ran on when it took the lock (in
    /// fallback mode, the index the runtime's lock gave the sequence).
    pub fn cpu(&self) -> usize {
        self.index
    }
}

impl<T> core::ops::Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard holds the lock of `value`, so no other reference to that value exists
        // (see `Sync` for SpinLock); `value` points into the lock's `data`, borrowed for 'a.
        unsafe { &*self.value }
    }
}

impl<T> core::ops::DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference through the guard.
        unsafe { &mut *self.value }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        self.word.store(0, Ordering::Release);
    }
}
