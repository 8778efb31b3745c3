# rseq sequence `spin_trylock` for loongarch64 (index: cpu_id)
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
    la.pcrel {s0}, 3f                               # arm: rseq_cs = &descriptor
    st.d {s0}, {area}, 8
2:                                                  # start
    ld.wu {s0}, {area}, 4                           # read cpu_id
    bgeu {s0}, {len0}, 20f                          # let lock = locks.current()
    mul.d {s1}, {s0}, {stride0}
    add.d {s1}, {s1}, {base0}
    ld.d {s2}, {s1}, 0                              # let held = load(lock)
    bne {s2}, $zero, 21f                            # if held != 0 { return core::ptr::null_mut(); }
    ld.d {s2}, {s1}, 0                              # debug check: let held = load(lock)
    bne {s2}, $zero, 23f                            # debug check: if held != 0 { return core::ptr::null_mut(); }
    ld.wu {s2}, {area}, 4                           # debug check: cpu_id unchanged
    bne {s2}, {s0}, 22f
    li.d {s0}, 1                                    # commit store(lock, 1)
    st.d {s0}, {s1}, 0
4:                                                  # post-commit
    ori {status}, $zero, 0
6:                                                  # end
    b 7f                                            # abort (signature before the label)
    .word 0x002a0010
5:
    ori {status}, $zero, 1
    b 6b
20:                                                 # exit: index out of range for `locks`
    ori {status}, $zero, 2
    b 6b
21:                                                 # exit: if held != 0 { return core::ptr::null_mut(); }
    ori {status}, $zero, 3
    b 6b
22:                                                 # debug check failed: cpu_id changed
    ori {status}, $zero, 4
    b 6b
23:                                                 # debug check failed: if held != 0 { return core::ptr::null_mut(); }
    ori {status}, $zero, 5
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
    .quad 20b
    .quad 2b
    .quad 21b
    .quad 2b
    .quad 22b
    .quad 2b
    .quad 23b
    .popsection
7:
