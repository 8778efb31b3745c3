//! A C program with hand-written librseq-style x86_64 rseq asm, compiled by gcc here: proves the audit
//! works on binaries this project did not generate. It is audited as a PIE (dynamic relative
//! relocations), a non-PIE executable, and an object file, and run once to show it is a working rseq
//! program, not just something that passes the audit.

mod common;

use std::process::Command;

use common::{failed_rules, fixture, temp_dir};

#[test]
fn librseq_style_c_program_passes_every_rule() {
    let dir = temp_dir("c-program");
    let src = fixture("librseq_style.c");
    let src = src.to_str().expect("utf-8 path");
    for (name, flags) in [
        ("pie", &["-O2", "-Wall", "-Werror"][..]),
        ("no-pie", &["-O2", "-no-pie"][..]),
        ("object.o", &["-O2", "-c"][..]),
        ("debug-O0", &["-O0"][..]),
    ] {
        let out = dir.join(name);
        let mut args = flags.to_vec();
        args.push(src);
        common::gcc(&args, &out);
        let report = common::audit(&out);
        let text = report.render();
        // rseq_addv once, rseq_cmpeqv_storev inlined twice (always_inline).
        assert_eq!(report.descriptors.len(), 3, "{name}:\n{text}");
        for d in &report.descriptors {
            assert_eq!(failed_rules(d), Vec::<&str>::new(), "{name}:\n{text}");
            assert_eq!(d.found_in, ["__rseq_cs", "__rseq_cs_ptr_array"], "{name}");
            assert_eq!(
                d.function.as_ref().map(|f| f.name.as_str()),
                Some("main"),
                "{name}"
            );
        }
        assert!(report.summary.skipped_rules.is_empty(), "{name}:\n{text}");
        // Each cmpeqv_storev copy has its exit point (the compare-failure label).
        let with_exits = report
            .descriptors
            .iter()
            .filter(|d| d.exit_points.len() == 1)
            .count();
        assert_eq!(with_exits, 2, "{name}:\n{text}");
        assert!(report.orphan_exit_points.is_empty(), "{name}:\n{text}");
        let (code, _, _) = common::inspect(&dir, &["elf", name]);
        assert_eq!(code, 0, "{name}");
    }

    // Run it: 100k per-CPU increments through rseq_addv, and both outcomes of rseq_cmpeqv_storev.
    let out = Command::new(dir.join("pie"))
        .output()
        .expect("run the C program");
    let stdout = String::from_utf8_lossy(&out.stdout);
    match out.status.code() {
        Some(0) => assert!(stdout.contains("sum 100000"), "{stdout}"),
        Some(77) => common::skip_loudly(
            "running the librseq-style C program",
            &format!(
                "glibc did not register rseq on this machine ({})",
                stdout.trim()
            ),
        ),
        other => panic!("C program failed ({other:?}): {stdout}"),
    }
}
