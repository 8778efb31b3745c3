# rseq sequence `push16` for arm: not emitted
# error: too many live values for arm: the section needs 15 registers but 11 are available
