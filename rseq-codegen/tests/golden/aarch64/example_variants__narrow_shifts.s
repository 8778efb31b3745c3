# rseq sequence `narrow_shifts` for aarch64 (index: cpu_id)
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
#   s3           scratch
# registers: 12 (limit 28), options(nostack)
    adrp {s0}, 3f                                   # arm: rseq_cs = &descriptor
    add {s0}, {s0}, :lo12:3f
    str {s0}, [{area}, #8]
2:                                                  # start
    ldr {s0:w}, [{area}, #4]                        # read cpu_id
    cmp {s0}, {len0}                                # let c = cells.current()
    b.hs 20f
    madd {s0}, {s0}, {stride0}, {base0}
    ldr {s1:w}, [{s0}]                              # let v = load(c)
    mov {s2}, {s1}                                  # let a = (v << k) ^ 0x55
    and {s3}, {p_k}, #31
    lsl {s2}, {s2}, {s3}
    mov {s2:w}, {s2:w}
    mov {s3}, #85
    eor {s2}, {s2}, {s3}
    and {s3}, {p_k}, #31                            # let b = (a >> k) | v
    lsr {s2}, {s2}, {s3}
    orr {s2}, {s2}, {s1}
    mov {s1}, {p_h}                                 # let t = (h << s) >> s
    and {s3}, {p_s}, #15
    lsl {s1}, {s1}, {s3}
    sxth {s1}, {s1:w}
    and {s3}, {p_s}, #15
    asr {s1}, {s1}, {s3}
    cmp {s1}, #0                                    # if t < 0 { return t >> 3; }
    b.lt 21f
    cbz {s2}, 22f                                   # if b == 0 { return t; }
    mov {s3}, #65520                                # commit store(c, (b & 0xfff0) - 7)
    and {s2}, {s2}, {s3}
    sub {s2}, {s2}, #7
    mov {s2:w}, {s2:w}
    str {s2:w}, [{s0}]
4:                                                  # post-commit
    mov {status}, #0
6:                                                  # end
    b 7f                                            # abort (signature before the label)
    .inst 0xd428bc00
5:
    mov {status}, #1
    b 6b
20:                                                 # exit: index out of range for `cells`
    mov {status}, #2
    b 6b
21:                                                 # exit: if t < 0 { return t >> 3; }
    mov {status}, #3
    b 6b
22:                                                 # exit: if b == 0 { return t; }
    mov {status}, #4
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
    .quad 20b
    .quad 2b
    .quad 21b
    .quad 2b
    .quad 22b
    .popsection
7:
