# rseq sequence `buf_pop` for x86_64 (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   inject_delays `sym` of the runtime's delay counts per injection point
#   base0        `bufs`: address of slot 0
#   stride0      `bufs`: slot stride
#   len0         `bufs`: slot count
#   e0           `offset_of!(CpuBuf, len)` (evaluated before the section)
#   e2           `offset_of!(CpuBuf, slots)` (evaluated before the section)
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `bufs`
#                3 `if n == 0 { return None; }`
#                4 `if item == 0 { return None; }`
#                5 debug check failed: cpu_id changed
#                6 debug check failed: `if n == 0 { return None; }`
#                7 debug check failed: `if item == 0 { return None; }`
#   s0           scratch; after the block: the index read
#   s1           scratch
#   s2           scratch
#   s3           scratch; after the block: `item`
#   s4           scratch
#   s5           scratch
# registers: 11 (limit 13), options(nostack)
    mov {status}, qword ptr [rip + {inject_delays} + 0] # inject: before_arm
20:
    sub {status}, 1
    jae 20b
    lea {s0}, [rip + 3f]                            # arm: rseq_cs = &descriptor
    mov qword ptr [{area} + 8], {s0}
2:                                                  # start
    mov {s0:e}, dword ptr [{area} + 4]              # read cpu_id
    cmp {s0}, {len0}                                # let b = bufs.current()
    jae 21f
    mov {s1}, {s0}
    imul {s1}, {stride0}
    add {s1}, {base0}
    mov {status}, qword ptr [rip + {inject_delays} + 8] # inject: after_index
27:
    sub {status}, 1
    jae 27b
    mov {s2}, qword ptr [{s1} + {e0}]               # let n = load::<usize>(b + offset_of!(CpuBuf, len))
    mov {status}, qword ptr [rip + {inject_delays} + 16] # inject: after_load
28:
    sub {status}, 1
    jae 28b
    test {s2}, {s2}                                 # if n == 0 { return None; }
    je 22f
    mov {status}, qword ptr [rip + {inject_delays} + 24] # inject: after_compare
29:
    sub {status}, 1
    jae 29b
    mov {s3}, {s2}                                  # let item = load::<usize>(b + offset_of!(CpuBuf, slots) + ((n - 1) << 3))
    sub {s3}, 1
    shl {s3}, 3
    mov {s4}, {s1}
    add {s4}, {e2}
    mov {s3}, qword ptr [{s4} + {s3}]
    mov {status}, qword ptr [rip + {inject_delays} + 16] # inject: after_load
30:
    sub {status}, 1
    jae 30b
    test {s3}, {s3}                                 # if item == 0 { return None; }
    je 23f
    mov {status}, qword ptr [rip + {inject_delays} + 24] # inject: after_compare
31:
    sub {status}, 1
    jae 31b
    mov {s4}, qword ptr [{s1} + {e0}]               # debug check: let n = load::<usize>(b + offset_of!(CpuBuf, len))
    test {s4}, {s4}                                 # debug check: if n == 0 { return None; }
    je 25f
    sub {s4}, 1                                     # debug check: let item = load::<usize>(b + offset_of!(CpuBuf, slots) + ((n - 1) << 3))
    shl {s4}, 3
    mov {s5}, {s1}
    add {s5}, {e2}
    mov {s4}, qword ptr [{s5} + {s4}]
    test {s4}, {s4}                                 # debug check: if item == 0 { return None; }
    je 26f
    sub {s2}, 1                                     # commit store(b + offset_of!(CpuBuf, len), n - 1)
    mov {status}, qword ptr [rip + {inject_delays} + 40] # inject: before_commit
32:
    sub {status}, 1
    jae 32b
    mov {s4:e}, dword ptr [{area} + 4]              # debug check: cpu_id unchanged
    cmp {s4}, {s0}
    jne 24f
    mov qword ptr [{s1} + {e0}], {s2}               # commit store(b + offset_of!(CpuBuf, len), n - 1)
4:                                                  # post-commit
    xor {status:e}, {status:e}
6:                                                  # end
    .pushsection __rseq_failure, "ax"               # abort (signature before the label)
    .byte 0x0f, 0xb9, 0x3d
    .long 0x53053053
5:
    mov {status:e}, 1
    jmp 6b
21:                                                 # exit: index out of range for `bufs`
    mov {status:e}, 2
    jmp 6b
22:                                                 # exit: if n == 0 { return None; }
    mov {status:e}, 3
    jmp 6b
23:                                                 # exit: if item == 0 { return None; }
    mov {status:e}, 4
    jmp 6b
24:                                                 # debug check failed: cpu_id changed
    mov {status:e}, 5
    jmp 6b
25:                                                 # debug check failed: if n == 0 { return None; }
    mov {status:e}, 6
    jmp 6b
26:                                                 # debug check failed: if item == 0 { return None; }
    mov {status:e}, 7
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
    .quad 2b
    .quad 22b
    .quad 2b
    .quad 23b
    .quad 2b
    .quad 24b
    .quad 2b
    .quad 25b
    .quad 2b
    .quad 26b
    .popsection
