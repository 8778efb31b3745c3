//! Hand-written armv7 (A32, gnueabihf) critical sections implementing the xarch section ABI (see
//! `xarch/README.md`).
//!
//! Instructions used: `movw`/`movt` of `2b - (9f + 8)` + `add pc` (PC-relative descriptor address,
//! PIC-safe; in A32 state `pc` reads as the instruction's address + 8), `str`/`ldr` (arm, loads,
//! stores, commit), `cmp` + `bhs` (unsigned index check), `mla` (slot address), `cmp #0` + `beq`
//! (compare exit), `add`, `mov`, `b` (+-32 MiB, also from `__rseq_failure`).
//! 32-bit layout: descriptor fields and the pointer/exit arrays are 64-bit little-endian values
//! written as `.long low, 0` pairs. The arming store writes only the low word of `rseq_cs`; its high
//! word is 0 from the area's zero initialisation and the kernel only ever writes 0 there. `usize` is
//! 32 bits, so the per-CPU data needs no 64-bit `strd` (which would need an even/odd register pair).
//! Signature: `.word 0xe7f5def3` (`udf #24035`) right before the abort label. The Rust target
//! compiles to A32 (not Thumb), which the `pc + 8` arithmetic relies on.
#![feature(no_core)]
#![no_core]

extern crate minicore;
use minicore::arch::asm;

/// `slot[cpu] += 1` for the calling thread's CPU; returns 0 committed, 1 aborted, 2 bad index.
///
/// # Safety
/// `area` is the calling thread's registered (or emulated) `struct rseq`; `base + i * stride` is a
/// valid, writable `usize` for every `i < len`.
#[no_mangle]
pub unsafe extern "C" fn counter_inc(area: *mut u8, base: *mut u8, stride: usize, len: usize) -> usize {
    let status: usize;
    // SAFETY: the caller guarantees `area` and the slots are valid. The block only writes
    // `area->rseq_cs` (user-owned) and one slot; it neither modifies its inputs nor touches the stack.
    unsafe {
        asm!(
            // Descriptor (struct rseq_cs): version 0, flags 0, start_ip, post_commit_offset, abort_ip.
            ".pushsection __rseq_cs, \"aw\"",
            ".balign 32",
            "2:",
            ".long 0, 0",
            ".long 3f, 0, (4f - 3f), 0, 5f, 0", // 64-bit LE fields as (low, high) pairs
            ".popsection",
            // Pointer to the descriptor, for debuggers and binary translators.
            ".pushsection __rseq_cs_ptr_array, \"aw\"",
            ".balign 8",
            ".long 2b, 0",
            ".popsection",
            // Non-abort exits leaving the section early: (start_ip, exit_ip).
            ".pushsection __rseq_exit_point_array, \"aw\"",
            ".balign 8",
            ".long 3f, 0, 6f, 0",
            ".popsection",
            // Arm: rseq_cs = &descriptor, as the last instruction before start_ip.
            "movw {t0}, #:lower16:(2b - (9f + 8))",
            "movt {t0}, #:upper16:(2b - (9f + 8))",
            "9:",
            "add {t0}, pc, {t0}",
            "str {t0}, [{area}, #8]", // low word of rseq_cs
            "3:", // start_ip
            // Index check: cpu_id (offset 4, u32) must be < len (unsigned: bhs).
            "ldr {t1}, [{area}, #4]",
            "cmp {t1}, {len}",
            "bhs 6f",
            // Slot address: base + cpu * stride.
            "mla {t1}, {t1}, {stride}, {base}",
            "ldr {t0}, [{t1}]",
            "add {t0}, {t0}, #1",
            // Commit: the one store that publishes, last instruction of the section.
            "str {t0}, [{t1}]",
            "4:", // post_commit_ip
            "mov {status}, #0",
            "b 8f",
            "6:", // exit: bad index
            "mov {status}, #2",
            "b 8f",
            // Abort handler: signature, then the label the kernel jumps to.
            ".pushsection __rseq_failure, \"ax\"",
            // Explicit alignment: the assembler may leave this section byte-aligned (seen on
            // armv7, where an abort_ip at 2 mod 4 then runs garbage), instructions need 4 (2 on s390x).
            ".balign 4",
            ".word 0xe7f5def3",
            "5:", // abort_ip
            "mov {status}, #1",
            "b 8f",
            ".popsection",
            "8:",
            area = in(reg) area,
            base = in(reg) base,
            stride = in(reg) stride,
            len = in(reg) len,
            t0 = out(reg) _,
            t1 = out(reg) _,
            status = out(reg) status,
            options(nostack),
        );
    }
    status
}

/// Negative control: the exact instructions of [`counter_inc`] without the arming store and without
/// a descriptor, so preemption or a signal between load and store loses updates.
///
/// # Safety
/// As [`counter_inc`].
#[no_mangle]
pub unsafe extern "C" fn counter_inc_unarmed(
    area: *mut u8,
    base: *mut u8,
    stride: usize,
    len: usize,
) -> usize {
    let status: usize;
    // SAFETY: as in `counter_inc`; this block does not even write `area`.
    unsafe {
        asm!(
            "3:",
            "ldr {t1}, [{area}, #4]",
            "cmp {t1}, {len}",
            "bhs 6f",
            "mla {t1}, {t1}, {stride}, {base}",
            "ldr {t0}, [{t1}]",
            "add {t0}, {t0}, #1",
            "str {t0}, [{t1}]",
            "4:",
            "mov {status}, #0",
            "b 8f",
            "6:",
            "mov {status}, #2",
            "b 8f",
            ".pushsection __rseq_failure, \"ax\"",
            ".balign 4",
            ".word 0xe7f5def3",
            "5:",
            "mov {status}, #1",
            "b 8f",
            ".popsection",
            "8:",
            area = in(reg) area,
            base = in(reg) base,
            stride = in(reg) stride,
            len = in(reg) len,
            t0 = out(reg) _,
            t1 = out(reg) _,
            status = out(reg) status,
            options(nostack),
        );
    }
    status
}

/// Push `node` on this CPU's intrusive stack: `node->next = head` (speculative store into the
/// caller's node), then commit `head = node`. Returns 0 committed, 1 aborted, 2 bad index.
///
/// # Safety
/// As [`counter_inc`]; the slot holds the stack head (first word of each node is `next`), and
/// `node` is owned by the caller.
#[no_mangle]
pub unsafe extern "C" fn stack_push(
    area: *mut u8,
    base: *mut u8,
    stride: usize,
    len: usize,
    node: *mut u8,
) -> usize {
    let status: usize;
    // SAFETY: as in `counter_inc`; the speculative store goes to the caller-owned `node`.
    unsafe {
        asm!(
            ".pushsection __rseq_cs, \"aw\"",
            ".balign 32",
            "2:",
            ".long 0, 0",
            ".long 3f, 0, (4f - 3f), 0, 5f, 0", // 64-bit LE fields as (low, high) pairs
            ".popsection",
            ".pushsection __rseq_cs_ptr_array, \"aw\"",
            ".balign 8",
            ".long 2b, 0",
            ".popsection",
            ".pushsection __rseq_exit_point_array, \"aw\"",
            ".balign 8",
            ".long 3f, 0, 6f, 0",
            ".popsection",
            "movw {t0}, #:lower16:(2b - (9f + 8))",
            "movt {t0}, #:upper16:(2b - (9f + 8))",
            "9:",
            "add {t0}, pc, {t0}",
            "str {t0}, [{area}, #8]", // low word of rseq_cs
            "3:",
            "ldr {t1}, [{area}, #4]",
            "cmp {t1}, {len}",
            "bhs 6f",
            "mla {t1}, {t1}, {stride}, {base}",
            "ldr {t0}, [{t1}]", // head
            "str {t0}, [{node}]", // speculative: node->next = head
            "str {node}, [{t1}]", // commit: head = node
            "4:",
            "mov {status}, #0",
            "b 8f",
            "6:",
            "mov {status}, #2",
            "b 8f",
            ".pushsection __rseq_failure, \"ax\"",
            ".balign 4",
            ".word 0xe7f5def3",
            "5:",
            "mov {status}, #1",
            "b 8f",
            ".popsection",
            "8:",
            area = in(reg) area,
            base = in(reg) base,
            stride = in(reg) stride,
            len = in(reg) len,
            node = in(reg) node,
            t0 = out(reg) _,
            t1 = out(reg) _,
            status = out(reg) status,
            options(nostack),
        );
    }
    status
}

/// Pop this CPU's stack head into `*out`: compare exit when empty, else commit `head = head->next`.
/// Returns 0 committed (`*out` written after the commit), 1 aborted, 2 bad index, 3 empty.
///
/// # Safety
/// As [`stack_push`]; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn stack_pop(
    area: *mut u8,
    base: *mut u8,
    stride: usize,
    len: usize,
    out: *mut *mut u8,
) -> usize {
    let status: usize;
    // SAFETY: as in `counter_inc`; `*out` is written only after the commit, outside the section.
    unsafe {
        asm!(
            ".pushsection __rseq_cs, \"aw\"",
            ".balign 32",
            "2:",
            ".long 0, 0",
            ".long 3f, 0, (4f - 3f), 0, 5f, 0", // 64-bit LE fields as (low, high) pairs
            ".popsection",
            ".pushsection __rseq_cs_ptr_array, \"aw\"",
            ".balign 8",
            ".long 2b, 0",
            ".popsection",
            ".pushsection __rseq_exit_point_array, \"aw\"",
            ".balign 8",
            ".long 3f, 0, 6f, 0",
            ".long 3f, 0, 7f, 0",
            ".popsection",
            "movw {t0}, #:lower16:(2b - (9f + 8))",
            "movt {t0}, #:upper16:(2b - (9f + 8))",
            "9:",
            "add {t0}, pc, {t0}",
            "str {t0}, [{area}, #8]", // low word of rseq_cs
            "3:",
            "ldr {t1}, [{area}, #4]",
            "cmp {t1}, {len}",
            "bhs 6f",
            "mla {t1}, {t1}, {stride}, {base}",
            "ldr {t0}, [{t1}]", // head
            "cmp {t0}, #0",
            "beq 7f", // compare exit: empty
            "ldr {t2}, [{t0}]", // head->next
            "str {t2}, [{t1}]", // commit: head = head->next
            "4:",
            "str {t0}, [{out}]",
            "mov {status}, #0",
            "b 8f",
            "6:",
            "mov {status}, #2",
            "b 8f",
            "7:", // exit: empty
            "mov {status}, #3",
            "b 8f",
            ".pushsection __rseq_failure, \"ax\"",
            ".balign 4",
            ".word 0xe7f5def3",
            "5:",
            "mov {status}, #1",
            "b 8f",
            ".popsection",
            "8:",
            area = in(reg) area,
            base = in(reg) base,
            stride = in(reg) stride,
            len = in(reg) len,
            out = in(reg) out,
            t0 = out(reg) _,
            t1 = out(reg) _,
            t2 = out(reg) _,
            status = out(reg) status,
            options(nostack),
        );
    }
    status
}
