# rseq sequence `buf_push` for x86_64 (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   base0        `bufs`: address of slot 0
#   stride0      `bufs`: slot stride
#   len0         `bufs`: slot count
#   e0           `offset_of!(CpuBuf, len)` (evaluated before the section)
#   e1           `CAP` (evaluated before the section)
#   p_item       parameter `item`
#   e2           `offset_of!(CpuBuf, slots)` (evaluated before the section)
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `bufs`
#                3 `if n >= CAP { return false; }`
#   s0           scratch; after the block: the index read
#   s1           scratch
#   s2           scratch
#   s3           scratch
# registers: 11 (limit 13), options(nostack)
    lea {s0}, [rip + 3f]                            # arm: rseq_cs = &descriptor
    mov qword ptr [{area} + 8], {s0}
2:                                                  # start
    mov {s0:e}, dword ptr [{area} + 4]              # read cpu_id
    cmp {s0}, {len0}                                # let b = bufs.current()
    jae 20f
    imul {s0}, {stride0}
    add {s0}, {base0}
    mov {s1}, qword ptr [{s0} + {e0}]               # let n = load::<usize>(b + offset_of!(CpuBuf, len))
    cmp {s1}, {e1}                                  # if n >= CAP { return false; }
    jae 21f
    mov {s2}, {s1}                                  # store(b + offset_of!(CpuBuf, slots) + (n << 3), item)
    shl {s2}, 3
    mov {s3}, {s0}
    add {s3}, {e2}
    mov qword ptr [{s3} + {s2}], {p_item}
    add {s1}, 1                                     # commit store(b + offset_of!(CpuBuf, len), n + 1)
    mov qword ptr [{s0} + {e0}], {s1}
4:                                                  # post-commit
    xor {status:e}, {status:e}
6:                                                  # end
    .pushsection __rseq_failure, "ax"               # abort (signature before the label)
    .byte 0x0f, 0xb9, 0x3d
    .long 0x53053053
5:
    mov {status:e}, 1
    jmp 6b
20:                                                 # exit: index out of range for `bufs`
    mov {status:e}, 2
    jmp 6b
21:                                                 # exit: if n >= CAP { return false; }
    mov {status:e}, 3
    jmp 6b
    .popsection                                     # descriptor
    .pushsection __rseq_cs, "aw"
    .balign 32
3:
    .long 0, 0
    .quad 2b
    .quad 4b - 2b
    .quad 5b
    .popsection
    .pushsection __rseq_cs_ptr_array, "awR"
    .balign 8
    .quad 3b
    .popsection
    .pushsection __rseq_exit_point_array, "awR"
    .balign 8
    .quad 2b
    .quad 20b
    .quad 2b
    .quad 21b
    .popsection
