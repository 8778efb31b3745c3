# rseq sequence `narrow_shifts` for ppc64le (index: cpu_id)
# inputs (in(reg_nonzero), never modified):
#   area         the thread's rseq area
#   base0        `cells`: address of slot 0
#   stride0      `cells`: slot stride
#   len0         `cells`: slot count
#   p_k          parameter `k`
#   p_h          parameter `h`
#   p_s          parameter `s`
# outputs (out(reg_nonzero)):
#   status       0 committed, 1 aborted
#                2 index out of range for `cells`
#                3 `if t < 0 { return t >> 3; }`
#                4 `if b == 0 { return t; }`
#   s0           scratch; after the block: the index read
#   s1           scratch; after the block: `t`
#   s2           scratch
#   s3           scratch
#   lr           clobbered
#   cr0          clobbered
# registers: 14 (limit 27), options(nostack)
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
    lwz {s1}, 0({s0})                               # let v = load(c)
    mr {s2}, {s1}                                   # let a = (v << k) ^ 0x55
    clrldi {s3}, {p_k}, 59
    sld {s2}, {s2}, {s3}
    clrldi {s2}, {s2}, 32
    xori {s2}, {s2}, 85
    clrldi {s3}, {p_k}, 59                          # let b = (a >> k) | v
    srd {s2}, {s2}, {s3}
    or {s2}, {s2}, {s1}
    mr {s1}, {p_h}                                  # let t = (h << s) >> s
    clrldi {s3}, {p_s}, 60
    sld {s1}, {s1}, {s3}
    extsh {s1}, {s1}
    clrldi {s3}, {p_s}, 60
    srad {s1}, {s1}, {s3}
    cmpdi {s1}, 0                                   # if t < 0 { return t >> 3; }
    blt 22f
    cmpldi {s2}, 0                                  # if b == 0 { return t; }
    beq 23f
    andi. {s2}, {s2}, 65520                         # commit store(c, (b & 0xfff0) - 7)
    addi {s2}, {s2}, -7
    clrldi {s2}, {s2}, 32
    stw {s2}, 0({s0})
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
22:                                                 # exit: if t < 0 { return t >> 3; }
    li {status}, 3
    b 6b
23:                                                 # exit: if b == 0 { return t; }
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
