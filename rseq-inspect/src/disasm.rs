//! Instruction decoding for the instruction-level rules: iced-x86 for x86 (16/32/64-bit code by ELF class)
//! and yaxpeax-arm for aarch64. Other architectures are not decoded: their instruction rules are
//! reported as skipped.
//!
//! Each decoded instruction is classified by the four properties the rules ask about: does it store to
//! memory, is it a call, does it enter the kernel, does it write the stack pointer.

use iced_x86::{
    Decoder, DecoderError, DecoderOptions, FlowControl, Formatter, InstructionInfoFactory,
    IntelFormatter, Mnemonic, OpAccess, Register,
};
use yaxpeax_arch::{Decoder as _, U8Reader};
use yaxpeax_arm::armv8::a64::{InstDecoder, Operand};

use crate::arch::Arch;

/// One decoded instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insn {
    /// Address.
    pub addr: u64,
    /// Encoded bytes.
    pub bytes: Vec<u8>,
    /// Disassembly text (Intel syntax on x86).
    pub text: String,
    /// Writes memory (plain, conditional or read-modify-write).
    pub is_store: bool,
    /// A call (direct or indirect, any form that pushes or links a return address).
    pub is_call: bool,
    /// Enters the kernel (`syscall`, `int`, `svc`, ...).
    pub is_syscall: bool,
    /// Writes the stack pointer.
    pub writes_sp: bool,
    /// Control never falls through to the next instruction (unconditional jump or return).
    pub ends_flow: bool,
}

/// The instructions of a byte range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Instructions decoded from the start of the range.
    pub insns: Vec<Insn>,
    /// Why decoding stopped before the end of the range (an undecodable instruction, or one that runs
    /// past the end); `None` when the instructions tile the range exactly.
    pub error: Option<String>,
}

/// Decodes `code` (starting at `addr`) for `arch`; `None` when the architecture has no decoder here.
pub fn decode(arch: Arch, code: &[u8], addr: u64) -> Option<Decoded> {
    match arch {
        Arch::X86_64 => Some(decode_x86(code, addr, 64)),
        Arch::X32 | Arch::I386 => Some(decode_x86(
            code,
            addr,
            if arch == Arch::X32 { 64 } else { 32 },
        )),
        Arch::Aarch64 => Some(decode_aarch64(code, addr)),
        _ => None,
    }
}

fn is_write(access: OpAccess) -> bool {
    matches!(
        access,
        OpAccess::Write | OpAccess::CondWrite | OpAccess::ReadWrite | OpAccess::ReadCondWrite
    )
}

fn decode_x86(code: &[u8], addr: u64, bitness: u32) -> Decoded {
    let Ok(mut decoder) = Decoder::try_with_ip(bitness, code, addr, DecoderOptions::NONE) else {
        return Decoded {
            insns: Vec::new(),
            error: Some(format!("unsupported x86 bitness {bitness}")),
        };
    };
    let mut formatter = IntelFormatter::new();
    let options = formatter.options_mut();
    options.set_hex_prefix("0x");
    options.set_hex_suffix("");
    options.set_uppercase_hex(false);
    options.set_space_after_operand_separator(true);
    options.set_branch_leading_zeros(false);
    options.set_show_branch_size(false);
    let mut info = InstructionInfoFactory::new();
    let mut insns = Vec::new();
    let mut instruction = iced_x86::Instruction::default();
    let mut error = None;
    while decoder.can_decode() {
        let offset = decoder.position();
        decoder.decode_out(&mut instruction);
        let here = instruction.ip();
        if decoder.last_error() != DecoderError::None {
            error = Some(match decoder.last_error() {
                DecoderError::NoMoreBytes => {
                    format!("the instruction at {here:#x} runs past the end of the range")
                }
                _ => format!("undecodable instruction at {here:#x}"),
            });
            break;
        }
        let end = offset.saturating_add(instruction.len());
        let bytes = code.get(offset..end).unwrap_or_default().to_vec();
        let mut text = String::new();
        formatter.format(&instruction, &mut text);
        let used = info.info(&instruction);
        let is_store = used.used_memory().iter().any(|m| is_write(m.access()));
        let writes_sp = used
            .used_registers()
            .iter()
            .any(|r| r.register().full_register() == Register::RSP && is_write(r.access()));
        let is_syscall = matches!(
            instruction.mnemonic(),
            Mnemonic::Syscall
                | Mnemonic::Sysenter
                | Mnemonic::Int
                | Mnemonic::Int1
                | Mnemonic::Int3
                | Mnemonic::Into
        );
        // iced reports `syscall` as a call too; count it once, as a kernel entry.
        let is_call = !is_syscall
            && matches!(
                instruction.flow_control(),
                FlowControl::Call | FlowControl::IndirectCall
            );
        let ends_flow = matches!(
            instruction.flow_control(),
            FlowControl::UnconditionalBranch | FlowControl::IndirectBranch | FlowControl::Return
        );
        insns.push(Insn {
            addr: here,
            bytes,
            text,
            is_store,
            is_call,
            is_syscall,
            writes_sp,
            ends_flow,
        });
    }
    Decoded { insns, error }
}

/// aarch64 register number 31 in an operand that can name the stack pointer.
const SP: u16 = 31;

fn decode_aarch64(code: &[u8], addr: u64) -> Decoded {
    let decoder = InstDecoder::default();
    let mut insns = Vec::new();
    let mut error = None;
    let mut here = addr;
    let mut chunks = code.chunks_exact(4);
    for word in chunks.by_ref() {
        let mut reader = U8Reader::new(word);
        let insn = match decoder.decode(&mut reader) {
            Ok(inst) => {
                let mnemonic = inst.opcode.to_string().to_ascii_lowercase();
                let is_store = mnemonic.starts_with("st")
                    || mnemonic.starts_with("swp")
                    || mnemonic.starts_with("cas")
                    || [
                        "ldadd", "ldclr", "ldeor", "ldset", "ldsmax", "ldsmin", "ldumax", "ldumin",
                    ]
                    .iter()
                    .any(|p| mnemonic.starts_with(p));
                let is_call = mnemonic == "bl" || mnemonic.starts_with("blr");
                let is_syscall = matches!(mnemonic.as_str(), "svc" | "hvc" | "smc");
                let writeback_sp = inst.operands.iter().any(|op| {
                    matches!(
                        op,
                        Operand::RegPreIndex(SP, _, true)
                            | Operand::RegPostIndex(SP, _)
                            | Operand::RegPostIndexReg(SP, _)
                    )
                });
                // A destination of `sp`: the first operand, unless the instruction only reads it
                // (compares and tests alias their destination to the zero register, not sp).
                let dest_sp = matches!(inst.operands[0], Operand::RegisterOrSP(_, SP))
                    && !matches!(mnemonic.as_str(), "cmp" | "cmn" | "tst" | "ccmp" | "ccmn")
                    && !is_store;
                Insn {
                    addr: here,
                    bytes: word.to_vec(),
                    text: inst.to_string(),
                    is_store,
                    is_call,
                    is_syscall,
                    writes_sp: writeback_sp || dest_sp,
                    ends_flow: matches!(mnemonic.as_str(), "b" | "br" | "ret")
                        || mnemonic.starts_with("reta")
                        || mnemonic.starts_with("bra"),
                }
            }
            Err(_) => Insn {
                addr: here,
                bytes: word.to_vec(),
                text: format!(
                    ".inst {:#010x} (undefined)",
                    u32::from_le_bytes([word[0], word[1], word[2], word[3]])
                ),
                is_store: false,
                is_call: false,
                is_syscall: false,
                writes_sp: false,
                ends_flow: false,
            },
        };
        insns.push(insn);
        here = here.wrapping_add(4);
    }
    if !chunks.remainder().is_empty() {
        error = Some(format!(
            "the range ends {} byte(s) into an instruction at {here:#x}",
            chunks.remainder().len()
        ));
    }
    Decoded { insns, error }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a64(word: u32) -> Insn {
        let d = decode_aarch64(&word.to_le_bytes(), 0x1000);
        assert_eq!(d.error, None);
        d.insns.into_iter().next().unwrap()
    }

    #[test]
    fn aarch64_classification() {
        let str_ = a64(0xf900_0001); // str x1, [x0]
        assert!(str_.is_store && !str_.writes_sp, "{str_:?}");
        let stlr = a64(0xc89f_fc01); // stlr x1, [x0]
        assert!(stlr.is_store, "{stlr:?}");
        let add_sp = a64(0x9100_43ff); // add sp, sp, #16
        assert!(add_sp.writes_sp && !add_sp.is_store, "{add_sp:?}");
        let stp_pre = a64(0xa9bf_7bfd); // stp x29, x30, [sp, #-16]!
        assert!(stp_pre.writes_sp && stp_pre.is_store, "{stp_pre:?}");
        let ldp_post = a64(0xa8c1_7bfd); // ldp x29, x30, [sp], #16
        assert!(ldp_post.writes_sp && !ldp_post.is_store, "{ldp_post:?}");
        let cmp_sp = a64(0xf100_43ff); // cmp sp, #16
        assert!(!cmp_sp.writes_sp, "{cmp_sp:?}");
        let mov_from_sp = a64(0x9100_03e0); // mov x0, sp
        assert!(!mov_from_sp.writes_sp, "{mov_from_sp:?}");
        let str_sp = a64(0xf900_07e1); // str x1, [sp, #8]
        assert!(str_sp.is_store && !str_sp.writes_sp, "{str_sp:?}");
        assert!(a64(0x9400_0000).is_call); // bl
        assert!(a64(0xd63f_0000).is_call); // blr x0
        assert!(a64(0xd400_0001).is_syscall); // svc #0
        let add = a64(0x9100_0400); // add x0, x0, #1
        assert!(!add.is_store && !add.writes_sp && !add.is_call, "{add:?}");
    }

    #[test]
    fn x86_classification() {
        // mov [rdi], rax ; push rax ; call rel32 ; syscall ; add rsp, 8 ; mov rax, [rsp]
        let code = [
            0x48, 0x89, 0x07, 0x50, 0xe8, 0, 0, 0, 0, 0x0f, 0x05, 0x48, 0x83, 0xc4, 0x08, 0x48,
            0x8b, 0x04, 0x24,
        ];
        let d = decode_x86(&code, 0x1000, 64);
        assert_eq!(d.error, None);
        let flags: Vec<_> = d
            .insns
            .iter()
            .map(|i| (i.is_store, i.is_call, i.is_syscall, i.writes_sp))
            .collect();
        assert_eq!(
            flags,
            [
                (true, false, false, false),
                (true, false, false, true),
                (true, true, false, true),
                (false, false, true, false),
                (false, false, false, true),
                (false, false, false, false),
            ]
        );
        let truncated = decode_x86(&code[..2], 0x1000, 64);
        assert!(truncated.error.unwrap().contains("runs past"));
    }
}
