//! x86_64 emitter (Intel syntax, the `asm!` default).
//!
//! Instructions used: `lea` (descriptor address, RIP-relative), `mov`/`movzx`/`movsx`/`movsxd`
//! (loads, stores, copies, canonical re-extension), `cmp`/`test` + `jcc` (index check, compare-exits,
//! memcpy loop), `imul`/`add` (slot address), `add sub and or xor shl shr sar` (arithmetic; variable
//! shifts go through `cl`, so such sequences reserve `rcx`), `xor`/`mov` on the status register,
//! `jmp` (stubs back to the end label). No `lock` prefix: the committing store is a plain `mov`, and
//! `commit store_release` and `load_acquire` are also plain `mov`s (x86 is TSO; the `asm!` block, having no `nomem`, is a
//! compiler barrier).
//!
//! Signature: bytes `0f b9 3d` then `.long 0x53053053` right before the abort label, which decodes
//! as `ud1 edi, [rip + 0x53053053]` (the same encoding glibc and librseq use).
//!
//! Registers: `rbx`, `rbp` and `rsp` cannot be operands, leaving 13 (`rax rcx rdx rsi rdi r8-r15`).
//!
//! Injection points (`Instrument::inject`): `mov` of the count from the runtime's table
//! (RIP-relative, a `sym` operand) into the status register, then a `sub`/`jae` loop. The table takes
//! no register and the status register is free inside the section, so the register budget is the
//! default emission's.

use super::{
    Arch, ArchEmitter, Builder, CopyLen, Disp, Labels, Mem, Reg, Src, VReg,
    AREA_CPU_ID_OFFSET as CPU_ID_OFFSET, AREA_MM_CID_OFFSET as MM_CID_OFFSET,
    AREA_RSEQ_CS_OFFSET as RSEQ_CS_OFFSET,
};
use crate::ir::{BinOp, CmpOp, CommitKind, IndexMode, InjectPoint};
use crate::ty::WordKind;

/// The x86_64 emitter.
#[derive(Debug)]
pub struct X86_64;

/// Register modifier for a width in bytes (`al`, `ax`, `eax`, `rax`).
fn modifier(width: u32) -> &'static str {
    match width {
        1 => "l",
        2 => "x",
        4 => "e",
        _ => "",
    }
}

fn ptr_kw(width: u32) -> &'static str {
    match width {
        1 => "byte ptr",
        2 => "word ptr",
        4 => "dword ptr",
        _ => "qword ptr",
    }
}

fn width(kind: WordKind) -> u32 {
    kind.width(8)
}

impl X86_64 {
    fn src(b: &Builder, s: Src, width: u32) -> String {
        match s {
            Src::Reg(r) => b.r(r, modifier(width)),
            Src::Imm(v) => v.to_string(),
        }
    }

    fn mem(b: &Builder, m: &Mem, extra: i64) -> String {
        let base = b.r(m.base, "");
        let (index, disp) = match m.disp {
            Disp::None => (None, extra),
            Disp::Imm(v) => (None, v + extra),
            Disp::Reg(r) => (Some(b.r(r, "")), extra),
        };
        let mut s = format!("[{base}");
        if let Some(i) = index {
            s.push_str(" + ");
            s.push_str(&i);
        }
        match disp {
            0 => {}
            d if d < 0 => s.push_str(&format!(" - {}", d.unsigned_abs())),
            d => s.push_str(&format!(" + {d}")),
        }
        s.push(']');
        s
    }

    fn mem_regs(m: &Mem) -> Vec<Reg> {
        match m.disp {
            Disp::Reg(r) => vec![m.base, r],
            _ => vec![m.base],
        }
    }

    fn src_regs(s: Src) -> Vec<Reg> {
        match s {
            Src::Reg(r) => vec![r],
            Src::Imm(_) => vec![],
        }
    }

    fn keep_regs(uses: Vec<Reg>, keep: &[VReg]) -> Vec<Reg> {
        let mut u = uses;
        u.extend(keep.iter().map(|&v| Reg::V(v)));
        u
    }

    fn mov_to_mem(b: &mut Builder, addr: &Mem, value: Src, kind: WordKind) {
        let w = width(kind);
        let text = format!(
            "mov {} {}, {}",
            ptr_kw(w),
            Self::mem(b, addr, 0),
            Self::src(b, value, w)
        );
        let mut uses = Self::mem_regs(addr);
        uses.extend(Self::src_regs(value));
        b.ins(text, &[], &uses);
    }
}

impl ArchEmitter for X86_64 {
    fn arch(&self) -> Arch {
        Arch::X86_64
    }

    fn pointer_bytes(&self) -> u32 {
        8
    }

    fn registers(&self) -> usize {
        13
    }

    fn imm_fits(&self, value: i64) -> bool {
        i32::try_from(value).is_ok()
    }

    fn const_operands(&self) -> bool {
        true
    }

    fn store_descriptor_pointer(&self, b: &mut Builder, area: Reg, labels: &Labels) {
        let tmp = b.vreg();
        let t = b.r(Reg::V(tmp), "");
        b.ins(
            format!("lea {t}, [rip + {}f]", labels.descriptor),
            &[tmp],
            &[],
        );
        let a = b.r(area, "");
        b.ins(
            format!("mov qword ptr [{a} + {RSEQ_CS_OFFSET}], {t}"),
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
        let text = format!(
            "mov {}, dword ptr [{} + {off}]",
            b.r(Reg::V(dst), "e"),
            b.r(area, "")
        );
        b.ins(text, &[dst], &[area]);
    }

    fn check_index_bounds(&self, b: &mut Builder, idx: VReg, len: Reg, exit: u32, keep: &[VReg]) {
        let text = format!("cmp {}, {}", b.r(Reg::V(idx), ""), b.r(len, ""));
        b.ins(text, &[], &[Reg::V(idx), len]);
        b.ins(
            format!("jae {exit}f"),
            &[],
            &Self::keep_regs(vec![Reg::V(idx)], keep),
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
        let text = format!(
            "cmp {}, {}",
            b.r(Reg::V(idx), ""),
            Self::src(b, expected, 8)
        );
        let mut uses = vec![Reg::V(idx)];
        uses.extend(Self::src_regs(expected));
        b.ins(text, &[], &uses);
        b.ins(
            format!("jne {exit}f"),
            &[],
            &Self::keep_regs(vec![Reg::V(idx)], keep),
        );
    }

    fn slot_address(&self, b: &mut Builder, dst: VReg, idx: VReg, base: Reg, stride: Reg) {
        let d = b.r(Reg::V(dst), "");
        b.copy(format!("mov {d}, {}", b.r(Reg::V(idx), "")), dst, idx);
        b.ins(
            format!("imul {d}, {}", b.r(stride, "")),
            &[dst],
            &[Reg::V(dst), stride],
        );
        b.ins(
            format!("add {d}, {}", b.r(base, "")),
            &[dst],
            &[Reg::V(dst), base],
        );
    }

    fn mov(&self, b: &mut Builder, dst: VReg, src: Src) {
        let d = b.r(Reg::V(dst), "");
        match src {
            Src::Reg(Reg::V(s)) => b.copy(format!("mov {d}, {}", b.r(Reg::V(s), "")), dst, s),
            Src::Reg(r) => b.ins(format!("mov {d}, {}", b.r(r, "")), &[dst], &[r]),
            Src::Imm(0) => b.ins(format!("xor {0}, {0}", b.r(Reg::V(dst), "e")), &[dst], &[]),
            Src::Imm(v) => b.ins(format!("mov {d}, {v}"), &[dst], &[]),
        }
    }

    fn load(&self, b: &mut Builder, dst: VReg, addr: &Mem, kind: WordKind) {
        let w = width(kind);
        let m = Self::mem(b, addr, 0);
        let d = Reg::V(dst);
        let text = match (w, kind.signed()) {
            (8, _) => format!("mov {}, qword ptr {m}", b.r(d, "")),
            (4, false) => format!("mov {}, dword ptr {m}", b.r(d, "e")),
            (4, true) => format!("movsxd {}, dword ptr {m}", b.r(d, "")),
            (_, false) => format!("movzx {}, {} {m}", b.r(d, "e"), ptr_kw(w)),
            (_, true) => format!("movsx {}, {} {m}", b.r(d, ""), ptr_kw(w)),
        };
        b.ins(text, &[dst], &Self::mem_regs(addr));
    }

    fn arith(&self, b: &mut Builder, op: BinOp, dst: VReg, rhs: Src, kind: WordKind) {
        let d = b.r(Reg::V(dst), "");
        let bits = width(kind) * 8;
        let mut uses = vec![Reg::V(dst)];
        uses.extend(Self::src_regs(rhs));
        let mnemonic = match op {
            BinOp::Add => "add",
            BinOp::Sub => "sub",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Xor => "xor",
            BinOp::Shl => "shl",
            BinOp::Shr if kind.signed() => "sar",
            BinOp::Shr => "shr",
        };
        match (op, rhs) {
            (BinOp::Shl | BinOp::Shr, Src::Imm(c)) => {
                // Wrapping shifts take the count modulo the type's width (like `wrapping_shl`).
                let c = c & i64::from(bits - 1);
                if c != 0 {
                    b.ins(format!("{mnemonic} {d}, {c}"), &[dst], &uses);
                }
            }
            (BinOp::Shl | BinOp::Shr, Src::Reg(r)) => {
                b.clobber("rcx");
                let mut text = format!("mov ecx, {}", b.r(r, "e"));
                if bits < 64 {
                    text.push_str(&format!("\nand ecx, {}", bits - 1));
                }
                for line in text.lines() {
                    b.ins(line.to_owned(), &[], &uses);
                }
                b.ins(format!("{mnemonic} {d}, cl"), &[dst], &[Reg::V(dst)]);
            }
            _ => b.ins(
                format!("{mnemonic} {d}, {}", Self::src(b, rhs, 8)),
                &[dst],
                &uses,
            ),
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
            (4, false) => format!("mov {0}, {0}", b.r(d, "e")),
            (4, true) => format!("movsxd {}, {}", b.r(d, ""), b.r(d, "e")),
            (2, false) => format!("movzx {}, {}", b.r(d, "e"), b.r(d, "x")),
            (2, true) => format!("movsx {}, {}", b.r(d, ""), b.r(d, "x")),
            (_, false) => format!("movzx {}, {}", b.r(d, "e"), b.r(d, "l")),
            (_, true) => format!("movsx {}, {}", b.r(d, ""), b.r(d, "l")),
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
        let is_imm = |s: Src| matches!(s, Src::Imm(_)) || matches!(s, Src::Reg(r) if b.is_const(r));
        let (lhs, op, rhs) = if is_imm(lhs) && !is_imm(rhs) {
            (rhs, op.swapped(), lhs)
        } else {
            (lhs, op, rhs)
        };
        let lhs = if is_imm(lhs) {
            let t = b.vreg();
            self.mov(b, t, lhs);
            Src::Reg(Reg::V(t))
        } else {
            lhs
        };
        let l = Self::src(b, lhs, 8);
        let mut uses = Self::src_regs(lhs);
        uses.extend(Self::src_regs(rhs));
        let text = match (op, rhs) {
            (CmpOp::Eq | CmpOp::Ne, Src::Imm(0)) => format!("test {l}, {l}"),
            _ => format!("cmp {l}, {}", Self::src(b, rhs, 8)),
        };
        b.ins(text, &[], &uses);
        let jcc = match (op, signed) {
            (CmpOp::Eq, _) => "je",
            (CmpOp::Ne, _) => "jne",
            (CmpOp::Lt, true) => "jl",
            (CmpOp::Le, true) => "jle",
            (CmpOp::Gt, true) => "jg",
            (CmpOp::Ge, true) => "jge",
            (CmpOp::Lt, false) => "jb",
            (CmpOp::Le, false) => "jbe",
            (CmpOp::Gt, false) => "ja",
            (CmpOp::Ge, false) => "jae",
        };
        b.ins(
            format!("{jcc} {exit}f"),
            &[],
            &Self::keep_regs(Vec::new(), keep),
        );
    }

    fn store(&self, b: &mut Builder, addr: &Mem, value: Src, kind: WordKind) {
        Self::mov_to_mem(b, addr, value, kind);
    }

    fn memcpy(&self, b: &mut Builder, dst: &Mem, src: &Mem, len: CopyLen) {
        let t = b.vreg();
        let tr = Reg::V(t);
        let mut uses = Self::mem_regs(dst);
        uses.extend(Self::mem_regs(src));
        match len {
            CopyLen::Const(n) => {
                // Unrolled: 8-byte moves, then a 4/2/1-byte tail. x86 allows unaligned accesses.
                let mut off = 0u64;
                for w in [8u32, 4, 2, 1] {
                    while n - off >= u64::from(w) {
                        let o = i64::try_from(off).expect("memcpy length is capped");
                        let load = format!(
                            "mov {}, {} {}",
                            b.r(tr, modifier(w)),
                            ptr_kw(w),
                            Self::mem(b, src, o)
                        );
                        let store = format!(
                            "mov {} {}, {}",
                            ptr_kw(w),
                            Self::mem(b, dst, o),
                            b.r(tr, modifier(w))
                        );
                        b.ins(load, &[t], &uses);
                        let mut u = uses.clone();
                        u.push(tr);
                        b.ins(store, &[], &u);
                        off += u64::from(w);
                    }
                }
            }
            CopyLen::Reg(len) => {
                // Loop of 8-byte moves while 8 bytes remain, then the 4/2/1 tail from len's low bits.
                // Emitted as one early-clobber group: the counter and temporary never share a register
                // with the addresses or the length, which stay live across the back edge.
                let i = b.vreg();
                let ir = Reg::V(i);
                let (l1, l2, l3, l4, l5) = (b.label(), b.label(), b.label(), b.label(), b.label());
                let base_only = |m: &Mem| Mem {
                    base: m.base,
                    disp: Disp::Reg(ir),
                };
                let with_imm = |m: &Mem| match m.disp {
                    Disp::Imm(v) => v,
                    _ => 0,
                };
                // Addresses with a register displacement are folded into a temporary first.
                let mut group = Vec::new();
                let fold =
                    |b: &mut Builder, m: &Mem, group: &mut Vec<String>| -> (Mem, Vec<VReg>) {
                        if let Disp::Reg(_) = m.disp {
                            let f = b.vreg();
                            group.push(format!(
                                "lea {}, {}",
                                b.r(Reg::V(f), ""),
                                Self::mem(b, m, 0)
                            ));
                            (
                                Mem {
                                    base: Reg::V(f),
                                    disp: Disp::None,
                                },
                                vec![f],
                            )
                        } else {
                            (*m, vec![])
                        }
                    };
                let (dm, mut defs) = fold(b, dst, &mut group);
                let (sm, more) = fold(b, src, &mut group);
                defs.extend(more);
                let (dimm, simm) = (with_imm(&dm), with_imm(&sm));
                let (dmi, smi) = (base_only(&dm), base_only(&sm));
                let tq = b.r(tr, "");
                let ln = b.r(len, "");
                let iq = b.r(ir, "");
                group.push(format!("xor {0}, {0}", b.r(ir, "e")));
                group.push(format!("{l1}:"));
                group.push(format!("lea {tq}, [{iq} + 8]"));
                group.push(format!("cmp {tq}, {ln}"));
                group.push(format!("ja {l2}f"));
                group.push(format!("mov {tq}, qword ptr {}", Self::mem(b, &smi, simm)));
                group.push(format!("mov qword ptr {}, {tq}", Self::mem(b, &dmi, dimm)));
                group.push(format!("add {iq}, 8"));
                group.push(format!("jmp {l1}b"));
                group.push(format!("{l2}:"));
                for (w, skip) in [(4u32, l3), (2, l4), (1, l5)] {
                    group.push(format!("test {ln}, {w}"));
                    group.push(format!("jz {skip}f"));
                    group.push(format!(
                        "mov {}, {} {}",
                        b.r(tr, modifier(w)),
                        ptr_kw(w),
                        Self::mem(b, &smi, simm)
                    ));
                    group.push(format!(
                        "mov {} {}, {}",
                        ptr_kw(w),
                        Self::mem(b, &dmi, dimm),
                        b.r(tr, modifier(w))
                    ));
                    if w != 1 {
                        group.push(format!("add {iq}, {w}"));
                    }
                    group.push(format!("{skip}:"));
                }
                defs.extend([t, i]);
                uses.push(len);
                for (k, line) in group.iter().enumerate() {
                    // The whole group shares one liveness point: defs and uses on every line.
                    let _ = k;
                    b.ins_early_clobber(line.clone(), &defs, &uses);
                }
            }
        }
    }

    fn commit(&self, b: &mut Builder, addr: &Mem, value: Src, kind: WordKind, _commit: CommitKind) {
        // `store_release` needs no fence on x86 (TSO); the block itself is a compiler barrier.
        Self::mov_to_mem(b, addr, value, kind);
    }

    fn set_status(&self, b: &mut Builder, status: u32) {
        if status == 0 {
            b.line("xor {status:e}, {status:e}");
        } else {
            b.line(format!("mov {{status:e}}, {status}"));
        }
    }

    fn jump_back(&self, b: &mut Builder, label: u32) {
        b.line(format!("jmp {label}b"));
    }

    fn abort_stub(&self, b: &mut Builder, labels: &Labels) {
        b.line(".pushsection __rseq_failure, \"ax\"");
        b.line(".byte 0x0f, 0xb9, 0x3d");
        b.line(format!(".long {:#010x}", Arch::X86_64.signature()));
        b.line(format!("{}:", labels.abort));
    }

    fn supports_inject(&self) -> bool {
        true
    }

    fn inject_delay(&self, b: &mut Builder, delays: Reg, point: InjectPoint) {
        // `count = delays[point]; while count-- != 0 {}` on the status register (free inside the
        // section). `sub` sets CF only when the count was 0, so the loop runs `count` times.
        let top = b.label();
        b.line(format!(
            "mov {{status}}, qword ptr [rip + {} + {}]",
            b.r(delays, ""),
            8 * point.index()
        ));
        b.line(format!("{top}:"));
        b.line("sub {status}, 1");
        b.line(format!("jae {top}b"));
    }

    fn descriptor(&self, b: &mut Builder, labels: &Labels, exits: &[u32]) {
        let Labels {
            start,
            descriptor,
            post_commit,
            abort,
            ..
        } = *labels;
        b.line(".popsection");
        b.line(".pushsection __rseq_cs, \"aw\"");
        b.line(".balign 32");
        b.line(format!("{descriptor}:"));
        b.line(".long 0, 0");
        b.line(format!(
            ".quad {start}b, {post_commit}b - {start}b, {abort}b"
        ));
        b.line(".popsection");
        // "R" (SHF_GNU_RETAIN): nothing references the arrays, so --gc-sections would drop them.
        b.line(".pushsection __rseq_cs_ptr_array, \"awR\"");
        b.line(format!(".quad {descriptor}b"));
        b.line(".popsection");
        if !exits.is_empty() {
            b.line(".pushsection __rseq_exit_point_array, \"awR\"");
            for e in exits {
                b.line(format!(".quad {start}b, {e}b"));
            }
            b.line(".popsection");
        }
    }
}
