# rseq sequence `counter_add` for riscv64 (index: cpu_id)
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
    lla {s0}, 3f                                    # arm: rseq_cs = &descriptor
    sd {s0}, 8({area})
2:                                                  # start
    lwu {s0}, 4({area})                             # read cpu_id
    bgeu {s0}, {len0}, 20f                          # let slot = counters.current()
    mul {s0}, {s0}, {stride0}
    add {s0}, {s0}, {base0}
    ld {s1}, 0({s0})                                # let v = load(slot)
    add {s1}, {s1}, {p_n}                           # commit store(slot, v + n)
    sd {s1}, 0({s0})
4:                                                  # post-commit
    li {status}, 0
6:                                                  # end
    j 7f                                            # abort (signature before the label)
    .balign 4
    .long 0xf1401073
5:
    li {status}, 1
    j 6b
20:                                                 # exit: index out of range for `counters`
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
