//! Execution tests of every example: each invariant (conservation of sums and items, mutual exclusion)
//! with threads = 4 x CPUs under a SIGUSR1 storm, natively (aborts must be observed through the `try_`
//! variants), in forced fallback mode and in self-registration mode (child processes), plus a negative
//! control showing that the harness catches an unprotected sequence. CI runs this file in debug and in
//! release builds.

#[path = "../examples/common/mod.rs"]
mod common;

#[allow(dead_code)]
#[path = "../examples/buffer.rs"]
mod buffer;
#[allow(dead_code)]
#[path = "../examples/counter.rs"]
mod counter;
#[allow(dead_code)]
#[path = "../examples/explicit_cpu.rs"]
mod explicit_cpu;
#[allow(dead_code)]
#[path = "../examples/memcpy_buffer.rs"]
mod memcpy_buffer;
#[allow(dead_code)]
#[path = "../examples/spinlock.rs"]
mod spinlock;
#[allow(dead_code)]
#[path = "../examples/stack.rs"]
mod stack;

use std::time::Duration;

use common::{Config, Report};
use rseq_dsl::{status, Mode, Owner};
use rseq_testkit::{is_child, run_child, skip_unless_glibc_registers, skip_unless_native};

type Runner = fn(&Config) -> Report;

/// Natively on a kernel without mm_cid (before 6.3: feature size < 28) an mm_cid-indexed sequence
/// must be refused with the typed error, never run unprotected (`mm_cid == 0` on every CPU). Returns
/// true (after checking the refusal) when that is the case: the mm_cid example then cannot run.
fn mm_cid_refused() -> bool {
    let s = status();
    if s.mode != Mode::Native || s.mm_cid_usable {
        return false;
    }
    let refused = counter::run_mm_cid(&Config::for_tests()).map(|_| ());
    assert_eq!(refused, Err(rseq_dsl::Error::MmCidUnavailable), "{s}");
    println!("counter/mm_cid: refused with MmCidUnavailable on this kernel ({s}), as required");
    true
}

fn runners() -> Vec<Runner> {
    let mut v: Vec<Runner> = vec![counter::run_cpu];
    if !mm_cid_refused() {
        v.push(|c| {
            counter::run_mm_cid(c).unwrap_or_else(|e| panic!("mm_cid counter: {e} ({})", status()))
        });
    }
    v.extend([
        spinlock::run as Runner,
        stack::run,
        buffer::run,
        memcpy_buffer::run16,
        memcpy_buffer::run64,
        explicit_cpu::run,
    ]);
    v
}

/// Runs every example; retries an example whose run saw no abort (natively) or completed no
/// operation, up to five times, doubling the duration each time, so that "aborts > 0" and
/// "ops > 0" are real requirements without being flaky on a loaded machine (the pop-based examples
/// only make progress on a CPU whose list has items).
fn run_all(mode: Mode) {
    assert_eq!(status().mode, mode, "{}", status());
    for run in runners() {
        let mut cfg = Config::for_tests();
        let mut report = run(&cfg);
        for _ in 0..5 {
            let aborts_ok = mode == Mode::Fallback || report.aborts > 0;
            if (aborts_ok && report.ops > 0) || report.violations > 0 {
                break;
            }
            cfg.duration *= 2;
            report = run(&cfg);
        }
        report.print();
        rseq_testkit::report_aborts(report.example, report.aborts);
        assert_eq!(
            report.violations, 0,
            "{}: invariant violated: {}",
            report.example, report.check
        );
        assert!(report.ops > 0, "{}: no operation completed", report.example);
        match mode {
            Mode::Native => assert!(
                report.aborts > 0,
                "{}: the storm aborted no section",
                report.example
            ),
            Mode::Fallback => assert_eq!(
                report.aborts, 0,
                "{}: fallback mode has no sections",
                report.example
            ),
        }
    }
}

/// The mode a runner expects (`RSEQ_DSL_EXPECT_MODE`, `RSEQ_DSL_EXPECT_OWNER`; nothing is asserted
/// when unset): a run meant to be native cannot pass in fallback mode.
#[test]
fn expected_mode() {
    let s = status();
    rseq_testkit::check_expected_mode(s.mode == Mode::Native, s.owner == Some(Owner::Glibc), s);
}

#[test]
fn examples_native_glibc_registration() {
    if skip_unless_glibc_registers("examples_native_glibc_registration") {
        return;
    }
    assert_eq!(status().owner, Some(Owner::Glibc));
    run_all(Mode::Native);
}

#[test]
fn examples_fallback_mode() {
    run_child(
        "child_examples_fallback",
        &[("RSEQ_DSL_FALLBACK", "1")],
        None,
    );
}

#[test]
#[ignore = "child process of examples_fallback_mode"]
fn child_examples_fallback() {
    assert!(is_child("child_examples_fallback"));
    run_all(Mode::Fallback);
}

#[test]
fn examples_self_registration() {
    if skip_unless_native("examples_self_registration") {
        return;
    }
    run_child(
        "child_examples_self_registered",
        &[("GLIBC_TUNABLES", "glibc.pthread.rseq=0")],
        None,
    );
}

#[test]
#[ignore = "child process of examples_self_registration"]
fn child_examples_self_registered() {
    assert!(is_child("child_examples_self_registered"));
    assert_eq!(status().owner, Some(Owner::Runtime), "{}", status());
    run_all(Mode::Native);
}

/// An out-of-line call: a branch there and back, which ends an emulator's translation block.
#[inline(never)]
fn block_boundary() {
    std::hint::black_box(());
}

/// The harness must be able to fail: the counter example's workload with the read-modify-write done
/// without a critical section (same slot choice, same storm) loses updates.
#[test]
fn negative_control_unprotected_counter_loses_updates() {
    use std::sync::atomic::{AtomicU64, Ordering};
    // Statistical: a slow (single-stepped) VM may interleave no read-modify-write in one period, so
    // go on for up to 10 periods until updates were lost.
    const PERIODS: usize = 10;
    let counters = rseq_dsl::PerCpu::<u64>::new(0);
    let added = AtomicU64::new(0);
    let cfg = Config {
        duration: Duration::from_millis(300),
        ..Config::for_tests()
    };
    let (mut sum, mut want) = (0, 0);
    for _ in 0..PERIODS {
        let tally = common::Tally::default();
        common::run_workers(&cfg, &tally, |_, ops, _| {
            let cpu = rseq_dsl::cpu_id().unwrap();
            // SAFETY: an in-bounds, aligned u64 slot, accessed only atomically by everyone.
            let slot = unsafe { AtomicU64::from_ptr(counters.slot_ptr(cpu).unwrap()) };
            // A separate load and store, not an atomic read-modify-write: the unprotected section.
            // The black_box keeps LLVM from folding the pair into one `add [mem], 1`, which an
            // interrupt cannot split (the control would then only catch cross-CPU races after
            // migrations, which are rare). The call in between ends a translation block: QEMU's
            // TCG delivers interrupts only between blocks, so without it a guest that is not
            // single-stepped (the many-vCPU boot) can never be preempted between the two.
            let v = std::hint::black_box(slot.load(Ordering::Relaxed));
            block_boundary();
            slot.store(v + 1, Ordering::Relaxed);
            added.fetch_add(1, Ordering::Relaxed);
            *ops += 1;
        });
        (sum, want) = (counters.iter().sum::<u64>(), added.load(Ordering::Relaxed));
        if sum < want {
            break;
        }
    }
    println!("unprotected: sum {sum} of {want} additions");
    rseq_testkit::report_lost("unprotected counter", want - sum.min(want));
    assert!(
        sum < want,
        "an unprotected counter lost nothing in {PERIODS} periods: the harness cannot detect broken sections"
    );
}
