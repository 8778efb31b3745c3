//! The explicit-CPU form: `p.on_cpu(cpu)` addresses a given CPU's slot and the section verifies that it
//! runs on that CPU; when it does not, the sequence returns `Err(Error::WrongCpu { .. })` (natively;
//! in fallback mode it operates on that slot under its lock wherever the thread runs).
//!
//! Threads pin themselves to a CPU each and add to that CPU's counter through the explicit form; every
//! CPU's counter must equal what its threads added.
//!
//! `cargo run --release --example explicit_cpu`

// `tests/examples.rs` includes this file as a module and provides `common` itself.
#[cfg(not(test))]
#[path = "common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use crate::common::{finish, retry, run_workers, Config, Report, Tally};
use rseq_dsl::{rseq, Error, Mode, PerCpu};

rseq! {
    /// Adds `n` to CPU `cpu`'s counter, provided the thread runs on `cpu`.
    pub fn counter_add_on(counters: &PerCpu<usize>, cpu: usize, n: usize) {
        let slot = counters.on_cpu(cpu);
        let v = load(slot);
        commit store(slot, v + n);
    }
}

pub fn run(cfg: &Config) -> Report {
    let cpus = rseq_testkit::allowed_cpus();
    let counters = PerCpu::<usize>::new(0);
    let added: Vec<AtomicU64> = (0..counters.len()).map(|_| AtomicU64::new(0)).collect();
    let tally = Tally::default();
    let wrong_cpu_seen = AtomicU64::new(0);
    run_workers(cfg, &tally, |t, ops, aborts| {
        let cpu = cpus[t % cpus.len()];
        if *ops == 0 {
            rseq_testkit::pin_to(&[cpu]);
            // Natively, naming another CPU than the one we are pinned to must be refused.
            if let Some(&other) = cpus.iter().find(|&&c| c != cpu) {
                match counter_add_on(&counters, other, 1000) {
                    Err(Error::WrongCpu { expected, current })
                        if expected == other && current == cpu =>
                    {
                        wrong_cpu_seen.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(()) if rseq_dsl::status().mode == Mode::Fallback => {
                        added[other].fetch_add(1000, Ordering::Relaxed);
                    }
                    r => panic!("on CPU {cpu}, naming CPU {other}: unexpected {r:?}"),
                }
            }
        }
        retry(aborts, || try_counter_add_on(&counters, cpu, 1));
        added[cpu].fetch_add(1, Ordering::Relaxed);
        *ops += 1;
    });
    let mut mismatches = 0;
    let mut detail = Vec::new();
    for (c, a) in added.iter().enumerate() {
        let (got, want) = (counters.load(c).unwrap() as u64, a.load(Ordering::Relaxed));
        mismatches += got.abs_diff(want);
        detail.push(format!("cpu{c} {got}/{want}"));
    }
    // Out-of-range CPUs are an error, not a wild write.
    if !matches!(
        counter_add_on(&counters, usize::MAX, 1),
        Err(Error::IndexOutOfRange { .. })
    ) {
        mismatches += 1;
    }
    let native = rseq_dsl::status().mode == Mode::Native;
    // Every worker that ran names another CPU first: natively one refusal at least, unless no
    // worker ran at all (a starved run: no operation, which the drivers report and retry).
    let ran = tally.ops.load(Ordering::Relaxed) > 0;
    if native && ran && cpus.len() > 1 && wrong_cpu_seen.load(Ordering::Relaxed) == 0 {
        mismatches += 1;
    }
    tally.report(
        "explicit_cpu",
        cfg,
        mismatches,
        format!(
            "{}; WrongCpu refusals {}",
            detail.join(", "),
            wrong_cpu_seen.load(Ordering::Relaxed)
        ),
    )
}

fn main() {
    let cfg = Config::from_args();
    println!("rseq-dsl: {}", rseq_dsl::status());
    finish(&[run(&cfg)]);
}
