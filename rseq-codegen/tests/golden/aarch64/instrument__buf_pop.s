# rseq sequence `buf_pop` for aarch64 (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   base0        `bufs`: address of slot 0
#   stride0      `bufs`: slot stride
#   len0         `bufs`: slot count
#   e0           `offset_of!(CpuBuf, len)` (evaluated before the section)
#   e2           `offset_of!(CpuBuf, slots)` (evaluated before the section)
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `bufs`
#                3 `if n == 0 { return None; }`
#                4 `if item == 0 { return None; }`
#                5 debug check failed: cpu_id changed
#                6 debug check failed: `if n == 0 { return None; }`
#                7 debug check failed: `if item == 0 { return None; }`
#   s0           scratch; after the block: the index read
#   s1           scratch
#   s2           scratch
#   s3           scratch; after the block: `item`
#   s4           scratch
#   s5           scratch
# registers: 13 (limit 28), options(nostack)
    adrp {s0}, 3f                                   # arm: rseq_cs = &descriptor
    add {s0}, {s0}, :lo12:3f
    str {s0}, [{area}, #8]
2:                                                  # start
    ldr {s0:w}, [{area}, #4]                        # read cpu_id
    cmp {s0}, {len0}                                # let b = bufs.current()
    b.hs 20f
    madd {s1}, {s0}, {stride0}, {base0}
    ldr {s2}, [{s1}, {e0}]                          # let n = load::<usize>(b + offset_of!(CpuBuf, len))
    cbz {s2}, 21f                                   # if n == 0 { return None; }
    mov {s3}, {s2}                                  # let item = load::<usize>(b + offset_of!(CpuBuf, slots) + ((n - 1) << 3))
    sub {s3}, {s3}, #1
    lsl {s3}, {s3}, #3
    mov {s4}, {s1}
    add {s4}, {s4}, {e2}
    ldr {s3}, [{s4}, {s3}]
    cbz {s3}, 22f                                   # if item == 0 { return None; }
    ldr {s4}, [{s1}, {e0}]                          # debug check: let n = load::<usize>(b + offset_of!(CpuBuf, len))
    cbz {s4}, 24f                                   # debug check: if n == 0 { return None; }
    sub {s4}, {s4}, #1                              # debug check: let item = load::<usize>(b + offset_of!(CpuBuf, slots) + ((n - 1) << 3))
    lsl {s4}, {s4}, #3
    mov {s5}, {s1}
    add {s5}, {s5}, {e2}
    ldr {s4}, [{s5}, {s4}]
    cbz {s4}, 25f                                   # debug check: if item == 0 { return None; }
    sub {s2}, {s2}, #1                              # commit store(b + offset_of!(CpuBuf, len), n - 1)
    ldr {s4:w}, [{area}, #4]                        # debug check: cpu_id unchanged
    cmp {s4}, {s0}
    b.ne 23f
    str {s2}, [{s1}, {e0}]                          # commit store(b + offset_of!(CpuBuf, len), n - 1)
4:                                                  # post-commit
    mov {status}, #0
6:                                                  # end
    b 7f                                            # abort (signature before the label)
    .inst 0xd428bc00
5:
    mov {status}, #1
    b 6b
20:                                                 # exit: index out of range for `bufs`
    mov {status}, #2
    b 6b
21:                                                 # exit: if n == 0 { return None; }
    mov {status}, #3
    b 6b
22:                                                 # exit: if item == 0 { return None; }
    mov {status}, #4
    b 6b
23:                                                 # debug check failed: cpu_id changed
    mov {status}, #5
    b 6b
24:                                                 # debug check failed: if n == 0 { return None; }
    mov {status}, #6
    b 6b
25:                                                 # debug check failed: if item == 0 { return None; }
    mov {status}, #7
    b 6b
    .pushsection __rseq_cs, "aw"                    # descriptor
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
    .quad 2b
    .quad 22b
    .quad 2b
    .quad 23b
    .quad 2b
    .quad 24b
    .quad 2b
    .quad 25b
    .popsection
7:
