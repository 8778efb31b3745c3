//! Registration in every mode the runtime supports: adopted from glibc, self-registered (glibc's
//! registration turned off with `GLIBC_TUNABLES`), unavailable (seccomp filters returning ENOSYS / EPERM,
//! installed before exec so glibc fails too), forced fallback; thread churn, fork, ids, membarrier.

mod common;

use rseq_runtime::__private::{enter, Entry};
use rseq_runtime::{
    cpu_id, mm_cid, node_id, possible_cpus, status, this_thread, this_thread_if_registered, Error,
    Mode, Owner, PerCpu, Unavailable,
};
use rseq_testkit::{
    allowed_cpus, is_child, pin_to, run_child, sched_getcpu, seccomp_rseq_errno,
    skip_unless_glibc_registers, skip_unless_native,
};

/// The thread pointer glibc's `__rseq_offset` is relative to.
fn thread_pointer() -> usize {
    let tp: usize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads the TCB self pointer at %fs:0 (x86_64 Linux).
    unsafe {
        core::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) tp, options(nostack, readonly))
    };
    #[cfg(target_arch = "aarch64")]
    // SAFETY: reads the EL0 thread-pointer register.
    unsafe {
        core::arch::asm!("mrs {}, tpidr_el0", out(reg) tp, options(nomem, nostack))
    };
    #[cfg(target_arch = "arm")]
    // SAFETY: reads TPIDRURO, the user read-only thread ID register (glibc's thread pointer).
    unsafe {
        core::arch::asm!("mrc p15, 0, {}, c13, c0, 3", out(reg) tp, options(nomem, nostack))
    };
    #[cfg(target_arch = "riscv64")]
    // SAFETY: copies the `tp` register.
    unsafe {
        core::arch::asm!("mv {}, tp", out(reg) tp, options(nomem, nostack))
    };
    #[cfg(target_arch = "loongarch64")]
    // SAFETY: copies the `$tp` (`$r2`) register.
    unsafe {
        core::arch::asm!("move {}, $tp", out(reg) tp, options(nomem, nostack))
    };
    #[cfg(target_arch = "powerpc64")]
    // SAFETY: copies r13, the thread pointer of the 64-bit PowerPC ELF ABIs.
    unsafe {
        core::arch::asm!("mr {}, 13", out(reg) tp, options(nomem, nostack))
    };
    #[cfg(target_arch = "s390x")]
    // SAFETY: the thread pointer is split across access registers a0 (high half) and a1 (low half);
    // `ear` replaces the low 32 bits of the destination.
    unsafe {
        core::arch::asm!(
            "ear {0}, %a0",
            "sllg {0}, {0}, 32",
            "ear {0}, %a1",
            out(reg) tp,
            options(nomem, nostack)
        )
    };
    tp
}

/// The mode a runner expects (`RSEQ_DSL_EXPECT_MODE`, `RSEQ_DSL_EXPECT_OWNER`; nothing is asserted
/// when unset): a run meant to be native cannot pass in fallback mode.
#[test]
fn expected_mode() {
    let s = status();
    rseq_testkit::check_expected_mode(s.mode == Mode::Native, s.owner == Some(Owner::Glibc), s);
}

fn glibc_rseq_offset_and_size() -> (isize, u32) {
    extern "C" {
        static __rseq_offset: isize;
        static __rseq_size: u32;
    }
    // SAFETY: glibc 2.35+ exports both as read-only data (this machine has 2.36).
    unsafe { (__rseq_offset, __rseq_size) }
}

fn area() -> usize {
    match enter().expect("enter") {
        Entry::Native(a) => a as usize,
        Entry::Fallback => panic!("expected native mode, got {}", status()),
    }
}

/// On a fresh thread (pinning changes the calling thread's affinity): pinned to each allowed CPU in turn,
/// `cpu_id()` equals `sched_getcpu()`.
fn cpu_id_follows_pinning() {
    std::thread::spawn(|| {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty());
        for &c in &cpus {
            pin_to(&[c]);
            assert_eq!(sched_getcpu(), c);
            assert_eq!(cpu_id().unwrap(), c);
        }
    })
    .join()
    .unwrap();
}

fn ids_are_sane() {
    let s = status();
    if s.mm_cid_usable {
        assert!(mm_cid().unwrap() < possible_cpus());
    } else {
        assert_eq!(mm_cid(), Err(Error::MmCidUnavailable));
    }
    if s.node_id_usable {
        node_id().unwrap();
    }
}

#[test]
fn adopts_glibc_registration() {
    if skip_unless_glibc_registers("adopts_glibc_registration") {
        return;
    }
    let (offset, size) = glibc_rseq_offset_and_size();
    assert!(size > 0, "glibc registered the thread");
    let s = status();
    println!("{s}");
    assert_eq!(
        (s.mode, s.owner, s.reason),
        (Mode::Native, Some(Owner::Glibc), None)
    );
    assert_eq!(area(), thread_pointer().wrapping_add_signed(offset));
    std::thread::spawn(move || assert_eq!(area(), thread_pointer().wrapping_add_signed(offset)))
        .join()
        .unwrap();
    cpu_id_follows_pinning();
    ids_are_sane();
}

#[test]
fn self_registers_without_glibc() {
    if skip_unless_native("self_registers_without_glibc") {
        return;
    }
    run_child(
        "child_self_registers",
        &[("GLIBC_TUNABLES", "glibc.pthread.rseq=0")],
        None,
    );
}

#[test]
#[ignore = "child process of self_registers_without_glibc"]
fn child_self_registers() {
    assert!(is_child("child_self_registers"));
    let (offset, size) = glibc_rseq_offset_and_size();
    assert_eq!(size, 0, "glibc did not register");
    let s = status();
    println!("{s}");
    assert_eq!(
        (s.mode, s.owner, s.reason),
        (Mode::Native, Some(Owner::Runtime), None)
    );
    let mine = area();
    assert_ne!(mine, thread_pointer().wrapping_add_signed(offset));
    assert_eq!(mine % 32, 0);
    // Every thread gets its own area.
    let other = std::thread::spawn(area).join().unwrap();
    assert_ne!(other, mine);
    cpu_id_follows_pinning();
    ids_are_sane();
    thread_churn();
    // A thread that cannot register while the process runs natively gets a typed error, never an
    // unprotected section: a seccomp filter on that thread alone makes its rseq(2) fail with EPERM.
    // With rseq-alloc as the global allocator the thread registers on its first allocation, before
    // the filter: nothing to refuse then.
    if rseq_testkit::GLOBAL_ALLOC {
        rseq_testkit::skip(
            "self_registers_without_glibc (refusal part)",
            "rseq-alloc registers every thread on its first allocation",
        );
        return;
    }
    let refused = std::thread::spawn(|| {
        (seccomp_rseq_errno(libc::EPERM))().expect("install the filter on this thread");
        enter().map(|_| ())
    })
    .join()
    .unwrap();
    assert_eq!(refused, Err(Error::Unavailable(Unavailable::Forbidden)));
    assert_eq!(
        status().mode,
        Mode::Native,
        "one thread's failure does not change the process mode"
    );
}

fn unavailable_child(reason: Unavailable) {
    let s = status();
    println!("{s}");
    assert_eq!(
        (s.mode, s.owner, s.reason),
        (Mode::Fallback, None, Some(reason))
    );
    assert!(!s.mm_cid_usable && !s.node_id_usable);
    assert_eq!(enter(), Ok(Entry::Fallback));
    assert!(std::thread::spawn(|| enter() == Ok(Entry::Fallback))
        .join()
        .unwrap());
    assert_eq!(mm_cid(), Err(Error::MmCidUnavailable));
    // No token without a registered area, even after sequences ran.
    assert_eq!(this_thread_if_registered(|_| ()), None);
    // cpu_id() still answers, from sched_getcpu().
    cpu_id_follows_pinning();
}

/// `this_thread_if_registered` never registers: `None` on a thread that has run nothing, then a
/// native token once `this_thread` has looked the area up (natively), `None` again in fallback.
#[test]
fn token_if_registered_does_not_register() {
    std::thread::spawn(|| {
        // With rseq-alloc as the global allocator, the thread's start-up allocations have
        // registered it already.
        if !rseq_testkit::GLOBAL_ALLOC {
            assert_eq!(this_thread_if_registered(|_| ()), None);
            assert_eq!(
                this_thread_if_registered(|_| ()),
                None,
                "the first call registered"
            );
        }
        let native = this_thread(|t| t.is_native()).unwrap();
        assert_eq!(native, status().mode == Mode::Native);
        let again = this_thread_if_registered(|t| t.is_native());
        assert_eq!(again, native.then_some(true));
    })
    .join()
    .unwrap();
}

#[test]
fn seccomp_enosys_means_fallback() {
    // qemu-user does not emulate seccomp filters (prctl(PR_SET_SECCOMP) fails with EINVAL).
    if skip_unless_native("seccomp_enosys_means_fallback") {
        return;
    }
    run_child(
        "child_seccomp_enosys",
        &[],
        Some(seccomp_rseq_errno(libc::ENOSYS)),
    );
}

#[test]
#[ignore = "child process of seccomp_enosys_means_fallback"]
fn child_seccomp_enosys() {
    assert!(is_child("child_seccomp_enosys"));
    unavailable_child(Unavailable::NoKernelSupport);
}

#[test]
fn seccomp_eperm_means_fallback() {
    // qemu-user does not emulate seccomp filters (prctl(PR_SET_SECCOMP) fails with EINVAL).
    if skip_unless_native("seccomp_eperm_means_fallback") {
        return;
    }
    run_child(
        "child_seccomp_eperm",
        &[],
        Some(seccomp_rseq_errno(libc::EPERM)),
    );
}

#[test]
#[ignore = "child process of seccomp_eperm_means_fallback"]
fn child_seccomp_eperm() {
    assert!(is_child("child_seccomp_eperm"));
    unavailable_child(Unavailable::Forbidden);
}

#[test]
fn env_var_forces_fallback() {
    run_child("child_forced_fallback", &[("RSEQ_DSL_FALLBACK", "1")], None);
}

#[test]
#[ignore = "child process of env_var_forces_fallback"]
fn child_forced_fallback() {
    assert!(is_child("child_forced_fallback"));
    unavailable_child(Unavailable::DisabledByUser);
}

/// 10,000 short-lived threads (`RSEQ_TEST_CHURN_THREADS`, rounded up to hundreds: runners lower it on
/// emulated kernels), each registering (or adopting) and running the hand-written section.
fn thread_churn() {
    let counters = PerCpu::<u64>::new(0);
    let threads = rseq_testkit::env_count("RSEQ_TEST_CHURN_THREADS", 10_000).div_ceil(100) * 100;
    const PER_THREAD: u64 = 10;
    std::thread::scope(|s| {
        for chunk in 0..threads / 100 {
            let handles: Vec<_> = (0..100)
                .map(|_| {
                    s.spawn(|| {
                        assert!(cpu_id().unwrap() < possible_cpus());
                        common::increment_n(&counters, PER_THREAD, true);
                    })
                })
                .collect();
            for h in handles {
                h.join()
                    .unwrap_or_else(|_| panic!("thread in chunk {chunk} failed"));
            }
        }
    });
    assert_eq!(counters.iter().sum::<u64>(), threads as u64 * PER_THREAD);
}

#[test]
fn thread_churn_adopted() {
    if skip_unless_native("thread_churn_adopted") {
        return;
    }
    thread_churn();
}

#[test]
fn forked_child_can_use_runtime() {
    if skip_unless_native("forked_child_can_use_runtime") {
        return;
    }
    run_child("child_fork", &[], None);
}

#[test]
#[ignore = "child process of forked_child_can_use_runtime (forks from a single-test process)"]
fn child_fork() {
    assert!(is_child("child_fork"));
    let counters = PerCpu::<u64>::new(0);
    common::increment_n(&counters, 1000, true);
    let before = area();
    // SAFETY: fork; the child only runs the already-initialised runtime (no allocation, no locks) and
    // `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let ok = area() == before && cpu_id().is_ok();
        common::increment_n(&counters, 1000, true);
        let sum: u64 = counters.iter().sum();
        // SAFETY: _exit is async-signal-safe and ends the child without running the test harness.
        unsafe { libc::_exit(if ok && sum == 2000 { 0 } else { 1 }) };
    }
    let mut wstatus = 0;
    // SAFETY: waits for the child forked above.
    assert_eq!(unsafe { libc::waitpid(pid, &mut wstatus, 0) }, pid);
    assert!(
        libc::WIFEXITED(wstatus) && libc::WEXITSTATUS(wstatus) == 0,
        "child status {wstatus}"
    );
    // The parent's storage is untouched by the child's increments.
    assert_eq!(counters.iter().sum::<u64>(), 1000);
}

#[test]
fn membarrier_fences() {
    use rseq_runtime::membarrier;
    if !membarrier::supported() {
        println!("membarrier rseq commands not supported: skipping");
        return;
    }
    membarrier::register_rseq().unwrap();
    membarrier::rseq_fence(None).unwrap();
    membarrier::rseq_fence(Some(allowed_cpus()[0])).unwrap();
    // The kernel treats a CPU that is offline or does not exist as having nothing to restart.
    membarrier::rseq_fence(Some(1 << 20)).unwrap();
}
