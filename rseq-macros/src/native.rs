//! The native path of one architecture: `enter()`, one `asm!` block from the codegen's data, and
//! the outputs handed to the decode. Emitted under the architecture's `#[cfg(target_arch)]`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use rseq_codegen::arch::{
    AsmBlock, InputSource, AREA_CPU_ID_OFFSET, AREA_MM_CID_OFFSET, AREA_RSEQ_CS_OFFSET,
};
use rseq_codegen::ir::{IndexMode, ParamKind, Sequence};

use crate::expand::{cfg_attr, mixed, word, Names};

pub fn block(seq: &Sequence, b: &AsmBlock, names: &Names) -> TokenStream {
    let cfg = cfg_attr(b.arch);
    let enter = match seq.index {
        IndexMode::CpuId => quote!(enter),
        IndexMode::MmCid => quote!(enter_mm_cid),
    };
    let area = mixed("__rseq_area");
    let lines = b.template();
    let mut operands = Vec::new();
    for input in &b.inputs {
        let name = format_ident!("{}", input.name);
        if input.source == InputSource::InjectDelays {
            // Injection points read their delay counts RIP-relative (no register): a `sym` operand.
            operands.push(quote!(#name = sym ::rseq_dsl::__private::INJECT_DELAYS));
            continue;
        }
        if input.is_const {
            let InputSource::Ext(e) = input.source else {
                unreachable!("only Rust operands are const operands")
            };
            let expr = &seq.externals[e].expr;
            operands.push(quote!(#name = const #expr));
            continue;
        }
        let value = match &input.source {
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
                quote!(#wt::to_word(#id))
            }
            InputSource::Ext(e) => {
                let wt = word(&seq.externals[*e].ty.ty);
                let id = Names::ext(*e);
                quote!(#wt::to_word(#id))
            }
            InputSource::SlotAddr(l) => {
                let slot = Names::slot(*l);
                quote!(#slot)
            }
            InputSource::InjectDelays => unreachable!("a sym operand, handled above"),
        };
        operands.push(quote!(#name = in(reg) #value));
    }
    let scratch: Vec<syn::Ident> = b
        .scratch
        .iter()
        .map(|s| mixed(&format!("__rseq_{s}")))
        .collect();
    for (s, var) in b.scratch.iter().zip(&scratch) {
        let name = format_ident!("{}", s);
        operands.push(quote!(#name = out(reg) #var));
    }
    let status = mixed("__rseq_st");
    let status_name = format_ident!("{}", b.status);
    operands.push(quote!(#status_name = out(reg) #status));
    for c in &b.clobbers {
        operands.push(quote!(out(#c) _));
    }
    let options: Vec<syn::Ident> = b.options.iter().map(|o| format_ident!("{}", o)).collect();
    let var_of = |name: &str| mixed(&format!("__rseq_{name}"));
    let aux = match &b.index {
        Some(s) => {
            let v = var_of(s);
            quote!(#v)
        }
        None => quote!(0u64),
    };
    let locals: Vec<TokenStream> = seq
        .escaping_locals()
        .into_iter()
        .map(|l| match b.locals.iter().find(|(loc, _)| *loc == l) {
            Some((_, s)) => {
                let v = var_of(s);
                quote!(#v)
            }
            None => quote!(0u64),
        })
        .collect();
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
            if let ::rseq_dsl::__private::Entry::Native(#area) = ::rseq_dsl::__private::#enter()? {
                let #status: u64;
                #(let #scratch: u64;)*
                #[allow(clippy::undocumented_unsafe_blocks)]
                unsafe {
                    ::core::arch::asm!(
                        #(#lines,)*
                        #(#operands,)*
                        options(#(#options),*)
                    );
                }
                break #run (#status, #aux, [#(#locals),*]);
            }
        }
    }
}
