# rseq sequence `push16` for loongarch64 (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   base0        `bufs`: address of slot 0
#   stride0      `bufs`: slot stride
#   len0         `bufs`: slot count
#   e0           `offset_of!(Buf16, len)` (evaluated before the section)
#   e1           `CAP` (evaluated before the section)
#   e2           `offset_of!(Buf16, items)` (evaluated before the section)
#   p_src        parameter `src`
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `bufs`
#                3 `if n >= CAP { return false; }`
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
    ldx.d {s1}, {s0}, {e0}                          # let n = load::<usize>(b + offset_of!(Buf16, len))
    bgeu {s1}, {e1}, 21f                            # if n >= CAP { return false; }
    move {s2}, {s1}                                 # memcpy(b + offset_of!(Buf16, items) + (n << 4), src, 16)
    slli.d {s2}, {s2}, 4
    move {s3}, {s0}
    add.d {s3}, {s3}, {e2}
    ld.d {s4}, {p_src}, 0
    stx.d {s4}, {s3}, {s2}
    ld.d {s4}, {p_src}, 8
    addi.d {s2}, {s2}, 8
    stx.d {s4}, {s3}, {s2}
    addi.d {s1}, {s1}, 1                            # commit store(b + offset_of!(Buf16, len), n + 1)
    stx.d {s1}, {s0}, {e0}
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
21:                                                 # exit: if n >= CAP { return false; }
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
