//! A minimal hand-written x86_64 critical section (per-CPU counter increment) that proves registration
//! works end to end independently of the DSL, plus its unarmed twin for the negative control.
#![allow(dead_code)]

use rseq_runtime::__private::{enter, Entry};
use rseq_runtime::{Error, PerCpu};

/// Outcome of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Committed,
    Aborted,
    BadIndex,
}

/// One attempt at `counters[cpu] += 1` inside a critical section (armed) or the same instructions with
/// no descriptor stored (unarmed: the kernel never aborts it, so concurrent threads on one CPU lose
/// updates).
#[cfg(target_arch = "x86_64")]
pub fn increment_once(counters: &PerCpu<u64>, armed: bool) -> Result<Attempt, Error> {
    let Entry::Native(area) = enter()? else {
        panic!("the hand-written section needs native mode");
    };
    let raw = counters.__raw();
    let status: u64;
    if armed {
        // SAFETY: `area` is this thread's registered rseq area; `raw` describes live storage of u64 slots
        // (base + idx * stride, idx bounds-checked against len inside the section). Inputs are never
        // modified; scratch registers are `out` (not lateout) because an abort restarts nothing inside the
        // block; the abort stub is preceded by the registered x86 signature (ud1 encoding).
        unsafe {
            core::arch::asm!(
                "lea {tmp}, [rip + 3f]",
                "mov qword ptr [{area} + 8], {tmp}",
                "2:",
                "mov {idx:e}, dword ptr [{area} + 4]",
                "cmp {idx}, {len}",
                "jae 5f",
                "imul {idx}, {stride}",
                "mov {tmp}, qword ptr [{base} + {idx}]",
                "add {tmp}, 1",
                "mov qword ptr [{base} + {idx}], {tmp}",
                "4:",
                "xor {st:e}, {st:e}",
                "jmp 6f",
                "5:",
                "mov {st:e}, 2",
                "jmp 6f",
                ".pushsection __rseq_failure, \"ax\"",
                ".byte 0x0f, 0xb9, 0x3d",
                ".long 0x53053053",
                "7:",
                "mov {st:e}, 1",
                "jmp 6f",
                ".popsection",
                ".pushsection __rseq_cs, \"aw\"",
                ".balign 32",
                "3:",
                ".long 0, 0",
                ".quad 2b, 4b - 2b, 7b",
                ".popsection",
                ".pushsection __rseq_cs_ptr_array, \"awR\"",
                ".quad 3b",
                ".popsection",
                "6:",
                area = in(reg) area,
                base = in(reg) raw.base,
                stride = in(reg) raw.stride,
                len = in(reg) raw.len,
                tmp = out(reg) _,
                idx = out(reg) _,
                st = out(reg) status,
                options(nostack),
            );
        }
    } else {
        // SAFETY: as above, minus the descriptor: nothing protects this read-modify-write, which is the
        // point of the negative control; memory accesses stay inside the storage.
        unsafe {
            core::arch::asm!(
                "mov {idx:e}, dword ptr [{area} + 4]",
                "cmp {idx}, {len}",
                "jae 5f",
                "imul {idx}, {stride}",
                "mov {tmp}, qword ptr [{base} + {idx}]",
                "add {tmp}, 1",
                "mov qword ptr [{base} + {idx}], {tmp}",
                "xor {st:e}, {st:e}",
                "jmp 6f",
                "5:",
                "mov {st:e}, 2",
                "6:",
                area = in(reg) area,
                base = in(reg) raw.base,
                stride = in(reg) raw.stride,
                len = in(reg) raw.len,
                tmp = out(reg) _,
                idx = out(reg) _,
                st = out(reg) status,
                options(nostack),
            );
        }
    }
    Ok(match status {
        0 => Attempt::Committed,
        1 => Attempt::Aborted,
        _ => Attempt::BadIndex,
    })
}

/// Increments `n` times, retrying aborts; returns the number of aborts.
#[cfg(target_arch = "x86_64")]
pub fn increment_n(counters: &PerCpu<u64>, n: u64, armed: bool) -> u64 {
    let mut aborts = 0;
    let mut done = 0;
    while done < n {
        match increment_once(counters, armed).expect("native mode") {
            Attempt::Committed => done += 1,
            Attempt::Aborted => aborts += 1,
            Attempt::BadIndex => panic!("cpu_id out of range"),
        }
    }
    aborts
}

/// Off x86_64 (no hand-written section here): registers the thread (native mode required), then
/// increments this CPU's slot `n` times with an atomic add. Registration and id reads are what the
/// callers test; the sections themselves are covered by the DSL's tests on every architecture.
/// Returns 0 (no aborts).
#[cfg(not(target_arch = "x86_64"))]
pub fn increment_n(counters: &PerCpu<u64>, n: u64, _armed: bool) -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    let Entry::Native(_) = enter().expect("enter") else {
        panic!("increment_n needs native mode");
    };
    for _ in 0..n {
        let cpu = rseq_runtime::cpu_id().expect("cpu_id");
        // SAFETY: an in-bounds, aligned u64 slot of live storage, accessed only atomically here.
        let slot = unsafe { AtomicU64::from_ptr(counters.slot_ptr(cpu).expect("slot")) };
        slot.fetch_add(1, Ordering::Relaxed);
    }
    0
}
