# rseq sequence `pop` for loongarch64 (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   base0        `heads`: address of slot 0
#   stride0      `heads`: slot stride
#   len0         `heads`: slot count
#   e1           `offset_of!(Node, next)` (evaluated before the section)
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `heads`
#                3 `if top == 0 { return None; }`
#   s0           scratch; after the block: the index read
#   s1           scratch; after the block: `top`
#   s2           scratch
# registers: 9 (limit 26), options(nostack)
    la.pcrel {s0}, 3f                               # arm: rseq_cs = &descriptor
    st.d {s0}, {area}, 8
2:                                                  # start
    ld.wu {s0}, {area}, 4                           # read cpu_id
    bgeu {s0}, {len0}, 20f                          # let head = heads.current()
    mul.d {s0}, {s0}, {stride0}
    add.d {s0}, {s0}, {base0}
    ld.d {s1}, {s0}, 0                              # let top = load(head)
    beq {s1}, $zero, 21f                            # if top == 0 { return None; }
    ldx.d {s2}, {s1}, {e1}                          # let next = load::<*mut Node>(top + offset_of!(Node, next))
    st.d {s2}, {s0}, 0                              # commit store(head, next)
4:                                                  # post-commit
    ori {status}, $zero, 0
6:                                                  # end
    b 7f                                            # abort (signature before the label)
    .word 0x002a0010
5:
    ori {status}, $zero, 1
    b 6b
20:                                                 # exit: index out of range for `heads`
    ori {status}, $zero, 2
    b 6b
21:                                                 # exit: if top == 0 { return None; }
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
