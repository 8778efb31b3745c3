//! riscv64 emitter (RV64GC, LLVM syntax).
//!
//! Instructions used: `lla` (`auipc` + `addi`: descriptor address, PC-relative +-2 GiB, PIC-safe),
//! `sd` (arming store), `lwu` (index read, zero-extending), `bgeu`/`bne`/`beq`/`blt`/`bge`/`bltu`
//! and `beqz`/`bnez` (index check, compare-exits, memcpy loop), `mul` + `add` (slot address),
//! `lbu lb lhu lh lwu lw ld` and `sb sh sw sd` (loads and stores), `add sub and or xor sll srl sra`
//! and their immediate forms (arithmetic; register shift counts are masked to the type's width
//! first), `slli`/`srli`/`srai`, `andi` and `sext.w` (canonical re-extension), `li` and `mv`,
//! `fence rw, w` (`commit store_release`: orders every earlier load and store before the commit
//! store that follows it), `j` (stubs).
//!
//! Signature: `.long 0xf1401073` right before the abort label, 4-byte aligned (`.balign 4`: with
//! compressed instructions the stub may start at a 2-byte boundary). glibc 2.36 does not register
//! rseq on riscv64; the runtime registers its own area with this signature.
//!
//! Branch reach: conditional branches reach +-4 KiB and `j` +-1 MiB, so the stubs stay in `.text`
//! right after the section behind `j 7f` (see `common.rs`): every branch is resolved by the
//! assembler inside one section, none needs a relocation that could fail at link time. (The
//! alternative, an `auipc` + `jalr` pair per exit into `__rseq_failure`, needs a free register at
//! every exit and an inverted branch around it.) A section is bounded by the `memcpy` cap, far
//! below 4 KiB of code.
//!
//! Registers: 26 (`x1`, `x5`-`x7`, `x10`-`x31`): `x0` zero, `x2` sp, `x3` gp, `x4` tp, `x8` frame
//! pointer and `x9` (LLVM's base pointer) are never operands.

use super::{
    Arch, ArchEmitter, Builder, CopyLoop, CopyRegs, Disp, ExitTo, Facts, Labels, Mem, Operands,
    Reg, Shift, Src, VReg, AREA_RSEQ_CS_OFFSET as RSEQ_CS_OFFSET,
};
use crate::ir::{BinOp, CmpOp};
use crate::semantics::Compare;
use crate::ty::WordKind;

/// The riscv64 emitter.
#[derive(Debug)]
pub struct Riscv64;

fn width(kind: WordKind) -> u32 {
    kind.width(8)
}

/// The load of `w` bytes, sign- or zero-extending to 64 bits.
fn load_insn(w: u32, signed: bool) -> &'static str {
    match (w, signed) {
        (8, _) => "ld",
        (4, false) => "lwu",
        (4, true) => "lw",
        (2, false) => "lhu",
        (2, true) => "lh",
        (_, false) => "lbu",
        (_, true) => "lb",
    }
}

fn simm12(v: i64) -> bool {
    (-2048..=2047).contains(&v)
}

/// A memory operand `disp(base)` ready to be written.
#[derive(Clone, Copy)]
struct Addr {
    base: Reg,
    disp: i64,
}

fn shift_name(shift: Shift) -> &'static str {
    match shift {
        Shift::Left => "sll",
        Shift::Right => "srl",
        Shift::RightArith => "sra",
    }
}

impl Addr {
    fn text(self, o: &mut Operands) -> String {
        format!("{}({})", self.disp, o.use_(self.base))
    }
}

/// A source register, `None` for `zero`.
fn zr(o: &mut Operands, r: Option<Reg>) -> String {
    r.map_or_else(|| "zero".to_owned(), |r| o.use_(r))
}

impl Riscv64 {
    fn imm_reg(b: &mut Builder, v: i64) -> Reg {
        let t = b.vreg();
        b.emit(|o| format!("li {}, {v}", o.def(t)));
        Reg::V(t)
    }

    /// A register holding `s`: `None` (`zero`) for 0, a fresh scratch for other immediates.
    fn src_reg(b: &mut Builder, s: Src) -> Option<Reg> {
        match s {
            Src::Imm(0) => None,
            Src::Imm(v) => Some(Self::imm_reg(b, v)),
            Src::Reg(r) => Some(r),
        }
    }

    /// A memory operand `d(base)` for `m + extra`, adding into a scratch register when needed.
    fn mem(b: &mut Builder, m: &Mem, extra: i64) -> Addr {
        let (base, d) = match m.disp {
            Disp::Reg(r) => {
                let t = b.vreg();
                b.emit(|o| format!("add {}, {}, {}", o.def(t), o.use_(m.base), o.use_(r)));
                (Reg::V(t), extra)
            }
            Disp::None => (m.base, extra),
            Disp::Imm(v) => (m.base, v + extra),
        };
        if simm12(d) {
            return Addr { base, disp: d };
        }
        let Reg::V(t) = Self::imm_reg(b, d) else {
            unreachable!()
        };
        b.emit(|o| format!("add {}, {}, {}", o.def(t), o.use_(t), o.use_(base)));
        Addr {
            base: Reg::V(t),
            disp: 0,
        }
    }

    fn store_insn(w: u32) -> &'static str {
        match w {
            1 => "sb",
            2 => "sh",
            4 => "sw",
            _ => "sd",
        }
    }
}

impl ArchEmitter for Riscv64 {
    fn facts(&self) -> &'static Facts {
        // Offsets beyond 12 bits need an `add`: `offset_of!` values come in registers.
        &Facts {
            arch: Arch::Riscv64,
            pointer_bytes: 8,
            registers: 26,
            reg_class: "reg",
            const_operands: false,
            jump: "j",
            signature_directive: ".long",
            signature_align: true,
        }
    }

    fn store_descriptor_pointer(&self, b: &mut Builder, area: Reg, labels: &Labels) {
        let t = b.vreg();
        b.emit(|o| format!("lla {}, {}f", o.def(t), labels.descriptor));
        b.emit(|o| format!("sd {}, {RSEQ_CS_OFFSET}({})", o.use_(t), o.use_(area)));
    }

    fn slot_address(&self, b: &mut Builder, dst: VReg, idx: VReg, base: Reg, stride: Reg) {
        b.emit(|o| format!("mul {}, {}, {}", o.def(dst), o.use_(idx), o.use_(stride)));
        b.emit(|o| format!("add {}, {}, {}", o.def(dst), o.use_(dst), o.use_(base)));
    }

    fn mov(&self, b: &mut Builder, dst: VReg, src: Src) {
        match src {
            Src::Reg(r) => b.emit_copy(|o| format!("mv {}, {}", o.def(dst), o.use_(r))),
            Src::Imm(v) => b.emit(|o| format!("li {}, {v}", o.def(dst))),
        }
    }

    fn acquire_fence(&self, b: &mut Builder) {
        // The RVWMO acquire mapping: the load, then `fence r, rw`.
        b.line("fence r, rw");
    }

    fn release_fence(&self, b: &mut Builder) {
        // No earlier load or store may be reordered after the store that follows.
        b.line("fence rw, w");
    }

    fn load(&self, b: &mut Builder, dst: VReg, addr: &Mem, offset: i64, kind: WordKind) {
        let m = Self::mem(b, addr, offset);
        let insn = load_insn(width(kind), kind.signed());
        b.emit(|o| format!("{insn} {}, {}", o.def(dst), m.text(o)));
    }

    fn alu(&self, b: &mut Builder, op: BinOp, dst: VReg, rhs: Src) {
        match (op, rhs) {
            (BinOp::Add, Src::Imm(v)) if simm12(v) => {
                b.emit(|o| format!("addi {}, {}, {v}", o.def(dst), o.use_(dst)));
            }
            (BinOp::Sub, Src::Imm(v)) if v.checked_neg().is_some_and(simm12) => {
                let v = v.wrapping_neg();
                b.emit(|o| format!("addi {}, {}, {v}", o.def(dst), o.use_(dst)));
            }
            (BinOp::And | BinOp::Or | BinOp::Xor, Src::Imm(v)) if simm12(v) => {
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
                    BinOp::Add => "add",
                    BinOp::Sub => "sub",
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
        b.emit(|o| format!("{m}i {}, {}, {count}", o.def(dst), o.use_(dst)));
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
        b.emit(|o| format!("{m} {}, {}, {}", o.def(dst), o.use_(dst), o.use_(count)));
    }

    fn normalize(&self, b: &mut Builder, dst: VReg, kind: WordKind) {
        match (width(kind), kind.signed()) {
            (8, _) => {}
            (4, true) => b.emit(|o| format!("sext.w {}, {}", o.def(dst), o.use_(dst))),
            (1, false) => b.emit(|o| format!("andi {}, {}, 255", o.def(dst), o.use_(dst))),
            (w, signed) => {
                let s = 64 - w * 8;
                let right = if signed { "srai" } else { "srli" };
                b.emit(|o| format!("slli {}, {}, {s}", o.def(dst), o.use_(dst)));
                b.emit(|o| format!("{right} {}, {}, {s}", o.def(dst), o.use_(dst)));
            }
        }
    }

    fn compare_exit(&self, b: &mut Builder, lhs: Src, cmp: Compare, rhs: Src, to: ExitTo) {
        let (Compare { op, signed }, ExitTo { label: exit, keep }) = (cmp, to);
        // `a > b` is `b < a` and `a <= b` is `b >= a`: riscv has only eq/ne/lt/ge branches.
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
        let insn = Self::store_insn(width(kind));
        let v = Self::src_reg(b, value);
        let m = Self::mem(b, addr, offset);
        b.emit(|o| format!("{insn} {}, {}", zr(o, v), m.text(o)));
    }

    fn copy_loop(&self) -> Option<&dyn CopyLoop> {
        Some(self)
    }

    fn set_status(&self, b: &mut Builder, status: u32) {
        b.line(format!("li {{status}}, {status}"));
    }
}

impl CopyLoop for Riscv64 {
    fn addr_lines(&self, o: &mut Operands, dst: &str, m: &Mem) -> Vec<String> {
        let base = o.use_(m.base);
        match m.disp {
            Disp::None | Disp::Imm(0) => vec![format!("mv {dst}, {base}")],
            Disp::Reg(r) => vec![format!("add {dst}, {base}, {}", o.use_(r))],
            Disp::Imm(v) if simm12(v) => vec![format!("addi {dst}, {base}, {v}")],
            Disp::Imm(v) => vec![
                format!("li {dst}, {v}"),
                format!("add {dst}, {dst}, {base}"),
            ],
        }
    }

    fn move_line(&self, dst: &str, src: &str) -> String {
        format!("mv {dst}, {src}")
    }

    fn branch_if_below(&self, t: &str, r: &str, n: u32, label: u32) -> Vec<String> {
        vec![
            format!("sltiu {t}, {r}, {n}"),
            format!("bnez {t}, {label}f"),
        ]
    }

    fn skip_if_clear(&self, t: &str, r: &str, w: u32, label: u32) -> Vec<String> {
        vec![format!("andi {t}, {r}, {w}"), format!("beqz {t}, {label}f")]
    }

    fn copy_advance(&self, o: &mut Operands, r: CopyRegs, w: u32, last: bool) -> Vec<String> {
        let CopyRegs { t, s, d } = r;
        let t = o.def(t);
        let (ld, st) = (load_insn(w, false), Self::store_insn(w));
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
