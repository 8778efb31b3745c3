# rseq sequence `buf_push` for arm: not emitted
# error: too many live values for arm: the section needs 12 registers but 11 are available
