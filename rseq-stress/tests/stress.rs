//! The bounded run of the stress harness (`src/main.rs`): every scenario in every mode, about 15 s on
//! 2 cores. Built without the `inject` feature (as in `cargo test --workspace`) the injection scenarios
//! are reported as skipped; `cargo test -p rseq-stress --features inject,debug-checks` runs them, with
//! every sequence of the build debug-checked.

fn harness(args: &[&str]) -> (bool, String) {
    // Through RSEQ_TESTKIT_RUNNER when set (qemu-user without binfmt_misc).
    let out = rseq_testkit::command(env!("CARGO_BIN_EXE_rseq-stress"))
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

/// The number after `key ` in `line`.
fn number_after(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(&format!("{key} "))? + key.len() + 1..];
    rest.split_whitespace().next()?.parse().ok()
}

/// The mode a runner expects (`RSEQ_DSL_EXPECT_MODE`, `RSEQ_DSL_EXPECT_OWNER`; nothing is asserted
/// when unset): a run meant to be native cannot pass in fallback mode.
#[test]
fn expected_mode() {
    let s = rseq_dsl::status();
    rseq_testkit::check_expected_mode(
        s.mode == rseq_dsl::Mode::Native,
        s.owner == Some(rseq_dsl::Owner::Glibc),
        s,
    );
}

#[test]
fn every_scenario_in_every_mode_keeps_every_invariant() {
    // Where the runner expects fallback mode (qemu-user: no rseq), the native modes cannot run.
    let fallback_only = rseq_testkit::expect_fallback();
    if fallback_only {
        rseq_testkit::skip(
            "every_scenario_in_every_mode_keeps_every_invariant (native/glibc, native/self-reg)",
            "needs native rseq; the runner expects fallback mode: fallback mode only",
        );
    }
    // RSEQ_STRESS_MS: per-workload duration (default 40 ms; runners raise it on emulated kernels).
    let ms = std::env::var("RSEQ_STRESS_MS").unwrap_or_else(|_| "40".into());
    let mut args = vec!["--ms", &ms];
    if fallback_only {
        args.extend(["--mode", "fallback"]);
    }
    let (ok, out) = harness(&args);
    let total = out
        .lines()
        .find(|l| l.starts_with("TOTAL "))
        .expect("a TOTAL line");
    rseq_testkit::report_aborts("rseq-stress", number_after(total, "aborts").unwrap_or(0));
    assert!(ok, "the harness failed: {total}");
    assert!(total.contains(" violations 0 failures 0 "), "{total}");
    let count = |mode: &str| {
        out.lines()
            .filter(|l| l.starts_with("scenario ") && l.contains(&format!(" mode {mode} ")))
            .count()
    };
    if fallback_only {
        assert_eq!(
            count("fallback"),
            13,
            "every scenario reported in mode fallback"
        );
    } else if std::env::var(rseq_testkit::EXPECT_OWNER_ENV).is_ok_and(|o| o == "runtime") {
        // No glibc registration on this platform or in this run (glibc 2.36 on riscv64 never
        // registers): the `native` mode's child may self-register too.
        assert_eq!(
            count("native/glibc") + count("native/self-reg"),
            26,
            "{out}"
        );
        assert_eq!(
            count("fallback"),
            13,
            "every scenario reported in mode fallback"
        );
    } else {
        for mode in ["native/glibc", "fallback", "native/self-reg"] {
            assert_eq!(count(mode), 13, "every scenario reported in mode {mode}");
        }
    }
    if rseq_dsl::inject::ENABLED {
        assert!(!out.contains("built without the `inject` feature"));
    }
}

/// The harness can fail: an unprotected read-modify-write through the same reporting shows violations.
#[test]
fn negative_control_is_detected() {
    // RSEQ_STRESS_CONTROL_MS: the control's duration (default 40, raised to the harness's minimum
    // of 200 ms; runners raise it on emulated kernels, where fewer preemptions land in the window).
    // The control is statistical (a preemption must land between the load and the store): up to eight
    // runs, each twice as long as the one before, so a single-stepped emulated kernel with few
    // preemptions per second, or qemu-user (loongarch64: 0 of 3.2 million unprotected additions lost
    // in five runs), does not fail it.
    let mut ms: u64 = std::env::var("RSEQ_STRESS_CONTROL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let mut outs = Vec::new();
    for _ in 0..8 {
        let ms_arg = ms.to_string();
        ms *= 2;
        let (ok, out) = harness(&["--negative-control", "--mode", "native", "--ms", &ms_arg]);
        if let Some(line) = out.lines().find(|l| l.starts_with("unprotected")) {
            rseq_testkit::report_lost(
                "unprotected counter",
                number_after(line, "violations").unwrap_or(0),
            );
        }
        if ok {
            return;
        }
        outs.push(out);
    }
    panic!(
        "the unprotected counter lost nothing in 8 runs:\n{}",
        outs.join("\n")
    );
}
