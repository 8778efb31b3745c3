# rseq sequence `counter_add` for loongarch64 (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   base0        `counters`: address of slot 0
#   stride0      `counters`: slot stride
#   len0         `counters`: slot count
#   p_n          parameter `n`
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `counters`
#   s0           scratch; after the block: the index read
#   s1           scratch
# registers: 8 (limit 26), options(nostack)
    la.pcrel {s0}, 3f                               # arm: rseq_cs = &descriptor
    st.d {s0}, {area}, 8
2:                                                  # start
    ld.wu {s0}, {area}, 4                           # read cpu_id
    bgeu {s0}, {len0}, 20f                          # let slot = counters.current()
    mul.d {s0}, {s0}, {stride0}
    add.d {s0}, {s0}, {base0}
    ld.d {s1}, {s0}, 0                              # let v = load(slot)
    add.d {s1}, {s1}, {p_n}                         # commit store(slot, v + n)
    st.d {s1}, {s0}, 0
4:                                                  # post-commit
    ori {status}, $zero, 0
6:                                                  # end
    b 7f                                            # abort (signature before the label)
    .word 0x002a0010
5:
    ori {status}, $zero, 1
    b 6b
20:                                                 # exit: index out of range for `counters`
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
