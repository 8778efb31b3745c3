//! Fallback mode: per-index locks for generated fallback bodies.
//!
//! When the process cannot run critical sections natively (see [`crate::Status`]), every generated
//! sequence runs a Rust body with the same semantics under one of the runtime's per-index locks. Slots of
//! every `PerCpu` with the same index share a lock, so a sequence touching several storages at one index
//! is still atomic.
//!
//! # Guarantee
//!
//! Each sequence is atomic with respect to every other sequence at the same index: the same
//! linearizability as native mode, where the kernel guarantees it per CPU. The slot a `current()`
//! sequence uses is a *free* index, starting from `sched_getcpu()`: any index is correct (per-CPU data
//! never promises that the caller's CPU is the one updated), and starting at the current CPU keeps the
//! cache behaviour close to native.
//!
//! # Signals
//!
//! A signal handler may run a sequence while the code it interrupted holds a lock (or is taking one).
//! Such a *nested* attempt never waits: `current()` sequences take a free index in one pass over the
//! table, explicit-index sequences take their index if it is free, and otherwise both get
//! [`Error::WouldDeadlock`]. Waiting there could deadlock: with two indices, threads A and B holding
//! one each and both interrupted by handlers that wait for the other's index, neither handler returns
//! (`rseq-stress`'s `signal-seq` scenario hung exactly so). Since only threads holding no lock ever
//! wait, no cycle of waiters can form. A per-thread count, raised before the compare-and-swap and
//! lowered after the release, tells a handler that its thread is inside a lock operation.
//!
//! # fork
//!
//! A child process has only the forking thread; locks held by the other threads at the time of the
//! fork are released in the child (a `pthread_atfork` handler). The data they protected is in a state a
//! native abort could leave (the fallback body runs the native steps in order, the commit last), which
//! sequences tolerate by construction.
//!
//! # Cost
//!
//! The fast path, inlined into every generated fallback body: one `sched_getcpu()` (glibc reads its
//! rseq area when it registered one, else the vDSO), a compare with the table's length (no division),
//! one thread-local access (the busy count, whose address is the thread's token), one
//! compare-and-swap on the CPU's index, the body, one release store and the busy count lowered
//! through the guard (no second thread-local access). `enter()` answers fallback mode from the
//! decision word without a call. That is the per-CPU `lock xadd` baseline's cost (`sched_getcpu()`
//! and one locked instruction) plus the body and a few plain instructions: `Counter::add` went from
//! 248 to 124 instructions per call (callgrind, where `sched_getcpu()` takes 30 of them), and the
//! structures measure 1.07-1.17x that baseline at 1 and at 8 threads on 2 CPUs (were 1.75-2.5x;
//! `benches/compare.rs`, fallback section). Reading the CPU from glibc's rseq area directly instead
//! of calling `sched_getcpu()` (which reads the same field) measured no difference.
//!
//! A lock is held for most of an operation, so a thread preempted while it runs sequences in a loop
//! is often preempted holding its CPU's index. Every other thread then running on that CPU used to
//! find the index held at every operation of its time slice and take another CPU's index instead: two
//! compare-and-swaps and the other CPU's cache lines per operation, for milliseconds (with 8
//! threads on 2 CPUs, 5-45% of operations, and 1.3-2x the 1-thread cost). The lock word now
//! tells such a waiter what is going on: its low bit (`LOCAL`) says the holder took the index of
//! the CPU it ran on, and a waiter running on that very CPU knows the holder is not running. It
//! yields the CPU (at most `YIELDS` times, never when nested), which lets the holder finish its
//! operation, and only then scans. A yield costs a system call once per such time slice instead of
//! a slow path at every operation; 8 threads on 2 CPUs measure as 1 thread does.

use core::cell::Cell;
use core::marker::PhantomData;
use core::sync::atomic::{compiler_fence, AtomicPtr, AtomicUsize, Ordering};

use crate::error::Error;
use crate::percpu::possible_cpus;

#[repr(align(128))]
struct Lock(AtomicUsize);

static LOCKS: AtomicPtr<Lock> = AtomicPtr::new(core::ptr::null_mut());
/// The table's length, published (release) after the pointer: non-zero means the table is ready.
static LOCKS_LEN: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Locks this thread holds or is taking: non-zero in a signal handler means "nested". Its
    /// address is the thread's token (a non-zero value unique to each live thread, stored in the
    /// locks it holds), so one thread-local access gives both.
    static BUSY: Cell<usize> = const { Cell::new(0) };
}

/// The calling thread's busy count; its address is the thread's token.
#[inline(always)]
fn busy_cell() -> *const Cell<usize> {
    BUSY.with(core::ptr::from_ref)
}

/// Sets the busy count. The signal handler of this thread must see the count raised before the
/// lock is taken and until it is released: the fences keep the compiler from moving the store
/// across the lock operations (a handler runs on the same thread, so no hardware fence is needed).
#[inline(always)]
fn set_busy(busy: &Cell<usize>, v: usize) {
    compiler_fence(Ordering::SeqCst);
    busy.set(v);
    compiler_fence(Ordering::SeqCst);
}

/// In a forked child, releases the locks the vanished threads held (see the module docs).
extern "C" fn release_after_fork() {
    let n = LOCKS_LEN.load(Ordering::Acquire);
    if n == 0 {
        return;
    }
    // SAFETY: a non-zero length is published after the pointer of a leaked table of n elements.
    let locks = unsafe { core::slice::from_raw_parts(LOCKS.load(Ordering::Relaxed), n) };
    let me = busy_cell() as usize;
    for l in locks {
        let owner = l.0.load(Ordering::Relaxed);
        if owner != 0 && owner & !LOCAL != me {
            l.0.store(0, Ordering::Release);
        }
    }
}

/// Allocates the lock table (once; called when the process decides on fallback mode, so that later
/// calls, including ones in signal handlers, never allocate).
pub(crate) fn init_locks() {
    if !LOCKS.load(Ordering::Acquire).is_null() {
        return;
    }
    let n = possible_cpus();
    let table: Box<[Lock]> = (0..n).map(|_| Lock(AtomicUsize::new(0))).collect();
    let p = Box::into_raw(table).cast::<Lock>();
    match LOCKS.compare_exchange(
        core::ptr::null_mut(),
        p,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => {
            LOCKS_LEN.store(n, Ordering::Release);
            // SAFETY: registers a child handler that only touches the leaked lock table.
            unsafe { libc::pthread_atfork(None, None, Some(release_after_fork)) };
        }
        Err(_) => {
            // SAFETY: `p` came from Box::into_raw of a slice of length n just above and was never shared.
            drop(unsafe { Box::from_raw(core::ptr::slice_from_raw_parts_mut(p, n)) });
        }
    }
}

/// The lock table: one acquire load and a predicted branch once it exists.
#[inline(always)]
fn locks() -> &'static [Lock] {
    let n = LOCKS_LEN.load(Ordering::Acquire);
    if n == 0 {
        return locks_slow();
    }
    // SAFETY: a non-zero length is published (release) after the pointer of a leaked table of n
    // elements (never freed).
    unsafe { core::slice::from_raw_parts(LOCKS.load(Ordering::Relaxed), n) }
}

#[cold]
#[inline(never)]
fn locks_slow() -> &'static [Lock] {
    init_locks();
    let mut n = LOCKS_LEN.load(Ordering::Acquire);
    while n == 0 {
        // The winner of init_locks publishes the pointer before the length: wait for that store.
        core::hint::spin_loop();
        n = LOCKS_LEN.load(Ordering::Acquire);
    }
    // SAFETY: as in `locks`.
    unsafe { core::slice::from_raw_parts(LOCKS.load(Ordering::Relaxed), n) }
}

/// Holds the fallback lock of one index; unlocks (release ordering) on drop.
#[derive(Debug)]
pub struct FallbackGuard {
    index: usize,
    lock: &'static AtomicUsize,
    /// The holding thread's busy count (the guard is not `Send`: it is dropped on that thread).
    busy: *const Cell<usize>,
    _not_send: PhantomData<*const ()>,
}

impl FallbackGuard {
    /// The locked index: the slot the sequence operates on.
    #[inline]
    pub fn index(&self) -> usize {
        self.index
    }
}

impl Drop for FallbackGuard {
    #[inline]
    fn drop(&mut self) {
        self.lock.store(0, Ordering::Release);
        // SAFETY: `busy` is the thread-local of the thread that took the lock, which is the thread
        // dropping the guard (not `Send`); a const-initialised thread-local without destructor stays
        // valid as long as its thread runs.
        let busy = unsafe { &*self.busy };
        set_busy(busy, busy.get().wrapping_sub(1));
    }
}

/// Low bit of a lock word (the token, a thread-local's address, is even): the holder took the index
/// of the CPU it was running on. A thread that finds that index held while running on that CPU
/// knows the holder is not running (preempted, or migrated).
const LOCAL: usize = 1;

/// One attempt at index `i`: the busy count raised around the compare-and-swap, kept raised on
/// success (the guard lowers it after the release). `Err(owner)` when the lock is held.
#[inline(always)]
fn try_take(
    locks: &'static [Lock],
    i: usize,
    busy: *const Cell<usize>,
    tag: usize,
) -> Result<FallbackGuard, usize> {
    let lock = &locks[i].0;
    // SAFETY: `busy` is the calling thread's own thread-local (from `busy_cell`).
    let b = unsafe { &*busy };
    let depth = b.get();
    set_busy(b, depth.wrapping_add(1));
    match lock.compare_exchange(0, busy as usize | tag, Ordering::Acquire, Ordering::Relaxed) {
        Ok(_) => Ok(FallbackGuard {
            index: i,
            lock,
            busy,
            _not_send: PhantomData,
        }),
        Err(owner) => {
            set_busy(b, depth);
            Err(owner)
        }
    }
}

fn backoff(round: u32) {
    if round < 64 {
        core::hint::spin_loop();
    } else {
        // SAFETY: sched_yield has no preconditions and is async-signal-safe.
        unsafe { libc::sched_yield() };
    }
}

/// The index `sched_getcpu()` names (its remainder modulo `n` if the kernel reports a CPU beyond the
/// table, 0 on error): a compare, the division only on the cold path. With the tag the lock word
/// gets: `LOCAL` when the index is the CPU's own.
#[inline(always)]
fn start_index(n: usize) -> (usize, usize) {
    // SAFETY: sched_getcpu has no preconditions (reads glibc's rseq area, else vDSO/syscall;
    // async-signal-safe); -1 on error.
    let cpu = unsafe { libc::sched_getcpu() };
    match usize::try_from(cpu) {
        Ok(c) if c < n => (c, LOCAL),
        _ => (start_index_slow(cpu, n), 0),
    }
}

#[cold]
#[inline(never)]
fn start_index_slow(cpu: i32, n: usize) -> usize {
    usize::try_from(cpu).unwrap_or(0) % n
}

/// Locks a free index, starting at the calling thread's CPU (`current()` sequences).
///
/// # Errors
/// [`Error::WouldDeadlock`] when every index is held by this very thread, or when a nested attempt (a
/// signal handler that interrupted a lock operation of its thread) finds no free index.
#[inline(always)]
pub fn fallback_lock_current() -> Result<FallbackGuard, Error> {
    let locks = locks();
    let busy = busy_cell();
    let (start, tag) = start_index(locks.len());
    // SAFETY: the calling thread's own thread-local.
    let nested = unsafe { (*busy).get() } > 0;
    // Fast path: the start index, free (the common case while threads do not outnumber CPUs).
    match try_take(locks, start, busy, tag) {
        Ok(g) => Ok(g),
        Err(_) => lock_current_scan(locks, start, busy, nested),
    }
}

/// How many times a thread that finds its CPU's index held by a preempted holder (the lock word's
/// `LOCAL` bit, taken on the CPU the thread now runs on) yields the CPU to it before scanning the
/// other indices. See "Cost" in the module docs for why.
const YIELDS: u32 = 2;

/// The rest of [`fallback_lock_current`]: unless nested, yields (at most `YIELDS` times) while
/// `start` is held by a thread that took it on this CPU; then scans from `start + 1` (then `start`
/// again), reading each lock before trying to take it (a held lock's line is not written), waiting
/// between rounds.
#[inline(never)]
fn lock_current_scan(
    locks: &'static [Lock],
    start: usize,
    busy: *const Cell<usize>,
    nested: bool,
) -> Result<FallbackGuard, Error> {
    let n = locks.len();
    let me = busy as usize;
    if !nested {
        for _ in 0..YIELDS {
            let owner = locks[start].0.load(Ordering::Relaxed);
            if owner == 0 {
                match try_take(locks, start, busy, 0) {
                    Ok(g) => return Ok(g),
                    Err(_) => break,
                }
            }
            if owner & LOCAL == 0 || owner & !LOCAL == me {
                break;
            }
            // SAFETY: sched_yield has no preconditions.
            unsafe { libc::sched_yield() };
        }
    }
    for round in 0u32.. {
        let mut all_mine = true;
        let mut i = start;
        for _ in 0..n {
            i += 1;
            if i == n {
                i = 0;
            }
            let owner = locks[i].0.load(Ordering::Relaxed);
            let owner = if owner == 0 {
                match try_take(locks, i, busy, 0) {
                    Ok(g) => return Ok(g),
                    Err(owner) => owner,
                }
            } else {
                owner
            };
            all_mine &= owner & !LOCAL == me;
        }
        if all_mine || nested {
            return Err(Error::WouldDeadlock);
        }
        backoff(round);
    }
    unreachable!("the loop above only ends by returning")
}

/// Locks exactly `index` (explicit-CPU sequences).
///
/// # Errors
/// [`Error::IndexOutOfRange`] if `index` has no lock, [`Error::WouldDeadlock`] if this very thread holds it
/// or a nested attempt (see [`fallback_lock_current`]) finds it held.
#[inline(always)]
pub fn fallback_lock_index(index: usize) -> Result<FallbackGuard, Error> {
    let locks = locks();
    if index >= locks.len() {
        return Err(Error::IndexOutOfRange {
            index,
            len: locks.len(),
        });
    }
    let busy = busy_cell();
    // SAFETY: the calling thread's own thread-local.
    let nested = unsafe { (*busy).get() } > 0;
    match try_take(locks, index, busy, 0) {
        Ok(g) => Ok(g),
        Err(owner) => lock_index_wait(locks, index, busy, nested, owner),
    }
}

/// The rest of [`fallback_lock_index`]: `owner` held the lock at the first attempt.
#[inline(never)]
fn lock_index_wait(
    locks: &'static [Lock],
    index: usize,
    busy: *const Cell<usize>,
    nested: bool,
    mut owner: usize,
) -> Result<FallbackGuard, Error> {
    let me = busy as usize;
    for round in 0u32.. {
        if owner & !LOCAL == me || nested {
            return Err(Error::WouldDeadlock);
        }
        backoff(round);
        owner = locks[index].0.load(Ordering::Relaxed);
        if owner == 0 {
            match try_take(locks, index, busy, 0) {
                Ok(g) => return Ok(g),
                Err(o) => owner = o,
            }
        }
    }
    unreachable!("the loop above only ends by returning")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lock table is process-wide: tests that hold its indices run one at a time.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn nested_lock_takes_another_index_or_refuses() {
        let _serial = SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let outer = fallback_lock_current().unwrap();
        if possible_cpus() > 1 {
            let inner = fallback_lock_current().unwrap();
            assert_ne!(inner.index(), outer.index());
        } else {
            assert_eq!(fallback_lock_current().unwrap_err(), Error::WouldDeadlock);
        }
        assert_eq!(
            fallback_lock_index(outer.index()).unwrap_err(),
            Error::WouldDeadlock
        );
        let i = outer.index();
        drop(outer);
        assert_eq!(fallback_lock_index(i).unwrap().index(), i);
        assert!(matches!(
            fallback_lock_index(usize::MAX),
            Err(Error::IndexOutOfRange { .. })
        ));
    }

    /// A holder that took its CPU's index and is not running (here: blocked, pinned to the CPU the
    /// taker runs on, as a preempted holder would be) is yielded to a bounded number of times, then
    /// skipped: the taker gets another index.
    #[test]
    fn index_of_a_holder_off_cpu_is_skipped_after_yielding() {
        let _serial = SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if possible_cpus() < 2 {
            return;
        }
        // SAFETY: sched_getcpu has no preconditions.
        let Ok(cpu) = usize::try_from(unsafe { libc::sched_getcpu() }) else {
            return;
        };
        let pin = move || {
            // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET on an index below
            // CPU_SETSIZE (checked) and sched_setaffinity on the calling thread (0) with its size.
            unsafe {
                let mut set: libc::cpu_set_t = core::mem::zeroed();
                if cpu >= 8 * core::mem::size_of::<libc::cpu_set_t>() {
                    return false;
                }
                libc::CPU_SET(cpu, &mut set);
                libc::sched_setaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &set) == 0
            }
        };
        let (taken_tx, taken_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            if !pin() {
                taken_tx.send(None).unwrap();
                return;
            }
            let g = fallback_lock_current().unwrap();
            taken_tx.send(Some(g.index())).unwrap();
            release_rx.recv().unwrap();
            drop(g);
        });
        let taker = std::thread::spawn(move || {
            let Some(held) = taken_rx.recv().unwrap() else {
                return;
            };
            if !pin() {
                return;
            }
            let g = fallback_lock_current().unwrap();
            assert_ne!(g.index(), held);
        });
        taker.join().unwrap();
        // The holder is gone already if it could not pin itself.
        let _ = release_tx.send(());
        holder.join().unwrap();
    }

    /// A nested attempt (what a signal handler interrupting a sequence does) never waits for another
    /// thread: waiting while holding a lock is what let two interrupted lock holders deadlock.
    #[test]
    fn nested_attempt_never_waits_for_other_threads() {
        let _serial = SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mine = fallback_lock_current().unwrap();
        let n = possible_cpus();
        let (taken_tx, taken_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let mine_index = mine.index();
        let holder = std::thread::spawn(move || {
            let guards: Vec<FallbackGuard> = (0..n)
                .filter(|&i| i != mine_index)
                .map(|i| fallback_lock_index(i).unwrap())
                .collect();
            taken_tx.send(guards.len()).unwrap();
            release_rx.recv().unwrap();
            drop(guards);
        });
        assert_eq!(taken_rx.recv().unwrap(), n - 1);
        // Every index is held (one by this thread): a nested attempt returns at once.
        assert_eq!(fallback_lock_current().unwrap_err(), Error::WouldDeadlock);
        if n > 1 {
            let other = (mine_index + 1) % n;
            assert_eq!(
                fallback_lock_index(other).unwrap_err(),
                Error::WouldDeadlock
            );
        }
        release_tx.send(()).unwrap();
        holder.join().unwrap();
        drop(mine);
        // Not nested any more: waiting is allowed again, and the indices are free.
        assert!(fallback_lock_current().is_ok());
    }
}
