//! The `rseq!` procedural macro (placeholder until the pipeline lands).
use proc_macro::TokenStream;

/// Compiles declarative per-CPU sequences into restartable sequences.
#[proc_macro]
pub fn rseq(input: TokenStream) -> TokenStream {
    let _ = input;
    TokenStream::new()
}
