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
#   s0           scratch; after the block: the index read
#   s1           scratch
#   s2           scratch; after the block: `item`
#   s3           scratch
#   lr           clobbered
#   cr0          clobbered
# registers: 13 (limit 27), options(nostack)
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
    mulld {s0}, {s0}, {stride0}
    add {s0}, {s0}, {base0}
    ldx {s1}, {s0}, {e0}                            # let n = load::<usize>(b + offset_of!(CpuBuf, len))
    cmpldi {s1}, 0                                  # if n == 0 { return None; }
    beq 22f
    mr {s2}, {s1}                                   # let item = load::<usize>(b + offset_of!(CpuBuf, slots) + ((n - 1) << 3))
    addi {s2}, {s2}, -1
    sldi {s2}, {s2}, 3
    mr {s3}, {s0}
    add {s3}, {s3}, {e2}
    ldx {s2}, {s3}, {s2}
    cmpldi {s2}, 0                                  # if item == 0 { return None; }
    beq 23f
    addi {s1}, {s1}, -1                             # commit store(b + offset_of!(CpuBuf, len), n - 1)
    stdx {s1}, {s0}, {e0}
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
    .popsection
7:
