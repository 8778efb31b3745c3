# rseq sequence `pop64` for s390x (index: cpu_id)
# inputs (in(reg_addr), never modified):
#   area         the thread's rseq area
#   base0        `bufs`: address of slot 0
#   stride0      `bufs`: slot stride
#   len0         `bufs`: slot count
#   e0           `offset_of!(Buf64, len)` (evaluated before the section)
#   p_dst        parameter `dst`
#   e2           `offset_of!(Buf64, items)` (evaluated before the section)
# outputs (out(reg_addr)):
#   status       0 committed, 1 aborted
#                2 index out of range for `bufs`
#                3 `if n == 0 { return false; }`
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
    msgr {s0}, {stride0}
    agr {s0}, {base0}
    lg {s1}, {e0}+0({s0})                           # let n = load::<usize>(b + offset_of!(Buf64, len))
    clgfi {s1}, 0                                   # if n == 0 { return false; }
    je 21f
    lgr {s2}, {s1}                                  # memcpy(dst, b + offset_of!(Buf64, items) + ((n - 1) << 6), 64)
    agfi {s2}, -1
    sllg {s2}, {s2}, 6
    lgr {s3}, {s0}
    agfi {s3}, {e2}
    lg {s4}, 0({s2}, {s3})
    stg {s4}, 0({p_dst})
    lg {s4}, 8({s2}, {s3})
    stg {s4}, 8({p_dst})
    lg {s4}, 16({s2}, {s3})
    stg {s4}, 16({p_dst})
    lg {s4}, 24({s2}, {s3})
    stg {s4}, 24({p_dst})
    lg {s4}, 32({s2}, {s3})
    stg {s4}, 32({p_dst})
    lg {s4}, 40({s2}, {s3})
    stg {s4}, 40({p_dst})
    lg {s4}, 48({s2}, {s3})
    stg {s4}, 48({p_dst})
    lg {s4}, 56({s2}, {s3})
    stg {s4}, 56({p_dst})
    agfi {s1}, -1                                   # commit store_release(b + offset_of!(Buf64, len), n - 1)
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
21:                                                 # exit: if n == 0 { return false; }
    lghi {status}, 3
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
    .popsection
7:
