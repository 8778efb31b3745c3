# rseq sequence `narrow` for ppc64le (index: cpu_id)
# inputs (in(reg_nonzero), never modified):
#   area         the thread's rseq area
#   base0        `cells`: address of slot 0
#   stride0      `cells`: slot stride
#   len0         `cells`: slot count
#   p_k          parameter `k`
# outputs (out(reg_nonzero)):
#   status       0 committed, 1 aborted
#                2 index out of range for `cells`
#                3 `if v < -3 { return w; }`
#   s0           scratch; after the block: the index read
#   s1           scratch; after the block: `v`
#   s2           scratch; after the block: `w`
#   s3           scratch
#   lr           clobbered
#   cr0          clobbered
# registers: 12 (limit 27), options(nostack)
    bcl 20, 31, 20f                                 # arm: rseq_cs = &descriptor
20:
    mflr {s0}
    addis {s0}, {s0}, (3f - 20b)@ha
    addi {s0}, {s0}, (3f - 20b)@l
    std {s0}, 8({area})
2:                                                  # start
    lwz {s0}, 4({area})                             # read cpu_id
    cmpld {s0}, {len0}                              # let c = cells.current()
    bge 21f
    mulld {s0}, {s0}, {stride0}
    add {s0}, {s0}, {base0}
    lbz {s1}, 0({s0})                               # let v = load(c)
    extsb {s1}, {s1}
    mr {s2}, {s1}                                   # let w = (v as i64) >> k
    clrldi {s3}, {p_k}, 58
    srad {s2}, {s2}, {s3}
    cmpdi {s1}, -3                                  # if v < -3 { return w; }
    blt 22f
    mr {s2}, {s1}                                   # commit store(c, v - 5)
    addi {s2}, {s2}, -5
    extsb {s2}, {s2}
    stb {s2}, 0({s0})
4:                                                  # post-commit
    li {status}, 0
6:                                                  # end
    b 7f                                            # abort (signature before the label)
    .long 0x0fe5000b
5:
    li {status}, 1
    b 6b
21:                                                 # exit: index out of range for `cells`
    li {status}, 2
    b 6b
22:                                                 # exit: if v < -3 { return w; }
    li {status}, 3
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
    .popsection
7:
