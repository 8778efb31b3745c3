//! Hand-written ppc64le critical sections implementing the xarch section ABI (see `xarch/README.md`).
//!
//! Instructions used: `bcl 20,31` + `mflr` + `addis @ha` + `addi @l` (PC-relative descriptor address,
//! PIC-safe, independent of the TOC pointer r2), `std`/`ld`/`lwz` (arm, loads, stores, commit; `lwz`
//! zero-extends the u32 `cpu_id`), `cmpld` + `bge` (unsigned index check), `mulld` + `add` (slot
//! address), `cmpldi` + `beq` (compare exit), `li`, `b` (+-32 MiB).
//! Operand quirks: in `addi rD, rA, imm` and in `d(rA)` addressing, rA = r0 means the literal 0, so
//! every register used as a base or as the source of `addi`/`addis` is `reg_nonzero`. `bcl` writes
//! the link register, so `lr` is declared clobbered. `cmpld`/`cmpldi` write cr0 (declared too).
//! Signature: `.long 0x0fe5000b` (`twui r5, 11`) right before the abort label.
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
            // Arm: rseq_cs = &descriptor (PC-relative through lr), as the last instruction before start_ip.
            "bcl 20, 31, 9f", // branch-and-link to the next instruction: lr = address of 9
            "9:",
            "mflr {t0}",
            "addis {t0}, {t0}, (2b - 9b)@ha",
            "addi {t0}, {t0}, (2b - 9b)@l",
            "std {t0}, 8({area})",
            "3:", // start_ip
            // Index check: cpu_id (offset 4, u32, zero-extended) must be < len (unsigned compare).
            "lwz {t1}, 4({area})",
            "cmpld {t1}, {len}",
            "bge 6f",
            // Slot address: base + cpu * stride.
            "mulld {t1}, {t1}, {stride}",
            "add {t1}, {t1}, {base}",
            "ld {t0}, 0({t1})",
            "addi {t0}, {t0}, 1",
            // Commit: the one store that publishes, last instruction of the section.
            "std {t0}, 0({t1})",
            "4:", // post_commit_ip
            "li {status}, 0",
            "b 8f",
            "6:", // exit: bad index
            "li {status}, 2",
            "b 8f",
            // Abort handler: signature, then the label the kernel jumps to.
            ".pushsection __rseq_failure, \"ax\"",
            // Explicit alignment: the assembler may leave this section byte-aligned (seen on
            // armv7, where an abort_ip at 2 mod 4 then runs garbage), instructions need 4 (2 on s390x).
            ".balign 4",
            ".long 0x0fe5000b",
            "5:", // abort_ip
            "li {status}, 1",
            "b 8f",
            ".popsection",
            "8:",
            area = in(reg_nonzero) area,
            base = in(reg) base,
            stride = in(reg) stride,
            len = in(reg) len,
            t0 = out(reg_nonzero) _,
            t1 = out(reg_nonzero) _,
            status = out(reg) status,
            out("lr") _,
            out("cr0") _,
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
            "lwz {t1}, 4({area})",
            "cmpld {t1}, {len}",
            "bge 6f",
            "mulld {t1}, {t1}, {stride}",
            "add {t1}, {t1}, {base}",
            "ld {t0}, 0({t1})",
            "addi {t0}, {t0}, 1",
            "std {t0}, 0({t1})",
            "4:",
            "li {status}, 0",
            "b 8f",
            "6:",
            "li {status}, 2",
            "b 8f",
            ".pushsection __rseq_failure, \"ax\"",
            ".balign 4",
            ".long 0x0fe5000b",
            "5:",
            "li {status}, 1",
            "b 8f",
            ".popsection",
            "8:",
            area = in(reg_nonzero) area,
            base = in(reg) base,
            stride = in(reg) stride,
            len = in(reg) len,
            t0 = out(reg_nonzero) _,
            t1 = out(reg_nonzero) _,
            status = out(reg) status,
            out("lr") _,
            out("cr0") _,
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
            "bcl 20, 31, 9f", // branch-and-link to the next instruction: lr = address of 9
            "9:",
            "mflr {t0}",
            "addis {t0}, {t0}, (2b - 9b)@ha",
            "addi {t0}, {t0}, (2b - 9b)@l",
            "std {t0}, 8({area})",
            "3:",
            "lwz {t1}, 4({area})",
            "cmpld {t1}, {len}",
            "bge 6f",
            "mulld {t1}, {t1}, {stride}",
            "add {t1}, {t1}, {base}",
            "ld {t0}, 0({t1})", // head
            "std {t0}, 0({node})", // speculative: node->next = head
            "std {node}, 0({t1})", // commit: head = node
            "4:",
            "li {status}, 0",
            "b 8f",
            "6:",
            "li {status}, 2",
            "b 8f",
            ".pushsection __rseq_failure, \"ax\"",
            ".balign 4",
            ".long 0x0fe5000b",
            "5:",
            "li {status}, 1",
            "b 8f",
            ".popsection",
            "8:",
            area = in(reg_nonzero) area,
            base = in(reg) base,
            stride = in(reg) stride,
            len = in(reg) len,
            node = in(reg_nonzero) node,
            t0 = out(reg_nonzero) _,
            t1 = out(reg_nonzero) _,
            status = out(reg) status,
            out("lr") _,
            out("cr0") _,
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
            "bcl 20, 31, 9f", // branch-and-link to the next instruction: lr = address of 9
            "9:",
            "mflr {t0}",
            "addis {t0}, {t0}, (2b - 9b)@ha",
            "addi {t0}, {t0}, (2b - 9b)@l",
            "std {t0}, 8({area})",
            "3:",
            "lwz {t1}, 4({area})",
            "cmpld {t1}, {len}",
            "bge 6f",
            "mulld {t1}, {t1}, {stride}",
            "add {t1}, {t1}, {base}",
            "ld {t0}, 0({t1})", // head
            "cmpldi {t0}, 0",
            "beq 7f", // compare exit: empty
            "ld {t2}, 0({t0})", // head->next
            "std {t2}, 0({t1})", // commit: head = head->next
            "4:",
            "std {t0}, 0({out})",
            "li {status}, 0",
            "b 8f",
            "6:",
            "li {status}, 2",
            "b 8f",
            "7:", // exit: empty
            "li {status}, 3",
            "b 8f",
            ".pushsection __rseq_failure, \"ax\"",
            ".balign 4",
            ".long 0x0fe5000b",
            "5:",
            "li {status}, 1",
            "b 8f",
            ".popsection",
            "8:",
            area = in(reg_nonzero) area,
            base = in(reg) base,
            stride = in(reg) stride,
            len = in(reg) len,
            out = in(reg_nonzero) out,
            t0 = out(reg_nonzero) _,
            t1 = out(reg_nonzero) _,
            t2 = out(reg_nonzero) _,
            status = out(reg) status,
            out("lr") _,
            out("cr0") _,
            options(nostack),
        );
    }
    status
}
