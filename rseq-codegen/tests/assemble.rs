//! Every golden source sequence, for every architecture with an emitter, must assemble for its real
//! target: the block is rendered as a standalone item ([`rseq_codegen::standalone`], the same
//! template and operands the macro emits) and compiled with `rustc --target <T> --emit=obj -O`
//! against the `#![no_core]` minicore of `xarch/` (the targets' std is not installed; stable rustc
//! with `RUSTC_BOOTSTRAP=1`, test-only). `cargo check` never assembles inline asm, so this is the
//! only proof before running the code.
//!
//! A target whose rustc codegen is unavailable is skipped with a message naming it, unless
//! `RSEQ_DSL_REQUIRE_TARGETS=1` (CI), which turns every skip into a failure.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use rseq_codegen::standalone::{inject_delays_decl, standalone_item, xarch_section_file, Options};
use rseq_codegen::{compile, find_sequences, Arch};

/// `(arch, rustc target)`: every emitter's architecture; arm also in Thumb-2 mode.
const TARGETS: [(Arch, &str); 8] = [
    (Arch::X86_64, "x86_64-unknown-linux-gnu"),
    (Arch::Aarch64, "aarch64-unknown-linux-gnu"),
    (Arch::Riscv64, "riscv64gc-unknown-linux-gnu"),
    (Arch::Arm, "armv7-unknown-linux-gnueabihf"),
    (Arch::Arm, "thumbv7neon-unknown-linux-gnueabihf"),
    (Arch::Ppc64le, "powerpc64le-unknown-linux-gnu"),
    (Arch::S390x, "s390x-unknown-linux-gnu"),
    (Arch::Loongarch64, "loongarch64-unknown-linux-gnu"),
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [
        root().join("../examples"),
        root().join("tests/golden/sources"),
    ] {
        for e in fs::read_dir(&dir).expect("source dir").flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// The crate of every standalone item for `arch` (and how many items it holds).
fn crate_source(arch: Arch) -> (String, usize) {
    let mut s = String::from(
        "#![feature(no_core)]\n#![no_core]\n#![allow(unused, non_upper_case_globals, static_mut_refs)]\n\
         extern crate minicore;\nuse minicore::arch::asm;\n\n",
    );
    s.push_str(&inject_delays_decl("RSEQ_INJECT_DELAYS"));
    let mut items = 0;
    for src in sources() {
        let text = fs::read_to_string(&src).expect("read source");
        let file = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        let stem = src.file_stem().unwrap().to_string_lossy().into_owned();
        let prefix = format!("rseq_{stem}");
        for f in find_sequences(&file).expect("sequences") {
            let c = compile(&f).unwrap_or_else(|_| panic!("{}: `{}`", src.display(), f.sig.ident));
            let opts = Options {
                prefix: &prefix,
                ..Options::default()
            };
            if let Some(item) = standalone_item(&c, arch, &opts) {
                let _ = writeln!(s, "{item}");
                items += 1;
            }
        }
    }
    (s, items)
}

/// The xarch section file for `arch`, from `tests/golden/sources/xarch.rs`.
fn xarch_file(arch: Arch) -> Option<String> {
    let text = fs::read_to_string(root().join("tests/golden/sources/xarch.rs")).ok()?;
    let file = syn::parse_file(&text).ok()?;
    let compiled: Vec<_> = find_sequences(&file)
        .ok()?
        .iter()
        .filter_map(|f| compile(f).ok())
        .collect();
    xarch_section_file(&compiled, arch)
}

fn rustc(args: &[&str]) -> std::process::Output {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    Command::new(rustc)
        .env("RUSTC_BOOTSTRAP", "1")
        .args(args)
        .output()
        .expect("run rustc")
}

#[test]
fn every_block_assembles_for_its_target() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("assemble");
    fs::create_dir_all(&dir).unwrap();
    let minicore = root().join("../xarch/minicore.rs");
    let require = std::env::var_os("RSEQ_DSL_REQUIRE_TARGETS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    for (arch, target) in TARGETS {
        let lib = dir.join(format!("libminicore-{target}.rlib"));
        let out = rustc(&[
            "--crate-type=rlib",
            "--crate-name=minicore",
            "--target",
            target,
            "-O",
            minicore.to_str().unwrap(),
            "-o",
            lib.to_str().unwrap(),
        ]);
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned();
            eprintln!("SKIPPED {target}: rustc cannot build the minicore for it ({why})");
            skipped.push(target);
            continue;
        }
        let (text, items) = crate_source(arch);
        assert!(items > 0, "no sequence emitted for {}", arch.name());
        let src = dir.join(format!("sections-{target}.rs"));
        fs::write(&src, &text).unwrap();
        let obj = dir.join(format!("sections-{target}.o"));
        let extern_arg = format!("minicore={}", lib.display());
        let out = rustc(&[
            "--crate-type=lib",
            "--crate-name=sections",
            "--edition=2021",
            "--target",
            target,
            "--emit=obj",
            "-C",
            "panic=abort",
            "-O",
            "--extern",
            &extern_arg,
            src.to_str().unwrap(),
            "-o",
            obj.to_str().unwrap(),
        ]);
        if !out.status.success() {
            failures.push(format!(
                "{target} ({}): {}\n{}",
                arch.name(),
                src.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let bytes = fs::read(&obj).unwrap();
        let has = |name: &str| bytes.windows(name.len()).any(|w| w == name.as_bytes());
        for section in ["__rseq_cs", "__rseq_cs_ptr_array"] {
            if !has(section) {
                failures.push(format!(
                    "{target}: no `{section}` section in {}",
                    obj.display()
                ));
            }
        }
        eprintln!("{target}: {items} sequences assembled ({})", obj.display());
        // The section file of `xarch/README.md` (examples/xarch_sections.rs) for this target.
        let Some(section) = xarch_file(arch) else {
            failures.push(format!("{target}: no xarch section file"));
            continue;
        };
        let src = dir.join(format!("xarch-{target}.rs"));
        fs::write(&src, section).unwrap();
        let obj = dir.join(format!("xarch-{target}.o"));
        let out = rustc(&[
            "--crate-type=lib",
            "--edition=2021",
            "--target",
            target,
            "--emit=obj",
            "-C",
            "panic=abort",
            "-O",
            "--extern",
            &extern_arg,
            src.to_str().unwrap(),
            "-o",
            obj.to_str().unwrap(),
        ]);
        if !out.status.success() {
            failures.push(format!(
                "{target}: xarch section file {}\n{}",
                src.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    if require && !skipped.is_empty() {
        failures.push(format!(
            "skipped but required (RSEQ_DSL_REQUIRE_TARGETS=1): {skipped:?}"
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
