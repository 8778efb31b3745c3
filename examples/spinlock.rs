//! A per-CPU spinlock: lock this CPU's instance (a compare-exit when it is taken), do some work under
//! it, unlock with release ordering. The work is a non-atomic read-modify-write on data guarded by the
//! lock, so any failure of mutual exclusion shows up as a lost update.
//!
//! `cargo run --release --example spinlock`

// `tests/examples.rs` includes this file as a module and provides `common` itself.
#[cfg(not(test))]
#[path = "common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::{finish, retry, run_workers, Config, Report, Tally};
use rseq_dsl::{rseq, PerCpu};

rseq! {
    /// Takes the calling CPU's lock if it is free; returns its address, or null when it is taken.
    pub fn spin_trylock(locks: &PerCpu<usize>) -> *mut usize {
        let lock = locks.current();
        // Acquire: pairs with the release store of the unlock (see `Guard::drop`), so the holder
        // sees everything the previous holder wrote (needed on weakly ordered CPUs).
        let held = load_acquire(lock);
        if held != 0 { return core::ptr::null_mut(); }
        commit store(lock, 1);
        lock
    }
}

/// A held per-CPU lock; unlocks on drop.
#[derive(Debug)]
pub struct Guard<'a> {
    locks: &'a PerCpu<usize>,
    index: usize,
}

impl Guard<'_> {
    pub fn index(&self) -> usize {
        self.index
    }
}

/// Locks the calling CPU's lock, spinning (and retrying aborts) until it is free.
pub fn lock<'a>(locks: &'a PerCpu<usize>, aborts: &mut u64) -> Guard<'a> {
    let base = locks.slot_ptr(0).expect("slot 0") as usize;
    loop {
        let lock = retry(aborts, || try_spin_trylock(locks));
        if !lock.is_null() {
            let index = (lock as usize - base) / locks.stride();
            return Guard { locks, index };
        }
        std::hint::spin_loop();
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let p = self.locks.slot_ptr(self.index).expect("locked index");
        // SAFETY: `p` is a live, aligned usize slot of `locks`; all accesses to lock words are atomic
        // (sequences and this store), and this thread holds the lock.
        unsafe { AtomicUsize::from_ptr(p) }.store(0, Ordering::Release);
    }
}

pub fn run(cfg: &Config) -> Report {
    let locks = PerCpu::<usize>::new(0);
    // Guarded data: a plain (non-atomic) counter per lock, plus an "owner inside" word.
    let data = PerCpu::<u64>::new(0);
    let inside = PerCpu::<usize>::new(0);
    let tally = Tally::default();
    run_workers(cfg, &tally, |t, ops, aborts| {
        let g = lock(&locks, aborts);
        let d = data.slot_ptr(g.index()).unwrap();
        let flag = inside.slot_ptr(g.index()).unwrap();
        // SAFETY: both slots belong to the held lock's index; only lock holders touch them, and the lock's
        // acquire/release orders these accesses between holders. Reads/writes are volatile so the
        // compiler keeps the window in which a broken lock would be caught.
        unsafe {
            if flag.read_volatile() != 0 {
                tally.violation();
            }
            flag.write_volatile(t + 1);
            let v = d.read_volatile();
            std::hint::spin_loop();
            d.write_volatile(v + 1);
            if flag.read_volatile() != t + 1 {
                tally.violation();
            }
            flag.write_volatile(0);
        }
        drop(g);
        *ops += 1;
    });
    let expected = tally.ops.load(Ordering::Relaxed);
    let sum: u64 = data.iter().sum();
    let held = locks.iter().filter(|&l| l != 0).count() as u64;
    tally.report(
        "spinlock",
        cfg,
        sum.abs_diff(expected) + held,
        format!("guarded sum {sum} == ops {expected}, locks left held {held}"),
    )
}

fn main() {
    let cfg = Config::from_args();
    println!("rseq-dsl: {}", rseq_dsl::status());
    finish(&[run(&cfg)]);
}
