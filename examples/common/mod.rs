//! Shared driver of the examples: run an operation on many threads under a SIGUSR1 storm for a while,
//! count operations and aborts, then check the example's invariant. The examples' `main`s print the
//! report; `tests/examples.rs` includes the same files and asserts on it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rseq_dsl::Error;

/// How long and how hard to run.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Worker threads (default: 4 per CPU).
    pub threads: usize,
    /// How long the workers run.
    pub duration: Duration,
    /// Whether a storm thread sends SIGUSR1 to the workers (forces aborts).
    pub storm: bool,
}

impl Config {
    /// 4 threads per CPU (`RSEQ_TEST_THREADS_PER_CPU` overrides the 4: runners lower it on VMs with
    /// many emulated vCPUs), 200 ms, storm on: the tests' configuration.
    pub fn for_tests() -> Self {
        Config {
            threads: threads_per_cpu() * cpus(),
            duration: Duration::from_millis(200),
            storm: true,
        }
    }

    /// `--threads N`, `--ms N`, `--no-storm` from the command line, defaults as for tests but 1 s.
    pub fn from_args() -> Self {
        let mut cfg = Config {
            duration: Duration::from_secs(1),
            ..Config::for_tests()
        };
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut num = || {
                it.next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or_else(|| usage(a))
            };
            match a.as_str() {
                "--threads" => cfg.threads = num().max(1) as usize,
                "--ms" => cfg.duration = Duration::from_millis(num()),
                "--no-storm" => cfg.storm = false,
                _ => usage(a),
            }
        }
        cfg
    }
}

fn usage(bad: &str) -> ! {
    eprintln!("unexpected argument `{bad}`; usage: [--threads N] [--ms MILLISECONDS] [--no-storm]");
    std::process::exit(2)
}

/// Worker threads per CPU in tests: `RSEQ_TEST_THREADS_PER_CPU`, default 4.
pub fn threads_per_cpu() -> usize {
    std::env::var("RSEQ_TEST_THREADS_PER_CPU")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(4, |n| n.max(1))
}

/// Number of CPUs this process may use.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What a run observed.
#[derive(Debug, Clone)]
pub struct Report {
    pub example: &'static str,
    pub threads: usize,
    /// Completed operations.
    pub ops: u64,
    /// Attempts the kernel aborted (counted through the `try_` variants).
    pub aborts: u64,
    /// Invariant violations (lost, duplicated or corrupted updates; mutual-exclusion failures).
    pub violations: u64,
    /// What the invariant check compared.
    pub check: String,
}

impl Report {
    pub fn print(&self) {
        println!(
            "{:<14} mode {:<8} threads {:>3}  ops {:>11}  aborts {:>6}  violations {}  ({})",
            self.example,
            format!("{:?}", rseq_dsl::status().mode),
            self.threads,
            self.ops,
            self.aborts,
            self.violations,
            self.check
        );
    }
}

/// Prints every report and the overall invariant check, then exits (status 1 on any violation).
pub fn finish(reports: &[Report]) -> ! {
    for r in reports {
        r.print();
    }
    let ok = reports.iter().all(|r| r.violations == 0);
    println!("invariant check: {}", if ok { "PASSED" } else { "FAILED" });
    std::process::exit(i32::from(!ok))
}

/// Shared tallies of a run.
#[derive(Debug, Default)]
pub struct Tally {
    pub ops: AtomicU64,
    pub aborts: AtomicU64,
    pub violations: AtomicU64,
}

impl Tally {
    pub fn add(&self, ops: u64, aborts: u64) {
        self.ops.fetch_add(ops, Ordering::Relaxed);
        self.aborts.fetch_add(aborts, Ordering::Relaxed);
    }

    pub fn violation(&self) {
        self.violations.fetch_add(1, Ordering::Relaxed);
    }

    pub fn report(
        &self,
        example: &'static str,
        cfg: &Config,
        extra_violations: u64,
        check: String,
    ) -> Report {
        Report {
            example,
            threads: cfg.threads,
            ops: self.ops.load(Ordering::Relaxed),
            aborts: self.aborts.load(Ordering::Relaxed),
            violations: self.violations.load(Ordering::Relaxed) + extra_violations,
            check,
        }
    }
}

/// Runs `work(thread, &mut ops, &mut aborts)` repeatedly on `cfg.threads` threads for `cfg.duration`
/// (under a storm if asked), adding what each thread counted to `tally`.
pub fn run_workers(cfg: &Config, tally: &Tally, work: impl Fn(usize, &mut u64, &mut u64) + Sync) {
    let start = Instant::now();
    rseq_testkit::stress(cfg.threads, cfg.storm, |t| {
        let (mut ops, mut aborts) = (0, 0);
        while start.elapsed() < cfg.duration {
            for _ in 0..256 {
                work(t, &mut ops, &mut aborts);
            }
        }
        tally.add(ops, aborts);
    });
}

/// Calls a `try_` sequence until it does not abort, counting the aborts.
pub fn retry<R>(aborts: &mut u64, mut attempt: impl FnMut() -> Result<R, Error>) -> R {
    loop {
        match attempt() {
            Ok(r) => return r,
            Err(Error::Aborted) => *aborts += 1,
            Err(e) => panic!("sequence failed: {e}"),
        }
    }
}
