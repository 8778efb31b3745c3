# rseq sequence `pop64` for riscv64 (index: cpu_id)
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
# registers: 14 (limit 26), options(nostack)
    lla {s0}, 3f                                    # arm: rseq_cs = &descriptor
    sd {s0}, 8({area})
2:                                                  # start
    lwu {s0}, 4({area})                             # read cpu_id
    bgeu {s0}, {len0}, 20f                          # let b = bufs.current()
    mul {s0}, {s0}, {stride0}
    add {s0}, {s0}, {base0}
    add {s1}, {s0}, {e0}                            # let n = load::<usize>(b + offset_of!(Buf64, len))
    ld {s1}, 0({s1})
    beq {s1}, zero, 21f                             # if n == 0 { return false; }
    mv {s2}, {s1}                                   # memcpy(dst, b + offset_of!(Buf64, items) + ((n - 1) << 6), 64)
    addi {s2}, {s2}, -1
    slli {s2}, {s2}, 6
    mv {s3}, {s0}
    add {s3}, {s3}, {e2}
    add {s4}, {s3}, {s2}
    ld {s4}, 0({s4})
    sd {s4}, 0({p_dst})
    add {s5}, {s3}, {s2}
    ld {s4}, 8({s5})
    sd {s4}, 8({p_dst})
    add {s5}, {s3}, {s2}
    ld {s4}, 16({s5})
    sd {s4}, 16({p_dst})
    add {s5}, {s3}, {s2}
    ld {s4}, 24({s5})
    sd {s4}, 24({p_dst})
    add {s5}, {s3}, {s2}
    ld {s4}, 32({s5})
    sd {s4}, 32({p_dst})
    add {s5}, {s3}, {s2}
    ld {s4}, 40({s5})
    sd {s4}, 40({p_dst})
    add {s5}, {s3}, {s2}
    ld {s4}, 48({s5})
    sd {s4}, 48({p_dst})
    add {s2}, {s3}, {s2}
    ld {s4}, 56({s2})
    sd {s4}, 56({p_dst})
    addi {s1}, {s1}, -1                             # commit store_release(b + offset_of!(Buf64, len), n - 1)
    fence rw, w
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
21:                                                 # exit: if n == 0 { return false; }
    li {status}, 3
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
    .popsection
7:
