//! The emitted block as data: [`AsmBlock`] (template lines with their notes, operands, options),
//! the operand list the macro and standalone items pass to `asm!` in one order
//! ([`AsmBlock::operands`]), and [`describe_input`] for annotations.

use super::{Arch, Input, InputSource};
use crate::ir::Sequence;

/// One emitted block, ready to be printed or turned into an `asm!` invocation.
#[derive(Clone, Debug)]
pub struct AsmBlock {
    pub arch: Arch,
    pub lines: Vec<AsmLine>,
    pub inputs: Vec<Input>,
    /// The words behind the `Spill` input, in order (empty when every input has a register).
    pub spilled: Vec<Input>,
    /// Scratch outputs `s0..`: every one is `out(reg)` (never `lateout`).
    pub scratch: Vec<String>,
    /// Register class of every input and output
    /// ([`ArchEmitter::reg_class`](super::ArchEmitter::reg_class)).
    pub class: &'static str,
    /// The status output: 0 committed, 1 aborted, then the sequence's exits.
    pub status: String,
    pub clobbers: Vec<&'static str>,
    pub options: Vec<&'static str>,
    /// Where each escaping local is after the block: `(local, scratch name)`.
    pub locals: Vec<(usize, String)>,
    /// The scratch holding the index read (for index-out-of-range and wrong-CPU exits).
    pub index: Option<String>,
    /// Registers the block uses (inputs + outputs + clobbers).
    pub registers: usize,
    /// Statuses of the debug checks this block makes (a subset of the sequence's when the register
    /// budget could not fit them all, see [`emit`](super::emit)).
    pub debug_checks: Vec<u32>,
}

/// One line of the template.
#[derive(Clone, Debug)]
pub struct AsmLine {
    pub text: String,
    pub note: String,
}

/// How one operand of a block is passed to `asm!`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperandKind {
    /// `name = in(class) <value>`.
    In,
    /// `name = const <expr>`.
    Const,
    /// `name = sym <path>` (the injection-point table).
    Sym,
    /// `name = out(class) <var>`: a scratch register or the status register.
    Out,
    /// `out("reg") _`.
    Clobber,
}

/// One `asm!` operand of a block, in the order the macro and standalone items pass them.
#[derive(Clone, Copy, Debug)]
pub struct AsmOperand<'a> {
    pub kind: OperandKind,
    /// The operand name used in the template (`None` for clobbers).
    pub name: Option<&'a str>,
    /// Register class (`reg`, `reg_nonzero`, `reg_addr`) or, for a clobber, the register.
    pub class: &'a str,
    /// The input this operand carries (inputs only).
    pub input: Option<&'a Input>,
}

impl AsmBlock {
    /// The template lines, as passed to `asm!`.
    pub fn template(&self) -> Vec<&str> {
        self.lines.iter().map(|l| l.text.as_str()).collect()
    }

    /// Every operand: inputs (block order), scratch outputs, the status output, clobbers.
    pub fn operands(&self) -> Vec<AsmOperand<'_>> {
        let mut out = Vec::new();
        for input in &self.inputs {
            let kind = if input.source == InputSource::InjectDelays {
                OperandKind::Sym
            } else if input.is_const {
                OperandKind::Const
            } else {
                OperandKind::In
            };
            out.push(AsmOperand {
                kind,
                name: Some(&input.name),
                class: self.class,
                input: Some(input),
            });
        }
        for s in self.scratch.iter().chain(std::iter::once(&self.status)) {
            out.push(AsmOperand {
                kind: OperandKind::Out,
                name: Some(s),
                class: self.class,
                input: None,
            });
        }
        for c in &self.clobbers {
            out.push(AsmOperand {
                kind: OperandKind::Clobber,
                name: None,
                class: c,
                input: None,
            });
        }
        out
    }

    /// The Rust integer type of register operands on this block's architecture (`u64` on 64-bit
    /// architectures, `usize` where registers are 32 bits).
    pub fn word_type(&self) -> &'static str {
        match self.arch.emitter().map(|e| e.pointer_bytes()) {
            Some(8) => "u64",
            _ => "usize",
        }
    }
}

/// Describes each input for annotations (`base0` is "`counters`: slot 0 address").
pub fn describe_input(seq: &Sequence, input: &Input) -> String {
    let param = |p: usize| syn::ext::IdentExt::unraw(&seq.params[p].ident).to_string();
    match &input.source {
        InputSource::Area => "the thread's rseq area".into(),
        InputSource::Base(p) => format!("`{}`: address of slot 0", param(*p)),
        InputSource::Stride(p) => format!("`{}`: slot stride", param(*p)),
        InputSource::Len(p) => format!("`{}`: slot count", param(*p)),
        InputSource::Param(p) => format!("parameter `{}`", param(*p)),
        InputSource::RustOperand(e) => format!(
            "`{}` (evaluated before the section)",
            crate::pretty(&quote::ToTokens::to_token_stream(
                &seq.rust_operands[*e].expr
            ))
        ),
        InputSource::SlotAddr(l) => {
            format!(
                "address of slot `{}` (computed before the section)",
                seq.locals[*l].ident
            )
        }
        InputSource::InjectDelays => {
            "`sym` of the runtime's delay counts per injection point".into()
        }
        InputSource::Spill => {
            "address of the spilled inputs (words loaded inside the section)".into()
        }
    }
}
