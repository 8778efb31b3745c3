//! Test support shared by the runtime's and the DSL's execution tests (not published).
//!
//! - [`stress`]: run workers on many threads while a storm thread sends them `SIGUSR1`, so the kernel
//!   aborts critical sections often (preemption alone aborts a handful per run, see the facts sheet).
//! - [`run_child`]: re-run one `#[ignore]`d test of the current test binary in a child process with extra
//!   environment (fallback mode, self-registration) and optionally a seccomp filter installed before exec.
//! - [`seccomp_rseq_errno`]: a BPF filter that makes `rseq(2)` fail with a chosen errno.
//! - [`allowed_cpus`] / [`pin_to`]: CPU affinity.
//! - [`check_expected_mode`], [`skip_unless_native`], [`skip_unless_glibc_registers`]: what a runner
//!   such as `xarch/test` expects of the process (`RSEQ_DSL_EXPECT_MODE`, `RSEQ_DSL_EXPECT_OWNER`), so
//!   that a run meant to be native cannot pass in fallback mode, and tests that need what the platform
//!   lacks (rseq under qemu-user, glibc's registration on riscv64) say so loudly instead of failing.
//! - [`command`]: a `Command` for another test binary (or this one) that honours
//!   `RSEQ_TESTKIT_RUNNER` (e.g. `qemu-aarch64-static -L /usr/aarch64-linux-gnu` under qemu-user
//!   without binfmt_misc).

/// With the `global-alloc` feature, the test binaries that link the testkit run with rseq-alloc as
/// their global allocator (libtest, the tests' threads and collections, the runtime's own
/// allocations).
#[cfg(feature = "global-alloc")]
#[global_allocator]
static GLOBAL: rseq_alloc::RseqAlloc = rseq_alloc::RseqAlloc;

/// Whether this build allocates through rseq-alloc (the `global-alloc` feature): then every thread
/// runs a sequence, and so registers, on its first allocation, before the test's own code.
pub const GLOBAL_ALLOC: bool = cfg!(feature = "global-alloc");

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

static SIGNALS_HANDLED: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_sigusr1(_: libc::c_int) {
    SIGNALS_HANDLED.fetch_add(1, Ordering::Relaxed);
}

/// Installs a counting `SIGUSR1` handler (once per process) with `SA_RESTART`.
pub fn install_sigusr1_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| set_sigusr1_handler(on_sigusr1 as *const () as usize));
}

/// Replaces the process's `SIGUSR1` handler (for tests whose handler runs sequences).
pub fn set_sigusr1_handler(handler: usize) {
    // SAFETY: a zeroed sigaction is valid; the handler is an `extern "C" fn(c_int)` address supplied by the
    // caller; sigemptyset/sigaction get valid pointers.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = handler;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGUSR1, &sa, core::ptr::null_mut()),
            0
        );
    }
}

/// Number of `SIGUSR1` the default handler has handled in this process.
pub fn signals_handled() -> u64 {
    SIGNALS_HANDLED.load(Ordering::Relaxed)
}

/// What [`stress`] observed.
#[derive(Debug, Clone, Copy, Default)]
pub struct StressReport {
    /// Signals sent by the storm thread.
    pub signals_sent: u64,
}

/// Runs `work(i)` on `threads` threads; with `storm`, a storm thread sends `SIGUSR1` to every running
/// worker every ~20 µs (`RSEQ_TESTKIT_STORM_US`: runners slow the storm down on emulated CPUs, where a
/// handler can take longer than the period) until all have finished. Workers unregister themselves (under the same lock the
/// storm thread holds while signalling) before they exit, so no signal targets a finished thread.
pub fn stress<F: Fn(usize) + Sync>(threads: usize, storm: bool, work: F) -> StressReport {
    install_sigusr1_handler();
    // Thread handles as integers: `pthread_t` is a pointer (not `Send`) on musl.
    let running: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());
    let done = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let period = Duration::from_micros(env_count("RSEQ_TESTKIT_STORM_US", 20) as u64);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|i| {
                let (running, work) = (&running, &work);
                s.spawn(move || {
                    // SAFETY: pthread_self has no preconditions.
                    let me = unsafe { libc::pthread_self() };
                    running.lock().unwrap().push((i, me as usize));
                    work(i);
                    running.lock().unwrap().retain(|&(j, _)| j != i);
                })
            })
            .collect();
        if storm {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    {
                        let running = running.lock().unwrap();
                        for &(_, t) in running.iter() {
                            // SAFETY: `t` is a live thread: it removes itself from `running` (taking this
                            // lock) before it returns.
                            if unsafe { libc::pthread_kill(t as libc::pthread_t, libc::SIGUSR1) }
                                == 0
                            {
                                sent.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    std::thread::sleep(period);
                }
            });
        }
        for w in workers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
    });
    StressReport {
        signals_sent: sent.load(Ordering::Relaxed),
    }
}

/// Periods [`storm_until_aborted`] tries at most.
pub const STORM_PERIODS: u32 = 20;

/// Runs `work(thread, deadline)` on `threads` threads under a SIGUSR1 storm ([`stress`]) for one
/// `period`; while `native` and no attempt has aborted yet, goes on for another period, up to
/// [`STORM_PERIODS`] (a single-stepped VM may enter few sections per period, and a test that needs
/// aborts must not pass without them). `work` runs until `deadline` and returns the aborts it saw.
/// Returns the aborts of all periods.
pub fn storm_until_aborted<F: Fn(usize, std::time::Instant) -> u64 + Sync>(
    threads: usize,
    period: Duration,
    native: bool,
    work: F,
) -> u64 {
    let aborts = AtomicU64::new(0);
    for _ in 0..STORM_PERIODS {
        let deadline = std::time::Instant::now() + period;
        stress(threads, true, |t| {
            aborts.fetch_add(work(t, deadline), Ordering::Relaxed);
        });
        if !native || aborts.load(Ordering::Relaxed) > 0 {
            break;
        }
    }
    aborts.into_inner()
}

/// Environment variable that marks a child process started by [`run_child`].
pub const CHILD_ENV: &str = "RSEQ_TESTKIT_CHILD";

/// Whether this process is a [`run_child`] child running `scenario`.
pub fn is_child(scenario: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == scenario)
}

/// Runs the `#[ignore]`d test `test` of the current test binary in a child process, with
/// `RSEQ_TESTKIT_CHILD=<test>` and `env`, after running `pre_exec` in the child between fork and exec.
/// Panics (failing the calling test) unless the child passed exactly that one test. Returns its output.
pub fn run_child(
    test: &str,
    env: &[(&str, &str)],
    pre_exec: Option<Box<dyn FnMut() -> io::Result<()> + Send + Sync>>,
) -> Output {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = command(exe);
    cmd.args([
        test,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, test)
    .env_remove(EXPECT_MODE_ENV)
    .env_remove(EXPECT_OWNER_ENV)
    .env_remove("RSEQ_DSL_FALLBACK")
    .env_remove("GLIBC_TUNABLES");
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(f) = pre_exec {
        // SAFETY: the closures passed here only make async-signal-safe syscalls (prctl) on data prepared
        // before the fork.
        unsafe { cmd.pre_exec(f) };
    }
    let out = cmd.output().expect("spawn the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child `{test}` failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    println!("child `{test}`:\n{stdout}");
    out
}

#[repr(C)]
struct SockFilter {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

/// `BPF_LD | BPF_W | BPF_ABS` (0x00 | 0x00 | 0x20).
const BPF_LD_W_ABS: u16 = 0x20;
/// `BPF_JMP | BPF_JEQ | BPF_K`.
const BPF_JMP_JEQ_K: u16 = 0x15;
const BPF_RET_K: u16 = 0x06;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_MODE_FILTER: libc::c_ulong = 2;
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;
/// `EM_ARM | __AUDIT_ARCH_LE`.
#[cfg(target_arch = "arm")]
const AUDIT_ARCH: u32 = 0x4000_0028;
/// `EM_RISCV | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`.
#[cfg(target_arch = "riscv64")]
const AUDIT_ARCH: u32 = 0xC000_00F3;
/// `EM_PPC64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE` (little-endian only: this crate's ppc64 target).
#[cfg(target_arch = "powerpc64")]
const AUDIT_ARCH: u32 = 0xC000_0015;
/// `EM_S390 | __AUDIT_ARCH_64BIT` (big-endian).
#[cfg(target_arch = "s390x")]
const AUDIT_ARCH: u32 = 0x8000_0016;
/// `EM_LOONGARCH | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`.
#[cfg(target_arch = "loongarch64")]
const AUDIT_ARCH: u32 = 0xC000_0102;

/// A `pre_exec` hook that installs a seccomp filter making `rseq(2)` return `errno` (everything else is
/// allowed), after `PR_SET_NO_NEW_PRIVS`. The filter survives exec, so glibc's own registration in the new
/// image fails too.
pub fn seccomp_rseq_errno(errno: i32) -> Box<dyn FnMut() -> io::Result<()> + Send + Sync> {
    let filter: Box<[SockFilter; 6]> = Box::new([
        SockFilter {
            code: BPF_LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 4,
        }, // seccomp_data.arch
        SockFilter {
            code: BPF_JMP_JEQ_K,
            jt: 0,
            jf: 3,
            k: AUDIT_ARCH,
        },
        SockFilter {
            code: BPF_LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0,
        }, // seccomp_data.nr
        SockFilter {
            code: BPF_JMP_JEQ_K,
            jt: 0,
            jf: 1,
            k: libc::SYS_rseq as u32,
        },
        SockFilter {
            code: BPF_RET_K,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ERRNO | (errno as u32 & 0xffff),
        },
        SockFilter {
            code: BPF_RET_K,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ALLOW,
        },
    ]);
    let filter_addr = Box::into_raw(filter) as usize;
    Box::new(move || {
        let prog = SockFprog {
            len: 6,
            filter: filter_addr as *const SockFilter,
        };
        // SAFETY: prctl with integer arguments, then with a pointer to a valid sock_fprog whose filter array
        // is leaked (lives forever); both are plain syscalls, safe between fork and exec.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    SECCOMP_MODE_FILTER,
                    &prog as *const SockFprog,
                ) != 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    })
}

/// The CPUs the calling thread may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is an empty set; sched_getaffinity writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = core::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &mut set),
            0
        );
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Restricts the calling thread to `cpus` (the kernel migrates it before returning).
pub fn pin_to(cpus: &[usize]) {
    // SAFETY: as in `allowed_cpus`; CPU_SET is given indices below CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = core::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        assert_eq!(
            libc::sched_setaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &set),
            0
        );
    }
}

/// `sched_getcpu()`.
pub fn sched_getcpu() -> usize {
    // SAFETY: no preconditions.
    let c = unsafe { libc::sched_getcpu() };
    usize::try_from(c).expect("sched_getcpu")
}

/// Environment variable naming a command prefix for re-executed binaries (whitespace-separated words),
/// e.g. `qemu-aarch64-static -L /usr/aarch64-linux-gnu` when the tests run under qemu-user and the
/// host has no binfmt_misc handler for the target.
pub const RUNNER_ENV: &str = "RSEQ_TESTKIT_RUNNER";

/// A `Command` running `exe`, through the `RSEQ_TESTKIT_RUNNER` prefix when that is set. Use it for
/// every re-exec of a test binary (or of another binary of the build).
pub fn command(exe: impl AsRef<std::ffi::OsStr>) -> Command {
    let runner = std::env::var(RUNNER_ENV).unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(first) => {
            let mut cmd = Command::new(first);
            cmd.args(words).arg(exe);
            cmd
        }
        None => Command::new(exe),
    }
}

/// What the runner expects: `native` (a real kernel with rseq) or `fallback` (e.g. qemu-user, where
/// `rseq(2)` is ENOSYS). Unset in a plain `cargo test`: nothing is asserted, nothing is skipped.
pub const EXPECT_MODE_ENV: &str = "RSEQ_DSL_EXPECT_MODE";
/// Who the runner expects to register threads in native mode: `glibc` or `runtime` (glibc's
/// registration turned off with `GLIBC_TUNABLES=glibc.pthread.rseq=0`, or a glibc that does not
/// register on this architecture, such as 2.36 on riscv64).
pub const EXPECT_OWNER_ENV: &str = "RSEQ_DSL_EXPECT_OWNER";

fn expected(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

/// Asserts that the process runs in the mode the runner expects (`RSEQ_DSL_EXPECT_MODE`,
/// `RSEQ_DSL_EXPECT_OWNER`); `native` and `glibc_owner` come from the runtime's status, `status` is its
/// display. Prints `RSEQ-TESTKIT-MODE <status>` either way, so a runner sees the mode of every run.
/// Children started by [`run_child`] do not inherit the expectation.
pub fn check_expected_mode(native: bool, glibc_owner: bool, status: impl std::fmt::Display) {
    println!("RSEQ-TESTKIT-MODE {status}");
    if let Some(mode) = expected(EXPECT_MODE_ENV) {
        let want_native = match mode.as_str() {
            "native" => true,
            "fallback" => false,
            other => panic!("{EXPECT_MODE_ENV}={other}: expected `native` or `fallback`"),
        };
        assert_eq!(
            native, want_native,
            "the runner expects {mode} mode, the runtime reports: {status}"
        );
    }
    if let (true, Some(owner)) = (native, expected(EXPECT_OWNER_ENV)) {
        let want_glibc = match owner.as_str() {
            "glibc" => true,
            "runtime" => false,
            other => panic!("{EXPECT_OWNER_ENV}={other}: expected `glibc` or `runtime`"),
        };
        assert_eq!(
            glibc_owner, want_glibc,
            "the runner expects the area to be registered by {owner}, the runtime reports: {status}"
        );
    }
}

/// Prints the skip marker runners count (`RSEQ-TESTKIT-SKIP <test>: <why>`).
pub fn skip(test: &str, why: &str) {
    println!("RSEQ-TESTKIT-SKIP {test}: {why}");
}

/// For a test that needs native rseq: true (after printing the skip marker) when the runner says this
/// process runs in fallback mode, or when `RSEQ_DSL_FALLBACK` forces it (a non-empty value other
/// than `0`, as the runtime reads it). The caller returns early.
pub fn skip_unless_native(test: &str) -> bool {
    if expected(EXPECT_MODE_ENV).is_some_and(|m| m == "fallback") {
        skip(
            test,
            "needs native rseq; the runner expects fallback mode (RSEQ_DSL_EXPECT_MODE=fallback)",
        );
        return true;
    }
    if expected("RSEQ_DSL_FALLBACK").is_some_and(|v| v != "0") {
        skip(
            test,
            "needs native rseq; RSEQ_DSL_FALLBACK forces fallback mode",
        );
        return true;
    }
    false
}

/// For a test that needs glibc's own registration: true (after printing the skip marker) when the
/// runner expects fallback mode or a runtime-owned area.
pub fn skip_unless_glibc_registers(test: &str) -> bool {
    if skip_unless_native(test) {
        return true;
    }
    let runtime = expected(EXPECT_OWNER_ENV).is_some_and(|o| o == "runtime");
    if runtime {
        skip(
            test,
            "needs glibc's rseq registration; the runner expects none (RSEQ_DSL_EXPECT_OWNER=runtime)",
        );
    }
    runtime
}

/// Whether the runner expects fallback mode (`RSEQ_DSL_EXPECT_MODE=fallback`).
pub fn expect_fallback() -> bool {
    expected(EXPECT_MODE_ENV).is_some_and(|m| m == "fallback")
}

/// A count from the environment variable `var`, else `default` (runners shrink loops with it, e.g.
/// `RSEQ_TEST_CHURN_THREADS` on a single-stepped kernel under qemu-system).
pub fn env_count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A duration in milliseconds from the environment variable `var`, else `default`. Runners bound
/// the stress tests' durations through these (e.g. on a single-stepped kernel under qemu-system).
pub fn env_ms(var: &str, default: u64) -> Duration {
    Duration::from_millis(
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

/// Prints `RSEQ-TESTKIT-STAT <what> aborts <n>`: the aborts one run observed (runners add them up).
pub fn report_aborts(what: &str, n: u64) {
    println!("RSEQ-TESTKIT-STAT {what} aborts {n}");
}

/// Prints `RSEQ-TESTKIT-STAT <what> lost <n>`: the updates a negative control lost (runners add them
/// up; a control that must lose and lost 0 fails its test anyway).
pub fn report_lost(what: &str, n: u64) {
    println!("RSEQ-TESTKIT-STAT {what} lost {n}");
}
