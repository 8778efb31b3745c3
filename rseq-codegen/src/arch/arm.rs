//! arm emitter (ARMv7-A, 32-bit; the same text assembles as A32 and as Thumb-2, so the `arm`
//! targets in Thumb mode such as `thumbv7neon-unknown-linux-gnueabihf` work too).
//!
//! Instructions used: `adr` + `movw`/`movt` of `:lower16:`/`:upper16:(3f - L)` + `add` (descriptor
//! address: `adr` gives the address of label `L` in either instruction set, and the PC-relative
//! `R_ARM_MOVW_PREL_NC`/`R_ARM_MOVT_PREL` pair the distance to the descriptor in another section;
//! PIC-safe, +-2 GiB), `str` (arming store: the low word of the 64-bit `rseq_cs`, whose high word
//! stays 0), `ldr` (index read), `cmp` + `bhs bne b<cc>` (index check, compare-exits, memcpy
//! loop), `mla` (slot address), `ldrb ldrsb ldrh ldrsh ldr` and `strb strh str` (loads and stores;
//! immediate offsets within what both A32 and T32 encode, else a register offset), `add sub and orr
//! eor lsl lsr asr` (arithmetic; immediates 0..255, register shift counts always masked to the
//! type's width, since a register shift by 32..255 is not taken modulo 32), `uxtb uxth sxtb sxth`
//! (canonical re-extension), `movw`/`movt` and `mov` (constants, copies), `dmb ish` (`commit
//! store_release`: the release barrier before the commit store), `b` (stubs).
//!
//! Words: registers hold 32 bits, so `usize`, `isize` and pointers are 32-bit and every value is
//! canonical within 32 bits. `u64`/`i64` values in a section are a compile error on arm
//! (`ErrorKind::WordTooWide`, emitted under `#[cfg(target_arch = "arm")]` only): a 64-bit commit
//! would need `strd` with an even/odd register pair, which `asm!` operands cannot request, and two
//! 32-bit stores would not be one committing instruction.
//!
//! Descriptor: the 64-bit fields of `struct rseq_cs` and the array entries are `.long low, 0`
//! pairs (little-endian).
//!
//! Signature: `.word 0xe7f5def3` (`udf #24035` in A32; two trapping halfwords in T32) right before
//! the abort label, 4-byte aligned.
//!
//! Stubs stay in `.text` behind `b 7f` (see `common.rs`), like the other load/store emitters.
//!
//! Registers: 11 (`r0`-`r5`, `r8`-`r10`, `r12`, `r14`): `r6` (LLVM's base pointer), `r7` (Thumb
//! frame pointer), `r11` (A32 frame pointer), `sp` and `pc` are never operands.

use super::arm_syntax::{shift_name, Addr};
use super::{
    Arch, ArchEmitter, Builder, CopyLoop, CopyRegs, Disp, ExitTo, Facts, Labels, Mem, Operands,
    Reg, Shift, Src, VReg, AREA_RSEQ_CS_OFFSET as RSEQ_CS_OFFSET,
};
use crate::ir::{BinOp, CmpOp};
use crate::semantics::Compare;
use crate::ty::WordKind;

/// The arm emitter.
#[derive(Debug)]
pub struct Arm;

fn width(kind: WordKind) -> u32 {
    kind.width(4)
}

/// The 32-bit register value of a canonical immediate (truncated: registers hold 32 bits).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn u32_of(v: i64) -> u32 {
    v as u32
}

/// An immediate both A32 and T32 encode in data-processing instructions.
fn small(v: i64) -> bool {
    (0..=255).contains(&u32_of(v))
}

/// `movw` (and `movt` when the high half is not zero) loading `v`: mnemonic, whether it also
/// reads the register (`movt` keeps the low half), immediate.
fn li_parts(v: i64) -> Vec<(&'static str, bool, u32)> {
    let v = u32_of(v);
    let mut parts = vec![("movw", false, v & 0xffff)];
    if v >> 16 != 0 {
        parts.push(("movt", true, v >> 16));
    }
    parts
}

impl Arm {
    /// Loads `v` into `t`.
    fn li(b: &mut Builder, t: VReg, v: i64) {
        for (op, reads, imm) in li_parts(v) {
            b.emit(|o| {
                let d = if reads { o.def_use(t) } else { o.def(t) };
                format!("{op} {d}, #{imm}")
            });
        }
    }

    fn imm_reg(b: &mut Builder, v: i64) -> Reg {
        let t = b.vreg();
        Self::li(b, t, v);
        Reg::V(t)
    }

    fn reg(b: &mut Builder, s: Src) -> Reg {
        match s {
            Src::Reg(r) => r,
            Src::Imm(v) => Self::imm_reg(b, v),
        }
    }

    /// `[base, #d]` or `[base, reg]` for a `w`-byte access (`signed` halfword/byte loads and
    /// halfword stores have the short +-255 offset in A32).
    fn mem(b: &mut Builder, m: &Mem, extra: i64, short: bool) -> Addr {
        let fits = |d: i64| {
            if short {
                (-255..=255).contains(&d)
            } else {
                (-255..=4095).contains(&d)
            }
        };
        match m.disp {
            Disp::Reg(r) if extra == 0 => Addr::Index(m.base, r),
            Disp::Reg(r) => {
                let k = b.vreg();
                Self::li(b, k, extra);
                b.emit(|o| format!("add {}, {}, {}", o.def(k), o.use_(k), o.use_(r)));
                Addr::Index(m.base, Reg::V(k))
            }
            Disp::None | Disp::Imm(_) => {
                let d = match m.disp {
                    Disp::Imm(v) => i64::from(u32_of(v) as i32) + extra,
                    _ => extra,
                };
                if d == 0 {
                    Addr::Base(m.base)
                } else if fits(d) {
                    Addr::Imm(m.base, d)
                } else {
                    Addr::Index(m.base, Self::imm_reg(b, d))
                }
            }
        }
    }

    fn store_insn(w: u32) -> &'static str {
        match w {
            1 => "strb",
            2 => "strh",
            _ => "str",
        }
    }
}

impl ArchEmitter for Arm {
    fn facts(&self) -> &'static Facts {
        &Facts {
            arch: Arch::Arm,
            pointer_bytes: 4,
            registers: 11,
            reg_class: "reg",
            const_operands: false,
            jump: "b",
            signature_directive: ".word",
            signature_align: true,
        }
    }

    fn imm_fits(&self, value: i64) -> bool {
        // Canonical values of 32-bit types: i32 range (signed) or u32 range (unsigned).
        i32::try_from(value).is_ok() || u32::try_from(value).is_ok()
    }

    fn store_descriptor_pointer(&self, b: &mut Builder, area: Reg, labels: &Labels) {
        let here = b.label();
        let (t, p) = (b.vreg(), b.vreg());
        let d = labels.descriptor;
        // `L: adr p, Lb` is `p = L` in A32 and T32 alike (the assembler applies the PC bias).
        b.line(format!("{here}:"));
        b.emit(|o| format!("adr {}, {here}b", o.def(p)));
        b.emit(|o| format!("movw {}, #:lower16:({d}f - {here}b)", o.def(t)));
        b.emit(|o| format!("movt {}, #:upper16:({d}f - {here}b)", o.def_use(t)));
        b.emit(|o| format!("add {}, {}, {}", o.def(t), o.use_(t), o.use_(p)));
        b.emit(|o| format!("str {}, [{}, #{RSEQ_CS_OFFSET}]", o.use_(t), o.use_(area)));
    }

    fn slot_address(&self, b: &mut Builder, dst: VReg, idx: VReg, base: Reg, stride: Reg) {
        b.emit(|o| {
            let (d, i) = (o.def(dst), o.use_(idx));
            format!("mla {d}, {i}, {}, {}", o.use_(stride), o.use_(base))
        });
    }

    fn mov(&self, b: &mut Builder, dst: VReg, src: Src) {
        match src {
            Src::Reg(r) => b.emit_copy(|o| format!("mov {}, {}", o.def(dst), o.use_(r))),
            Src::Imm(v) => Self::li(b, dst, v),
        }
    }

    fn acquire_fence(&self, b: &mut Builder) {
        // ARMv7 has no load-acquire: a full `dmb ish` after the load, as compilers emit
        // for an acquire load.
        b.line("dmb ish");
    }

    fn release_fence(&self, b: &mut Builder) {
        b.line("dmb ish");
    }

    fn load(&self, b: &mut Builder, dst: VReg, addr: &Mem, offset: i64, kind: WordKind) {
        let w = width(kind);
        let (insn, short) = match (w, kind.signed()) {
            (4, _) => ("ldr", false),
            (2, false) => ("ldrh", true),
            (2, true) => ("ldrsh", true),
            (_, false) => ("ldrb", false),
            (_, true) => ("ldrsb", true),
        };
        let m = Self::mem(b, addr, offset, short);
        b.emit(|o| format!("{insn} {}, {}", o.def(dst), m.text(o)));
    }

    fn alu(&self, b: &mut Builder, op: BinOp, dst: VReg, rhs: Src) {
        let m = match op {
            BinOp::Add => "add",
            BinOp::Sub => "sub",
            BinOp::And => "and",
            BinOp::Or => "orr",
            _ => "eor",
        };
        match rhs {
            Src::Imm(v) if small(v) => {
                let v = u32_of(v);
                b.emit(|o| format!("{m} {}, {}, #{v}", o.def(dst), o.use_(dst)));
            }
            _ => {
                let r = Self::reg(b, rhs);
                b.emit(|o| format!("{m} {}, {}, {}", o.def(dst), o.use_(dst), o.use_(r)));
            }
        }
    }

    fn shift_imm(&self, b: &mut Builder, shift: Shift, dst: VReg, count: i64) {
        let m = shift_name(shift);
        b.emit(|o| format!("{m} {}, {}, #{count}", o.def(dst), o.use_(dst)));
    }

    fn shift_reg(&self, b: &mut Builder, shift: Shift, dst: VReg, count: Reg, bits: u32) {
        // A register shift reads the count's low byte (32..255 shift everything out): always mask.
        let t = b.vreg();
        b.emit(|o| format!("and {}, {}, #{}", o.def(t), o.use_(count), bits - 1));
        let m = shift_name(shift);
        b.emit(|o| format!("{m} {}, {}, {}", o.def(dst), o.use_(dst), o.use_(t)));
    }

    fn normalize(&self, b: &mut Builder, dst: VReg, kind: WordKind) {
        let insn = match (width(kind), kind.signed()) {
            (4, _) => return,
            (2, false) => "uxth",
            (2, true) => "sxth",
            (_, false) => "uxtb",
            (_, true) => "sxtb",
        };
        b.emit(|o| format!("{insn} {}, {}", o.def(dst), o.use_(dst)));
    }

    fn compare_exit(&self, b: &mut Builder, lhs: Src, cmp: Compare, rhs: Src, to: ExitTo) {
        let (Compare { op, signed }, ExitTo { label: exit, keep }) = (cmp, to);
        let (lhs, op, rhs) = match (lhs, rhs) {
            (Src::Imm(_), Src::Reg(_)) => (rhs, op.swapped(), lhs),
            _ => (lhs, op, rhs),
        };
        let l = Self::reg(b, lhs);
        match rhs {
            Src::Imm(v) if small(v) => {
                b.emit(|o| format!("cmp {}, #{}", o.use_(l), u32_of(v)));
            }
            other => {
                let r = Self::reg(b, other);
                b.emit(|o| format!("cmp {}, {}", o.use_(l), o.use_(r)));
            }
        }
        let cc = match (op, signed) {
            (CmpOp::Eq, _) => "eq",
            (CmpOp::Ne, _) => "ne",
            (CmpOp::Lt, true) => "lt",
            (CmpOp::Le, true) => "le",
            (CmpOp::Gt, true) => "gt",
            (CmpOp::Ge, true) => "ge",
            (CmpOp::Lt, false) => "lo",
            (CmpOp::Le, false) => "ls",
            (CmpOp::Gt, false) => "hi",
            (CmpOp::Ge, false) => "hs",
        };
        b.emit_keep(keep, |_| format!("b{cc} {exit}f"));
    }

    fn store(&self, b: &mut Builder, addr: &Mem, offset: i64, value: Src, kind: WordKind) {
        let w = width(kind);
        let v = Self::reg(b, value);
        let m = Self::mem(b, addr, offset, w == 2);
        let insn = Self::store_insn(w);
        b.emit(|o| format!("{insn} {}, {}", o.use_(v), m.text(o)));
    }

    fn copy_loop(&self) -> Option<&dyn CopyLoop> {
        Some(self)
    }

    fn set_status(&self, b: &mut Builder, status: u32) {
        b.line(format!("mov {{status}}, #{status}"));
    }
}

impl CopyLoop for Arm {
    fn addr_lines(&self, o: &mut Operands, dst: &str, m: &Mem) -> Vec<String> {
        let base = o.use_(m.base);
        match m.disp {
            Disp::None | Disp::Imm(0) => vec![format!("mov {dst}, {base}")],
            Disp::Reg(r) => vec![format!("add {dst}, {base}, {}", o.use_(r))],
            Disp::Imm(v) => {
                let mut lines: Vec<String> = li_parts(v)
                    .into_iter()
                    .map(|(op, _, imm)| format!("{op} {dst}, #{imm}"))
                    .collect();
                lines.push(format!("add {dst}, {dst}, {base}"));
                lines
            }
        }
    }

    fn move_line(&self, dst: &str, src: &str) -> String {
        format!("mov {dst}, {src}")
    }

    fn count_before_group(&self) -> bool {
        true
    }

    fn branch_if_below(&self, _t: &str, r: &str, n: u32, label: u32) -> Vec<String> {
        vec![format!("cmp {r}, #{n}"), format!("blo {label}f")]
    }

    fn skip_if_clear(&self, _t: &str, r: &str, w: u32, label: u32) -> Vec<String> {
        vec![format!("tst {r}, #{w}"), format!("beq {label}f")]
    }

    fn copy_advance(&self, o: &mut Operands, r: CopyRegs, w: u32, _last: bool) -> Vec<String> {
        let CopyRegs { t, s, d } = r;
        // Post-indexed addressing advances the pointers in the same instructions.
        let t = o.def(t);
        let ld = match w {
            4 => "ldr",
            2 => "ldrh",
            _ => "ldrb",
        };
        let st = Self::store_insn(w);
        vec![
            format!("{ld} {t}, [{s}], #{w}"),
            format!("{st} {t}, [{d}], #{w}"),
        ]
    }

    fn sub_line(&self, r: &str, n: u32) -> String {
        format!("sub {r}, {r}, #{n}")
    }
}
