# rseq sequence `stack_push` for x86_64 (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   base0        `heads`: address of slot 0
#   stride0      `heads`: slot stride
#   len0         `heads`: slot count
#   p_node       parameter `node`
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `heads`
#   s0           scratch; after the block: the index read
#   s1           scratch
# registers: 8 (limit 13), options(nostack)
    lea {s0}, [rip + 3f]                            # arm: rseq_cs = &descriptor
    mov qword ptr [{area} + 8], {s0}
2:                                                  # start
    mov {s0:e}, dword ptr [{area} + 4]              # read cpu_id
    cmp {s0}, {len0}                                # let head = heads.current()
    jae 20f
    imul {s0}, {stride0}
    add {s0}, {base0}
    mov {s1}, qword ptr [{s0}]                      # let t = load(head)
    mov qword ptr [{p_node}], {s1}                  # store(node, t)
    mov qword ptr [{s0}], {p_node}                  # commit store(head, node as usize)
4:                                                  # post-commit
    xor {status:e}, {status:e}
6:                                                  # end
    .pushsection __rseq_failure, "ax"               # abort (signature before the label)
    .byte 0x0f, 0xb9, 0x3d
    .long 0x53053053
5:
    mov {status:e}, 1
    jmp 6b
20:                                                 # exit: index out of range for `heads`
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
    .quad 20b
    .popsection
