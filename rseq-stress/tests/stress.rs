//! The bounded run of the stress harness (`src/main.rs`): every scenario in every mode, about 15 s on
//! 2 cores. Built without the `inject` feature (as in `cargo test --workspace`) the injection scenarios
//! are reported as skipped; `cargo test -p rseq-stress --features inject,debug-checks` runs them, with
//! every sequence of the build debug-checked.

use std::process::Command;

fn harness(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rseq-stress"))
        .args(args)
        .env_remove("RSEQ_DSL_FALLBACK")
        .env_remove("GLIBC_TUNABLES")
        .output()
        .expect("run rseq-stress");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    (out.status.success(), stdout)
}

#[test]
fn every_scenario_in_every_mode_keeps_every_invariant() {
    let (ok, out) = harness(&["--ms", "40"]);
    let total = out
        .lines()
        .find(|l| l.starts_with("TOTAL "))
        .expect("a TOTAL line");
    assert!(ok, "the harness failed: {total}");
    assert!(total.contains(" violations 0 failures 0 "), "{total}");
    for mode in ["native/glibc", "fallback", "native/self-reg"] {
        let lines = out
            .lines()
            .filter(|l| l.starts_with("scenario ") && l.contains(&format!(" mode {mode} ")))
            .count();
        assert_eq!(lines, 13, "every scenario reported in mode {mode}");
    }
    if rseq_dsl::inject::ENABLED {
        assert!(!out.contains("built without the `inject` feature"));
    }
}

/// The harness can fail: an unprotected read-modify-write through the same reporting shows violations.
#[test]
fn negative_control_is_detected() {
    let (ok, out) = harness(&["--negative-control", "--mode", "native"]);
    assert!(ok, "the unprotected counter lost nothing:\n{out}");
}
