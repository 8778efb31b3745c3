# rseq sequence `pop64` for ppc64le (index: cpu_id)
# inputs (in(reg_nonzero), never modified):
#   area         the thread's rseq area
#   base0        `bufs`: address of slot 0
#   stride0      `bufs`: slot stride
#   len0         `bufs`: slot count
#   e0           `offset_of!(Buf64, len)` (evaluated before the section)
#   p_dst        parameter `dst`
#   e2           `offset_of!(Buf64, items)` (evaluated before the section)
# outputs (out(reg_nonzero)):
#   status       0 committed, 1 aborted
#                2 index out of range for `bufs`
#                3 `if n == 0 { return false; }`
#   s0           scratch; after the block: the index read
#   s1           scratch
#   s2           scratch
#   s3           scratch
#   s4           scratch
#   s5           scratch
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
    ldx {s1}, {s0}, {e0}                            # let n = load::<usize>(b + offset_of!(Buf64, len))
    cmpldi {s1}, 0                                  # if n == 0 { return false; }
    beq 22f
    mr {s2}, {s1}                                   # memcpy(dst, b + offset_of!(Buf64, items) + ((n - 1) << 6), 64)
    addi {s2}, {s2}, -1
    sldi {s2}, {s2}, 6
    mr {s3}, {s0}
    add {s3}, {s3}, {e2}
    ldx {s4}, {s3}, {s2}
    std {s4}, 0({p_dst})
    li {s5}, 8
    add {s5}, {s5}, {s2}
    ldx {s4}, {s3}, {s5}
    std {s4}, 8({p_dst})
    li {s5}, 16
    add {s5}, {s5}, {s2}
    ldx {s4}, {s3}, {s5}
    std {s4}, 16({p_dst})
    li {s5}, 24
    add {s5}, {s5}, {s2}
    ldx {s4}, {s3}, {s5}
    std {s4}, 24({p_dst})
    li {s5}, 32
    add {s5}, {s5}, {s2}
    ldx {s4}, {s3}, {s5}
    std {s4}, 32({p_dst})
    li {s5}, 40
    add {s5}, {s5}, {s2}
    ldx {s4}, {s3}, {s5}
    std {s4}, 40({p_dst})
    li {s5}, 48
    add {s5}, {s5}, {s2}
    ldx {s4}, {s3}, {s5}
    std {s4}, 48({p_dst})
    li {s5}, 56
    add {s5}, {s5}, {s2}
    ldx {s4}, {s3}, {s5}
    std {s4}, 56({p_dst})
    addi {s1}, {s1}, -1                             # commit store_release(b + offset_of!(Buf64, len), n - 1)
    lwsync
    stdx {s1}, {s0}, {e0}
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
22:                                                 # exit: if n == 0 { return false; }
    li {status}, 3
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
    .quad 2b
    .quad 22b
    .popsection
7:
