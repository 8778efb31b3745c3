# rseq sequence `push` for s390x (index: cpu_id)
# inputs (in(reg_addr), never modified):
#   area         the thread's rseq area
#   base0        `heads`: address of slot 0
#   stride0      `heads`: slot stride
#   len0         `heads`: slot count
#   e0           `offset_of!(Node, next)` (evaluated before the section)
#   p_node       parameter `node`
# outputs (out(reg_addr)):
#   status       0 committed, 1 aborted
#                2 index out of range for `heads`
#   s0           scratch; after the block: the index read
#   s1           scratch
# registers: 8 (limit 13), options(nostack)
    larl {s0}, 3f                                   # arm: rseq_cs = &descriptor
    stg {s0}, 8({area})
2:                                                  # start
    llgf {s0}, 4({area})                            # read cpu_id
    clgr {s0}, {len0}                               # let head = heads.current()
    jhe 20f
    msgr {s0}, {stride0}
    agr {s0}, {base0}
    lg {s1}, 0({s0})                                # let old = load(head)
    stg {s1}, {e0}+0({p_node})                      # store(node + offset_of!(Node, next), old)
    stg {p_node}, 0({s0})                           # commit store(head, node)
4:                                                  # post-commit
    lghi {status}, 0
6:                                                  # end
    j 7f                                            # abort (signature before the label)
    .balign 4
    .long 0xb2ff0fff
5:
    lghi {status}, 1
    j 6b
20:                                                 # exit: index out of range for `heads`
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
