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
    Arch, ArchEmitter, Builder, CopyLen, CopyLoop, Disp, ExitTo, Facts, Labels, Mem, Operands, Reg,
    Shift, Src, VReg, AREA_RSEQ_CS_OFFSET as RSEQ_CS_OFFSET,
};
use crate::ir::{BinOp, CmpOp, InjectPoint};
use crate::semantics::Compare;
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

fn shift_name(shift: Shift) -> &'static str {
    match shift {
        Shift::Left => "shl",
        Shift::Right => "shr",
        Shift::RightArith => "sar",
    }
}

impl X86_64 {
    /// A source operand: a register at `width` bytes, or an immediate.
    fn src(o: &mut Operands, s: Src, width: u32) -> String {
        match s {
            Src::Reg(r) => o.use_mod(r, modifier(width)),
            Src::Imm(v) => v.to_string(),
        }
    }

    /// A memory operand `[base + index + disp]` at `m + extra`.
    fn mem(o: &mut Operands, m: &Mem, extra: i64) -> String {
        let mut s = format!("[{}", o.use_(m.base));
        let disp = match m.disp {
            Disp::None => extra,
            Disp::Imm(v) => v + extra,
            Disp::Reg(r) => {
                s.push_str(" + ");
                s.push_str(&o.use_(r));
                extra
            }
        };
        match disp {
            0 => {}
            d if d < 0 => s.push_str(&format!(" - {}", d.unsigned_abs())),
            d => s.push_str(&format!(" + {d}")),
        }
        s.push(']');
        s
    }
}

impl ArchEmitter for X86_64 {
    fn facts(&self) -> &'static Facts {
        &Facts {
            arch: Arch::X86_64,
            pointer_bytes: 8,
            registers: 13,
            reg_class: "reg",
            const_operands: true,
            jump: "jmp",
            signature_directive: ".long",
            signature_align: false,
        }
    }

    fn imm_fits(&self, value: i64) -> bool {
        i32::try_from(value).is_ok()
    }

    fn store_descriptor_pointer(&self, b: &mut Builder, area: Reg, labels: &Labels) {
        let t = b.vreg();
        b.emit(|o| format!("lea {}, [rip + {}f]", o.def(t), labels.descriptor));
        b.emit(|o| {
            let a = o.use_(area);
            format!("mov qword ptr [{a} + {RSEQ_CS_OFFSET}], {}", o.use_(t))
        });
    }

    fn slot_address(&self, b: &mut Builder, dst: VReg, idx: VReg, base: Reg, stride: Reg) {
        b.emit_copy(|o| format!("mov {}, {}", o.def(dst), o.use_(idx)));
        b.emit(|o| format!("imul {}, {}", o.def_use(dst), o.use_(stride)));
        b.emit(|o| format!("add {}, {}", o.def_use(dst), o.use_(base)));
    }

    fn mov(&self, b: &mut Builder, dst: VReg, src: Src) {
        match src {
            Src::Reg(r) => b.emit_copy(|o| format!("mov {}, {}", o.def(dst), o.use_(r))),
            Src::Imm(0) => b.emit(|o| format!("xor {0}, {0}", o.def_mod(dst, "e"))),
            Src::Imm(v) => b.emit(|o| format!("mov {}, {v}", o.def(dst))),
        }
    }

    fn release_fence(&self, _b: &mut Builder) {
        // None: x86 is TSO; the asm block itself is a compiler barrier.
    }

    fn load(&self, b: &mut Builder, dst: VReg, addr: &Mem, offset: i64, kind: WordKind) {
        let w = width(kind);
        let (insn, modifier, ptr) = match (w, kind.signed()) {
            (8, _) => ("mov", "", "qword ptr"),
            (4, false) => ("mov", "e", "dword ptr"),
            (4, true) => ("movsxd", "", "dword ptr"),
            (_, false) => ("movzx", "e", ptr_kw(w)),
            (_, true) => ("movsx", "", ptr_kw(w)),
        };
        b.emit(|o| {
            let d = o.def_mod(dst, modifier);
            format!("{insn} {d}, {ptr} {}", Self::mem(o, addr, offset))
        });
    }

    fn alu(&self, b: &mut Builder, op: BinOp, dst: VReg, rhs: Src) {
        let m = match op {
            BinOp::Add => "add",
            BinOp::Sub => "sub",
            BinOp::And => "and",
            BinOp::Or => "or",
            _ => "xor",
        };
        b.emit(|o| format!("{m} {}, {}", o.def_use(dst), Self::src(o, rhs, 8)));
    }

    fn shift_imm(&self, b: &mut Builder, shift: Shift, dst: VReg, count: i64) {
        let m = shift_name(shift);
        b.emit(|o| format!("{m} {}, {count}", o.def_use(dst)));
    }

    fn shift_reg(&self, b: &mut Builder, shift: Shift, dst: VReg, count: Reg, bits: u32) {
        // 64-bit shifts take the count in `cl` modulo 64; narrower types mask it first.
        b.clobber("rcx");
        b.emit(|o| format!("mov ecx, {}", o.use_mod(count, "e")));
        if bits < 64 {
            b.line(format!("and ecx, {}", bits - 1));
        }
        let m = shift_name(shift);
        b.emit(|o| format!("{m} {}, cl", o.def_use(dst)));
    }

    fn normalize(&self, b: &mut Builder, dst: VReg, kind: WordKind) {
        // `insn {dst:to}, {dst:from}`.
        let (insn, to, from) = match (width(kind), kind.signed()) {
            (8, _) => return,
            (4, false) => ("mov", "e", "e"),
            (4, true) => ("movsxd", "", "e"),
            (2, false) => ("movzx", "e", "x"),
            (2, true) => ("movsx", "", "x"),
            (_, false) => ("movzx", "e", "l"),
            (_, true) => ("movsx", "", "l"),
        };
        b.emit(|o| format!("{insn} {}, {}", o.def_mod(dst, to), o.use_mod(dst, from)));
    }

    fn compare_exit(&self, b: &mut Builder, lhs: Src, cmp: Compare, rhs: Src, to: ExitTo) {
        let (Compare { op, signed }, ExitTo { label: exit, keep }) = (cmp, to);
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
        b.emit(|o| {
            let l = Self::src(o, lhs, 8);
            match (op, rhs) {
                (CmpOp::Eq | CmpOp::Ne, Src::Imm(0)) => format!("test {l}, {l}"),
                _ => format!("cmp {l}, {}", Self::src(o, rhs, 8)),
            }
        });
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
        b.emit_keep(keep, |_| format!("{jcc} {exit}f"));
    }

    fn store(&self, b: &mut Builder, addr: &Mem, offset: i64, value: Src, kind: WordKind) {
        let w = width(kind);
        b.emit(|o| {
            let m = Self::mem(o, addr, offset);
            format!("mov {} {m}, {}", ptr_kw(w), Self::src(o, value, w))
        });
    }

    fn copy_loop(&self) -> Option<&dyn CopyLoop> {
        None
    }

    fn memcpy(&self, b: &mut Builder, dst: &Mem, src: &Mem, len: CopyLen) {
        let t = b.vreg();
        match len {
            CopyLen::Const(n) => {
                // Unrolled: 8-byte moves, then a 4/2/1-byte tail. x86 allows unaligned accesses.
                let mut off = 0u64;
                for w in [8u32, 4, 2, 1] {
                    while n - off >= u64::from(w) {
                        let k = i64::try_from(off).expect("memcpy length is capped");
                        let (m, ptr) = (modifier(w), ptr_kw(w));
                        b.emit(|o| {
                            let d = o.def_mod(t, m);
                            format!("mov {d}, {ptr} {}", Self::mem(o, src, k))
                        });
                        b.emit(|o| {
                            let d = Self::mem(o, dst, k);
                            format!("mov {ptr} {d}, {}", o.use_mod(t, m))
                        });
                        off += u64::from(w);
                    }
                }
            }
            CopyLen::Reg(len) => {
                // Loop of 8-byte moves while 8 bytes remain, then the 4/2/1 tail from len's low bits.
                // Emitted as one early-clobber group: the counter and temporary never share a register
                // with the addresses or the length, which stay live across the back edge.
                let i = b.vreg();
                let (l1, l2, l3, l4, l5) = (b.label(), b.label(), b.label(), b.label(), b.label());
                // Addresses with a register displacement are folded into a temporary first.
                let fold_reg =
                    |b: &mut Builder, m: &Mem| matches!(m.disp, Disp::Reg(_)).then(|| b.vreg());
                let (fd, fs) = (fold_reg(b, dst), fold_reg(b, src));
                b.emit_group(|o| {
                    let mut group = Vec::new();
                    // `m` as `[base + i]` plus an immediate, its address folded into `f` first if
                    // it has an index.
                    let mut fold = |o: &mut Operands, m: &Mem, f: Option<VReg>| {
                        let (base, imm) = match (f, m.disp) {
                            (Some(f), _) => {
                                let lea = format!("lea {}, {}", o.def(f), Self::mem(o, m, 0));
                                group.push(lea);
                                (Reg::V(f), 0)
                            }
                            (None, Disp::Imm(v)) => (m.base, v),
                            (None, _) => (m.base, 0),
                        };
                        let disp = Disp::Reg(Reg::V(i));
                        (Mem { base, disp }, imm)
                    };
                    let (dm, dimm) = fold(o, dst, fd);
                    let (sm, simm) = fold(o, src, fs);
                    let tq = o.def(t);
                    let iq = o.def(i);
                    let ln = o.use_(len);
                    group.push(format!("xor {0}, {0}", o.def_mod(i, "e")));
                    group.push(format!("{l1}:"));
                    group.push(format!("lea {tq}, [{iq} + 8]"));
                    group.push(format!("cmp {tq}, {ln}"));
                    group.push(format!("ja {l2}f"));
                    group.push(format!("mov {tq}, qword ptr {}", Self::mem(o, &sm, simm)));
                    group.push(format!("mov qword ptr {}, {tq}", Self::mem(o, &dm, dimm)));
                    group.push(format!("add {iq}, 8"));
                    group.push(format!("jmp {l1}b"));
                    group.push(format!("{l2}:"));
                    for (w, skip) in [(4u32, l3), (2, l4), (1, l5)] {
                        let (tw, ptr) = (o.def_mod(t, modifier(w)), ptr_kw(w));
                        group.push(format!("test {ln}, {w}"));
                        group.push(format!("jz {skip}f"));
                        group.push(format!("mov {tw}, {ptr} {}", Self::mem(o, &sm, simm)));
                        group.push(format!("mov {ptr} {}, {tw}", Self::mem(o, &dm, dimm)));
                        if w != 1 {
                            group.push(format!("add {iq}, {w}"));
                        }
                        group.push(format!("{skip}:"));
                    }
                    group
                });
            }
        }
    }

    fn set_status(&self, b: &mut Builder, status: u32) {
        if status == 0 {
            b.line("xor {status:e}, {status:e}");
        } else {
            b.line(format!("mov {{status:e}}, {status}"));
        }
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
        let slot = 8 * point.index();
        b.emit(|o| {
            format!(
                "mov {{status}}, qword ptr [rip + {} + {slot}]",
                o.use_(delays)
            )
        });
        b.line(format!("{top}:"));
        b.line("sub {status}, 1");
        b.line(format!("jae {top}b"));
    }

    fn descriptor(&self, b: &mut Builder, labels: &Labels, exits: &[u32]) {
        // Closes `__rseq_failure` (opened by `abort_stub`); no label after the stubs.
        b.line(".popsection");
        super::common::tables(b, labels, exits, super::common::quad);
    }
}
