//! Hand-written aarch64 critical sections implementing the xarch section ABI (see `xarch/README.md`).
//!
//! Instructions used: `adrp` + `add :lo12:` (PC-relative descriptor address, +-4 GiB, PIC-safe),
//! `str`/`ldr` (arm, loads, stores, commit), `cmp` + `b.hs` (unsigned index check), `madd` (slot
//! address `cpu * stride + base`), `cbz` (compare exit), `mov`, `b` (+-128 MiB: enough from the
//! `__rseq_failure` section back into `.text`).
//! Signature: `.inst 0xd428bc00` (`brk #0x45e0`) right before the abort label, so falling into it
//! traps. `cpu_id` is loaded with a 32-bit `ldr w`, which zero-extends into the x register.
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
            ".quad 3f, (4f - 3f), 5f",
            ".popsection",
            // Pointer to the descriptor, for debuggers and binary translators.
            ".pushsection __rseq_cs_ptr_array, \"aw\"",
            ".balign 8",
            ".quad 2b",
            ".popsection",
            // Non-abort exits leaving the section early: (start_ip, exit_ip).
            ".pushsection __rseq_exit_point_array, \"aw\"",
            ".balign 8",
            ".quad 3f, 6f",
            ".popsection",
            // Arm: rseq_cs = &descriptor, as the last instruction before start_ip.
            "adrp {t0}, 2b",
            "add {t0}, {t0}, :lo12:2b",
            "str {t0}, [{area}, #8]",
            "3:", // start_ip
            // Index check: cpu_id (offset 4, u32) must be < len (unsigned: b.hs).
            "ldr {t1:w}, [{area}, #4]",
            "cmp {t1}, {len}",
            "b.hs 6f",
            "madd {t1}, {t1}, {stride}, {base}", // slot address
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
            ".inst 0xd428bc00",
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
            "ldr {t1:w}, [{area}, #4]",
            "cmp {t1}, {len}",
            "b.hs 6f",
            "madd {t1}, {t1}, {stride}, {base}",
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
            ".inst 0xd428bc00",
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
            ".quad 3f, (4f - 3f), 5f",
            ".popsection",
            ".pushsection __rseq_cs_ptr_array, \"aw\"",
            ".balign 8",
            ".quad 2b",
            ".popsection",
            ".pushsection __rseq_exit_point_array, \"aw\"",
            ".balign 8",
            ".quad 3f, 6f",
            ".popsection",
            "adrp {t0}, 2b",
            "add {t0}, {t0}, :lo12:2b",
            "str {t0}, [{area}, #8]",
            "3:",
            "ldr {t1:w}, [{area}, #4]",
            "cmp {t1}, {len}",
            "b.hs 6f",
            "madd {t1}, {t1}, {stride}, {base}",
            "ldr {t0}, [{t1}]",   // head
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
            ".inst 0xd428bc00",
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
            ".quad 3f, (4f - 3f), 5f",
            ".popsection",
            ".pushsection __rseq_cs_ptr_array, \"aw\"",
            ".balign 8",
            ".quad 2b",
            ".popsection",
            ".pushsection __rseq_exit_point_array, \"aw\"",
            ".balign 8",
            ".quad 3f, 6f",
            ".quad 3f, 7f",
            ".popsection",
            "adrp {t0}, 2b",
            "add {t0}, {t0}, :lo12:2b",
            "str {t0}, [{area}, #8]",
            "3:",
            "ldr {t1:w}, [{area}, #4]",
            "cmp {t1}, {len}",
            "b.hs 6f",
            "madd {t1}, {t1}, {stride}, {base}",
            "ldr {t0}, [{t1}]", // head
            "cbz {t0}, 7f",     // compare exit: empty
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
            ".inst 0xd428bc00",
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
