//! rseq-dsl: per-CPU operations on Linux restartable sequences, written as declarative steps and
//! compiled to one contiguous critical section per architecture.
//!
//! ```
//! use rseq_dsl::{rseq, PerCpu};
//!
//! rseq! {
//!     /// Adds `n` to the calling CPU's counter.
//!     pub fn counter_add(counters: &PerCpu<u64>, n: u64) {
//!         let slot = counters.current();      // this CPU's slot: the CPU id is read inside the section
//!         let v = load(slot);
//!         commit store(slot, v + n);          // the single committing store, last step
//!     }
//! }
//!
//! let counters = PerCpu::<u64>::new(0);
//! counter_add(&counters, 1);                  // restarts after aborts until it commits
//! match try_counter_add(&counters, 2) {       // one attempt
//!     Ok(()) | Err(rseq_dsl::Error::Aborted) => {}
//!     Err(e) => panic!("{e}"),
//! }
//! assert!(counters.iter().sum::<u64>() >= 1);
//! println!("sequences run {}", rseq_dsl::status());
//! ```
//!
//! The language (steps, types, generated API, safety rules, fallback mode) is documented in
//! `docs/DSL.md`; the runtime's registration, `PerCpu` layout and fallback guarantees in the
//! [`rseq_runtime`] module docs; the pipeline in `docs/ARCHITECTURE.md`.

#[cfg(not(target_os = "linux"))]
compile_error!("rseq-dsl supports Linux only: restartable sequences are a Linux kernel feature");

// Generated code names `::rseq_dsl::...`; this makes those paths resolve inside this crate too
// (the `percpu` module is written with `rseq!`).
extern crate self as rseq_dsl;

pub mod percpu;

pub use rseq_macros::rseq;
pub use rseq_runtime::{
    abi, clear_rseq_cs, cpu_id, fallback, inject, membarrier, mm_cid, node_id, possible_cpus,
    remote, status, this_thread, this_thread_if_registered, ByCpu, ByMmCid, Error, IndexKind, Mode,
    Owner, PerCpu, PerMmCid, Status, ThisThread, Unavailable, Word, SLOT_ALIGN,
};

#[doc(hidden)]
pub use rseq_runtime::__private;
