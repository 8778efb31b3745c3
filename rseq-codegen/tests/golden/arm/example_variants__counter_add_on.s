# rseq sequence `counter_add_on` for arm: not emitted
# error: `u64` values are not supported on arm: its registers hold 32 bits and a section commits one register; use `usize`, `u32` or narrower words (for a 64-bit per-CPU count, `rseq_dsl::percpu::Counter` works on every target)
