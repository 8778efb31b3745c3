# rseq sequence `try_lock` for ppc64le (index: cpu_id)
# inputs (in(reg_nonzero), never modified):
#   area         the thread's rseq area
#   base0        `locks`: address of slot 0
#   stride0      `locks`: slot stride
#   len0         `locks`: slot count
# outputs (out(reg_nonzero)):
#   status       0 committed, 1 aborted
#                2 index out of range for `locks`
#                3 `if held != 0 { return false; }`
#   s0           scratch; after the block: the index read
#   s1           scratch
#   lr           clobbered
#   cr0          clobbered
# registers: 9 (limit 27), options(nostack)
    bcl 20, 31, 20f                                 # arm: rseq_cs = &descriptor
20:
    mflr {s0}
    addis {s0}, {s0}, (3f - 20b)@ha
    addi {s0}, {s0}, (3f - 20b)@l
    std {s0}, 8({area})
2:                                                  # start
    lwz {s0}, 4({area})                             # read cpu_id
    cmpld {s0}, {len0}                              # let lock = locks.current()
    bge 21f
    mulld {s0}, {s0}, {stride0}
    add {s0}, {s0}, {base0}
    ld {s1}, 0({s0})                                # let held = load(lock)
    cmpldi {s1}, 0                                  # if held != 0 { return false; }
    bne 22f
    li {s1}, 1                                      # commit store(lock, 1)
    std {s1}, 0({s0})
4:                                                  # post-commit
    li {status}, 0
6:                                                  # end
    b 7f                                            # abort (signature before the label)
    .long 0x0fe5000b
5:
    li {status}, 1
    b 6b
21:                                                 # exit: index out of range for `locks`
    li {status}, 2
    b 6b
22:                                                 # exit: if held != 0 { return false; }
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
