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
//! One `sched_getcpu()` (vDSO, ~20 ns), one uncontended compare-and-swap and one release store per
//! operation: several times the native cost, but still per-CPU (no shared cache line) when threads do
//! not outnumber CPUs.

use core::marker::PhantomData;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use crate::error::Error;
use crate::percpu::possible_cpus;

#[repr(align(128))]
struct Lock(AtomicUsize);

static LOCKS: AtomicPtr<Lock> = AtomicPtr::new(core::ptr::null_mut());
static LOCKS_LEN: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static TOKEN: u8 = const { 0 };
    /// Locks this thread holds or is taking: non-zero in a signal handler means "nested".
    static BUSY: core::cell::Cell<u32> = const { core::cell::Cell::new(0) };
}

fn busy_add(delta: i32) {
    // The signal handler of this thread must see the count before the lock is taken and until it is
    // released: keep the compiler from moving it across the lock operations.
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
    BUSY.with(|b| b.set(b.get().wrapping_add_signed(delta)));
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
}

fn nested() -> bool {
    BUSY.with(core::cell::Cell::get) > 0
}

/// In a forked child, releases the locks the vanished threads held (see the module docs).
extern "C" fn release_after_fork() {
    let p = LOCKS.load(Ordering::Acquire);
    let n = LOCKS_LEN.load(Ordering::Acquire);
    if p.is_null() {
        return;
    }
    // SAFETY: the table is leaked and has n elements (n is published after the pointer).
    let locks = unsafe { core::slice::from_raw_parts(p, n) };
    let me = token();
    for l in locks {
        let owner = l.0.load(Ordering::Relaxed);
        if owner != 0 && owner != me {
            l.0.store(0, Ordering::Release);
        }
    }
}

/// A non-zero value unique to each live thread: the address of one of its thread-locals.
fn token() -> usize {
    TOKEN.with(|t| core::ptr::from_ref(t) as usize)
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

fn locks() -> &'static [Lock] {
    init_locks();
    let p = LOCKS.load(Ordering::Acquire);
    let mut n = LOCKS_LEN.load(Ordering::Acquire);
    while n == 0 {
        // The winner of init_locks publishes the pointer before the length: wait for that store.
        core::hint::spin_loop();
        n = LOCKS_LEN.load(Ordering::Acquire);
    }
    // SAFETY: the table is leaked (never freed) and has n elements.
    unsafe { core::slice::from_raw_parts(p, n) }
}

/// Holds the fallback lock of one index; unlocks (release ordering) on drop.
#[derive(Debug)]
pub struct FallbackGuard {
    index: usize,
    lock: &'static AtomicUsize,
    _not_send: PhantomData<*const ()>,
}

impl FallbackGuard {
    /// The locked index: the slot the sequence operates on.
    pub fn index(&self) -> usize {
        self.index
    }
}

impl Drop for FallbackGuard {
    fn drop(&mut self) {
        self.lock.store(0, Ordering::Release);
        busy_add(-1);
    }
}

fn try_take(locks: &'static [Lock], i: usize, me: usize) -> Result<FallbackGuard, usize> {
    let lock = &locks[i].0;
    busy_add(1);
    match lock.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed) {
        Ok(_) => Ok(FallbackGuard {
            index: i,
            lock,
            _not_send: PhantomData,
        }),
        Err(owner) => {
            busy_add(-1);
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

/// Locks a free index, starting at the calling thread's CPU (`current()` sequences).
///
/// # Errors
/// [`Error::WouldDeadlock`] when every index is held by this very thread, or when a nested attempt (a
/// signal handler that interrupted a lock operation of its thread) finds no free index.
pub fn fallback_lock_current() -> Result<FallbackGuard, Error> {
    let locks = locks();
    let n = locks.len();
    let nested = nested();
    // SAFETY: sched_getcpu has no preconditions (vDSO/syscall, async-signal-safe); -1 on error.
    let start = usize::try_from(unsafe { libc::sched_getcpu() }).unwrap_or(0) % n;
    let me = token();
    for round in 0u32.. {
        let mut all_mine = true;
        for k in 0..n {
            match try_take(locks, (start + k) % n, me) {
                Ok(g) => return Ok(g),
                Err(owner) => all_mine &= owner == me,
            }
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
pub fn fallback_lock_index(index: usize) -> Result<FallbackGuard, Error> {
    let locks = locks();
    if index >= locks.len() {
        return Err(Error::IndexOutOfRange {
            index,
            len: locks.len(),
        });
    }
    let me = token();
    let nested = nested();
    for round in 0u32.. {
        match try_take(locks, index, me) {
            Ok(g) => return Ok(g),
            Err(owner) if owner == me || nested => return Err(Error::WouldDeadlock),
            Err(_) => backoff(round),
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
