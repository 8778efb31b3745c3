//! Command-line behaviour: usage errors (status 2), help, the `--json` / `--disasm` switches.

mod common;

use common::temp_dir;

#[test]
fn usage_errors_exit_2() {
    let dir = temp_dir("cli");
    for args in [
        &[][..],
        &["elf"][..],
        &["elf", "a", "b"][..],
        &["elf", "a", "--bogus"][..],
        &["bogus"][..],
        &["asm"][..],
        &["asm", "a.rs", "--arch", "vax"][..],
    ] {
        let (code, stdout, stderr) = common::inspect(&dir, args);
        assert_eq!(code, 2, "{args:?}: {stdout}{stderr}");
        assert!(
            stderr.contains("usage: rseq-inspect asm"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn help_exits_0() {
    let dir = temp_dir("cli-help");
    let (code, stdout, _) = common::inspect(&dir, &["--help"]);
    assert_eq!(code, 0);
    for rule in rseq_inspect::rules::Rule::ALL {
        assert!(stdout.contains(rule.name()), "{rule:?} missing from help");
    }
}

#[test]
fn file_without_rseq_sections_is_ok() {
    // The test binary itself has no critical sections: status 0, and the table says so.
    let me = std::env::current_exe().expect("current exe");
    let dir = me.parent().expect("dir").to_path_buf();
    let name = me
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_string();
    let (code, stdout, stderr) = common::inspect(&dir, &["elf", &name]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("no rseq critical sections found"),
        "{stdout}"
    );
    let (code, stdout, _) = common::inspect(&dir, &["elf", &name, "--json", "--disasm"]);
    assert_eq!(code, 0);
    let value: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(value["summary"]["descriptors"], 0);
    assert_eq!(value["arch"], "x86_64");
}
