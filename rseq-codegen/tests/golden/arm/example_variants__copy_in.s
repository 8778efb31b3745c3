# rseq sequence `copy_in` for arm (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   spill        address of the spilled inputs (words loaded inside the section)
# spilled inputs (too few registers: words at `spill`, loaded where used):
#   [0] len0     `bufs`: slot count
#   [4] base0    `bufs`: address of slot 0
#   [8] stride0  `bufs`: slot stride
#   [12] e0      `offset_of!(Buf64, items)` (evaluated before the section)
#   [16] p_src   parameter `src`
#   [20] p_len   parameter `len`
#   [24] e1      `offset_of!(Buf64, len)` (evaluated before the section)
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `bufs`
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
    ldr {s1}, [{spill}, #12]                        # memcpy(b + offset_of!(Buf64, items), src, len)
    ldr {s2}, [{spill}, #16]
    ldr {s3}, [{spill}, #20]
    mov {s5}, {s2}
    add {s6}, {s0}, {s1}
22:
    cmp {s3}, #4
    blo 23f
    ldr {s4}, [{s5}], #4
    str {s4}, [{s6}], #4
    sub {s3}, {s3}, #4
    b 22b
23:
    tst {s3}, #2
    beq 24f
    ldrh {s4}, [{s5}], #2
    strh {s4}, [{s6}], #2
24:
    tst {s3}, #1
    beq 25f
    ldrb {s4}, [{s5}], #1
    strb {s4}, [{s6}], #1
25:
    ldr {s1}, [{spill}, #20]                        # commit store(b + offset_of!(Buf64, len), len)
    ldr {s2}, [{spill}, #24]
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
    .popsection
7:
