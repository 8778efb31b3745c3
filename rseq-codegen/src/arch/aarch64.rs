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

use super::common::{chunks16, mem_regs, regs, with_keep, AFTER_STUBS};
use super::{
    Arch, ArchEmitter, Builder, CopyLen, Disp, Labels, Mem, Reg, Src, VReg,
    AREA_CPU_ID_OFFSET as CPU_ID_OFFSET, AREA_MM_CID_OFFSET as MM_CID_OFFSET,
    AREA_RSEQ_CS_OFFSET as RSEQ_CS_OFFSET,
};
use crate::ir::{BinOp, CmpOp, CommitKind, IndexMode};
use crate::ty::WordKind;

/// The aarch64 emitter.
#[derive(Debug)]
pub struct Aarch64;

fn width(kind: WordKind) -> u32 {
    kind.width(8)
}

/// The register operand for an access of `w` bytes (`w` register below 8 bytes).
fn rw(b: &Builder, r: Reg, w: u32) -> String {
    b.r(r, if w == 8 { "" } else { "w" })
}

/// `mov`-immediate lines loading `v` into register text `d` (x form).
fn li_lines(d: &str, v: i64) -> Vec<String> {
    if (0..=0xffff).contains(&v) || (-0x1_0000..0).contains(&v) {
        return vec![format!("mov {d}, #{v}")];
    }
    #[allow(clippy::cast_sign_loss)]
    let parts = chunks16(v as u64);
    parts
        .iter()
        .enumerate()
        .map(|(i, (shift, c))| {
            let op = if i == 0 { "movz" } else { "movk" };
            format!("{op} {d}, #{c}, lsl #{shift}")
        })
        .collect()
}

/// Whether `d` fits the immediate offset of a `w`-byte `ldr`/`str` (scaled unsigned or `ldur`).
fn offset_fits(d: i64, w: u32) -> bool {
    let w = i64::from(w);
    (-256..=255).contains(&d) || (d >= 0 && d % w == 0 && d / w <= 4095)
}

impl Aarch64 {
    /// Loads an immediate into a fresh scratch register.
    fn imm_reg(b: &mut Builder, v: i64) -> Reg {
        let t = b.vreg();
        let d = b.r(Reg::V(t), "");
        for line in li_lines(&d, v) {
            b.ins(line, &[t], &[Reg::V(t)]);
        }
        Reg::V(t)
    }

    /// A register holding `s` (a fresh scratch for immediates).
    fn reg(b: &mut Builder, s: Src) -> Reg {
        match s {
            Src::Reg(r) => r,
            Src::Imm(v) => Self::imm_reg(b, v),
        }
    }

    /// The register text of a stored value of `w` bytes: `xzr`/`wzr` for zero.
    fn value(b: &mut Builder, s: Src, w: u32) -> (String, Vec<Reg>) {
        match s {
            Src::Imm(0) => ((if w == 8 { "xzr" } else { "wzr" }).to_owned(), vec![]),
            other => {
                let r = Self::reg(b, other);
                (rw(b, r, w), vec![r])
            }
        }
    }

    /// A memory operand `[..]` for a `w`-byte access at `m + extra`, adding into a scratch register
    /// first when the offset does not fit.
    fn mem(b: &mut Builder, m: &Mem, extra: i64, w: u32) -> (String, Vec<Reg>) {
        let base = b.r(m.base, "");
        match m.disp {
            Disp::Reg(r) if extra == 0 => (format!("[{base}, {}]", b.r(r, "")), vec![m.base, r]),
            Disp::Reg(r) => {
                let t = b.vreg();
                let text = format!("add {}, {base}, {}", b.r(Reg::V(t), ""), b.r(r, ""));
                b.ins(text, &[t], &[m.base, r]);
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
                    (format!("[{base}]"), vec![m.base])
                } else if offset_fits(d, w) {
                    (format!("[{base}, #{d}]"), vec![m.base])
                } else {
                    let t = Self::imm_reg(b, d);
                    (format!("[{base}, {}]", b.r(t, "")), vec![m.base, t])
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
                let text = format!(
                    "add {}, {}, {}",
                    b.r(Reg::V(t), ""),
                    b.r(m.base, ""),
                    b.r(r, "")
                );
                b.ins(text, &[t], &[m.base, r]);
                return Reg::V(t);
            }
        };
        let t = b.vreg();
        let tt = b.r(Reg::V(t), "");
        let base = b.r(m.base, "");
        if (0..=4095).contains(&d) {
            b.ins(format!("add {tt}, {base}, #{d}"), &[t], &[m.base]);
        } else if (-4095..0).contains(&d) {
            b.ins(format!("sub {tt}, {base}, #{}", -d), &[t], &[m.base]);
        } else {
            let k = Self::imm_reg(b, d);
            let text = format!("add {tt}, {base}, {}", b.r(k, ""));
            b.ins(text, &[t], &[m.base, k]);
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

    fn store_to(b: &mut Builder, addr: &Mem, value: Src, kind: WordKind) {
        let w = width(kind);
        let (v, vu) = Self::value(b, value, w);
        let (m, mu) = Self::mem(b, addr, 0, w);
        b.ins(
            format!("{} {v}, {m}", Self::store_insn(w)),
            &[],
            &regs(&[&vu, &mu]),
        );
    }

    /// Lines of the address computation `dst = m` for the memcpy loop group.
    fn addr_lines(b: &Builder, dst: &str, m: &Mem) -> Vec<String> {
        let base = b.r(m.base, "");
        match m.disp {
            Disp::None | Disp::Imm(0) => vec![format!("mov {dst}, {base}")],
            Disp::Reg(r) => vec![format!("add {dst}, {base}, {}", b.r(r, ""))],
            Disp::Imm(v) if (0..=4095).contains(&v) => vec![format!("add {dst}, {base}, #{v}")],
            Disp::Imm(v) if (-4095..0).contains(&v) => {
                vec![format!("sub {dst}, {base}, #{}", -v)]
            }
            Disp::Imm(v) => {
                let mut lines = li_lines(dst, v);
                lines.push(format!("add {dst}, {base}, {dst}"));
                lines
            }
        }
    }
}

impl ArchEmitter for Aarch64 {
    fn arch(&self) -> Arch {
        Arch::Aarch64
    }

    fn pointer_bytes(&self) -> u32 {
        8
    }

    fn registers(&self) -> usize {
        28
    }

    fn imm_fits(&self, _value: i64) -> bool {
        // Any constant can be built with `movz`/`movk`; instructions with immediate fields use
        // them when the value fits.
        true
    }

    fn const_operands(&self) -> bool {
        // `offset_of!` values are passed in registers: an immediate offset's encodability depends
        // on its value and the access width, which are not known when the template is written.
        false
    }

    fn store_descriptor_pointer(&self, b: &mut Builder, area: Reg, labels: &Labels) {
        let tmp = b.vreg();
        let t = b.r(Reg::V(tmp), "");
        let d = labels.descriptor;
        b.ins(format!("adrp {t}, {d}f"), &[tmp], &[]);
        b.ins(format!("add {t}, {t}, :lo12:{d}f"), &[tmp], &[Reg::V(tmp)]);
        let a = b.r(area, "");
        b.ins(
            format!("str {t}, [{a}, #{RSEQ_CS_OFFSET}]"),
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
        let text = format!("ldr {}, [{}, #{off}]", b.r(Reg::V(dst), "w"), b.r(area, ""));
        b.ins(text, &[dst], &[area]);
    }

    fn check_index_bounds(&self, b: &mut Builder, idx: VReg, len: Reg, exit: u32, keep: &[VReg]) {
        let text = format!("cmp {}, {}", b.r(Reg::V(idx), ""), b.r(len, ""));
        b.ins(text, &[], &[Reg::V(idx), len]);
        b.ins(
            format!("b.hs {exit}f"),
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
        let e = Self::reg(b, expected);
        let text = format!("cmp {}, {}", b.r(Reg::V(idx), ""), b.r(e, ""));
        b.ins(text, &[], &[Reg::V(idx), e]);
        b.ins(
            format!("b.ne {exit}f"),
            &[],
            &with_keep(vec![Reg::V(idx)], keep),
        );
    }

    fn slot_address(&self, b: &mut Builder, dst: VReg, idx: VReg, base: Reg, stride: Reg) {
        let text = format!(
            "madd {}, {}, {}, {}",
            b.r(Reg::V(dst), ""),
            b.r(Reg::V(idx), ""),
            b.r(stride, ""),
            b.r(base, "")
        );
        b.ins(text, &[dst], &[Reg::V(idx), stride, base]);
    }

    fn mov(&self, b: &mut Builder, dst: VReg, src: Src) {
        let d = b.r(Reg::V(dst), "");
        match src {
            Src::Reg(Reg::V(s)) => b.copy(format!("mov {d}, {}", b.r(Reg::V(s), "")), dst, s),
            Src::Reg(r) => b.ins(format!("mov {d}, {}", b.r(r, "")), &[dst], &[r]),
            Src::Imm(v) => {
                for line in li_lines(&d, v) {
                    b.ins(line, &[dst], &[Reg::V(dst)]);
                }
            }
        }
    }

    fn acquire_fence(&self, b: &mut Builder) {
        // `dmb ishld` orders the load before every later load and store (what
        // `ldar` gives, without `ldar`'s base-register-only addressing).
        b.line("dmb ishld");
    }

    fn load(&self, b: &mut Builder, dst: VReg, addr: &Mem, kind: WordKind) {
        let w = width(kind);
        let (m, uses) = Self::mem(b, addr, 0, w);
        let d = Reg::V(dst);
        let text = match (w, kind.signed()) {
            (8, _) => format!("ldr {}, {m}", b.r(d, "")),
            (4, false) => format!("ldr {}, {m}", b.r(d, "w")),
            (4, true) => format!("ldrsw {}, {m}", b.r(d, "")),
            (2, false) => format!("ldrh {}, {m}", b.r(d, "w")),
            (2, true) => format!("ldrsh {}, {m}", b.r(d, "")),
            (_, false) => format!("ldrb {}, {m}", b.r(d, "w")),
            (_, true) => format!("ldrsb {}, {m}", b.r(d, "")),
        };
        b.ins(text, &[dst], &uses);
    }

    fn arith(&self, b: &mut Builder, op: BinOp, dst: VReg, rhs: Src, kind: WordKind) {
        let d = b.r(Reg::V(dst), "");
        let bits = width(kind) * 8;
        match (op, rhs) {
            (BinOp::Shl | BinOp::Shr, Src::Imm(c)) => {
                let c = c & i64::from(bits - 1);
                let m = match op {
                    BinOp::Shl => "lsl",
                    _ if kind.signed() => "asr",
                    _ => "lsr",
                };
                if c != 0 {
                    b.ins(format!("{m} {d}, {d}, #{c}"), &[dst], &[Reg::V(dst)]);
                }
            }
            (BinOp::Shl | BinOp::Shr, Src::Reg(r)) => {
                let m = match op {
                    BinOp::Shl => "lsl",
                    _ if kind.signed() => "asr",
                    _ => "lsr",
                };
                // A 64-bit register shift takes the count modulo 64; narrower types mask first.
                let count = if bits < 64 {
                    let t = b.vreg();
                    let text = format!("and {}, {}, #{}", b.r(Reg::V(t), ""), b.r(r, ""), bits - 1);
                    b.ins(text, &[t], &[r]);
                    Reg::V(t)
                } else {
                    r
                };
                let text = format!("{m} {d}, {d}, {}", b.r(count, ""));
                b.ins(text, &[dst], &[Reg::V(dst), count]);
            }
            (BinOp::Add | BinOp::Sub, Src::Imm(v)) if (-4095..=4095).contains(&v) => {
                let (m, v) = match (op, v < 0) {
                    (BinOp::Add, false) | (BinOp::Sub, true) => ("add", v.abs()),
                    _ => ("sub", v.abs()),
                };
                b.ins(format!("{m} {d}, {d}, #{v}"), &[dst], &[Reg::V(dst)]);
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
                let text = format!("{m} {d}, {d}, {}", b.r(r, ""));
                b.ins(text, &[dst], &[Reg::V(dst), r]);
            }
        }
        // and/or/xor of canonical values and right shifts by less than the width stay canonical.
        if matches!(op, BinOp::Add | BinOp::Sub | BinOp::Shl) {
            self.normalize(b, dst, kind);
        }
    }

    fn normalize(&self, b: &mut Builder, dst: VReg, kind: WordKind) {
        let d = Reg::V(dst);
        let text = match (width(kind), kind.signed()) {
            (8, _) => return,
            (4, false) => format!("mov {0}, {0}", b.r(d, "w")),
            (4, true) => format!("sxtw {}, {}", b.r(d, ""), b.r(d, "w")),
            (2, false) => format!("uxth {0}, {0}", b.r(d, "w")),
            (2, true) => format!("sxth {}, {}", b.r(d, ""), b.r(d, "w")),
            (_, false) => format!("uxtb {0}, {0}", b.r(d, "w")),
            (_, true) => format!("sxtb {}, {}", b.r(d, ""), b.r(d, "w")),
        };
        b.ins(text, &[dst], &[d]);
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
        let keep_uses = with_keep(Vec::new(), keep);
        if let (CmpOp::Eq | CmpOp::Ne, Src::Imm(0)) = (op, rhs) {
            let m = if op == CmpOp::Eq { "cbz" } else { "cbnz" };
            b.ins(
                format!("{m} {lt}, {exit}f"),
                &[],
                &regs(&[&[l], &keep_uses]),
            );
            return;
        }
        match rhs {
            Src::Imm(v) if (0..=4095).contains(&v) => b.ins(format!("cmp {lt}, #{v}"), &[], &[l]),
            Src::Imm(v) if (-4095..0).contains(&v) => {
                b.ins(format!("cmn {lt}, #{}", -v), &[], &[l]);
            }
            other => {
                let r = Self::reg(b, other);
                let text = format!("cmp {lt}, {}", b.r(r, ""));
                b.ins(text, &[], &[l, r]);
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
        b.ins(format!("b.{cc} {exit}f"), &[], &keep_uses);
    }

    fn store(&self, b: &mut Builder, addr: &Mem, value: Src, kind: WordKind) {
        Self::store_to(b, addr, value, kind);
    }

    fn memcpy(&self, b: &mut Builder, dst: &Mem, src: &Mem, len: CopyLen) {
        let t = b.vreg();
        let tr = Reg::V(t);
        match len {
            CopyLen::Const(n) => {
                // Unrolled: 8-byte moves, then a 4/2/1-byte tail (Linux runs user space with
                // unaligned normal-memory accesses allowed).
                let mut off = 0u64;
                for w in [8u32, 4, 2, 1] {
                    while n - off >= u64::from(w) {
                        let o = i64::try_from(off).expect("memcpy length is capped");
                        let (sm, su) = Self::mem(b, src, o, w);
                        let ld = match w {
                            1 => "ldrb",
                            2 => "ldrh",
                            _ => "ldr",
                        };
                        b.ins(format!("{ld} {}, {sm}", rw(b, tr, w)), &[t], &su);
                        let (dm, du) = Self::mem(b, dst, o, w);
                        let text = format!("{} {}, {dm}", Self::store_insn(w), rw(b, tr, w));
                        b.ins(text, &[], &regs(&[&[tr], &du]));
                        off += u64::from(w);
                    }
                }
            }
            CopyLen::Reg(len) => {
                // Running pointers and a remaining count in scratch registers (inputs are never
                // written); one early-clobber group so none of them shares a register with the
                // addresses or the length, which stay live across the back edge.
                let (ps, pd, rem) = (b.vreg(), b.vreg(), b.vreg());
                let (l1, l2, l3, l4, l5) = (b.label(), b.label(), b.label(), b.label(), b.label());
                let (s, d, r) = (
                    b.r(Reg::V(ps), ""),
                    b.r(Reg::V(pd), ""),
                    b.r(Reg::V(rem), ""),
                );
                let (tx, tw) = (b.r(tr, ""), b.r(tr, "w"));
                let mut group = Self::addr_lines(b, &s, src);
                group.extend(Self::addr_lines(b, &d, dst));
                group.push(format!("mov {r}, {}", b.r(len, "")));
                group.push(format!("{l1}:"));
                group.push(format!("cmp {r}, #8"));
                group.push(format!("b.lo {l2}f"));
                group.push(format!("ldr {tx}, [{s}], #8"));
                group.push(format!("str {tx}, [{d}], #8"));
                group.push(format!("sub {r}, {r}, #8"));
                group.push(format!("b {l1}b"));
                group.push(format!("{l2}:"));
                for (bit, w, skip) in [(2u32, 4u32, l3), (1, 2, l4), (0, 1, l5)] {
                    let (ld, st) = match w {
                        4 => ("ldr", "str"),
                        2 => ("ldrh", "strh"),
                        _ => ("ldrb", "strb"),
                    };
                    group.push(format!("tbz {r}, #{bit}, {skip}f"));
                    group.push(format!("{ld} {tw}, [{s}], #{w}"));
                    group.push(format!("{st} {tw}, [{d}], #{w}"));
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
        match commit {
            CommitKind::Store => Self::store_to(b, addr, value, kind),
            CommitKind::StoreRelease => {
                // `stlr` orders every earlier load and store before the commit; it is the commit
                // itself, so the section still ends with its one committing store.
                let w = width(kind);
                let (v, vu) = Self::value(b, value, w);
                let a = Self::addr_reg(b, addr);
                let m = match w {
                    1 => "stlrb",
                    2 => "stlrh",
                    _ => "stlr",
                };
                let text = format!("{m} {v}, [{}]", b.r(a, ""));
                b.ins(text, &[], &regs(&[&vu, &[a]]));
            }
        }
    }

    fn set_status(&self, b: &mut Builder, status: u32) {
        b.line(format!("mov {{status}}, #{status}"));
    }

    fn jump_back(&self, b: &mut Builder, label: u32) {
        b.line(format!("b {label}b"));
    }

    fn abort_stub(&self, b: &mut Builder, labels: &Labels) {
        b.line(format!("b {AFTER_STUBS}f"));
        b.line(format!(".inst {:#010x}", Arch::Aarch64.signature()));
        b.line(format!("{}:", labels.abort));
    }

    fn descriptor(&self, b: &mut Builder, labels: &Labels, exits: &[u32]) {
        super::common::descriptor64(b, labels, exits);
    }
}
