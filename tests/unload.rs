//! Unload safety (rules in `docs/UNLOADING.md`): a `cdylib` with its own sequences
//! and its own copy of the runtime (`tests/cdylib-fixture`) is `dlopen`ed, run, cleared with its
//! exported `rseq_dsl::clear_rseq_cs()`, `dlclose`d (and checked gone from `/proc/self/maps`); then
//! signals, yields and this program's own sequences keep running. The kernel dereferences `rseq_cs`
//! at every preemption and signal delivery while it is non-zero, so a stale pointer into the
//! unmapped library would kill the process with SIGSEGV: the child-process negative control shows
//! exactly that when the clear is skipped.
//!
//! x86_64 only: the test builds its fixture with cargo at run time (no cargo inside the other
//! architectures' VMs or qemu-user) and reads the thread pointer with x86_64 asm; `xarch/test`
//! lists it as not built, by design, for the other targets.
#![cfg(target_arch = "x86_64")]

use std::ffi::{c_void, CString};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use rseq_dsl::{rseq, Mode, Owner, PerCpu};

rseq! {
    fn main_add(c: &PerCpu<usize>, n: usize) {
        let slot = c.current();
        let v = load(slot);
        commit store(slot, v + n);
    }
}

/// Builds the fixture with the cargo that runs this test, into this test's target directory.
fn fixture_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf(); // <target>/<profile>
    let target_dir = profile_dir.parent().unwrap();
    let release = profile_dir.file_name().unwrap() == "release";
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--quiet",
        "-p",
        "rseq-cdylib-fixture",
        "--manifest-path",
    ])
    .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
    .env("CARGO_TARGET_DIR", target_dir);
    if release {
        cmd.arg("--release");
    }
    let out = cmd.output().expect("run cargo");
    assert!(
        out.status.success(),
        "building the fixture failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let so = profile_dir.join("librseq_cdylib_fixture.so");
    assert!(so.exists(), "{}", so.display());
    so
}

fn mapped(path: &std::path::Path) -> bool {
    let canon = std::fs::canonicalize(path).unwrap();
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .any(|l| l.ends_with(canon.to_str().unwrap()))
}

/// The address range(s) of `path` in this process.
fn ranges(path: &std::path::Path) -> Vec<(u64, u64)> {
    let canon = std::fs::canonicalize(path).unwrap();
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| l.ends_with(canon.to_str().unwrap()))
        .map(|l| {
            let r = l.split(' ').next().unwrap();
            let (a, b) = r.split_once('-').unwrap();
            (
                u64::from_str_radix(a, 16).unwrap(),
                u64::from_str_radix(b, 16).unwrap(),
            )
        })
        .collect()
}

/// The calling thread's `rseq_cs` field, read from glibc's area (glibc owns the registration here;
/// the main program's and the library's runtime both adopted that one area).
fn rseq_cs() -> u64 {
    // SAFETY: `dlsym` with RTLD_DEFAULT and a NUL-terminated name; glibc >= 2.35 exports
    // `ptrdiff_t __rseq_offset` (checked non-null). `%fs:0` is the thread pointer on x86_64, and the
    // area at thread pointer + offset is this thread's registered `struct rseq`, whose `rseq_cs`
    // (offset 8) is read with a volatile load because the kernel clears it.
    unsafe {
        let off = libc::dlsym(libc::RTLD_DEFAULT, c"__rseq_offset".as_ptr()).cast::<isize>();
        assert!(!off.is_null());
        let tp: *mut u8;
        std::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) tp, options(nostack, readonly));
        std::ptr::read_volatile(tp.offset(*off).add(8).cast::<u64>())
    }
}

struct Lib {
    handle: *mut c_void,
    add_many: extern "C" fn(u64) -> u64,
    native: extern "C" fn() -> bool,
    clear: extern "C" fn(),
}

fn open(path: &std::path::Path) -> Lib {
    let c = CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; the library's initialisers are Rust's (none run code that
    // could conflict with this process).
    let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!handle.is_null(), "dlopen {}", path.display());
    let sym = |name: &std::ffi::CStr| {
        // SAFETY: `handle` is a live handle and `name` NUL-terminated.
        let p = unsafe { libc::dlsym(handle, name.as_ptr()) };
        assert!(!p.is_null(), "{name:?}");
        p
    };
    // SAFETY: the fixture exports these symbols with exactly these `extern "C"` signatures
    // (tests/cdylib-fixture/src/lib.rs); the pointers are not used after `dlclose`.
    unsafe {
        Lib {
            add_many: std::mem::transmute::<*mut c_void, extern "C" fn(u64) -> u64>(sym(
                c"fixture_add_many",
            )),
            native: std::mem::transmute::<*mut c_void, extern "C" fn() -> bool>(sym(
                c"fixture_native",
            )),
            clear: std::mem::transmute::<*mut c_void, extern "C" fn()>(sym(
                c"fixture_clear_rseq_cs",
            )),
            handle,
        }
    }
}

/// Runs the library's sequences until `rseq_cs` is seen pointing into the library right after
/// (the kernel clears it lazily, at a preemption or signal), and returns whether it was seen.
fn run_lib_and_see_its_descriptor(lib: &Lib, so: &std::path::Path) -> bool {
    let r = ranges(so);
    assert_eq!((lib.add_many)(10_000), 10_000);
    (0..1000).any(|_| {
        assert_eq!((lib.add_many)(1), 1);
        let cs = rseq_cs();
        r.iter().any(|&(a, b)| (a..b).contains(&cs))
    })
}

/// Signals to this thread and yields until `enough` signals were handled or `max` passed: each
/// delivery and preemption makes the kernel look at `rseq_cs`.
fn signals_and_yields(enough: u64, max: Duration) -> u64 {
    rseq_testkit::install_sigusr1_handler();
    let before = rseq_testkit::signals_handled();
    let t = Instant::now();
    // Until `enough` signals were handled (a loaded machine delivers fewer per millisecond), or `max`.
    while t.elapsed() < max && rseq_testkit::signals_handled() - before < enough {
        // SAFETY: signalling the calling thread, whose SIGUSR1 handler is installed.
        unsafe {
            libc::pthread_kill(libc::pthread_self(), libc::SIGUSR1);
            libc::sched_yield();
        }
    }
    rseq_testkit::signals_handled() - before
}

fn native_glibc() -> bool {
    let s = rseq_dsl::status();
    if s.mode != Mode::Native || s.owner != Some(Owner::Glibc) {
        println!("skipped: needs native mode with glibc's registration ({s})");
        return false;
    }
    true
}

#[test]
fn dlclose_after_clear_rseq_cs_is_safe() {
    if !native_glibc() {
        return;
    }
    let so = fixture_path();
    let lib = open(&so);
    assert!(
        (lib.native)(),
        "the library's runtime copy must run natively"
    );
    assert!(mapped(&so));
    assert!(
        run_lib_and_see_its_descriptor(&lib, &so),
        "rseq_cs never pointed into the library after its sequences"
    );
    (lib.clear)();
    assert_eq!(
        rseq_cs(),
        0,
        "the library's clear_rseq_cs cleared this thread's field"
    );
    let Lib { handle, .. } = lib; // the fn pointers go out of scope here
                                  // SAFETY: no pointer into the library is used after this.
    assert_eq!(unsafe { libc::dlclose(handle) }, 0);
    assert!(!mapped(&so), "dlclose did not unmap the library");

    // The kernel now sees rseq_cs == 0 at every signal and preemption ...
    let handled = signals_and_yields(1001, Duration::from_secs(10));
    assert!(handled > 1000, "{handled} signals");
    // ... and this program's own sequences keep running, under a signal storm on 4 threads.
    let c = PerCpu::new(0usize);
    rseq_testkit::stress(4, true, |_| {
        for _ in 0..50_000 {
            main_add(&c, 1);
        }
    });
    assert_eq!(c.iter().sum::<usize>(), 200_000);
    println!("unloaded after clear: {handled} signals survived, 200000 sequences after");
}

/// Negative control: the same without the clear kills the process with SIGSEGV (the kernel reads
/// the unmapped descriptor at the next signal). Runs in a child process.
#[test]
fn dlclose_without_clear_is_killed_by_sigsegv() {
    if !native_glibc() {
        return;
    }
    let so = fixture_path();
    // A preemption during `dlclose` before the unmap lets the kernel clear rseq_cs while the
    // descriptor is still mapped: the child then reports the run inconclusive (exit code 3) and is
    // run again.
    let mut inconclusive = 0;
    let out = loop {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "unload_without_clear_child",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env("UNLOAD_CHILD", &so)
            .output()
            .unwrap();
        if out.status.code() == Some(3) && inconclusive < 100 {
            inconclusive += 1;
            continue;
        }
        break out;
    };
    println!(
        "negative control: {inconclusive} inconclusive runs, then: {}",
        String::from_utf8_lossy(&out.stderr)
            .trim()
            .replace('\n', " | ")
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSEGV),
        "child: {}\n{}\n{stderr}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    // It died during or after the unload, from a kernel-raised SIGSEGV (SI_KERNEL, which the rseq
    // descriptor check raises), not from an ordinary bad access (SEGV_MAPERR / SEGV_ACCERR).
    assert!(
        stderr.contains("unloading with a stale rseq_cs"),
        "{stderr}"
    );
    // The handler line is missing when the kernel cannot deliver to the handler either (it checks
    // the stale rseq_cs again) and kills the process directly; when present it must say SI_KERNEL.
    if let Some(i) = stderr.find("SIGSEGV si_code=") {
        assert_eq!(&stderr[i..i + 20], "SIGSEGV si_code=0x80", "{stderr}");
    }
    assert!(!stderr.contains("survived"), "{stderr}");
}

/// Writes `msg` to stderr with one `write` (async-signal-safe, unbuffered).
fn raw_stderr(msg: &[u8]) {
    // SAFETY: a valid buffer of `msg.len()` bytes.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
}

/// Reports the SIGSEGV's `si_code` (`SI_KERNEL` = 0x80 for the kernel's rseq fault, `SEGV_MAPERR` = 1
/// for an ordinary bad access), then dies of it.
extern "C" fn on_sigsegv(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo; write, signal and raise are async-signal-safe.
    unsafe {
        let code = (*info).si_code;
        let mut buf = *b"SIGSEGV si_code=0x00\n";
        let hex = b"0123456789abcdef";
        buf[18] = hex[((code >> 4) & 15) as usize];
        buf[19] = hex[(code & 15) as usize];
        raw_stderr(&buf);
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

#[test]
#[ignore = "child process of dlclose_without_clear_is_killed_by_sigsegv"]
fn unload_without_clear_child() {
    let Some(so) = std::env::var_os("UNLOAD_CHILD").map(PathBuf::from) else {
        return;
    };
    // SAFETY: a zeroed sigaction with an SA_SIGINFO handler of the right signature.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigsegv as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGSEGV, &sa, std::ptr::null_mut()), 0);
    }
    rseq_testkit::install_sigusr1_handler();
    let lib = open(&so);
    let r = ranges(&so);
    // Leave the library's descriptor in rseq_cs (retry until it is seen there), then unload.
    loop {
        assert_eq!((lib.add_many)(1), 1);
        let cs = rseq_cs();
        if r.iter().any(|&(a, b)| (a..b).contains(&cs)) {
            break;
        }
    }
    raw_stderr(b"unloading with a stale rseq_cs\n");
    // SAFETY: deliberately wrong for the kernel (the point of this control); no Rust pointer into
    // the library is used afterwards. The process may already die inside `dlclose`, at the first
    // return to user space after the unmap at which the kernel checks rseq_cs.
    unsafe { libc::dlclose(lib.handle) };
    if rseq_cs() == 0 {
        raw_stderr(b"inconclusive: rseq_cs was cleared during dlclose\n");
        std::process::exit(3);
    }
    raw_stderr(b"unloaded with a stale rseq_cs\n");
    signals_and_yields(u64::MAX, Duration::from_millis(500));
    raw_stderr(b"survived\n");
}
