# rseq sequence `try_lock` for loongarch64 (index: cpu_id)
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
    la.pcrel {s0}, 3f                               # arm: rseq_cs = &descriptor
    st.d {s0}, {area}, 8
2:                                                  # start
    ld.wu {s0}, {area}, 4                           # read cpu_id
    bgeu {s0}, {len0}, 20f                          # let lock = locks.current()
    mul.d {s0}, {s0}, {stride0}
    add.d {s0}, {s0}, {base0}
    ld.d {s1}, {s0}, 0                              # let held = load(lock)
    bne {s1}, $zero, 21f                            # if held != 0 { return false; }
    li.d {s1}, 1                                    # commit store(lock, 1)
    st.d {s1}, {s0}, 0
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
21:                                                 # exit: if held != 0 { return false; }
    ori {status}, $zero, 3
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
    .popsection
7:
