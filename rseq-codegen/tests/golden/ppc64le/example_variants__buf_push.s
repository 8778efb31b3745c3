# rseq sequence `buf_push` for ppc64le (index: cpu_id)
# inputs (in(reg_nonzero), never modified):
#   area         the thread's rseq area
#   base0        `bufs`: address of slot 0
#   stride0      `bufs`: slot stride
#   len0         `bufs`: slot count
#   e0           `offset_of!(CpuBuf, len)` (evaluated before the section)
#   e1           `CAP` (evaluated before the section)
#   p_item       parameter `item`
#   e2           `offset_of!(CpuBuf, slots)` (evaluated before the section)
# outputs (out(reg_nonzero)):
#   status       0 committed, 1 aborted
#                2 index out of range for `bufs`
#                3 `if n >= CAP { return false; }`
#   s0           scratch; after the block: the index read
#   s1           scratch
#   s2           scratch
#   s3           scratch
#   lr           clobbered
#   cr0          clobbered
# registers: 15 (limit 27), options(nostack)
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
    ldx {s1}, {s0}, {e0}                            # let n = load::<usize>(b + offset_of!(CpuBuf, len))
    cmpld {s1}, {e1}                                # if n >= CAP { return false; }
    bge 22f
    mr {s2}, {s1}                                   # store(b + offset_of!(CpuBuf, slots) + (n << 3), item)
    sldi {s2}, {s2}, 3
    mr {s3}, {s0}
    add {s3}, {s3}, {e2}
    stdx {p_item}, {s3}, {s2}
    addi {s1}, {s1}, 1                              # commit store(b + offset_of!(CpuBuf, len), n + 1)
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
22:                                                 # exit: if n >= CAP { return false; }
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
