//! Differential testing of rseq-dsl: random valid `rseq!` sequences run natively and in fallback
//! mode must give the same results and memory, byte for byte.
//!
//! # Generation
//!
//! `gen/mod.rs` is the generator: a proptest `Strategy` of sequence specs (parameter types and
//! signedness; loads of every width; arithmetic with `+ - & | ^`, shifts by constants and by
//! values, casts; compare-exits with or without a returned value; speculative `store`s and
//! `memcpy`s; a `commit store` or `commit store_release` to the slot or the scratch area; a tail
//! over every value). Specs hold no names: value references are indices resolved when a spec is
//! rendered, so every spec, also a shrunk one, renders to a valid sequence. `build.rs` includes the
//! module, draws the cases for the target being built (its pointer width and arch from cargo's
//! variables: on 32-bit arm no `u64`/`i64`, and [`Slot`] is `usize`) and keeps only candidates that
//! fit x86_64's and the target's register budget (`rseq_codegen::compile`; the others are drawn
//! again, [`REJECTED_FOR_BUDGET`]).
//!
//! # Seeds and replay
//!
//! `RSEQ_DIFFTEST_SEED` (decimal or `0x` hex, default fixed) and `RSEQ_DIFFTEST_N` (default 200)
//! choose the set at build time. Case `k` draws from its own ChaCha stream seeded from
//! `(seed, k)` (`TestRng::from_seed`), so one case can be regenerated alone, rejections included.
//!
//! # Running
//!
//! [`digest`] runs each case on many inputs and records, per run, the result and every byte of
//! memory the sequence could touch (its `PerCpu` slots and the 256-byte scratch area).
//! `tests/native_vs_fallback.rs` computes the digest natively and in a `RSEQ_DSL_FALLBACK=1` child
//! process and compares them line by line ([`compare`]). Inputs are derived from `(case, round)`
//! only, so both processes see the same inputs. A native attempt that aborts (`Err(Aborted)`) may
//! have left speculative stores behind, so the runner resets the inputs and retries, as a caller of
//! an rseq must make its speculative stores harmless to a restart.
//!
//! # Shrinking
//!
//! A mismatch prints the seed, the case index, the source and a command that shrinks the case:
//!
//! ```text
//! cargo run -p rseq-difftest --bin difftest-shrink -- --seed 0x5eedd1ff7e570001 --case 17
//! ```
//!
//! `difftest-shrink` regenerates the case's proptest `ValueTree` and walks `simplify()` /
//! `complicate()`. Each candidate is written into a scratch crate (`target/difftest-shrink/`,
//! depending on rseq-dsl by path and running the same [`digest_case`] on the same inputs), built,
//! run natively and with `RSEQ_DSL_FALLBACK=1`; a candidate whose outputs still differ is kept.
//! At most `--steps` (default 200) candidates are built (a source already evaluated is not built
//! again); progress goes to stderr, and the minimal failing sequence's source is printed at the
//! end. The shrinker generates for and runs on its own machine: shrink a failure seen on another
//! architecture there. `--fault xor` replaces the build-and-run by a fake failure (the steps use
//! `^`) to check the shrinking itself; the binary's unit tests do that (`cargo test -p
//! rseq-difftest`). `--fault xor-build` builds and runs every candidate and fakes a difference in
//! the fallback output of those using `^`.

use rseq_dsl::{rseq, Error, PerCpu};

mod runner;
pub use runner::{digest_case, Case, Rng, Scratch, Slot, Stats};

/// The generated sequences, their runners and [`CASES`].
mod generated {
    #![allow(unused_variables, clippy::all, clippy::pedantic)]
    use super::{rseq, Case, Error, PerCpu, Slot};
    include!(concat!(env!("OUT_DIR"), "/generated.rs"));
}
pub use generated::{CASES, CODEGEN_PANICS, REJECTED_FOR_BUDGET, SEED};

/// One line per `(case, round)`: `case round result slots scratch-hex`.
pub fn digest(rounds: usize) -> (Vec<String>, Stats) {
    let mut lines = Vec::with_capacity(CASES.len() * rounds);
    let mut stats = Stats::default();
    for (i, case) in CASES.iter().enumerate() {
        digest_case(i, case, rounds, &mut lines, &mut stats);
    }
    (lines, stats)
}

/// The command that shrinks case `case` of this build's seed, run with `rounds` inputs (in the
/// profile of this build: `--release` builds the candidates with optimizations too).
pub fn shrink_command(case: usize, rounds: usize) -> String {
    let release = if cfg!(debug_assertions) {
        ""
    } else {
        " --release"
    };
    format!(
        "cargo run -p rseq-difftest --bin difftest-shrink -- --seed {SEED:#x} --case {case} --rounds {rounds}{release}"
    )
}

/// Compares two digests of `rounds` inputs per case; on the first difference returns a report
/// naming the seed, the case, its source, both lines and the command that shrinks it.
pub fn compare(native: &[String], fallback: &[String], rounds: usize) -> Result<(), String> {
    if native.len() != fallback.len() {
        return Err(format!(
            "digest lengths differ: native {} lines, fallback {} lines (seed {SEED:#x})",
            native.len(),
            fallback.len()
        ));
    }
    for (a, b) in native.iter().zip(fallback) {
        if a != b {
            let case: usize = a
                .split(' ')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let src = CASES.get(case).map_or("?", |c| c.source);
            return Err(format!(
                "native and fallback differ (RSEQ_DIFFTEST_SEED={SEED:#x}, case {case}):\n\
                 --- sequence\n{src}\n--- native\n{a}\n--- fallback\n{b}\n\
                 --- shrink it with\n{}",
                shrink_command(case, rounds)
            ));
        }
    }
    Ok(())
}
