# rseq sequence `copy_in` for x86_64 (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   base0        `bufs`: address of slot 0
#   stride0      `bufs`: slot stride
#   len0         `bufs`: slot count
#   e0           `offset_of!(Buf64, items)` (evaluated before the section)
#   p_src        parameter `src`
#   p_len        parameter `len`
#   e1           `offset_of!(Buf64, len)` (evaluated before the section)
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `bufs`
#   s0           scratch; after the block: the index read
#   s1           scratch
#   s2           scratch
#   s3           scratch
# registers: 11 (limit 13), options(nostack)
    lea {s0}, [rip + 3f]                            # arm: rseq_cs = &descriptor
    mov qword ptr [{area} + 8], {s0}
2:                                                  # start
    mov {s0:e}, dword ptr [{area} + 4]              # read cpu_id
    cmp {s0}, {len0}                                # let b = bufs.current()
    jae 20f
    imul {s0}, {stride0}
    add {s0}, {base0}
    lea {s1}, [{s0} + {e0}]                         # memcpy(b + offset_of!(Buf64, items), src, len)
    xor {s3:e}, {s3:e}
21:
    lea {s2}, [{s3} + 8]
    cmp {s2}, {p_len}
    ja 22f
    mov {s2}, qword ptr [{p_src} + {s3}]
    mov qword ptr [{s1} + {s3}], {s2}
    add {s3}, 8
    jmp 21b
22:
    test {p_len}, 4
    jz 23f
    mov {s2:e}, dword ptr [{p_src} + {s3}]
    mov dword ptr [{s1} + {s3}], {s2:e}
    add {s3}, 4
23:
    test {p_len}, 2
    jz 24f
    mov {s2:x}, word ptr [{p_src} + {s3}]
    mov word ptr [{s1} + {s3}], {s2:x}
    add {s3}, 2
24:
    test {p_len}, 1
    jz 25f
    mov {s2:l}, byte ptr [{p_src} + {s3}]
    mov byte ptr [{s1} + {s3}], {s2:l}
25:
    mov qword ptr [{s0} + {e1}], {p_len}            # commit store(b + offset_of!(Buf64, len), len)
4:                                                  # post-commit
    xor {status:e}, {status:e}
6:                                                  # end
    .pushsection __rseq_failure, "ax"               # abort (signature before the label)
    .byte 0x0f, 0xb9, 0x3d
    .long 0x53053053
5:
    mov {status:e}, 1
    jmp 6b
20:                                                 # exit: index out of range for `bufs`
    mov {status:e}, 2
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
    .popsection
