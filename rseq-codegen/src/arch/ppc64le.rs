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

use super::common::{mem_regs, regs, with_keep, AFTER_STUBS};
use super::{
    Arch, ArchEmitter, Builder, CopyLen, Disp, Labels, Mem, Reg, Src, VReg,
    AREA_CPU_ID_OFFSET as CPU_ID_OFFSET, AREA_MM_CID_OFFSET as MM_CID_OFFSET,
    AREA_RSEQ_CS_OFFSET as RSEQ_CS_OFFSET,
};
use crate::ir::{BinOp, CmpOp, CommitKind, IndexMode};
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

/// Lines loading the constant `v` into register text `d`.
fn li_lines(d: &str, v: i64) -> Vec<String> {
    if simm16(v) {
        return vec![format!("li {d}, {v}")];
    }
    if i32::try_from(v).is_ok() {
        return vec![
            format!("lis {d}, {}", v >> 16),
            format!("ori {d}, {d}, {}", v & 0xffff),
        ];
    }
    vec![
        format!("lis {d}, {}", v >> 48),
        format!("ori {d}, {d}, {}", (v >> 32) & 0xffff),
        format!("sldi {d}, {d}, 32"),
        format!("oris {d}, {d}, {}", (v >> 16) & 0xffff),
        format!("ori {d}, {d}, {}", v & 0xffff),
    ]
}

/// An access: D/DS form `insn rT, d(rA)` or X form `insnx rT, rA, rB`.
struct Access {
    indexed: bool,
    operand: String,
    uses: Vec<Reg>,
}

impl Ppc64le {
    fn imm_reg(b: &mut Builder, v: i64) -> Reg {
        let t = b.vreg();
        let d = b.r(Reg::V(t), "");
        for line in li_lines(&d, v) {
            b.ins(line, &[t], &[Reg::V(t)]);
        }
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
        let base = b.r(m.base, "");
        let index = match m.disp {
            Disp::Reg(r) if extra == 0 => r,
            Disp::Reg(r) => {
                let k = Self::imm_reg(b, extra);
                let Reg::V(kv) = k else { unreachable!() };
                let text = format!("add {0}, {0}, {1}", b.r(k, ""), b.r(r, ""));
                b.ins(text, &[kv], &[k, r]);
                k
            }
            Disp::None | Disp::Imm(_) => {
                let d = match m.disp {
                    Disp::Imm(v) => v + extra,
                    _ => extra,
                };
                if simm16(d) && (!ds || d % 4 == 0) {
                    return Access {
                        indexed: false,
                        operand: format!("{d}({base})"),
                        uses: vec![m.base],
                    };
                }
                Self::imm_reg(b, d)
            }
        };
        Access {
            indexed: true,
            operand: format!("{base}, {}", b.r(index, "")),
            uses: vec![m.base, index],
        }
    }

    fn store_to(b: &mut Builder, addr: &Mem, value: Src, kind: WordKind) {
        let w = width(kind);
        let v = Self::reg(b, value);
        let a = Self::mem(b, addr, 0, w == 8);
        let insn = match w {
            1 => "stb",
            2 => "sth",
            4 => "stw",
            _ => "std",
        };
        let x = if a.indexed { "x" } else { "" };
        let text = format!("{insn}{x} {}, {}", b.r(v, ""), a.operand);
        b.ins(text, &[], &regs(&[&[v], &a.uses]));
    }

    fn addr_lines(b: &Builder, dst: &str, m: &Mem) -> Vec<String> {
        let base = b.r(m.base, "");
        match m.disp {
            Disp::None | Disp::Imm(0) => vec![format!("mr {dst}, {base}")],
            Disp::Reg(r) => vec![format!("add {dst}, {base}, {}", b.r(r, ""))],
            Disp::Imm(v) if simm16(v) => vec![format!("addi {dst}, {base}, {v}")],
            Disp::Imm(v) => {
                let mut lines = li_lines(dst, v);
                lines.push(format!("add {dst}, {dst}, {base}"));
                lines
            }
        }
    }
}

impl ArchEmitter for Ppc64le {
    fn arch(&self) -> Arch {
        Arch::Ppc64le
    }

    fn pointer_bytes(&self) -> u32 {
        8
    }

    fn registers(&self) -> usize {
        27
    }

    fn reg_class(&self) -> &'static str {
        "reg_nonzero"
    }

    fn imm_fits(&self, _value: i64) -> bool {
        true
    }

    fn const_operands(&self) -> bool {
        false
    }

    fn store_descriptor_pointer(&self, b: &mut Builder, area: Reg, labels: &Labels) {
        b.clobber("lr");
        b.clobber("cr0");
        let here = b.label();
        let tmp = b.vreg();
        let t = b.r(Reg::V(tmp), "");
        let d = labels.descriptor;
        b.line(format!("bcl 20, 31, {here}f"));
        b.line(format!("{here}:"));
        b.ins(format!("mflr {t}"), &[tmp], &[]);
        b.ins(
            format!("addis {t}, {t}, ({d}f - {here}b)@ha"),
            &[tmp],
            &[Reg::V(tmp)],
        );
        b.ins(
            format!("addi {t}, {t}, ({d}f - {here}b)@l"),
            &[tmp],
            &[Reg::V(tmp)],
        );
        let a = b.r(area, "");
        b.ins(
            format!("std {t}, {RSEQ_CS_OFFSET}({a})"),
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
        let text = format!("lwz {}, {off}({})", b.r(Reg::V(dst), ""), b.r(area, ""));
        b.ins(text, &[dst], &[area]);
    }

    fn check_index_bounds(&self, b: &mut Builder, idx: VReg, len: Reg, exit: u32, keep: &[VReg]) {
        let text = format!("cmpld {}, {}", b.r(Reg::V(idx), ""), b.r(len, ""));
        b.ins(text, &[], &[Reg::V(idx), len]);
        b.ins(
            format!("bge {exit}f"),
            &[],
            &with_keep(vec![Reg::V(idx)], keep),
        );
    }

    fn check_expected_cpu(
        &self,
        b: &mut Builder,
        idx: VReg,
        expected: Src,
        exit: u32,
        keep: &[VReg],
    ) {
        let i = b.r(Reg::V(idx), "");
        match expected {
            Src::Imm(v) if (0..=65535).contains(&v) => {
                b.ins(format!("cmpldi {i}, {v}"), &[], &[Reg::V(idx)]);
            }
            other => {
                let e = Self::reg(b, other);
                let text = format!("cmpld {i}, {}", b.r(e, ""));
                b.ins(text, &[], &[Reg::V(idx), e]);
            }
        }
        b.ins(
            format!("bne {exit}f"),
            &[],
            &with_keep(vec![Reg::V(idx)], keep),
        );
    }

    fn slot_address(&self, b: &mut Builder, dst: VReg, idx: VReg, base: Reg, stride: Reg) {
        let d = b.r(Reg::V(dst), "");
        let text = format!("mulld {d}, {}, {}", b.r(Reg::V(idx), ""), b.r(stride, ""));
        b.ins(text, &[dst], &[Reg::V(idx), stride]);
        let text = format!("add {d}, {d}, {}", b.r(base, ""));
        b.ins(text, &[dst], &[Reg::V(dst), base]);
    }

    fn mov(&self, b: &mut Builder, dst: VReg, src: Src) {
        let d = b.r(Reg::V(dst), "");
        match src {
            Src::Reg(Reg::V(s)) => b.copy(format!("mr {d}, {}", b.r(Reg::V(s), "")), dst, s),
            Src::Reg(r) => b.ins(format!("mr {d}, {}", b.r(r, "")), &[dst], &[r]),
            Src::Imm(v) => {
                for line in li_lines(&d, v) {
                    b.ins(line, &[dst], &[Reg::V(dst)]);
                }
            }
        }
    }

    fn acquire_fence(&self, b: &mut Builder) {
        // `lwsync` orders the load before every later load and store.
        b.line("lwsync");
    }

    fn load(&self, b: &mut Builder, dst: VReg, addr: &Mem, kind: WordKind) {
        let w = width(kind);
        let (insn, ds) = match (w, kind.signed()) {
            (8, _) => ("ld", true),
            (4, false) => ("lwz", false),
            (4, true) => ("lwa", true),
            (2, false) => ("lhz", false),
            (2, true) => ("lha", false),
            _ => ("lbz", false),
        };
        let a = Self::mem(b, addr, 0, ds);
        let x = if a.indexed { "x" } else { "" };
        let d = b.r(Reg::V(dst), "");
        b.ins(format!("{insn}{x} {d}, {}", a.operand), &[dst], &a.uses);
        if w == 1 && kind.signed() {
            // There is no sign-extending byte load.
            b.ins(format!("extsb {d}, {d}"), &[dst], &[Reg::V(dst)]);
        }
    }

    fn arith(&self, b: &mut Builder, op: BinOp, dst: VReg, rhs: Src, kind: WordKind) {
        let d = b.r(Reg::V(dst), "");
        let bits = width(kind) * 8;
        match (op, rhs) {
            (BinOp::Shl | BinOp::Shr, Src::Imm(c)) => {
                let c = c & i64::from(bits - 1);
                let m = match op {
                    BinOp::Shl => "sldi",
                    _ if kind.signed() => "sradi",
                    _ => "srdi",
                };
                if c != 0 {
                    b.ins(format!("{m} {d}, {d}, {c}"), &[dst], &[Reg::V(dst)]);
                }
            }
            (BinOp::Shl | BinOp::Shr, Src::Reg(r)) => {
                // `sld`/`srd` read 7 count bits (64..127 shift everything out): always mask.
                let t = b.vreg();
                let keep_bits = 64 - bits.trailing_zeros();
                let text = format!("clrldi {}, {}, {keep_bits}", b.r(Reg::V(t), ""), b.r(r, ""));
                b.ins(text, &[t], &[r]);
                let m = match op {
                    BinOp::Shl => "sld",
                    _ if kind.signed() => "srad",
                    _ => "srd",
                };
                let text = format!("{m} {d}, {d}, {}", b.r(Reg::V(t), ""));
                b.ins(text, &[dst], &[Reg::V(dst), Reg::V(t)]);
            }
            (BinOp::Add, Src::Imm(v)) if simm16(v) => {
                b.ins(format!("addi {d}, {d}, {v}"), &[dst], &[Reg::V(dst)]);
            }
            (BinOp::Sub, Src::Imm(v)) if v.checked_neg().is_some_and(simm16) => {
                b.ins(
                    format!("addi {d}, {d}, {}", v.wrapping_neg()),
                    &[dst],
                    &[Reg::V(dst)],
                );
            }
            (BinOp::And | BinOp::Or | BinOp::Xor, Src::Imm(v)) if (0..=65535).contains(&v) => {
                let m = match op {
                    BinOp::And => "andi.",
                    BinOp::Or => "ori",
                    _ => "xori",
                };
                b.ins(format!("{m} {d}, {d}, {v}"), &[dst], &[Reg::V(dst)]);
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
                let text = format!("{m} {d}, {d}, {}", b.r(r, ""));
                b.ins(text, &[dst], &[Reg::V(dst), r]);
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
            (4, false) => format!("clrldi {d}, {d}, 32"),
            (4, true) => format!("extsw {d}, {d}"),
            (2, false) => format!("clrldi {d}, {d}, 48"),
            (2, true) => format!("extsh {d}, {d}"),
            (_, false) => format!("clrldi {d}, {d}, 56"),
            (_, true) => format!("extsb {d}, {d}"),
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
        let (lhs, op, rhs) = match (lhs, rhs) {
            (Src::Imm(_), Src::Reg(_)) => (rhs, op.swapped(), lhs),
            _ => (lhs, op, rhs),
        };
        let l = Self::reg(b, lhs);
        let lt = b.r(l, "");
        match rhs {
            Src::Imm(v) if signed && simm16(v) => b.ins(format!("cmpdi {lt}, {v}"), &[], &[l]),
            Src::Imm(v) if !signed && (0..=65535).contains(&v) => {
                b.ins(format!("cmpldi {lt}, {v}"), &[], &[l]);
            }
            other => {
                let r = Self::reg(b, other);
                let m = if signed { "cmpd" } else { "cmpld" };
                let text = format!("{m} {lt}, {}", b.r(r, ""));
                b.ins(text, &[], &[l, r]);
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
        b.ins(format!("{m} {exit}f"), &[], &with_keep(Vec::new(), keep));
    }

    fn store(&self, b: &mut Builder, addr: &Mem, value: Src, kind: WordKind) {
        Self::store_to(b, addr, value, kind);
    }

    fn memcpy(&self, b: &mut Builder, dst: &Mem, src: &Mem, len: CopyLen) {
        let t = b.vreg();
        let tr = Reg::V(t);
        let tt = b.r(tr, "");
        let (ld, st) = (
            |w: u32| match w {
                8 => "ld",
                4 => "lwz",
                2 => "lhz",
                _ => "lbz",
            },
            |w: u32| match w {
                8 => "std",
                4 => "stw",
                2 => "sth",
                _ => "stb",
            },
        );
        match len {
            CopyLen::Const(n) => {
                // Unrolled: 8-byte moves, then a 4/2/1-byte tail (little-endian mode allows
                // misaligned accesses).
                let mut off = 0u64;
                for w in [8u32, 4, 2, 1] {
                    while n - off >= u64::from(w) {
                        let o = i64::try_from(off).expect("memcpy length is capped");
                        let a = Self::mem(b, src, o, w == 8);
                        let x = if a.indexed { "x" } else { "" };
                        b.ins(format!("{}{x} {tt}, {}", ld(w), a.operand), &[t], &a.uses);
                        let a = Self::mem(b, dst, o, w == 8);
                        let x = if a.indexed { "x" } else { "" };
                        let text = format!("{}{x} {tt}, {}", st(w), a.operand);
                        b.ins(text, &[], &regs(&[&[tr], &a.uses]));
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
                group.push(format!("mr {r}, {}", b.r(len, "")));
                group.push(format!("{l1}:"));
                group.push(format!("cmpldi {r}, 8"));
                group.push(format!("blt {l2}f"));
                group.push(format!("ld {tt}, 0({s})"));
                group.push(format!("std {tt}, 0({d})"));
                group.push(format!("addi {s}, {s}, 8"));
                group.push(format!("addi {d}, {d}, 8"));
                group.push(format!("addi {r}, {r}, -8"));
                group.push(format!("b {l1}b"));
                group.push(format!("{l2}:"));
                for (w, skip) in [(4u32, l3), (2, l4), (1, l5)] {
                    group.push(format!("andi. {tt}, {r}, {w}"));
                    group.push(format!("beq {skip}f"));
                    group.push(format!("{} {tt}, 0({s})", ld(w)));
                    group.push(format!("{} {tt}, 0({d})", st(w)));
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
            // Release barrier inside the section; the commit store stays the last instruction.
            b.line("lwsync");
        }
        Self::store_to(b, addr, value, kind);
    }

    fn set_status(&self, b: &mut Builder, status: u32) {
        b.line(format!("li {{status}}, {status}"));
    }

    fn jump_back(&self, b: &mut Builder, label: u32) {
        b.line(format!("b {label}b"));
    }

    fn abort_stub(&self, b: &mut Builder, labels: &Labels) {
        b.line(format!("b {AFTER_STUBS}f"));
        b.line(format!(".long {:#010x}", Arch::Ppc64le.signature()));
        b.line(format!("{}:", labels.abort));
    }

    fn descriptor(&self, b: &mut Builder, labels: &Labels, exits: &[u32]) {
        super::common::descriptor64(b, labels, exits);
    }
}
