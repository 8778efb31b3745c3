# rseq sequence `copy_in` for arm: not emitted
# error: too many live values for arm: the section needs 14 registers but 11 are available
