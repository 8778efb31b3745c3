//! Validate: the structural and safety rules of a sequence, on the typed IR. All errors are
//! collected and reported together.

use proc_macro2::Span;

use crate::error::{Error, ErrorKind};
use crate::ir::{Node, Operand, ParamKind, Sequence, StepKind};

/// Checks `seq`; `close` is the span of the body's closing brace (where a missing commit is reported).
pub fn validate(seq: &Sequence, close: Span) -> Vec<Error> {
    let mut errors = Vec::new();

    // Without a slot there is no index check, so nothing ties the section to a CPU.
    if seq.slots().next().is_none() {
        errors.push(Error::new(seq.ident.span(), ErrorKind::NoSlot));
    }

    let commits: Vec<usize> = (0..seq.steps.len())
        .filter(|&i| {
            matches!(
                seq.steps[i].kind,
                StepKind::Store {
                    commit: Some(_),
                    ..
                }
            )
        })
        .collect();
    match commits.as_slice() {
        // The kernel only restarts sections; without a committing store nothing is ever published.
        [] => errors.push(Error::new(close, ErrorKind::NoCommit)),
        // One commit instruction ends the restartable range; a second would run unprotected.
        [_, extra @ ..] => {
            for &i in extra {
                errors.push(Error::new(seq.steps[i].span, ErrorKind::MultipleCommits));
            }
        }
    }
    if let Some(&first) = commits.first() {
        // Anything after the commit runs outside the restartable range (post_commit ends there).
        for (i, s) in seq.steps.iter().enumerate().skip(first + 1) {
            if !commits.contains(&i) {
                errors.push(Error::new(s.span, ErrorKind::StepAfterCommit));
            }
        }
    }

    // A compare-exit leaves without committing: a speculative store before it would stay visible
    // (to other CPUs' readers and to this CPU's next section) although the operation did not happen.
    let mut stored = false;
    for s in &seq.steps {
        match &s.kind {
            StepKind::Store { commit: None, .. } | StepKind::Memcpy { .. } => stored = true,
            StepKind::CompareExit { .. } if stored => {
                errors.push(Error::new(s.span, ErrorKind::ExitAfterStore));
            }
            _ => {}
        }
    }

    // A safe fn must be sound for every input: it may only touch its own slot, at offset 0, with
    // the element's own width; everything else needs the caller's promise (`unsafe fn`).
    if seq.unsafety.is_none() {
        for s in &seq.steps {
            let why = match &s.kind {
                StepKind::Load { addr, ty, .. } => unsafe_access(seq, "load", addr, ty),
                StepKind::Store {
                    addr, ty, commit, ..
                } => unsafe_access(
                    seq,
                    if commit.is_some() {
                        "commit store"
                    } else {
                        "store"
                    },
                    addr,
                    ty,
                ),
                StepKind::Memcpy { .. } => Some(
                    "`memcpy` copies through addresses and a length the macro cannot bound"
                        .to_owned(),
                ),
                _ => None,
            };
            if let Some(why) = why {
                errors.push(Error::new(s.span, ErrorKind::UnsafeRequired(why)));
            }
        }
    }
    errors
}

/// Why an access is not provably in bounds, or `None` when it is (a slot at offset 0 with the
/// element's type).
fn unsafe_access(
    seq: &Sequence,
    op: &str,
    addr: &Operand,
    ty: &crate::ty::WordTy,
) -> Option<String> {
    if let Node::Local(l) = addr.node {
        if let Some(p) = seq.locals[l].slot_of {
            let ParamKind::PerCpu {
                elem_word: Some(elem),
                ..
            } = &seq.params[p].kind
            else {
                return Some(format!(
                    "`{op}` of a slot whose element is not a machine word"
                ));
            };
            return (!elem.same(ty)).then(|| {
                format!(
                    "`{op}` of `{}` from a `PerCpu<{}>` slot accesses a different width than the element",
                    ty.spelling(),
                    elem.spelling()
                )
            });
        }
    }
    if root_is_slot(seq, addr) {
        Some(format!(
            "`{op}` at a slot plus an offset: the macro cannot prove the offset stays inside the slot"
        ))
    } else {
        Some(format!(
            "`{op}` through a raw pointer: the macro cannot prove the pointer is valid"
        ))
    }
}

fn root_is_slot(seq: &Sequence, o: &Operand) -> bool {
    match &o.node {
        Node::Local(l) => seq.locals[*l].slot_of.is_some(),
        Node::Bin(_, l, _) => root_is_slot(seq, l),
        Node::Cast(i) => root_is_slot(seq, i),
        Node::Param(_) | Node::RustOperand(_) => false,
    }
}
