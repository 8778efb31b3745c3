# rseq sequence `copy_in` for ppc64le (index: cpu_id)
# inputs (in(reg_nonzero), never modified):
#   area         the thread's rseq area
#   base0        `bufs`: address of slot 0
#   stride0      `bufs`: slot stride
#   len0         `bufs`: slot count
#   e0           `offset_of!(Buf64, items)` (evaluated before the section)
#   p_src        parameter `src`
#   p_len        parameter `len`
#   e1           `offset_of!(Buf64, len)` (evaluated before the section)
# outputs (out(reg_nonzero)):
#   status       0 committed, 1 aborted
#                2 index out of range for `bufs`
#   s0           scratch; after the block: the index read
#   s1           scratch
#   s2           scratch
#   s3           scratch
#   s4           scratch
#   lr           clobbered
#   cr0          clobbered
# registers: 16 (limit 27), options(nostack)
    bcl 20, 31, 20f                                 # arm: rseq_cs = &descriptor
20:
    mflr {s0}
    addis {s0}, {s0}, (3f - 20b)@ha
    addi {s0}, {s0}, (3f - 20b)@l
    std {s0}, 8({area})
2:                                                  # start
    lwz {s0}, 4({area})                             # read cpu_id
    cmpld {s0}, {len0}                              # let b = bufs.current()
    bge 21f
    mulld {s0}, {s0}, {stride0}
    add {s0}, {s0}, {base0}
    mr {s2}, {p_src}                                # memcpy(b + offset_of!(Buf64, items), src, len)
    add {s3}, {s0}, {e0}
    mr {s4}, {p_len}
22:
    cmpldi {s4}, 8
    blt 23f
    ld {s1}, 0({s2})
    std {s1}, 0({s3})
    addi {s2}, {s2}, 8
    addi {s3}, {s3}, 8
    addi {s4}, {s4}, -8
    b 22b
23:
    andi. {s1}, {s4}, 4
    beq 24f
    lwz {s1}, 0({s2})
    stw {s1}, 0({s3})
    addi {s2}, {s2}, 4
    addi {s3}, {s3}, 4
24:
    andi. {s1}, {s4}, 2
    beq 25f
    lhz {s1}, 0({s2})
    sth {s1}, 0({s3})
    addi {s2}, {s2}, 2
    addi {s3}, {s3}, 2
25:
    andi. {s1}, {s4}, 1
    beq 26f
    lbz {s1}, 0({s2})
    stb {s1}, 0({s3})
26:
    stdx {p_len}, {s0}, {e1}                        # commit store(b + offset_of!(Buf64, len), len)
4:                                                  # post-commit
    li {status}, 0
6:                                                  # end
    b 7f                                            # abort (signature before the label)
    .long 0x0fe5000b
5:
    li {status}, 1
    b 6b
21:                                                 # exit: index out of range for `bufs`
    li {status}, 2
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
    .quad 21b
    .popsection
7:
