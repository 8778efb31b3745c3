# rseq sequence `buf_pop` for riscv64 (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   base0        `bufs`: address of slot 0
#   stride0      `bufs`: slot stride
#   len0         `bufs`: slot count
#   e0           `offset_of!(CpuBuf, len)` (evaluated before the section)
#   e2           `offset_of!(CpuBuf, slots)` (evaluated before the section)
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `bufs`
#                3 `if n == 0 { return None; }`
#                4 `if item == 0 { return None; }`
#   s0           scratch; after the block: the index read
#   s1           scratch
#   s2           scratch; after the block: `item`
#   s3           scratch
# registers: 11 (limit 26), options(nostack)
    lla {s0}, 3f                                    # arm: rseq_cs = &descriptor
    sd {s0}, 8({area})
2:                                                  # start
    lwu {s0}, 4({area})                             # read cpu_id
    bgeu {s0}, {len0}, 20f                          # let b = bufs.current()
    mul {s0}, {s0}, {stride0}
    add {s0}, {s0}, {base0}
    add {s1}, {s0}, {e0}                            # let n = load::<usize>(b + offset_of!(CpuBuf, len))
    ld {s1}, 0({s1})
    beq {s1}, zero, 21f                             # if n == 0 { return None; }
    mv {s2}, {s1}                                   # let item = load::<usize>(b + offset_of!(CpuBuf, slots) + ((n - 1) << 3))
    addi {s2}, {s2}, -1
    slli {s2}, {s2}, 3
    mv {s3}, {s0}
    add {s3}, {s3}, {e2}
    add {s2}, {s3}, {s2}
    ld {s2}, 0({s2})
    beq {s2}, zero, 22f                             # if item == 0 { return None; }
    addi {s1}, {s1}, -1                             # commit store(b + offset_of!(CpuBuf, len), n - 1)
    add {s0}, {s0}, {e0}
    sd {s1}, 0({s0})
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
21:                                                 # exit: if n == 0 { return None; }
    li {status}, 3
    j 6b
22:                                                 # exit: if item == 0 { return None; }
    li {status}, 4
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
    .popsection
7:
