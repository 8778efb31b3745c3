# rseq sequence `buf_pop` for arm (index: cpu_id)
# inputs (in(reg), never modified):
#   area         the thread's rseq area
#   spill        address of the spilled inputs (words loaded inside the section)
# spilled inputs (too few registers: words at `spill`, loaded where used):
#   [0] len0     `bufs`: slot count
#   [4] base0    `bufs`: address of slot 0
#   [8] stride0  `bufs`: slot stride
#   [12] e0      `offset_of!(CpuBuf, len)` (evaluated before the section)
#   [16] e2      `offset_of!(CpuBuf, slots)` (evaluated before the section)
# outputs (out(reg)):
#   status       0 committed, 1 aborted
#                2 index out of range for `bufs`
#                3 `if n == 0 { return None; }`
#                4 `if item == 0 { return None; }`
#                5 debug check failed: cpu_id changed
#                6 debug check failed: `if n == 0 { return None; }`
#                7 debug check failed: `if item == 0 { return None; }`
#   s0           scratch; after the block: the index read
#   s1           scratch
#   s2           scratch
#   s3           scratch; after the block: `item`
#   s4           scratch
#   s5           scratch
#   s6           scratch
# registers: 10 (limit 11), options(nostack)
20:                                                 # arm: rseq_cs = &descriptor
    adr {s0}, 20b
    movw {s1}, #:lower16:(3f - 20b)
    movt {s1}, #:upper16:(3f - 20b)
    add {s1}, {s1}, {s0}
    str {s1}, [{area}, #8]
2:                                                  # start
    ldr {s0}, [{area}, #4]                          # read cpu_id
    ldr {s1}, [{spill}]                             # let b = bufs.current()
    cmp {s0}, {s1}
    bhs 21f
    ldr {s1}, [{spill}, #4]
    ldr {s2}, [{spill}, #8]
    mla {s1}, {s0}, {s2}, {s1}
    ldr {s2}, [{spill}, #12]                        # let n = load::<usize>(b + offset_of!(CpuBuf, len))
    ldr {s2}, [{s1}, {s2}]
    cmp {s2}, #0                                    # if n == 0 { return None; }
    beq 22f
    mov {s3}, {s2}                                  # let item = load::<usize>(b + offset_of!(CpuBuf, slots) + ((n - 1) << 3))
    sub {s3}, {s3}, #1
    lsl {s3}, {s3}, #3
    ldr {s4}, [{spill}, #16]
    mov {s5}, {s1}
    add {s5}, {s5}, {s4}
    ldr {s3}, [{s5}, {s3}]
    cmp {s3}, #0                                    # if item == 0 { return None; }
    beq 23f
    ldr {s4}, [{spill}, #12]                        # debug check: let n = load::<usize>(b + offset_of!(CpuBuf, len))
    ldr {s4}, [{s1}, {s4}]
    cmp {s4}, #0                                    # debug check: if n == 0 { return None; }
    beq 25f
    sub {s4}, {s4}, #1                              # debug check: let item = load::<usize>(b + offset_of!(CpuBuf, slots) + ((n - 1) << 3))
    lsl {s4}, {s4}, #3
    ldr {s5}, [{spill}, #16]
    mov {s6}, {s1}
    add {s6}, {s6}, {s5}
    ldr {s4}, [{s6}, {s4}]
    cmp {s4}, #0                                    # debug check: if item == 0 { return None; }
    beq 26f
    sub {s2}, {s2}, #1                              # commit store(b + offset_of!(CpuBuf, len), n - 1)
    ldr {s4}, [{spill}, #12]
    ldr {s5}, [{area}, #4]                          # debug check: cpu_id unchanged
    cmp {s5}, {s0}
    bne 24f
    str {s2}, [{s1}, {s4}]                          # commit store(b + offset_of!(CpuBuf, len), n - 1)
4:                                                  # post-commit
    mov {status}, #0
6:                                                  # end
    b 7f                                            # abort (signature before the label)
    .balign 4
    .word 0xe7f5def3
5:
    mov {status}, #1
    b 6b
21:                                                 # exit: index out of range for `bufs`
    mov {status}, #2
    b 6b
22:                                                 # exit: if n == 0 { return None; }
    mov {status}, #3
    b 6b
23:                                                 # exit: if item == 0 { return None; }
    mov {status}, #4
    b 6b
24:                                                 # debug check failed: cpu_id changed
    mov {status}, #5
    b 6b
25:                                                 # debug check failed: if n == 0 { return None; }
    mov {status}, #6
    b 6b
26:                                                 # debug check failed: if item == 0 { return None; }
    mov {status}, #7
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
    .long 2b, 0
    .long 23b, 0
    .long 2b, 0
    .long 24b, 0
    .long 2b, 0
    .long 25b, 0
    .long 2b, 0
    .long 26b, 0
    .popsection
7:
