# rseq sequence `narrow_shifts` for arm (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   spill        address of the spilled inputs (words loaded inside the section)
# spilled inputs (too few registers: words at `spill`, loaded where used):
#   [0] len0     `cells`: slot count
#   [4] base0    `cells`: address of slot 0
#   [8] stride0  `cells`: slot stride
#   [12] p_k     parameter `k`
#   [16] p_h     parameter `h`
#   [20] p_s     parameter `s`
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `cells`
#                3 `if t < 0 { return t >> 3; }`
#                4 `if b == 0 { return t; }`
#   s0           scratch; after the block: the index read
#   s1           scratch; after the block: `t`
#   s2           scratch
#   s3           scratch
# registers: 7 (limit 11), options(nostack)
20:                                                 # arm: rseq_cs = &descriptor
    adr {s0}, 20b
    movw {s1}, #:lower16:(3f - 20b)
    movt {s1}, #:upper16:(3f - 20b)
    add {s1}, {s1}, {s0}
    str {s1}, [{area}, #8]
2:                                                  # start
    ldr {s0}, [{area}, #4]                          # read cpu_id
    ldr {s1}, [{spill}]                             # let c = cells.current()
    cmp {s0}, {s1}
    bhs 21f
    ldr {s1}, [{spill}, #4]
    ldr {s2}, [{spill}, #8]
    mla {s0}, {s0}, {s2}, {s1}
    ldr {s1}, [{s0}]                                # let v = load(c)
    ldr {s2}, [{spill}, #12]                        # let a = (v << k) ^ 0x55
    mov {s3}, {s1}
    and {s2}, {s2}, #31
    lsl {s3}, {s3}, {s2}
    eor {s3}, {s3}, #85
    ldr {s2}, [{spill}, #12]                        # let b = (a >> k) | v
    and {s2}, {s2}, #31
    lsr {s3}, {s3}, {s2}
    orr {s3}, {s3}, {s1}
    ldr {s1}, [{spill}, #16]                        # let t = (h << s) >> s
    ldr {s2}, [{spill}, #20]
    and {s2}, {s2}, #15
    lsl {s1}, {s1}, {s2}
    sxth {s1}, {s1}
    ldr {s2}, [{spill}, #20]
    and {s2}, {s2}, #15
    asr {s1}, {s1}, {s2}
    cmp {s1}, #0                                    # if t < 0 { return t >> 3; }
    blt 22f
    cmp {s3}, #0                                    # if b == 0 { return t; }
    beq 23f
    movw {s2}, #65520                               # commit store(c, (b & 0xfff0) - 7)
    and {s3}, {s3}, {s2}
    sub {s3}, {s3}, #7
    str {s3}, [{s0}]
4:                                                  # post-commit
    mov {status}, #0
6:                                                  # end
    b 7f                                            # abort (signature before the label)
    .balign 4
    .word 0xe7f5def3
5:
    mov {status}, #1
    b 6b
21:                                                 # exit: index out of range for `cells`
    mov {status}, #2
    b 6b
22:                                                 # exit: if t < 0 { return t >> 3; }
    mov {status}, #3
    b 6b
23:                                                 # exit: if b == 0 { return t; }
    mov {status}, #4
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
    .long 2b, 0
    .long 23b, 0
    .popsection
7:
