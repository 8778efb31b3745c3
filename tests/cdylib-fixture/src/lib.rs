//! A shared library with its own `rseq!` sequences and its own copy of the rseq-dsl runtime, for
//! `tests/unload.rs` (see `docs/UNLOADING.md`). Everything is exported as `extern "C"` so the test
//! reaches it through `dlsym` only.
//!
//! It deliberately avoids thread-locals with destructors and anything that would pin the library in
//! memory (glibc defers the unmapping of a library that registered a TLS destructor until every
//! thread that has one exits), so `dlclose` really unmaps it.

use rseq_dsl::{rseq, PerCpu};

rseq! {
    /// Adds `n` to the calling CPU's counter.
    fn lib_add(c: &PerCpu<u64>, n: u64) {
        let slot = c.current();
        let v = load(slot);
        commit store(slot, v + n);
    }
}

/// Runs `n` increments on a fresh `PerCpu` and returns the sum of all slots (must be `n`).
#[no_mangle]
pub extern "C" fn fixture_add_many(n: u64) -> u64 {
    let c = PerCpu::new(0u64);
    for _ in 0..n {
        lib_add(&c, 1);
    }
    c.iter().sum()
}

/// Whether this library's copy of the runtime runs sequences natively.
#[no_mangle]
pub extern "C" fn fixture_native() -> bool {
    rseq_dsl::status().mode == rseq_dsl::Mode::Native
}

/// This library's `rseq_dsl::clear_rseq_cs()`: clears the calling thread's `rseq_cs`. Must be called
/// on every thread that ran this library's sequences before the library is unloaded.
#[no_mangle]
pub extern "C" fn fixture_clear_rseq_cs() {
    rseq_dsl::clear_rseq_cs();
}
