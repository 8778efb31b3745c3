//! Hand-written loongarch64 critical sections implementing the xarch section ABI (see
//! `xarch/README.md`).
//!
//! Instructions used: `la.pcrel` (pcalau12i + addi.d: PC-relative descriptor address, PIC-safe),
//! `st.d`/`ld.d`/`ld.wu` (arm, loads, stores, commit; `ld.wu` zero-extends the u32 `cpu_id`), `bgeu`
//! (unsigned index check), `mul.d` + `add.d` (slot address), `beqz` (compare exit), `addi.d`, `ori`
//! from `$zero` (status), `b` (+-128 MiB, also from `__rseq_failure`).
//! Signature: `.word 0x002a0010` (`break 0x10`) right before the abort label.
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
            "la.pcrel {t0}, 2b",
            "st.d {t0}, {area}, 8",
            "3:", // start_ip
            // Index check: cpu_id (offset 4, u32, zero-extended) must be < len (unsigned).
            "ld.wu {t1}, {area}, 4",
            "bgeu {t1}, {len}, 6f",
            // Slot address: base + cpu * stride.
            "mul.d {t1}, {t1}, {stride}",
            "add.d {t1}, {t1}, {base}",
            "ld.d {t0}, {t1}, 0",
            "addi.d {t0}, {t0}, 1",
            // Commit: the one store that publishes, last instruction of the section.
            "st.d {t0}, {t1}, 0",
            "4:", // post_commit_ip
            "ori {status}, $zero, 0",
            "b 8f",
            "6:", // exit: bad index
            "ori {status}, $zero, 2",
            "b 8f",
            // Abort handler: signature, then the label the kernel jumps to.
            ".pushsection __rseq_failure, \"ax\"",
            // Explicit alignment: the assembler may leave this section byte-aligned (seen on
            // armv7, where an abort_ip at 2 mod 4 then runs garbage), instructions need 4 (2 on s390x).
            ".balign 4",
            ".word 0x002a0010",
            "5:", // abort_ip
            "ori {status}, $zero, 1",
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
            "ld.wu {t1}, {area}, 4",
            "bgeu {t1}, {len}, 6f",
            "mul.d {t1}, {t1}, {stride}",
            "add.d {t1}, {t1}, {base}",
            "ld.d {t0}, {t1}, 0",
            "addi.d {t0}, {t0}, 1",
            "st.d {t0}, {t1}, 0",
            "4:",
            "ori {status}, $zero, 0",
            "b 8f",
            "6:",
            "ori {status}, $zero, 2",
            "b 8f",
            ".pushsection __rseq_failure, \"ax\"",
            ".balign 4",
            ".word 0x002a0010",
            "5:",
            "ori {status}, $zero, 1",
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
            "la.pcrel {t0}, 2b",
            "st.d {t0}, {area}, 8",
            "3:",
            "ld.wu {t1}, {area}, 4",
            "bgeu {t1}, {len}, 6f",
            "mul.d {t1}, {t1}, {stride}",
            "add.d {t1}, {t1}, {base}",
            "ld.d {t0}, {t1}, 0", // head
            "st.d {t0}, {node}, 0", // speculative: node->next = head
            "st.d {node}, {t1}, 0", // commit: head = node
            "4:",
            "ori {status}, $zero, 0",
            "b 8f",
            "6:",
            "ori {status}, $zero, 2",
            "b 8f",
            ".pushsection __rseq_failure, \"ax\"",
            ".balign 4",
            ".word 0x002a0010",
            "5:",
            "ori {status}, $zero, 1",
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
            "la.pcrel {t0}, 2b",
            "st.d {t0}, {area}, 8",
            "3:",
            "ld.wu {t1}, {area}, 4",
            "bgeu {t1}, {len}, 6f",
            "mul.d {t1}, {t1}, {stride}",
            "add.d {t1}, {t1}, {base}",
            "ld.d {t0}, {t1}, 0", // head
            "beqz {t0}, 7f", // compare exit: empty
            "ld.d {t2}, {t0}, 0", // head->next
            "st.d {t2}, {t1}, 0", // commit: head = head->next
            "4:",
            "st.d {t0}, {out}, 0",
            "ori {status}, $zero, 0",
            "b 8f",
            "6:",
            "ori {status}, $zero, 2",
            "b 8f",
            "7:", // exit: empty
            "ori {status}, $zero, 3",
            "b 8f",
            ".pushsection __rseq_failure, \"ax\"",
            ".balign 4",
            ".word 0x002a0010",
            "5:",
            "ori {status}, $zero, 1",
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
