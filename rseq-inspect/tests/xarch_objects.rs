//! The cross-architecture objects of the multi-arch suite, audited: the section files generated from
//! `rseq-codegen/tests/golden/sources/xarch.rs` (counter, stack push/pop, and the unarmed control) are
//! compiled for each of the seven targets with rustc's `#![no_core]` path and audited. Every armed
//! function must yield one descriptor passing every applicable rule, the unarmed control none (its
//! abort signature is then the one reported as reached by no descriptor), and the report must match
//! its golden file (`tests/golden/xarch-<arch>.txt`, `RSEQ_DSL_BLESS=1` rewrites).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use rseq_codegen::standalone::xarch_section_file;
use rseq_codegen::{compile, find_sequences, Arch};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn target(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "x86_64-unknown-linux-gnu",
        Arch::Aarch64 => "aarch64-unknown-linux-gnu",
        Arch::Riscv64 => "riscv64gc-unknown-linux-gnu",
        Arch::Arm => "armv7-unknown-linux-gnueabihf",
        Arch::Ppc64le => "powerpc64le-unknown-linux-gnu",
        Arch::S390x => "s390x-unknown-linux-gnu",
        Arch::Loongarch64 => "loongarch64-unknown-linux-gnu",
    }
}

fn rustc(args: &[&str]) -> Result<(), String> {
    let out = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["--edition", "2021", "-O", "-C", "panic=abort"])
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn generated_cross_arch_objects_pass_the_audit() {
    let dir = common::temp_dir("xarch-objects");
    let text = std::fs::read_to_string(repo("rseq-codegen/tests/golden/sources/xarch.rs")).unwrap();
    let file = syn::parse_file(&text).unwrap();
    let compiled: Vec<_> = find_sequences(&file)
        .unwrap()
        .iter()
        .map(|f| compile(f).unwrap_or_else(|_| panic!("`{}` does not compile", f.sig.ident)))
        .collect();
    let require = std::env::var_os("RSEQ_DSL_REQUIRE_TARGETS").is_some_and(|v| v == "1");
    let minicore = repo("xarch/minicore.rs");
    let mut audited = 0;
    for arch in Arch::ALL {
        let t = target(arch);
        let lib = dir.join(format!("libminicore-{t}.rlib"));
        let built = rustc(&[
            "--target",
            t,
            "--crate-type",
            "rlib",
            "--crate-name",
            "minicore",
            minicore.to_str().unwrap(),
            "-o",
            lib.to_str().unwrap(),
        ]);
        if let Err(e) = built {
            assert!(!require, "{t}: rustc cannot build for it (required): {e}");
            common::skip_loudly(
                &format!("xarch object for {t}"),
                &format!("rustc cannot build for it: {e}"),
            );
            continue;
        }
        let src = dir.join(format!("{}.rs", arch.name()));
        std::fs::write(
            &src,
            xarch_section_file(&compiled, arch).expect("section file"),
        )
        .unwrap();
        let obj = dir.join(format!("{}.o", arch.name()));
        let extern_arg = format!("minicore={}", lib.display());
        rustc(&[
            "--target",
            t,
            "--crate-type",
            "lib",
            "--emit=obj",
            "--extern",
            &extern_arg,
            src.to_str().unwrap(),
            "-o",
            obj.to_str().unwrap(),
        ])
        .unwrap_or_else(|e| panic!("{t}: the generated section file does not build:\n{e}"));

        let name = format!("{}.o", arch.name());
        let report = rseq_inspect::audit(
            &name,
            &std::fs::read(&obj).unwrap(),
            &rseq_inspect::Options::default(),
        )
        .unwrap_or_else(|e| panic!("{t}: audit failed: {e}"));
        assert!(!report.has_failures(), "{t}:\n{}", report.render());
        // counter_inc, stack_push, stack_pop; the unarmed control has no descriptor.
        assert_eq!(report.descriptors.len(), 3, "{t}:\n{}", report.render());
        // ... but keeps its abort handler and signature: the one signature no descriptor reaches.
        assert_eq!(
            report.unreached_signatures.len(),
            1,
            "{t}:\n{}",
            report.render()
        );
        assert_eq!(report.exit_status(), rseq_inspect::EXIT_UNREACHED_SIGNATURE);
        common::check_golden(&format!("xarch-{}.txt", arch.name()), &report.render());
        audited += 1;
    }
    assert!(audited > 0, "no target could be audited");
}
