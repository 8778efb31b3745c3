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

use super::common::{mem_regs, regs, with_keep, AFTER_STUBS};
use super::{
    Arch, ArchEmitter, Builder, CopyLen, Disp, Labels, Mem, Reg, Src, VReg,
    AREA_CPU_ID_OFFSET as CPU_ID_OFFSET, AREA_MM_CID_OFFSET as MM_CID_OFFSET,
    AREA_RSEQ_CS_OFFSET as RSEQ_CS_OFFSET,
};
use crate::ir::{BinOp, CmpOp, CommitKind, IndexMode};
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

fn li_lines(d: &str, v: i64) -> Vec<String> {
    if (-32768..=32767).contains(&v) {
        vec![format!("lghi {d}, {v}")]
    } else if i32::try_from(v).is_ok() {
        vec![format!("lgfi {d}, {v}")]
    } else if u32::try_from(v).is_ok() {
        vec![format!("llilf {d}, {v}")]
    } else {
        vec![
            format!("llihf {d}, {}", (v >> 32) & 0xffff_ffff),
            format!("oilf {d}, {}", v & 0xffff_ffff),
        ]
    }
}

impl S390x {
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
            Src::Reg(r) if b.is_const(r) => {
                // A `const` operand (`offset_of!`, `size_of`): a 32-bit immediate.
                let t = b.vreg();
                let text = format!("lgfi {}, {}", b.r(Reg::V(t), ""), b.r(r, ""));
                b.ins(text, &[t], &[]);
                Reg::V(t)
            }
            Src::Reg(r) => r,
            Src::Imm(v) => Self::imm_reg(b, v),
        }
    }

    /// An RXY operand `d(x, b)` for `m + extra`.
    fn mem(b: &mut Builder, m: &Mem, extra: i64) -> (String, Vec<Reg>) {
        let base = b.r(m.base, "");
        match m.disp {
            // `offset_of!` as a `const` operand: part of the 20-bit displacement.
            Disp::Reg(r) if b.is_const(r) => {
                (format!("{}+{extra}({base})", b.r(r, "")), vec![m.base])
            }
            Disp::Reg(r) if disp20(extra) => {
                (format!("{extra}({}, {base})", b.r(r, "")), vec![m.base, r])
            }
            Disp::Reg(r) => {
                let k = Self::imm_reg(b, extra);
                let Reg::V(kv) = k else { unreachable!() };
                let text = format!("agr {}, {}", b.r(k, ""), b.r(r, ""));
                b.ins(text, &[kv], &[k, r]);
                (format!("0({}, {base})", b.r(k, "")), vec![m.base, k])
            }
            Disp::None | Disp::Imm(_) => {
                let d = match m.disp {
                    Disp::Imm(v) => v + extra,
                    _ => extra,
                };
                if disp20(d) {
                    (format!("{d}({base})"), vec![m.base])
                } else {
                    let k = Self::imm_reg(b, d);
                    (format!("0({}, {base})", b.r(k, "")), vec![m.base, k])
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

    fn store_to(b: &mut Builder, addr: &Mem, value: Src, kind: WordKind) {
        let w = width(kind);
        let v = Self::reg(b, value);
        let (m, mu) = Self::mem(b, addr, 0);
        let text = format!("{} {}, {m}", Self::store_insn(w), b.r(v, ""));
        b.ins(text, &[], &regs(&[&[v], &mu]));
    }

    fn addr_lines(b: &Builder, dst: &str, m: &Mem) -> Vec<String> {
        let base = b.r(m.base, "");
        match m.disp {
            Disp::None | Disp::Imm(0) => vec![format!("lgr {dst}, {base}")],
            Disp::Reg(r) if b.is_const(r) => vec![format!("lay {dst}, {}({base})", b.r(r, ""))],
            Disp::Reg(r) => vec![format!("la {dst}, 0({}, {base})", b.r(r, ""))],
            Disp::Imm(v) if disp20(v) => vec![format!("lay {dst}, {v}({base})")],
            Disp::Imm(v) => {
                let mut lines = li_lines(dst, v);
                lines.push(format!("agr {dst}, {base}"));
                lines
            }
        }
    }
}

impl ArchEmitter for S390x {
    fn arch(&self) -> Arch {
        Arch::S390x
    }

    fn pointer_bytes(&self) -> u32 {
        8
    }

    fn registers(&self) -> usize {
        13
    }

    fn reg_class(&self) -> &'static str {
        "reg_addr"
    }

    fn imm_fits(&self, _value: i64) -> bool {
        true
    }

    fn const_operands(&self) -> bool {
        // `offset_of!`/`size_of` values become `const` operands used as 20-bit displacements or
        // 32-bit immediates (`lgfi`, `agfi`, `cgfi`): no register, which matters with 13.
        true
    }

    fn store_descriptor_pointer(&self, b: &mut Builder, area: Reg, labels: &Labels) {
        let tmp = b.vreg();
        let t = b.r(Reg::V(tmp), "");
        b.ins(format!("larl {t}, {}f", labels.descriptor), &[tmp], &[]);
        let a = b.r(area, "");
        b.ins(
            format!("stg {t}, {RSEQ_CS_OFFSET}({a})"),
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
        let text = format!("llgf {}, {off}({})", b.r(Reg::V(dst), ""), b.r(area, ""));
        b.ins(text, &[dst], &[area]);
    }

    fn check_index_bounds(&self, b: &mut Builder, idx: VReg, len: Reg, exit: u32, keep: &[VReg]) {
        let text = format!("clgr {}, {}", b.r(Reg::V(idx), ""), b.r(len, ""));
        b.ins(text, &[], &[Reg::V(idx), len]);
        b.ins(
            format!("jhe {exit}f"),
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
            Src::Imm(v) if u32::try_from(v).is_ok() => {
                b.ins(format!("clgfi {i}, {v}"), &[], &[Reg::V(idx)]);
            }
            other => {
                let e = Self::reg(b, other);
                let text = format!("clgr {i}, {}", b.r(e, ""));
                b.ins(text, &[], &[Reg::V(idx), e]);
            }
        }
        b.ins(
            format!("jne {exit}f"),
            &[],
            &with_keep(vec![Reg::V(idx)], keep),
        );
    }

    fn slot_address(&self, b: &mut Builder, dst: VReg, idx: VReg, base: Reg, stride: Reg) {
        let d = b.r(Reg::V(dst), "");
        b.copy(format!("lgr {d}, {}", b.r(Reg::V(idx), "")), dst, idx);
        b.ins(
            format!("msgr {d}, {}", b.r(stride, "")),
            &[dst],
            &[Reg::V(dst), stride],
        );
        b.ins(
            format!("agr {d}, {}", b.r(base, "")),
            &[dst],
            &[Reg::V(dst), base],
        );
    }

    fn mov(&self, b: &mut Builder, dst: VReg, src: Src) {
        let d = b.r(Reg::V(dst), "");
        match src {
            Src::Reg(Reg::V(s)) => b.copy(format!("lgr {d}, {}", b.r(Reg::V(s), "")), dst, s),
            Src::Reg(r) if b.is_const(r) => b.ins(format!("lgfi {d}, {}", b.r(r, "")), &[dst], &[]),
            Src::Reg(r) => b.ins(format!("lgr {d}, {}", b.r(r, "")), &[dst], &[r]),
            Src::Imm(v) => {
                for line in li_lines(&d, v) {
                    b.ins(line, &[dst], &[Reg::V(dst)]);
                }
            }
        }
    }

    fn load(&self, b: &mut Builder, dst: VReg, addr: &Mem, kind: WordKind) {
        let (m, uses) = Self::mem(b, addr, 0);
        let insn = match (width(kind), kind.signed()) {
            (8, _) => "lg",
            (4, false) => "llgf",
            (4, true) => "lgf",
            (2, false) => "llgh",
            (2, true) => "lgh",
            (_, false) => "llgc",
            (_, true) => "lgb",
        };
        let text = format!("{insn} {}, {m}", b.r(Reg::V(dst), ""));
        b.ins(text, &[dst], &uses);
    }

    fn arith(&self, b: &mut Builder, op: BinOp, dst: VReg, rhs: Src, kind: WordKind) {
        let d = b.r(Reg::V(dst), "");
        let bits = width(kind) * 8;
        let rhs = match rhs {
            Src::Reg(r) if b.is_const(r) => {
                if let BinOp::Add | BinOp::Sub = op {
                    let sign = if op == BinOp::Sub { "-" } else { "" };
                    let text = format!("agfi {d}, {sign}{}", b.r(r, ""));
                    b.ins(text, &[dst], &[Reg::V(dst)]);
                    self.normalize(b, dst, kind);
                    return;
                }
                Src::Reg(Self::reg(b, rhs))
            }
            other => other,
        };
        let shift = match op {
            BinOp::Shl => "sllg",
            _ if kind.signed() => "srag",
            _ => "srlg",
        };
        match (op, rhs) {
            (BinOp::Shl | BinOp::Shr, Src::Imm(c)) => {
                let c = c & i64::from(bits - 1);
                if c != 0 {
                    b.ins(format!("{shift} {d}, {d}, {c}"), &[dst], &[Reg::V(dst)]);
                }
            }
            (BinOp::Shl | BinOp::Shr, Src::Reg(r)) => {
                // The count is the low 6 bits of the address `0(r)`; narrower types mask first.
                let count = if bits < 64 {
                    let t = b.vreg();
                    let tt = b.r(Reg::V(t), "");
                    b.ins(format!("lghi {tt}, {}", bits - 1), &[t], &[]);
                    b.ins(format!("ngr {tt}, {}", b.r(r, "")), &[t], &[Reg::V(t), r]);
                    Reg::V(t)
                } else {
                    r
                };
                let text = format!("{shift} {d}, {d}, 0({})", b.r(count, ""));
                b.ins(text, &[dst], &[Reg::V(dst), count]);
            }
            (BinOp::Add, Src::Imm(v)) if i32::try_from(v).is_ok() => {
                b.ins(format!("agfi {d}, {v}"), &[dst], &[Reg::V(dst)]);
            }
            (BinOp::Sub, Src::Imm(v))
                if v.checked_neg().is_some_and(|n| i32::try_from(n).is_ok()) =>
            {
                b.ins(
                    format!("agfi {d}, {}", v.wrapping_neg()),
                    &[dst],
                    &[Reg::V(dst)],
                );
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
                let text = format!("{m} {d}, {}", b.r(r, ""));
                b.ins(text, &[dst], &[Reg::V(dst), r]);
            }
        }
        if matches!(op, BinOp::Add | BinOp::Sub | BinOp::Shl) {
            self.normalize(b, dst, kind);
        }
    }

    fn normalize(&self, b: &mut Builder, dst: VReg, kind: WordKind) {
        let d = b.r(Reg::V(dst), "");
        let insn = match (width(kind), kind.signed()) {
            (8, _) => return,
            (4, false) => "llgfr",
            (4, true) => "lgfr",
            (2, false) => "llghr",
            (2, true) => "lghr",
            (_, false) => "llgcr",
            (_, true) => "lgbr",
        };
        b.ins(format!("{insn} {d}, {d}"), &[dst], &[Reg::V(dst)]);
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
        let imm = |s: Src| matches!(s, Src::Imm(_)) || matches!(s, Src::Reg(r) if b.is_const(r));
        let (lhs, op, rhs) = if imm(lhs) && !imm(rhs) {
            (rhs, op.swapped(), lhs)
        } else {
            (lhs, op, rhs)
        };
        let l = Self::reg(b, lhs);
        let lt = b.r(l, "");
        match rhs {
            Src::Reg(r) if b.is_const(r) => {
                let m = if signed { "cgfi" } else { "clgfi" };
                b.ins(format!("{m} {lt}, {}", b.r(r, "")), &[], &[l]);
            }
            Src::Imm(v) if signed && i32::try_from(v).is_ok() => {
                b.ins(format!("cgfi {lt}, {v}"), &[], &[l]);
            }
            Src::Imm(v) if !signed && u32::try_from(v).is_ok() => {
                b.ins(format!("clgfi {lt}, {v}"), &[], &[l]);
            }
            other => {
                let r = Self::reg(b, other);
                let m = if signed { "cgr" } else { "clgr" };
                let text = format!("{m} {lt}, {}", b.r(r, ""));
                b.ins(text, &[], &[l, r]);
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
        b.ins(format!("{m} {exit}f"), &[], &with_keep(Vec::new(), keep));
    }

    fn store(&self, b: &mut Builder, addr: &Mem, value: Src, kind: WordKind) {
        Self::store_to(b, addr, value, kind);
    }

    fn memcpy(&self, b: &mut Builder, dst: &Mem, src: &Mem, len: CopyLen) {
        let t = b.vreg();
        let tr = Reg::V(t);
        let tt = b.r(tr, "");
        let ld = |w: u32| match w {
            8 => "lg",
            4 => "llgf",
            2 => "llgh",
            _ => "llgc",
        };
        match len {
            CopyLen::Const(n) => {
                // Unrolled: 8-byte moves, then a 4/2/1-byte tail (no alignment needed).
                let mut off = 0u64;
                for w in [8u32, 4, 2, 1] {
                    while n - off >= u64::from(w) {
                        let o = i64::try_from(off).expect("memcpy length is capped");
                        let (sm, su) = Self::mem(b, src, o);
                        b.ins(format!("{} {tt}, {sm}", ld(w)), &[t], &su);
                        let (dm, du) = Self::mem(b, dst, o);
                        let text = format!("{} {tt}, {dm}", Self::store_insn(w));
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
                group.push(format!("lgr {r}, {}", b.r(len, "")));
                group.push(format!("{l1}:"));
                group.push(format!("clgfi {r}, 8"));
                group.push(format!("jl {l2}f"));
                group.push(format!("lg {tt}, 0({s})"));
                group.push(format!("stg {tt}, 0({d})"));
                group.push(format!("aghi {s}, 8"));
                group.push(format!("aghi {d}, 8"));
                group.push(format!("aghi {r}, -8"));
                group.push(format!("j {l1}b"));
                group.push(format!("{l2}:"));
                for (w, skip) in [(4u32, l3), (2, l4), (1, l5)] {
                    group.push(format!("tmll {r}, {w}"));
                    group.push(format!("jz {skip}f"));
                    group.push(format!("{} {tt}, 0({s})", ld(w)));
                    group.push(format!("{} {tt}, 0({d})", Self::store_insn(w)));
                    if w != 1 {
                        group.push(format!("aghi {s}, {w}"));
                        group.push(format!("aghi {d}, {w}"));
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

    fn commit(&self, b: &mut Builder, addr: &Mem, value: Src, kind: WordKind, _commit: CommitKind) {
        // `store_release` needs no barrier: stores are not reordered with earlier accesses.
        Self::store_to(b, addr, value, kind);
    }

    fn set_status(&self, b: &mut Builder, status: u32) {
        b.line(format!("lghi {{status}}, {status}"));
    }

    fn jump_back(&self, b: &mut Builder, label: u32) {
        b.line(format!("j {label}b"));
    }

    fn abort_stub(&self, b: &mut Builder, labels: &Labels) {
        b.line(format!("j {AFTER_STUBS}f"));
        b.line(".balign 4");
        b.line(format!(".long {:#010x}", Arch::S390x.signature()));
        b.line(format!("{}:", labels.abort));
    }

    fn descriptor(&self, b: &mut Builder, labels: &Labels, exits: &[u32]) {
        super::common::descriptor64(b, labels, exits);
    }
}
