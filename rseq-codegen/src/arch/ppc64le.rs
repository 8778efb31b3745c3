//! ppc64le emitter (Power ISA 2.07+, ELFv2, LLVM syntax).
//!
//! Instructions used: `bcl 20, 31` + `mflr` + `addis @ha` + `addi @l` (descriptor address,
//! PC-relative, PIC-safe and independent of the TOC pointer: an `asm!` block cannot rely on `r2`,
//! since LLVM does not know the block reads it and may omit the global entry point's TOC setup;
//! `bcl 20, 31` to the next instruction is the form the branch predictor does not treat as a call),
//! `std` (arming store), `lwz` (index read, zero-extending), `cmpld`/`cmpd`/`cmpldi`/`cmpdi` +
//! `beq bne blt ble bgt bge` (index check, compare-exits, memcpy loop), `mulld` + `add` (slot
//! address), `lbz lhz lha lwz lwa ld` / `lbzx lhzx lhax lwzx lwax ldx` and `stb sth stw std` /
//! `stbx sthx stwx stdx` (loads and stores; `ld`, `std` and `lwa` are DS-form, their offset must be
//! a multiple of 4, otherwise the indexed form is used), `extsb` (signed byte loads), `add sub and
//! or xor sld srd srad` and `addi andi. ori xori sldi srdi sradi` (arithmetic; register shift counts
//! are always masked with `clrldi`, since `sld`/`srd` use 7 count bits), `clrldi extsb extsh extsw`
//! (canonical re-extension), `li lis ori oris` and `mr`, `lwsync` (`commit store_release`: orders
//! earlier loads and stores before the commit store), `b` (stubs).
//!
//! Operand quirks: `addi`, `addis` and every `d(rA)` / `rA, rB` access read `rA = r0` as the literal
//! 0, so every operand is `reg_nonzero`. `bcl` writes the link register: `lr` is clobbered. Compares
//! and `andi.` write `cr0`: `cr0` is clobbered.
//!
//! Signature: `.long 0x0fe5000b` (`twui r5, 11`) right before the abort label.
//!
//! Stubs stay in `.text` behind `b 7f` (see `common.rs`): conditional branches reach +-32 KiB only.
//!
//! Registers: 27 = 25 `reg_nonzero` registers (`r3`-`r12`, `r14`-`r28`; `r0` is excluded by the
//! class, `r1` sp, `r2` TOC, `r13` thread pointer, `r29`-`r31` frame/base pointers) plus the
//! clobbered `lr` and `cr0`, which the register count includes.

use super::{
    Arch, ArchEmitter, Builder, CopyLoop, CopyRegs, Disp, ExitTo, Facts, Labels, Mem, Operands,
    Reg, Shift, Src, VReg, AREA_RSEQ_CS_OFFSET as RSEQ_CS_OFFSET,
};
use crate::ir::{BinOp, CmpOp};
use crate::semantics::Compare;
use crate::ty::WordKind;

/// The ppc64le emitter.
#[derive(Debug)]
pub struct Ppc64le;

fn width(kind: WordKind) -> u32 {
    kind.width(8)
}

fn simm16(v: i64) -> bool {
    (-32768..=32767).contains(&v)
}

/// Instructions loading the constant `v`: mnemonic, whether it also reads the register (`ori d,
/// d, imm`), immediate.
fn li_parts(v: i64) -> Vec<(&'static str, bool, i64)> {
    if simm16(v) {
        return vec![("li", false, v)];
    }
    if i32::try_from(v).is_ok() {
        return vec![("lis", false, v >> 16), ("ori", true, v & 0xffff)];
    }
    vec![
        ("lis", false, v >> 48),
        ("ori", true, (v >> 32) & 0xffff),
        ("sldi", true, 32),
        ("oris", true, (v >> 16) & 0xffff),
        ("ori", true, v & 0xffff),
    ]
}

/// One [`li_parts`] instruction on register text `d`.
fn li_text((op, reads, imm): (&str, bool, i64), d: &str) -> String {
    if reads {
        format!("{op} {d}, {d}, {imm}")
    } else {
        format!("{op} {d}, {imm}")
    }
}

/// An access: D/DS form `insn rT, d(rA)` or X form `insnx rT, rA, rB`.
#[derive(Clone, Copy)]
enum Access {
    D(i64, Reg),
    X(Reg, Reg),
}

impl Access {
    /// The mnemonic suffix: `x` for the indexed form.
    fn x(self) -> &'static str {
        match self {
            Access::D(..) => "",
            Access::X(..) => "x",
        }
    }

    fn text(self, o: &mut Operands) -> String {
        match self {
            Access::D(d, base) => format!("{d}({})", o.use_(base)),
            Access::X(base, index) => format!("{}, {}", o.use_(base), o.use_(index)),
        }
    }
}

impl Ppc64le {
    /// Loads `v` into `t`.
    fn li(b: &mut Builder, t: VReg, v: i64) {
        for part in li_parts(v) {
            b.emit(|o| {
                let d = if part.1 { o.def_use(t) } else { o.def(t) };
                li_text(part, &d)
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

    /// The access at `m + extra`; `ds` when the D-form offset must be a multiple of 4.
    fn mem(b: &mut Builder, m: &Mem, extra: i64, ds: bool) -> Access {
        let index = match m.disp {
            Disp::Reg(r) if extra == 0 => r,
            Disp::Reg(r) => {
                let k = b.vreg();
                Self::li(b, k, extra);
                b.emit(|o| format!("add {}, {}, {}", o.def(k), o.use_(k), o.use_(r)));
                Reg::V(k)
            }
            Disp::None | Disp::Imm(_) => {
                let d = match m.disp {
                    Disp::Imm(v) => v + extra,
                    _ => extra,
                };
                if simm16(d) && (!ds || d % 4 == 0) {
                    return Access::D(d, m.base);
                }
                Self::imm_reg(b, d)
            }
        };
        Access::X(m.base, index)
    }
}

impl ArchEmitter for Ppc64le {
    fn facts(&self) -> &'static Facts {
        &Facts {
            arch: Arch::Ppc64le,
            pointer_bytes: 8,
            registers: 27,
            reg_class: "reg_nonzero",
            const_operands: false,
            jump: "b",
            signature_directive: ".long",
            signature_align: false,
        }
    }

    fn store_descriptor_pointer(&self, b: &mut Builder, area: Reg, labels: &Labels) {
        b.clobber("lr");
        b.clobber("cr0");
        let here = b.label();
        let t = b.vreg();
        let d = labels.descriptor;
        b.line(format!("bcl 20, 31, {here}f"));
        b.line(format!("{here}:"));
        b.emit(|o| format!("mflr {}", o.def(t)));
        b.emit(|o| format!("addis {}, {}, ({d}f - {here}b)@ha", o.def(t), o.use_(t)));
        b.emit(|o| format!("addi {}, {}, ({d}f - {here}b)@l", o.def(t), o.use_(t)));
        b.emit(|o| format!("std {}, {RSEQ_CS_OFFSET}({})", o.use_(t), o.use_(area)));
    }

    fn slot_address(&self, b: &mut Builder, dst: VReg, idx: VReg, base: Reg, stride: Reg) {
        b.emit(|o| format!("mulld {}, {}, {}", o.def(dst), o.use_(idx), o.use_(stride)));
        b.emit(|o| format!("add {}, {}, {}", o.def(dst), o.use_(dst), o.use_(base)));
    }

    fn mov(&self, b: &mut Builder, dst: VReg, src: Src) {
        match src {
            Src::Reg(r) => b.emit_copy(|o| format!("mr {}, {}", o.def(dst), o.use_(r))),
            Src::Imm(v) => Self::li(b, dst, v),
        }
    }

    fn acquire_fence(&self, b: &mut Builder) {
        // `lwsync` orders the load before every later load and store.
        b.line("lwsync");
    }

    fn release_fence(&self, b: &mut Builder) {
        b.line("lwsync");
    }

    fn load(&self, b: &mut Builder, dst: VReg, addr: &Mem, offset: i64, kind: WordKind) {
        let w = width(kind);
        let (insn, ds) = match (w, kind.signed()) {
            (8, _) => ("ld", true),
            (4, false) => ("lwz", false),
            (4, true) => ("lwa", true),
            (2, false) => ("lhz", false),
            (2, true) => ("lha", false),
            _ => ("lbz", false),
        };
        let a = Self::mem(b, addr, offset, ds);
        let x = a.x();
        b.emit(|o| format!("{insn}{x} {}, {}", o.def(dst), a.text(o)));
        if w == 1 && kind.signed() {
            // There is no sign-extending byte load.
            b.emit(|o| format!("extsb {}, {}", o.def(dst), o.use_(dst)));
        }
    }

    fn alu(&self, b: &mut Builder, op: BinOp, dst: VReg, rhs: Src) {
        match (op, rhs) {
            (BinOp::Add, Src::Imm(v)) if simm16(v) => {
                b.emit(|o| format!("addi {}, {}, {v}", o.def(dst), o.use_(dst)));
            }
            (BinOp::Sub, Src::Imm(v)) if v.checked_neg().is_some_and(simm16) => {
                let v = v.wrapping_neg();
                b.emit(|o| format!("addi {}, {}, {v}", o.def(dst), o.use_(dst)));
            }
            (BinOp::And | BinOp::Or | BinOp::Xor, Src::Imm(v)) if (0..=65535).contains(&v) => {
                let m = match op {
                    BinOp::And => "andi.",
                    BinOp::Or => "ori",
                    _ => "xori",
                };
                b.emit(|o| format!("{m} {}, {}, {v}", o.def(dst), o.use_(dst)));
            }
            _ => {
                let r = Self::reg(b, rhs);
                let m = match op {
                    BinOp::Add => "add",
                    BinOp::Sub => "sub",
                    BinOp::And => "and",
                    BinOp::Or => "or",
                    _ => "xor",
                };
                b.emit(|o| format!("{m} {}, {}, {}", o.def(dst), o.use_(dst), o.use_(r)));
            }
        }
    }

    fn shift_imm(&self, b: &mut Builder, shift: Shift, dst: VReg, count: i64) {
        let m = match shift {
            Shift::Left => "sldi",
            Shift::Right => "srdi",
            Shift::RightArith => "sradi",
        };
        b.emit(|o| format!("{m} {}, {}, {count}", o.def(dst), o.use_(dst)));
    }

    fn shift_reg(&self, b: &mut Builder, shift: Shift, dst: VReg, count: Reg, bits: u32) {
        // `sld`/`srd` read 7 count bits (64..127 shift everything out): always mask.
        let t = b.vreg();
        let keep_bits = 64 - bits.trailing_zeros();
        b.emit(|o| format!("clrldi {}, {}, {keep_bits}", o.def(t), o.use_(count)));
        let m = match shift {
            Shift::Left => "sld",
            Shift::Right => "srd",
            Shift::RightArith => "srad",
        };
        b.emit(|o| format!("{m} {}, {}, {}", o.def(dst), o.use_(dst), o.use_(t)));
    }

    fn normalize(&self, b: &mut Builder, dst: VReg, kind: WordKind) {
        // `insn {dst}, {dst}` plus the `clrldi` bit count.
        let (insn, count) = match (width(kind), kind.signed()) {
            (8, _) => return,
            (4, false) => ("clrldi", ", 32"),
            (4, true) => ("extsw", ""),
            (2, false) => ("clrldi", ", 48"),
            (2, true) => ("extsh", ""),
            (_, false) => ("clrldi", ", 56"),
            (_, true) => ("extsb", ""),
        };
        b.emit(|o| format!("{insn} {}, {}{count}", o.def(dst), o.use_(dst)));
    }

    fn compare_exit(&self, b: &mut Builder, lhs: Src, cmp: Compare, rhs: Src, to: ExitTo) {
        let (Compare { op, signed }, ExitTo { label: exit, keep }) = (cmp, to);
        let (lhs, op, rhs) = match (lhs, rhs) {
            (Src::Imm(_), Src::Reg(_)) => (rhs, op.swapped(), lhs),
            _ => (lhs, op, rhs),
        };
        let l = Self::reg(b, lhs);
        match rhs {
            Src::Imm(v) if signed && simm16(v) => b.emit(|o| format!("cmpdi {}, {v}", o.use_(l))),
            Src::Imm(v) if !signed && (0..=65535).contains(&v) => {
                b.emit(|o| format!("cmpldi {}, {v}", o.use_(l)));
            }
            other => {
                let r = Self::reg(b, other);
                let m = if signed { "cmpd" } else { "cmpld" };
                b.emit(|o| format!("{m} {}, {}", o.use_(l), o.use_(r)));
            }
        }
        let m = match op {
            CmpOp::Eq => "beq",
            CmpOp::Ne => "bne",
            CmpOp::Lt => "blt",
            CmpOp::Le => "ble",
            CmpOp::Gt => "bgt",
            CmpOp::Ge => "bge",
        };
        b.emit_keep(keep, |_| format!("{m} {exit}f"));
    }

    fn store(&self, b: &mut Builder, addr: &Mem, offset: i64, value: Src, kind: WordKind) {
        let w = width(kind);
        let v = Self::reg(b, value);
        let a = Self::mem(b, addr, offset, w == 8);
        let insn = match w {
            1 => "stb",
            2 => "sth",
            4 => "stw",
            _ => "std",
        };
        let x = a.x();
        b.emit(|o| format!("{insn}{x} {}, {}", o.use_(v), a.text(o)));
    }

    fn copy_loop(&self) -> Option<&dyn CopyLoop> {
        Some(self)
    }

    fn set_status(&self, b: &mut Builder, status: u32) {
        b.line(format!("li {{status}}, {status}"));
    }
}

impl CopyLoop for Ppc64le {
    fn addr_lines(&self, o: &mut Operands, dst: &str, m: &Mem) -> Vec<String> {
        let base = o.use_(m.base);
        match m.disp {
            Disp::None | Disp::Imm(0) => vec![format!("mr {dst}, {base}")],
            Disp::Reg(r) => vec![format!("add {dst}, {base}, {}", o.use_(r))],
            Disp::Imm(v) if simm16(v) => vec![format!("addi {dst}, {base}, {v}")],
            Disp::Imm(v) => {
                let mut lines: Vec<String> =
                    li_parts(v).into_iter().map(|p| li_text(p, dst)).collect();
                lines.push(format!("add {dst}, {dst}, {base}"));
                lines
            }
        }
    }

    fn move_line(&self, dst: &str, src: &str) -> String {
        format!("mr {dst}, {src}")
    }

    fn branch_if_below(&self, _t: &str, r: &str, n: u32, label: u32) -> Vec<String> {
        vec![format!("cmpldi {r}, {n}"), format!("blt {label}f")]
    }

    fn skip_if_clear(&self, t: &str, r: &str, w: u32, label: u32) -> Vec<String> {
        vec![format!("andi. {t}, {r}, {w}"), format!("beq {label}f")]
    }

    fn copy_advance(&self, o: &mut Operands, r: CopyRegs, w: u32, last: bool) -> Vec<String> {
        let CopyRegs { t, s, d } = r;
        let t = o.def(t);
        let (ld, st) = match w {
            8 => ("ld", "std"),
            4 => ("lwz", "stw"),
            2 => ("lhz", "sth"),
            _ => ("lbz", "stb"),
        };
        let mut lines = vec![format!("{ld} {t}, 0({s})"), format!("{st} {t}, 0({d})")];
        if !last {
            lines.push(format!("addi {s}, {s}, {w}"));
            lines.push(format!("addi {d}, {d}, {w}"));
        }
        lines
    }

    fn sub_line(&self, r: &str, n: u32) -> String {
        format!("addi {r}, {r}, -{n}")
    }
}
