# rseq sequence `copy_in` for riscv64 (index: cpu_id)
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
    lla {s0}, 3f                                    # arm: rseq_cs = &descriptor
    sd {s0}, 8({area})
2:                                                  # start
    lwu {s0}, 4({area})                             # read cpu_id
    bgeu {s0}, {len0}, 20f                          # let b = bufs.current()
    mul {s0}, {s0}, {stride0}
    add {s0}, {s0}, {base0}
    mv {s2}, {p_src}                                # memcpy(b + offset_of!(Buf64, items), src, len)
    add {s3}, {s0}, {e0}
    mv {s4}, {p_len}
21:
    sltiu {s1}, {s4}, 8
    bnez {s1}, 22f
    ld {s1}, 0({s2})
    sd {s1}, 0({s3})
    addi {s2}, {s2}, 8
    addi {s3}, {s3}, 8
    addi {s4}, {s4}, -8
    j 21b
22:
    andi {s1}, {s4}, 4
    beqz {s1}, 23f
    lwu {s1}, 0({s2})
    sw {s1}, 0({s3})
    addi {s2}, {s2}, 4
    addi {s3}, {s3}, 4
23:
    andi {s1}, {s4}, 2
    beqz {s1}, 24f
    lhu {s1}, 0({s2})
    sh {s1}, 0({s3})
    addi {s2}, {s2}, 2
    addi {s3}, {s3}, 2
24:
    andi {s1}, {s4}, 1
    beqz {s1}, 25f
    lbu {s1}, 0({s2})
    sb {s1}, 0({s3})
25:
    add {s0}, {s0}, {e1}                            # commit store(b + offset_of!(Buf64, len), len)
    sd {p_len}, 0({s0})
4:                                                  # post-commit
    li {status}, 0
6:                                                  # end
    j 7f                                            # abort (signature before the label)
    .balign 4
    .long 0xf1401073
5:
    li {status}, 1
    j 6b
20:                                                 # exit: index out of range for `bufs`
    li {status}, 2
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
