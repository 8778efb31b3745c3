//! The per-architecture interface: the [`ArchEmitter`] trait (the building blocks every emitter
//! implements), the fixed [`Labels`] of a block, [`CopyLen`], and the offsets of the kernel's
//! `struct rseq` the emitters address.

use super::{Arch, Builder, CopyLoop, Disp, Mem, Reg, Src, VReg};
use crate::ir::{BinOp, CmpOp, CommitKind, IndexMode, InjectPoint};
use crate::semantics::Compare;
use crate::ty::WordKind;

/// A `memcpy` length as the emitter sees it.
#[derive(Clone, Copy, Debug)]
pub enum CopyLen {
    Const(u64),
    Reg(Reg),
}

/// What the driver needs to know of an architecture.
#[derive(Clone, Copy, Debug)]
pub struct Facts {
    pub arch: Arch,
    /// Pointer width in bytes (the width of `usize`, `isize` and pointers).
    pub pointer_bytes: u32,
    /// General-purpose registers available to asm operands.
    pub registers: usize,
    /// The `asm!` register class of every operand (`reg_nonzero` on ppc64, `reg_addr` on s390x:
    /// there register 0 reads as the literal 0 where a base register is expected).
    pub reg_class: &'static str,
    /// Whether constant operands (`offset_of!`, assumed to fit an immediate) may be `const`
    /// operands.
    pub const_operands: bool,
    /// The unconditional branch (`b`, `j`, `jmp`): stub jumps and the copy loop's back edge.
    pub jump: &'static str,
    /// The directive writing the abort signature (`.long`, `.word`, `.inst`: the word as data, or
    /// as an instruction where the disassembler should show it as one).
    pub signature_directive: &'static str,
    /// Whether the signature needs `.balign 4` first (compressed or variable-length encodings).
    pub signature_align: bool,
}

/// Where a branch out of the section goes: the exit's label, and the values its decode reads
/// (kept live up to the branch).
#[derive(Clone, Copy, Debug)]
pub struct ExitTo<'a> {
    pub label: u32,
    pub keep: &'a [VReg],
}

/// A shift as the hardware does it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shift {
    Left,
    /// Logical: zero-filling.
    Right,
    /// Arithmetic: sign-filling (`>>` of a signed type).
    RightArith,
}

/// The labels of the fixed parts of a block.
#[derive(Clone, Copy, Debug)]
pub struct Labels {
    pub start: u32,
    pub descriptor: u32,
    pub post_commit: u32,
    pub abort: u32,
    pub end: u32,
}

/// Offset of `rseq_cs` in the kernel's `struct rseq` (checked against the runtime at compile time).
pub const AREA_RSEQ_CS_OFFSET: u32 = 8;
/// Offset of `cpu_id`.
pub const AREA_CPU_ID_OFFSET: u32 = 4;
/// Offset of `mm_cid`.
pub const AREA_MM_CID_OFFSET: u32 = 24;

pub const LABELS: Labels = Labels {
    start: 2,
    descriptor: 3,
    post_commit: 4,
    abort: 5,
    end: 6,
};

/// The building blocks of one architecture. Registers are pointer-wide words holding values in
/// canonical form (zero- or sign-extended per type, [`crate::semantics`]); `keep` lists registers the
/// decode reads after an exit.
pub trait ArchEmitter: Sync {
    /// The architecture's facts.
    fn facts(&self) -> &'static Facts;
    fn arch(&self) -> Arch {
        self.facts().arch
    }
    fn pointer_bytes(&self) -> u32 {
        self.facts().pointer_bytes
    }
    fn registers(&self) -> usize {
        self.facts().registers
    }
    fn reg_class(&self) -> &'static str {
        self.facts().reg_class
    }
    fn const_operands(&self) -> bool {
        self.facts().const_operands
    }
    /// Whether an immediate may be passed to the building blocks as `Src::Imm` (they build any
    /// value that does not fit an instruction's field in a scratch register, unless told here).
    fn imm_fits(&self, _value: i64) -> bool {
        true
    }
    /// Stores the descriptor's address into `rseq_cs` of the area (before the start label).
    fn store_descriptor_pointer(&self, b: &mut Builder, area: Reg, labels: &Labels);
    /// Defines a label.
    fn label(&self, b: &mut Builder, label: u32) {
        b.line(format!("{label}:"));
    }
    /// Reads the thread's index (cpu_id or mm_cid) into `dst`: a zero-extending 32-bit load.
    fn read_index(&self, b: &mut Builder, area: Reg, mode: IndexMode, dst: VReg) {
        let off = match mode {
            IndexMode::CpuId => AREA_CPU_ID_OFFSET,
            IndexMode::MmCid => AREA_MM_CID_OFFSET,
        };
        let field = Mem {
            base: area,
            disp: Disp::Imm(i64::from(off)),
        };
        self.load(b, dst, &field, 0, WordKind::U32);
    }
    /// Leaves through `exit` unless `idx < len` (unsigned): a compare-exit on `idx >= len`.
    fn check_index_bounds(&self, b: &mut Builder, idx: VReg, len: Reg, exit: u32, keep: &[VReg]) {
        let (idx, len) = (Src::Reg(Reg::V(idx)), Src::Reg(len));
        let cmp = Compare {
            op: CmpOp::Ge,
            signed: false,
        };
        self.compare_exit(b, idx, cmp, len, ExitTo { label: exit, keep });
    }
    /// Leaves through `exit` unless `idx == expected`: a compare-exit on `idx != expected`.
    fn check_expected_cpu(
        &self,
        b: &mut Builder,
        idx: VReg,
        expected: Src,
        exit: u32,
        keep: &[VReg],
    ) {
        let cmp = Compare {
            op: CmpOp::Ne,
            signed: false,
        };
        self.compare_exit(
            b,
            Src::Reg(Reg::V(idx)),
            cmp,
            expected,
            ExitTo { label: exit, keep },
        );
    }
    /// `dst = base + idx * stride`.
    fn slot_address(&self, b: &mut Builder, dst: VReg, idx: VReg, base: Reg, stride: Reg);
    /// `dst = src`.
    fn mov(&self, b: &mut Builder, dst: VReg, src: Src);
    /// `dst = *(addr + offset)` with the width and extension of `kind` (`offset`: a chunk of a
    /// copy, 0 for the `load` step).
    fn load(&self, b: &mut Builder, dst: VReg, addr: &Mem, offset: i64, kind: WordKind);

    /// After a `load_acquire`'s load: a barrier ordering that load before every later load and
    /// store. None on x86_64 and s390x, whose loads are never reordered with later accesses.
    fn acquire_fence(&self, _b: &mut Builder) {}
    /// Before a `commit store_release`'s store, inside the section: a barrier ordering every
    /// earlier load and store before the store that follows. Required: an architecture says "none"
    /// explicitly (x86_64, s390x).
    fn release_fence(&self, b: &mut Builder);
    /// `dst = dst op rhs` for `+ - & | ^` on whole registers (wrapping); never a shift.
    fn alu(&self, b: &mut Builder, op: BinOp, dst: VReg, rhs: Src);
    /// `dst = dst shift count`, `0 < count < bits` of the type.
    fn shift_imm(&self, b: &mut Builder, shift: Shift, dst: VReg, count: i64);
    /// `dst = dst shift (count mod bits)`, `bits` the type's width (8 to 64): the emitter masks
    /// the count unless its shift instruction already takes it modulo `bits`.
    fn shift_reg(&self, b: &mut Builder, shift: Shift, dst: VReg, count: Reg, bits: u32);
    /// `dst = dst op rhs` as [`semantics::arith`](crate::semantics::arith)`(op, kind)` defines it,
    /// from the primitives: an immediate shift count is masked here (a zero count emits nothing),
    /// `>>` is arithmetic for signed kinds, and the result is re-extended where the rule says so.
    fn arith(&self, b: &mut Builder, op: BinOp, dst: VReg, rhs: Src, kind: WordKind) {
        let rule = crate::semantics::arith(op, kind);
        let bits = kind.width(self.pointer_bytes()) * 8;
        let shift = match op {
            BinOp::Shl => Some(Shift::Left),
            BinOp::Shr if rule.arithmetic_shift => Some(Shift::RightArith),
            BinOp::Shr => Some(Shift::Right),
            _ => None,
        };
        match (shift, rhs) {
            (Some(shift), Src::Imm(c)) => {
                let c = c & i64::from(bits - 1);
                if c != 0 {
                    self.shift_imm(b, shift, dst, c);
                }
            }
            (Some(shift), Src::Reg(r)) => self.shift_reg(b, shift, dst, r, bits),
            (None, _) => self.alu(b, op, dst, rhs),
        }
        if rule.renormalize {
            self.normalize(b, dst, kind);
        }
    }
    /// Re-extends `dst` to the canonical form of `kind` (truncating to its width): the
    /// [`Conversion`](crate::semantics::Conversion) to `kind` that is not `Keep`.
    fn normalize(&self, b: &mut Builder, dst: VReg, kind: WordKind);
    /// Leaves through `to` when `lhs cmp.op rhs` holds, compared on whole registers, signed when
    /// `cmp.signed` ([`semantics::compare`](crate::semantics::compare)).
    fn compare_exit(&self, b: &mut Builder, lhs: Src, cmp: Compare, rhs: Src, to: ExitTo);
    /// Speculative store of `kind`'s width to `addr + offset` (`offset` as for [`load`](Self::load)).
    fn store(&self, b: &mut Builder, addr: &Mem, offset: i64, value: Src, kind: WordKind);
    /// The lines of the runtime-length copy loop (`arch/copy.rs`); `None` only for an
    /// emitter that overrides [`memcpy`](Self::memcpy).
    fn copy_loop(&self) -> Option<&dyn CopyLoop>;
    /// Speculative copy of `len` bytes, word-wise: composed from the primitives
    /// (`arch/copy.rs`) unless an architecture has a better form.
    fn memcpy(&self, b: &mut Builder, dst: &Mem, src: &Mem, len: CopyLen) {
        super::copy::memcpy(self, b, dst, src, len);
    }
    /// The committing store: the last instruction of the section (a release commit puts
    /// [`release_fence`](Self::release_fence) before it; aarch64 uses `stlr` instead).
    fn commit(&self, b: &mut Builder, addr: &Mem, value: Src, kind: WordKind, commit: CommitKind) {
        if commit == CommitKind::StoreRelease {
            self.release_fence(b);
        }
        self.store(b, addr, 0, value, kind);
    }
    /// Sets the status register (outside the section).
    fn set_status(&self, b: &mut Builder, status: u32);
    /// Jumps to a label defined earlier.
    fn jump_back(&self, b: &mut Builder, label: u32) {
        b.line(format!("{} {label}b", self.facts().jump));
    }
    /// Places the signature right before the abort label. By default the stubs stay in the
    /// function's section (`common.rs`): the committed path jumps over them to label
    /// `AFTER_STUBS` (`arch/common.rs`), then the signature word and the label follow.
    fn abort_stub(&self, b: &mut Builder, labels: &Labels) {
        let f = self.facts();
        b.line(format!("{} {}f", f.jump, super::common::AFTER_STUBS));
        if f.signature_align {
            b.line(".balign 4");
        }
        b.line(format!(
            "{} {:#010x}",
            f.signature_directive,
            f.arch.signature()
        ));
        b.line(format!("{}:", labels.abort));
    }
    /// The descriptor, its pointer-array entry, and the exit-point entries (and the label after
    /// the stubs, by default: `common::descriptor64` / `descriptor32`).
    fn descriptor(&self, b: &mut Builder, labels: &Labels, exits: &[u32]) {
        if self.pointer_bytes() == 8 {
            super::common::descriptor64(b, labels, exits);
        } else {
            super::common::descriptor32(b, labels, exits);
        }
    }
    /// Whether [`ArchEmitter::inject_delay`] is implemented. Without it, `Instrument::inject` has no
    /// effect on this architecture: its block is the default emission (documented in `docs/DSL.md`).
    fn supports_inject(&self) -> bool {
        false
    }
    /// A delay loop of `delays[point]` iterations (`delays`: the `sym` input of the runtime's table
    /// of `u64` counts). It may only clobber flags and the status register `{status}`, which is an
    /// `out` register written only after the section, so the loop needs no register of its own.
    fn inject_delay(&self, b: &mut Builder, delays: Reg, point: InjectPoint) {
        let _ = (b, delays, point);
        unreachable!("inject_delay called on an emitter without supports_inject")
    }
}
