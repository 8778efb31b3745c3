//! Test support shared by the runtime's and the DSL's execution tests (not published).
//!
//! - [`stress`]: run workers on many threads while a storm thread sends them `SIGUSR1`, so the kernel
//!   aborts critical sections often (preemption alone aborts a handful per run, see the facts sheet).
//! - [`run_child`]: re-run one `#[ignore]`d test of the current test binary in a child process with extra
//!   environment (fallback mode, self-registration) and optionally a seccomp filter installed before exec.
//! - [`seccomp_rseq_errno`]: a BPF filter that makes `rseq(2)` fail with a chosen errno.
//! - [`allowed_cpus`] / [`pin_to`]: CPU affinity.

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
/// worker every ~20 µs until all have finished. Workers unregister themselves (under the same lock the
/// storm thread holds while signalling) before they exit, so no signal targets a finished thread.
pub fn stress<F: Fn(usize) + Sync>(threads: usize, storm: bool, work: F) -> StressReport {
    install_sigusr1_handler();
    let running: Mutex<Vec<(usize, libc::pthread_t)>> = Mutex::new(Vec::new());
    let done = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|i| {
                let (running, work) = (&running, &work);
                s.spawn(move || {
                    // SAFETY: pthread_self has no preconditions.
                    let me = unsafe { libc::pthread_self() };
                    running.lock().unwrap().push((i, me));
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
                            if unsafe { libc::pthread_kill(t, libc::SIGUSR1) } == 0 {
                                sent.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    std::thread::sleep(Duration::from_micros(20));
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
    let mut cmd = Command::new(exe);
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
