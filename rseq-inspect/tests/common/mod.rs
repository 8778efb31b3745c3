//! Shared helpers for the integration tests: build fixtures into a per-test temp directory, run the
//! CLI, compare golden files, skip loudly.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A fresh, empty directory under Cargo's target tmp dir, named after the test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("rseq-inspect")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Runs a command to completion and panics with its output when it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Whether `tool --version` runs.
pub fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Prints a skip notice straight to the process's stderr, bypassing the test harness's capture so it
/// shows even when the test passes.
pub fn skip_loudly(what: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "\nSKIPPED: {what}: {why}\n");
}

/// The cross compiler used for aarch64 fixtures (Debian package `gcc-aarch64-linux-gnu`).
pub const AARCH64_GCC: &str = "aarch64-linux-gnu-gcc";

/// Runs `rseq-inspect` with `args` in `cwd`; returns (exit code, stdout, stderr).
pub fn inspect(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rseq-inspect"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run rseq-inspect");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Audits `path` through the library.
pub fn audit(path: &Path) -> rseq_inspect::Report {
    let bytes = std::fs::read(path).expect("read fixture");
    rseq_inspect::audit(
        &path.display().to_string(),
        &bytes,
        &rseq_inspect::Options::default(),
    )
    .unwrap_or_else(|e| panic!("audit of {} failed: {e}", path.display()))
}

/// The names of the rules that failed for descriptor `d`.
pub fn failed_rules(d: &rseq_inspect::report::DescriptorReport) -> Vec<&'static str> {
    d.rules
        .iter()
        .filter(|r| r.status == rseq_inspect::rules::Status::Fail)
        .map(|r| r.rule.name())
        .collect()
}

/// Compares `actual` with `tests/golden/<name>`, or rewrites the file when `RSEQ_DSL_BLESS=1`.
pub fn check_golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("RSEQ_DSL_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("golden dir")).expect("create golden dir");
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read golden file {}: {e}\nrun `RSEQ_DSL_BLESS=1 cargo test -p rseq-inspect` to create it",
            path.display()
        )
    });
    if expected != actual {
        let mut diff = String::new();
        for (i, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
            if e != a {
                diff.push_str(&format!("line {}:\n  golden: {e}\n  actual: {a}\n", i + 1));
            }
        }
        let (ne, na) = (expected.lines().count(), actual.lines().count());
        if ne != na {
            diff.push_str(&format!("golden has {ne} lines, actual {na}\n"));
        }
        panic!(
            "output differs from {}:\n{diff}\nactual output:\n{actual}\n\
             review, then run `RSEQ_DSL_BLESS=1 cargo test -p rseq-inspect` to accept",
            path.display()
        );
    }
}

/// Runs `gcc <args> -o <out>`; gcc is required (it is on the machine image and installed by CI).
pub fn gcc(args: &[&str], out: &Path) {
    assert!(
        have("gcc"),
        "gcc is required by these tests (Debian package `gcc`)"
    );
    run_ok(Command::new("gcc").args(args).arg("-o").arg(out));
}
