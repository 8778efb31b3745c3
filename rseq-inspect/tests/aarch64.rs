//! aarch64: `fixtures/aarch64_seq.S` assembled by the cross compiler (Debian package
//! `gcc-aarch64-linux-gnu`), correct and with one defect per `-D`; plus its golden table, and its
//! descriptor moved to `.data.rel.ro` (found by the data scan). Skips loudly when the cross compiler
//! is absent.

mod common;

use std::process::Command;

use common::{check_golden, failed_rules, fixture, run_ok, skip_loudly, temp_dir, AARCH64_GCC};

fn cross_gcc_or_skip(test: &str) -> bool {
    if common::have(AARCH64_GCC) {
        return true;
    }
    skip_loudly(
        test,
        &format!(
            "`{AARCH64_GCC}` not found; install the Debian package `gcc-aarch64-linux-gnu` to run it"
        ),
    );
    false
}

#[test]
fn aarch64_defects_each_fail_exactly_their_rule() {
    if !cross_gcc_or_skip("aarch64_defects_each_fail_exactly_their_rule") {
        return;
    }
    let dir = temp_dir("aarch64-defects");
    let src = fixture("aarch64_seq.S");
    let cases = [
        ("GOOD", None),
        ("DEFECT_WRONG_SIGNATURE", Some("signature")),
        ("DEFECT_NO_COMMIT", Some("commit-is-store")),
        ("DEFECT_CALL", Some("no-call-syscall-stack")),
        ("DEFECT_STACK", Some("no-call-syscall-stack")),
    ];
    for (define, rule) in cases {
        for (kind, flags) in [
            ("o", &["-c"][..]),
            (
                "static",
                &[
                    "-nostdlib",
                    "-static",
                    "-Wl,--build-id=none",
                    "-Wl,-e,counter_add",
                ][..],
            ),
        ] {
            let out = dir.join(format!("{define}.{kind}"));
            run_ok(
                Command::new(AARCH64_GCC)
                    .args(flags)
                    .arg(format!("-D{define}"))
                    .arg(&src)
                    .arg("-o")
                    .arg(&out),
            );
            let report = common::audit(&out);
            assert_eq!(report.arch, "aarch64");
            assert_eq!(report.disassembler, Some("yaxpeax-arm"));
            assert_eq!(
                report.descriptors.len(),
                1,
                "{define}.{kind}:\n{}",
                report.render()
            );
            let expected: Vec<&str> = rule.into_iter().collect();
            assert_eq!(
                failed_rules(&report.descriptors[0]),
                expected,
                "{define}.{kind}:\n{}",
                report.render()
            );
            assert!(
                report.summary.skipped_rules.is_empty(),
                "{}",
                report.render()
            );
        }
    }
}

#[test]
fn aarch64_object_golden() {
    if !cross_gcc_or_skip("aarch64_object_golden") {
        return;
    }
    let dir = temp_dir("aarch64-golden");
    run_ok(
        Command::new(AARCH64_GCC)
            .arg("-c")
            .arg(fixture("aarch64_seq.S"))
            .arg("-o")
            .arg(dir.join("aarch64_seq.o")),
    );
    let (code, table, stderr) = common::inspect(&dir, &["elf", "aarch64_seq.o", "--disasm"]);
    assert_eq!(code, 0, "{table}{stderr}");
    check_golden("aarch64-object.txt", &table);
}

#[test]
fn aarch64_descriptor_in_data_rel_ro_is_scanned() {
    if !cross_gcc_or_skip("aarch64_descriptor_in_data_rel_ro_is_scanned") {
        return;
    }
    let dir = temp_dir("aarch64-scanned");
    for (name, flags, relocated) in [
        ("scanned.o", &["-c"][..], true),
        (
            "libscanned.so",
            &["-shared", "-nostdlib", "-Wl,--build-id=none"][..],
            true,
        ),
        (
            "scanned-static",
            &[
                "-nostdlib",
                "-static",
                "-Wl,--build-id=none",
                "-Wl,-e,counter_add",
            ][..],
            false,
        ),
    ] {
        let out = dir.join(name);
        run_ok(
            Command::new(AARCH64_GCC)
                .args(flags)
                .arg("-DIN_DATA_REL_RO")
                .arg(fixture("aarch64_seq.S"))
                .arg("-o")
                .arg(&out),
        );
        let report = common::audit(&out);
        let text = report.render();
        assert_eq!(report.descriptors.len(), 1, "{name}:\n{text}");
        let d = &report.descriptors[0];
        assert_eq!(failed_rules(d), Vec::<&str>::new(), "{name}:\n{text}");
        assert_eq!(d.found_in, ["data scan"], "{name}");
        let origin = d.scanned_from.as_ref().expect("scanned");
        assert_eq!(origin.section, ".data.rel.ro", "{name}");
        assert_eq!(origin.relocated, relocated, "{name}:\n{text}");
        assert!(report.unreached_signatures.is_empty(), "{name}:\n{text}");
        assert_eq!(report.summary.signatures, 1, "{name}:\n{text}");
        assert_eq!(report.exit_status(), rseq_inspect::EXIT_OK, "{name}");
    }
}
