//! A sequence whose inputs do not fit the registers of x86_64 (or arm, or s390x) runs with its
//! inputs spilled to memory (`docs/DSL.md`, Architectures: the section loads each input word where
//! it uses it). Checked under a SIGUSR1 storm: every committed value is the one the Rust reference
//! computes, the slots add up exactly, and natively the storm aborts sections (a restarted section
//! reloads its spilled inputs, which must still be intact).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rseq_dsl::{rseq, status, Error, Mode, Owner, PerCpu};

rseq! {
    /// Adds a chain of partial sums of the parameters to the slot; returns the slot's old value.
    /// Seven word parameters plus the slot's three: more than x86_64's 13 registers hold with the
    /// temporaries, so the code generator spills the inputs (`rseq-codegen` unit test
    /// `inputs_spill_to_memory_when_registers_run_out` checks that this shape spills).
    pub fn chain_add(c: &PerCpu<usize>, a: usize, b: usize, d: usize, e: usize, g: usize, h: usize) -> usize {
        let s = c.current();
        let v1 = load(s);
        let v2 = v1 + a;
        let v3 = v2 + b;
        let v4 = v3 + d;
        let v5 = v4 + e;
        let v6 = v5 + g;
        commit store(s, v1 + v2 + v3 + v4 + v5 + v6 + h);
        v1
    }
}

/// What `chain_add` adds to a slot holding `v1`.
fn reference(v1: usize, p: [usize; 6]) -> usize {
    let [a, b, d, e, g, h] = p;
    let v2 = v1.wrapping_add(a);
    let v3 = v2.wrapping_add(b);
    let v4 = v3.wrapping_add(d);
    let v5 = v4.wrapping_add(e);
    let v6 = v5.wrapping_add(g);
    [v2, v3, v4, v5, v6, h]
        .iter()
        .fold(v1, |acc, x| acc.wrapping_add(*x))
        .wrapping_sub(v1)
}

#[test]
fn spilled_inputs_under_a_signal_storm() {
    let mode = status().mode;
    // Each thread records what the reference says its section added, given the old value the
    // section returned; a section that read a wrong input word commits another value, and the
    // slots no longer add up to the recorded deltas (everything modulo the word size).
    let c = PerCpu::<usize>::new(0);
    let threads = 4 * rseq_testkit::allowed_cpus().len().max(1);
    let (ops, aborts) = (AtomicU64::new(0), AtomicU64::new(0));
    let added: Vec<AtomicU64> = (0..threads).map(|_| AtomicU64::new(0)).collect();
    let dur = rseq_testkit::env_ms("RSEQ_TEST_SPILL_MS", 200);
    let start = Instant::now();
    // Natively, go on (up to 20 periods) until the storm has aborted a section (slow VMs).
    const ATTEMPTS: usize = 20;
    let mut limit = dur;
    for attempt in 0..ATTEMPTS {
        rseq_testkit::stress(threads, true, |t| {
            let (mut n, mut ab) = (0u64, 0u64);
            while start.elapsed() < limit {
                // Small parameters (each thread its own), so that sums stay far from wrapping.
                let k = (n as usize % 5) + t;
                let p = [k, 1, 2, 3, k % 3, 7];
                let old = loop {
                    match try_chain_add(&c, p[0], p[1], p[2], p[3], p[4], p[5]) {
                        Ok(old) => break old,
                        Err(Error::Aborted) => ab += 1,
                        Err(e) => panic!("chain_add failed: {e}"),
                    }
                };
                // The delta grows with the old value (5 * old + ...): the slots wrap, which the
                // word-size arithmetic of both sides follows.
                added[t].fetch_add(reference(old, p) as u64, Ordering::Relaxed);
                n += 1;
            }
            ops.fetch_add(n, Ordering::Relaxed);
            aborts.fetch_add(ab, Ordering::Relaxed);
        });
        if mode == Mode::Fallback || aborts.load(Ordering::Relaxed) > 0 || attempt + 1 == ATTEMPTS {
            break;
        }
        limit += dur;
    }
    let sum = c.iter().fold(0usize, |acc, v| acc.wrapping_add(v));
    let expected = added.iter().fold(0usize, |acc, a| {
        acc.wrapping_add(a.load(Ordering::Relaxed) as usize)
    });
    let (ops, aborts) = (ops.into_inner(), aborts.into_inner());
    println!("spilled inputs ({mode:?}): {ops} sections, {aborts} aborts, slot sum {sum:#x}");
    rseq_testkit::report_aborts("spilled", aborts);
    assert!(ops > 0);
    assert_eq!(
        sum, expected,
        "slot sums differ from the reference (lost or wrong updates)"
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
