//! arm emitter (ARMv7-A, 32-bit; the same text assembles as A32 and as Thumb-2, so the `arm`
//! targets in Thumb mode such as `thumbv7neon-unknown-linux-gnueabihf` work too).
//!
//! Instructions used: `adr` + `movw`/`movt` of `:lower16:`/`:upper16:(3f - L)` + `add` (descriptor
//! address: `adr` gives the address of label `L` in either instruction set, and the PC-relative
//! `R_ARM_MOVW_PREL_NC`/`R_ARM_MOVT_PREL` pair the distance to the descriptor in another section;
//! PIC-safe, +-2 GiB), `str` (arming store: the low word of the 64-bit `rseq_cs`, whose high word
//! stays 0), `ldr` (index read), `cmp` + `bhs bne b<cc>` (index check, compare-exits, memcpy
//! loop), `mla` (slot address), `ldrb ldrsb ldrh ldrsh ldr` and `strb strh str` (loads and stores;
//! immediate offsets within what both A32 and T32 encode, else a register offset), `add sub and orr
//! eor lsl lsr asr` (arithmetic; immediates 0..255, register shift counts always masked to the
//! type's width, since a register shift by 32..255 is not taken modulo 32), `uxtb uxth sxtb sxth`
//! (canonical re-extension), `movw`/`movt` and `mov` (constants, copies), `dmb ish` (`commit
//! store_release`: the release barrier before the commit store), `b` (stubs).
//!
//! Words: registers hold 32 bits, so `usize`, `isize` and pointers are 32-bit and every value is
//! canonical within 32 bits. `u64`/`i64` values in a section are a compile error on arm
//! (`ErrorKind::WordTooWide`, emitted under `#[cfg(target_arch = "arm")]` only): a 64-bit commit
//! would need `strd` with an even/odd register pair, which `asm!` operands cannot request, and two
//! 32-bit stores would not be one committing instruction.
//!
//! Descriptor: the 64-bit fields of `struct rseq_cs` and the array entries are `.long low, 0`
//! pairs (little-endian).
//!
//! Signature: `.word 0xe7f5def3` (`udf #24035` in A32; two trapping halfwords in T32) right before
//! the abort label, 4-byte aligned.
//!
//! Stubs stay in `.text` behind `b 7f` (see `common.rs`), like the other load/store emitters.
//!
//! Registers: 11 (`r0`-`r5`, `r8`-`r10`, `r12`, `r14`): `r6` (LLVM's base pointer), `r7` (Thumb
//! frame pointer), `r11` (A32 frame pointer), `sp` and `pc` are never operands.

use super::common::{mem_regs, regs, with_keep, AFTER_STUBS};
use super::{
    Arch, ArchEmitter, Builder, CopyLen, Disp, Labels, Mem, Reg, Src, VReg,
    AREA_CPU_ID_OFFSET as CPU_ID_OFFSET, AREA_MM_CID_OFFSET as MM_CID_OFFSET,
    AREA_RSEQ_CS_OFFSET as RSEQ_CS_OFFSET,
};
use crate::ir::{BinOp, CmpOp, CommitKind, IndexMode};
use crate::ty::WordKind;

/// The arm emitter.
#[derive(Debug)]
pub struct Arm;

fn width(kind: WordKind) -> u32 {
    kind.width(4)
}

/// The 32-bit register value of a canonical immediate (truncated: registers hold 32 bits).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn u32_of(v: i64) -> u32 {
    v as u32
}

/// An immediate both A32 and T32 encode in data-processing instructions.
fn small(v: i64) -> bool {
    (0..=255).contains(&u32_of(v))
}

fn li_lines(d: &str, v: i64) -> Vec<String> {
    let v = u32_of(v);
    let mut lines = vec![format!("movw {d}, #{}", v & 0xffff)];
    if v >> 16 != 0 {
        lines.push(format!("movt {d}, #{}", v >> 16));
    }
    lines
}

impl Arm {
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

    /// `[base, #d]` or `[base, reg]` for a `w`-byte access (`signed` halfword/byte loads and
    /// halfword stores have the short +-255 offset in A32).
    fn mem(b: &mut Builder, m: &Mem, extra: i64, short: bool) -> (String, Vec<Reg>) {
        let base = b.r(m.base, "");
        let fits = |d: i64| {
            if short {
                (-255..=255).contains(&d)
            } else {
                (-255..=4095).contains(&d)
            }
        };
        match m.disp {
            Disp::Reg(r) if extra == 0 => (format!("[{base}, {}]", b.r(r, "")), vec![m.base, r]),
            Disp::Reg(r) => {
                let k = Self::imm_reg(b, extra);
                let Reg::V(kv) = k else { unreachable!() };
                let text = format!("add {0}, {0}, {1}", b.r(k, ""), b.r(r, ""));
                b.ins(text, &[kv], &[k, r]);
                (format!("[{base}, {}]", b.r(k, "")), vec![m.base, k])
            }
            Disp::None | Disp::Imm(_) => {
                let d = match m.disp {
                    Disp::Imm(v) => i64::from(u32_of(v) as i32) + extra,
                    _ => extra,
                };
                if d == 0 {
                    (format!("[{base}]"), vec![m.base])
                } else if fits(d) {
                    (format!("[{base}, #{d}]"), vec![m.base])
                } else {
                    let k = Self::imm_reg(b, d);
                    (format!("[{base}, {}]", b.r(k, "")), vec![m.base, k])
                }
            }
        }
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
        let v = Self::reg(b, value);
        let (m, mu) = Self::mem(b, addr, 0, w == 2);
        let text = format!("{} {}, {m}", Self::store_insn(w), b.r(v, ""));
        b.ins(text, &[], &regs(&[&[v], &mu]));
    }

    fn addr_lines(b: &Builder, dst: &str, m: &Mem) -> Vec<String> {
        let base = b.r(m.base, "");
        match m.disp {
            Disp::None | Disp::Imm(0) => vec![format!("mov {dst}, {base}")],
            Disp::Reg(r) => vec![format!("add {dst}, {base}, {}", b.r(r, ""))],
            Disp::Imm(v) => {
                let mut lines = li_lines(dst, v);
                lines.push(format!("add {dst}, {dst}, {base}"));
                lines
            }
        }
    }
}

impl ArchEmitter for Arm {
    fn arch(&self) -> Arch {
        Arch::Arm
    }

    fn pointer_bytes(&self) -> u32 {
        4
    }

    fn registers(&self) -> usize {
        11
    }

    fn imm_fits(&self, value: i64) -> bool {
        // Canonical values of 32-bit types: i32 range (signed) or u32 range (unsigned).
        i32::try_from(value).is_ok() || u32::try_from(value).is_ok()
    }

    fn const_operands(&self) -> bool {
        false
    }

    fn store_descriptor_pointer(&self, b: &mut Builder, area: Reg, labels: &Labels) {
        let here = b.label();
        let (t, p) = (b.vreg(), b.vreg());
        let (tt, pt) = (b.r(Reg::V(t), ""), b.r(Reg::V(p), ""));
        let d = labels.descriptor;
        // `L: adr p, Lb` is `p = L` in A32 and T32 alike (the assembler applies the PC bias).
        b.line(format!("{here}:"));
        b.ins(format!("adr {pt}, {here}b"), &[p], &[]);
        b.ins_early_clobber(
            format!("movw {tt}, #:lower16:({d}f - {here}b)"),
            &[t],
            &[Reg::V(p)],
        );
        b.ins(
            format!("movt {tt}, #:upper16:({d}f - {here}b)"),
            &[t],
            &[Reg::V(t), Reg::V(p)],
        );
        b.ins(
            format!("add {tt}, {tt}, {pt}"),
            &[t],
            &[Reg::V(t), Reg::V(p)],
        );
        let a = b.r(area, "");
        b.ins(
            format!("str {tt}, [{a}, #{RSEQ_CS_OFFSET}]"),
            &[],
            &[area, Reg::V(t)],
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
        let text = format!("ldr {}, [{}, #{off}]", b.r(Reg::V(dst), ""), b.r(area, ""));
        b.ins(text, &[dst], &[area]);
    }

    fn check_index_bounds(&self, b: &mut Builder, idx: VReg, len: Reg, exit: u32, keep: &[VReg]) {
        let text = format!("cmp {}, {}", b.r(Reg::V(idx), ""), b.r(len, ""));
        b.ins(text, &[], &[Reg::V(idx), len]);
        b.ins(
            format!("bhs {exit}f"),
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
            Src::Imm(v) if small(v) => {
                b.ins(format!("cmp {i}, #{}", u32_of(v)), &[], &[Reg::V(idx)]);
            }
            other => {
                let e = Self::reg(b, other);
                let text = format!("cmp {i}, {}", b.r(e, ""));
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
        let text = format!(
            "mla {}, {}, {}, {}",
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
        // ARMv7 has no load-acquire: a full `dmb ish` after the load, as compilers emit
        // for an acquire load.
        b.line("dmb ish");
    }

    fn load(&self, b: &mut Builder, dst: VReg, addr: &Mem, kind: WordKind) {
        let w = width(kind);
        let (insn, short) = match (w, kind.signed()) {
            (4, _) => ("ldr", false),
            (2, false) => ("ldrh", true),
            (2, true) => ("ldrsh", true),
            (_, false) => ("ldrb", false),
            (_, true) => ("ldrsb", true),
        };
        let (m, uses) = Self::mem(b, addr, 0, short);
        let text = format!("{insn} {}, {m}", b.r(Reg::V(dst), ""));
        b.ins(text, &[dst], &uses);
    }

    fn arith(&self, b: &mut Builder, op: BinOp, dst: VReg, rhs: Src, kind: WordKind) {
        let d = b.r(Reg::V(dst), "");
        let bits = width(kind) * 8;
        let shift = match op {
            BinOp::Shl => "lsl",
            _ if kind.signed() => "asr",
            _ => "lsr",
        };
        match (op, rhs) {
            (BinOp::Shl | BinOp::Shr, Src::Imm(c)) => {
                let c = c & i64::from(bits - 1);
                if c != 0 {
                    b.ins(format!("{shift} {d}, {d}, #{c}"), &[dst], &[Reg::V(dst)]);
                }
            }
            (BinOp::Shl | BinOp::Shr, Src::Reg(r)) => {
                let t = b.vreg();
                let text = format!("and {}, {}, #{}", b.r(Reg::V(t), ""), b.r(r, ""), bits - 1);
                b.ins(text, &[t], &[r]);
                let text = format!("{shift} {d}, {d}, {}", b.r(Reg::V(t), ""));
                b.ins(text, &[dst], &[Reg::V(dst), Reg::V(t)]);
            }
            (_, Src::Imm(v)) if small(v) => {
                let m = match op {
                    BinOp::Add => "add",
                    BinOp::Sub => "sub",
                    BinOp::And => "and",
                    BinOp::Or => "orr",
                    _ => "eor",
                };
                b.ins(
                    format!("{m} {d}, {d}, #{}", u32_of(v)),
                    &[dst],
                    &[Reg::V(dst)],
                );
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
        if matches!(op, BinOp::Add | BinOp::Sub | BinOp::Shl) {
            self.normalize(b, dst, kind);
        }
    }

    fn normalize(&self, b: &mut Builder, dst: VReg, kind: WordKind) {
        let d = b.r(Reg::V(dst), "");
        let insn = match (width(kind), kind.signed()) {
            (4, _) => return,
            (2, false) => "uxth",
            (2, true) => "sxth",
            (_, false) => "uxtb",
            (_, true) => "sxtb",
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
        let (lhs, op, rhs) = match (lhs, rhs) {
            (Src::Imm(_), Src::Reg(_)) => (rhs, op.swapped(), lhs),
            _ => (lhs, op, rhs),
        };
        let l = Self::reg(b, lhs);
        let lt = b.r(l, "");
        match rhs {
            Src::Imm(v) if small(v) => {
                b.ins(format!("cmp {lt}, #{}", u32_of(v)), &[], &[l]);
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
        b.ins(format!("b{cc} {exit}f"), &[], &with_keep(Vec::new(), keep));
    }

    fn store(&self, b: &mut Builder, addr: &Mem, value: Src, kind: WordKind) {
        Self::store_to(b, addr, value, kind);
    }

    fn memcpy(&self, b: &mut Builder, dst: &Mem, src: &Mem, len: CopyLen) {
        let t = b.vreg();
        let tr = Reg::V(t);
        let tt = b.r(tr, "");
        let ld = |w: u32| match w {
            4 => "ldr",
            2 => "ldrh",
            _ => "ldrb",
        };
        match len {
            CopyLen::Const(n) => {
                // Unrolled: 4-byte moves (the word size), then a 2/1-byte tail. ARMv7 Linux
                // allows misaligned `ldr`/`str`/`ldrh`/`strh` (never `ldrd`/`ldm`, not used).
                let mut off = 0u64;
                for w in [4u32, 2, 1] {
                    while n - off >= u64::from(w) {
                        let o = i64::try_from(off).expect("memcpy length is capped");
                        let (sm, su) = Self::mem(b, src, o, w == 2);
                        b.ins(format!("{} {tt}, {sm}", ld(w)), &[t], &su);
                        let (dm, du) = Self::mem(b, dst, o, w == 2);
                        let text = format!("{} {tt}, {dm}", Self::store_insn(w));
                        b.ins(text, &[], &regs(&[&[tr], &du]));
                        off += u64::from(w);
                    }
                }
            }
            CopyLen::Reg(len) => {
                let (ps, pd, rem) = (b.vreg(), b.vreg(), b.vreg());
                let (l1, l2, l3, l4) = (b.label(), b.label(), b.label(), b.label());
                let (s, d, r) = (
                    b.r(Reg::V(ps), ""),
                    b.r(Reg::V(pd), ""),
                    b.r(Reg::V(rem), ""),
                );
                // The remaining count starts as a copy of `len`, made before the group so that it
                // can share `len`'s register when `len` is a scratch that dies here (a spilled
                // input loaded for this copy): one register fewer for the group.
                let mov = format!("mov {r}, {}", b.r(len, ""));
                match len {
                    Reg::V(v) => b.copy(mov, rem, v),
                    Reg::In(_) => b.ins(mov, &[rem], &[len]),
                }
                let mut group = Self::addr_lines(b, &s, src);
                group.extend(Self::addr_lines(b, &d, dst));
                group.push(format!("{l1}:"));
                group.push(format!("cmp {r}, #4"));
                group.push(format!("blo {l2}f"));
                group.push(format!("ldr {tt}, [{s}], #4"));
                group.push(format!("str {tt}, [{d}], #4"));
                group.push(format!("sub {r}, {r}, #4"));
                group.push(format!("b {l1}b"));
                group.push(format!("{l2}:"));
                for (w, skip) in [(2u32, l3), (1, l4)] {
                    group.push(format!("tst {r}, #{w}"));
                    group.push(format!("beq {skip}f"));
                    group.push(format!("{} {tt}, [{s}], #{w}", ld(w)));
                    group.push(format!("{} {tt}, [{d}], #{w}", Self::store_insn(w)));
                    group.push(format!("{skip}:"));
                }
                let defs = [t, ps, pd];
                let uses = regs(&[&mem_regs(dst), &mem_regs(src), &[Reg::V(rem)]]);
                for line in group {
                    b.ins_early_clobber(line, &defs, &uses);
                }
            }
        }
    }

    fn commit(&self, b: &mut Builder, addr: &Mem, value: Src, kind: WordKind, commit: CommitKind) {
        if commit == CommitKind::StoreRelease {
            // Release barrier inside the section; the commit store stays the last instruction.
            b.line("dmb ish");
        }
        Self::store_to(b, addr, value, kind);
    }

    fn set_status(&self, b: &mut Builder, status: u32) {
        b.line(format!("mov {{status}}, #{status}"));
    }

    fn jump_back(&self, b: &mut Builder, label: u32) {
        b.line(format!("b {label}b"));
    }

    fn abort_stub(&self, b: &mut Builder, labels: &Labels) {
        b.line(format!("b {AFTER_STUBS}f"));
        b.line(".balign 4");
        b.line(format!(".word {:#010x}", Arch::Arm.signature()));
        b.line(format!("{}:", labels.abort));
    }

    fn descriptor(&self, b: &mut Builder, labels: &Labels, exits: &[u32]) {
        super::common::descriptor32(b, labels, exits);
    }
}
