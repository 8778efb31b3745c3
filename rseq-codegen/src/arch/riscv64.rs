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

use super::common::{mem_regs, regs, with_keep, AFTER_STUBS};
use super::{
    Arch, ArchEmitter, Builder, CopyLen, Disp, Labels, Mem, Reg, Src, VReg,
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

impl Riscv64 {
    fn imm_reg(b: &mut Builder, v: i64) -> Reg {
        let t = b.vreg();
        let text = format!("li {}, {v}", b.r(Reg::V(t), ""));
        b.ins(text, &[t], &[]);
        Reg::V(t)
    }

    /// A register holding `s`: `zero` for 0, a fresh scratch for other immediates.
    fn reg_text(b: &mut Builder, s: Src) -> (String, Vec<Reg>) {
        match s {
            Src::Imm(0) => ("zero".to_owned(), vec![]),
            Src::Imm(v) => {
                let r = Self::imm_reg(b, v);
                (b.r(r, ""), vec![r])
            }
            Src::Reg(r) => (b.r(r, ""), vec![r]),
        }
    }

    /// A memory operand `d(base)` for `m + extra`, adding into a scratch register when needed.
    fn mem(b: &mut Builder, m: &Mem, extra: i64) -> (String, Vec<Reg>) {
        let (base, d, mut uses) = match m.disp {
            Disp::Reg(r) => {
                let t = b.vreg();
                let text = format!(
                    "add {}, {}, {}",
                    b.r(Reg::V(t), ""),
                    b.r(m.base, ""),
                    b.r(r, "")
                );
                b.ins(text, &[t], &[m.base, r]);
                (Reg::V(t), extra, vec![Reg::V(t)])
            }
            Disp::None => (m.base, extra, vec![m.base]),
            Disp::Imm(v) => (m.base, v + extra, vec![m.base]),
        };
        if simm12(d) {
            return (format!("{d}({})", b.r(base, "")), uses);
        }
        let t = Self::imm_reg(b, d);
        let text = format!("add {0}, {0}, {1}", b.r(t, ""), b.r(base, ""));
        let Reg::V(tv) = t else { unreachable!() };
        b.ins(text, &[tv], &[t, base]);
        uses.push(t);
        (format!("0({})", b.r(t, "")), uses)
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
        let w = width(kind);
        let (v, vu) = Self::reg_text(b, value);
        let (m, mu) = Self::mem(b, addr, 0);
        b.ins(
            format!("{} {v}, {m}", Self::store_insn(w)),
            &[],
            &regs(&[&vu, &mu]),
        );
    }

    fn addr_lines(b: &Builder, dst: &str, m: &Mem) -> Vec<String> {
        let base = b.r(m.base, "");
        match m.disp {
            Disp::None | Disp::Imm(0) => vec![format!("mv {dst}, {base}")],
            Disp::Reg(r) => vec![format!("add {dst}, {base}, {}", b.r(r, ""))],
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
        let tmp = b.vreg();
        let t = b.r(Reg::V(tmp), "");
        b.ins(format!("lla {t}, {}f", labels.descriptor), &[tmp], &[]);
        let a = b.r(area, "");
        b.ins(
            format!("sd {t}, {RSEQ_CS_OFFSET}({a})"),
            &[],
            &[area, Reg::V(tmp)],
        );
    }

    fn label(&self, b: &mut Builder, label: u32) {
        b.line(format!("{label}:"));
    }

    fn read_index(&self, b: &mut Builder, area: Reg, mode: IndexMode, dst: VReg) {
        let off = match mode {
            IndexMode::CpuId => CPU_ID_OFFSET,
            IndexMode::MmCid => MM_CID_OFFSET,
        };
        let text = format!("lwu {}, {off}({})", b.r(Reg::V(dst), ""), b.r(area, ""));
        b.ins(text, &[dst], &[area]);
    }

    fn check_index_bounds(&self, b: &mut Builder, idx: VReg, len: Reg, exit: u32, keep: &[VReg]) {
        let text = format!("bgeu {}, {}, {exit}f", b.r(Reg::V(idx), ""), b.r(len, ""));
        b.ins(text, &[], &with_keep(vec![Reg::V(idx), len], keep));
    }

    fn check_expected_cpu(
        &self,
        b: &mut Builder,
        idx: VReg,
        expected: Src,
        exit: u32,
        keep: &[VReg],
    ) {
        let (e, eu) = Self::reg_text(b, expected);
        let text = format!("bne {}, {e}, {exit}f", b.r(Reg::V(idx), ""));
        b.ins(text, &[], &with_keep(regs(&[&[Reg::V(idx)], &eu]), keep));
    }

    fn slot_address(&self, b: &mut Builder, dst: VReg, idx: VReg, base: Reg, stride: Reg) {
        let d = b.r(Reg::V(dst), "");
        let text = format!("mul {d}, {}, {}", b.r(Reg::V(idx), ""), b.r(stride, ""));
        b.ins(text, &[dst], &[Reg::V(idx), stride]);
        let text = format!("add {d}, {d}, {}", b.r(base, ""));
        b.ins(text, &[dst], &[Reg::V(dst), base]);
    }

    fn mov(&self, b: &mut Builder, dst: VReg, src: Src) {
        let d = b.r(Reg::V(dst), "");
        match src {
            Src::Reg(Reg::V(s)) => b.copy(format!("mv {d}, {}", b.r(Reg::V(s), "")), dst, s),
            Src::Reg(r) => b.ins(format!("mv {d}, {}", b.r(r, "")), &[dst], &[r]),
            Src::Imm(v) => b.ins(format!("li {d}, {v}"), &[dst], &[]),
        }
    }

    fn acquire_fence(&self, b: &mut Builder) {
        // The RVWMO acquire mapping: the load, then `fence r, rw`.
        b.line("fence r, rw");
    }

    fn load(&self, b: &mut Builder, dst: VReg, addr: &Mem, kind: WordKind) {
        let (m, uses) = Self::mem(b, addr, 0);
        let insn = match (width(kind), kind.signed()) {
            (8, _) => "ld",
            (4, false) => "lwu",
            (4, true) => "lw",
            (2, false) => "lhu",
            (2, true) => "lh",
            (_, false) => "lbu",
            (_, true) => "lb",
        };
        let text = format!("{insn} {}, {m}", b.r(Reg::V(dst), ""));
        b.ins(text, &[dst], &uses);
    }

    fn arith(&self, b: &mut Builder, op: BinOp, dst: VReg, rhs: Src, kind: WordKind) {
        let d = b.r(Reg::V(dst), "");
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
                    b.ins(format!("{shift}i {d}, {d}, {c}"), &[dst], &[Reg::V(dst)]);
                }
            }
            (BinOp::Shl | BinOp::Shr, Src::Reg(r)) => {
                // 64-bit shifts take the count modulo 64; narrower types mask first.
                let count = if bits < 64 {
                    let t = b.vreg();
                    let text = format!("andi {}, {}, {}", b.r(Reg::V(t), ""), b.r(r, ""), bits - 1);
                    b.ins(text, &[t], &[r]);
                    Reg::V(t)
                } else {
                    r
                };
                let text = format!("{shift} {d}, {d}, {}", b.r(count, ""));
                b.ins(text, &[dst], &[Reg::V(dst), count]);
            }
            (BinOp::Add, Src::Imm(v)) if simm12(v) => {
                b.ins(format!("addi {d}, {d}, {v}"), &[dst], &[Reg::V(dst)]);
            }
            (BinOp::Sub, Src::Imm(v)) if v.checked_neg().is_some_and(simm12) => {
                b.ins(
                    format!("addi {d}, {d}, {}", v.wrapping_neg()),
                    &[dst],
                    &[Reg::V(dst)],
                );
            }
            (BinOp::And | BinOp::Or | BinOp::Xor, Src::Imm(v)) if simm12(v) => {
                let m = match op {
                    BinOp::And => "andi",
                    BinOp::Or => "ori",
                    _ => "xori",
                };
                b.ins(format!("{m} {d}, {d}, {v}"), &[dst], &[Reg::V(dst)]);
            }
            _ => {
                let (r, ru) = Self::reg_text(b, rhs);
                let m = match op {
                    BinOp::Add => "add",
                    BinOp::Sub => "sub",
                    BinOp::And => "and",
                    BinOp::Or => "or",
                    _ => "xor",
                };
                b.ins(
                    format!("{m} {d}, {d}, {r}"),
                    &[dst],
                    &regs(&[&[Reg::V(dst)], &ru]),
                );
            }
        }
        if matches!(op, BinOp::Add | BinOp::Sub | BinOp::Shl) {
            self.normalize(b, dst, kind);
        }
    }

    fn normalize(&self, b: &mut Builder, dst: VReg, kind: WordKind) {
        let d = b.r(Reg::V(dst), "");
        let lines = match (width(kind), kind.signed()) {
            (8, _) => return,
            (4, true) => vec![format!("sext.w {d}, {d}")],
            (1, false) => vec![format!("andi {d}, {d}, 255")],
            (w, signed) => {
                let s = 64 - w * 8;
                let right = if signed { "srai" } else { "srli" };
                vec![
                    format!("slli {d}, {d}, {s}"),
                    format!("{right} {d}, {d}, {s}"),
                ]
            }
        };
        for line in lines {
            b.ins(line, &[dst], &[Reg::V(dst)]);
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
        let (l, lu) = Self::reg_text(b, lhs);
        let (r, ru) = Self::reg_text(b, rhs);
        let m = match (op, signed) {
            (CmpOp::Eq, _) => "beq",
            (CmpOp::Ne, _) => "bne",
            (CmpOp::Lt, true) => "blt",
            (CmpOp::Ge, true) => "bge",
            (CmpOp::Lt, false) => "bltu",
            _ => "bgeu",
        };
        b.ins(
            format!("{m} {l}, {r}, {exit}f"),
            &[],
            &with_keep(regs(&[&lu, &ru]), keep),
        );
    }

    fn store(&self, b: &mut Builder, addr: &Mem, value: Src, kind: WordKind) {
        Self::store_to(b, addr, value, kind);
    }

    fn memcpy(&self, b: &mut Builder, dst: &Mem, src: &Mem, len: CopyLen) {
        let t = b.vreg();
        let tr = Reg::V(t);
        let tt = b.r(tr, "");
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
                        let o = i64::try_from(off).expect("memcpy length is capped");
                        let (sm, su) = Self::mem(b, src, o);
                        b.ins(format!("{} {tt}, {sm}", load_insn(w)), &[t], &su);
                        let (dm, du) = Self::mem(b, dst, o);
                        let text = format!("{} {tt}, {dm}", Self::store_insn(w));
                        b.ins(text, &[], &regs(&[&[tr], &du]));
                        off += u64::from(w);
                    }
                }
            }
            CopyLen::Reg(len) => {
                // Running pointers and remaining count in scratch registers (inputs are never
                // written), one early-clobber group (see the x86_64 emitter).
                let (ps, pd, rem) = (b.vreg(), b.vreg(), b.vreg());
                let (l1, l2, l3, l4, l5) = (b.label(), b.label(), b.label(), b.label(), b.label());
                let (s, d, r) = (
                    b.r(Reg::V(ps), ""),
                    b.r(Reg::V(pd), ""),
                    b.r(Reg::V(rem), ""),
                );
                let mut group = Self::addr_lines(b, &s, src);
                group.extend(Self::addr_lines(b, &d, dst));
                group.push(format!("mv {r}, {}", b.r(len, "")));
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
                let defs = [t, ps, pd, rem];
                let uses = regs(&[&mem_regs(dst), &mem_regs(src), &[len]]);
                for line in group {
                    b.ins_early_clobber(line, &defs, &uses);
                }
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
