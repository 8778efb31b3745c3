//! Debug checks (`#[rseq(debug_checks)]`): they fire, loudly, when a section is not protected, and stay
//! silent under stress when it is.
//!
//! The broken usage: a thread on another CPU writes this CPU's flag without a sequence (the kernel does
//! not abort a section for a write from another CPU). The sequence read the flag as 0 and is about to
//! commit; the re-check before the commit reads 1, and the process aborts with a message instead of
//! committing on stale data. The window between the compare and the re-check is widened with an
//! injection point (`#[rseq(inject)]`, delay after the compare). Each case runs in a child process
//! that must die with SIGABRT and the message.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rseq_dsl::inject::{self, Point};
use rseq_dsl::{rseq, Error, Mode, PerCpu};
use rseq_testkit::{allowed_cpus, is_child, pin_to, run_child, stress, CHILD_ENV};

/// A bounded per-CPU stack: `top` items in `items[..top]`.
#[derive(Debug, Clone, Copy)]
/// Machine words throughout, so that the test runs on 32-bit arm too: a `Stack`'s items start one
/// word in, and item `i` (0-based) is at `(i + 1) * W`, i.e. `n << SHIFT` for `n = i + 1`.
#[repr(C)]
pub struct Stack {
    pub top: usize,
    pub items: [usize; 8],
}

const W: usize = std::mem::size_of::<usize>();
const SHIFT: u32 = W.trailing_zeros();

rseq! {
    /// Adds 1 to this CPU's counter unless this CPU's flag is set.
    #[rseq(debug_checks, inject)]
    pub fn guarded_add(flags: &PerCpu<usize>, counters: &PerCpu<usize>) -> bool {
        let f = flags.current();
        let c = counters.current();
        let busy = load(f);
        if busy != 0 { return false; }
        let v = load(c);
        commit store(c, v + 1);
        true
    }

    /// A per-CPU stack of counts: pushes only below the cap (a compare, then a speculative store).
    ///
    /// # Safety
    /// `stacks` slots are valid `Stack`s (built by `PerCpu::new`).
    #[rseq(debug_checks, inject)]
    pub unsafe fn bounded_push(stacks: &PerCpu<Stack>) -> bool {
        let s = stacks.current();
        let n = load::<usize>(s);
        if n >= 8 { return false; }
        store::<usize>(s + W + (n << SHIFT), n + 1);
        commit store::<usize>(s, n + 1);
        true
    }

    /// Pops from the same stack; the popped value must be its index + 1 (`Some(0)` otherwise).
    ///
    /// # Safety
    /// As for `bounded_push`.
    #[rseq(debug_checks, inject)]
    pub unsafe fn bounded_pop(stacks: &PerCpu<Stack>) -> Option<usize> {
        let s = stacks.current();
        let n = load::<usize>(s);
        if n == 0 { return None; }
        let v = load::<usize>(s + (n << SHIFT));
        if v != n { return Some(0); }
        commit store::<usize>(s, n - 1);
        Some(v)
    }
}

/// Runs `test` in a child (with `env`) that must abort with the debug-check message.
fn expect_debug_abort(test: &str, env: &[(&str, &str)]) {
    // Through RSEQ_TESTKIT_RUNNER when set (qemu-user without binfmt_misc).
    let mut cmd = rseq_testkit::command(std::env::current_exe().unwrap());
    cmd.args([
        test,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, test)
    .env_remove("RSEQ_DSL_FALLBACK")
    .env_remove("GLIBC_TUNABLES");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("child `{test}`: {}\n{stderr}", out.status);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(libc::SIGABRT),
        "the debug check did not abort the child:\n{}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains("rseq-dsl: debug check failed in `guarded_add`")
            && stderr.contains("`if busy != 0 { return false; }` would now leave"),
        "unexpected message:\n{stderr}"
    );
}

/// The child: this thread on the first CPU runs `guarded_add`, a writer pinned to another CPU keeps
/// toggling the first CPU's flag. Returns only if the check never fired (the parent then fails).
fn cross_cpu_writer_child() {
    let cpus = allowed_cpus();
    assert!(cpus.len() >= 2, "needs two CPUs");
    let flags = PerCpu::<usize>::new(0);
    let counters = PerCpu::<usize>::new(0);
    pin_to(&[cpus[0]]);
    inject::set_delay(Point::AfterCompare, 20_000);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            pin_to(&[cpus[1]]);
            // SAFETY: an in-bounds, aligned usize slot, only accessed atomically (sequences and
            // here).
            let flag = unsafe { AtomicUsize::from_ptr(flags.slot_ptr(cpus[0]).unwrap()) };
            while !stop.load(Ordering::Relaxed) {
                flag.store(1, Ordering::Relaxed);
                flag.store(0, Ordering::Relaxed);
            }
        });
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            for _ in 0..1000 {
                let _ = try_guarded_add(&flags, &counters);
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    println!("the debug check never fired in 10 s");
}

#[test]
fn debug_check_fires_natively_on_a_cross_cpu_writer() {
    if rseq_testkit::skip_unless_native("debug_check_fires_natively_on_a_cross_cpu_writer") {
        return;
    }
    if allowed_cpus().len() < 2 {
        rseq_testkit::skip(
            "debug_check_fires_natively_on_a_cross_cpu_writer",
            "needs two CPUs",
        );
        return;
    }
    expect_debug_abort("child_cross_cpu_writer_native", &[]);
}

#[test]
#[ignore = "child process of debug_check_fires_natively_on_a_cross_cpu_writer"]
fn child_cross_cpu_writer_native() {
    assert!(is_child("child_cross_cpu_writer_native"));
    assert_eq!(rseq_dsl::status().mode, Mode::Native);
    cross_cpu_writer_child();
}

/// In fallback mode the writer bypasses the index's lock: the replay under the lock sees the change.
#[test]
fn debug_check_fires_in_fallback_on_a_writer_bypassing_the_lock() {
    if allowed_cpus().len() < 2 {
        rseq_testkit::skip(
            "debug_check_fires_in_fallback_on_a_writer_bypassing_the_lock",
            "needs two CPUs",
        );
        return;
    }
    expect_debug_abort(
        "child_cross_cpu_writer_fallback",
        &[("RSEQ_DSL_FALLBACK", "1")],
    );
}

#[test]
#[ignore = "child process of debug_check_fires_in_fallback_on_a_writer_bypassing_the_lock"]
fn child_cross_cpu_writer_fallback() {
    assert!(is_child("child_cross_cpu_writer_fallback"));
    assert_eq!(rseq_dsl::status().mode, Mode::Fallback);
    cross_cpu_writer_child();
}

/// Correct use under a signal storm with delays at every point: no check fires, invariants hold.
fn silent_under_stress() {
    let threads = 6 * allowed_cpus().len();
    let flags = PerCpu::<usize>::new(0);
    let counters = PerCpu::<usize>::new(0);
    let stacks = PerCpu::<Stack>::new(Stack {
        top: 0,
        items: [0; 8],
    });
    let (added, aborts, bad_pops) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let native = rseq_dsl::status().mode == Mode::Native;
    // Natively the storm must abort sections: on a slow (single-stepped) VM a round of 60 ms per
    // point may see none, so go on with rounds twice as long, up to 6 rounds.
    let mut period = Duration::from_millis(60);
    for _round in 0..6 {
        for point in Point::ALL {
            inject::clear();
            inject::set_delay(point, 300);
            let start = Instant::now();
            stress(threads, true, |_| {
                let mut a = 0;
                while start.elapsed() < period {
                    loop {
                        match try_guarded_add(&flags, &counters) {
                            Ok(true) => {
                                added.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                            Ok(false) => unreachable!("no flag is ever set"),
                            Err(Error::Aborted) => a += 1,
                            Err(e) => panic!("{e}"),
                        }
                    }
                    let pushed = loop {
                        // SAFETY: `stacks` was built by `PerCpu::new`.
                        match unsafe { try_bounded_push(&stacks) } {
                            Ok(p) => break p,
                            Err(Error::Aborted) => a += 1,
                            Err(e) => panic!("{e}"),
                        }
                    };
                    let _ = pushed;
                    loop {
                        // SAFETY: as above.
                        match unsafe { try_bounded_pop(&stacks) } {
                            Ok(Some(0)) => {
                                bad_pops.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                            Ok(_) => break,
                            Err(Error::Aborted) => a += 1,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
                aborts.fetch_add(a, Ordering::Relaxed);
            });
        }
        if !native || aborts.load(Ordering::Relaxed) > 0 {
            break;
        }
        period *= 2;
    }
    inject::clear();
    let sum: u64 = counters.iter().map(|v| v as u64).sum();
    println!(
        "debug-checked sequences: {} additions, sum {sum}, {} aborts, {} bad pops ({:?})",
        added.load(Ordering::Relaxed),
        aborts.load(Ordering::Relaxed),
        bad_pops.load(Ordering::Relaxed),
        rseq_dsl::status().mode
    );
    assert_eq!(sum, added.load(Ordering::Relaxed));
    assert_eq!(bad_pops.load(Ordering::Relaxed), 0);
    if native {
        assert!(aborts.load(Ordering::Relaxed) > 0, "no section was aborted");
    }
}

#[test]
fn debug_checks_stay_silent_under_stress_natively() {
    if rseq_testkit::skip_unless_native("debug_checks_stay_silent_under_stress_natively") {
        return;
    }
    assert_eq!(rseq_dsl::status().mode, Mode::Native);
    silent_under_stress();
}

#[test]
fn debug_checks_stay_silent_under_stress_in_fallback() {
    run_child("child_silent_fallback", &[("RSEQ_DSL_FALLBACK", "1")], None);
}

#[test]
#[ignore = "child process of debug_checks_stay_silent_under_stress_in_fallback"]
fn child_silent_fallback() {
    assert!(is_child("child_silent_fallback"));
    assert_eq!(rseq_dsl::status().mode, Mode::Fallback);
    silent_under_stress();
}
