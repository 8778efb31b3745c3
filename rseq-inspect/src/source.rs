//! Source view: every `rseq!` sequence of a Rust file rendered as annotated assembly per architecture.
//!
//! The parser, validation and emitters are `rseq-codegen`'s, the very code the macro runs, so a
//! sequence that does not compile shows the macro's error text here, located as `file:line:column`.

use std::fmt::Write as _;

use rseq_codegen::{compile, find_sequences, render, Arch};

/// Which architectures and sequences to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceOptions {
    /// Architectures to render, in order.
    pub arches: Vec<Arch>,
    /// Only the sequence with this name.
    pub function: Option<String>,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            arches: vec![Arch::X86_64],
            function: None,
        }
    }
}

/// The rendered view of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceView {
    /// The text to print (assembly and error lines).
    pub text: String,
    /// Sequences shown.
    pub sequences: usize,
    /// Sequences that failed to compile.
    pub failed: usize,
}

/// Why a file cannot be shown at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// The file is not valid Rust, or an `rseq!` invocation does not parse (`file:line:col: message`).
    Parse(String),
    /// `--fn` named no sequence of the file.
    NoSuchFunction(String),
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceError::Parse(m) => f.write_str(m),
            SourceError::NoSuchFunction(name) => write!(f, "no `rseq!` sequence named `{name}`"),
        }
    }
}

impl std::error::Error for SourceError {}

fn location(file: &str, span: proc_macro2::Span) -> String {
    let start = span.start();
    format!("{file}:{}:{}", start.line, start.column + 1)
}

/// Renders every sequence of `source` (the text of `file`).
///
/// # Errors
/// [`SourceError::Parse`] when the file or an invocation does not parse, [`SourceError::NoSuchFunction`]
/// when `options.function` matches nothing.
pub fn view(file: &str, source: &str, options: &SourceOptions) -> Result<SourceView, SourceError> {
    let parsed = syn::parse_file(source)
        .map_err(|e| SourceError::Parse(format!("{}: error: {e}", location(file, e.span()))))?;
    let fns = find_sequences(&parsed)
        .map_err(|e| SourceError::Parse(format!("{}: error: {e}", location(file, e.span()))))?;
    let mut view = SourceView {
        text: String::new(),
        sequences: 0,
        failed: 0,
    };
    for f in &fns {
        let name = f.sig.ident.to_string();
        if options.function.as_ref().is_some_and(|want| *want != name) {
            continue;
        }
        view.sequences += 1;
        let at = location(file, f.sig.ident.span());
        match compile(f) {
            Err(errors) => {
                view.failed += 1;
                for e in errors {
                    let _ = writeln!(view.text, "{}: error: {}", location(file, e.span), e.kind);
                }
            }
            Ok(compiled) => {
                let mut rejected = false;
                for &arch in &options.arches {
                    if let Some(e) = compiled.arch_error(arch) {
                        // The macro reports this error when compiling for `arch` only.
                        rejected = true;
                        let _ = writeln!(
                            view.text,
                            "{}: error: {} (when compiling for {})",
                            location(file, e.span),
                            e.kind,
                            arch.name()
                        );
                        continue;
                    }
                    let _ = writeln!(view.text, "== {at} `{name}` for {}", arch.name());
                    match render(&compiled, arch) {
                        Some(asm) => view.text.push_str(&asm),
                        None => {
                            let _ = writeln!(
                                view.text,
                                "# no emitter for {} yet: the generated code runs the fallback body there",
                                arch.name()
                            );
                        }
                    }
                    view.text.push('\n');
                }
                view.failed += usize::from(rejected);
            }
        }
    }
    if let (Some(name), 0) = (&options.function, view.sequences) {
        return Err(SourceError::NoSuchFunction(name.clone()));
    }
    Ok(view)
}
