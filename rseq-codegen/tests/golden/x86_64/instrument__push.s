# rseq sequence `push` for x86_64 (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   inject_delays `sym` of the runtime's delay counts per injection point
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
# registers: 8 (limit 13), options(nostack)
    mov {status}, qword ptr [rip + {inject_delays} + 0] # inject: before_arm
20:
    sub {status}, 1
    jae 20b
    lea {s0}, [rip + 3f]                            # arm: rseq_cs = &descriptor
    mov qword ptr [{area} + 8], {s0}
2:                                                  # start
    mov {s0:e}, dword ptr [{area} + 4]              # read cpu_id
    cmp {s0}, {len0}                                # let head = heads.current()
    jae 21f
    imul {s0}, {stride0}
    add {s0}, {base0}
    mov {status}, qword ptr [rip + {inject_delays} + 8] # inject: after_index
22:
    sub {status}, 1
    jae 22b
    mov {s1}, qword ptr [{s0}]                      # let old = load(head)
    mov {status}, qword ptr [rip + {inject_delays} + 16] # inject: after_load
23:
    sub {status}, 1
    jae 23b
    mov qword ptr [{p_node} + {e0}], {s1}           # store(node + offset_of!(Node, next), old)
    mov {status}, qword ptr [rip + {inject_delays} + 32] # inject: after_store
24:
    sub {status}, 1
    jae 24b
    mov {status}, qword ptr [rip + {inject_delays} + 40] # inject: before_commit
25:
    sub {status}, 1
    jae 25b
    mov qword ptr [{s0}], {p_node}                  # commit store(head, node)
4:                                                  # post-commit
    xor {status:e}, {status:e}
6:                                                  # end
    .pushsection __rseq_failure, "ax"               # abort (signature before the label)
    .byte 0x0f, 0xb9, 0x3d
    .long 0x53053053
5:
    mov {status:e}, 1
    jmp 6b
21:                                                 # exit: index out of range for `heads`
    mov {status:e}, 2
    jmp 6b
    .popsection                                     # descriptor
    .pushsection __rseq_cs, "aw"
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
