//! rseq-stress: runs every example's workload (`examples/*.rs`, through their `run` functions) with
//! threads = 6 x CPUs under a matrix of scenarios, in every process mode, and checks every invariant.
//!
//! Scenarios (each runs every workload; a SIGUSR1 storm to every worker runs in all of them):
//! - `storm`: the plain storm (the handler only counts);
//! - `inject:<point>`: the storm plus a delay loop at one injection point (needs the `inject` feature);
//! - `yield`: the handler calls `sched_yield`;
//! - `signal-seq`: the handler itself runs sequences, also while the interrupted thread is inside one
//!   (natively the kernel aborts the interrupted section; in fallback mode the locks must not deadlock);
//! - `sleep`: the handler sleeps 50 us every 4th signal;
//! - `migrate`: a thread keeps changing the workers' CPU affinity (forced migrations);
//! - `fork`: a thread forks while sequences run; each child runs sequences and checks them;
//! - `churn`: a thread keeps spawning short-lived threads that run sequences.
//!
//! Modes: native with glibc's registration (this process), forced fallback (`RSEQ_DSL_FALLBACK=1`) and
//! self-registration (`GLIBC_TUNABLES=glibc.pthread.rseq=0`), the latter two in child processes.
//!
//! Per scenario it prints operations, aborts, invariant violations (must be 0) and the mode. Bounded by
//! default (`--ms 40` per workload run); `--soak <minutes>` repeats the whole matrix with longer runs.
//! Exit status 0 only when there was no violation and every expectation held (aborts observed natively,
//! operations completed, the signal handler nested into sequences, fork children passed). A native
//! scenario run that aborted no section runs again, up to three more times, before its missing abort
//! counts (every run's operations and violations count).
//!
//! `cargo run --release -p rseq-stress --features inject,debug-checks -- --soak 10`

// The examples include `common` themselves when built as examples (`#[cfg(not(test))]`), so each one
// brings its own unused copy here; they use this crate-level one through `crate::common`.
#![allow(clippy::duplicate_mod)]

#[path = "../../examples/common/mod.rs"]
mod common;

#[allow(dead_code, clippy::pedantic)]
#[path = "../../examples/buffer.rs"]
mod buffer;
#[allow(dead_code, clippy::pedantic)]
#[path = "../../examples/counter.rs"]
mod counter;
#[allow(dead_code, clippy::pedantic)]
#[path = "../../examples/explicit_cpu.rs"]
mod explicit_cpu;
#[allow(dead_code, clippy::pedantic)]
#[path = "../../examples/memcpy_buffer.rs"]
mod memcpy_buffer;
#[allow(dead_code, clippy::pedantic)]
#[path = "../../examples/spinlock.rs"]
mod spinlock;
#[allow(dead_code, clippy::pedantic)]
#[path = "../../examples/stack.rs"]
mod stack;

use std::cell::Cell;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Config, Report, Tally};
use rseq_dsl::inject::{self, Point};
use rseq_dsl::{rseq, Error, Mode, Owner, PerCpu};

rseq! {
    /// The harness's own counter (signal handlers, forked children, churn threads); machine words,
    /// so that it runs on 32-bit arm too.
    pub fn add(counters: &PerCpu<usize>, n: usize) {
        let slot = counters.current();
        let v = load(slot);
        commit store(slot, v + n);
    }
}

// ---------------------------------------------------------------------------------------------------
// Command line

#[derive(Debug, Clone)]
struct Args {
    ms: u64,
    soak_minutes: Option<f64>,
    threads: usize,
    modes: Vec<RunMode>,
    scenario: Option<String>,
    delay: u64,
    verbose: bool,
    in_child: bool,
    negative_control: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunMode {
    Native,
    Fallback,
    SelfRegistered,
}

impl RunMode {
    fn name(self) -> &'static str {
        match self {
            RunMode::Native => "native",
            RunMode::Fallback => "fallback",
            RunMode::SelfRegistered => "self",
        }
    }

    fn from_name(s: &str) -> Option<RunMode> {
        [RunMode::Native, RunMode::Fallback, RunMode::SelfRegistered]
            .into_iter()
            .find(|m| m.name() == s)
    }

    fn env(self) -> &'static [(&'static str, &'static str)] {
        match self {
            RunMode::Native => &[],
            RunMode::Fallback => &[("RSEQ_DSL_FALLBACK", "1")],
            RunMode::SelfRegistered => &[("GLIBC_TUNABLES", "glibc.pthread.rseq=0")],
        }
    }
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "{msg}\nusage: rseq-stress [--ms N] [--soak MINUTES] [--threads N] [--mode native|fallback|self|all] \
         [--scenario SUBSTRING] [--delay ITERATIONS] [-v] [--negative-control]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        ms: 40,
        soak_minutes: None,
        threads: 6 * common::cpus(),
        modes: vec![RunMode::Native, RunMode::Fallback, RunMode::SelfRegistered],
        scenario: None,
        delay: 2000,
        verbose: false,
        in_child: false,
        negative_control: false,
    };
    let mut ms_given = false;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .unwrap_or_else(|| usage(&format!("`{arg}` needs a value")))
        };
        match arg.as_str() {
            "--ms" => {
                a.ms = value().parse().unwrap_or_else(|_| usage("bad --ms"));
                ms_given = true;
            }
            "--soak" => {
                a.soak_minutes = Some(value().parse().unwrap_or_else(|_| usage("bad --soak")));
            }
            "--threads" => a.threads = value().parse().unwrap_or_else(|_| usage("bad --threads")),
            "--mode" => {
                let v = value();
                a.modes = if v == "all" {
                    a.modes.clone()
                } else {
                    vec![RunMode::from_name(&v).unwrap_or_else(|| usage("bad --mode"))]
                };
            }
            "--scenario" => a.scenario = Some(value()),
            "--delay" => a.delay = value().parse().unwrap_or_else(|_| usage("bad --delay")),
            "-v" | "--verbose" => a.verbose = true,
            "--in-child" => a.in_child = true,
            "--negative-control" => a.negative_control = true,
            other => usage(&format!("unexpected argument `{other}`")),
        }
    }
    if a.soak_minutes.is_some() && !ms_given {
        a.ms = 400;
    }
    a
}

// ---------------------------------------------------------------------------------------------------
// Scenarios and workloads

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Storm,
    Inject(Point),
    Yield,
    SignalSeq,
    Sleep,
    Migrate,
    Fork,
    Churn,
}

impl Scenario {
    fn all() -> Vec<Scenario> {
        let mut v = vec![Scenario::Storm];
        v.extend(Point::ALL.into_iter().map(Scenario::Inject));
        v.extend([
            Scenario::Yield,
            Scenario::SignalSeq,
            Scenario::Sleep,
            Scenario::Migrate,
            Scenario::Fork,
            Scenario::Churn,
        ]);
        v
    }

    fn name(self) -> String {
        match self {
            Scenario::Storm => "storm".into(),
            Scenario::Inject(p) => format!("inject:{}", p.name()),
            Scenario::Yield => "yield".into(),
            Scenario::SignalSeq => "signal-seq".into(),
            Scenario::Sleep => "sleep".into(),
            Scenario::Migrate => "migrate".into(),
            Scenario::Fork => "fork".into(),
            Scenario::Churn => "churn".into(),
        }
    }
}

struct Workload {
    name: &'static str,
    run: fn(&Config) -> Report,
    /// Pins its own threads (so forced migrations would turn into `WrongCpu` errors by design).
    pins: bool,
}

/// Natively on a kernel without mm_cid (before 6.3) the mm_cid counter must be refused with the
/// typed error; it then leaves the workload list (checked and said once per process).
fn mm_cid_refused() -> bool {
    static REFUSED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *REFUSED.get_or_init(|| {
        let s = rseq_dsl::status();
        if s.mode != Mode::Native || s.mm_cid_usable {
            return false;
        }
        assert_eq!(
            rseq_dsl::mm_cid(),
            Err(rseq_dsl::Error::MmCidUnavailable),
            "{s}"
        );
        println!(
            "counter/mm_cid: refused with MmCidUnavailable on this kernel ({s}): workload left out"
        );
        true
    })
}

fn workloads() -> Vec<Workload> {
    let w = |name, run, pins| Workload { name, run, pins };
    let mut v = vec![
        w("counter", counter::run_cpu as fn(&Config) -> Report, false),
        w(
            "counter/mm_cid",
            |c| {
                counter::run_mm_cid(c)
                    .unwrap_or_else(|e| panic!("mm_cid counter: {e} ({})", rseq_dsl::status()))
            },
            false,
        ),
        w("spinlock", spinlock::run, false),
        w("stack", stack::run, false),
        w("buffer", buffer::run, false),
        w("memcpy/16", memcpy_buffer::run16, false),
        w("memcpy/64", memcpy_buffer::run64, false),
        w("explicit_cpu", explicit_cpu::run, true),
    ];
    if mm_cid_refused() {
        v.retain(|w| w.name != "counter/mm_cid");
    }
    v
}

// ---------------------------------------------------------------------------------------------------
// The signal handler

const H_COUNT: u8 = 0;
const H_SEQUENCES: u8 = 1;
const H_YIELD: u8 = 2;
const H_SLEEP: u8 = 3;

static HANDLER_MODE: AtomicU8 = AtomicU8::new(H_COUNT);
/// Counters the handler adds to (leaked, never freed, so the handler can always use them).
static HANDLER_COUNTERS: AtomicPtr<PerCpu<usize>> = AtomicPtr::new(std::ptr::null_mut());
static H_SIGNALS: AtomicU64 = AtomicU64::new(0);
static H_OPS: AtomicU64 = AtomicU64::new(0);
static H_ABORTS: AtomicU64 = AtomicU64::new(0);
static H_NESTED: AtomicU64 = AtomicU64::new(0);
static H_REFUSED: AtomicU64 = AtomicU64::new(0);
/// Handler invocations on a thread that had not run a sequence of its own yet: skipped, as the
/// runtime's first-use rule asks (README, "Signals": a thread's first sequence may register the
/// thread and its TLS destructor, which is not async-signal-safe; a handler interrupting a thread
/// that holds the allocator's lock then deadlocks in self-registration mode).
static H_UNREADY: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Set by the nesting workload around its sequence calls.
    static IN_SEQUENCE: Cell<bool> = const { Cell::new(false) };
    static SIGNAL_COUNT: Cell<u32> = const { Cell::new(0) };
    /// Set once this thread has run a sequence outside a handler (see `H_UNREADY`).
    static SEQ_READY: Cell<bool> = const { Cell::new(false) };
}

extern "C" fn on_sigusr1(_: libc::c_int) {
    // SAFETY: __errno_location returns this thread's errno slot; saved and restored around the handler.
    let errno = unsafe { *libc::__errno_location() };
    H_SIGNALS.fetch_add(1, Ordering::Relaxed);
    match HANDLER_MODE.load(Ordering::Relaxed) {
        H_SEQUENCES => {
            let p = HANDLER_COUNTERS.load(Ordering::Acquire);
            if !SEQ_READY.with(Cell::get) {
                H_UNREADY.fetch_add(1, Ordering::Relaxed);
            // SAFETY: set once at start-up from a leaked Box, never freed.
            } else if let Some(counters) = unsafe { p.as_ref() } {
                let nested = IN_SEQUENCE.with(Cell::get);
                loop {
                    match try_add(counters, 1) {
                        Ok(()) => {
                            H_OPS.fetch_add(1, Ordering::Relaxed);
                            if nested {
                                H_NESTED.fetch_add(1, Ordering::Relaxed);
                            }
                            break;
                        }
                        Err(Error::Aborted) => {
                            H_ABORTS.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            // WouldDeadlock: fallback mode, this thread was inside a lock operation and
                            // every other index was taken; the handler must not wait.
                            H_REFUSED.fetch_add(1, Ordering::Relaxed);
                            if nested {
                                H_NESTED.fetch_add(1, Ordering::Relaxed);
                            }
                            break;
                        }
                    }
                }
            }
        }
        // SAFETY: sched_yield has no preconditions and is async-signal-safe.
        H_YIELD => unsafe {
            libc::sched_yield();
        },
        H_SLEEP => {
            let n = SIGNAL_COUNT.with(|c| {
                c.set(c.get().wrapping_add(1));
                c.get()
            });
            if n % 4 == 0 {
                let ts = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 50_000,
                };
                // SAFETY: nanosleep with a valid timespec; async-signal-safe.
                unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
            }
        }
        _ => {}
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

fn handler_counters() -> &'static PerCpu<usize> {
    // SAFETY: set in `main` before any scenario runs, from a leaked Box.
    unsafe { &*HANDLER_COUNTERS.load(Ordering::Acquire) }
}

// ---------------------------------------------------------------------------------------------------
// Perturbation threads

/// Forced migrations: keeps moving every thread but `main` and itself to a random allowed CPU.
fn migrate_loop(stop: &AtomicBool, main_tid: i32) -> u64 {
    let cpus = rseq_testkit::allowed_cpus();
    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::gettid() };
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut moves = 0;
    while !stop.load(Ordering::Relaxed) {
        let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
            break;
        };
        for e in dir.flatten() {
            let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if tid == main_tid || tid == me {
                continue;
            }
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let cpu = cpus[(rng % cpus.len() as u64) as usize];
            // SAFETY: a zeroed cpu_set_t is empty; CPU_SET gets an index below CPU_SETSIZE; the call only
            // changes the target thread's affinity (ESRCH when it already exited, which is fine).
            unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                if libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0 {
                    moves += 1;
                }
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    moves
}

/// A denser storm for `signal-seq`: `tgkill(SIGUSR1)` to every other thread of the process in a loop
/// (the testkit's storm thread competes with 6 x CPUs busy workers and gets few time slices).
fn signal_loop(stop: &AtomicBool) -> u64 {
    // SAFETY: getpid/gettid have no preconditions.
    let (pid, me) = unsafe { (libc::getpid(), libc::gettid()) };
    let mut sent = 0;
    while !stop.load(Ordering::Relaxed) {
        let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
            break;
        };
        for e in dir.flatten() {
            let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            // SAFETY: tgkill to a thread of this process (ESRCH if it exited meanwhile); every thread has
            // the harness's SIGUSR1 handler.
            if tid != me && unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGUSR1) } == 0
            {
                sent += 1;
            }
        }
        // A pause between rounds: signalled threads that sleep (the testkit's storm thread, the
        // watchdog) must still get through their sleeps.
        std::thread::sleep(Duration::from_micros(100));
    }
    sent
}

/// What a forked child checks: sequences work in the child (single-threaded copy of the process).
const CHILD_OPS: u64 = 20_000;

fn forked_child() -> ! {
    let counters = PerCpu::<usize>::new(0);
    let mut aborts = 0u64;
    for _ in 0..CHILD_OPS {
        loop {
            match try_add(&counters, 1) {
                Ok(()) => break,
                Err(Error::Aborted) => aborts += 1,
                // SAFETY: _exit is async-signal-safe and ends the child without running the parent's
                // atexit handlers or flushing its copied stdio buffers.
                Err(_) => unsafe { libc::_exit(2) },
            }
        }
    }
    // The process-wide counters inherited from the parent keep working too.
    add(handler_counters(), 0);
    let ok = counters.iter().map(|v| v as u64).sum::<u64>() == CHILD_OPS;
    let _ = aborts;
    // SAFETY: as above.
    unsafe { libc::_exit(i32::from(!ok)) }
}

#[derive(Debug, Default)]
struct ForkTally {
    children: u64,
    failed: u64,
    hung: u64,
}

/// Forks every few milliseconds while the workers run; each child runs [`forked_child`].
fn fork_loop(stop: &AtomicBool) -> ForkTally {
    let mut t = ForkTally::default();
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: fork in a multi-threaded process: the child only runs code that is safe after fork
        // (glibc's malloc is fork-safe; no locks of other threads are needed by sequences natively).
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            forked_child();
        }
        assert!(pid > 0, "fork failed");
        t.children += 1;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut status = 0;
            // SAFETY: waitpid on our own child with a valid status pointer.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
                    t.failed += 1;
                }
                break;
            }
            if Instant::now() > deadline {
                t.hung += 1;
                // SAFETY: kill and reap our own hung child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                break;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    t
}

/// Thread churn: short-lived threads (4 at a time, 500 operations each) adding to `counters`.
fn churn_loop(stop: &AtomicBool, counters: &PerCpu<usize>) -> (u64, u64, u64) {
    let (ops, aborts, threads) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    while !stop.load(Ordering::Relaxed) {
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    threads.fetch_add(1, Ordering::Relaxed);
                    let mut a = 0;
                    for _ in 0..500 {
                        common::retry(&mut a, || try_add(counters, 1));
                    }
                    ops.fetch_add(500, Ordering::Relaxed);
                    aborts.fetch_add(a, Ordering::Relaxed);
                });
            }
        });
    }
    (ops.into_inner(), aborts.into_inner(), threads.into_inner())
}

/// The nesting workload of `signal-seq`: workers add to the handler's counters, flagging the call so
/// the handler can count the times it ran a sequence while its thread was inside one.
fn nesting_run(cfg: &Config) -> Report {
    let counters = handler_counters();
    let tally = Tally::default();
    common::run_workers(cfg, &tally, |_, ops, aborts| {
        IN_SEQUENCE.with(|f| f.set(true));
        common::retry(aborts, || try_add(counters, 1));
        IN_SEQUENCE.with(|f| f.set(false));
        SEQ_READY.with(|f| f.set(true));
        *ops += 1;
    });
    tally.report("signal-nesting", cfg, 0, String::new())
}

// ---------------------------------------------------------------------------------------------------
// Running

#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    ops: u64,
    aborts: u64,
    violations: u64,
    /// Expectations that did not hold (no abort natively, no operation, ...): also a failure.
    failures: u64,
    /// 1 when this native run aborted no section (counted in `failures` too); `run_here` runs
    /// such a scenario again.
    unaborted: u64,
    scenarios: u64,
    skipped: u64,
}

impl Totals {
    fn add(&mut self, o: &Totals) {
        self.ops += o.ops;
        self.aborts += o.aborts;
        self.violations += o.violations;
        self.failures += o.failures;
        self.scenarios += o.scenarios;
        self.skipped += o.skipped;
    }
}

static WATCHDOG_DEADLINE_MS: AtomicU64 = AtomicU64::new(u64::MAX);
static WATCHDOG_WHAT: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// Kills the process (exit 3) when a scenario overruns its deadline: a hang is a failure, not a wait.
fn start_watchdog(t0: Instant) {
    std::thread::spawn(move || loop {
        // Never handle the storms' signals here: the watchdog must keep its own pace.
        // SAFETY: sigset operations on a local set; pthread_sigmask only changes this thread's mask.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
        std::thread::sleep(Duration::from_millis(100));
        let deadline = WATCHDOG_DEADLINE_MS.load(Ordering::Relaxed);
        if (t0.elapsed().as_millis() as u64) > deadline {
            let what = WATCHDOG_WHAT.lock().map(|w| w.clone()).unwrap_or_default();
            eprintln!("HANG: {what} did not finish before its deadline (deadlock?)");
            println!("HANG: {what}");
            // SAFETY: _exit ends the process immediately (stuck threads cannot run destructors).
            unsafe { libc::_exit(3) };
        }
    });
}

fn mode_label() -> String {
    let s = rseq_dsl::status();
    match (s.mode, s.owner) {
        (Mode::Native, Some(Owner::Glibc)) => "native/glibc".into(),
        (Mode::Native, Some(Owner::Runtime)) => "native/self-reg".into(),
        (Mode::Native, None) => "native".into(),
        (Mode::Fallback, _) => "fallback".into(),
    }
}

/// Runs one scenario; returns its totals and its `scenario ...` report line.
fn run_scenario(sc: Scenario, args: &Args, t0: Instant) -> (Totals, String) {
    let native = rseq_dsl::status().mode == Mode::Native;
    let label = mode_label();
    let mut t = Totals::default();
    if let Scenario::Inject(_) = sc {
        if !native || !inject::ENABLED {
            let line = format!(
                "scenario {:<22} mode {:<16} skipped ({})",
                sc.name(),
                label,
                if native {
                    "built without the `inject` feature"
                } else {
                    "no critical sections in fallback mode"
                }
            );
            t.skipped = 1;
            return (t, line);
        }
    }
    let cfg = Config {
        threads: args.threads,
        duration: Duration::from_millis(args.ms),
        storm: true,
    };
    let budget_ms = 30 * args.ms * 10 + 30_000;
    *WATCHDOG_WHAT.lock().unwrap() = format!("scenario {} in mode {label}", sc.name());
    WATCHDOG_DEADLINE_MS.store(
        t0.elapsed().as_millis() as u64 + budget_ms,
        Ordering::Relaxed,
    );

    inject::clear();
    if let Scenario::Inject(p) = sc {
        inject::set_delay(p, args.delay);
    }
    HANDLER_MODE.store(
        match sc {
            Scenario::SignalSeq => H_SEQUENCES,
            Scenario::Yield => H_YIELD,
            Scenario::Sleep => H_SLEEP,
            _ => H_COUNT,
        },
        Ordering::Relaxed,
    );
    let h_before = (
        handler_counters().iter().map(|v| v as u64).sum::<u64>(),
        H_OPS.load(Ordering::Relaxed),
        H_ABORTS.load(Ordering::Relaxed),
        H_NESTED.load(Ordering::Relaxed),
        H_REFUSED.load(Ordering::Relaxed),
        H_SIGNALS.load(Ordering::Relaxed),
        H_UNREADY.load(Ordering::Relaxed),
    );
    // SAFETY: gettid has no preconditions.
    let main_tid = unsafe { libc::gettid() };
    let stop = AtomicBool::new(false);
    let churn_counters = PerCpu::<usize>::new(0);
    let mut extra = String::new();
    let mut nesting_ops = 0;
    std::thread::scope(|s| {
        let migrate = (sc == Scenario::Migrate).then(|| s.spawn(|| migrate_loop(&stop, main_tid)));
        let fork = (sc == Scenario::Fork).then(|| s.spawn(|| fork_loop(&stop)));
        let churn = (sc == Scenario::Churn).then(|| s.spawn(|| churn_loop(&stop, &churn_counters)));
        let signals = (sc == Scenario::SignalSeq).then(|| s.spawn(|| signal_loop(&stop)));
        for w in workloads() {
            if sc == Scenario::Migrate && w.pins {
                continue;
            }
            // Like tests/examples.rs: a workload that completed nothing in a short run (the pop-based
            // ones only progress on a CPU whose list has items) runs again, longer, a few times.
            let mut run_cfg = cfg;
            let mut r = (w.run)(&run_cfg);
            for _ in 0..3 {
                if r.ops > 0 || r.violations > 0 {
                    break;
                }
                run_cfg.duration *= 2;
                r = (w.run)(&run_cfg);
            }
            if args.verbose {
                print!("    ");
                r.print();
            }
            if r.violations > 0 {
                println!("    VIOLATION in {}: {}", w.name, r.check);
            }
            if r.ops == 0 {
                println!("    no operation completed by {}", w.name);
                t.failures += 1;
            }
            t.ops += r.ops;
            t.aborts += r.aborts;
            t.violations += r.violations;
        }
        if sc == Scenario::SignalSeq {
            let r = nesting_run(&Config {
                duration: cfg.duration * 4,
                ..cfg
            });
            nesting_ops = r.ops;
            t.ops += r.ops;
            t.aborts += r.aborts;
        }
        stop.store(true, Ordering::Relaxed);
        if let Some(h) = signals {
            h.join().unwrap();
        }
        if let Some(h) = migrate {
            let moves = h.join().unwrap();
            extra = format!("migrations {moves}");
            if moves == 0 {
                t.failures += 1;
            }
        }
        if let Some(h) = fork {
            let f = h.join().unwrap();
            extra = format!(
                "forked children {} (failed {}, hung {})",
                f.children, f.failed, f.hung
            );
            t.violations += f.failed + f.hung;
            t.ops += f.children * CHILD_OPS;
            if f.children == 0 {
                t.failures += 1;
            }
        }
        if let Some(h) = churn {
            let (ops, aborts, threads) = h.join().unwrap();
            let sum: u64 = churn_counters.iter().map(|v| v as u64).sum();
            extra = format!("churn threads {threads}, sum {sum} == ops {ops}");
            t.ops += ops;
            t.aborts += aborts;
            t.violations += sum.abs_diff(ops);
            if threads == 0 {
                t.failures += 1;
            }
        }
    });
    HANDLER_MODE.store(H_COUNT, Ordering::Relaxed);
    inject::clear();
    if sc == Scenario::SignalSeq {
        let sum = handler_counters().iter().map(|v| v as u64).sum::<u64>() - h_before.0;
        let h_ops = H_OPS.load(Ordering::Relaxed) - h_before.1;
        let h_aborts = H_ABORTS.load(Ordering::Relaxed) - h_before.2;
        let nested = H_NESTED.load(Ordering::Relaxed) - h_before.3;
        let refused = H_REFUSED.load(Ordering::Relaxed) - h_before.4;
        let signals = H_SIGNALS.load(Ordering::Relaxed) - h_before.5;
        let unready = H_UNREADY.load(Ordering::Relaxed) - h_before.6;
        t.ops += h_ops;
        t.aborts += h_aborts;
        t.violations += sum.abs_diff(h_ops + nesting_ops);
        extra = format!(
            "signals {signals}, handler sequences {h_ops} + {refused} refused ({unready} skipped before the \
             thread's first sequence), {nested} of them while inside a sequence, sum {sum} == {}",
            h_ops + nesting_ops
        );
        if h_ops == 0 || nested == 0 {
            t.failures += 1;
        }
    }
    // A delay before the descriptor store is outside the section: it is the control of the injection
    // scenarios (fewer operations, no more aborts), so it has no abort expectation.
    if native && t.aborts == 0 && sc != Scenario::Inject(Point::BeforeArm) {
        println!("    no section was aborted natively: the storm did not reach the sections");
        t.failures += 1;
        t.unaborted = 1;
    }
    t.scenarios = 1;
    let line = format!(
        "scenario {:<22} mode {:<16} ops {:>10}  aborts {:>7}  violations {}{}",
        sc.name(),
        label,
        t.ops,
        t.aborts,
        t.violations,
        if extra.is_empty() {
            String::new()
        } else {
            format!("  ({extra})")
        }
    );
    WATCHDOG_DEADLINE_MS.store(u64::MAX, Ordering::Relaxed);
    (t, line)
}

/// Native runs that aborted no section run again, up to this many more times.
const ABORT_RETRIES: u32 = 3;

/// All scenarios in this process's mode.
fn run_here(args: &Args, t0: Instant) -> Totals {
    let mut total = Totals::default();
    for sc in Scenario::all() {
        if let Some(f) = &args.scenario {
            if !sc.name().contains(f.as_str()) {
                continue;
            }
        }
        // Whether the storm lands inside a section is statistical: debug and AddressSanitizer
        // builds see a handful of aborts per scenario (the code between sections is slower), and
        // once a churn run under ASan saw none. A native run without an abort runs again; every
        // run's operations, aborts and violations count, and the missing abort is a failure only
        // if the last run has none either. Only the last run prints its `scenario` line (the
        // tests count one per scenario and mode).
        let (mut t, mut line) = run_scenario(sc, args, t0);
        for again in 1..=ABORT_RETRIES {
            if t.unaborted == 0 {
                break;
            }
            println!(
                "    {}: no abort in that run; running it again ({again} of {ABORT_RETRIES}): {line}",
                sc.name()
            );
            let (next, next_line) = run_scenario(sc, args, t0);
            t.failures -= 1;
            t.add(&next);
            t.unaborted = next.unaborted;
            t.scenarios = next.scenarios;
            line = next_line;
        }
        println!("{line}");
        total.add(&t);
    }
    total
}

fn result_line(mode: &str, t: &Totals) -> String {
    format!(
        "RESULT mode {mode} scenarios {} skipped {} ops {} aborts {} violations {} failures {}",
        t.scenarios, t.skipped, t.ops, t.aborts, t.violations, t.failures
    )
}

fn parse_result(line: &str) -> Option<Totals> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let get = |k: &str| -> Option<u64> {
        let i = f.iter().position(|w| *w == k)?;
        f.get(i + 1)?.parse().ok()
    };
    Some(Totals {
        scenarios: get("scenarios")?,
        skipped: get("skipped")?,
        ops: get("ops")?,
        aborts: get("aborts")?,
        violations: get("violations")?,
        failures: get("failures")?,
        unaborted: 0,
    })
}

/// Runs `mode` in a child process of this binary (fresh environment decides the mode).
fn run_child(mode: RunMode, args: &Args) -> Totals {
    let exe = std::env::current_exe().expect("own path");
    // Through RSEQ_TESTKIT_RUNNER when set (qemu-user without binfmt_misc).
    let mut cmd = rseq_testkit::command(exe);
    cmd.args([
        "--in-child",
        "--mode",
        mode.name(),
        "--ms",
        &args.ms.to_string(),
    ])
    .args(["--threads", &args.threads.to_string()])
    .args(["--delay", &args.delay.to_string()])
    .env_remove("RSEQ_DSL_FALLBACK")
    .env_remove("GLIBC_TUNABLES")
    .stdout(Stdio::piped());
    if let Some(s) = &args.scenario {
        cmd.args(["--scenario", s]);
    }
    if args.verbose {
        cmd.arg("-v");
    }
    for (k, v) in mode.env() {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn the harness child");
    let mut result = None;
    for line in BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        if line.starts_with("RESULT ") {
            result = parse_result(&line);
        }
        println!("{line}");
    }
    let status = child.wait().expect("wait for the harness child");
    match result {
        Some(t) if status.success() || t.violations > 0 || t.failures > 0 => t,
        _ => {
            println!("mode {} child failed: {status}", mode.name());
            Totals {
                failures: 1,
                ..Totals::default()
            }
        }
    }
}

/// The harness must be able to fail: the counter workload with the read-modify-write done outside any
/// section, through the same reporting, must report violations.
fn negative_control(args: &Args) -> bool {
    let counters = PerCpu::<usize>::new(0);
    let tally = Tally::default();
    let cfg = Config {
        threads: args.threads,
        duration: Duration::from_millis(args.ms.max(200)),
        storm: true,
    };
    let added = AtomicU64::new(0);
    common::run_workers(&cfg, &tally, |_, ops, _| {
        let cpu = rseq_dsl::cpu_id().unwrap_or(0);
        // SAFETY: an in-bounds, aligned usize slot, only accessed atomically.
        let slot = unsafe { AtomicUsize::from_ptr(counters.slot_ptr(cpu).unwrap()) };
        let v = std::hint::black_box(slot.load(Ordering::Relaxed));
        slot.store(v + 1, Ordering::Relaxed);
        added.fetch_add(1, Ordering::Relaxed);
        *ops += 1;
    });
    let (sum, want) = (
        counters.iter().map(|v| v as u64).sum::<u64>(),
        added.load(Ordering::Relaxed),
    );
    let r = tally.report(
        "unprotected",
        &cfg,
        sum.abs_diff(want),
        format!("sum {sum} == added {want}"),
    );
    r.print();
    r.violations > 0
}

fn main() {
    let args = parse_args();
    let t0 = Instant::now();
    // Decide the mode before any signal handler may run a sequence (the first decision is not
    // async-signal-safe), and install the handler (after the testkit's, which it replaces).
    let status = rseq_dsl::status();
    let counters: &'static PerCpu<usize> = Box::leak(Box::new(PerCpu::new(0)));
    HANDLER_COUNTERS.store(std::ptr::from_ref(counters).cast_mut(), Ordering::Release);
    rseq_testkit::install_sigusr1_handler();
    rseq_testkit::set_sigusr1_handler(on_sigusr1 as *const () as usize);
    start_watchdog(t0);

    if args.negative_control {
        let caught = negative_control(&args);
        println!(
            "negative control: {}",
            if caught {
                "violations detected (the harness can fail)"
            } else {
                "NOTHING DETECTED"
            }
        );
        std::process::exit(i32::from(!caught));
    }

    if args.in_child {
        let mode = args.modes[0];
        let ok_mode = match mode {
            RunMode::Native => status.mode == Mode::Native,
            RunMode::Fallback => status.mode == Mode::Fallback,
            RunMode::SelfRegistered => status.owner == Some(Owner::Runtime),
        };
        let mut t = if ok_mode {
            run_here(&args, t0)
        } else {
            println!("mode {}: unexpected runtime status: {status}", mode.name());
            Totals {
                failures: 1,
                ..Totals::default()
            }
        };
        t.scenarios = t.scenarios.max(u64::from(ok_mode));
        println!("{}", result_line(mode.name(), &t));
        std::process::exit(i32::from(t.violations > 0 || t.failures > 0));
    }

    println!(
        "rseq-stress: {status}; threads {} (6 x CPUs), {} ms per workload run, features: inject={} debug-checks={}{}",
        args.threads,
        args.ms,
        inject::ENABLED,
        cfg!(feature = "debug-checks"),
        args.soak_minutes
            .map(|m| format!(", soak {m} min"))
            .unwrap_or_default()
    );
    let deadline = args
        .soak_minutes
        .map(|m| t0 + Duration::from_secs_f64(m * 60.0));
    let mut all = Totals::default();
    let mut rounds = 0;
    loop {
        rounds += 1;
        for &mode in &args.modes {
            let t = if mode == RunMode::Native && status.owner == Some(Owner::Glibc) {
                run_here(&args, t0)
            } else {
                run_child(mode, &args)
            };
            if !args.in_child && mode == RunMode::Native && status.owner == Some(Owner::Glibc) {
                println!("{}", result_line(mode.name(), &t));
            }
            all.add(&t);
        }
        match deadline {
            Some(d) if Instant::now() < d => {}
            _ => break,
        }
    }
    println!(
        "TOTAL rounds {rounds} scenarios {} (skipped {}) ops {} aborts {} violations {} failures {} in {:.1} s",
        all.scenarios,
        all.skipped,
        all.ops,
        all.aborts,
        all.violations,
        all.failures,
        t0.elapsed().as_secs_f64()
    );
    std::process::exit(i32::from(all.violations > 0 || all.failures > 0));
}
