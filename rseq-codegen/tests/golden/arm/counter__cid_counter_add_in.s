# rseq sequence `cid_counter_add_in` for arm: not emitted
# error: `u64` values are not supported on arm: its registers hold 32 bits (use `u32`, `usize` or narrower words there)
