# rseq sequence `narrow` for loongarch64 (index: cpu_id)
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
    la.pcrel {s0}, 3f                               # arm: rseq_cs = &descriptor
    st.d {s0}, {area}, 8
2:                                                  # start
    ld.wu {s0}, {area}, 4                           # read cpu_id
    bgeu {s0}, {len0}, 20f                          # let c = cells.current()
    mul.d {s0}, {s0}, {stride0}
    add.d {s0}, {s0}, {base0}
    ld.b {s1}, {s0}, 0                              # let v = load(c)
    move {s2}, {s1}                                 # let w = (v as i64) >> k
    sra.d {s2}, {s2}, {p_k}
    li.d {s3}, -3                                   # if v < -3 { return w; }
    blt {s1}, {s3}, 21f
    move {s2}, {s1}                                 # commit store(c, v - 5)
    addi.d {s2}, {s2}, -5
    ext.w.b {s2}, {s2}
    st.b {s2}, {s0}, 0
4:                                                  # post-commit
    ori {status}, $zero, 0
6:                                                  # end
    b 7f                                            # abort (signature before the label)
    .word 0x002a0010
5:
    ori {status}, $zero, 1
    b 6b
20:                                                 # exit: index out of range for `cells`
    ori {status}, $zero, 2
    b 6b
21:                                                 # exit: if v < -3 { return w; }
    ori {status}, $zero, 3
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
    .quad 20b
    .quad 2b
    .quad 21b
    .popsection
7:
