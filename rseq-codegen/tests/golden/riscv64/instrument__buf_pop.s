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
#                5 debug check failed: cpu_id changed
#                6 debug check failed: `if n == 0 { return None; }`
#                7 debug check failed: `if item == 0 { return None; }`
#   s0           scratch; after the block: the index read
#   s1           scratch
#   s2           scratch
#   s3           scratch; after the block: `item`
#   s4           scratch
#   s5           scratch
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
    beq {s2}, zero, 21f                             # if n == 0 { return None; }
    mv {s3}, {s2}                                   # let item = load::<usize>(b + offset_of!(CpuBuf, slots) + ((n - 1) << 3))
    addi {s3}, {s3}, -1
    slli {s3}, {s3}, 3
    mv {s4}, {s1}
    add {s4}, {s4}, {e2}
    add {s3}, {s4}, {s3}
    ld {s3}, 0({s3})
    beq {s3}, zero, 22f                             # if item == 0 { return None; }
    add {s4}, {s1}, {e0}                            # debug check: let n = load::<usize>(b + offset_of!(CpuBuf, len))
    ld {s4}, 0({s4})
    beq {s4}, zero, 24f                             # debug check: if n == 0 { return None; }
    addi {s4}, {s4}, -1                             # debug check: let item = load::<usize>(b + offset_of!(CpuBuf, slots) + ((n - 1) << 3))
    slli {s4}, {s4}, 3
    mv {s5}, {s1}
    add {s5}, {s5}, {e2}
    add {s4}, {s5}, {s4}
    ld {s4}, 0({s4})
    beq {s4}, zero, 25f                             # debug check: if item == 0 { return None; }
    addi {s2}, {s2}, -1                             # commit store(b + offset_of!(CpuBuf, len), n - 1)
    lwu {s4}, 4({area})                             # debug check: cpu_id unchanged
    bne {s4}, {s0}, 23f
    add {s0}, {s1}, {e0}                            # commit store(b + offset_of!(CpuBuf, len), n - 1)
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
21:                                                 # exit: if n == 0 { return None; }
    li {status}, 3
    j 6b
22:                                                 # exit: if item == 0 { return None; }
    li {status}, 4
    j 6b
23:                                                 # debug check failed: cpu_id changed
    li {status}, 5
    j 6b
24:                                                 # debug check failed: if n == 0 { return None; }
    li {status}, 6
    j 6b
25:                                                 # debug check failed: if item == 0 { return None; }
    li {status}, 7
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
    .quad 2b
    .quad 24b
    .quad 2b
    .quad 25b
    .popsection
7:
