//! Every generated sequence (see `build.rs`) gives the same results and memory effects natively
//! (the asm, one pinned thread) and in fallback mode (the Rust body, in a `RSEQ_DSL_FALLBACK=1`
//! child process). On a mismatch the test prints the seed, the case index, the sequence's source,
//! both lines and the `difftest-shrink` command that shrinks the case.
//!
//! Environment: `RSEQ_DIFFTEST_ROUNDS` (inputs per sequence, default 16); the set itself is chosen at
//! build time by `RSEQ_DIFFTEST_SEED` / `RSEQ_DIFFTEST_N`.

use rseq_difftest::{compare, digest, CASES, REJECTED_FOR_BUDGET, SEED};
use rseq_dsl::Mode;

fn rounds() -> usize {
    std::env::var("RSEQ_DIFFTEST_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16)
}

/// Pins the thread to its first allowed CPU: natively the slot is that CPU's, in fallback mode the
/// lock index comes from `sched_getcpu()`, so both runs use the same slot.
fn pin() {
    let first = rseq_testkit::allowed_cpus()[0];
    rseq_testkit::pin_to(&[first]);
}

fn out_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("difftest-fallback-{}.txt", std::process::id()))
}

/// The mode a runner expects (`RSEQ_DSL_EXPECT_MODE`, `RSEQ_DSL_EXPECT_OWNER`; nothing is asserted
/// when unset): a run meant to be native cannot pass in fallback mode.
#[test]
fn expected_mode() {
    let s = rseq_dsl::status();
    rseq_testkit::check_expected_mode(
        s.mode == Mode::Native,
        s.owner == Some(rseq_dsl::Owner::Glibc),
        s,
    );
}

#[test]
fn native_and_fallback_agree() {
    if rseq_testkit::skip_unless_native("native_and_fallback_agree") {
        return;
    }
    pin();
    let status = rseq_dsl::status();
    assert_eq!(
        status.mode,
        Mode::Native,
        "this test needs native rseq ({status})"
    );
    let t = std::time::Instant::now();
    let (native, stats) = digest(rounds());
    let native_time = t.elapsed();

    let path = out_path();
    rseq_testkit::run_child(
        "fallback_child",
        &[
            ("RSEQ_DSL_FALLBACK", "1"),
            ("DIFFTEST_OUT", path.to_str().unwrap()),
            ("RSEQ_DIFFTEST_ROUNDS", &rounds().to_string()),
        ],
        None,
    );
    let text = std::fs::read_to_string(&path).expect("fallback digest");
    let _ = std::fs::remove_file(&path);
    let fallback: Vec<String> = text.lines().map(str::to_owned).collect();

    println!(
        "seed {SEED:#x}: {} sequences ({REJECTED_FOR_BUDGET} candidates over x86_64's or the target's register \
         budget replaced), {} runs in {native_time:?}: {} committed, {} compare-exits, {} native aborts retried",
        CASES.len(),
        native.len(),
        stats.committed,
        stats.exited,
        stats.aborts
    );
    rseq_testkit::report_aborts("difftest", stats.aborts as u64);
    if let Err(report) = compare(&native, &fallback, rounds()) {
        panic!("{report}");
    }
    // The runs exercised both outcomes, not only one.
    assert!(
        stats.committed > native.len() / 10,
        "too few commits: {stats:?}"
    );
    assert!(
        stats.exited > native.len() / 20,
        "too few compare-exits: {stats:?}"
    );

    // Negative controls: the comparison sees a single flipped byte anywhere in a line ...
    for (k, line) in [0, fallback.len() / 2, fallback.len() - 1]
        .into_iter()
        .map(|k| (k, &fallback[k]))
    {
        for pos in [line.len() / 3, line.len() - 1] {
            let mut bad = fallback.clone();
            let mut bytes = bad[k].clone().into_bytes();
            bytes[pos] ^= 1;
            bad[k] = String::from_utf8(bytes).unwrap();
            let err =
                compare(&native, &bad, rounds()).expect_err("a flipped byte must be detected");
            assert!(
                err.contains("case") && err.contains("--bin difftest-shrink"),
                "{err}"
            );
        }
    }
    // ... and a missing line.
    assert!(compare(&native, &fallback[1..], rounds()).is_err());
}

/// The fallback half, run by `native_and_fallback_agree` in a child process.
#[test]
#[ignore = "child process of native_and_fallback_agree"]
fn fallback_child() {
    if !rseq_testkit::is_child("fallback_child") {
        return;
    }
    pin();
    let status = rseq_dsl::status();
    assert_eq!(status.mode, Mode::Fallback, "{status}");
    let (lines, _) = digest(rounds());
    let path = std::env::var("DIFFTEST_OUT").expect("DIFFTEST_OUT");
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// `rseq_codegen::compile` must not panic on any generated (valid) sequence: the macro would panic
/// the same way. The generator records such candidates (`CODEGEN_PANICS`) and replaces them.
#[test]
fn codegen_does_not_panic() {
    assert!(
        rseq_difftest::CODEGEN_PANICS.is_empty(),
        "compile panicked on {} generated sequences (seed {SEED:#x}):\n{}",
        rseq_difftest::CODEGEN_PANICS.len(),
        rseq_difftest::CODEGEN_PANICS.join("\n\n")
    );
}
