//! The fallback body: the same steps as Rust on 64-bit words, under the runtime's per-index lock.
//! Every decision about values (which compares are signed, how an operator wraps and shifts, which
//! conversions change the word) comes from `rseq_codegen::semantics`, the definition the asm driver
//! follows too. It ends with the same `(status, index, locals)` triple, so one decode serves both
//! paths.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use rseq_codegen::ir::{
    BinOp, CmpOp, CommitKind, DebugCheckKind, MemcpyLen, Node, Operand, Sequence, StepKind,
};
use rseq_codegen::semantics::{self, Conversion, Words};
use rseq_codegen::ty::WordTy;

use crate::names::{attempt_try, mixed, word, word_before_section, Names};

pub fn body(seq: &Sequence) -> TokenStream {
    let guard = mixed("__rseq_guard");
    let idx = mixed("__rseq_idx");
    let out = mixed("__rseq_out");
    let fb = syn::Lifetime::new("'__rseq_fb", Span::mixed_site());
    let escaping = seq.escaping_locals();
    let n = escaping.len();
    let locals_before = |before: usize| -> TokenStream {
        let vals = escaping.iter().map(|&l| {
            if seq.locals[l].step < before {
                let v = Names::local(l);
                quote!(#v)
            } else {
                quote!(0u64)
            }
        });
        quote!([#(#vals),*])
    };
    // The explicit-CPU form operates on that index under its lock, wherever the thread runs.
    let lock = match seq.slots().find(|(_, _, cpu)| cpu.is_some()) {
        Some((l, _, _)) => {
            let cpu = Names::cpu(l);
            quote!(fallback_lock_index(#cpu))
        }
        None => quote!(fallback_lock_current()),
    };
    let lock_try = attempt_try(&quote!(::rseq_dsl::__private::#lock));
    let mut steps = Vec::new();
    for (i, step) in seq.steps.iter().enumerate() {
        if !seq.debug_checks.is_empty() && i == seq.recheck_step() {
            steps.push(recheck(seq, i, &idx));
        }
        let status_of = || u64::from(seq.exit_at(i).expect("exit status").status);
        let at = locals_before(i);
        steps.push(match &step.kind {
            StepKind::Slot { local, param, cpu } => {
                let raw = Names::raw(*param);
                let lv = Names::local(*local);
                let st = status_of();
                match cpu {
                    None => quote! {
                        if #idx >= #raw.len {
                            break #fb (#st, #idx as u64, #at);
                        }
                        let #lv: u64 = #raw.base.wrapping_add(#idx * #raw.stride).expose_provenance() as u64;
                    },
                    Some(_) => {
                        let cpu = Names::cpu(*local);
                        let slot = Names::slot(*local);
                        quote! {
                            if #cpu != #idx {
                                break #fb (#st, #idx as u64, #at);
                            }
                            let #lv: u64 = #slot.expose_provenance() as u64;
                        }
                    }
                }
            }
            StepKind::Load {
                local,
                addr,
                ty,
                acquire,
            } => {
                let load = load(seq, *local, addr, ty);
                // The index lock orders this body after the previous holder's, not after a
                // release store made outside any section (a lock's unlock): `load_acquire` keeps
                // its own ordering here too (a relaxed load then an acquire fence).
                let fence = acquire.then(|| {
                    quote!(::core::sync::atomic::fence(::core::sync::atomic::Ordering::Acquire);)
                });
                quote!(#load #fence)
            }
            StepKind::Compute { local, value } => compute(seq, *local, value),
            StepKind::CompareExit { lhs, op, rhs, .. } => {
                let st = status_of();
                let cond = compare(seq, lhs, *op, rhs);
                quote! {
                    if #cond {
                        break #fb (#st, 0u64, #at);
                    }
                }
            }
            StepKind::Store { addr, value, ty, commit } => {
                let f = match commit {
                    Some(CommitKind::StoreRelease) => quote!(store_release),
                    Some(CommitKind::Store) | None => quote!(store),
                };
                let w = word(&ty.ty);
                let t = &ty.ty;
                let a = expr(seq, addr);
                let v = expr(seq, value);
                quote! {
                    unsafe {
                        ::rseq_dsl::__private::#f::<#t>(
                            ::core::ptr::with_exposed_provenance_mut::<u8>((#a) as usize),
                            #w::from_word(#v),
                        );
                    }
                }
            }
            StepKind::Memcpy { dst, src, len } => {
                let d = expr(seq, dst);
                let s = expr(seq, src);
                let len = match len {
                    MemcpyLen::Const(n) => {
                        let n = usize::try_from(*n).expect("capped length");
                        quote!(#n)
                    }
                    MemcpyLen::Runtime(_) => {
                        let l = Names::len(i);
                        quote!(#l)
                    }
                };
                quote! {
                    unsafe {
                        ::rseq_dsl::__private::copy_words(
                            ::core::ptr::with_exposed_provenance_mut::<u8>((#d) as usize),
                            ::core::ptr::with_exposed_provenance::<u8>((#s) as usize),
                            #len,
                        );
                    }
                }
            }
        });
    }
    let all = locals_before(usize::MAX);
    quote! {
        {
            let #guard = #lock_try;
            let #idx: usize = #guard.index();
            #[allow(clippy::undocumented_unsafe_blocks, clippy::cast_possible_truncation, unused_variables)]
            let #out: (u64, u64, [u64; #n]) = #fb: {
                #(#steps)*
                (0u64, 0u64, #all)
            };
            ::core::mem::drop(#guard);
            #out
        }
    }
}

/// Debug check (like the native one): replays the loads and computations before step `upto` and
/// aborts the process if a compare-exit would now leave, i.e. the data changed while this thread held
/// the index's lock (a writer that bypasses the sequences). The index cannot change under the lock, so
/// only the compares are re-checked here.
fn recheck(seq: &Sequence, upto: usize, idx: &syn::Ident) -> TokenStream {
    let name = seq.ident.to_string();
    let mut out = Vec::new();
    for (j, step) in seq.steps[..upto].iter().enumerate() {
        out.push(match &step.kind {
            StepKind::Load {
                local, addr, ty, ..
            } => load(seq, *local, addr, ty),
            StepKind::Compute { local, value } => compute(seq, *local, value),
            StepKind::CompareExit { lhs, op, rhs, .. } => {
                let cond = compare(seq, lhs, *op, rhs);
                let what = semantics::explain_debug_check(seq, DebugCheckKind::Compare { step: j });
                quote! {
                    if #cond {
                        ::rseq_dsl::__private::debug_check_failed(#name, #what, #idx as u64);
                    }
                }
            }
            StepKind::Slot { .. } | StepKind::Store { .. } | StepKind::Memcpy { .. } => quote!(),
        });
    }
    quote!({ #(#out)* })
}

/// Defines `local` as the word of the `ty` at `addr` (a relaxed load).
fn load(seq: &Sequence, local: usize, addr: &Operand, ty: &WordTy) -> TokenStream {
    let lv = Names::local(local);
    let w = word(&ty.ty);
    let t = &ty.ty;
    let a = expr(seq, addr);
    quote! {
        let #lv: u64 = #w::to_word(unsafe {
            ::rseq_dsl::__private::load::<#t>(::core::ptr::with_exposed_provenance::<u8>((#a) as usize))
        });
    }
}

/// Defines `local` as the word of `value`.
fn compute(seq: &Sequence, local: usize, value: &Operand) -> TokenStream {
    let lv = Names::local(local);
    let v = expr(seq, value);
    quote!(let #lv: u64 = #v;)
}

/// A `u64` word expression for an operand.
fn expr(seq: &Sequence, o: &Operand) -> TokenStream {
    let w = word(&o.ty.ty);
    match &o.node {
        Node::Local(l) => {
            let v = Names::local(*l);
            quote!(#v)
        }
        Node::Param(_) | Node::RustOperand(_) => word_before_section(seq, o),
        Node::Bin(op, l, r) => {
            let rule = semantics::arith(*op, o.ty.kind);
            let (a, b) = (expr(seq, l), expr(seq, r));
            let count = if rule.masks_count {
                quote!(((#b) & ((#w::SIZE * 8 - 1) as u64)))
            } else {
                quote!((#b))
            };
            let raw = match op {
                BinOp::Add => quote!((#a).wrapping_add(#b)),
                BinOp::Sub => quote!((#a).wrapping_sub(#b)),
                BinOp::And => quote!((#a) & (#b)),
                BinOp::Or => quote!((#a) | (#b)),
                BinOp::Xor => quote!((#a) ^ (#b)),
                BinOp::Shl => quote!((#a) << #count),
                BinOp::Shr if rule.arithmetic_shift => quote!((((#a) as i64) >> #count) as u64),
                BinOp::Shr => quote!((#a) >> #count),
            };
            if rule.renormalize {
                quote!(#w::to_word(#w::from_word(#raw)))
            } else {
                quote!((#raw))
            }
        }
        Node::Cast(inner) => {
            let i = expr(seq, inner);
            // Expanded once for any target: the word is kept only where every pointer width keeps it;
            // otherwise `to_word(from_word(..))` truncates and zero- or sign-extends per the target.
            let keep = Words::POINTER_WIDTHS.iter().all(|&pb| {
                Words::fallback(pb).conversion(inner.ty.kind, o.ty.kind) == Conversion::Keep
            });
            if keep {
                i
            } else {
                quote!(#w::to_word(#w::from_word(#i)))
            }
        }
    }
}

/// The condition of a compare-exit, on the whole `u64` words ([`semantics::Compare`]).
fn compare(seq: &Sequence, l: &Operand, op: CmpOp, r: &Operand) -> TokenStream {
    let rule = semantics::compare(&l.ty, op, &r.ty);
    let (a, b) = (expr(seq, l), expr(seq, r));
    let op = match rule.op {
        CmpOp::Eq => quote!(==),
        CmpOp::Ne => quote!(!=),
        CmpOp::Lt => quote!(<),
        CmpOp::Le => quote!(<=),
        CmpOp::Gt => quote!(>),
        CmpOp::Ge => quote!(>=),
    };
    if rule.signed {
        quote!((((#a) as i64) #op ((#b) as i64)))
    } else {
        quote!(((#a) #op (#b)))
    }
}
