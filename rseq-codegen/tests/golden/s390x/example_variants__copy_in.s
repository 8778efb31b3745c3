# rseq sequence `copy_in` for s390x (index: cpu_id)
# inputs (in(reg_addr), never modified):
#   area         the thread's rseq area
#   base0        `bufs`: address of slot 0
#   stride0      `bufs`: slot stride
#   len0         `bufs`: slot count
#   e0           `offset_of!(Buf64, items)` (evaluated before the section)
#   p_src        parameter `src`
#   p_len        parameter `len`
#   e1           `offset_of!(Buf64, len)` (evaluated before the section)
# outputs (out(reg_addr)):
#   status       0 committed, 1 aborted
#                2 index out of range for `bufs`
#   s0           scratch; after the block: the index read
#   s1           scratch
#   s2           scratch
#   s3           scratch
#   s4           scratch
# registers: 12 (limit 13), options(nostack)
    larl {s0}, 3f                                   # arm: rseq_cs = &descriptor
    stg {s0}, 8({area})
2:                                                  # start
    llgf {s0}, 4({area})                            # read cpu_id
    clgr {s0}, {len0}                               # let b = bufs.current()
    jhe 20f
    msgr {s0}, {stride0}
    agr {s0}, {base0}
    lgr {s2}, {p_src}                               # memcpy(b + offset_of!(Buf64, items), src, len)
    lay {s3}, {e0}({s0})
    lgr {s4}, {p_len}
21:
    clgfi {s4}, 8
    jl 22f
    lg {s1}, 0({s2})
    stg {s1}, 0({s3})
    aghi {s2}, 8
    aghi {s3}, 8
    aghi {s4}, -8
    j 21b
22:
    tmll {s4}, 4
    jz 23f
    llgf {s1}, 0({s2})
    sty {s1}, 0({s3})
    aghi {s2}, 4
    aghi {s3}, 4
23:
    tmll {s4}, 2
    jz 24f
    llgh {s1}, 0({s2})
    sthy {s1}, 0({s3})
    aghi {s2}, 2
    aghi {s3}, 2
24:
    tmll {s4}, 1
    jz 25f
    llgc {s1}, 0({s2})
    stcy {s1}, 0({s3})
25:
    stg {p_len}, {e1}+0({s0})                       # commit store(b + offset_of!(Buf64, len), len)
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
    .popsection
7:
