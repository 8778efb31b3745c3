# rseq sequence `copy_in` for aarch64 (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   base0        `bufs`: address of slot 0
#   stride0      `bufs`: slot stride
#   len0         `bufs`: slot count
#   e0           `offset_of!(Buf64, items)` (evaluated before the section)
#   p_src        parameter `src`
#   p_len        parameter `len`
#   e1           `offset_of!(Buf64, len)` (evaluated before the section)
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `bufs`
#   s0           scratch; after the block: the index read
#   s1           scratch
#   s2           scratch
#   s3           scratch
#   s4           scratch
# registers: 14 (limit 28), options(nostack)
    adrp {s0}, 3f                                   # arm: rseq_cs = &descriptor
    add {s0}, {s0}, :lo12:3f
    str {s0}, [{area}, #8]
2:                                                  # start
    ldr {s0:w}, [{area}, #4]                        # read cpu_id
    cmp {s0}, {len0}                                # let b = bufs.current()
    b.hs 20f
    madd {s0}, {s0}, {stride0}, {base0}
    mov {s2}, {p_src}                               # memcpy(b + offset_of!(Buf64, items), src, len)
    add {s3}, {s0}, {e0}
    mov {s4}, {p_len}
21:
    cmp {s4}, #8
    b.lo 22f
    ldr {s1}, [{s2}], #8
    str {s1}, [{s3}], #8
    sub {s4}, {s4}, #8
    b 21b
22:
    tbz {s4}, #2, 23f
    ldr {s1:w}, [{s2}], #4
    str {s1:w}, [{s3}], #4
23:
    tbz {s4}, #1, 24f
    ldrh {s1:w}, [{s2}], #2
    strh {s1:w}, [{s3}], #2
24:
    tbz {s4}, #0, 25f
    ldrb {s1:w}, [{s2}], #1
    strb {s1:w}, [{s3}], #1
25:
    str {p_len}, [{s0}, {e1}]                       # commit store(b + offset_of!(Buf64, len), len)
4:                                                  # post-commit
    mov {status}, #0
6:                                                  # end
    b 7f                                            # abort (signature before the label)
    .inst 0xd428bc00
5:
    mov {status}, #1
    b 6b
20:                                                 # exit: index out of range for `bufs`
    mov {status}, #2
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
    .popsection
7:
