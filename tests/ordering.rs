//! Message passing through sections on weakly ordered CPUs: the memory-ordering contract of
//! `docs/DSL.md` ("Memory ordering"), checked where it matters.
//!
//! `percpu::SpinLock` hands a CPU's value from one holder to the next across CPUs: the holder
//! writes the value, often moves to another CPU, and unlocks there with a release store; the next
//! holder takes the lock in a section whose `load_acquire` reads that store. Each holder checks
//! that all eight words of the value are equal (a holder that saw some of the previous holder's
//! writes but not all, because its accesses were not ordered after the lock word's load, finds
//! them torn), then writes the next value into every word. Exact invariant: the values of all CPUs
//! add up to the number of critical sections entered. Runs under a SIGUSR1 storm with
//! threads = 4 x CPUs; natively the storm must abort sections (the test goes on, without the moves
//! between CPUs, until it has).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rseq_dsl::percpu::SpinLock;
use rseq_dsl::{status, Error, Mode, Owner};

const WORDS: usize = 8;

fn duration() -> Duration {
    rseq_testkit::env_ms("RSEQ_TEST_ORDERING_MS", 300)
}

/// Takes the calling CPU's lock, retrying aborted sections (counted) and held locks.
fn take<'a>(
    l: &'a SpinLock<[u64; WORDS]>,
    aborts: &mut u64,
) -> rseq_dsl::percpu::SpinGuard<'a, [u64; WORDS]> {
    loop {
        match l.try_lock_once() {
            Ok(Some(g)) => return g,
            // Held, maybe by a preempted thread: yield rather than spin out a time slice (with
            // 4 threads per CPU, spinning left a single-stepped VM entering a few sections per
            // second, too few for the storm to land in one).
            Ok(None) => std::thread::yield_now(),
            Err(Error::Aborted) => *aborts += 1,
            Err(e) => panic!("lock section failed: {e}"),
        }
    }
}

#[test]
fn spinlock_passes_values_between_cpus() {
    let mode = status().mode;
    let lock: SpinLock<[u64; WORDS]> = SpinLock::new(|_| [0; WORDS]);
    let cpus = rseq_testkit::allowed_cpus();
    let threads = 4 * cpus.len().max(1);
    let (entered, torn, aborts, moved) = (
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
    );
    let start = Instant::now();
    // Natively, go on (up to 100 periods) until the storm has aborted a section: a single-stepped
    // VM enters only some hundreds of sections per period, and a signal must land inside one. The
    // same workers keep going (no new threads per period: on a single-stepped x86_64 7.2 kernel in
    // self-registration mode, threads started anew for each period entered about 3 sections per
    // period between them).
    let (dur, max) = (duration(), duration() * 100);
    let done = || {
        let t = start.elapsed();
        t >= max || (t >= dur && (mode == Mode::Fallback || aborts.load(Ordering::Relaxed) > 0))
    };
    rseq_testkit::stress(threads, true, |t| {
        let (mut n, mut mv) = (0u64, 0u64);
        while !done() {
            let mut ab = 0;
            let mut g = take(&lock, &mut ab);
            if ab > 0 {
                aborts.fetch_add(ab, Ordering::Relaxed);
            }
            let words = &mut *g;
            // SAFETY: plain places behind the guard's `&mut`; volatile keeps the compiler from
            // merging the reads or the writes, so the hardware order is the one tested.
            unsafe {
                let first = std::ptr::read_volatile(&words[0]);
                for w in &words[1..] {
                    if std::ptr::read_volatile(w) != first {
                        torn.fetch_add(1, Ordering::Relaxed);
                    }
                }
                for w in words.iter_mut() {
                    std::ptr::write_volatile(w, first + 1);
                }
            }
            // Every eighth time, unlock from another CPU than the one the value lives on. Not once
            // the first period has passed natively without an abort: a move is two affinity
            // syscalls, thousands of instructions on a single-stepped guest against the section's
            // handful, so the periods that follow run sections back to back for the storm to hit
            // (an armv7 guest saw no abort in 100 periods with the moves; the first period made
            // hundreds of them). Each worker moves at least once.
            let moving = mode == Mode::Fallback
                || mv == 0
                || start.elapsed() < dur
                || aborts.load(Ordering::Relaxed) > 0;
            if moving && n % 8 == 0 && cpus.len() > 1 {
                let other = cpus[(t + 1 + n as usize / 8) % cpus.len()];
                rseq_testkit::pin_to(&[other]);
                drop(g);
                rseq_testkit::pin_to(&cpus);
                mv += 1;
            } else {
                drop(g);
            }
            n += 1;
        }
        entered.fetch_add(n, Ordering::Relaxed);
        moved.fetch_add(mv, Ordering::Relaxed);
    });
    let values: u64 = lock.into_inner().iter().map(|w| w[0]).sum();
    let (entered, torn, aborts, moved) = (
        entered.into_inner(),
        torn.into_inner(),
        aborts.into_inner(),
        moved.into_inner(),
    );
    println!(
        "spinlock message passing ({mode:?}): {entered} critical sections, {moved} unlocked from another CPU, \
         {aborts} aborts, {torn} torn values, values sum {values}"
    );
    if cpus.len() > 1 {
        assert!(moved > 0, "no lock was released from another CPU");
    }
    rseq_testkit::report_aborts("ordering/spinlock", aborts);
    assert!(entered > 0, "no critical section completed");
    assert_eq!(
        torn, 0,
        "a holder saw a value half written by the previous holder"
    );
    assert_eq!(values, entered, "lost or duplicated increments");
    match mode {
        Mode::Native => assert!(aborts > 0, "the storm aborted no lock section"),
        Mode::Fallback => assert_eq!(aborts, 0, "fallback mode has no sections"),
    }
}

/// The mode a runner expects (`RSEQ_DSL_EXPECT_MODE`, `RSEQ_DSL_EXPECT_OWNER`; nothing is asserted
/// when unset): a run meant to be native cannot pass in fallback mode.
#[test]
fn expected_mode() {
    let s = status();
    rseq_testkit::check_expected_mode(s.mode == Mode::Native, s.owner == Some(Owner::Glibc), s);
}
