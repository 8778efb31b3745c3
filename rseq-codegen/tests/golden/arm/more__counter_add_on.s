# rseq sequence `counter_add_on` for arm: not emitted
# error: `u64` values are not supported on arm: its registers hold 32 bits (use `u32`, `usize` or narrower words there)
