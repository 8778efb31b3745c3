# rseq sequence `narrow_shifts` for loongarch64 (index: cpu_id)
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
    la.pcrel {s0}, 3f                               # arm: rseq_cs = &descriptor
    st.d {s0}, {area}, 8
2:                                                  # start
    ld.wu {s0}, {area}, 4                           # read cpu_id
    bgeu {s0}, {len0}, 20f                          # let c = cells.current()
    mul.d {s0}, {s0}, {stride0}
    add.d {s0}, {s0}, {base0}
    ld.wu {s1}, {s0}, 0                             # let v = load(c)
    move {s2}, {s1}                                 # let a = (v << k) ^ 0x55
    andi {s3}, {p_k}, 31
    sll.d {s2}, {s2}, {s3}
    bstrpick.d {s2}, {s2}, 31, 0
    xori {s2}, {s2}, 85
    andi {s3}, {p_k}, 31                            # let b = (a >> k) | v
    srl.d {s2}, {s2}, {s3}
    or {s2}, {s2}, {s1}
    move {s1}, {p_h}                                # let t = (h << s) >> s
    andi {s3}, {p_s}, 15
    sll.d {s1}, {s1}, {s3}
    ext.w.h {s1}, {s1}
    andi {s3}, {p_s}, 15
    sra.d {s1}, {s1}, {s3}
    blt {s1}, $zero, 21f                            # if t < 0 { return t >> 3; }
    beq {s2}, $zero, 22f                            # if b == 0 { return t; }
    li.d {s3}, 65520                                # commit store(c, (b & 0xfff0) - 7)
    and {s2}, {s2}, {s3}
    addi.d {s2}, {s2}, -7
    bstrpick.d {s2}, {s2}, 31, 0
    st.w {s2}, {s0}, 0
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
21:                                                 # exit: if t < 0 { return t >> 3; }
    ori {status}, $zero, 3
    b 6b
22:                                                 # exit: if b == 0 { return t; }
    ori {status}, $zero, 4
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
    .quad 2b
    .quad 22b
    .popsection
7:
