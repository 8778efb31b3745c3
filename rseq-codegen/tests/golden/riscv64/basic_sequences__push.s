# rseq sequence `push` for riscv64 (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   base0        `heads`: address of slot 0
#   stride0      `heads`: slot stride
#   len0         `heads`: slot count
#   e0           `offset_of!(Node, next)` (evaluated before the section)
#   p_node       parameter `node`
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `heads`
#   s0           scratch; after the block: the index read
#   s1           scratch
#   s2           scratch
# registers: 10 (limit 26), options(nostack)
    lla {s0}, 3f                                    # arm: rseq_cs = &descriptor
    sd {s0}, 8({area})
2:                                                  # start
    lwu {s0}, 4({area})                             # read cpu_id
    bgeu {s0}, {len0}, 20f                          # let head = heads.current()
    mul {s0}, {s0}, {stride0}
    add {s0}, {s0}, {base0}
    ld {s1}, 0({s0})                                # let old = load(head)
    add {s2}, {p_node}, {e0}                        # store(node + offset_of!(Node, next), old)
    sd {s1}, 0({s2})
    sd {p_node}, 0({s0})                            # commit store(head, node)
4:                                                  # post-commit
    li {status}, 0
6:                                                  # end
    j 7f                                            # abort (signature before the label)
    .balign 4
    .long 0xf1401073
5:
    li {status}, 1
    j 6b
20:                                                 # exit: index out of range for `heads`
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
