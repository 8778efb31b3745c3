# rseq sequence `try_lock` for riscv64 (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   base0        `locks`: address of slot 0
#   stride0      `locks`: slot stride
#   len0         `locks`: slot count
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `locks`
#                3 `if held != 0 { return false; }`
#   s0           scratch; after the block: the index read
#   s1           scratch
# registers: 7 (limit 26), options(nostack)
    lla {s0}, 3f                                    # arm: rseq_cs = &descriptor
    sd {s0}, 8({area})
2:                                                  # start
    lwu {s0}, 4({area})                             # read cpu_id
    bgeu {s0}, {len0}, 20f                          # let lock = locks.current()
    mul {s0}, {s0}, {stride0}
    add {s0}, {s0}, {base0}
    ld {s1}, 0({s0})                                # let held = load(lock)
    bne {s1}, zero, 21f                             # if held != 0 { return false; }
    li {s1}, 1                                      # commit store(lock, 1)
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
20:                                                 # exit: index out of range for `locks`
    li {status}, 2
    j 6b
21:                                                 # exit: if held != 0 { return false; }
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
