# rseq sequence `buf_pop` for s390x (index: cpu_id)
# inputs (in(reg_addr), never modified):
#   area         the thread's rseq area
#   base0        `bufs`: address of slot 0
#   stride0      `bufs`: slot stride
#   len0         `bufs`: slot count
#   e0           `offset_of!(CpuBuf, len)` (evaluated before the section)
#   e2           `offset_of!(CpuBuf, slots)` (evaluated before the section)
# outputs (out(reg_addr)):
#   status       0 committed, 1 aborted
#                2 index out of range for `bufs`
#                3 `if n == 0 { return None; }`
#                4 `if item == 0 { return None; }`
#   s0           scratch; after the block: the index read
#   s1           scratch
#   s2           scratch; after the block: `item`
#   s3           scratch
# registers: 9 (limit 13), options(nostack)
    larl {s0}, 3f                                   # arm: rseq_cs = &descriptor
    stg {s0}, 8({area})
2:                                                  # start
    llgf {s0}, 4({area})                            # read cpu_id
    clgr {s0}, {len0}                               # let b = bufs.current()
    jhe 20f
    msgr {s0}, {stride0}
    agr {s0}, {base0}
    lg {s1}, {e0}+0({s0})                           # let n = load::<usize>(b + offset_of!(CpuBuf, len))
    clgfi {s1}, 0                                   # if n == 0 { return None; }
    je 21f
    lgr {s2}, {s1}                                  # let item = load::<usize>(b + offset_of!(CpuBuf, slots) + ((n - 1) << 3))
    agfi {s2}, -1
    sllg {s2}, {s2}, 3
    lgr {s3}, {s0}
    agfi {s3}, {e2}
    lg {s2}, 0({s2}, {s3})
    clgfi {s2}, 0                                   # if item == 0 { return None; }
    je 22f
    agfi {s1}, -1                                   # commit store(b + offset_of!(CpuBuf, len), n - 1)
    stg {s1}, {e0}+0({s0})
4:                                                  # post-commit
    lghi {status}, 0
6:                                                  # end
    j 7f                                            # abort (signature before the label)
    .balign 4
    .long 0xb2ff0fff
5:
    lghi {status}, 1
    j 6b
20:                                                 # exit: index out of range for `bufs`
    lghi {status}, 2
    j 6b
21:                                                 # exit: if n == 0 { return None; }
    lghi {status}, 3
    j 6b
22:                                                 # exit: if item == 0 { return None; }
    lghi {status}, 4
    j 6b
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
    .popsection
7:
