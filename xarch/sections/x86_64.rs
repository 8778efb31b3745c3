//! Hand-written x86_64 critical sections implementing the xarch section ABI (see `xarch/README.md`).
//!
//! Instructions used: `lea` (RIP-relative descriptor address), `mov` (arm, loads, stores, commit),
//! `cmp`/`jae` (index check), `imul`/`add` (slot address), `test`/`jz` (compare exit), `jmp`.
//! Signature: `0f b9 3d` + `.long 0x53053053` before the abort label, which decodes as
//! `ud1 0x53053053(%rip), %edi`, so falling into it traps instead of running on.
//! Intel syntax (the `asm!` default): labels made only of 0s and 1s would read as binary literals,
//! so every label here is in 2..=9.
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
            // Arm: rseq_cs = &descriptor. It is the last instruction before start_ip, so a signal
            // between arming and the section cannot slip a handler's descriptor in between.
            "lea {t0}, [rip + 2b]",
            "mov qword ptr [{area} + 8], {t0}",
            "3:", // start_ip
            // Index check: cpu_id (offset 4, u32, zero-extended) must be < len.
            "mov {t1:e}, dword ptr [{area} + 4]",
            "cmp {t1}, {len}",
            "jae 6f",
            // Slot address: base + cpu * stride.
            "imul {t1}, {stride}",
            "add {t1}, {base}",
            "mov {t0}, qword ptr [{t1}]",
            "add {t0}, 1",
            // Commit: the one store that publishes, last instruction of the section.
            "mov qword ptr [{t1}], {t0}",
            "4:", // post_commit_ip
            "xor {status:e}, {status:e}",
            "jmp 8f",
            "6:", // exit: bad index
            "mov {status:e}, 2",
            "jmp 8f",
            // Abort handler: signature, then the label the kernel jumps to.
            ".pushsection __rseq_failure, \"ax\"",
            ".byte 0x0f, 0xb9, 0x3d",
            ".long 0x53053053",
            "5:", // abort_ip
            "mov {status:e}, 1",
            "jmp 8f",
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
            "mov {t1:e}, dword ptr [{area} + 4]",
            "cmp {t1}, {len}",
            "jae 6f",
            "imul {t1}, {stride}",
            "add {t1}, {base}",
            "mov {t0}, qword ptr [{t1}]",
            "add {t0}, 1",
            "mov qword ptr [{t1}], {t0}",
            "4:",
            "xor {status:e}, {status:e}",
            "jmp 8f",
            "6:",
            "mov {status:e}, 2",
            "jmp 8f",
            ".pushsection __rseq_failure, \"ax\"",
            ".byte 0x0f, 0xb9, 0x3d",
            ".long 0x53053053",
            "5:",
            "mov {status:e}, 1",
            "jmp 8f",
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
/// As [`counter_inc`]; the slot holds the stack head (`*mut Node`, first word of each node is
/// `next`), and `node` is owned by the caller.
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
            "lea {t0}, [rip + 2b]",
            "mov qword ptr [{area} + 8], {t0}",
            "3:",
            "mov {t1:e}, dword ptr [{area} + 4]",
            "cmp {t1}, {len}",
            "jae 6f",
            "imul {t1}, {stride}",
            "add {t1}, {base}",
            "mov {t0}, qword ptr [{t1}]", // head
            "mov qword ptr [{node}], {t0}", // speculative: node->next = head
            "mov qword ptr [{t1}], {node}", // commit: head = node
            "4:",
            "xor {status:e}, {status:e}",
            "jmp 8f",
            "6:",
            "mov {status:e}, 2",
            "jmp 8f",
            ".pushsection __rseq_failure, \"ax\"",
            ".byte 0x0f, 0xb9, 0x3d",
            ".long 0x53053053",
            "5:",
            "mov {status:e}, 1",
            "jmp 8f",
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
            "lea {t0}, [rip + 2b]",
            "mov qword ptr [{area} + 8], {t0}",
            "3:",
            "mov {t1:e}, dword ptr [{area} + 4]",
            "cmp {t1}, {len}",
            "jae 6f",
            "imul {t1}, {stride}",
            "add {t1}, {base}",
            "mov {t0}, qword ptr [{t1}]", // head
            "test {t0}, {t0}",
            "jz 7f", // compare exit: empty
            "mov {t2}, qword ptr [{t0}]", // head->next
            "mov qword ptr [{t1}], {t2}", // commit: head = head->next
            "4:",
            "mov qword ptr [{out}], {t0}",
            "xor {status:e}, {status:e}",
            "jmp 8f",
            "6:",
            "mov {status:e}, 2",
            "jmp 8f",
            "7:", // exit: empty
            "mov {status:e}, 3",
            "jmp 8f",
            ".pushsection __rseq_failure, \"ax\"",
            ".byte 0x0f, 0xb9, 0x3d",
            ".long 0x53053053",
            "5:",
            "mov {status:e}, 1",
            "jmp 8f",
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
