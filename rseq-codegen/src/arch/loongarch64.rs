//! loongarch64 emitter (LA64, LLVM syntax).
//!
//! Instructions used: `la.pcrel` (`pcalau12i` + `addi.d`: descriptor address, PC-relative
//! +-2 GiB, PIC-safe), `st.d` (arming store), `ld.wu` (index read, zero-extending), `beq bne blt
//! bge bltu bgeu`, `beqz` (index check, compare-exits, memcpy loop), `mul.d` + `add.d` (slot
//! address), `ld.{b,bu,h,hu,w,wu,d}` / `ldx.*` and `st.{b,h,w,d}` / `stx.*` (loads and stores, with
//! a 12-bit offset or a register index), `add.d sub.d and or xor sll.d srl.d sra.d` and the
//! immediate forms `addi.d andi ori xori slli.d srli.d srai.d` (arithmetic; register shift counts
//! are masked to the type's width first), `bstrpick.d ext.w.b ext.w.h addi.w` and `andi` (canonical
//! re-extension), `li.d`, `move`, `ori` from `$zero` (status), `dbar 0x12` (`commit
//! store_release`: the store-release barrier hint Linux uses; CPUs without barrier hints execute
//! it as the full `dbar 0`), `b` (stubs).
//!
//! Signature: `.word 0x002a0010` (`break 0x10`) right before the abort label.
//!
//! Stubs stay in `.text` behind `b 7f` (see `common.rs`): conditional branches reach +-128 KiB
//! (`beqz` +-4 MiB), not another section of a large binary.
//!
//! Registers: 26 (`$r1`, `$r4`-`$r20`, `$r23`-`$r30`): `$r0` zero, `$r2` tp, `$r3` sp, `$r21`
//! (reserved by the ABI), `$r22` (frame pointer) and `$r31` (LLVM's base pointer) are never operands.

use super::{
    Arch, ArchEmitter, Builder, CopyLoop, CopyRegs, Disp, ExitTo, Facts, Labels, Mem, Operands,
    Reg, Shift, Src, VReg, AREA_RSEQ_CS_OFFSET as RSEQ_CS_OFFSET,
};
use crate::ir::{BinOp, CmpOp};
use crate::semantics::Compare;
use crate::ty::WordKind;

/// The loongarch64 emitter.
#[derive(Debug)]
pub struct Loongarch64;

fn width(kind: WordKind) -> u32 {
    kind.width(8)
}

fn simm12(v: i64) -> bool {
    (-2048..=2047).contains(&v)
}

fn size_suffix(w: u32) -> &'static str {
    match w {
        1 => "b",
        2 => "h",
        4 => "w",
        _ => "d",
    }
}

/// The operands of an access: `base, imm` (`ld`/`st`) or `base, index` (`ldx`/`stx`).
#[derive(Clone, Copy)]
enum Access {
    Imm(Reg, i64),
    Index(Reg, Reg),
}

fn shift_name(shift: Shift) -> &'static str {
    match shift {
        Shift::Left => "sll",
        Shift::Right => "srl",
        Shift::RightArith => "sra",
    }
}

impl Access {
    /// The mnemonic: `ld`/`st` plus `x` for the indexed form.
    fn insn(self, op: &str) -> String {
        match self {
            Access::Imm(..) => op.to_owned(),
            Access::Index(..) => format!("{op}x"),
        }
    }

    fn text(self, o: &mut Operands) -> String {
        match self {
            Access::Imm(base, d) => format!("{}, {d}", o.use_(base)),
            Access::Index(base, index) => format!("{}, {}", o.use_(base), o.use_(index)),
        }
    }
}

/// A source register, `None` for `$zero`.
fn zr(o: &mut Operands, r: Option<Reg>) -> String {
    r.map_or_else(|| "$zero".to_owned(), |r| o.use_(r))
}

impl Loongarch64 {
    fn imm_reg(b: &mut Builder, v: i64) -> Reg {
        let t = b.vreg();
        b.emit(|o| format!("li.d {}, {v}", o.def(t)));
        Reg::V(t)
    }

    /// A register holding `s`: `None` (`$zero`) for 0, a fresh scratch for other immediates.
    fn src_reg(b: &mut Builder, s: Src) -> Option<Reg> {
        match s {
            Src::Imm(0) => None,
            Src::Imm(v) => Some(Self::imm_reg(b, v)),
            Src::Reg(r) => Some(r),
        }
    }

    /// The operands of an access at `m + extra`.
    fn mem(b: &mut Builder, m: &Mem, extra: i64) -> Access {
        match m.disp {
            Disp::Reg(r) if extra == 0 => Access::Index(m.base, r),
            Disp::Reg(r) => {
                let t = b.vreg();
                if simm12(extra) {
                    b.emit(|o| format!("addi.d {}, {}, {extra}", o.def(t), o.use_(r)));
                } else {
                    let k = Self::imm_reg(b, extra);
                    b.emit(|o| format!("add.d {}, {}, {}", o.def(t), o.use_(r), o.use_(k)));
                }
                Access::Index(m.base, Reg::V(t))
            }
            Disp::None | Disp::Imm(_) => {
                let d = match m.disp {
                    Disp::Imm(v) => v + extra,
                    _ => extra,
                };
                if simm12(d) {
                    Access::Imm(m.base, d)
                } else {
                    Access::Index(m.base, Self::imm_reg(b, d))
                }
            }
        }
    }
}

impl ArchEmitter for Loongarch64 {
    fn facts(&self) -> &'static Facts {
        &Facts {
            arch: Arch::Loongarch64,
            pointer_bytes: 8,
            registers: 26,
            reg_class: "reg",
            const_operands: false,
            jump: "b",
            signature_directive: ".word",
            signature_align: false,
        }
    }

    fn store_descriptor_pointer(&self, b: &mut Builder, area: Reg, labels: &Labels) {
        let t = b.vreg();
        b.emit(|o| format!("la.pcrel {}, {}f", o.def(t), labels.descriptor));
        b.emit(|o| format!("st.d {}, {}, {RSEQ_CS_OFFSET}", o.use_(t), o.use_(area)));
    }

    fn slot_address(&self, b: &mut Builder, dst: VReg, idx: VReg, base: Reg, stride: Reg) {
        b.emit(|o| format!("mul.d {}, {}, {}", o.def(dst), o.use_(idx), o.use_(stride)));
        b.emit(|o| format!("add.d {}, {}, {}", o.def(dst), o.use_(dst), o.use_(base)));
    }

    fn mov(&self, b: &mut Builder, dst: VReg, src: Src) {
        match src {
            Src::Reg(r) => b.emit_copy(|o| format!("move {}, {}", o.def(dst), o.use_(r))),
            Src::Imm(v) => b.emit(|o| format!("li.d {}, {v}", o.def(dst))),
        }
    }

    fn acquire_fence(&self, b: &mut Builder) {
        // The load-acquire barrier hint Linux uses (`dbar 0b10100`); CPUs without
        // barrier hints execute it as the full `dbar 0`.
        b.line("dbar 0x14");
    }

    fn release_fence(&self, b: &mut Builder) {
        b.line("dbar 0x12");
    }

    fn load(&self, b: &mut Builder, dst: VReg, addr: &Mem, offset: i64, kind: WordKind) {
        let w = width(kind);
        let m = Self::mem(b, addr, offset);
        let unsigned = if w < 8 && !kind.signed() { "u" } else { "" };
        let insn = format!("{}.{}{unsigned}", m.insn("ld"), size_suffix(w));
        b.emit(|o| format!("{insn} {}, {}", o.def(dst), m.text(o)));
    }

    fn alu(&self, b: &mut Builder, op: BinOp, dst: VReg, rhs: Src) {
        match (op, rhs) {
            (BinOp::Add, Src::Imm(v)) if simm12(v) => {
                b.emit(|o| format!("addi.d {}, {}, {v}", o.def(dst), o.use_(dst)));
            }
            (BinOp::Sub, Src::Imm(v)) if v.checked_neg().is_some_and(simm12) => {
                let v = v.wrapping_neg();
                b.emit(|o| format!("addi.d {}, {}, {v}", o.def(dst), o.use_(dst)));
            }
            (BinOp::And | BinOp::Or | BinOp::Xor, Src::Imm(v)) if (0..=4095).contains(&v) => {
                // The logical immediates are zero-extended 12-bit values.
                let m = match op {
                    BinOp::And => "andi",
                    BinOp::Or => "ori",
                    _ => "xori",
                };
                b.emit(|o| format!("{m} {}, {}, {v}", o.def(dst), o.use_(dst)));
            }
            _ => {
                let r = Self::src_reg(b, rhs);
                let m = match op {
                    BinOp::Add => "add.d",
                    BinOp::Sub => "sub.d",
                    BinOp::And => "and",
                    BinOp::Or => "or",
                    _ => "xor",
                };
                b.emit(|o| format!("{m} {}, {}, {}", o.def(dst), o.use_(dst), zr(o, r)));
            }
        }
    }

    fn shift_imm(&self, b: &mut Builder, shift: Shift, dst: VReg, count: i64) {
        let m = shift_name(shift);
        b.emit(|o| format!("{m}i.d {}, {}, {count}", o.def(dst), o.use_(dst)));
    }

    fn shift_reg(&self, b: &mut Builder, shift: Shift, dst: VReg, count: Reg, bits: u32) {
        // 64-bit shifts take the count modulo 64; narrower types mask first.
        let count = if bits < 64 {
            let t = b.vreg();
            b.emit(|o| format!("andi {}, {}, {}", o.def(t), o.use_(count), bits - 1));
            Reg::V(t)
        } else {
            count
        };
        let m = shift_name(shift);
        b.emit(|o| format!("{m}.d {}, {}, {}", o.def(dst), o.use_(dst), o.use_(count)));
    }

    fn normalize(&self, b: &mut Builder, dst: VReg, kind: WordKind) {
        // `insn {dst}, {dst}` plus immediates.
        let (insn, imm) = match (width(kind), kind.signed()) {
            (8, _) => return,
            (4, false) => ("bstrpick.d", ", 31, 0"),
            (4, true) => ("addi.w", ", 0"),
            (2, false) => ("bstrpick.d", ", 15, 0"),
            (2, true) => ("ext.w.h", ""),
            (_, false) => ("andi", ", 255"),
            (_, true) => ("ext.w.b", ""),
        };
        b.emit(|o| format!("{insn} {}, {}{imm}", o.def(dst), o.use_(dst)));
    }

    fn compare_exit(&self, b: &mut Builder, lhs: Src, cmp: Compare, rhs: Src, to: ExitTo) {
        let (Compare { op, signed }, ExitTo { label: exit, keep }) = (cmp, to);
        let (lhs, op, rhs) = match op {
            CmpOp::Gt | CmpOp::Le => (rhs, op.swapped(), lhs),
            _ => (lhs, op, rhs),
        };
        let l = Self::src_reg(b, lhs);
        let r = Self::src_reg(b, rhs);
        let m = match (op, signed) {
            (CmpOp::Eq, _) => "beq",
            (CmpOp::Ne, _) => "bne",
            (CmpOp::Lt, true) => "blt",
            (CmpOp::Ge, true) => "bge",
            (CmpOp::Lt, false) => "bltu",
            _ => "bgeu",
        };
        b.emit_keep(keep, |o| format!("{m} {}, {}, {exit}f", zr(o, l), zr(o, r)));
    }

    fn store(&self, b: &mut Builder, addr: &Mem, offset: i64, value: Src, kind: WordKind) {
        let w = width(kind);
        let v = Self::src_reg(b, value);
        let m = Self::mem(b, addr, offset);
        let insn = m.insn("st");
        b.emit(|o| format!("{insn}.{} {}, {}", size_suffix(w), zr(o, v), m.text(o)));
    }

    fn copy_loop(&self) -> Option<&dyn CopyLoop> {
        Some(self)
    }

    fn set_status(&self, b: &mut Builder, status: u32) {
        b.line(format!("ori {{status}}, $zero, {status}"));
    }
}

impl CopyLoop for Loongarch64 {
    fn addr_lines(&self, o: &mut Operands, dst: &str, m: &Mem) -> Vec<String> {
        let base = o.use_(m.base);
        match m.disp {
            Disp::None | Disp::Imm(0) => vec![format!("move {dst}, {base}")],
            Disp::Reg(r) => vec![format!("add.d {dst}, {base}, {}", o.use_(r))],
            Disp::Imm(v) if simm12(v) => vec![format!("addi.d {dst}, {base}, {v}")],
            Disp::Imm(v) => vec![
                format!("li.d {dst}, {v}"),
                format!("add.d {dst}, {dst}, {base}"),
            ],
        }
    }

    fn move_line(&self, dst: &str, src: &str) -> String {
        format!("move {dst}, {src}")
    }

    fn branch_if_below(&self, t: &str, r: &str, n: u32, label: u32) -> Vec<String> {
        vec![
            format!("sltui {t}, {r}, {n}"),
            format!("bnez {t}, {label}f"),
        ]
    }

    fn skip_if_clear(&self, t: &str, r: &str, w: u32, label: u32) -> Vec<String> {
        vec![format!("andi {t}, {r}, {w}"), format!("beqz {t}, {label}f")]
    }

    fn copy_advance(&self, o: &mut Operands, r: CopyRegs, w: u32, last: bool) -> Vec<String> {
        let CopyRegs { t, s, d } = r;
        let t = o.def(t);
        let unsigned = if w < 8 { "u" } else { "" };
        let sz = size_suffix(w);
        let mut lines = vec![
            format!("ld.{sz}{unsigned} {t}, {s}, 0"),
            format!("st.{sz} {t}, {d}, 0"),
        ];
        if !last {
            lines.push(format!("addi.d {s}, {s}, {w}"));
            lines.push(format!("addi.d {d}, {d}, {w}"));
        }
        lines
    }

    fn sub_line(&self, r: &str, n: u32) -> String {
        format!("addi.d {r}, {r}, -{n}")
    }
}
