# rseq sequence `narrow` for aarch64 (index: cpu_id)
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
# registers: 9 (limit 28), options(nostack)
    adrp {s0}, 3f                                   # arm: rseq_cs = &descriptor
    add {s0}, {s0}, :lo12:3f
    str {s0}, [{area}, #8]
2:                                                  # start
    ldr {s0:w}, [{area}, #4]                        # read cpu_id
    cmp {s0}, {len0}                                # let c = cells.current()
    b.hs 20f
    madd {s0}, {s0}, {stride0}, {base0}
    ldrsb {s1}, [{s0}]                              # let v = load(c)
    mov {s2}, {s1}                                  # let w = (v as i64) >> k
    asr {s2}, {s2}, {p_k}
    cmn {s1}, #3                                    # if v < -3 { return w; }
    b.lt 21f
    mov {s2}, {s1}                                  # commit store(c, v - 5)
    sub {s2}, {s2}, #5
    sxtb {s2}, {s2:w}
    strb {s2:w}, [{s0}]
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
21:                                                 # exit: if v < -3 { return w; }
    mov {status}, #3
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
    .popsection
7:
