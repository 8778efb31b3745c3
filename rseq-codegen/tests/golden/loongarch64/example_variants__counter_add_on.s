# rseq sequence `counter_add_on` for loongarch64 (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   p_cpu        parameter `cpu`
#   slot_slot    address of slot `slot` (computed before the section)
#   p_n          parameter `n`
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 wrong CPU for `slot`
#   s0           scratch; after the block: the index read
# registers: 6 (limit 26), options(nostack)
    la.pcrel {s0}, 3f                               # arm: rseq_cs = &descriptor
    st.d {s0}, {area}, 8
2:                                                  # start
    ld.wu {s0}, {area}, 4                           # read cpu_id
    bne {s0}, {p_cpu}, 20f                          # let slot = counters.on_cpu(cpu)
    ld.d {s0}, {slot_slot}, 0                       # let v = load(slot)
    add.d {s0}, {s0}, {p_n}                         # commit store(slot, v + n)
    st.d {s0}, {slot_slot}, 0
4:                                                  # post-commit
    ori {status}, $zero, 0
6:                                                  # end
    b 7f                                            # abort (signature before the label)
    .word 0x002a0010
5:
    ori {status}, $zero, 1
    b 6b
20:                                                 # exit: wrong CPU for `slot`
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
