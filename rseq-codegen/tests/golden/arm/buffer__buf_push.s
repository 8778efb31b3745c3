# rseq sequence `buf_push` for arm: not emitted
# error: too many live values for arm: the section needs 13 registers but 11 are available
