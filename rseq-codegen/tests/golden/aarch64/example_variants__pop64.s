# rseq sequence `pop64` for aarch64 (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   base0        `bufs`: address of slot 0
#   stride0      `bufs`: slot stride
#   len0         `bufs`: slot count
#   e0           `offset_of!(Buf64, len)` (evaluated before the section)
#   p_dst        parameter `dst`
#   e2           `offset_of!(Buf64, items)` (evaluated before the section)
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
# registers: 14 (limit 28), options(nostack)
    adrp {s0}, 3f                                   # arm: rseq_cs = &descriptor
    add {s0}, {s0}, :lo12:3f
    str {s0}, [{area}, #8]
2:                                                  # start
    ldr {s0:w}, [{area}, #4]                        # read cpu_id
    cmp {s0}, {len0}                                # let b = bufs.current()
    b.hs 20f
    madd {s0}, {s0}, {stride0}, {base0}
    ldr {s1}, [{s0}, {e0}]                          # let n = load::<usize>(b + offset_of!(Buf64, len))
    cbz {s1}, 21f                                   # if n == 0 { return false; }
    mov {s2}, {s1}                                  # memcpy(dst, b + offset_of!(Buf64, items) + ((n - 1) << 6), 64)
    sub {s2}, {s2}, #1
    lsl {s2}, {s2}, #6
    mov {s3}, {s0}
    add {s3}, {s3}, {e2}
    ldr {s4}, [{s3}, {s2}]
    str {s4}, [{p_dst}]
    add {s5}, {s3}, {s2}
    ldr {s4}, [{s5}, #8]
    str {s4}, [{p_dst}, #8]
    add {s5}, {s3}, {s2}
    ldr {s4}, [{s5}, #16]
    str {s4}, [{p_dst}, #16]
    add {s5}, {s3}, {s2}
    ldr {s4}, [{s5}, #24]
    str {s4}, [{p_dst}, #24]
    add {s5}, {s3}, {s2}
    ldr {s4}, [{s5}, #32]
    str {s4}, [{p_dst}, #32]
    add {s5}, {s3}, {s2}
    ldr {s4}, [{s5}, #40]
    str {s4}, [{p_dst}, #40]
    add {s5}, {s3}, {s2}
    ldr {s4}, [{s5}, #48]
    str {s4}, [{p_dst}, #48]
    add {s2}, {s3}, {s2}
    ldr {s4}, [{s2}, #56]
    str {s4}, [{p_dst}, #56]
    sub {s1}, {s1}, #1                              # commit store_release(b + offset_of!(Buf64, len), n - 1)
    add {s0}, {s0}, {e0}
    stlr {s1}, [{s0}]
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
21:                                                 # exit: if n == 0 { return false; }
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
