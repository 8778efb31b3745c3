//! `rseq-inspect asm`: the source view renders the repository's examples, and reports exactly the
//! macro's own errors (same text, same `line:column`) for every compile-fail UI test.

mod common;

use std::path::Path;

use common::temp_dir;

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
        .display()
        .to_string()
}

#[test]
fn renders_the_counter_example() {
    let dir = temp_dir("asm-counter");
    let file = repo("examples/counter.rs");
    let (code, stdout, stderr) = common::inspect(&dir, &["asm", &file]);
    assert_eq!(code, 0, "{stderr}");
    for needle in [
        "`counter_add` for x86_64",
        "`cid_counter_add` for x86_64",
        "# read cpu_id",
        "# read mm_cid",
        "2:                                                  # start",
        "4:                                                  # post-commit",
        ".long 0x53053053",
        ".pushsection __rseq_cs, \"aw\"",
        ".pushsection __rseq_cs_ptr_array, \"awR\"",
    ] {
        assert!(stdout.contains(needle), "missing `{needle}` in:\n{stdout}");
    }
    // The committing store is the last instruction before the post-commit label.
    let lines: Vec<&str> = stdout.lines().collect();
    let post = lines
        .iter()
        .position(|l| l.contains("# post-commit"))
        .unwrap();
    assert!(
        lines[post - 1]
            .trim_start()
            .starts_with("mov qword ptr [{s0}]"),
        "{}",
        lines[post - 1]
    );
}

#[test]
fn selects_function_and_architectures() {
    let dir = temp_dir("asm-select");
    let file = repo("examples/stack.rs");
    let (code, stdout, _) = common::inspect(&dir, &["asm", &file, "--fn", "pop", "--all"]);
    assert_eq!(code, 0);
    assert!(!stdout.contains("`push`"));
    let headers = stdout
        .lines()
        .filter(|l| l.starts_with("== ") && l.contains("`pop` for "))
        .count();
    assert_eq!(headers, 7, "{stdout}");
    // arm has no 64-bit words: the macro rejects `PerMmCid<u64>` sequences there, and so does the
    // view, with what to use instead.
    let counter = repo("rseq-codegen/tests/golden/sources/example_variants.rs");
    let (code, stdout, _) = common::inspect(
        &dir,
        &["asm", &counter, "--arch", "arm", "--fn", "cid_counter_add"],
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("(when compiling for arm)"), "{stdout}");
    assert!(stdout.contains("percpu::Counter"), "{stdout}");
    let (code, _, stderr) = common::inspect(&dir, &["asm", &file, "--fn", "nope"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("no `rseq!` sequence named `nope`"),
        "{stderr}"
    );
}

#[test]
fn unparsable_source_exits_3() {
    let dir = temp_dir("asm-garbage");
    let bad = dir.join("bad.rs");
    std::fs::write(&bad, "fn main( {").unwrap();
    let (code, _, stderr) = common::inspect(&dir, &["asm", bad.to_str().unwrap()]);
    assert_eq!(code, 3);
    assert!(stderr.contains("bad.rs:1:"), "{stderr}");
    let (code, _, _) = common::inspect(&dir, &["asm", dir.join("missing.rs").to_str().unwrap()]);
    assert_eq!(code, 3);
}

/// `(message, line, column)` of every `error: ...` / ` --> file:line:col` pair of a trybuild .stderr.
fn expected_errors(stderr: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = stderr.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if let Some(msg) = l.strip_prefix("error: ") {
            let loc = lines[i + 1]
                .trim_start()
                .strip_prefix("--> ")
                .expect("location line");
            let (_, line_col) = loc.split_once(':').expect("line:col");
            let line_col = line_col.to_string();
            out.push((msg.to_string(), line_col));
        }
    }
    out
}

#[test]
fn compile_errors_match_the_macro() {
    let dir = temp_dir("asm-ui");
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/ui/fail");
    let mut checked = 0;
    for entry in std::fs::read_dir(&ui).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let want =
            expected_errors(&std::fs::read_to_string(path.with_extension("stderr")).unwrap());
        let (code, stdout, stderr) = common::inspect(&dir, &["asm", path.to_str().unwrap()]);
        assert_eq!(code, 1, "{}: {stdout}{stderr}", path.display());
        let got: Vec<(String, String)> = stdout
            .lines()
            .filter_map(|l| {
                let (loc, msg) = l.split_once(": error: ")?;
                let msg = msg
                    .strip_suffix(" (when compiling for x86_64)")
                    .unwrap_or(msg);
                let line_col = loc.rsplitn(3, ':').collect::<Vec<_>>();
                Some((msg.to_string(), format!("{}:{}", line_col[1], line_col[0])))
            })
            .collect();
        assert_eq!(got, want, "{}", path.display());
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} UI tests found");
}
