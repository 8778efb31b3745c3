# rseq sequence `buf_push` for riscv64 (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   base0        `bufs`: address of slot 0
#   stride0      `bufs`: slot stride
#   len0         `bufs`: slot count
#   e0           `offset_of!(CpuBuf, len)` (evaluated before the section)
#   p_item       parameter `item`
#   e2           `offset_of!(CpuBuf, slots)` (evaluated before the section)
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `bufs`
#                3 `if n >= 64 { return false; }`
#                4 debug check failed: cpu_id changed
#                5 debug check failed: `if n >= 64 { return false; }`
#   s0           scratch; after the block: the index read
#   s1           scratch
#   s2           scratch
#   s3           scratch
#   s4           scratch
# registers: 13 (limit 26), options(nostack)
    lla {s0}, 3f                                    # arm: rseq_cs = &descriptor
    sd {s0}, 8({area})
2:                                                  # start
    lwu {s0}, 4({area})                             # read cpu_id
    bgeu {s0}, {len0}, 20f                          # let b = bufs.current()
    mul {s1}, {s0}, {stride0}
    add {s1}, {s1}, {base0}
    add {s2}, {s1}, {e0}                            # let n = load::<usize>(b + offset_of!(CpuBuf, len))
    ld {s2}, 0({s2})
    li {s3}, 64                                     # if n >= 64 { return false; }
    bgeu {s2}, {s3}, 21f
    add {s3}, {s1}, {e0}                            # debug check: let n = load::<usize>(b + offset_of!(CpuBuf, len))
    ld {s3}, 0({s3})
    li {s4}, 64                                     # debug check: if n >= 64 { return false; }
    bgeu {s3}, {s4}, 23f
    mv {s3}, {s2}                                   # store(b + offset_of!(CpuBuf, slots) + (n << 3), item)
    slli {s3}, {s3}, 3
    mv {s4}, {s1}
    add {s4}, {s4}, {e2}
    add {s3}, {s4}, {s3}
    sd {p_item}, 0({s3})
    addi {s2}, {s2}, 1                              # commit store(b + offset_of!(CpuBuf, len), n + 1)
    lwu {s3}, 4({area})                             # debug check: cpu_id unchanged
    bne {s3}, {s0}, 22f
    add {s0}, {s1}, {e0}                            # commit store(b + offset_of!(CpuBuf, len), n + 1)
    sd {s2}, 0({s0})
4:                                                  # post-commit
    li {status}, 0
6:                                                  # end
    j 7f                                            # abort (signature before the label)
    .balign 4
    .long 0xf1401073
5:
    li {status}, 1
    j 6b
20:                                                 # exit: index out of range for `bufs`
    li {status}, 2
    j 6b
21:                                                 # exit: if n >= 64 { return false; }
    li {status}, 3
    j 6b
22:                                                 # debug check failed: cpu_id changed
    li {status}, 4
    j 6b
23:                                                 # debug check failed: if n >= 64 { return false; }
    li {status}, 5
    j 6b
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
    .quad 2b
    .quad 23b
    .popsection
7:
