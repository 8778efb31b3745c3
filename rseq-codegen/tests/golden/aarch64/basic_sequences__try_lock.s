# rseq sequence `try_lock` for aarch64 (index: cpu_id)
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
# registers: 7 (limit 28), options(nostack)
    adrp {s0}, 3f                                   # arm: rseq_cs = &descriptor
    add {s0}, {s0}, :lo12:3f
    str {s0}, [{area}, #8]
2:                                                  # start
    ldr {s0:w}, [{area}, #4]                        # read cpu_id
    cmp {s0}, {len0}                                # let lock = locks.current()
    b.hs 20f
    madd {s0}, {s0}, {stride0}, {base0}
    ldr {s1}, [{s0}]                                # let held = load(lock)
    cbnz {s1}, 21f                                  # if held != 0 { return false; }
    mov {s1}, #1                                    # commit store(lock, 1)
    str {s1}, [{s0}]
4:                                                  # post-commit
    mov {status}, #0
6:                                                  # end
    b 7f                                            # abort (signature before the label)
    .inst 0xd428bc00
5:
    mov {status}, #1
    b 6b
20:                                                 # exit: index out of range for `locks`
    mov {status}, #2
    b 6b
21:                                                 # exit: if held != 0 { return false; }
    mov {status}, #3
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
