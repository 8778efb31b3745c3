//! Rust operands are evaluated once per call of the retrying form (`name(..)`), however often the
//! kernel restarts its section, and once per attempt of `try_name(..)` (each call is one attempt):
//! `docs/DSL.md`, "Rust operands". Checked under a SIGUSR1 storm that natively aborts sections.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rseq_dsl::{rseq, status, Error, Mode, Owner, PerCpu};

thread_local! {
    static EVALS: Cell<u64> = const { Cell::new(0) };
}

/// A side-effecting operand: counts its evaluations on the calling thread.
fn counted(n: usize) -> usize {
    EVALS.with(|e| e.set(e.get() + 1));
    n
}

rseq! {
    // `usize`: 32-bit arm has no 64-bit words in sections.
    pub fn add_counted(c: &PerCpu<usize>, n: usize) {
        let slot = c.current();
        let v = load(slot);
        let w = v + { counted(n) };
        commit store(slot, w);
    }
}

#[test]
fn operands_are_evaluated_once_per_call_under_a_signal_storm() {
    let mode = status().mode;
    let c = PerCpu::<usize>::new(0);
    let threads = 4 * rseq_testkit::allowed_cpus().len().max(1);
    let (calls, mismatches) = (AtomicU64::new(0), AtomicU64::new(0));
    let period = rseq_testkit::env_ms("RSEQ_TEST_OPERANDS_MS", 200);
    let aborts = rseq_testkit::storm_until_aborted(
        threads,
        period,
        mode == Mode::Native,
        |_, deadline: Instant| {
            let (mut n, mut aborted, mut attempts) = (0u64, 0u64, 0u64);
            while Instant::now() < deadline {
                // The retrying form: one evaluation per call, whatever the aborts.
                add_counted(&c, 1);
                // The single-attempt form, retried here: one evaluation per attempt. Its aborts
                // show that the storm restarts this section (the retrying form's are invisible).
                loop {
                    attempts += 1;
                    match try_add_counted(&c, 1) {
                        Ok(()) => break,
                        Err(Error::Aborted) => aborted += 1,
                        Err(e) => panic!("add_counted failed: {e}"),
                    }
                }
                n += 1;
            }
            let evals = EVALS.with(|e| e.replace(0));
            if evals != n + attempts {
                mismatches.fetch_add(1, Ordering::Relaxed);
                eprintln!("{evals} evaluations for {n} calls and {attempts} attempts");
            }
            calls.fetch_add(n, Ordering::Relaxed);
            aborted
        },
    );
    let calls = calls.into_inner();
    let sum = c.iter().map(|v| v as u64).sum::<u64>();
    println!("operands ({mode:?}): {calls} x 2 calls, {aborts} aborted attempts, sum {sum}");
    rseq_testkit::report_aborts("operands", aborts);
    assert!(calls > 0);
    assert_eq!(sum, 2 * calls, "lost or duplicated updates");
    assert_eq!(
        mismatches.into_inner(),
        0,
        "an operand was evaluated per attempt of the retrying form"
    );
    match mode {
        Mode::Native => assert!(aborts > 0, "the storm aborted no section"),
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
