//! Deliberately broken binaries, built here, each detected by the right rule and only that rule; and a
//! correct one that passes everything.
//!
//! - x86_64 Rust programs: `fixtures/defects.rs` compiled by rustc once per `--cfg defect="..."`.
//! - x86_64 assembly: `fixtures/x86_seq.S` with `-DDEFECT_*` for the layout rules (a range that spans
//!   two functions, a range in a non-executable section), and as a 32-bit object.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::thread;

use common::{failed_rules, fixture, run_ok, temp_dir};

/// (defect cfg, the one rule it must fail). `None` = the correct section.
const RUST_DEFECTS: [(&str, Option<&str>); 9] = [
    ("none", None),
    ("wrong_signature", Some("signature")),
    ("abort_in_range", Some("abort-outside-range")),
    ("misaligned", Some("aligned-32")),
    ("no_commit", Some("commit-is-store")),
    ("call_in_range", Some("no-call-syscall-stack")),
    ("stack_in_range", Some("no-call-syscall-stack")),
    ("version", Some("version-zero")),
    ("flags", Some("flags-zero")),
];

fn build_rust_defects() -> Vec<(&'static str, Option<&'static str>, PathBuf)> {
    let dir = temp_dir("rules-rust");
    let source = fixture("defects.rs");
    // Two at a time: the machine has two cores.
    let mut built = Vec::new();
    for pair in RUST_DEFECTS.chunks(2) {
        let handles: Vec<_> = pair
            .iter()
            .map(|&(defect, rule)| {
                let out = dir.join(format!("defect-{defect}"));
                let source = source.clone();
                thread::spawn(move || {
                    run_ok(
                        Command::new("rustc")
                            .args([
                                "--edition",
                                "2021",
                                "-C",
                                "opt-level=1",
                                "-C",
                                "debuginfo=0",
                            ])
                            .args(["--crate-name", "rseq_fixture", "--cfg"])
                            .arg(format!("defect=\"{defect}\""))
                            .arg("-o")
                            .arg(&out)
                            .arg(&source),
                    );
                    (defect, rule, out)
                })
            })
            .collect();
        built.extend(handles.into_iter().map(|h| h.join().expect("rustc thread")));
    }
    built
}

#[test]
fn rust_defects_each_fail_exactly_their_rule() {
    for (defect, rule, path) in build_rust_defects() {
        let report = common::audit(&path);
        assert_eq!(report.arch, "x86_64");
        assert_eq!(
            report.descriptors.len(),
            1,
            "{defect}: expected one descriptor:\n{}",
            report.render()
        );
        let d = &report.descriptors[0];
        // Found both ways (the fixture's arrays are SHF_GNU_RETAIN, so --gc-sections keeps them),
        // except the misaligned descriptor, which the section-as-array reading must not report twice.
        if defect == "misaligned" {
            assert_eq!(d.found_in, ["__rseq_cs_ptr_array"], "{defect}");
        } else {
            assert_eq!(d.found_in, ["__rseq_cs", "__rseq_cs_ptr_array"], "{defect}");
        }
        let function = d.function.as_ref().expect("enclosing function");
        assert_eq!(function.name, "rseq_fixture::counter_add", "{defect}");
        assert!(
            function.symbol.starts_with("_ZN"),
            "{defect}: mangled symbol"
        );
        assert_eq!(d.exit_points.len(), 1, "{defect}: exit point");
        let expected: Vec<&str> = rule.into_iter().collect();
        assert_eq!(
            failed_rules(d),
            expected,
            "{defect}: wrong rules failed:\n{}",
            report.render()
        );
        // No rule is skipped on x86_64 with a symbol table.
        assert!(
            report.summary.skipped_rules.is_empty(),
            "{defect}: skipped rules:\n{}",
            report.render()
        );
        // The CLI's exit status follows.
        let (code, stdout, _) = common::inspect(
            path.parent().expect("dir"),
            &[
                "elf",
                path.file_name().and_then(|n| n.to_str()).expect("name"),
            ],
        );
        assert_eq!(
            code,
            if rule.is_some() { 1 } else { 0 },
            "{defect}:\n{stdout}"
        );
        if let Some(rule) = rule {
            assert!(
                stdout.contains(&format!("FAIL  {rule}")),
                "{defect}:\n{stdout}"
            );
        }
    }
}

#[test]
fn assembly_layout_defects() {
    let dir = temp_dir("rules-asm");
    let cases = [
        ("good", None, None),
        (
            "spans",
            Some("-DDEFECT_SPANS_FUNCTIONS"),
            Some("range-in-one-function"),
        ),
        (
            "not-exec",
            Some("-DDEFECT_NOT_EXECUTABLE"),
            Some("range-in-executable-section"),
        ),
    ];
    let source = fixture("x86_seq.S");
    for (name, define, rule) in cases {
        // Both as an object file (section-relative relocations) and linked (final addresses).
        for (kind, flags) in [
            ("o", &["-c"][..]),
            (
                "static",
                &["-nostdlib", "-static", "-no-pie", "-Wl,--build-id=none"][..],
            ),
        ] {
            let out = dir.join(format!("{name}.{kind}"));
            let mut args: Vec<&str> = flags.to_vec();
            args.extend(define);
            let src = source.to_str().expect("utf-8 path");
            args.push(src);
            common::gcc(&args, &out);
            let report = common::audit(&out);
            assert_eq!(
                report.descriptors.len(),
                2,
                "{name}.{kind}:\n{}",
                report.render()
            );
            // Descriptor 0 is counter_add (the one the defects break); 1 is cmpeqv_storev.
            let expected: Vec<&str> = rule.into_iter().collect();
            assert_eq!(
                failed_rules(&report.descriptors[0]),
                expected,
                "{name}.{kind}:\n{}",
                report.render()
            );
            assert_eq!(
                failed_rules(&report.descriptors[1]),
                Vec::<&str>::new(),
                "{name}.{kind}:\n{}",
                report.render()
            );
        }
    }
}

#[test]
fn i386_object_passes() {
    let dir = temp_dir("rules-i386");
    let out = dir.join("seq32.o");
    let src = fixture("x86_seq.S");
    common::gcc(&["-m32", "-c", src.to_str().expect("utf-8 path")], &out);
    let report = common::audit(&out);
    assert_eq!(report.arch, "i386");
    assert_eq!(report.elf_class, 32);
    assert_eq!(report.descriptors.len(), 1, "{}", report.render());
    let d = &report.descriptors[0];
    assert_eq!(failed_rules(d), Vec::<&str>::new(), "{}", report.render());
    assert_eq!(d.length, Some(15));
    assert!(
        report.summary.skipped_rules.is_empty(),
        "{}",
        report.render()
    );
}
