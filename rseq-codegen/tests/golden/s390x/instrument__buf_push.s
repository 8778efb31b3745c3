# rseq sequence `buf_push` for s390x (index: cpu_id)
# inputs (in(reg_addr), never modified):
#   area         the thread's rseq area
#   base0        `bufs`: address of slot 0
#   stride0      `bufs`: slot stride
#   len0         `bufs`: slot count
#   e0           `offset_of!(CpuBuf, len)` (evaluated before the section)
#   p_item       parameter `item`
#   e2           `offset_of!(CpuBuf, slots)` (evaluated before the section)
# outputs (out(reg_addr)):
#   status       0 committed, 1 aborted
#                2 index out of range for `bufs`
#                3 `if n >= 64 { return false; }`
#                4 debug check failed: cpu_id changed
#                5 debug check failed: `if n >= 64 { return false; }`
#   s0           scratch; after the block: the index read
#   s1           scratch
#   s2           scratch
#   s3           scratch
#   s4           scratch
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
    clgfi {s2}, 64                                  # if n >= 64 { return false; }
    jhe 21f
    lg {s3}, {e0}+0({s1})                           # debug check: let n = load::<usize>(b + offset_of!(CpuBuf, len))
    clgfi {s3}, 64                                  # debug check: if n >= 64 { return false; }
    jhe 23f
    lgr {s3}, {s2}                                  # store(b + offset_of!(CpuBuf, slots) + (n << 3), item)
    sllg {s3}, {s3}, 3
    lgr {s4}, {s1}
    agfi {s4}, {e2}
    stg {p_item}, 0({s3}, {s4})
    agfi {s2}, 1                                    # commit store(b + offset_of!(CpuBuf, len), n + 1)
    llgf {s3}, 4({area})                            # debug check: cpu_id unchanged
    clgr {s3}, {s0}
    jne 22f
    stg {s2}, {e0}+0({s1})                          # commit store(b + offset_of!(CpuBuf, len), n + 1)
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
21:                                                 # exit: if n >= 64 { return false; }
    lghi {status}, 3
    j 6b
22:                                                 # debug check failed: cpu_id changed
    lghi {status}, 4
    j 6b
23:                                                 # debug check failed: if n >= 64 { return false; }
    lghi {status}, 5
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
    .popsection
7:
