//! What the three generators (`expand`: wrappers and decode, `native`: the `asm!` blocks,
//! `fallback`: the locked body) share: the names of generated locals, the attempt block's `?`,
//! word conversions and `cfg` attributes. It depends on none of them, so
//! the generators depend on it and not on each other.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use rseq_codegen::ir::Sequence;
use rseq_codegen::Arch;

pub fn mixed(name: &str) -> syn::Ident {
    syn::Ident::new(name, Span::mixed_site())
}

/// Names of the per-sequence generated locals.
pub struct Names {
    pub run: syn::Lifetime,
    pub status: syn::Ident,
    pub aux: syn::Ident,
    pub locals: syn::Ident,
}

impl Names {
    pub fn new() -> Names {
        Names {
            run: syn::Lifetime::new("'__rseq_run", Span::mixed_site()),
            status: mixed("__rseq_status"),
            aux: mixed("__rseq_aux"),
            locals: mixed("__rseq_locals"),
        }
    }
    pub fn raw(p: usize) -> syn::Ident {
        mixed(&format!("__rseq_raw{p}"))
    }
    pub fn rust_operand(e: usize) -> syn::Ident {
        mixed(&format!("__rseq_e{e}"))
    }
    pub fn cpu(l: usize) -> syn::Ident {
        mixed(&format!("__rseq_cpu{l}"))
    }
    pub fn slot(l: usize) -> syn::Ident {
        mixed(&format!("__rseq_slot{l}"))
    }
    pub fn local(l: usize) -> syn::Ident {
        mixed(&format!("__rseq_l{l}"))
    }
    pub fn len(step: usize) -> syn::Ident {
        mixed(&format!("__rseq_len{step}"))
    }
}

/// The label of one attempt's block (`'__rseq_attempt: { .. }`, a `Result<R, Error>`).
pub fn attempt_label() -> syn::Lifetime {
    syn::Lifetime::new("'__rseq_attempt", Span::mixed_site())
}

/// `expr?` inside an attempt: an error ends the attempt with it (a `?` would leave the fn, whose
/// return type is not a `Result` in the infallible form).
pub fn attempt_try(expr: &TokenStream) -> TokenStream {
    let label = attempt_label();
    let (x, e) = (mixed("__rseq_ok"), mixed("__rseq_err"));
    quote! {
        match #expr {
            ::core::result::Result::Ok(#x) => #x,
            ::core::result::Result::Err(#e) => break #label ::core::result::Result::Err(#e),
        }
    }
}

/// `<T as Word>` for a word type.
pub fn word(ty: &syn::Type) -> TokenStream {
    quote!(<#ty as ::rseq_dsl::__private::Word>)
}

/// Rust expression (a `u64` word) for a parameter or a Rust operand: the values computed before the section.
pub fn word_before_section(seq: &Sequence, o: &rseq_codegen::ir::Operand) -> TokenStream {
    match &o.node {
        rseq_codegen::ir::Node::Param(p) => {
            let id = &seq.params[*p].ident;
            let w = word(&o.ty.ty);
            quote!(#w::to_word(#id))
        }
        rseq_codegen::ir::Node::RustOperand(e) => {
            let id = Names::rust_operand(*e);
            let w = word(&o.ty.ty);
            quote!(#w::to_word(#id))
        }
        _ => unreachable!("checked by lowering: only parameters and Rust operands are evaluated before the section"),
    }
}

pub fn cfg_attr(arch: Arch) -> TokenStream {
    match arch.cfg() {
        (a, None) => quote!(#[cfg(target_arch = #a)]),
        (a, Some(endian)) => quote!(#[cfg(all(target_arch = #a, target_endian = #endian))]),
    }
}
