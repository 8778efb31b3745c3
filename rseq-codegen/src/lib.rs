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
//! [`arch`] (emitters, register allocation), [`render`](mod@render) (annotated text), [`find`]
//! (invocations in a file), [`error`] (typed errors with spans). The DSL is documented in
//! `docs/DSL.md`.

pub mod arch;
pub mod error;
pub mod find;
pub mod ir;
pub mod lower;
pub mod parse;
pub mod render;
pub mod standalone;
pub mod ty;
pub mod validate;

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};

pub use arch::{Arch, AsmBlock};
pub use error::{Error, ErrorKind};
pub use find::find_sequences;
pub use ir::Sequence;
pub use parse::SeqFn;

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

/// Tokens joined the way people write them (`load::<u64>(slot + 8)`), for messages and annotations.
pub fn pretty(ts: &TokenStream) -> String {
    let mut out = String::new();
    let mut glue = true; // no space before the next token
    let mut prev_word = false; // ident, literal, group, or the `>` closing a turbofish
    let mut prev_joint = false; // a punct that continues into the next (`::`, `==`, `<<`)
    let mut prev_colons = false; // the previous two tokens were `::`
    let mut angle = 0usize;
    for tt in ts.clone() {
        let mut space = !glue;
        let mut glue_after = false;
        let mut word = false;
        let (mut joint, mut colons) = (false, false);
        let text = match &tt {
            TokenTree::Group(g) => {
                let inner = pretty(&g.stream());
                let (o, c) = match g.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{ ", " }"),
                    Delimiter::None => ("", ""),
                };
                if prev_word && g.delimiter() != Delimiter::Brace {
                    space = false;
                }
                word = true;
                format!("{o}{inner}{c}")
            }
            TokenTree::Ident(i) => {
                word = true;
                i.to_string()
            }
            TokenTree::Literal(l) => {
                word = true;
                l.to_string()
            }
            TokenTree::Punct(p) => {
                let ch = p.as_char();
                joint = p.spacing() == Spacing::Joint;
                if prev_joint {
                    space = false;
                }
                match ch {
                    ',' | ';' => space = false,
                    '.' => {
                        space = false;
                        glue_after = true;
                    }
                    ':' if joint && prev_word => space = false,
                    ':' if prev_joint => {
                        glue_after = true;
                        colons = true;
                    }
                    '<' if prev_colons => {
                        angle += 1;
                        glue_after = true;
                    }
                    '>' if angle > 0 => {
                        angle -= 1;
                        space = false;
                        word = true;
                    }
                    '!' if prev_word && !joint => {
                        space = false;
                        glue_after = true;
                    }
                    '*' | '&' | '-' | '!' if !prev_word => glue_after = true,
                    _ => glue_after = joint,
                }
                ch.to_string()
            }
        };
        if space && !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&text);
        glue = glue_after;
        prev_word = word;
        prev_joint = joint;
        prev_colons = colons;
    }
    out
}

#[cfg(test)]
mod tests;
