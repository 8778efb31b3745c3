//! Per-CPU counters, indexed by CPU id and by mm_cid: the README's demonstration.
//!
//! Many threads add to per-CPU counters under a storm of signals that aborts critical sections; the sum
//! of the counters must equal the number of additions exactly.
//!
//! `cargo run --release --example counter [-- --threads N --ms N --no-storm]`

// `tests/examples.rs` includes this file as a module and provides `common` itself.
#[cfg(not(test))]
#[path = "common/mod.rs"]
mod common;

use crate::common::{finish, retry, run_workers, Config, Report, Tally};
use rseq_dsl::{rseq, this_thread, Error, PerCpu, PerMmCid, ThisThread};

// Machine words (`usize`), so that the example runs on every architecture: 64-bit words do not fit
// one register on 32-bit arm (`rseq_dsl::percpu::Counter` keeps a 64-bit count everywhere).
rseq! {
    /// Adds `n` to the calling CPU's counter.
    pub fn counter_add(counters: &PerCpu<usize>, n: usize) {
        let slot = counters.current();
        let v = load(slot);
        commit store(slot, v + n);
    }

    /// Adds `n` to the counter of the calling thread's mm_cid (dense when few CPUs are used).
    #[rseq(index = mm_cid)]
    pub fn cid_counter_add(counters: &PerMmCid<usize>, n: usize) {
        let slot = counters.current();
        let v = load(slot);
        commit store(slot, v + n);
    }

    /// `cid_counter_add` for a caller that looked the thread up once (`rseq_dsl::this_thread`):
    /// the section takes the thread's area from the token instead of the thread-local.
    #[rseq(index = mm_cid)]
    pub fn cid_counter_add_in(thread: ThisThread<'_>, counters: &PerMmCid<usize>, n: usize) {
        let slot = counters.current();
        let v = load(slot);
        commit store(slot, v + n);
    }
}

/// cpu_id-indexed counters: every thread adds 1, 2 or 3 in turn; the sum is checked exactly.
pub fn run_cpu(cfg: &Config) -> Report {
    let counters = PerCpu::<usize>::new(0);
    let tally = Tally::default();
    let added = std::sync::atomic::AtomicU64::new(0);
    run_workers(cfg, &tally, |t, ops, aborts| {
        let n = (*ops as usize + t) % 3 + 1;
        retry(aborts, || try_counter_add(&counters, n));
        added.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        *ops += 1;
    });
    // The infallible form too (it retries by itself).
    counter_add(&counters, 5);
    let expected = added.into_inner() + 5;
    let sum: u64 = counters.iter().map(|v| v as u64).sum();
    tally.report(
        "counter",
        cfg,
        sum.abs_diff(expected),
        format!("sum {sum} == added {expected}"),
    )
}

/// mm_cid-indexed counters; `Err(MmCidUnavailable)` where the kernel lacks mm_cid.
pub fn run_mm_cid(cfg: &Config) -> Result<Report, Error> {
    let counters = PerMmCid::<usize>::new(0);
    cid_counter_add(&counters, 0)?;
    let tally = Tally::default();
    run_workers(cfg, &tally, |_, ops, aborts| {
        if *ops % 2 == 0 {
            retry(aborts, || try_cid_counter_add(&counters, 1));
        } else {
            // Half the additions through a thread token (the same section, entered differently).
            this_thread(|t| retry(aborts, || try_cid_counter_add_in(t, &counters, 1)))
                .expect("a worker thread can run sequences");
        }
        *ops += 1;
    });
    let expected = tally.ops.load(std::sync::atomic::Ordering::Relaxed);
    let sum: u64 = counters.iter().map(|v| v as u64).sum();
    Ok(tally.report(
        "counter/mm_cid",
        cfg,
        sum.abs_diff(expected),
        format!("sum {sum} == ops {expected}"),
    ))
}

fn main() {
    let cfg = Config::from_args();
    println!("rseq-dsl: {}", rseq_dsl::status());
    let mut reports = vec![run_cpu(&cfg)];
    match run_mm_cid(&cfg) {
        Ok(r) => reports.push(r),
        Err(e) => println!("counter/mm_cid skipped: {e}"),
    }
    finish(&reports);
}
