//! aarch64 emitter (A64, LLVM syntax).
//!
//! Instructions used: `adrp` + `add :lo12:` (descriptor address, PC-relative +-4 GiB, PIC-safe),
//! `str` (arming store), `ldr w` (index read; a 32-bit load zero-extends into the x register),
//! `cmp`/`cmn` + `b.<cc>`, `cbz`/`cbnz` (index check, compare-exits, memcpy loop), `madd` (slot
//! address), `ldrb ldrsb ldrh ldrsh ldr ldrsw` and `strb strh str` (loads and stores; LLVM picks the
//! unscaled `ldur`/`stur` encodings for negative or unaligned offsets), `add sub and orr eor lsl lsr
//! asr` (arithmetic; register shift counts are masked to the type's width first), `uxtb uxth sxtb
//! sxth sxtw`, `mov w, w` (canonical re-extension), `movz`/`movk` (constants), post-indexed
//! `ldr`/`str` and `tbz` (runtime-length memcpy), `stlrb stlrh stlr` (`commit store_release`: a
//! store-release, which only takes a bare base register, so an offset is added into a scratch
//! first), `b` (stubs).
//!
//! Signature: `.inst 0xd428bc00` (`brk #0x45e0`) right before the abort label, as glibc and
//! librseq, so falling into it traps.
//!
//! Stubs stay in `.text` behind `b 7f` (see `common.rs`): `b.cond`/`cbz` reach only +-1 MiB, not
//! another section of a large binary.
//!
//! Registers: 28 of the 31 (`x0`-`x17`, `x20`-`x28`, `x30`). `x19` (LLVM's base pointer) and `x29`
//! (frame pointer) cannot be operands; `x18` is left out because it is the platform register on
//! Android, Windows and Apple targets, which share `target_arch = "aarch64"`.

use super::arm_syntax::{shift_name, Addr};
use super::common::chunks16;
use super::{
    Arch, ArchEmitter, Builder, CopyLoop, CopyRegs, Disp, ExitTo, Facts, Labels, Mem, Operands,
    Reg, Shift, Src, VReg, AREA_RSEQ_CS_OFFSET as RSEQ_CS_OFFSET,
};
use crate::ir::{BinOp, CmpOp, CommitKind};
use crate::semantics::Compare;
use crate::ty::WordKind;

/// The aarch64 emitter.
#[derive(Debug)]
pub struct Aarch64;

fn width(kind: WordKind) -> u32 {
    kind.width(8)
}

/// The register modifier for an access of `w` bytes (`w` register below 8 bytes).
fn wmod(w: u32) -> &'static str {
    if w == 8 {
        ""
    } else {
        "w"
    }
}

/// `mov`-immediate instructions loading `v` into an x register: mnemonic, whether it also reads
/// the register (`movk` keeps the other chunks), operands after the register.
fn li_parts(v: i64) -> Vec<(&'static str, bool, String)> {
    if (0..=0xffff).contains(&v) || (-0x1_0000..0).contains(&v) {
        return vec![("mov", false, format!("#{v}"))];
    }
    #[allow(clippy::cast_sign_loss)]
    let parts = chunks16(v as u64);
    parts
        .iter()
        .enumerate()
        .map(|(i, (shift, c))| {
            let (op, reads) = if i == 0 {
                ("movz", false)
            } else {
                ("movk", true)
            };
            (op, reads, format!("#{c}, lsl #{shift}"))
        })
        .collect()
}

/// Whether `d` fits the immediate offset of a `w`-byte `ldr`/`str` (scaled unsigned or `ldur`).
fn offset_fits(d: i64, w: u32) -> bool {
    let w = i64::from(w);
    (-256..=255).contains(&d) || (d >= 0 && d % w == 0 && d / w <= 4095)
}

/// A stored value of `w` bytes: a register, or `None` for `xzr`/`wzr`.
fn value_text(o: &mut Operands, v: Option<Reg>, w: u32) -> String {
    match v {
        Some(r) => o.use_mod(r, wmod(w)),
        None => (if w == 8 { "xzr" } else { "wzr" }).to_owned(),
    }
}

impl Aarch64 {
    /// Loads `v` into `t`.
    fn li(b: &mut Builder, t: VReg, v: i64) {
        for (op, reads, rest) in li_parts(v) {
            b.emit(|o| {
                let d = if reads { o.def_use(t) } else { o.def(t) };
                format!("{op} {d}, {rest}")
            });
        }
    }

    /// Loads an immediate into a fresh scratch register.
    fn imm_reg(b: &mut Builder, v: i64) -> Reg {
        let t = b.vreg();
        Self::li(b, t, v);
        Reg::V(t)
    }

    /// A register holding `s` (a fresh scratch for immediates).
    fn reg(b: &mut Builder, s: Src) -> Reg {
        match s {
            Src::Reg(r) => r,
            Src::Imm(v) => Self::imm_reg(b, v),
        }
    }

    /// A stored value: `None` (the zero register) for 0, else a register holding it.
    fn value(b: &mut Builder, s: Src) -> Option<Reg> {
        match s {
            Src::Imm(0) => None,
            other => Some(Self::reg(b, other)),
        }
    }

    /// A memory operand for a `w`-byte access at `m + extra`, adding into a scratch register
    /// first when the offset does not fit.
    fn mem(b: &mut Builder, m: &Mem, extra: i64, w: u32) -> Addr {
        match m.disp {
            Disp::Reg(r) if extra == 0 => Addr::Index(m.base, r),
            Disp::Reg(r) => {
                let t = b.vreg();
                b.emit(|o| format!("add {}, {}, {}", o.def(t), o.use_(m.base), o.use_(r)));
                Self::mem(
                    b,
                    &Mem {
                        base: Reg::V(t),
                        disp: Disp::Imm(0),
                    },
                    extra,
                    w,
                )
            }
            Disp::None | Disp::Imm(_) => {
                let d = match m.disp {
                    Disp::Imm(v) => v + extra,
                    _ => extra,
                };
                if d == 0 {
                    Addr::Base(m.base)
                } else if offset_fits(d, w) {
                    Addr::Imm(m.base, d)
                } else {
                    Addr::Index(m.base, Self::imm_reg(b, d))
                }
            }
        }
    }

    /// A register holding the address `m` (the base itself when there is no offset).
    fn addr_reg(b: &mut Builder, m: &Mem) -> Reg {
        let d = match m.disp {
            Disp::None | Disp::Imm(0) => return m.base,
            Disp::Imm(v) => v,
            Disp::Reg(r) => {
                let t = b.vreg();
                b.emit(|o| format!("add {}, {}, {}", o.def(t), o.use_(m.base), o.use_(r)));
                return Reg::V(t);
            }
        };
        let t = b.vreg();
        if (0..=4095).contains(&d) {
            b.emit(|o| format!("add {}, {}, #{d}", o.def(t), o.use_(m.base)));
        } else if (-4095..0).contains(&d) {
            b.emit(|o| format!("sub {}, {}, #{}", o.def(t), o.use_(m.base), -d));
        } else {
            let k = Self::imm_reg(b, d);
            b.emit(|o| format!("add {}, {}, {}", o.def(t), o.use_(m.base), o.use_(k)));
        }
        Reg::V(t)
    }

    fn store_insn(w: u32) -> &'static str {
        match w {
            1 => "strb",
            2 => "strh",
            _ => "str",
        }
    }
}

impl ArchEmitter for Aarch64 {
    fn facts(&self) -> &'static Facts {
        // `offset_of!` values are passed in registers: an immediate offset's encodability depends
        // on its value and the access width, which are not known when the template is written.
        &Facts {
            arch: Arch::Aarch64,
            pointer_bytes: 8,
            registers: 28,
            reg_class: "reg",
            const_operands: false,
            jump: "b",
            signature_directive: ".inst",
            signature_align: false,
        }
    }

    fn store_descriptor_pointer(&self, b: &mut Builder, area: Reg, labels: &Labels) {
        let t = b.vreg();
        let d = labels.descriptor;
        b.emit(|o| format!("adrp {}, {d}f", o.def(t)));
        b.emit(|o| format!("add {}, {}, :lo12:{d}f", o.def(t), o.use_(t)));
        b.emit(|o| format!("str {}, [{}, #{RSEQ_CS_OFFSET}]", o.use_(t), o.use_(area)));
    }

    fn slot_address(&self, b: &mut Builder, dst: VReg, idx: VReg, base: Reg, stride: Reg) {
        b.emit(|o| {
            let (d, i) = (o.def(dst), o.use_(idx));
            format!("madd {d}, {i}, {}, {}", o.use_(stride), o.use_(base))
        });
    }

    fn mov(&self, b: &mut Builder, dst: VReg, src: Src) {
        match src {
            Src::Reg(r) => b.emit_copy(|o| format!("mov {}, {}", o.def(dst), o.use_(r))),
            Src::Imm(v) => Self::li(b, dst, v),
        }
    }

    fn acquire_fence(&self, b: &mut Builder) {
        // `dmb ishld` orders the load before every later load and store (what
        // `ldar` gives, without `ldar`'s base-register-only addressing).
        b.line("dmb ishld");
    }

    fn release_fence(&self, b: &mut Builder) {
        // Not used by `commit`, whose release form is `stlr`; a full barrier for any other caller.
        b.line("dmb ish");
    }

    fn load(&self, b: &mut Builder, dst: VReg, addr: &Mem, offset: i64, kind: WordKind) {
        let w = width(kind);
        let m = Self::mem(b, addr, offset, w);
        let (insn, modifier) = match (w, kind.signed()) {
            (8, _) => ("ldr", ""),
            (4, false) => ("ldr", "w"),
            (4, true) => ("ldrsw", ""),
            (2, false) => ("ldrh", "w"),
            (2, true) => ("ldrsh", ""),
            (_, false) => ("ldrb", "w"),
            (_, true) => ("ldrsb", ""),
        };
        b.emit(|o| format!("{insn} {}, {}", o.def_mod(dst, modifier), m.text(o)));
    }

    fn alu(&self, b: &mut Builder, op: BinOp, dst: VReg, rhs: Src) {
        match (op, rhs) {
            (BinOp::Add | BinOp::Sub, Src::Imm(v)) if (-4095..=4095).contains(&v) => {
                let (m, v) = match (op, v < 0) {
                    (BinOp::Add, false) | (BinOp::Sub, true) => ("add", v.abs()),
                    _ => ("sub", v.abs()),
                };
                b.emit(|o| format!("{m} {}, {}, #{v}", o.def(dst), o.use_(dst)));
            }
            _ => {
                let r = Self::reg(b, rhs);
                let m = match op {
                    BinOp::Add => "add",
                    BinOp::Sub => "sub",
                    BinOp::And => "and",
                    BinOp::Or => "orr",
                    _ => "eor",
                };
                b.emit(|o| format!("{m} {}, {}, {}", o.def(dst), o.use_(dst), o.use_(r)));
            }
        }
    }

    fn shift_imm(&self, b: &mut Builder, shift: Shift, dst: VReg, count: i64) {
        let m = shift_name(shift);
        b.emit(|o| format!("{m} {}, {}, #{count}", o.def(dst), o.use_(dst)));
    }

    fn shift_reg(&self, b: &mut Builder, shift: Shift, dst: VReg, count: Reg, bits: u32) {
        // A 64-bit register shift takes the count modulo 64; narrower types mask first.
        let count = if bits < 64 {
            let t = b.vreg();
            b.emit(|o| format!("and {}, {}, #{}", o.def(t), o.use_(count), bits - 1));
            Reg::V(t)
        } else {
            count
        };
        let m = shift_name(shift);
        b.emit(|o| format!("{m} {}, {}, {}", o.def(dst), o.use_(dst), o.use_(count)));
    }

    fn normalize(&self, b: &mut Builder, dst: VReg, kind: WordKind) {
        // `insn {dst:to}, {dst:w}`.
        let (insn, to) = match (width(kind), kind.signed()) {
            (8, _) => return,
            (4, false) => ("mov", "w"),
            (4, true) => ("sxtw", ""),
            (2, false) => ("uxth", "w"),
            (2, true) => ("sxth", ""),
            (_, false) => ("uxtb", "w"),
            (_, true) => ("sxtb", ""),
        };
        b.emit(|o| format!("{insn} {}, {}", o.def_mod(dst, to), o.use_mod(dst, "w")));
    }

    fn compare_exit(&self, b: &mut Builder, lhs: Src, cmp: Compare, rhs: Src, to: ExitTo) {
        let (Compare { op, signed }, ExitTo { label: exit, keep }) = (cmp, to);
        let (lhs, op, rhs) = match (lhs, rhs) {
            (Src::Imm(_), Src::Reg(_)) => (rhs, op.swapped(), lhs),
            _ => (lhs, op, rhs),
        };
        let l = Self::reg(b, lhs);
        if let (CmpOp::Eq | CmpOp::Ne, Src::Imm(0)) = (op, rhs) {
            let m = if op == CmpOp::Eq { "cbz" } else { "cbnz" };
            b.emit_keep(keep, |o| format!("{m} {}, {exit}f", o.use_(l)));
            return;
        }
        match rhs {
            Src::Imm(v) if (0..=4095).contains(&v) => {
                b.emit(|o| format!("cmp {}, #{v}", o.use_(l)))
            }
            Src::Imm(v) if (-4095..0).contains(&v) => {
                b.emit(|o| format!("cmn {}, #{}", o.use_(l), -v));
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
        b.emit_keep(keep, |_| format!("b.{cc} {exit}f"));
    }

    fn store(&self, b: &mut Builder, addr: &Mem, offset: i64, value: Src, kind: WordKind) {
        let w = width(kind);
        let v = Self::value(b, value);
        let m = Self::mem(b, addr, offset, w);
        let insn = Self::store_insn(w);
        b.emit(|o| format!("{insn} {}, {}", value_text(o, v, w), m.text(o)));
    }

    fn copy_loop(&self) -> Option<&dyn CopyLoop> {
        Some(self)
    }

    fn commit(&self, b: &mut Builder, addr: &Mem, value: Src, kind: WordKind, commit: CommitKind) {
        match commit {
            CommitKind::Store => self.store(b, addr, 0, value, kind),
            CommitKind::StoreRelease => {
                // `stlr` orders every earlier load and store before the commit; it is the commit
                // itself, so the section still ends with its one committing store.
                let w = width(kind);
                let v = Self::value(b, value);
                let a = Self::addr_reg(b, addr);
                let m = match w {
                    1 => "stlrb",
                    2 => "stlrh",
                    _ => "stlr",
                };
                b.emit(|o| format!("{m} {}, [{}]", value_text(o, v, w), o.use_(a)));
            }
        }
    }

    fn set_status(&self, b: &mut Builder, status: u32) {
        b.line(format!("mov {{status}}, #{status}"));
    }
}

impl CopyLoop for Aarch64 {
    fn addr_lines(&self, o: &mut Operands, dst: &str, m: &Mem) -> Vec<String> {
        let base = o.use_(m.base);
        match m.disp {
            Disp::None | Disp::Imm(0) => vec![format!("mov {dst}, {base}")],
            Disp::Reg(r) => vec![format!("add {dst}, {base}, {}", o.use_(r))],
            Disp::Imm(v) if (0..=4095).contains(&v) => vec![format!("add {dst}, {base}, #{v}")],
            Disp::Imm(v) if (-4095..0).contains(&v) => {
                vec![format!("sub {dst}, {base}, #{}", -v)]
            }
            Disp::Imm(v) => {
                let mut lines: Vec<String> = li_parts(v)
                    .into_iter()
                    .map(|(op, _, rest)| format!("{op} {dst}, {rest}"))
                    .collect();
                lines.push(format!("add {dst}, {base}, {dst}"));
                lines
            }
        }
    }

    fn move_line(&self, dst: &str, src: &str) -> String {
        format!("mov {dst}, {src}")
    }

    fn branch_if_below(&self, _t: &str, r: &str, n: u32, label: u32) -> Vec<String> {
        vec![format!("cmp {r}, #{n}"), format!("b.lo {label}f")]
    }

    fn skip_if_clear(&self, _t: &str, r: &str, w: u32, label: u32) -> Vec<String> {
        vec![format!("tbz {r}, #{}, {label}f", w.trailing_zeros())]
    }

    fn copy_advance(&self, o: &mut Operands, r: CopyRegs, w: u32, _last: bool) -> Vec<String> {
        let CopyRegs { t, s, d } = r;
        // Post-indexed addressing advances the pointers in the same instructions.
        let t = o.def_mod(t, wmod(w));
        let ld = match w {
            1 => "ldrb",
            2 => "ldrh",
            _ => "ldr",
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
