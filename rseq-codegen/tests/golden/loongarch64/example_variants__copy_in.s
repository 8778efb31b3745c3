# rseq sequence `copy_in` for loongarch64 (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   base0        `bufs`: address of slot 0
#   stride0      `bufs`: slot stride
#   len0         `bufs`: slot count
#   e0           `offset_of!(Buf64, items)` (evaluated before the section)
#   p_src        parameter `src`
#   p_len        parameter `len`
#   e1           `offset_of!(Buf64, len)` (evaluated before the section)
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `bufs`
#   s0           scratch; after the block: the index read
#   s1           scratch
#   s2           scratch
#   s3           scratch
#   s4           scratch
# registers: 14 (limit 26), options(nostack)
    la.pcrel {s0}, 3f                               # arm: rseq_cs = &descriptor
    st.d {s0}, {area}, 8
2:                                                  # start
    ld.wu {s0}, {area}, 4                           # read cpu_id
    bgeu {s0}, {len0}, 20f                          # let b = bufs.current()
    mul.d {s0}, {s0}, {stride0}
    add.d {s0}, {s0}, {base0}
    move {s2}, {p_src}                              # memcpy(b + offset_of!(Buf64, items), src, len)
    add.d {s3}, {s0}, {e0}
    move {s4}, {p_len}
21:
    sltui {s1}, {s4}, 8
    bnez {s1}, 22f
    ld.d {s1}, {s2}, 0
    st.d {s1}, {s3}, 0
    addi.d {s2}, {s2}, 8
    addi.d {s3}, {s3}, 8
    addi.d {s4}, {s4}, -8
    b 21b
22:
    andi {s1}, {s4}, 4
    beqz {s1}, 23f
    ld.wu {s1}, {s2}, 0
    st.w {s1}, {s3}, 0
    addi.d {s2}, {s2}, 4
    addi.d {s3}, {s3}, 4
23:
    andi {s1}, {s4}, 2
    beqz {s1}, 24f
    ld.hu {s1}, {s2}, 0
    st.h {s1}, {s3}, 0
    addi.d {s2}, {s2}, 2
    addi.d {s3}, {s3}, 2
24:
    andi {s1}, {s4}, 1
    beqz {s1}, 25f
    ld.bu {s1}, {s2}, 0
    st.b {s1}, {s3}, 0
25:
    stx.d {p_len}, {s0}, {e1}                       # commit store(b + offset_of!(Buf64, len), len)
4:                                                  # post-commit
    ori {status}, $zero, 0
6:                                                  # end
    b 7f                                            # abort (signature before the label)
    .word 0x002a0010
5:
    ori {status}, $zero, 1
    b 6b
20:                                                 # exit: index out of range for `bufs`
    ori {status}, $zero, 2
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
    .popsection
7:
