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
#                5 debug check failed: cpu_id changed
#                6 debug check failed: `if n == 0 { return None; }`
#                7 debug check failed: `if item == 0 { return None; }`
#   s0           scratch; after the block: the index read
#   s1           scratch
#   s2           scratch
#   s3           scratch; after the block: `item`
#   s4           scratch
#   s5           scratch
# registers: 11 (limit 13), options(nostack)
    larl {s0}, 3f                                   # arm: rseq_cs = &descriptor
    stg {s0}, 8({area})
2:                                                  # start
    llgf {s0}, 4({area})                            # read cpu_id
    clgr {s0}, {len0}                               # let b = bufs.current()
    jhe 20f
    lgr {s1}, {s0}
    msgr {s1}, {stride0}
    agr {s1}, {base0}
    lg {s2}, {e0}+0({s1})                           # let n = load::<usize>(b + offset_of!(CpuBuf, len))
    clgfi {s2}, 0                                   # if n == 0 { return None; }
    je 21f
    lgr {s3}, {s2}                                  # let item = load::<usize>(b + offset_of!(CpuBuf, slots) + ((n - 1) << 3))
    agfi {s3}, -1
    sllg {s3}, {s3}, 3
    lgr {s4}, {s1}
    agfi {s4}, {e2}
    lg {s3}, 0({s3}, {s4})
    clgfi {s3}, 0                                   # if item == 0 { return None; }
    je 22f
    lg {s4}, {e0}+0({s1})                           # debug check: let n = load::<usize>(b + offset_of!(CpuBuf, len))
    clgfi {s4}, 0                                   # debug check: if n == 0 { return None; }
    je 24f
    agfi {s4}, -1                                   # debug check: let item = load::<usize>(b + offset_of!(CpuBuf, slots) + ((n - 1) << 3))
    sllg {s4}, {s4}, 3
    lgr {s5}, {s1}
    agfi {s5}, {e2}
    lg {s4}, 0({s4}, {s5})
    clgfi {s4}, 0                                   # debug check: if item == 0 { return None; }
    je 25f
    agfi {s2}, -1                                   # commit store(b + offset_of!(CpuBuf, len), n - 1)
    llgf {s4}, 4({area})                            # debug check: cpu_id unchanged
    clgr {s4}, {s0}
    jne 23f
    stg {s2}, {e0}+0({s1})                          # commit store(b + offset_of!(CpuBuf, len), n - 1)
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
23:                                                 # debug check failed: cpu_id changed
    lghi {status}, 5
    j 6b
24:                                                 # debug check failed: if n == 0 { return None; }
    lghi {status}, 6
    j 6b
25:                                                 # debug check failed: if item == 0 { return None; }
    lghi {status}, 7
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
    .quad 2b
    .quad 23b
    .quad 2b
    .quad 24b
    .quad 2b
    .quad 25b
    .popsection
7:
