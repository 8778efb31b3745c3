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

use super::common::{mem_regs, regs, with_keep, AFTER_STUBS};
use super::{
    Arch, ArchEmitter, Builder, CopyLen, Disp, Labels, Mem, Reg, Src, VReg,
    AREA_CPU_ID_OFFSET as CPU_ID_OFFSET, AREA_MM_CID_OFFSET as MM_CID_OFFSET,
    AREA_RSEQ_CS_OFFSET as RSEQ_CS_OFFSET,
};
use crate::ir::{BinOp, CmpOp, CommitKind, IndexMode};
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

impl Loongarch64 {
    fn imm_reg(b: &mut Builder, v: i64) -> Reg {
        let t = b.vreg();
        let text = format!("li.d {}, {v}", b.r(Reg::V(t), ""));
        b.ins(text, &[t], &[]);
        Reg::V(t)
    }

    fn reg_text(b: &mut Builder, s: Src) -> (String, Vec<Reg>) {
        match s {
            Src::Imm(0) => ("$zero".to_owned(), vec![]),
            Src::Imm(v) => {
                let r = Self::imm_reg(b, v);
                (b.r(r, ""), vec![r])
            }
            Src::Reg(r) => (b.r(r, ""), vec![r]),
        }
    }

    /// The operands of an access at `m + extra`: `(indexed, "base, off-or-index", uses)`.
    fn mem(b: &mut Builder, m: &Mem, extra: i64) -> (bool, String, Vec<Reg>) {
        let base = b.r(m.base, "");
        match m.disp {
            Disp::Reg(r) if extra == 0 => {
                (true, format!("{base}, {}", b.r(r, "")), vec![m.base, r])
            }
            Disp::Reg(r) => {
                let t = b.vreg();
                let text = format!("addi.d {}, {}, {extra}", b.r(Reg::V(t), ""), b.r(r, ""));
                if simm12(extra) {
                    b.ins(text, &[t], &[r]);
                } else {
                    let k = Self::imm_reg(b, extra);
                    let text = format!(
                        "add.d {}, {}, {}",
                        b.r(Reg::V(t), ""),
                        b.r(r, ""),
                        b.r(k, "")
                    );
                    b.ins(text, &[t], &[r, k]);
                }
                (
                    true,
                    format!("{base}, {}", b.r(Reg::V(t), "")),
                    vec![m.base, Reg::V(t)],
                )
            }
            Disp::None | Disp::Imm(_) => {
                let d = match m.disp {
                    Disp::Imm(v) => v + extra,
                    _ => extra,
                };
                if simm12(d) {
                    (false, format!("{base}, {d}"), vec![m.base])
                } else {
                    let k = Self::imm_reg(b, d);
                    (true, format!("{base}, {}", b.r(k, "")), vec![m.base, k])
                }
            }
        }
    }

    fn store_to(b: &mut Builder, addr: &Mem, value: Src, kind: WordKind) {
        let w = width(kind);
        let (v, vu) = Self::reg_text(b, value);
        let (indexed, m, mu) = Self::mem(b, addr, 0);
        let insn = if indexed { "stx" } else { "st" };
        b.ins(
            format!("{insn}.{} {v}, {m}", size_suffix(w)),
            &[],
            &regs(&[&vu, &mu]),
        );
    }

    fn addr_lines(b: &Builder, dst: &str, m: &Mem) -> Vec<String> {
        let base = b.r(m.base, "");
        match m.disp {
            Disp::None | Disp::Imm(0) => vec![format!("move {dst}, {base}")],
            Disp::Reg(r) => vec![format!("add.d {dst}, {base}, {}", b.r(r, ""))],
            Disp::Imm(v) if simm12(v) => vec![format!("addi.d {dst}, {base}, {v}")],
            Disp::Imm(v) => vec![
                format!("li.d {dst}, {v}"),
                format!("add.d {dst}, {dst}, {base}"),
            ],
        }
    }
}

impl ArchEmitter for Loongarch64 {
    fn arch(&self) -> Arch {
        Arch::Loongarch64
    }

    fn pointer_bytes(&self) -> u32 {
        8
    }

    fn registers(&self) -> usize {
        26
    }

    fn imm_fits(&self, _value: i64) -> bool {
        // `li.d` builds any constant; 12-bit immediate fields are used when the value fits.
        true
    }

    fn const_operands(&self) -> bool {
        false
    }

    fn store_descriptor_pointer(&self, b: &mut Builder, area: Reg, labels: &Labels) {
        let tmp = b.vreg();
        let t = b.r(Reg::V(tmp), "");
        b.ins(format!("la.pcrel {t}, {}f", labels.descriptor), &[tmp], &[]);
        let a = b.r(area, "");
        b.ins(
            format!("st.d {t}, {a}, {RSEQ_CS_OFFSET}"),
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
        let text = format!("ld.wu {}, {}, {off}", b.r(Reg::V(dst), ""), b.r(area, ""));
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
        let text = format!("mul.d {d}, {}, {}", b.r(Reg::V(idx), ""), b.r(stride, ""));
        b.ins(text, &[dst], &[Reg::V(idx), stride]);
        let text = format!("add.d {d}, {d}, {}", b.r(base, ""));
        b.ins(text, &[dst], &[Reg::V(dst), base]);
    }

    fn mov(&self, b: &mut Builder, dst: VReg, src: Src) {
        let d = b.r(Reg::V(dst), "");
        match src {
            Src::Reg(Reg::V(s)) => b.copy(format!("move {d}, {}", b.r(Reg::V(s), "")), dst, s),
            Src::Reg(r) => b.ins(format!("move {d}, {}", b.r(r, "")), &[dst], &[r]),
            Src::Imm(v) => b.ins(format!("li.d {d}, {v}"), &[dst], &[]),
        }
    }

    fn acquire_fence(&self, b: &mut Builder) {
        // The load-acquire barrier hint Linux uses (`dbar 0b10100`); CPUs without
        // barrier hints execute it as the full `dbar 0`.
        b.line("dbar 0x14");
    }

    fn load(&self, b: &mut Builder, dst: VReg, addr: &Mem, kind: WordKind) {
        let w = width(kind);
        let (indexed, m, uses) = Self::mem(b, addr, 0);
        let unsigned = if w < 8 && !kind.signed() { "u" } else { "" };
        let insn = if indexed { "ldx" } else { "ld" };
        let text = format!(
            "{insn}.{}{unsigned} {}, {m}",
            size_suffix(w),
            b.r(Reg::V(dst), "")
        );
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
                    b.ins(format!("{shift}i.d {d}, {d}, {c}"), &[dst], &[Reg::V(dst)]);
                }
            }
            (BinOp::Shl | BinOp::Shr, Src::Reg(r)) => {
                let count = if bits < 64 {
                    let t = b.vreg();
                    let text = format!("andi {}, {}, {}", b.r(Reg::V(t), ""), b.r(r, ""), bits - 1);
                    b.ins(text, &[t], &[r]);
                    Reg::V(t)
                } else {
                    r
                };
                let text = format!("{shift}.d {d}, {d}, {}", b.r(count, ""));
                b.ins(text, &[dst], &[Reg::V(dst), count]);
            }
            (BinOp::Add, Src::Imm(v)) if simm12(v) => {
                b.ins(format!("addi.d {d}, {d}, {v}"), &[dst], &[Reg::V(dst)]);
            }
            (BinOp::Sub, Src::Imm(v)) if v.checked_neg().is_some_and(simm12) => {
                b.ins(
                    format!("addi.d {d}, {d}, {}", v.wrapping_neg()),
                    &[dst],
                    &[Reg::V(dst)],
                );
            }
            (BinOp::And | BinOp::Or | BinOp::Xor, Src::Imm(v)) if (0..=4095).contains(&v) => {
                // The logical immediates are zero-extended 12-bit values.
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
                    BinOp::Add => "add.d",
                    BinOp::Sub => "sub.d",
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
        let text = match (width(kind), kind.signed()) {
            (8, _) => return,
            (4, false) => format!("bstrpick.d {d}, {d}, 31, 0"),
            (4, true) => format!("addi.w {d}, {d}, 0"),
            (2, false) => format!("bstrpick.d {d}, {d}, 15, 0"),
            (2, true) => format!("ext.w.h {d}, {d}"),
            (_, false) => format!("andi {d}, {d}, 255"),
            (_, true) => format!("ext.w.b {d}, {d}"),
        };
        b.ins(text, &[dst], &[Reg::V(dst)]);
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
        let load_sfx = |w: u32| match w {
            8 => "d",
            4 => "wu",
            2 => "hu",
            _ => "bu",
        };
        match len {
            CopyLen::Const(n) => {
                // Unrolled: 8-byte moves, then a 4/2/1-byte tail (misaligned accesses are handled
                // by the hardware or emulated by the kernel).
                let mut off = 0u64;
                for w in [8u32, 4, 2, 1] {
                    while n - off >= u64::from(w) {
                        let o = i64::try_from(off).expect("memcpy length is capped");
                        let (ix, sm, su) = Self::mem(b, src, o);
                        let ld = if ix { "ldx" } else { "ld" };
                        b.ins(format!("{ld}.{} {tt}, {sm}", load_sfx(w)), &[t], &su);
                        let (ix, dm, du) = Self::mem(b, dst, o);
                        let st = if ix { "stx" } else { "st" };
                        let text = format!("{st}.{} {tt}, {dm}", size_suffix(w));
                        b.ins(text, &[], &regs(&[&[tr], &du]));
                        off += u64::from(w);
                    }
                }
            }
            CopyLen::Reg(len) => {
                let (ps, pd, rem) = (b.vreg(), b.vreg(), b.vreg());
                let (l1, l2, l3, l4, l5) = (b.label(), b.label(), b.label(), b.label(), b.label());
                let (s, d, r) = (
                    b.r(Reg::V(ps), ""),
                    b.r(Reg::V(pd), ""),
                    b.r(Reg::V(rem), ""),
                );
                let mut group = Self::addr_lines(b, &s, src);
                group.extend(Self::addr_lines(b, &d, dst));
                group.push(format!("move {r}, {}", b.r(len, "")));
                group.push(format!("{l1}:"));
                group.push(format!("sltui {tt}, {r}, 8"));
                group.push(format!("bnez {tt}, {l2}f"));
                group.push(format!("ld.d {tt}, {s}, 0"));
                group.push(format!("st.d {tt}, {d}, 0"));
                group.push(format!("addi.d {s}, {s}, 8"));
                group.push(format!("addi.d {d}, {d}, 8"));
                group.push(format!("addi.d {r}, {r}, -8"));
                group.push(format!("b {l1}b"));
                group.push(format!("{l2}:"));
                for (w, skip) in [(4u32, l3), (2, l4), (1, l5)] {
                    group.push(format!("andi {tt}, {r}, {w}"));
                    group.push(format!("beqz {tt}, {skip}f"));
                    group.push(format!("ld.{} {tt}, {s}, 0", load_sfx(w)));
                    group.push(format!("st.{} {tt}, {d}, 0", size_suffix(w)));
                    if w != 1 {
                        group.push(format!("addi.d {s}, {s}, {w}"));
                        group.push(format!("addi.d {d}, {d}, {w}"));
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
            // Release barrier inside the section; the commit store stays the last instruction.
            b.line("dbar 0x12");
        }
        Self::store_to(b, addr, value, kind);
    }

    fn set_status(&self, b: &mut Builder, status: u32) {
        b.line(format!("ori {{status}}, $zero, {status}"));
    }

    fn jump_back(&self, b: &mut Builder, label: u32) {
        b.line(format!("b {label}b"));
    }

    fn abort_stub(&self, b: &mut Builder, labels: &Labels) {
        b.line(format!("b {AFTER_STUBS}f"));
        b.line(format!(".word {:#010x}", Arch::Loongarch64.signature()));
        b.line(format!("{}:", labels.abort));
    }

    fn descriptor(&self, b: &mut Builder, labels: &Labels, exits: &[u32]) {
        super::common::descriptor64(b, labels, exits);
    }
}
