# rseq sequence `narrow` for riscv64 (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   base0        `cells`: address of slot 0
#   stride0      `cells`: slot stride
#   len0         `cells`: slot count
#   p_k          parameter `k`
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `cells`
#                3 `if v < -3 { return w; }`
#   s0           scratch; after the block: the index read
#   s1           scratch; after the block: `v`
#   s2           scratch; after the block: `w`
#   s3           scratch
# registers: 10 (limit 26), options(nostack)
    lla {s0}, 3f                                    # arm: rseq_cs = &descriptor
    sd {s0}, 8({area})
2:                                                  # start
    lwu {s0}, 4({area})                             # read cpu_id
    bgeu {s0}, {len0}, 20f                          # let c = cells.current()
    mul {s0}, {s0}, {stride0}
    add {s0}, {s0}, {base0}
    lb {s1}, 0({s0})                                # let v = load(c)
    mv {s2}, {s1}                                   # let w = (v as i64) >> k
    sra {s2}, {s2}, {p_k}
    li {s3}, -3                                     # if v < -3 { return w; }
    blt {s1}, {s3}, 21f
    mv {s2}, {s1}                                   # commit store(c, v - 5)
    addi {s2}, {s2}, -5
    slli {s2}, {s2}, 56
    srai {s2}, {s2}, 56
    sb {s2}, 0({s0})
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
21:                                                 # exit: if v < -3 { return w; }
    li {status}, 3
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
