# rseq sequence `push16` for arm (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   spill        address of the spilled inputs (words loaded inside the section)
# spilled inputs (too few registers: words at `spill`, loaded where used):
#   [0] len0     `bufs`: slot count
#   [4] base0    `bufs`: address of slot 0
#   [8] stride0  `bufs`: slot stride
#   [12] e0      `offset_of!(Buf16, len)` (evaluated before the section)
#   [16] e1      `CAP` (evaluated before the section)
#   [20] e2      `offset_of!(Buf16, items)` (evaluated before the section)
#   [24] p_src   parameter `src`
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `bufs`
#                3 `if n >= CAP { return false; }`
#   s0           scratch; after the block: the index read
#   s1           scratch
#   s2           scratch
#   s3           scratch
#   s4           scratch
#   s5           scratch
#   s6           scratch
# registers: 10 (limit 11), options(nostack)
20:                                                 # arm: rseq_cs = &descriptor
    adr {s0}, 20b
    movw {s1}, #:lower16:(3f - 20b)
    movt {s1}, #:upper16:(3f - 20b)
    add {s1}, {s1}, {s0}
    str {s1}, [{area}, #8]
2:                                                  # start
    ldr {s0}, [{area}, #4]                          # read cpu_id
    ldr {s1}, [{spill}]                             # let b = bufs.current()
    cmp {s0}, {s1}
    bhs 21f
    ldr {s1}, [{spill}, #4]
    ldr {s2}, [{spill}, #8]
    mla {s0}, {s0}, {s2}, {s1}
    ldr {s1}, [{spill}, #12]                        # let n = load::<usize>(b + offset_of!(Buf16, len))
    ldr {s1}, [{s0}, {s1}]
    ldr {s2}, [{spill}, #16]                        # if n >= CAP { return false; }
    cmp {s1}, {s2}
    bhs 22f
    mov {s2}, {s1}                                  # memcpy(b + offset_of!(Buf16, items) + (n << 4), src, 16)
    lsl {s2}, {s2}, #4
    ldr {s3}, [{spill}, #20]
    mov {s4}, {s0}
    add {s4}, {s4}, {s3}
    ldr {s3}, [{spill}, #24]
    ldr {s5}, [{s3}]
    str {s5}, [{s4}, {s2}]
    ldr {s5}, [{s3}, #4]
    movw {s6}, #4
    add {s6}, {s6}, {s2}
    str {s5}, [{s4}, {s6}]
    ldr {s5}, [{s3}, #8]
    movw {s6}, #8
    add {s6}, {s6}, {s2}
    str {s5}, [{s4}, {s6}]
    ldr {s5}, [{s3}, #12]
    movw {s3}, #12
    add {s3}, {s3}, {s2}
    str {s5}, [{s4}, {s3}]
    add {s1}, {s1}, #1                              # commit store(b + offset_of!(Buf16, len), n + 1)
    ldr {s2}, [{spill}, #12]
    str {s1}, [{s0}, {s2}]
4:                                                  # post-commit
    mov {status}, #0
6:                                                  # end
    b 7f                                            # abort (signature before the label)
    .balign 4
    .word 0xe7f5def3
5:
    mov {status}, #1
    b 6b
21:                                                 # exit: index out of range for `bufs`
    mov {status}, #2
    b 6b
22:                                                 # exit: if n >= CAP { return false; }
    mov {status}, #3
    b 6b
    .pushsection __rseq_cs, "aw"                    # descriptor
    .balign 32
3:
    .long 0, 0
    .long 2b, 0
    .long 4b - 2b, 0
    .long 5b, 0
    .popsection
    .pushsection __rseq_cs_ptr_array, "awR"
    .balign 8
    .long 3b, 0
    .popsection
    .pushsection __rseq_exit_point_array, "awR"
    .balign 8
    .long 2b, 0
    .long 21b, 0
    .long 2b, 0
    .long 22b, 0
    .popsection
7:
