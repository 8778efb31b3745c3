# rseq sequence `buf_pop` for ppc64le (index: cpu_id)
# inputs (in(reg_nonzero), never modified):
#   area         the thread's rseq area
#   base0        `bufs`: address of slot 0
#   stride0      `bufs`: slot stride
#   len0         `bufs`: slot count
#   e0           `offset_of!(CpuBuf, len)` (evaluated before the section)
#   e2           `offset_of!(CpuBuf, slots)` (evaluated before the section)
# outputs (out(reg_nonzero)):
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
#   lr           clobbered
#   cr0          clobbered
# registers: 15 (limit 27), options(nostack)
    bcl 20, 31, 20f                                 # arm: rseq_cs = &descriptor
20:
    mflr {s0}
    addis {s0}, {s0}, (3f - 20b)@ha
    addi {s0}, {s0}, (3f - 20b)@l
    std {s0}, 8({area})
2:                                                  # start
    lwz {s0}, 4({area})                             # read cpu_id
    cmpld {s0}, {len0}                              # let b = bufs.current()
    bge 21f
    mulld {s1}, {s0}, {stride0}
    add {s1}, {s1}, {base0}
    ldx {s2}, {s1}, {e0}                            # let n = load::<usize>(b + offset_of!(CpuBuf, len))
    cmpldi {s2}, 0                                  # if n == 0 { return None; }
    beq 22f
    mr {s3}, {s2}                                   # let item = load::<usize>(b + offset_of!(CpuBuf, slots) + ((n - 1) << 3))
    addi {s3}, {s3}, -1
    sldi {s3}, {s3}, 3
    mr {s4}, {s1}
    add {s4}, {s4}, {e2}
    ldx {s3}, {s4}, {s3}
    cmpldi {s3}, 0                                  # if item == 0 { return None; }
    beq 23f
    ldx {s4}, {s1}, {e0}                            # debug check: let n = load::<usize>(b + offset_of!(CpuBuf, len))
    cmpldi {s4}, 0                                  # debug check: if n == 0 { return None; }
    beq 25f
    addi {s4}, {s4}, -1                             # debug check: let item = load::<usize>(b + offset_of!(CpuBuf, slots) + ((n - 1) << 3))
    sldi {s4}, {s4}, 3
    mr {s5}, {s1}
    add {s5}, {s5}, {e2}
    ldx {s4}, {s5}, {s4}
    cmpldi {s4}, 0                                  # debug check: if item == 0 { return None; }
    beq 26f
    addi {s2}, {s2}, -1                             # commit store(b + offset_of!(CpuBuf, len), n - 1)
    lwz {s4}, 4({area})                             # debug check: cpu_id unchanged
    cmpld {s4}, {s0}
    bne 24f
    stdx {s2}, {s1}, {e0}                           # commit store(b + offset_of!(CpuBuf, len), n - 1)
4:                                                  # post-commit
    li {status}, 0
6:                                                  # end
    b 7f                                            # abort (signature before the label)
    .long 0x0fe5000b
5:
    li {status}, 1
    b 6b
21:                                                 # exit: index out of range for `bufs`
    li {status}, 2
    b 6b
22:                                                 # exit: if n == 0 { return None; }
    li {status}, 3
    b 6b
23:                                                 # exit: if item == 0 { return None; }
    li {status}, 4
    b 6b
24:                                                 # debug check failed: cpu_id changed
    li {status}, 5
    b 6b
25:                                                 # debug check failed: if n == 0 { return None; }
    li {status}, 6
    b 6b
26:                                                 # debug check failed: if item == 0 { return None; }
    li {status}, 7
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
    .quad 21b
    .quad 2b
    .quad 22b
    .quad 2b
    .quad 23b
    .quad 2b
    .quad 24b
    .quad 2b
    .quad 25b
    .quad 2b
    .quad 26b
    .popsection
7:
