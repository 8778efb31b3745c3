# rseq sequence `spin_trylock` for ppc64le (index: cpu_id)
# inputs (in(reg_nonzero), never modified):
#   area         the thread's rseq area
#   base0        `locks`: address of slot 0
#   stride0      `locks`: slot stride
#   len0         `locks`: slot count
# outputs (out(reg_nonzero)):
#   status       0 committed, 1 aborted
#                2 index out of range for `locks`
#                3 `if held != 0 { return core::ptr::null_mut(); }`
#                4 debug check failed: cpu_id changed
#                5 debug check failed: `if held != 0 { return core::ptr::null_mut(); }`
#   s0           scratch; after the block: the index read
#   s1           scratch; after the block: `lock`
#   s2           scratch
#   lr           clobbered
#   cr0          clobbered
# registers: 10 (limit 27), options(nostack)
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
    mulld {s1}, {s0}, {stride0}
    add {s1}, {s1}, {base0}
    ld {s2}, 0({s1})                                # let held = load(lock)
    cmpldi {s2}, 0                                  # if held != 0 { return core::ptr::null_mut(); }
    bne 22f
    ld {s2}, 0({s1})                                # debug check: let held = load(lock)
    cmpldi {s2}, 0                                  # debug check: if held != 0 { return core::ptr::null_mut(); }
    bne 24f
    lwz {s2}, 4({area})                             # debug check: cpu_id unchanged
    cmpld {s2}, {s0}
    bne 23f
    li {s0}, 1                                      # commit store(lock, 1)
    std {s0}, 0({s1})
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
22:                                                 # exit: if held != 0 { return core::ptr::null_mut(); }
    li {status}, 3
    b 6b
23:                                                 # debug check failed: cpu_id changed
    li {status}, 4
    b 6b
24:                                                 # debug check failed: if held != 0 { return core::ptr::null_mut(); }
    li {status}, 5
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
    .quad 2b
    .quad 23b
    .quad 2b
    .quad 24b
    .popsection
7:
