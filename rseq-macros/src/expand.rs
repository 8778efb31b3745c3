//! The macro pipeline: parse -> compile (codegen) -> dump -> tokens. Fails soft: a sequence with
//! errors still gets its two fn signatures, with `unreachable!()` bodies, beside the errors.

use std::path::PathBuf;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use rseq_codegen::ir::{
    ExitKind, IndexMode, Instrument, MemcpyLen, ParamKind, Sequence, StepKind, MEMCPY_MAX,
};
use rseq_codegen::{Compiled, SeqFn};
use syn::ext::IdentExt;
use syn::ReturnType;

use crate::names::{attempt_label, mixed, word, word_before_section, Names};
use crate::{fallback, native};

pub fn expand(input: TokenStream) -> TokenStream {
    let fns = match rseq_codegen::parse(input) {
        Ok(fns) => fns,
        Err(e) => return e.to_compile_error(),
    };
    let mut out = TokenStream::new();
    // The `inject` / `debug-checks` features of `rseq-dsl` turn these on for the whole build (the
    // facade forwards them to this crate); `#[rseq(inject)]` / `#[rseq(debug_checks)]` per sequence.
    let instrument = Instrument {
        inject: cfg!(feature = "inject"),
        debug_checks: cfg!(feature = "debug-checks"),
    };
    for f in &fns {
        match rseq_codegen::compile_with(f, instrument) {
            Ok(c) => {
                if let Err(e) = dump(&c) {
                    out.extend(e.to_compile_error());
                }
                out.extend(generate(&c));
                for (arch, e) in &c.arch_errors {
                    out.extend(native::arch_error(*arch, e));
                }
            }
            Err(errors) => {
                if let Some(e) = rseq_codegen::error::combine(&errors) {
                    out.extend(e.to_compile_error());
                }
                out.extend(fail_soft(f));
            }
        }
    }
    out
}

/// `RSEQ_DSL_DUMP=<dir>`: writes `<dir>/<fn>.<arch>.s` for every architecture with an emitter.
fn dump(c: &Compiled) -> syn::Result<()> {
    let Some(dir) = std::env::var_os("RSEQ_DSL_DUMP") else {
        return Ok(());
    };
    let dir = PathBuf::from(dir);
    for block in &c.blocks {
        let path = dir.join(format!("{}.{}.s", c.seq.ident, block.arch.name()));
        let text = rseq_codegen::render::render(&c.seq, block);
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&path, text))
            .map_err(|e| {
                syn::Error::new(
                    c.seq.ident.span(),
                    format!(
                        "cannot write the `RSEQ_DSL_DUMP` file `{}`: {e}",
                        path.display()
                    ),
                )
            })?;
    }
    Ok(())
}

fn ret_type(output: &ReturnType) -> TokenStream {
    match output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, t) => t.to_token_stream(),
    }
}

/// The signature-only output for a sequence with errors.
fn fail_soft(f: &SeqFn) -> TokenStream {
    let attrs = f.attrs.iter().filter(|a| !a.path().is_ident("rseq"));
    let attrs: Vec<_> = attrs.collect();
    let vis = &f.vis;
    let sig = &f.sig;
    let mut try_sig = f.sig.clone();
    try_sig.ident = format_ident!("try_{}", f.sig.ident.unraw(), span = f.sig.ident.span());
    let ret = ret_type(&f.sig.output);
    try_sig.output = syn::parse_quote!(-> ::core::result::Result<#ret, ::rseq_dsl::Error>);
    quote! {
        #(#attrs)*
        #[allow(unused_variables, clippy::diverging_sub_expression)]
        #vis #sig { ::core::unreachable!() }
        #(#attrs)*
        #[allow(unused_variables, clippy::diverging_sub_expression)]
        #vis #try_sig { ::core::unreachable!() }
    }
}

fn generate(c: &Compiled) -> TokenStream {
    let seq = &c.seq;
    let names = Names::new();
    let attrs = &seq.attrs;
    let vis = &seq.vis;
    let unsafety = &seq.unsafety;
    let ident = &seq.ident;
    let try_ident = format_ident!("try_{}", ident.unraw(), span = ident.span());
    let (generics, where_clause) = (&seq.generics, &seq.generics.where_clause);
    let inputs = &seq.inputs;
    let ret = ret_type(&seq.output);
    let result_form = seq.index == IndexMode::MmCid || seq.explicit_cpu();

    // Both fns carry the whole body (no call from one to the other): a call would need `try_name`
    // in a free fn but `Self::try_name` in an `impl` block, and the macro cannot tell which it is
    // in. The body is one expression per attempt; what comes before the section (Rust operands,
    // `on_cpu` bounds, memcpy caps) is evaluated once per call of either fn.
    let native_blocks: Vec<TokenStream> = c
        .blocks
        .iter()
        .map(|b| native::block(seq, b, &names))
        .collect();
    let fallback = fallback::body(seq);
    let decode = decode(seq, &names);
    let (status, aux, locals) = (&names.status, &names.aux, &names.locals);
    let run = &names.run;
    let n_esc = seq.escaping_locals().len();
    let attempt_label = attempt_label();
    // The fallback body runs behind a call to a cold, never-inlined function (a `move` closure:
    // every parameter, Rust operand and prologue value is `Copy`, and copying them only on the cold
    // path keeps their addresses from being taken on the hot one): the registered thread's path is
    // the native block alone, with no callee-saved registers to save for the fallback's needs.
    let (fb_out, fb_err) = (mixed("__rseq_fb_out"), mixed("__rseq_fb_err"));
    let attempt = quote! {
        #attempt_label: {
            let (#status, #aux, #locals): (u64, u64, [u64; #n_esc]) = #run: {
                #(#native_blocks)*
                match ::rseq_dsl::__private::run_cold(
                    move || -> ::core::result::Result<(u64, u64, [u64; #n_esc]), ::rseq_dsl::Error> {
                        #attempt_label: { ::core::result::Result::Ok(#fallback) }
                    },
                ) {
                    ::core::result::Result::Ok(#fb_out) => #fb_out,
                    ::core::result::Result::Err(#fb_err) => break #attempt_label ::core::result::Result::Err(#fb_err),
                }
            };
            #decode
        }
    };

    let e = mixed("e");
    let v = mixed("v");
    let fail_try = |err: TokenStream| quote!(return ::core::result::Result::Err(#err));
    let prologue_try = prologue(seq, fail_try);
    let (wrapper_ret, on_ok, on_err, prologue_wrapper) = if result_form {
        (
            quote!(::core::result::Result<#ret, ::rseq_dsl::Error>),
            quote!(return ::core::result::Result::Ok(#v)),
            quote!(return ::core::result::Result::Err(#e)),
            prologue(seq, fail_try),
        )
    } else {
        (
            quote!(#ret),
            quote!(return #v),
            quote!(::rseq_dsl::__private::unrecoverable(#e)),
            prologue(
                seq,
                |err| quote!(::rseq_dsl::__private::unrecoverable(#err)),
            ),
        )
    };
    let try_doc = format!(
        " Single attempt of [`{ident}`]: `Err(Error::Aborted)` when the kernel restarted the section (nothing was committed)."
    );
    quote_spanned! {Span::mixed_site()=>
        #(#attrs)*
        #[doc = ""]
        #[doc = #try_doc]
        #[allow(clippy::needless_return, unreachable_code, clippy::unit_arg)]
        #vis #unsafety fn #try_ident #generics (#inputs) -> ::core::result::Result<#ret, ::rseq_dsl::Error> #where_clause {
            #prologue_try
            #attempt
        }

        #(#attrs)*
        #[allow(clippy::needless_return, unreachable_code, clippy::unit_arg)]
        #vis #unsafety fn #ident #generics (#inputs) -> #wrapper_ret #where_clause {
            #prologue_wrapper
            loop {
                match #attempt {
                    ::core::result::Result::Ok(#v) => #on_ok,
                    ::core::result::Result::Err(::rseq_dsl::Error::Aborted) => {}
                    ::core::result::Result::Err(#e) => #on_err,
                }
            }
        }
    }
}

/// Everything evaluated before the section, once per call: raw per-CPU parts (typed by index mode),
/// Rust operands, explicit-CPU bounds checks and slot addresses, memcpy length caps. `fail` turns an
/// `Error` expression into what the fn does with it (return it, or `unrecoverable`).
fn prologue(seq: &Sequence, fail: impl Fn(TokenStream) -> TokenStream) -> TokenStream {
    let mut out = TokenStream::new();
    if let Some(p) = seq.thread_param() {
        // Used by the native blocks only; a target without one runs the fallback body.
        let t = &seq.params[p].ident;
        out.extend(quote!(let _ = #t;));
    }
    for (p, param) in seq.params.iter().enumerate() {
        if let ParamKind::PerCpu { mode, .. } = &param.kind {
            let raw = Names::raw(p);
            let id = &param.ident;
            let f = match mode {
                IndexMode::CpuId => quote!(raw_by_cpu),
                IndexMode::MmCid => quote!(raw_by_mm_cid),
            };
            out.extend(quote! {
                let #raw: ::rseq_dsl::__private::RawPerCpu = ::rseq_dsl::__private::#f(#id);
            });
        }
    }
    for (i, ext) in seq.rust_operands.iter().enumerate() {
        let id = Names::rust_operand(i);
        let ty = &ext.ty.ty;
        let expr = &ext.expr;
        out.extend(quote!(let #id: #ty = #expr;));
    }
    for (local, param, cpu) in seq.slots() {
        let Some(cpu) = cpu else { continue };
        let raw = Names::raw(param);
        let cpu_id = Names::cpu(local);
        let slot = Names::slot(local);
        let w = word_before_section(seq, cpu);
        let err =
            fail(quote!(::rseq_dsl::Error::IndexOutOfRange { index: #cpu_id, len: #raw.len }));
        out.extend(quote! {
            #[allow(clippy::cast_possible_truncation)]
            let #cpu_id: usize = (#w) as usize;
            if #cpu_id >= #raw.len {
                #err;
            }
            let #slot: *mut u8 = #raw.base.wrapping_add(#cpu_id * #raw.stride);
        });
    }
    for (i, step) in seq.steps.iter().enumerate() {
        if let StepKind::Memcpy {
            len: MemcpyLen::Runtime(o),
            ..
        } = &step.kind
        {
            let len = Names::len(i);
            let w = word_before_section(seq, o);
            let max = usize::try_from(MEMCPY_MAX).expect("cap fits usize");
            let err = fail(quote!(::rseq_dsl::Error::TooLong { len: #len, max: #max }));
            out.extend(quote! {
                #[allow(clippy::cast_possible_truncation)]
                let #len: usize = (#w) as usize;
                if #len > #max {
                    #err;
                }
            });
        }
    }
    out
}

/// Maps the status (and the outputs) of either path to the fn's result.
fn decode(seq: &Sequence, names: &Names) -> TokenStream {
    let (status, aux, locals) = (&names.status, &names.aux, &names.locals);
    let escaping = seq.escaping_locals();
    let bind = |ls: Vec<usize>| -> TokenStream {
        ls.into_iter()
            .map(|l| {
                let k = escaping
                    .iter()
                    .position(|&e| e == l)
                    .expect("escaping local");
                let id = &seq.locals[l].ident;
                let w = word(&seq.locals[l].ty.ty);
                let ty = &seq.locals[l].ty.ty;
                quote!(#[allow(unused_variables)] let #id: #ty = #w::from_word(#locals[#k]);)
            })
            .collect()
    };
    let ok = |e: Option<&syn::Expr>| match e {
        Some(e) => quote!(::core::result::Result::Ok(#e)),
        None => quote!(::core::result::Result::Ok(())),
    };
    let tail_bind = seq
        .tail
        .as_ref()
        .map(|t| bind(seq.locals_named_in(t, usize::MAX)));
    let tail = ok(seq.tail.as_ref());
    let mut arms = vec![quote!(1 => ::core::result::Result::Err(::rseq_dsl::Error::Aborted),)];
    for exit in &seq.exits {
        let st = u64::from(exit.status);
        arms.push(match &exit.kind {
            ExitKind::IndexOutOfRange { param } => {
                let raw = Names::raw(*param);
                quote! {
                    #st => ::core::result::Result::Err(::rseq_dsl::Error::IndexOutOfRange {
                        index: #aux as usize,
                        len: #raw.len,
                    }),
                }
            }
            ExitKind::WrongCpu { local } => {
                let cpu = Names::cpu(*local);
                quote! {
                    #st => ::core::result::Result::Err(::rseq_dsl::Error::WrongCpu {
                        expected: #cpu,
                        current: #aux as usize,
                    }),
                }
            }
            ExitKind::Compare { step } => {
                let StepKind::CompareExit { ret, .. } = &seq.steps[*step].kind else {
                    unreachable!("compare exits come from exit steps")
                };
                let b = ret.as_ref().map(|r| bind(seq.locals_named_in(r, *step)));
                let r = ok(ret.as_ref());
                quote!(#st => { #b #r })
            }
        });
    }
    for dc in &seq.debug_checks {
        let st = u64::from(dc.status);
        let what = rseq_codegen::semantics::explain_debug_check(seq, dc.kind);
        let name = seq.ident.to_string();
        arms.push(quote! {
            #st => ::rseq_dsl::__private::debug_check_failed(#name, #what, #aux),
        });
    }
    // The committed case is one compare and a predicted branch; everything else (abort, exits,
    // debug checks) is decoded behind a call to a cold function, so that LLVM neither builds a jump
    // table (an indirect jump on every call) nor lays the rare cases out on the hot path.
    quote! {
        if #status == 0 {
            #tail_bind
            #tail
        } else {
            ::rseq_dsl::__private::cold();
            #[allow(clippy::cast_possible_truncation)]
            match #status {
                #(#arms)*
                _ => ::core::unreachable!("rseq-dsl: invalid section status"),
            }
        }
    }
}
