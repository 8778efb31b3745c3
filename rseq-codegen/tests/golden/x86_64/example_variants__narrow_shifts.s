# rseq sequence `narrow_shifts` for x86_64 (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   base0        `cells`: address of slot 0
#   stride0      `cells`: slot stride
#   len0         `cells`: slot count
#   p_k          parameter `k`
#   p_h          parameter `h`
#   p_s          parameter `s`
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `cells`
#                3 `if t < 0 { return t >> 3; }`
#                4 `if b == 0 { return t; }`
#   s0           scratch; after the block: the index read
#   s1           scratch; after the block: `t`
#   s2           scratch
#   rcx          clobbered
# registers: 12 (limit 13), options(nostack)
    lea {s0}, [rip + 3f]                            # arm: rseq_cs = &descriptor
    mov qword ptr [{area} + 8], {s0}
2:                                                  # start
    mov {s0:e}, dword ptr [{area} + 4]              # read cpu_id
    cmp {s0}, {len0}                                # let c = cells.current()
    jae 20f
    imul {s0}, {stride0}
    add {s0}, {base0}
    mov {s1:e}, dword ptr [{s0}]                    # let v = load(c)
    mov {s2}, {s1}                                  # let a = (v << k) ^ 0x55
    mov ecx, {p_k:e}
    and ecx, 31
    shl {s2}, cl
    mov {s2:e}, {s2:e}
    xor {s2}, 85
    mov ecx, {p_k:e}                                # let b = (a >> k) | v
    and ecx, 31
    shr {s2}, cl
    or {s2}, {s1}
    mov {s1}, {p_h}                                 # let t = (h << s) >> s
    mov ecx, {p_s:e}
    and ecx, 15
    shl {s1}, cl
    movsx {s1}, {s1:x}
    mov ecx, {p_s:e}
    and ecx, 15
    sar {s1}, cl
    cmp {s1}, 0                                     # if t < 0 { return t >> 3; }
    jl 21f
    test {s2}, {s2}                                 # if b == 0 { return t; }
    je 22f
    and {s2}, 65520                                 # commit store(c, (b & 0xfff0) - 7)
    sub {s2}, 7
    mov {s2:e}, {s2:e}
    mov dword ptr [{s0}], {s2:e}
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
21:                                                 # exit: if t < 0 { return t >> 3; }
    mov {status:e}, 3
    jmp 6b
22:                                                 # exit: if b == 0 { return t; }
    mov {status:e}, 4
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
    .quad 2b
    .quad 22b
    .popsection
