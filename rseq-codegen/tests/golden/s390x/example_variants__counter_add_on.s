# rseq sequence `counter_add_on` for s390x (index: cpu_id)
# inputs (in(reg_addr), never modified):
#   area         the thread's rseq area
#   p_cpu        parameter `cpu`
#   slot_slot    address of slot `slot` (computed before the section)
#   p_n          parameter `n`
# outputs (out(reg_addr)):
#   status       0 committed, 1 aborted
#                2 wrong CPU for `slot`
#   s0           scratch; after the block: the index read
# registers: 6 (limit 13), options(nostack)
    larl {s0}, 3f                                   # arm: rseq_cs = &descriptor
    stg {s0}, 8({area})
2:                                                  # start
    llgf {s0}, 4({area})                            # read cpu_id
    clgr {s0}, {p_cpu}                              # let slot = counters.on_cpu(cpu)
    jne 20f
    lg {s0}, 0({slot_slot})                         # let v = load(slot)
    agr {s0}, {p_n}                                 # commit store(slot, v + n)
    stg {s0}, 0({slot_slot})
4:                                                  # post-commit
    lghi {status}, 0
6:                                                  # end
    j 7f                                            # abort (signature before the label)
    .balign 4
    .long 0xb2ff0fff
5:
    lghi {status}, 1
    j 6b
20:                                                 # exit: wrong CPU for `slot`
    lghi {status}, 2
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
