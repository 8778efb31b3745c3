//! rseq-dsl: per-CPU operations on Linux restartable sequences, written as declarative steps and
//! compiled to one contiguous critical section per architecture.
//!
//! See the README and `docs/DSL.md`.

#[cfg(not(target_os = "linux"))]
compile_error!("rseq-dsl supports Linux only: restartable sequences are a Linux kernel feature");

pub use rseq_macros::rseq;
pub use rseq_runtime::{
    abi, clear_rseq_cs, cpu_id, fallback, membarrier, mm_cid, node_id, possible_cpus, status,
    ByCpu, ByMmCid, Error, IndexKind, Mode, Owner, PerCpu, PerMmCid, Status, Unavailable, Word,
    SLOT_ALIGN,
};

#[doc(hidden)]
pub use rseq_runtime::__private;
