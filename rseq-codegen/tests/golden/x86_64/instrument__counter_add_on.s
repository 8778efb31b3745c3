# rseq sequence `counter_add_on` for x86_64 (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   p_cpu        parameter `cpu`
#   slot_slot    address of slot `slot` (computed before the section)
#   p_n          parameter `n`
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 wrong CPU for `slot`
#                3 debug check failed: cpu_id changed
#   s0           scratch; after the block: the index read
#   s1           scratch
#   s2           scratch
# registers: 8 (limit 13), options(nostack)
    lea {s0}, [rip + 3f]                            # arm: rseq_cs = &descriptor
    mov qword ptr [{area} + 8], {s0}
2:                                                  # start
    mov {s0:e}, dword ptr [{area} + 4]              # read cpu_id
    cmp {s0}, {p_cpu}                               # let slot = counters.on_cpu(cpu)
    jne 20f
    mov {s1}, qword ptr [{slot_slot}]               # let v = load(slot)
    add {s1}, {p_n}                                 # commit store(slot, v + n)
    mov {s2:e}, dword ptr [{area} + 4]              # debug check: cpu_id unchanged
    cmp {s2}, {s0}
    jne 21f
    mov qword ptr [{slot_slot}], {s1}               # commit store(slot, v + n)
4:                                                  # post-commit
    xor {status:e}, {status:e}
6:                                                  # end
    .pushsection __rseq_failure, "ax"               # abort (signature before the label)
    .byte 0x0f, 0xb9, 0x3d
    .long 0x53053053
5:
    mov {status:e}, 1
    jmp 6b
20:                                                 # exit: wrong CPU for `slot`
    mov {status:e}, 2
    jmp 6b
21:                                                 # debug check failed: cpu_id changed
    mov {status:e}, 3
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
    .quad 2b
    .quad 21b
    .popsection
