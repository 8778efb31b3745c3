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
//! A signal handler may run a sequence while the code it interrupted holds a lock. `current()` sequences
//! skip locked indices, so they take another one and never wait for the interrupted code; explicit-index
//! sequences and the one-slot case (a single possible CPU) cannot, and get [`Error::WouldDeadlock`]
//! instead of hanging when the only usable index is held by their own thread.
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
        Ok(_) => LOCKS_LEN.store(n, Ordering::Release),
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
    }
}

fn try_take(locks: &'static [Lock], i: usize, me: usize) -> Result<FallbackGuard, usize> {
    let lock = &locks[i].0;
    match lock.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed) {
        Ok(_) => Ok(FallbackGuard {
            index: i,
            lock,
            _not_send: PhantomData,
        }),
        Err(owner) => Err(owner),
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
/// [`Error::WouldDeadlock`] when every index is held by this very thread.
pub fn fallback_lock_current() -> Result<FallbackGuard, Error> {
    let locks = locks();
    let n = locks.len();
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
        if all_mine {
            return Err(Error::WouldDeadlock);
        }
        backoff(round);
    }
    unreachable!("the loop above only ends by returning")
}

/// Locks exactly `index` (explicit-CPU sequences).
///
/// # Errors
/// [`Error::IndexOutOfRange`] if `index` has no lock, [`Error::WouldDeadlock`] if this very thread holds it.
pub fn fallback_lock_index(index: usize) -> Result<FallbackGuard, Error> {
    let locks = locks();
    if index >= locks.len() {
        return Err(Error::IndexOutOfRange {
            index,
            len: locks.len(),
        });
    }
    let me = token();
    for round in 0u32.. {
        match try_take(locks, index, me) {
            Ok(g) => return Ok(g),
            Err(owner) if owner == me => return Err(Error::WouldDeadlock),
            Err(_) => backoff(round),
        }
    }
    unreachable!("the loop above only ends by returning")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_lock_takes_another_index_or_refuses() {
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
}
