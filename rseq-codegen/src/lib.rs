//! The `rseq!` compiler as a plain library: parse -> lower to IR -> validate -> emit per architecture
//! -> render. It never names `proc_macro`; emitters return asm blocks as data (template lines,
//! operands, options) that `rseq-macros` turns into tokens and tools print.
//!
//! ```
//! let tokens: proc_macro2::TokenStream = r#"
//!     pub fn counter_add(counters: &PerCpu<u64>, n: u64) {
//!         let slot = counters.current();
//!         let v = load(slot);
//!         commit store(slot, v + n);
//!     }
//! "#.parse().unwrap();
//! let fns = rseq_codegen::parse(tokens).unwrap();
//! let compiled = rseq_codegen::compile(&fns[0]).unwrap();
//! let asm = rseq_codegen::render(&compiled, rseq_codegen::Arch::X86_64).unwrap();
//! assert!(asm.contains(".pushsection __rseq_cs"));
//! ```
//!
//! Module map: [`parse`](mod@parse) (syntax), [`lower`] (names and types, to [`ir`]), [`validate`] (rules),
//! [`semantics`] (what each step means, for the emitters and the fallback body alike), [`arch`]
//! (emitters, register allocation), [`render`](mod@render) (annotated text), [`find`]
//! (invocations in a file), [`error`] (typed errors with spans), [`standalone`] (blocks as
//! `extern "C"` items), `pretty.rs` (the token printer, [`pretty()`]). The DSL is documented in
//! `docs/DSL.md`.

pub mod arch;
pub mod error;
pub mod find;
pub mod ir;
pub mod lower;
pub mod parse;
mod pretty;
pub mod render;
pub mod semantics;
pub mod standalone;
pub mod ty;
pub mod validate;

use proc_macro2::TokenStream;

pub use arch::{Arch, AsmBlock};
pub use error::{Error, ErrorKind};
pub use find::find_sequences;
pub use ir::Sequence;
pub use parse::SeqFn;
pub use pretty::pretty;

/// A sequence that passed parse, lower and validate, with one block per architecture whose
/// emitter accepted it.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub seq: Sequence,
    pub blocks: Vec<AsmBlock>,
    /// Architectures whose emitter rejected the sequence (register budget, 64-bit values on a
    /// 32-bit architecture). A proc macro cannot know its target, so the macro reports each of
    /// these under that architecture's `#[cfg(target_arch)]` only: building for another
    /// architecture is unaffected.
    pub arch_errors: Vec<(Arch, Error)>,
}

impl Compiled {
    pub fn block(&self, arch: Arch) -> Option<&AsmBlock> {
        self.blocks.iter().find(|b| b.arch == arch)
    }

    /// Why `arch`'s emitter rejected the sequence, if it did.
    pub fn arch_error(&self, arch: Arch) -> Option<&Error> {
        self.arch_errors
            .iter()
            .find(|(a, _)| *a == arch)
            .map(|(_, e)| e)
    }
}

/// Parses the input of one `rseq!` invocation.
pub fn parse(tokens: TokenStream) -> syn::Result<Vec<SeqFn>> {
    Ok(syn::parse2::<parse::SeqFile>(tokens)?.fns)
}

/// Runs lower, validate and emit on one sequence. Each phase's errors are returned together; a
/// phase runs only if the previous one succeeded. Emit errors are per architecture
/// ([`Compiled::arch_errors`]), not a failure of the sequence.
pub fn compile(f: &SeqFn) -> Result<Compiled, Vec<Error>> {
    compile_with(f, ir::Instrument::default())
}

/// [`compile`] with instrumentation turned on in addition to the sequence's own `#[rseq(inject)]` /
/// `#[rseq(debug_checks)]` attributes (the macro passes the `inject` / `debug-checks` features here).
pub fn compile_with(f: &SeqFn, instrument: ir::Instrument) -> Result<Compiled, Vec<Error>> {
    let mut seq = lower::lower(f)?;
    seq.instrument(instrument);
    let errors = validate::validate(&seq, f.close);
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut blocks = Vec::new();
    let mut arch_errors = Vec::new();
    for em in Arch::ALL.into_iter().filter_map(Arch::emitter) {
        match arch::emit(&seq, em) {
            Ok(b) => blocks.push(b),
            Err(e) => arch_errors.push((em.arch(), e)),
        }
    }
    Ok(Compiled {
        seq,
        blocks,
        arch_errors,
    })
}

/// The annotated asm of a compiled sequence for `arch`, or `None` when `arch` has no emitter.
pub fn render(c: &Compiled, arch: Arch) -> Option<String> {
    c.block(arch).map(|b| render::render(&c.seq, b))
}

#[cfg(test)]
mod tests;
