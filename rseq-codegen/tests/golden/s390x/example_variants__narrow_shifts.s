# rseq sequence `narrow_shifts` for s390x (index: cpu_id)
# inputs (in(reg_addr), never modified):
#   area         the thread's rseq area
#   base0        `cells`: address of slot 0
#   stride0      `cells`: slot stride
#   len0         `cells`: slot count
#   p_k          parameter `k`
#   p_h          parameter `h`
#   p_s          parameter `s`
# outputs (out(reg_addr)):
#   status       0 committed, 1 aborted
#                2 index out of range for `cells`
#                3 `if t < 0 { return t >> 3; }`
#                4 `if b == 0 { return t; }`
#   s0           scratch; after the block: the index read
#   s1           scratch; after the block: `t`
#   s2           scratch
#   s3           scratch
# registers: 12 (limit 13), options(nostack)
    larl {s0}, 3f                                   # arm: rseq_cs = &descriptor
    stg {s0}, 8({area})
2:                                                  # start
    llgf {s0}, 4({area})                            # read cpu_id
    clgr {s0}, {len0}                               # let c = cells.current()
    jhe 20f
    msgr {s0}, {stride0}
    agr {s0}, {base0}
    llgf {s1}, 0({s0})                              # let v = load(c)
    lgr {s2}, {s1}                                  # let a = (v << k) ^ 0x55
    lghi {s3}, 31
    ngr {s3}, {p_k}
    sllg {s2}, {s2}, 0({s3})
    llgfr {s2}, {s2}
    lghi {s3}, 85
    xgr {s2}, {s3}
    lghi {s3}, 31                                   # let b = (a >> k) | v
    ngr {s3}, {p_k}
    srlg {s2}, {s2}, 0({s3})
    ogr {s2}, {s1}
    lgr {s1}, {p_h}                                 # let t = (h << s) >> s
    lghi {s3}, 15
    ngr {s3}, {p_s}
    sllg {s1}, {s1}, 0({s3})
    lghr {s1}, {s1}
    lghi {s3}, 15
    ngr {s3}, {p_s}
    srag {s1}, {s1}, 0({s3})
    cgfi {s1}, 0                                    # if t < 0 { return t >> 3; }
    jl 21f
    clgfi {s2}, 0                                   # if b == 0 { return t; }
    je 22f
    lgfi {s3}, 65520                                # commit store(c, (b & 0xfff0) - 7)
    ngr {s2}, {s3}
    agfi {s2}, -7
    llgfr {s2}, {s2}
    sty {s2}, 0({s0})
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
21:                                                 # exit: if t < 0 { return t >> 3; }
    lghi {status}, 3
    j 6b
22:                                                 # exit: if b == 0 { return t; }
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
