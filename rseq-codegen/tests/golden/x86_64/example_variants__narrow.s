# rseq sequence `narrow` for x86_64 (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   base0        `cells`: address of slot 0
#   stride0      `cells`: slot stride
#   len0         `cells`: slot count
#   p_k          parameter `k`
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `cells`
#                3 `if v < -3 { return w; }`
#   s0           scratch; after the block: the index read
#   s1           scratch; after the block: `v`
#   s2           scratch; after the block: `w`
#   rcx          clobbered
# registers: 10 (limit 13), options(nostack)
    lea {s0}, [rip + 3f]                            # arm: rseq_cs = &descriptor
    mov qword ptr [{area} + 8], {s0}
2:                                                  # start
    mov {s0:e}, dword ptr [{area} + 4]              # read cpu_id
    cmp {s0}, {len0}                                # let c = cells.current()
    jae 20f
    imul {s0}, {stride0}
    add {s0}, {base0}
    movsx {s1}, byte ptr [{s0}]                     # let v = load(c)
    mov {s2}, {s1}                                  # let w = (v as i64) >> k
    mov ecx, {p_k:e}
    sar {s2}, cl
    cmp {s1}, -3                                    # if v < -3 { return w; }
    jl 21f
    mov {s2}, {s1}                                  # commit store(c, v - 5)
    sub {s2}, 5
    movsx {s2}, {s2:l}
    mov byte ptr [{s0}], {s2:l}
4:                                                  # post-commit
    xor {status:e}, {status:e}
6:                                                  # end
    .pushsection __rseq_failure, "ax"               # abort (signature before the label)
    .byte 0x0f, 0xb9, 0x3d
    .long 0x53053053
5:
    mov {status:e}, 1
    jmp 6b
20:                                                 # exit: index out of range for `cells`
    mov {status:e}, 2
    jmp 6b
21:                                                 # exit: if v < -3 { return w; }
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
