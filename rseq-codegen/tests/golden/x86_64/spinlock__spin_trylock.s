# rseq sequence `spin_trylock` for x86_64 (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   base0        `locks`: address of slot 0
#   stride0      `locks`: slot stride
#   len0         `locks`: slot count
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `locks`
#                3 `if held != 0 { return core::ptr::null_mut(); }`
#   s0           scratch; after the block: `lock`, the index read
#   s1           scratch
# registers: 7 (limit 13), options(nostack)
    lea {s0}, [rip + 3f]                            # arm: rseq_cs = &descriptor
    mov qword ptr [{area} + 8], {s0}
2:                                                  # start
    mov {s0:e}, dword ptr [{area} + 4]              # read cpu_id
    cmp {s0}, {len0}                                # let lock = locks.current()
    jae 20f
    imul {s0}, {stride0}
    add {s0}, {base0}
    mov {s1}, qword ptr [{s0}]                      # let held = load_acquire(lock)
    test {s1}, {s1}                                 # if held != 0 { return core::ptr::null_mut(); }
    jne 21f
    mov qword ptr [{s0}], 1                         # commit store(lock, 1)
4:                                                  # post-commit
    xor {status:e}, {status:e}
6:                                                  # end
    .pushsection __rseq_failure, "ax"               # abort (signature before the label)
    .byte 0x0f, 0xb9, 0x3d
    .long 0x53053053
5:
    mov {status:e}, 1
    jmp 6b
20:                                                 # exit: index out of range for `locks`
    mov {status:e}, 2
    jmp 6b
21:                                                 # exit: if held != 0 { return core::ptr::null_mut(); }
    mov {status:e}, 3
    jmp 6b
    .popsection                                     # descriptor
    .pushsection __rseq_cs, "aw"
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
