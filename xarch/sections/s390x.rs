//! Hand-written s390x critical sections implementing the xarch section ABI (see `xarch/README.md`).
//!
//! Instructions used: `larl` (PC-relative descriptor address, +-4 GiB, PIC-safe), `stg`/`lg`/`llgf`
//! (arm, loads, stores, commit; `llgf` zero-extends the u32 `cpu_id`), `clgr` + `jhe` (unsigned index
//! check), `msgr` + `agr` (slot address), `ltgr` + `je` (compare exit), `aghi`, `lghi`, `j`
//! (+-64 KiB, inside the function) and `jg` (+-4 GiB, from `__rseq_failure` back into `.text`).
//! Operand quirk: in `d(b)` addressing, register 0 as base means "no base", so every register used
//! as a base is `reg_addr` (r1-r15). Big-endian: `.quad` and `.long` are stored as the kernel reads
//! them, nothing to swap.
//! Signature: `.long 0xB2FF0FFF` right before the abort label.
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
            "larl {t0}, 2b",
            "stg {t0}, 8({area})",
            "3:", // start_ip
            // Index check: cpu_id (offset 4, u32, zero-extended) must be < len (logical compare).
            "llgf {t1}, 4({area})",
            "clgr {t1}, {len}",
            "jhe 6f",
            // Slot address: base + cpu * stride.
            "msgr {t1}, {stride}",
            "agr {t1}, {base}",
            "lg {t0}, 0({t1})",
            "aghi {t0}, 1",
            // Commit: the one store that publishes, last instruction of the section.
            "stg {t0}, 0({t1})",
            "4:", // post_commit_ip
            "lghi {status}, 0",
            "j 8f",
            "6:", // exit: bad index
            "lghi {status}, 2",
            "j 8f",
            // Abort handler: signature, then the label the kernel jumps to.
            ".pushsection __rseq_failure, \"ax\"",
            // Explicit alignment: the assembler may leave this section byte-aligned (seen on
            // armv7, where an abort_ip at 2 mod 4 then runs garbage), instructions need 4 (2 on s390x).
            ".balign 4",
            ".long 0xB2FF0FFF",
            "5:", // abort_ip
            "lghi {status}, 1",
            "jg 8f",
            ".popsection",
            "8:",
            area = in(reg_addr) area,
            base = in(reg) base,
            stride = in(reg) stride,
            len = in(reg) len,
            t0 = out(reg_addr) _,
            t1 = out(reg_addr) _,
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
            "llgf {t1}, 4({area})",
            "clgr {t1}, {len}",
            "jhe 6f",
            "msgr {t1}, {stride}",
            "agr {t1}, {base}",
            "lg {t0}, 0({t1})",
            "aghi {t0}, 1",
            "stg {t0}, 0({t1})",
            "4:",
            "lghi {status}, 0",
            "j 8f",
            "6:",
            "lghi {status}, 2",
            "j 8f",
            ".pushsection __rseq_failure, \"ax\"",
            ".balign 4",
            ".long 0xB2FF0FFF",
            "5:",
            "lghi {status}, 1",
            "jg 8f",
            ".popsection",
            "8:",
            area = in(reg_addr) area,
            base = in(reg) base,
            stride = in(reg) stride,
            len = in(reg) len,
            t0 = out(reg_addr) _,
            t1 = out(reg_addr) _,
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
            "larl {t0}, 2b",
            "stg {t0}, 8({area})",
            "3:",
            "llgf {t1}, 4({area})",
            "clgr {t1}, {len}",
            "jhe 6f",
            "msgr {t1}, {stride}",
            "agr {t1}, {base}",
            "lg {t0}, 0({t1})", // head
            "stg {t0}, 0({node})", // speculative: node->next = head
            "stg {node}, 0({t1})", // commit: head = node
            "4:",
            "lghi {status}, 0",
            "j 8f",
            "6:",
            "lghi {status}, 2",
            "j 8f",
            ".pushsection __rseq_failure, \"ax\"",
            ".balign 4",
            ".long 0xB2FF0FFF",
            "5:",
            "lghi {status}, 1",
            "jg 8f",
            ".popsection",
            "8:",
            area = in(reg_addr) area,
            base = in(reg) base,
            stride = in(reg) stride,
            len = in(reg) len,
            node = in(reg_addr) node,
            t0 = out(reg_addr) _,
            t1 = out(reg_addr) _,
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
            "larl {t0}, 2b",
            "stg {t0}, 8({area})",
            "3:",
            "llgf {t1}, 4({area})",
            "clgr {t1}, {len}",
            "jhe 6f",
            "msgr {t1}, {stride}",
            "agr {t1}, {base}",
            "lg {t0}, 0({t1})", // head
            "ltgr {t0}, {t0}",
            "je 7f", // compare exit: empty
            "lg {t2}, 0({t0})", // head->next
            "stg {t2}, 0({t1})", // commit: head = head->next
            "4:",
            "stg {t0}, 0({out})",
            "lghi {status}, 0",
            "j 8f",
            "6:",
            "lghi {status}, 2",
            "j 8f",
            "7:", // exit: empty
            "lghi {status}, 3",
            "j 8f",
            ".pushsection __rseq_failure, \"ax\"",
            ".balign 4",
            ".long 0xB2FF0FFF",
            "5:",
            "lghi {status}, 1",
            "jg 8f",
            ".popsection",
            "8:",
            area = in(reg_addr) area,
            base = in(reg) base,
            stride = in(reg) stride,
            len = in(reg) len,
            out = in(reg_addr) out,
            t0 = out(reg_addr) _,
            t1 = out(reg_addr) _,
            t2 = out(reg_addr) _,
            status = out(reg) status,
            options(nostack),
        );
    }
    status
}
