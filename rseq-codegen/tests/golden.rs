//! Golden asm: every sequence in `../examples/*.rs` and `tests/golden/sources/*.rs`, rendered for
//! every architecture with an emitter, must equal `tests/golden/<arch>/<file>__<fn>.s`.
//! `RSEQ_DSL_BLESS=1` rewrites the files (review them as a diff).

use std::fs;
use std::path::{Path, PathBuf};

use rseq_codegen::{compile, find_sequences, render, Arch};

fn sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [root.join("../examples"), root.join("tests/golden/sources")] {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn golden_asm() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bless = std::env::var_os("RSEQ_DSL_BLESS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    let mut checked = 0;
    for src in sources() {
        let text = fs::read_to_string(&src).expect("read source");
        let file = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        let stem = src.file_stem().unwrap().to_string_lossy().into_owned();
        let fns = find_sequences(&file).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        for f in fns {
            let compiled = compile(&f).unwrap_or_else(|es| {
                panic!(
                    "{}: `{}`: {:?}",
                    src.display(),
                    f.sig.ident,
                    es.iter().map(|e| e.kind.to_string()).collect::<Vec<_>>()
                )
            });
            for arch in Arch::ALL {
                // A sequence an emitter rejects has its error as the golden text.
                let Some(asm) = render(&compiled, arch).or_else(|| {
                    compiled.arch_error(arch).map(|e| {
                        format!(
                            "# rseq sequence `{}` for {}: not emitted\n# error: {}\n",
                            f.sig.ident,
                            arch.name(),
                            e.kind
                        )
                    })
                }) else {
                    continue;
                };
                let path = root
                    .join(arch.name())
                    .join(format!("{stem}__{}.s", f.sig.ident));
                checked += 1;
                if bless {
                    fs::create_dir_all(path.parent().unwrap()).unwrap();
                    fs::write(&path, &asm).unwrap();
                } else if fs::read_to_string(&path).ok().as_deref() != Some(asm.as_str()) {
                    failures.push(path.display().to_string());
                }
            }
        }
    }
    assert!(checked > 0, "no sequences found");
    assert!(
        failures.is_empty(),
        "golden asm differs (rerun with RSEQ_DSL_BLESS=1 and review the diff):\n{}",
        failures.join("\n")
    );
}
