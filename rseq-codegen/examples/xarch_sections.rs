//! Writes `<dir>/<arch>.rs` for every architecture: the section files of `xarch/README.md` ("The
//! section ABI"), generated from the `rseq!` sequences of `tests/golden/sources/xarch.rs` by the same
//! code generator the macro uses. Then `xarch/run --sections <dir>` runs them.
//!
//!     cargo run -p rseq-codegen --example xarch_sections -- <dir>

use std::path::{Path, PathBuf};

use rseq_codegen::standalone::xarch_section_file;
use rseq_codegen::{compile, find_sequences, Arch};

/// The file names `xarch/run` expects (armv7 for arm).
fn file_name(arch: Arch) -> &'static str {
    match arch {
        Arch::Arm => "armv7",
        other => other.name(),
    }
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: xarch_sections <dir>");
        std::process::exit(2)
    }));
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/sources/xarch.rs");
    let text = std::fs::read_to_string(&src).expect("read xarch.rs");
    let file = syn::parse_file(&text).expect("parse xarch.rs");
    let compiled: Vec<_> = find_sequences(&file)
        .expect("rseq! invocations")
        .iter()
        .map(|f| compile(f).unwrap_or_else(|_| panic!("`{}` does not compile", f.sig.ident)))
        .collect();
    std::fs::create_dir_all(&dir).expect("create the output directory");
    for arch in Arch::ALL {
        let Some(text) = xarch_section_file(&compiled, arch) else {
            eprintln!("{}: no section file (a sequence was rejected)", arch.name());
            std::process::exit(1);
        };
        let path = dir.join(format!("{}.rs", file_name(arch)));
        std::fs::write(&path, text).expect("write the section file");
        println!("{}", path.display());
    }
}
