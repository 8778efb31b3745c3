# rseq sequence `spin_trylock` for riscv64 (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   base0        `locks`: address of slot 0
#   stride0      `locks`: slot stride
#   len0         `locks`: slot count
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `locks`
#                3 `if held != 0 { return core::ptr::null_mut(); }`
#                4 debug check failed: cpu_id changed
#                5 debug check failed: `if held != 0 { return core::ptr::null_mut(); }`
#   s0           scratch; after the block: the index read
#   s1           scratch; after the block: `lock`
#   s2           scratch
# registers: 8 (limit 26), options(nostack)
    lla {s0}, 3f                                    # arm: rseq_cs = &descriptor
    sd {s0}, 8({area})
2:                                                  # start
    lwu {s0}, 4({area})                             # read cpu_id
    bgeu {s0}, {len0}, 20f                          # let lock = locks.current()
    mul {s1}, {s0}, {stride0}
    add {s1}, {s1}, {base0}
    ld {s2}, 0({s1})                                # let held = load(lock)
    bne {s2}, zero, 21f                             # if held != 0 { return core::ptr::null_mut(); }
    ld {s2}, 0({s1})                                # debug check: let held = load(lock)
    bne {s2}, zero, 23f                             # debug check: if held != 0 { return core::ptr::null_mut(); }
    lwu {s2}, 4({area})                             # debug check: cpu_id unchanged
    bne {s2}, {s0}, 22f
    li {s0}, 1                                      # commit store(lock, 1)
    sd {s0}, 0({s1})
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
21:                                                 # exit: if held != 0 { return core::ptr::null_mut(); }
    li {status}, 3
    j 6b
22:                                                 # debug check failed: cpu_id changed
    li {status}, 4
    j 6b
23:                                                 # debug check failed: if held != 0 { return core::ptr::null_mut(); }
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
