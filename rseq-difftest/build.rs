//! Writes the generated sequences and a table of runners into `OUT_DIR/generated.rs`.
//!
//! The generator is `gen/mod.rs` (a proptest strategy, shared with the `difftest-shrink`
//! binary); this script only draws `RSEQ_DIFFTEST_N` (default 200) cases of `RSEQ_DIFFTEST_SEED`
//! (default fixed) for the target being built and writes them out. The seed and every sequence's
//! source end up in the generated table, so a failing test prints them and the command that
//! shrinks the case. Every candidate is valid by construction; it is then run through
//! `rseq_codegen::parse` + `compile`: a validation error is a generator (or codegen) bug and fails
//! the build with the source, and a candidate over x86_64's or the target's register budget is
//! replaced by a new one (counted in `REJECTED_FOR_BUDGET`).

use std::fmt::Write as _;

#[allow(dead_code)] // the shrinker's half
#[path = "gen/mod.rs"]
mod seqgen;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=gen");
    println!("cargo:rerun-if-env-changed=RSEQ_DIFFTEST_SEED");
    println!("cargo:rerun-if-env-changed=RSEQ_DIFFTEST_N");
    let seed = std::env::var("RSEQ_DIFFTEST_SEED")
        .ok()
        .map_or(seqgen::DEFAULT_SEED, |s| {
            seqgen::parse_seed(&s).expect("RSEQ_DIFFTEST_SEED: a u64")
        });
    let n: usize = std::env::var("RSEQ_DIFFTEST_N")
        .ok()
        .map_or(seqgen::DEFAULT_N, |s| {
            s.parse().expect("RSEQ_DIFFTEST_N: a count")
        });
    let target = seqgen::Target::from_cargo_env();

    let mut out = String::new();
    let mut table = String::new();
    let mut rejected = 0usize;
    // Candidates on which `compile` panicked (a codegen bug: the macro would panic too); reported by
    // the `codegen_does_not_panic` test, and replaced here so the differential test still runs.
    let mut panics: Vec<String> = Vec::new();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for k in 0..n {
        let case = seqgen::generate(&target, seed, k);
        rejected += case.rejected;
        panics.extend(case.panics);
        let name = seqgen::case_name(k);
        let src = &case.rendered.source;
        writeln!(out, "rseq! {{\n{src}}}\n").unwrap();
        writeln!(out, "{}", seqgen::runner_fn(&name, &case.rendered)).unwrap();
        writeln!(
            table,
            "    Case {{ name: \"{name}\", source: {src:?}, run: run_{name} }},"
        )
        .unwrap();
    }
    std::panic::set_hook(default_hook);
    let file = format!(
        "/// Seed of this set (`RSEQ_DIFFTEST_SEED`).\npub const SEED: u64 = {seed:#x};\n\
         /// Candidates replaced because they exceeded x86_64's or the target's register budget.\n\
         pub const REJECTED_FOR_BUDGET: usize = {rejected};\n\
         /// Candidates on which `rseq_codegen::compile` panicked: message and source.\n\
         pub const CODEGEN_PANICS: &[&str] = &{panics:?};\n\n{out}\n\
         /// Every generated sequence.\npub static CASES: &[Case] = &[\n{table}];\n"
    );
    let path = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("generated.rs");
    std::fs::write(path, file).expect("write generated.rs");
}
