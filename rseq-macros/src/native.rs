//! The native path of one architecture: the thread's entry (`enter()`, or a `ThisThread` token's),
//! one `asm!` block from the codegen's data, and the outputs handed to the decode. Emitted under
//! the architecture's `#[cfg(target_arch)]`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use rseq_codegen::arch::{
    AsmBlock, InputSource, OperandKind, AREA_CPU_ID_OFFSET, AREA_MM_CID_OFFSET, AREA_RSEQ_CS_OFFSET,
};
use rseq_codegen::ir::{IndexMode, ParamKind, Sequence};

use crate::names::{attempt_try, cfg_attr, mixed, word, Names};

pub fn block(seq: &Sequence, b: &AsmBlock, names: &Names) -> TokenStream {
    let cfg = cfg_attr(b.arch);
    // The thread's entry: looked up in the thread-local, or taken from a `ThisThread` parameter
    // (the caller looked it up once for many sections).
    let enter = match (seq.index, seq.thread_param()) {
        (IndexMode::CpuId, None) => quote!(::rseq_dsl::__private::enter()),
        (IndexMode::MmCid, None) => quote!(::rseq_dsl::__private::enter_mm_cid()),
        (IndexMode::CpuId, Some(p)) => {
            let t = &seq.params[p].ident;
            quote!(::rseq_dsl::__private::thread_entry(#t))
        }
        (IndexMode::MmCid, Some(p)) => {
            let t = &seq.params[p].ident;
            quote!(::rseq_dsl::__private::thread_entry_mm_cid(#t))
        }
    };
    let try_enter = attempt_try(&enter);
    let area = mixed("__rseq_area");
    let lines = b.template();
    // 64-bit architectures pass the canonical `u64` words as they are; where registers hold 32
    // bits (arm) the words are truncated to `usize` (every value there fits 32 bits, the codegen
    // rejects 64-bit types) and outputs are widened back to `u64` for the decode.
    let narrow = b.word_type() != "u64";
    let word_ty = format_ident!("{}", b.word_type());
    let scratch: Vec<syn::Ident> = b
        .scratch
        .iter()
        .map(|s| mixed(&format!("__rseq_{s}")))
        .collect();
    let status = mixed("__rseq_st");
    // Spilled inputs: one array of words on the stack, read by the section through `spill`.
    let spill = mixed("__rseq_spill");
    let spill_words: Vec<TokenStream> = b
        .spilled
        .iter()
        .map(|i| {
            let v = input_value(seq, &i.source, &area, narrow);
            quote!((#v) as #word_ty)
        })
        .collect();
    let spill_len = spill_words.len();
    let spill_decl =
        (spill_len > 0).then(|| quote!(let #spill: [#word_ty; #spill_len] = [#(#spill_words),*];));
    // The operand list is the codegen's (`AsmBlock::operands`, shared with standalone items).
    let mut operands = Vec::new();
    for op in b.operands() {
        let name = format_ident!("{}", op.name.unwrap_or("_"));
        let class = format_ident!("{}", op.class);
        match op.kind {
            OperandKind::Sym => {
                // Injection points read their delay counts PC-relative (no register).
                operands.push(quote!(#name = sym ::rseq_dsl::__private::INJECT_DELAYS));
            }
            OperandKind::Const => {
                let Some(InputSource::RustOperand(e)) = op.input.map(|i| &i.source) else {
                    unreachable!("only Rust operands are const operands")
                };
                let expr = &seq.rust_operands[*e].expr;
                operands.push(quote!(#name = const #expr));
            }
            OperandKind::In if op.input.map(|i| &i.source) == Some(&InputSource::Spill) => {
                operands.push(quote!(#name = in(#class) #spill.as_ptr()));
            }
            OperandKind::In => {
                let value = input_value(seq, &op.input.expect("an input").source, &area, narrow);
                operands.push(quote!(#name = in(#class) #value));
            }
            OperandKind::Out if op.name == Some(b.status.as_str()) => {
                operands.push(quote!(#name = out(#class) #status));
            }
            OperandKind::Out => {
                let k = b
                    .scratch
                    .iter()
                    .position(|s| Some(s.as_str()) == op.name)
                    .expect("a scratch output");
                let var = &scratch[k];
                operands.push(quote!(#name = out(#class) #var));
            }
            OperandKind::Clobber => {
                let reg = op.class;
                operands.push(quote!(out(#reg) _));
            }
        }
    }
    let options: Vec<syn::Ident> = b.options.iter().map(|o| format_ident!("{}", o)).collect();
    let var_of = |name: &str| mixed(&format!("__rseq_{name}"));
    let widen = |v: syn::Ident| {
        if narrow {
            quote!(#v as u64)
        } else {
            quote!(#v)
        }
    };
    let aux = match &b.index {
        Some(s) => widen(var_of(s)),
        None => quote!(0u64),
    };
    let locals: Vec<TokenStream> = seq
        .escaping_locals()
        .iter()
        .map(|&l| match b.locals.iter().find(|(loc, _)| *loc == l) {
            Some((_, s)) => widen(var_of(s)),
            None => quote!(0u64),
        })
        .collect();
    let status_word = widen(status.clone());
    let sig = b.arch.signature();
    let [cs, cpu, mm] = [AREA_RSEQ_CS_OFFSET, AREA_CPU_ID_OFFSET, AREA_MM_CID_OFFSET]
        .map(|o| proc_macro2::Literal::usize_unsuffixed(o as usize));
    let run = &names.run;
    let inject_check = b
        .inputs
        .iter()
        .any(|i| i.source == InputSource::InjectDelays)
        .then(|| {
            let n = rseq_codegen::ir::InjectPoint::ALL.len();
            quote!(::core::assert!(::rseq_dsl::__private::INJECT_POINTS == #n);)
        });
    quote! {
        #cfg
        {
            // The emitter's constants must match the runtime's (signature and area layout).
            const _: () = {
                ::core::assert!(::rseq_dsl::__private::RSEQ_SIG == #sig);
                ::core::assert!(::rseq_dsl::__private::AREA_RSEQ_CS_OFFSET == #cs);
                ::core::assert!(::rseq_dsl::__private::AREA_CPU_ID_OFFSET == #cpu);
                ::core::assert!(::rseq_dsl::__private::AREA_MM_CID_OFFSET == #mm);
                #inject_check
            };
            if let ::rseq_dsl::__private::Entry::Native(#area) = #try_enter {
                let #status: #word_ty;
                #(let #scratch: #word_ty;)*
                #spill_decl
                #[allow(clippy::undocumented_unsafe_blocks)]
                unsafe {
                    ::core::arch::asm!(
                        #(#lines,)*
                        #(#operands,)*
                        options(#(#options),*)
                    );
                }
                break #run (#status_word, #aux, [#(#locals),*]);
            }
        }
    }
}

/// The Rust value of a register input (`narrow`: truncate the canonical word to `usize`).
fn input_value(
    seq: &Sequence,
    source: &InputSource,
    area: &syn::Ident,
    narrow: bool,
) -> TokenStream {
    let word_value = |w: TokenStream| {
        if narrow {
            quote!((#w) as usize)
        } else {
            w
        }
    };
    match source {
        InputSource::Area => quote!(#area),
        InputSource::Base(p) => {
            let raw = Names::raw(*p);
            quote!(#raw.base)
        }
        InputSource::Stride(p) => {
            let raw = Names::raw(*p);
            quote!(#raw.stride)
        }
        InputSource::Len(p) => {
            let raw = Names::raw(*p);
            quote!(#raw.len)
        }
        InputSource::Param(p) => {
            let param = &seq.params[*p];
            let ParamKind::Word(w) = &param.kind else {
                unreachable!("only word parameters are operands")
            };
            let wt = word(&w.ty);
            let id = &param.ident;
            word_value(quote!(#wt::to_word(#id)))
        }
        InputSource::RustOperand(e) => {
            let wt = word(&seq.rust_operands[*e].ty.ty);
            let id = Names::rust_operand(*e);
            word_value(quote!(#wt::to_word(#id)))
        }
        InputSource::SlotAddr(l) => {
            let slot = Names::slot(*l);
            quote!(#slot)
        }
        InputSource::InjectDelays => unreachable!("a sym operand"),
        InputSource::Spill => unreachable!("the spill array is built from the spilled inputs"),
    }
}

/// A sequence an architecture's emitter rejected: the error, under that architecture's `cfg`
/// only (a proc macro cannot know its target; building for another architecture is unaffected).
pub fn arch_error(arch: rseq_codegen::Arch, e: &rseq_codegen::Error) -> TokenStream {
    let cfg = cfg_attr(arch);
    let err = e.to_syn().to_compile_error();
    quote!(#cfg #err)
}
