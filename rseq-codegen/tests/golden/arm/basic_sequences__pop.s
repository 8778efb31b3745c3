# rseq sequence `pop` for arm (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   base0        `heads`: address of slot 0
#   stride0      `heads`: slot stride
#   len0         `heads`: slot count
#   e1           `offset_of!(Node, next)` (evaluated before the section)
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `heads`
#                3 `if top == 0 { return None; }`
#   s0           scratch; after the block: the index read
#   s1           scratch; after the block: `top`
#   s2           scratch
# registers: 9 (limit 11), options(nostack)
20:                                                 # arm: rseq_cs = &descriptor
    adr {s0}, 20b
    movw {s1}, #:lower16:(3f - 20b)
    movt {s1}, #:upper16:(3f - 20b)
    add {s1}, {s1}, {s0}
    str {s1}, [{area}, #8]
2:                                                  # start
    ldr {s0}, [{area}, #4]                          # read cpu_id
    cmp {s0}, {len0}                                # let head = heads.current()
    bhs 21f
    mla {s0}, {s0}, {stride0}, {base0}
    ldr {s1}, [{s0}]                                # let top = load(head)
    cmp {s1}, #0                                    # if top == 0 { return None; }
    beq 22f
    ldr {s2}, [{s1}, {e1}]                          # let next = load::<*mut Node>(top + offset_of!(Node, next))
    str {s2}, [{s0}]                                # commit store(head, next)
4:                                                  # post-commit
    mov {status}, #0
6:                                                  # end
    b 7f                                            # abort (signature before the label)
    .balign 4
    .word 0xe7f5def3
5:
    mov {status}, #1
    b 6b
21:                                                 # exit: index out of range for `heads`
    mov {status}, #2
    b 6b
22:                                                 # exit: if top == 0 { return None; }
    mov {status}, #3
    b 6b
    .pushsection __rseq_cs, "aw"                    # descriptor
    .balign 32
3:
    .long 0, 0
    .long 2b, 0
    .long 4b - 2b, 0
    .long 5b, 0
    .popsection
    .pushsection __rseq_cs_ptr_array, "awR"
    .balign 8
    .long 3b, 0
    .popsection
    .pushsection __rseq_exit_point_array, "awR"
    .balign 8
    .long 2b, 0
    .long 21b, 0
    .long 2b, 0
    .long 22b, 0
    .popsection
7:
