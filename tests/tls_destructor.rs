//! Sequences in thread-local destructors (`docs/DSL.md`, Thread tokens; `rseq-runtime` registration
//! docs). A user's thread-local touched before the thread's first sequence is destroyed after the
//! runtime's own TLS destructor (Rust runs them in reverse order of first use): in self-registration
//! mode that destructor has unregistered the thread's area, and the sequence must register it again
//! and run natively, as it does with glibc's registration (which lasts until the thread is gone).
//! A thread whose first sequence ever runs in a destructor is covered too. Exact sums in every mode.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use rseq_dsl::percpu::Counter;
use rseq_dsl::{status, this_thread, Mode, Owner};
use rseq_testkit::{is_child, run_child, skip_unless_native};

const THREADS: u64 = 64;
const ADDS: u64 = 100;

fn counter() -> &'static Counter {
    static C: OnceLock<Counter> = OnceLock::new();
    C.get_or_init(Counter::new)
}

/// Destructors that ran a sequence, and those of them that ran natively.
static IN_DTOR: AtomicU64 = AtomicU64::new(0);
static NATIVE_IN_DTOR: AtomicU64 = AtomicU64::new(0);

/// A per-thread tally flushed into the counter when the thread exits.
struct Flush(Cell<u64>);

impl Drop for Flush {
    fn drop(&mut self) {
        counter().add(self.0.get());
        let native = this_thread(|t| t.is_native()).expect("a sequence in a TLS destructor");
        IN_DTOR.fetch_add(1, Ordering::Relaxed);
        NATIVE_IN_DTOR.fetch_add(u64::from(native), Ordering::Relaxed);
    }
}

thread_local! {
    static FLUSH: Flush = const { Flush(Cell::new(0)) };
}

fn run(mode: Mode) {
    counter().reset();
    IN_DTOR.store(0, Ordering::Relaxed);
    NATIVE_IN_DTOR.store(0, Ordering::Relaxed);
    // Joined one by one (`pthread_join` returns after the thread's TLS destructors; a scope's end
    // does not wait for them).
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            std::thread::spawn(move || {
                // Touched first: destroyed after the runtime's own TLS destructor.
                FLUSH.with(|f| f.0.set(i + 1));
                // Half the threads run sequences before exiting; the others run their first one
                // in the destructor.
                if i % 2 == 0 {
                    for _ in 0..ADDS {
                        counter().add(1);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let expected = (THREADS / 2) * ADDS + THREADS * (THREADS + 1) / 2;
    let (ran, native) = (
        IN_DTOR.load(Ordering::Relaxed),
        NATIVE_IN_DTOR.load(Ordering::Relaxed),
    );
    println!(
        "{mode:?} ({}): sum {} of {expected}; {ran} destructors, {native} native",
        status(),
        counter().sum()
    );
    assert_eq!(counter().sum(), expected, "lost or duplicated updates");
    assert_eq!(ran, THREADS);
    match mode {
        Mode::Native => assert_eq!(
            native, THREADS,
            "a destructor's sequence did not run natively"
        ),
        Mode::Fallback => assert_eq!(native, 0),
    }
}

#[test]
fn sequences_in_tls_destructors() {
    run(status().mode);
}

#[test]
fn sequences_in_tls_destructors_self_registration() {
    if skip_unless_native("sequences_in_tls_destructors_self_registration") {
        return;
    }
    run_child(
        "child_tls_destructors_self_registered",
        &[("GLIBC_TUNABLES", "glibc.pthread.rseq=0")],
        None,
    );
}

#[test]
#[ignore = "child process of sequences_in_tls_destructors_self_registration"]
fn child_tls_destructors_self_registered() {
    assert!(is_child("child_tls_destructors_self_registered"));
    assert_eq!(status().owner, Some(Owner::Runtime), "{}", status());
    run(Mode::Native);
}

#[test]
fn sequences_in_tls_destructors_fallback() {
    run_child(
        "child_tls_destructors_fallback",
        &[("RSEQ_DSL_FALLBACK", "1")],
        None,
    );
}

#[test]
#[ignore = "child process of sequences_in_tls_destructors_fallback"]
fn child_tls_destructors_fallback() {
    assert!(is_child("child_tls_destructors_fallback"));
    run(Mode::Fallback);
}

/// The mode a runner expects (`RSEQ_DSL_EXPECT_MODE`, `RSEQ_DSL_EXPECT_OWNER`; nothing is asserted
/// when unset): a run meant to be native cannot pass in fallback mode.
#[test]
fn expected_mode() {
    let s = status();
    rseq_testkit::check_expected_mode(s.mode == Mode::Native, s.owner == Some(Owner::Glibc), s);
}
