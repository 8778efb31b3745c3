use crate::{compile, parse, render, Arch, Compiled, ErrorKind};

fn compile_one(src: &str) -> Result<Compiled, Vec<ErrorKind>> {
    let fns =
        parse(src.parse().expect("tokens")).map_err(|e| vec![ErrorKind::Syntax(e.to_string())])?;
    compile(&fns[0]).map_err(|es| es.into_iter().map(|e| e.kind).collect())
}

fn asm(src: &str) -> String {
    let c = compile_one(src).unwrap_or_else(|e| panic!("{e:?}"));
    render(&c, Arch::X86_64).expect("x86_64 emitter")
}

#[test]
fn scratch_print() {
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/sources/issue3.rs"
    ))
    .unwrap();
    let file = syn::parse_file(&src).unwrap();
    for f in crate::find_sequences(&file).unwrap() {
        match compile(&f) {
            Ok(c) => println!("{}", render(&c, Arch::X86_64).unwrap()),
            Err(e) => println!(
                "{:?}",
                e.iter().map(|e| e.kind.to_string()).collect::<Vec<_>>()
            ),
        }
    }
    let _ = asm;
}
