# rseq sequence `narrow_shifts` for riscv64 (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   base0        `cells`: address of slot 0
#   stride0      `cells`: slot stride
#   len0         `cells`: slot count
#   p_k          parameter `k`
#   p_h          parameter `h`
#   p_s          parameter `s`
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `cells`
#                3 `if t < 0 { return t >> 3; }`
#                4 `if b == 0 { return t; }`
#   s0           scratch; after the block: the index read
#   s1           scratch; after the block: `t`
#   s2           scratch
#   s3           scratch
# registers: 12 (limit 26), options(nostack)
    lla {s0}, 3f                                    # arm: rseq_cs = &descriptor
    sd {s0}, 8({area})
2:                                                  # start
    lwu {s0}, 4({area})                             # read cpu_id
    bgeu {s0}, {len0}, 20f                          # let c = cells.current()
    mul {s0}, {s0}, {stride0}
    add {s0}, {s0}, {base0}
    lwu {s1}, 0({s0})                               # let v = load(c)
    mv {s2}, {s1}                                   # let a = (v << k) ^ 0x55
    andi {s3}, {p_k}, 31
    sll {s2}, {s2}, {s3}
    slli {s2}, {s2}, 32
    srli {s2}, {s2}, 32
    xori {s2}, {s2}, 85
    andi {s3}, {p_k}, 31                            # let b = (a >> k) | v
    srl {s2}, {s2}, {s3}
    or {s2}, {s2}, {s1}
    mv {s1}, {p_h}                                  # let t = (h << s) >> s
    andi {s3}, {p_s}, 15
    sll {s1}, {s1}, {s3}
    slli {s1}, {s1}, 48
    srai {s1}, {s1}, 48
    andi {s3}, {p_s}, 15
    sra {s1}, {s1}, {s3}
    blt {s1}, zero, 21f                             # if t < 0 { return t >> 3; }
    beq {s2}, zero, 22f                             # if b == 0 { return t; }
    li {s3}, 65520                                  # commit store(c, (b & 0xfff0) - 7)
    and {s2}, {s2}, {s3}
    addi {s2}, {s2}, -7
    slli {s2}, {s2}, 32
    srli {s2}, {s2}, 32
    sw {s2}, 0({s0})
4:                                                  # post-commit
    li {status}, 0
6:                                                  # end
    j 7f                                            # abort (signature before the label)
    .balign 4
    .long 0xf1401073
5:
    li {status}, 1
    j 6b
20:                                                 # exit: index out of range for `cells`
    li {status}, 2
    j 6b
21:                                                 # exit: if t < 0 { return t >> 3; }
    li {status}, 3
    j 6b
22:                                                 # exit: if b == 0 { return t; }
    li {status}, 4
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
