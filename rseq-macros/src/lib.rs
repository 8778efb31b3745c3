//! The `rseq!` procedural macro of rseq-dsl.
//!
//! This crate only parses, calls [`rseq_codegen`] (IR, validation, per-architecture asm as data), and
//! turns the result into tokens: the `try_` and infallible wrappers, the `asm!` block of every
//! architecture with an emitter under its `#[cfg(target_arch)]`, and the fallback body. The DSL is
//! documented in `docs/DSL.md`.

mod expand;
mod fallback;
mod names;
mod native;

use proc_macro::TokenStream;

/// Compiles declarative per-CPU sequences into restartable sequences.
///
/// ```ignore
/// use rseq_dsl::{rseq, PerCpu};
///
/// rseq! {
///     /// Adds `n` to the calling CPU's counter.
///     pub fn counter_add(counters: &PerCpu<u64>, n: u64) {
///         let slot = counters.current();
///         let v = load(slot);
///         commit store(slot, v + n);
///     }
/// }
/// ```
///
/// generates `pub fn try_counter_add(counters: &PerCpu<u64>, n: u64) -> Result<(), rseq_dsl::Error>`
/// (one attempt) and `pub fn counter_add(counters: &PerCpu<u64>, n: u64)` (retries aborts). See
/// `docs/DSL.md` for the grammar, the semantics and the safety rules.
#[proc_macro]
pub fn rseq(input: TokenStream) -> TokenStream {
    expand::expand(input.into()).into()
}
