# rseq sequence `push16` for riscv64 (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   base0        `bufs`: address of slot 0
#   stride0      `bufs`: slot stride
#   len0         `bufs`: slot count
#   e0           `offset_of!(Buf16, len)` (evaluated before the section)
#   e1           `CAP` (evaluated before the section)
#   e2           `offset_of!(Buf16, items)` (evaluated before the section)
#   p_src        parameter `src`
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `bufs`
#                3 `if n >= CAP { return false; }`
#   s0           scratch; after the block: the index read
#   s1           scratch
#   s2           scratch
#   s3           scratch
#   s4           scratch
#   s5           scratch
# registers: 15 (limit 26), options(nostack)
    lla {s0}, 3f                                    # arm: rseq_cs = &descriptor
    sd {s0}, 8({area})
2:                                                  # start
    lwu {s0}, 4({area})                             # read cpu_id
    bgeu {s0}, {len0}, 20f                          # let b = bufs.current()
    mul {s0}, {s0}, {stride0}
    add {s0}, {s0}, {base0}
    add {s1}, {s0}, {e0}                            # let n = load::<usize>(b + offset_of!(Buf16, len))
    ld {s1}, 0({s1})
    bgeu {s1}, {e1}, 21f                            # if n >= CAP { return false; }
    mv {s2}, {s1}                                   # memcpy(b + offset_of!(Buf16, items) + (n << 4), src, 16)
    slli {s2}, {s2}, 4
    mv {s3}, {s0}
    add {s3}, {s3}, {e2}
    ld {s4}, 0({p_src})
    add {s5}, {s3}, {s2}
    sd {s4}, 0({s5})
    ld {s4}, 8({p_src})
    add {s2}, {s3}, {s2}
    sd {s4}, 8({s2})
    addi {s1}, {s1}, 1                              # commit store(b + offset_of!(Buf16, len), n + 1)
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
21:                                                 # exit: if n >= CAP { return false; }
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
