# rseq sequence `narrow` for s390x (index: cpu_id)
# inputs (in(reg_addr), never modified):
#   area         the thread's rseq area
#   base0        `cells`: address of slot 0
#   stride0      `cells`: slot stride
#   len0         `cells`: slot count
#   p_k          parameter `k`
# outputs (out(reg_addr)):
#   status       0 committed, 1 aborted
#                2 index out of range for `cells`
#                3 `if v < -3 { return w; }`
#   s0           scratch; after the block: the index read
#   s1           scratch; after the block: `v`
#   s2           scratch; after the block: `w`
# registers: 9 (limit 13), options(nostack)
    larl {s0}, 3f                                   # arm: rseq_cs = &descriptor
    stg {s0}, 8({area})
2:                                                  # start
    llgf {s0}, 4({area})                            # read cpu_id
    clgr {s0}, {len0}                               # let c = cells.current()
    jhe 20f
    msgr {s0}, {stride0}
    agr {s0}, {base0}
    lgb {s1}, 0({s0})                               # let v = load(c)
    lgr {s2}, {s1}                                  # let w = (v as i64) >> k
    srag {s2}, {s2}, 0({p_k})
    cgfi {s1}, -3                                   # if v < -3 { return w; }
    jl 21f
    lgr {s2}, {s1}                                  # commit store(c, v - 5)
    agfi {s2}, -5
    lgbr {s2}, {s2}
    stcy {s2}, 0({s0})
4:                                                  # post-commit
    lghi {status}, 0
6:                                                  # end
    j 7f                                            # abort (signature before the label)
    .balign 4
    .long 0xb2ff0fff
5:
    lghi {status}, 1
    j 6b
20:                                                 # exit: index out of range for `cells`
    lghi {status}, 2
    j 6b
21:                                                 # exit: if v < -3 { return w; }
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
