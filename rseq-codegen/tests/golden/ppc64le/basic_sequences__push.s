# rseq sequence `push` for ppc64le (index: cpu_id)
# inputs (in(reg_nonzero), never modified):
#   area         the thread's rseq area
#   base0        `heads`: address of slot 0
#   stride0      `heads`: slot stride
#   len0         `heads`: slot count
#   e0           `offset_of!(Node, next)` (evaluated before the section)
#   p_node       parameter `node`
# outputs (out(reg_nonzero)):
#   status       0 committed, 1 aborted
#                2 index out of range for `heads`
#   s0           scratch; after the block: the index read
#   s1           scratch
#   lr           clobbered
#   cr0          clobbered
# registers: 11 (limit 27), options(nostack)
    bcl 20, 31, 20f                                 # arm: rseq_cs = &descriptor
20:
    mflr {s0}
    addis {s0}, {s0}, (3f - 20b)@ha
    addi {s0}, {s0}, (3f - 20b)@l
    std {s0}, 8({area})
2:                                                  # start
    lwz {s0}, 4({area})                             # read cpu_id
    cmpld {s0}, {len0}                              # let head = heads.current()
    bge 21f
    mulld {s0}, {s0}, {stride0}
    add {s0}, {s0}, {base0}
    ld {s1}, 0({s0})                                # let old = load(head)
    stdx {s1}, {p_node}, {e0}                       # store(node + offset_of!(Node, next), old)
    std {p_node}, 0({s0})                           # commit store(head, node)
4:                                                  # post-commit
    li {status}, 0
6:                                                  # end
    b 7f                                            # abort (signature before the label)
    .long 0x0fe5000b
5:
    li {status}, 1
    b 6b
21:                                                 # exit: index out of range for `heads`
    li {status}, 2
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
    .quad 21b
    .popsection
7:
