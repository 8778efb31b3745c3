# rseq sequence `counter_add_on` for arm (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   p_cpu        parameter `cpu`
#   slot_slot    address of slot `slot` (computed before the section)
#   p_n          parameter `n`
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 wrong CPU for `slot`
#   s0           scratch; after the block: the index read
#   s1           scratch
# registers: 7 (limit 11), options(nostack)
20:                                                 # arm: rseq_cs = &descriptor
    adr {s0}, 20b
    movw {s1}, #:lower16:(3f - 20b)
    movt {s1}, #:upper16:(3f - 20b)
    add {s1}, {s1}, {s0}
    str {s1}, [{area}, #8]
2:                                                  # start
    ldr {s0}, [{area}, #4]                          # read cpu_id
    cmp {s0}, {p_cpu}                               # let slot = counters.on_cpu(cpu)
    bne 21f
    ldr {s0}, [{slot_slot}]                         # let v = load(slot)
    add {s0}, {s0}, {p_n}                           # commit store(slot, v + n)
    str {s0}, [{slot_slot}]
4:                                                  # post-commit
    mov {status}, #0
6:                                                  # end
    b 7f                                            # abort (signature before the label)
    .balign 4
    .word 0xe7f5def3
5:
    mov {status}, #1
    b 6b
21:                                                 # exit: wrong CPU for `slot`
    mov {status}, #2
    b 6b
    .pushsection __rseq_cs, "aw"                    # descriptor
    .balign 32
3:
    .long 0, 0
    .long 2b, 0
    .long 4b - 2b, 0
    .long 5b, 0
    .popsection
    .pushsection __rseq_cs_ptr_array, "awR"
    .balign 8
    .long 3b, 0
    .popsection
    .pushsection __rseq_exit_point_array, "awR"
    .balign 8
    .long 2b, 0
    .long 21b, 0
    .popsection
7:
