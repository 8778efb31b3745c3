//! Runtime of [rseq-dsl](https://docs.rs/rseq-dsl): registers threads for Linux restartable sequences
//! (adopting glibc's registration when there is one), exposes the CPU id / mm_cid / node id, provides
//! padded per-CPU storage, and a process-wide fallback mode for when rseq is unavailable.
//!
//! ```
//! let status = rseq_runtime::status();
//! println!("sequences run {status}");
//! let counters: rseq_runtime::PerCpu<u64> = rseq_runtime::PerCpu::new(0);
//! assert_eq!(counters.iter().sum::<u64>(), 0);
//! ```
//!
//! Module map: [`abi`] (kernel structures and signatures), `registration` (mode decision and per-thread
//! registration; see [`Status`]), [`ThisThread`] (the thread's entry looked up once for many sections),
//! [`PerCpu`] (layout documented in its module), [`fallback`] (locks for fallback mode, with its
//! guarantee and cost), [`membarrier`], [`remote`] (fork-safe marks and locks for cross-CPU
//! operations), and `__private` (what generated code calls).

#[cfg(not(target_os = "linux"))]
compile_error!("rseq-dsl supports Linux only: restartable sequences are a Linux kernel feature");

pub mod abi;
mod error;
pub mod fallback;
pub mod inject;
pub mod membarrier;
mod percpu;
mod registration;
pub mod remote;
mod status;
mod thread;
mod word;

pub use error::{Error, Unavailable};
pub use percpu::{
    possible_cpus, stride_of, ByCpu, ByMmCid, IndexKind, PerCpu, PerMmCid, RawPerCpu, SLOT_ALIGN,
};
pub use registration::{clear_rseq_cs, Mode, Owner};
pub use status::{cpu_id, mm_cid, node_id, status, Status};
pub use thread::{this_thread, this_thread_if_registered, ThisThread};
pub use word::Word;

/// What generated sequences call. Not a public API: it changes with the code generator.
#[doc(hidden)]
pub mod __private {
    use core::sync::atomic::Ordering;

    pub use crate::abi::{
        RseqArea, AREA_CPU_ID_OFFSET, AREA_MM_CID_OFFSET, AREA_RSEQ_CS_OFFSET, RSEQ_SIG,
    };
    pub use crate::fallback::{fallback_lock_current, fallback_lock_index, FallbackGuard};
    pub use crate::inject::{debug_check_failed, DELAYS as INJECT_DELAYS, POINTS as INJECT_POINTS};
    pub use crate::percpu::{raw_by_cpu, raw_by_mm_cid, ByCpu, ByMmCid, PerCpu, RawPerCpu};
    pub use crate::registration::{enter, enter_mm_cid, Entry};
    pub use crate::thread::{thread_entry, thread_entry_mm_cid};
    pub use crate::{Error, Word};

    /// Relaxed atomic load of `W`'s width.
    ///
    /// # Safety
    /// `p` must be valid for reads and aligned for `W`.
    #[inline(always)]
    pub unsafe fn load<W: Word>(p: *const u8) -> W {
        // SAFETY: forwarded to the caller.
        unsafe { W::atomic_load(p.cast(), Ordering::Relaxed) }
    }

    /// Relaxed atomic store of `W`'s width.
    ///
    /// # Safety
    /// `p` must be valid for writes and aligned for `W`.
    #[inline(always)]
    pub unsafe fn store<W: Word>(p: *mut u8, v: W) {
        // SAFETY: forwarded to the caller.
        unsafe { W::atomic_store(p.cast(), v, Ordering::Relaxed) }
    }

    /// Release atomic store of `W`'s width.
    ///
    /// # Safety
    /// `p` must be valid for writes and aligned for `W`.
    #[inline(always)]
    pub unsafe fn store_release<W: Word>(p: *mut u8, v: W) {
        // SAFETY: forwarded to the caller.
        unsafe { W::atomic_store(p.cast(), v, Ordering::Release) }
    }

    /// The fallback `memcpy`: 8-byte relaxed atomic words while both pointers are 8-aligned, then bytes.
    ///
    /// # Safety
    /// `src` valid for reads and `dst` for writes of `len` bytes.
    #[inline]
    pub unsafe fn copy_words(dst: *mut u8, src: *const u8, len: usize) {
        let mut i = 0;
        if (dst as usize | src as usize) % 8 == 0 {
            while i + 8 <= len {
                // SAFETY: in bounds (i + 8 <= len) and 8-aligned (both bases are, i is a multiple of 8).
                unsafe { store::<u64>(dst.add(i), load::<u64>(src.add(i))) };
                i += 8;
            }
        }
        while i < len {
            // SAFETY: in bounds (i < len); bytes need no alignment.
            unsafe { store::<u8>(dst.add(i), load::<u8>(src.add(i))) };
            i += 1;
        }
    }

    /// Marks the path that calls it as rarely taken (generated decodes call it before decoding an
    /// abort or an exit). From Rust 1.95 (`build.rs` sets `rseq_cold_path`) it is
    /// `core::hint::cold_path`, a hint with no code: the function's hot path then saves no
    /// callee-saved registers for values that would otherwise live across a call. Before 1.95 it
    /// is a call to an empty cold function, which gives the same layout at that cost.
    #[cfg(rseq_cold_path)]
    #[inline(always)]
    #[allow(clippy::incompatible_msrv)] // compiled only by 1.95 and later (`build.rs`)
    pub fn cold() {
        core::hint::cold_path();
    }

    /// See the `rseq_cold_path` version.
    #[cfg(not(rseq_cold_path))]
    #[cold]
    #[inline(never)]
    pub fn cold() {}

    /// Runs `f` out of line: the generated fallback body (locks, registration) is called through
    /// this, so that the native path's function stays small (no callee-saved registers to save for
    /// a path the registered thread never takes) and inlines into its callers.
    #[cold]
    #[inline(never)]
    pub fn run_cold<R>(f: impl FnOnce() -> R) -> R {
        f()
    }

    /// The infallible generated functions' answer to an error that retrying cannot fix.
    #[cold]
    #[inline(never)]
    #[track_caller]
    pub fn unrecoverable(e: Error) -> ! {
        panic!("rseq-dsl: sequence cannot run: {e} (use the try_ form to handle this error)")
    }
}
