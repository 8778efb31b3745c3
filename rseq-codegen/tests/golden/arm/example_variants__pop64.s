# rseq sequence `pop64` for arm (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   spill        address of the spilled inputs (words loaded inside the section)
# spilled inputs (too few registers: words at `spill`, loaded where used):
#   [0] len0     `bufs`: slot count
#   [4] base0    `bufs`: address of slot 0
#   [8] stride0  `bufs`: slot stride
#   [12] e0      `offset_of!(Buf64, len)` (evaluated before the section)
#   [16] p_dst   parameter `dst`
#   [20] e2      `offset_of!(Buf64, items)` (evaluated before the section)
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `bufs`
#                3 `if n == 0 { return false; }`
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
    ldr {s1}, [{spill}, #12]                        # let n = load::<usize>(b + offset_of!(Buf64, len))
    ldr {s1}, [{s0}, {s1}]
    cmp {s1}, #0                                    # if n == 0 { return false; }
    beq 22f
    ldr {s2}, [{spill}, #16]                        # memcpy(dst, b + offset_of!(Buf64, items) + ((n - 1) << 6), 64)
    mov {s3}, {s1}
    sub {s3}, {s3}, #1
    lsl {s3}, {s3}, #6
    ldr {s4}, [{spill}, #20]
    mov {s5}, {s0}
    add {s5}, {s5}, {s4}
    ldr {s4}, [{s5}, {s3}]
    str {s4}, [{s2}]
    movw {s6}, #4
    add {s6}, {s6}, {s3}
    ldr {s4}, [{s5}, {s6}]
    str {s4}, [{s2}, #4]
    movw {s6}, #8
    add {s6}, {s6}, {s3}
    ldr {s4}, [{s5}, {s6}]
    str {s4}, [{s2}, #8]
    movw {s6}, #12
    add {s6}, {s6}, {s3}
    ldr {s4}, [{s5}, {s6}]
    str {s4}, [{s2}, #12]
    movw {s6}, #16
    add {s6}, {s6}, {s3}
    ldr {s4}, [{s5}, {s6}]
    str {s4}, [{s2}, #16]
    movw {s6}, #20
    add {s6}, {s6}, {s3}
    ldr {s4}, [{s5}, {s6}]
    str {s4}, [{s2}, #20]
    movw {s6}, #24
    add {s6}, {s6}, {s3}
    ldr {s4}, [{s5}, {s6}]
    str {s4}, [{s2}, #24]
    movw {s6}, #28
    add {s6}, {s6}, {s3}
    ldr {s4}, [{s5}, {s6}]
    str {s4}, [{s2}, #28]
    movw {s6}, #32
    add {s6}, {s6}, {s3}
    ldr {s4}, [{s5}, {s6}]
    str {s4}, [{s2}, #32]
    movw {s6}, #36
    add {s6}, {s6}, {s3}
    ldr {s4}, [{s5}, {s6}]
    str {s4}, [{s2}, #36]
    movw {s6}, #40
    add {s6}, {s6}, {s3}
    ldr {s4}, [{s5}, {s6}]
    str {s4}, [{s2}, #40]
    movw {s6}, #44
    add {s6}, {s6}, {s3}
    ldr {s4}, [{s5}, {s6}]
    str {s4}, [{s2}, #44]
    movw {s6}, #48
    add {s6}, {s6}, {s3}
    ldr {s4}, [{s5}, {s6}]
    str {s4}, [{s2}, #48]
    movw {s6}, #52
    add {s6}, {s6}, {s3}
    ldr {s4}, [{s5}, {s6}]
    str {s4}, [{s2}, #52]
    movw {s6}, #56
    add {s6}, {s6}, {s3}
    ldr {s4}, [{s5}, {s6}]
    str {s4}, [{s2}, #56]
    movw {s6}, #60
    add {s6}, {s6}, {s3}
    ldr {s4}, [{s5}, {s6}]
    str {s4}, [{s2}, #60]
    sub {s1}, {s1}, #1                              # commit store_release(b + offset_of!(Buf64, len), n - 1)
    ldr {s2}, [{spill}, #12]
    dmb ish
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
22:                                                 # exit: if n == 0 { return false; }
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
