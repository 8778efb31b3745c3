//! s390x emitter (z/Architecture, z10 baseline, LLVM syntax).
//!
//! Instructions used: `larl` (descriptor address, PC-relative +-4 GiB, PIC-safe; the descriptor is
//! 32-byte aligned, `larl` needs an even address), `stg` (arming store), `llgf` (index read,
//! zero-extending), `clgr`/`cgr`/`clgfi`/`cgfi` + `je jne jl jle jh jhe` (index check,
//! compare-exits, memcpy loop), `lgr` + `msgr` + `agr` (slot address), `llgc lgb llgh lgh llgf lgf
//! lg` and `stcy sthy sty stg` (loads and stores, all RXY: 20-bit signed displacement plus an
//! optional index register), `agr sgr ngr ogr xgr agfi` and `sllg srlg srag` (arithmetic; the shift
//! count is an address `d(b)`, whose low 6 bits are used, masked to the type's width first for
//! narrower types), `llgcr lgbr llghr lghr llgfr lgfr` (canonical re-extension), `lghi lgfi llilf
//! llihf oilf` (constants), `j` (stubs). `commit store_release` is a plain store and `load_acquire` a plain load: z/Architecture
//! never makes a store visible before earlier loads and stores (LLVM also compiles release stores
//! to a plain store).
//!
//! Operand quirk: in `d(x, b)` addressing, register 0 as base or index means "none", so every
//! operand is `reg_addr` (r1-r15), and shift counts from a register are used as a base too.
//!
//! Big-endian: `.quad` and `.long` are stored as the kernel reads them, nothing to swap.
//!
//! Signature: `.long 0xb2ff0fff` right before the abort label, 4-byte aligned (`.balign 4`:
//! instructions are 2, 4 or 6 bytes long).
//!
//! Stubs stay in `.text` behind `j 7f` (see `common.rs`): `brc` reaches +-64 KiB only.
//!
//! Registers: 13 (`r1`-`r10`, `r12`-`r14`): `r0` is not in `reg_addr`, `r11` is the frame pointer,
//! `r15` the stack pointer.

use super::{
    Arch, ArchEmitter, Builder, CopyLoop, CopyRegs, Disp, ExitTo, Facts, Labels, Mem, Operands,
    Reg, Shift, Src, VReg, AREA_RSEQ_CS_OFFSET as RSEQ_CS_OFFSET,
};
use crate::ir::{BinOp, CmpOp};
use crate::semantics::Compare;
use crate::ty::WordKind;

/// The s390x emitter.
#[derive(Debug)]
pub struct S390x;

fn width(kind: WordKind) -> u32 {
    kind.width(8)
}

fn disp20(v: i64) -> bool {
    (-524_288..=524_287).contains(&v)
}

/// Instructions loading the constant `v`: mnemonic, whether it also reads the register (`oilf`
/// keeps the high half `llihf` wrote), immediate.
fn li_parts(v: i64) -> Vec<(&'static str, bool, i64)> {
    if (-32768..=32767).contains(&v) {
        vec![("lghi", false, v)]
    } else if i32::try_from(v).is_ok() {
        vec![("lgfi", false, v)]
    } else if u32::try_from(v).is_ok() {
        vec![("llilf", false, v)]
    } else {
        vec![
            ("llihf", false, (v >> 32) & 0xffff_ffff),
            ("oilf", true, v & 0xffff_ffff),
        ]
    }
}

/// An RXY operand ready to be written: `d(b)`, `d(x, b)`, or a `const` input `c+d(b)`.
#[derive(Clone, Copy)]
enum Addr {
    D(i64, Reg),
    X(i64, Reg, Reg),
    Const(Reg, i64, Reg),
}

fn shift_name(shift: Shift) -> &'static str {
    match shift {
        Shift::Left => "sllg",
        Shift::Right => "srlg",
        Shift::RightArith => "srag",
    }
}

impl Addr {
    fn text(self, o: &mut Operands) -> String {
        match self {
            Addr::D(d, base) => format!("{d}({})", o.use_(base)),
            Addr::X(d, index, base) => format!("{d}({}, {})", o.use_(index), o.use_(base)),
            Addr::Const(c, d, base) => format!("{}+{d}({})", o.use_(c), o.use_(base)),
        }
    }
}

impl S390x {
    /// Loads `v` into `t`.
    fn li(b: &mut Builder, t: VReg, v: i64) {
        for (op, reads, imm) in li_parts(v) {
            b.emit(|o| {
                let d = if reads { o.def_use(t) } else { o.def(t) };
                format!("{op} {d}, {imm}")
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
            Src::Reg(r) if b.is_const(r) => {
                // A `const` operand (`offset_of!`, `size_of`): a 32-bit immediate.
                let t = b.vreg();
                b.emit(|o| format!("lgfi {}, {}", o.def(t), o.use_(r)));
                Reg::V(t)
            }
            Src::Reg(r) => r,
            Src::Imm(v) => Self::imm_reg(b, v),
        }
    }

    /// An RXY operand `d(x, b)` for `m + extra`.
    fn mem(b: &mut Builder, m: &Mem, extra: i64) -> Addr {
        match m.disp {
            // `offset_of!` as a `const` operand: part of the 20-bit displacement.
            Disp::Reg(r) if b.is_const(r) => Addr::Const(r, extra, m.base),
            Disp::Reg(r) if disp20(extra) => Addr::X(extra, r, m.base),
            Disp::Reg(r) => {
                let k = b.vreg();
                Self::li(b, k, extra);
                b.emit(|o| format!("agr {}, {}", o.def_use(k), o.use_(r)));
                Addr::X(0, Reg::V(k), m.base)
            }
            Disp::None | Disp::Imm(_) => {
                let d = match m.disp {
                    Disp::Imm(v) => v + extra,
                    _ => extra,
                };
                if disp20(d) {
                    Addr::D(d, m.base)
                } else {
                    Addr::X(0, Self::imm_reg(b, d), m.base)
                }
            }
        }
    }

    fn store_insn(w: u32) -> &'static str {
        match w {
            1 => "stcy",
            2 => "sthy",
            4 => "sty",
            _ => "stg",
        }
    }
}

impl ArchEmitter for S390x {
    fn facts(&self) -> &'static Facts {
        // `offset_of!`/`size_of` values become `const` operands used as 20-bit displacements or
        // 32-bit immediates (`lgfi`, `agfi`, `cgfi`): no register, which matters with 13.
        &Facts {
            arch: Arch::S390x,
            pointer_bytes: 8,
            registers: 13,
            reg_class: "reg_addr",
            const_operands: true,
            jump: "j",
            signature_directive: ".long",
            signature_align: true,
        }
    }

    fn store_descriptor_pointer(&self, b: &mut Builder, area: Reg, labels: &Labels) {
        let t = b.vreg();
        b.emit(|o| format!("larl {}, {}f", o.def(t), labels.descriptor));
        b.emit(|o| format!("stg {}, {RSEQ_CS_OFFSET}({})", o.use_(t), o.use_(area)));
    }

    fn slot_address(&self, b: &mut Builder, dst: VReg, idx: VReg, base: Reg, stride: Reg) {
        b.emit_copy(|o| format!("lgr {}, {}", o.def(dst), o.use_(idx)));
        b.emit(|o| format!("msgr {}, {}", o.def_use(dst), o.use_(stride)));
        b.emit(|o| format!("agr {}, {}", o.def_use(dst), o.use_(base)));
    }

    fn mov(&self, b: &mut Builder, dst: VReg, src: Src) {
        match src {
            Src::Reg(r) if b.is_const(r) => {
                b.emit(|o| format!("lgfi {}, {}", o.def(dst), o.use_(r)))
            }
            Src::Reg(r) => b.emit_copy(|o| format!("lgr {}, {}", o.def(dst), o.use_(r))),
            Src::Imm(v) => Self::li(b, dst, v),
        }
    }

    fn release_fence(&self, _b: &mut Builder) {
        // None: stores are not reordered with earlier loads and stores.
    }

    fn load(&self, b: &mut Builder, dst: VReg, addr: &Mem, offset: i64, kind: WordKind) {
        let m = Self::mem(b, addr, offset);
        let insn = match (width(kind), kind.signed()) {
            (8, _) => "lg",
            (4, false) => "llgf",
            (4, true) => "lgf",
            (2, false) => "llgh",
            (2, true) => "lgh",
            (_, false) => "llgc",
            (_, true) => "lgb",
        };
        b.emit(|o| format!("{insn} {}, {}", o.def(dst), m.text(o)));
    }

    fn alu(&self, b: &mut Builder, op: BinOp, dst: VReg, rhs: Src) {
        match (op, rhs) {
            (BinOp::Add | BinOp::Sub, Src::Reg(r)) if b.is_const(r) => {
                let sign = if op == BinOp::Sub { "-" } else { "" };
                b.emit(|o| format!("agfi {}, {sign}{}", o.def_use(dst), o.use_(r)));
            }
            (BinOp::Add, Src::Imm(v)) if i32::try_from(v).is_ok() => {
                b.emit(|o| format!("agfi {}, {v}", o.def_use(dst)));
            }
            (BinOp::Sub, Src::Imm(v))
                if v.checked_neg().is_some_and(|n| i32::try_from(n).is_ok()) =>
            {
                let v = v.wrapping_neg();
                b.emit(|o| format!("agfi {}, {v}", o.def_use(dst)));
            }
            _ => {
                let r = Self::reg(b, rhs);
                let m = match op {
                    BinOp::Add => "agr",
                    BinOp::Sub => "sgr",
                    BinOp::And => "ngr",
                    BinOp::Or => "ogr",
                    _ => "xgr",
                };
                b.emit(|o| format!("{m} {}, {}", o.def_use(dst), o.use_(r)));
            }
        }
    }

    fn shift_imm(&self, b: &mut Builder, shift: Shift, dst: VReg, count: i64) {
        let m = shift_name(shift);
        b.emit(|o| format!("{m} {}, {}, {count}", o.def(dst), o.use_(dst)));
    }

    fn shift_reg(&self, b: &mut Builder, shift: Shift, dst: VReg, count: Reg, bits: u32) {
        // The count is the low 6 bits of the address `0(r)`; narrower types mask first.
        let count = Self::reg(b, Src::Reg(count));
        let count = if bits < 64 {
            let t = b.vreg();
            b.emit(|o| format!("lghi {}, {}", o.def(t), bits - 1));
            b.emit(|o| format!("ngr {}, {}", o.def_use(t), o.use_(count)));
            Reg::V(t)
        } else {
            count
        };
        let m = shift_name(shift);
        b.emit(|o| format!("{m} {}, {}, 0({})", o.def(dst), o.use_(dst), o.use_(count)));
    }

    fn normalize(&self, b: &mut Builder, dst: VReg, kind: WordKind) {
        let insn = match (width(kind), kind.signed()) {
            (8, _) => return,
            (4, false) => "llgfr",
            (4, true) => "lgfr",
            (2, false) => "llghr",
            (2, true) => "lghr",
            (_, false) => "llgcr",
            (_, true) => "lgbr",
        };
        b.emit(|o| format!("{insn} {}, {}", o.def(dst), o.use_(dst)));
    }

    fn compare_exit(&self, b: &mut Builder, lhs: Src, cmp: Compare, rhs: Src, to: ExitTo) {
        let (Compare { op, signed }, ExitTo { label: exit, keep }) = (cmp, to);
        let imm = |s: Src| matches!(s, Src::Imm(_)) || matches!(s, Src::Reg(r) if b.is_const(r));
        let (lhs, op, rhs) = if imm(lhs) && !imm(rhs) {
            (rhs, op.swapped(), lhs)
        } else {
            (lhs, op, rhs)
        };
        let l = Self::reg(b, lhs);
        match rhs {
            Src::Reg(r) if b.is_const(r) => {
                let m = if signed { "cgfi" } else { "clgfi" };
                b.emit(|o| format!("{m} {}, {}", o.use_(l), o.use_(r)));
            }
            Src::Imm(v) if signed && i32::try_from(v).is_ok() => {
                b.emit(|o| format!("cgfi {}, {v}", o.use_(l)));
            }
            Src::Imm(v) if !signed && u32::try_from(v).is_ok() => {
                b.emit(|o| format!("clgfi {}, {v}", o.use_(l)));
            }
            other => {
                let r = Self::reg(b, other);
                let m = if signed { "cgr" } else { "clgr" };
                b.emit(|o| format!("{m} {}, {}", o.use_(l), o.use_(r)));
            }
        }
        let m = match op {
            CmpOp::Eq => "je",
            CmpOp::Ne => "jne",
            CmpOp::Lt => "jl",
            CmpOp::Le => "jle",
            CmpOp::Gt => "jh",
            CmpOp::Ge => "jhe",
        };
        b.emit_keep(keep, |_| format!("{m} {exit}f"));
    }

    fn store(&self, b: &mut Builder, addr: &Mem, offset: i64, value: Src, kind: WordKind) {
        let insn = Self::store_insn(width(kind));
        let v = Self::reg(b, value);
        let m = Self::mem(b, addr, offset);
        b.emit(|o| format!("{insn} {}, {}", o.use_(v), m.text(o)));
    }

    fn copy_loop(&self) -> Option<&dyn CopyLoop> {
        Some(self)
    }

    fn set_status(&self, b: &mut Builder, status: u32) {
        b.line(format!("lghi {{status}}, {status}"));
    }
}

impl CopyLoop for S390x {
    fn addr_lines(&self, o: &mut Operands, dst: &str, m: &Mem) -> Vec<String> {
        let base = o.use_(m.base);
        match m.disp {
            Disp::None | Disp::Imm(0) => vec![format!("lgr {dst}, {base}")],
            Disp::Reg(r) if o.is_const(r) => vec![format!("lay {dst}, {}({base})", o.use_(r))],
            Disp::Reg(r) => vec![format!("la {dst}, 0({}, {base})", o.use_(r))],
            Disp::Imm(v) if disp20(v) => vec![format!("lay {dst}, {v}({base})")],
            Disp::Imm(v) => {
                let mut lines: Vec<String> = li_parts(v)
                    .into_iter()
                    .map(|(op, _, imm)| format!("{op} {dst}, {imm}"))
                    .collect();
                lines.push(format!("agr {dst}, {base}"));
                lines
            }
        }
    }

    fn move_line(&self, dst: &str, src: &str) -> String {
        format!("lgr {dst}, {src}")
    }

    fn branch_if_below(&self, _t: &str, r: &str, n: u32, label: u32) -> Vec<String> {
        vec![format!("clgfi {r}, {n}"), format!("jl {label}f")]
    }

    fn skip_if_clear(&self, _t: &str, r: &str, w: u32, label: u32) -> Vec<String> {
        vec![format!("tmll {r}, {w}"), format!("jz {label}f")]
    }

    fn copy_advance(&self, o: &mut Operands, r: CopyRegs, w: u32, last: bool) -> Vec<String> {
        let CopyRegs { t, s, d } = r;
        let t = o.def(t);
        let ld = match w {
            8 => "lg",
            4 => "llgf",
            2 => "llgh",
            _ => "llgc",
        };
        let st = Self::store_insn(w);
        let mut lines = vec![format!("{ld} {t}, 0({s})"), format!("{st} {t}, 0({d})")];
        if !last {
            lines.push(format!("aghi {s}, {w}"));
            lines.push(format!("aghi {d}, {w}"));
        }
        lines
    }

    fn sub_line(&self, r: &str, n: u32) -> String {
        format!("aghi {r}, -{n}")
    }
}
