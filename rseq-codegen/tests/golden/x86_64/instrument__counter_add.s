# rseq sequence `counter_add` for x86_64 (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   inject_delays `sym` of the runtime's delay counts per injection point
#   base0        `counters`: address of slot 0
#   stride0      `counters`: slot stride
#   len0         `counters`: slot count
#   p_n          parameter `n`
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `counters`
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
    cmp {s0}, {len0}                                # let slot = counters.current()
    jae 21f
    imul {s0}, {stride0}
    add {s0}, {base0}
    mov {status}, qword ptr [rip + {inject_delays} + 8] # inject: after_index
22:
    sub {status}, 1
    jae 22b
    mov {s1}, qword ptr [{s0}]                      # let v = load(slot)
    mov {status}, qword ptr [rip + {inject_delays} + 16] # inject: after_load
23:
    sub {status}, 1
    jae 23b
    add {s1}, {p_n}                                 # commit store(slot, v + n)
    mov {status}, qword ptr [rip + {inject_delays} + 40] # inject: before_commit
24:
    sub {status}, 1
    jae 24b
    mov qword ptr [{s0}], {s1}                      # commit store(slot, v + n)
4:                                                  # post-commit
    xor {status:e}, {status:e}
6:                                                  # end
    .pushsection __rseq_failure, "ax"               # abort (signature before the label)
    .byte 0x0f, 0xb9, 0x3d
    .long 0x53053053
5:
    mov {status:e}, 1
    jmp 6b
21:                                                 # exit: index out of range for `counters`
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
