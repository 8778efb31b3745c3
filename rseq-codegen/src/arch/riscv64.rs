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

use super::common::AFTER_STUBS;
use super::{
    Arch, ArchEmitter, Builder, CopyLen, Disp, Labels, Mem, Operands, Reg, Src, VReg,
    AREA_CPU_ID_OFFSET as CPU_ID_OFFSET, AREA_MM_CID_OFFSET as MM_CID_OFFSET,
    AREA_RSEQ_CS_OFFSET as RSEQ_CS_OFFSET,
};
use crate::ir::{BinOp, CmpOp, CommitKind, IndexMode};
use crate::ty::WordKind;

/// The riscv64 emitter.
#[derive(Debug)]
pub struct Riscv64;

fn width(kind: WordKind) -> u32 {
    kind.width(8)
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

    fn store_to(b: &mut Builder, addr: &Mem, value: Src, kind: WordKind) {
        let insn = Self::store_insn(width(kind));
        let v = Self::src_reg(b, value);
        let m = Self::mem(b, addr, 0);
        b.emit(|o| format!("{insn} {}, {}", zr(o, v), m.text(o)));
    }

    /// Lines computing the address `m` into `dst` (a def already named) in the memcpy group.
    fn addr_lines(o: &mut Operands, dst: &str, m: &Mem) -> Vec<String> {
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
}

impl ArchEmitter for Riscv64 {
    fn arch(&self) -> Arch {
        Arch::Riscv64
    }

    fn pointer_bytes(&self) -> u32 {
        8
    }

    fn registers(&self) -> usize {
        26
    }

    fn imm_fits(&self, _value: i64) -> bool {
        // `li` builds any constant; 12-bit immediate fields are used when the value fits.
        true
    }

    fn const_operands(&self) -> bool {
        // Offsets beyond 12 bits need an `add`: `offset_of!` values come in registers.
        false
    }

    fn store_descriptor_pointer(&self, b: &mut Builder, area: Reg, labels: &Labels) {
        let t = b.vreg();
        b.emit(|o| format!("lla {}, {}f", o.def(t), labels.descriptor));
        b.emit(|o| format!("sd {}, {RSEQ_CS_OFFSET}({})", o.use_(t), o.use_(area)));
    }

    fn label(&self, b: &mut Builder, label: u32) {
        b.line(format!("{label}:"));
    }

    fn read_index(&self, b: &mut Builder, area: Reg, mode: IndexMode, dst: VReg) {
        let off = match mode {
            IndexMode::CpuId => CPU_ID_OFFSET,
            IndexMode::MmCid => MM_CID_OFFSET,
        };
        b.emit(|o| format!("lwu {}, {off}({})", o.def(dst), o.use_(area)));
    }

    fn check_index_bounds(&self, b: &mut Builder, idx: VReg, len: Reg, exit: u32, keep: &[VReg]) {
        b.emit_keep(keep, |o| {
            format!("bgeu {}, {}, {exit}f", o.use_(idx), o.use_(len))
        });
    }

    fn check_expected_cpu(
        &self,
        b: &mut Builder,
        idx: VReg,
        expected: Src,
        exit: u32,
        keep: &[VReg],
    ) {
        let e = Self::src_reg(b, expected);
        b.emit_keep(keep, |o| {
            format!("bne {}, {}, {exit}f", o.use_(idx), zr(o, e))
        });
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

    fn load(&self, b: &mut Builder, dst: VReg, addr: &Mem, kind: WordKind) {
        let m = Self::mem(b, addr, 0);
        let insn = match (width(kind), kind.signed()) {
            (8, _) => "ld",
            (4, false) => "lwu",
            (4, true) => "lw",
            (2, false) => "lhu",
            (2, true) => "lh",
            (_, false) => "lbu",
            (_, true) => "lb",
        };
        b.emit(|o| format!("{insn} {}, {}", o.def(dst), m.text(o)));
    }

    fn arith(&self, b: &mut Builder, op: BinOp, dst: VReg, rhs: Src, kind: WordKind) {
        let bits = width(kind) * 8;
        let shift = match op {
            BinOp::Shl => "sll",
            _ if kind.signed() => "sra",
            _ => "srl",
        };
        match (op, rhs) {
            (BinOp::Shl | BinOp::Shr, Src::Imm(c)) => {
                let c = c & i64::from(bits - 1);
                if c != 0 {
                    b.emit(|o| format!("{shift}i {}, {}, {c}", o.def(dst), o.use_(dst)));
                }
            }
            (BinOp::Shl | BinOp::Shr, Src::Reg(r)) => {
                // 64-bit shifts take the count modulo 64; narrower types mask first.
                let count = if bits < 64 {
                    let t = b.vreg();
                    b.emit(|o| format!("andi {}, {}, {}", o.def(t), o.use_(r), bits - 1));
                    Reg::V(t)
                } else {
                    r
                };
                b.emit(|o| format!("{shift} {}, {}, {}", o.def(dst), o.use_(dst), o.use_(count)));
            }
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
        if matches!(op, BinOp::Add | BinOp::Sub | BinOp::Shl) {
            self.normalize(b, dst, kind);
        }
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

    fn compare_exit(
        &self,
        b: &mut Builder,
        lhs: Src,
        op: CmpOp,
        rhs: Src,
        signed: bool,
        exit: u32,
        keep: &[VReg],
    ) {
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

    fn store(&self, b: &mut Builder, addr: &Mem, value: Src, kind: WordKind) {
        Self::store_to(b, addr, value, kind);
    }

    fn memcpy(&self, b: &mut Builder, dst: &Mem, src: &Mem, len: CopyLen) {
        let t = b.vreg();
        let load_insn = |w: u32| match w {
            8 => "ld",
            4 => "lwu",
            2 => "lhu",
            _ => "lbu",
        };
        match len {
            CopyLen::Const(n) => {
                // Unrolled: 8-byte moves, then a 4/2/1-byte tail. Misaligned accesses are
                // correct on Linux (hardware or kernel emulation) but slow: align hot buffers.
                let mut off = 0u64;
                for w in [8u32, 4, 2, 1] {
                    while n - off >= u64::from(w) {
                        let k = i64::try_from(off).expect("memcpy length is capped");
                        let sm = Self::mem(b, src, k);
                        b.emit(|o| format!("{} {}, {}", load_insn(w), o.def(t), sm.text(o)));
                        let dm = Self::mem(b, dst, k);
                        let store = Self::store_insn(w);
                        b.emit(|o| format!("{store} {}, {}", o.use_(t), dm.text(o)));
                        off += u64::from(w);
                    }
                }
            }
            CopyLen::Reg(len) => {
                // Running pointers and remaining count in scratch registers (inputs are never
                // written), one early-clobber group (see the x86_64 emitter).
                let (ps, pd, rem) = (b.vreg(), b.vreg(), b.vreg());
                let (l1, l2, l3, l4, l5) = (b.label(), b.label(), b.label(), b.label(), b.label());
                b.emit_group(|o| {
                    let tt = o.def(t);
                    let (s, d, r) = (o.def(ps), o.def(pd), o.def(rem));
                    let mut group = Self::addr_lines(o, &s, src);
                    group.extend(Self::addr_lines(o, &d, dst));
                    group.push(format!("mv {r}, {}", o.use_(len)));
                    group.push(format!("{l1}:"));
                    group.push(format!("sltiu {tt}, {r}, 8"));
                    group.push(format!("bnez {tt}, {l2}f"));
                    group.push(format!("ld {tt}, 0({s})"));
                    group.push(format!("sd {tt}, 0({d})"));
                    group.push(format!("addi {s}, {s}, 8"));
                    group.push(format!("addi {d}, {d}, 8"));
                    group.push(format!("addi {r}, {r}, -8"));
                    group.push(format!("j {l1}b"));
                    group.push(format!("{l2}:"));
                    for (w, skip) in [(4u32, l3), (2, l4), (1, l5)] {
                        group.push(format!("andi {tt}, {r}, {w}"));
                        group.push(format!("beqz {tt}, {skip}f"));
                        group.push(format!("{} {tt}, 0({s})", load_insn(w)));
                        group.push(format!("{} {tt}, 0({d})", Self::store_insn(w)));
                        if w != 1 {
                            group.push(format!("addi {s}, {s}, {w}"));
                            group.push(format!("addi {d}, {d}, {w}"));
                        }
                        group.push(format!("{skip}:"));
                    }
                    group
                });
            }
        }
    }

    fn commit(&self, b: &mut Builder, addr: &Mem, value: Src, kind: WordKind, commit: CommitKind) {
        if commit == CommitKind::StoreRelease {
            // Release: no earlier load or store may be reordered after the commit store. The
            // fence sits inside the section, before the store, which stays the last instruction.
            b.line("fence rw, w");
        }
        Self::store_to(b, addr, value, kind);
    }

    fn set_status(&self, b: &mut Builder, status: u32) {
        b.line(format!("li {{status}}, {status}"));
    }

    fn jump_back(&self, b: &mut Builder, label: u32) {
        b.line(format!("j {label}b"));
    }

    fn abort_stub(&self, b: &mut Builder, labels: &Labels) {
        b.line(format!("j {AFTER_STUBS}f"));
        b.line(".balign 4");
        b.line(format!(".long {:#010x}", Arch::Riscv64.signature()));
        b.line(format!("{}:", labels.abort));
    }

    fn descriptor(&self, b: &mut Builder, labels: &Labels, exits: &[u32]) {
        super::common::descriptor64(b, labels, exits);
    }
}
