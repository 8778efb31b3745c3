//! Emit: lowers a validated [`Sequence`] to one asm block per architecture, as data.
//!
//! Every architecture implements [`ArchEmitter`], the same set of building blocks (store descriptor
//! pointer, index read and checks, load, arithmetic, compare-exit, speculative store, memcpy,
//! commit, abort stub with signature, descriptor). The driver in this module walks the steps, calls
//! the building blocks with virtual registers, allocates scratch registers by liveness, and checks
//! the register budget. Adding an architecture means adding one module and one [`Arch::emitter`] arm.
//!
//! Layout of every block (labels are numeric: 2 start, 3 descriptor, 4 post-commit, 5 abort,
//! 6 end, 20+ exits and loops):
//!
//! ```text
//!     <store descriptor address into rseq_cs>
//! 2:  <read index> <checks> <loads, arithmetic, compare-exits, speculative stores> <commit store>
//! 4:  <status = 0>
//! 6:
//!     .pushsection __rseq_failure   <signature> 5: <status = 1> jmp 6b   20: <status = k> jmp 6b ...
//!     .pushsection __rseq_cs        3: descriptor {0, 0, 2b, 4b - 2b, 5b}
//!     .pushsection __rseq_cs_ptr_array        3b
//!     .pushsection __rseq_exit_point_array    (2b, 20b) ...
//! ```

pub mod aarch64;
pub mod arm;
mod common;
pub mod loongarch64;
pub mod ppc64le;
pub mod riscv64;
pub mod s390x;
pub mod x86_64;

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::error::{Error, ErrorKind};
use crate::ir::{
    BinOp, CmpOp, CommitKind, DebugCheckKind, ExitKind, IndexMode, InjectPoint, MemcpyLen, Node,
    Operand, Sequence, StepKind, STATUS_ABORTED,
};
use crate::ty::{canonical, WordKind};

/// An architecture rseq-dsl knows about (emitter or not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    X86_64,
    Aarch64,
    Riscv64,
    Arm,
    Ppc64le,
    S390x,
    Loongarch64,
}

impl Arch {
    pub const ALL: [Arch; 7] = [
        Arch::X86_64,
        Arch::Aarch64,
        Arch::Riscv64,
        Arch::Arm,
        Arch::Ppc64le,
        Arch::S390x,
        Arch::Loongarch64,
    ];

    /// Name used in dumps, golden file paths and errors.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::Riscv64 => "riscv64",
            Arch::Arm => "arm",
            Arch::Ppc64le => "ppc64le",
            Arch::S390x => "s390x",
            Arch::Loongarch64 => "loongarch64",
        }
    }

    pub fn from_name(name: &str) -> Option<Arch> {
        Arch::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The `cfg` that selects this architecture: `(target_arch, target_endian)`.
    pub fn cfg(self) -> (&'static str, Option<&'static str>) {
        match self {
            Arch::Ppc64le => ("powerpc64", Some("little")),
            other => (other.name(), None),
        }
    }

    /// The rseq abort signature registered by glibc and by the runtime on this architecture.
    pub fn signature(self) -> u32 {
        match self {
            Arch::X86_64 => 0x5305_3053,
            Arch::Aarch64 => 0xd428_bc00,
            Arch::Riscv64 => 0xf140_1073,
            Arch::Arm => 0xe7f5_def3,
            Arch::Ppc64le => 0x0fe5_000b,
            Arch::S390x => 0xb2ff_0fff,
            Arch::Loongarch64 => 0x002a_0010,
        }
    }

    /// The emitter, for architectures that have one. Others run the fallback body only.
    pub fn emitter(self) -> Option<&'static dyn ArchEmitter> {
        match self {
            Arch::X86_64 => Some(&x86_64::X86_64),
            Arch::Aarch64 => Some(&aarch64::Aarch64),
            Arch::Riscv64 => Some(&riscv64::Riscv64),
            Arch::Arm => Some(&arm::Arm),
            Arch::Ppc64le => Some(&ppc64le::Ppc64le),
            Arch::S390x => Some(&s390x::S390x),
            Arch::Loongarch64 => Some(&loongarch64::Loongarch64),
        }
    }
}

/// A virtual register: one value in the section, mapped to a scratch register by the register
/// allocator (`allocate`).
pub type VReg = u32;

/// A register operand: a virtual (scratch) register or an input operand of the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reg {
    V(VReg),
    In(usize),
}

/// A source operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Src {
    Reg(Reg),
    /// An immediate, in canonical 64-bit form (sign- or zero-extended per its type).
    Imm(i64),
}

/// A memory operand: `base + disp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mem {
    pub base: Reg,
    pub disp: Disp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disp {
    None,
    Imm(i64),
    Reg(Reg),
}

/// What an input operand carries (the macro turns each into a Rust expression).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputSource {
    /// The thread's rseq area (`*mut RseqArea`).
    Area,
    /// Slot 0 address of `PerCpu` parameter `p`.
    Base(usize),
    /// Slot stride of parameter `p`.
    Stride(usize),
    /// Slot count of parameter `p`.
    Len(usize),
    /// A word parameter (as `Word::to_word`).
    Param(usize),
    /// A pre-evaluated operand (as `Word::to_word`).
    Ext(usize),
    /// The address of the slot local `l` (`on_cpu`), computed before the section.
    SlotAddr(usize),
    /// The runtime's table of delay counts per injection point, as a `sym` operand (a `const`
    /// input: it takes no register). Only with `Instrument::inject`.
    InjectDelays,
    /// Address of an array of words holding the block's spilled inputs ([`AsmBlock::spilled`], in
    /// that order), loaded inside the section where they are used. Only in blocks that would not
    /// fit the architecture's registers with every input in a register of its own.
    Spill,
}

/// An input operand: `name = in(reg) <source>`, or `name = const <expr>` for constant operands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    pub name: String,
    pub source: InputSource,
    /// A `const` operand: substituted as an integer, takes no register.
    pub is_const: bool,
}

/// One instruction (or label, or directive) with virtual registers.
#[derive(Clone, Debug)]
pub struct Insn {
    /// Template text; virtual registers appear as `{vN}` / `{vN:mod}`.
    pub text: String,
    pub defs: Vec<VReg>,
    pub uses: Vec<VReg>,
    /// `dst = src` register copy: allocated to the same register when `src` dies here (then elided).
    pub copy: Option<(VReg, VReg)>,
    /// Defs are written before all uses are read (multi-instruction blocks): no register sharing.
    pub early_clobber: bool,
    /// The source step or role this line comes from.
    pub note: String,
}

/// Accumulates instructions for one block.
#[derive(Debug)]
pub struct Builder {
    pub insns: Vec<Insn>,
    pub inputs: Vec<Input>,
    /// Inputs passed in memory through the `Spill` input (word `k` at `k * pointer bytes`).
    pub spilled: Vec<Input>,
    /// Explicit registers the block clobbers (outside the register class pool).
    pub clobbers: Vec<&'static str>,
    next_vreg: VReg,
    next_label: u32,
    note: String,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            insns: Vec::new(),
            inputs: Vec::new(),
            spilled: Vec::new(),
            clobbers: Vec::new(),
            next_vreg: 0,
            next_label: 20,
            note: String::new(),
        }
    }
}

impl Builder {
    pub fn vreg(&mut self) -> VReg {
        self.next_vreg += 1;
        self.next_vreg - 1
    }

    /// A fresh numeric label, never made only of 0s and 1s (Intel syntax reads those as binary).
    pub fn label(&mut self) -> u32 {
        loop {
            let l = self.next_label;
            self.next_label += 1;
            if l.to_string().chars().any(|c| c != '0' && c != '1') {
                return l;
            }
        }
    }

    pub fn input(&mut self, source: InputSource, name: String) -> Reg {
        self.input_kind(source, name, false)
    }

    /// A `const` input (an integer substituted into the template).
    pub fn const_input(&mut self, source: InputSource, name: String) -> Reg {
        self.input_kind(source, name, true)
    }

    fn input_kind(&mut self, source: InputSource, name: String, is_const: bool) -> Reg {
        if let Some(i) = self.inputs.iter().position(|i| i.source == source) {
            return Reg::In(i);
        }
        self.inputs.push(Input {
            name,
            source,
            is_const,
        });
        Reg::In(self.inputs.len() - 1)
    }

    /// Whether `reg` is a `const` input (usable only where an immediate is).
    pub fn is_const(&self, reg: Reg) -> bool {
        matches!(reg, Reg::In(i) if self.inputs[i].is_const)
    }

    pub fn clobber(&mut self, reg: &'static str) {
        if !self.clobbers.contains(&reg) {
            self.clobbers.push(reg);
        }
    }

    pub fn set_note(&mut self, note: impl Into<String>) {
        self.note = note.into();
    }

    /// The note attached to the next instructions.
    pub fn note(&self) -> &str {
        &self.note
    }

    /// Template text of a register with an optional modifier (`e`, `x`, `l`, ...).
    pub fn r(&self, reg: Reg, modifier: &str) -> String {
        let base = match reg {
            Reg::V(v) => format!("v{v}"),
            Reg::In(i) => self.inputs[i].name.clone(),
        };
        if modifier.is_empty() || self.is_const(reg) {
            format!("{{{base}}}")
        } else {
            format!("{{{base}:{modifier}}}")
        }
    }

    /// Appends an instruction. `uses` may name inputs (ignored for liveness).
    pub fn ins(&mut self, text: impl Into<String>, defs: &[VReg], uses: &[Reg]) {
        self.push(text.into(), defs, uses, None, false);
    }

    /// Appends a multi-line instruction group whose defs must not share registers with its uses.
    pub fn ins_early_clobber(&mut self, text: impl Into<String>, defs: &[VReg], uses: &[Reg]) {
        self.push(text.into(), defs, uses, None, true);
    }

    /// Appends a register copy `dst = src`, elided when both land in one register.
    pub fn copy(&mut self, text: impl Into<String>, dst: VReg, src: VReg) {
        self.push(text.into(), &[dst], &[Reg::V(src)], Some((dst, src)), false);
    }

    /// A pseudo-instruction keeping `vregs` alive up to here (no text).
    pub fn keep(&mut self, vregs: &[VReg]) {
        let uses: Vec<Reg> = vregs.iter().map(|&v| Reg::V(v)).collect();
        self.push(String::new(), &[], &uses, None, false);
    }

    pub fn line(&mut self, text: impl Into<String>) {
        self.push(text.into(), &[], &[], None, false);
    }

    fn push(
        &mut self,
        text: String,
        defs: &[VReg],
        uses: &[Reg],
        copy: Option<(VReg, VReg)>,
        early_clobber: bool,
    ) {
        let uses = uses
            .iter()
            .filter_map(|r| match r {
                Reg::V(v) => Some(*v),
                Reg::In(_) => None,
            })
            .collect();
        self.insns.push(Insn {
            text,
            defs: defs.to_vec(),
            uses,
            copy,
            early_clobber,
            note: self.note.clone(),
        });
    }
}

/// A `memcpy` length as the emitter sees it.
#[derive(Clone, Copy, Debug)]
pub enum CopyLen {
    Const(u64),
    Reg(Reg),
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

/// The building blocks of one architecture. Registers are 64-bit words holding values in canonical
/// form (zero- or sign-extended per type); `keep` lists registers the decode reads after an exit.
pub trait ArchEmitter: Sync {
    fn arch(&self) -> Arch;
    /// Pointer width in bytes (the width of `usize`, `isize` and pointers).
    fn pointer_bytes(&self) -> u32;
    /// General-purpose registers available to asm operands.
    fn registers(&self) -> usize;
    /// The `asm!` register class of every operand (`reg_nonzero` on ppc64, `reg_addr` on s390x:
    /// there register 0 reads as the literal 0 where a base register is expected).
    fn reg_class(&self) -> &'static str {
        "reg"
    }
    /// Whether an immediate fits the instructions' immediate fields.
    fn imm_fits(&self, value: i64) -> bool;
    /// Whether constant operands (`offset_of!`, assumed to fit an immediate) may be `const` operands.
    fn const_operands(&self) -> bool;
    /// Stores the descriptor's address into `rseq_cs` of the area (before the start label).
    fn store_descriptor_pointer(&self, b: &mut Builder, area: Reg, labels: &Labels);
    /// Defines a label.
    fn label(&self, b: &mut Builder, label: u32);
    /// Reads the thread's index (cpu_id or mm_cid) into `dst`.
    fn read_index(&self, b: &mut Builder, area: Reg, mode: IndexMode, dst: VReg);
    /// Leaves through `exit` unless `idx < len`.
    fn check_index_bounds(&self, b: &mut Builder, idx: VReg, len: Reg, exit: u32, keep: &[VReg]);
    /// Leaves through `exit` unless `idx == expected`.
    fn check_expected_cpu(
        &self,
        b: &mut Builder,
        idx: VReg,
        expected: Src,
        exit: u32,
        keep: &[VReg],
    );
    /// `dst = base + idx * stride`.
    fn slot_address(&self, b: &mut Builder, dst: VReg, idx: VReg, base: Reg, stride: Reg);
    /// `dst = src`.
    fn mov(&self, b: &mut Builder, dst: VReg, src: Src);
    /// `dst = *addr` with the width and extension of `kind`.
    fn load(&self, b: &mut Builder, dst: VReg, addr: &Mem, kind: WordKind);

    /// After a `load_acquire`'s load: a barrier ordering that load before every later load and
    /// store. None on x86_64 and s390x, whose loads are never reordered with later accesses.
    fn acquire_fence(&self, _b: &mut Builder) {}
    /// `dst = dst op rhs`, wrapping, result canonical for `kind`.
    fn arith(&self, b: &mut Builder, op: BinOp, dst: VReg, rhs: Src, kind: WordKind);
    /// Re-extends `dst` to the canonical form of `kind` (truncating to its width).
    fn normalize(&self, b: &mut Builder, dst: VReg, kind: WordKind);
    /// Leaves through `exit` when `lhs op rhs` holds.
    #[allow(clippy::too_many_arguments)]
    fn compare_exit(
        &self,
        b: &mut Builder,
        lhs: Src,
        op: CmpOp,
        rhs: Src,
        signed: bool,
        exit: u32,
        keep: &[VReg],
    );
    /// Speculative store of `kind`'s width.
    fn store(&self, b: &mut Builder, addr: &Mem, value: Src, kind: WordKind);
    /// Speculative copy of `len` bytes, word-wise.
    fn memcpy(&self, b: &mut Builder, dst: &Mem, src: &Mem, len: CopyLen);
    /// The committing store: the last instruction of the section.
    fn commit(&self, b: &mut Builder, addr: &Mem, value: Src, kind: WordKind, commit: CommitKind);
    /// Sets the status register (outside the section).
    fn set_status(&self, b: &mut Builder, status: u32);
    /// Jumps to a label defined earlier.
    fn jump_back(&self, b: &mut Builder, label: u32);
    /// Opens the failure section and places the signature right before the abort label.
    fn abort_stub(&self, b: &mut Builder, labels: &Labels);
    /// The descriptor, its pointer-array entry, and the exit-point entries; closes the failure section.
    fn descriptor(&self, b: &mut Builder, labels: &Labels, exits: &[u32]);
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

/// One emitted block, ready to be printed or turned into an `asm!` invocation.
#[derive(Clone, Debug)]
pub struct AsmBlock {
    pub arch: Arch,
    pub lines: Vec<AsmLine>,
    pub inputs: Vec<Input>,
    /// The words behind the `Spill` input, in order (empty when every input has a register).
    pub spilled: Vec<Input>,
    /// Scratch outputs `s0..`: every one is `out(reg)` (never `lateout`).
    pub scratch: Vec<String>,
    /// Register class of every input and output ([`ArchEmitter::reg_class`]).
    pub class: &'static str,
    /// The status output: 0 committed, 1 aborted, then the sequence's exits.
    pub status: String,
    pub clobbers: Vec<&'static str>,
    pub options: Vec<&'static str>,
    /// Where each escaping local is after the block: `(local, scratch name)`.
    pub locals: Vec<(usize, String)>,
    /// The scratch holding the index read (for index-out-of-range and wrong-CPU exits).
    pub index: Option<String>,
    /// Registers the block uses (inputs + outputs + clobbers).
    pub registers: usize,
    /// Statuses of the debug checks this block makes (a subset of the sequence's when the register
    /// budget could not fit them all, see [`emit`]).
    pub debug_checks: Vec<u32>,
}

/// One line of the template.
#[derive(Clone, Debug)]
pub struct AsmLine {
    pub text: String,
    pub note: String,
}

impl AsmBlock {
    /// The template lines, as passed to `asm!`.
    pub fn template(&self) -> Vec<&str> {
        self.lines.iter().map(|l| l.text.as_str()).collect()
    }
}

/// Emits `seq` for `em`'s architecture.
///
/// When the block does not fit the architecture's registers, every input but the area moves to
/// memory ("spilled": one register holds the address of an array of the input words, and each use
/// loads its word into a scratch register that lives only as long as that use needs it). Spilling
/// costs a load per use inside the section; blocks that fit are emitted exactly as before. If even
/// the spilled block does not fit and the sequence has debug checks, it keeps only the index
/// re-check, then none (the fallback body keeps every check): a debug build should not fail where
/// the release build compiles.
pub fn emit(seq: &Sequence, em: &dyn ArchEmitter) -> Result<AsmBlock, Error> {
    let too_many = |e: &Error| matches!(e.kind, ErrorKind::TooManyLiveValues { .. });
    match emit_block(seq, em, false) {
        Err(e) if too_many(&e) => match emit_block(seq, em, true) {
            Err(e) if too_many(&e) && !seq.debug_checks.is_empty() => {
                let mut reduced = seq.clone();
                reduced
                    .debug_checks
                    .retain(|d| d.kind == DebugCheckKind::Index);
                emit_block(&reduced, em, true).or_else(|_| {
                    reduced.debug_checks.clear();
                    emit_block(&reduced, em, true)
                })
            }
            r => r,
        },
        r => r,
    }
}

fn emit_block(seq: &Sequence, em: &dyn ArchEmitter, spill: bool) -> Result<AsmBlock, Error> {
    let mut d = Driver {
        seq,
        em,
        b: Builder::default(),
        values: vec![None; seq.locals.len()],
        escaping: seq.escaping_locals(),
        delays: None,
        spill: None,
    };
    common::check_widths(seq, em)?;
    let l = LABELS;
    let area = d.b.input(InputSource::Area, "area".into());
    if spill {
        d.spill = Some(d.b.input(InputSource::Spill, "spill".into()));
    }
    if seq.instrument.inject && em.supports_inject() {
        let delays =
            d.b.const_input(InputSource::InjectDelays, "inject_delays".into());
        d.delays = Some(delays);
    }
    d.inject(InjectPoint::BeforeArm);
    let b = &mut d.b;
    b.set_note("arm: rseq_cs = &descriptor");
    em.store_descriptor_pointer(b, area, &l);
    b.set_note("start");
    em.label(b, l.start);
    let idx = b.vreg();
    b.set_note(format!("read {}", seq.index.name()));
    em.read_index(b, area, seq.index, idx);

    let mut exit_labels: HashMap<u32, u32> = HashMap::new();
    for ex in &seq.exits {
        let label = d.b.label();
        exit_labels.insert(ex.status, label);
    }
    for dc in &seq.debug_checks {
        let label = d.b.label();
        exit_labels.insert(dc.status, label);
    }
    for (i, step) in seq.steps.iter().enumerate() {
        d.b.set_note(step.source.clone());
        d.step(i, &step.kind, idx, area, &exit_labels);
    }
    let tail_keep: Vec<VReg> = match &seq.tail {
        Some(t) => seq
            .locals_named_in(t, usize::MAX)
            .into_iter()
            .filter_map(|l| d.vreg_of(l))
            .collect(),
        None => Vec::new(),
    };
    d.b.set_note("post-commit");
    d.b.keep(&tail_keep);
    em.label(&mut d.b, l.post_commit);
    em.set_status(&mut d.b, crate::ir::STATUS_COMMITTED);
    d.b.set_note("end");
    em.label(&mut d.b, l.end);
    d.b.set_note("abort (signature before the label)");
    em.abort_stub(&mut d.b, &l);
    em.set_status(&mut d.b, STATUS_ABORTED);
    em.jump_back(&mut d.b, l.end);
    let mut exits = Vec::new();
    for ex in &seq.exits {
        let label = exit_labels[&ex.status];
        d.b.set_note(exit_note(seq, &ex.kind));
        em.label(&mut d.b, label);
        em.set_status(&mut d.b, ex.status);
        em.jump_back(&mut d.b, l.end);
        exits.push(label);
    }
    for dc in &seq.debug_checks {
        let label = exit_labels[&dc.status];
        d.b.set_note(debug_note(seq, dc.kind));
        em.label(&mut d.b, label);
        em.set_status(&mut d.b, dc.status);
        em.jump_back(&mut d.b, l.end);
        exits.push(label);
    }
    d.b.set_note("descriptor");
    em.descriptor(&mut d.b, &l, &exits);

    let escaping: Vec<(usize, VReg)> = d
        .escaping
        .iter()
        .filter_map(|&loc| d.vreg_of(loc).map(|v| (loc, v)))
        .collect();
    let uses_index = seq
        .exits
        .iter()
        .any(|e| !matches!(e.kind, ExitKind::Compare { .. }))
        || !seq.debug_checks.is_empty();
    let Builder {
        insns,
        inputs,
        spilled,
        clobbers,
        ..
    } = d.b;
    let alloc = allocate(&insns);
    let scratch: Vec<String> = (0..alloc.count).map(|i| format!("s{i}")).collect();
    let registers =
        inputs.iter().filter(|i| !i.is_const).count() + scratch.len() + 1 + clobbers.len();
    if registers > em.registers() {
        return Err(Error::new(
            seq.ident.span(),
            ErrorKind::TooManyLiveValues {
                arch: em.arch().name(),
                needed: registers,
                available: em.registers(),
            },
        ));
    }
    let lines = insns
        .iter()
        .filter(|i| !i.text.is_empty())
        .filter(|i| !matches!(i.copy, Some((a, b)) if alloc.phys[&a] == alloc.phys[&b]))
        .map(|i| AsmLine {
            text: rename(&i.text, &alloc.phys),
            note: i.note.clone(),
        })
        .collect();
    Ok(AsmBlock {
        arch: em.arch(),
        lines,
        inputs,
        spilled,
        scratch,
        class: em.reg_class(),
        status: "status".into(),
        clobbers,
        options: vec!["nostack"],
        locals: escaping
            .into_iter()
            .map(|(l, v)| (l, format!("s{}", alloc.phys[&v])))
            .collect(),
        index: uses_index.then(|| format!("s{}", alloc.phys[&idx])),
        registers,
        debug_checks: seq.debug_checks.iter().map(|d| d.status).collect(),
    })
}

fn exit_note(seq: &Sequence, kind: &ExitKind) -> String {
    match kind {
        ExitKind::IndexOutOfRange { param } => {
            format!(
                "exit: index out of range for `{}`",
                seq.params[*param].ident
            )
        }
        ExitKind::WrongCpu { local } => {
            format!("exit: wrong CPU for `{}`", seq.locals[*local].ident)
        }
        ExitKind::Compare { step } => format!("exit: {}", seq.steps[*step].source),
    }
}

fn debug_note(seq: &Sequence, kind: DebugCheckKind) -> String {
    match kind {
        DebugCheckKind::Index => format!("debug check failed: {} changed", seq.index.name()),
        DebugCheckKind::Compare { step } => {
            format!("debug check failed: {}", seq.steps[step].source)
        }
    }
}

struct Driver<'a> {
    seq: &'a Sequence,
    em: &'a dyn ArchEmitter,
    b: Builder,
    values: Vec<Option<Src>>,
    escaping: Vec<usize>,
    /// The delay table input, when injection points are emitted.
    delays: Option<Reg>,
    /// The `Spill` input, when inputs are passed in memory (see [`emit`]).
    spill: Option<Reg>,
}

impl Driver<'_> {
    /// A delay loop at `point` (only with `Instrument::inject` on an emitter that supports it).
    fn inject(&mut self, point: InjectPoint) {
        let Some(delays) = self.delays else { return };
        let note = self.b.note().to_owned();
        self.b.set_note(format!("inject: {}", point.name()));
        self.em.inject_delay(&mut self.b, delays, point);
        self.b.set_note(note);
    }

    /// Debug check before the first speculative store (or the commit): replays the loads and
    /// computations on fresh registers and leaves through the check's exit when a compare-exit would
    /// now be taken. The original values stay in use afterwards (exits read them).
    fn recheck_compares(&mut self, upto: usize, exits: &HashMap<u32, u32>) {
        let saved = self.values.clone();
        let note = self.b.note().to_owned();
        for (j, step) in self.seq.steps[..upto].iter().enumerate() {
            self.b.set_note(format!("debug check: {}", step.source));
            match &step.kind {
                StepKind::Load {
                    local, addr, ty, ..
                } => {
                    let mem = self.address(addr);
                    let dst = self.b.vreg();
                    self.em.load(&mut self.b, dst, &mem, ty.kind);
                    self.values[*local] = Some(Src::Reg(Reg::V(dst)));
                }
                StepKind::Compute { local, value } => {
                    let v = self.eval(value);
                    self.values[*local] = Some(self.pin(*local, v));
                }
                StepKind::Exit { lhs, op, rhs, .. } => {
                    let label = self.debug_label(DebugCheckKind::Compare { step: j }, exits);
                    let l = self.eval(lhs);
                    let r = self.eval(rhs);
                    let signed = !lhs.ty.is_ptr() && !rhs.ty.is_ptr() && lhs.ty.kind.signed();
                    self.em
                        .compare_exit(&mut self.b, l, *op, r, signed, label, &[]);
                }
                StepKind::Slot { .. } | StepKind::Store { .. } | StepKind::Memcpy { .. } => {}
            }
        }
        self.values = saved;
        self.b.set_note(note);
    }

    /// Debug check right before the commit: the index read again must equal the one read at the start.
    fn recheck_index(&mut self, area: Reg, idx: VReg, exits: &HashMap<u32, u32>) {
        let label = self.debug_label(DebugCheckKind::Index, exits);
        let note = self.b.note().to_owned();
        self.b
            .set_note(format!("debug check: {} unchanged", self.seq.index.name()));
        let again = self.b.vreg();
        self.em.read_index(&mut self.b, area, self.seq.index, again);
        self.em
            .check_expected_cpu(&mut self.b, again, Src::Reg(Reg::V(idx)), label, &[idx]);
        self.b.set_note(note);
    }

    fn debug_label(&self, kind: DebugCheckKind, exits: &HashMap<u32, u32>) -> u32 {
        let dc = self
            .seq
            .debug_checks
            .iter()
            .find(|d| d.kind == kind)
            .expect("numbered debug check");
        exits[&dc.status]
    }

    fn vreg_of(&self, local: usize) -> Option<VReg> {
        match self.values[local] {
            Some(Src::Reg(Reg::V(v))) => Some(v),
            _ => None,
        }
    }

    /// A register holding input `source`: the input itself, or, when inputs are spilled, a scratch
    /// register loaded from its word of the spill array right here.
    fn input(&mut self, source: InputSource, name: String) -> Reg {
        let Some(spill) = self.spill else {
            return self.b.input(source, name);
        };
        let k = match self.b.spilled.iter().position(|i| i.source == source) {
            Some(k) => k,
            None => {
                self.b.spilled.push(Input {
                    name,
                    source,
                    is_const: false,
                });
                self.b.spilled.len() - 1
            }
        };
        let offset = i64::from(self.em.pointer_bytes()) * i64::try_from(k).expect("few inputs");
        let dst = self.b.vreg();
        let mem = Mem {
            base: spill,
            disp: Disp::Imm(offset),
        };
        self.em.load(&mut self.b, dst, &mem, WordKind::Usize);
        Reg::V(dst)
    }

    /// Locals the decode of exit `status` reads, plus `extra`.
    fn keep_for(&self, step: usize, extra: &[VReg]) -> Vec<VReg> {
        let mut keep = extra.to_vec();
        if let StepKind::Exit { ret: Some(e), .. } = &self.seq.steps[step].kind {
            keep.extend(
                self.seq
                    .locals_named_in(e, step)
                    .into_iter()
                    .filter_map(|l| self.vreg_of(l)),
            );
        }
        keep
    }

    fn step(&mut self, i: usize, kind: &StepKind, idx: VReg, area: Reg, exits: &HashMap<u32, u32>) {
        let checks =
            |f: fn(&DebugCheckKind) -> bool| self.seq.debug_checks.iter().any(|d| f(&d.kind));
        let recheck_index = checks(|k| *k == DebugCheckKind::Index);
        if checks(|k| matches!(k, DebugCheckKind::Compare { .. })) && i == self.seq.recheck_step() {
            self.recheck_compares(i, exits);
        }
        let exit = self.seq.exit_at(i).map(|e| exits[&e.status]);
        match kind {
            StepKind::Slot { local, param, cpu } => {
                let keep = self.keep_for(i, &[idx]);
                match cpu {
                    None => {
                        let p = *param;
                        if self.spill.is_none() {
                            // Operand order of the three slot inputs: base, stride, len.
                            self.input(InputSource::Base(p), format!("base{p}"));
                            self.input(InputSource::Stride(p), format!("stride{p}"));
                        }
                        let len = self.input(InputSource::Len(p), format!("len{p}"));
                        self.em.check_index_bounds(
                            &mut self.b,
                            idx,
                            len,
                            exit.expect("slot exit"),
                            &keep,
                        );
                        let base = self.input(InputSource::Base(p), format!("base{p}"));
                        let stride = self.input(InputSource::Stride(p), format!("stride{p}"));
                        let dst = self.b.vreg();
                        self.em.slot_address(&mut self.b, dst, idx, base, stride);
                        self.values[*local] = Some(Src::Reg(Reg::V(dst)));
                    }
                    Some(cpu) => {
                        let expected = self.eval(cpu);
                        self.em.check_expected_cpu(
                            &mut self.b,
                            idx,
                            expected,
                            exit.expect("slot exit"),
                            &keep,
                        );
                        let name = format!("slot_{}", self.seq.locals[*local].ident);
                        let addr = self.input(InputSource::SlotAddr(*local), name);
                        self.values[*local] = Some(self.pin(*local, Src::Reg(addr)));
                    }
                }
                self.inject(InjectPoint::AfterIndex);
            }
            StepKind::Load {
                local,
                addr,
                ty,
                acquire,
            } => {
                let mem = self.address(addr);
                let dst = self.b.vreg();
                self.em.load(&mut self.b, dst, &mem, ty.kind);
                if *acquire {
                    self.em.acquire_fence(&mut self.b);
                }
                self.values[*local] = Some(Src::Reg(Reg::V(dst)));
                self.inject(InjectPoint::AfterLoad);
            }
            StepKind::Compute { local, value } => {
                let v = self.eval(value);
                self.values[*local] = Some(self.pin(*local, v));
            }
            StepKind::Exit { lhs, op, rhs, .. } => {
                let l = self.eval(lhs);
                let r = self.eval(rhs);
                let signed = !lhs.ty.is_ptr() && !rhs.ty.is_ptr() && lhs.ty.kind.signed();
                let keep = self.keep_for(i, &[]);
                self.em.compare_exit(
                    &mut self.b,
                    l,
                    *op,
                    r,
                    signed,
                    exit.expect("compare exit"),
                    &keep,
                );
                self.inject(InjectPoint::AfterCompare);
            }
            StepKind::Store {
                addr,
                value,
                ty,
                commit,
            } => {
                let v = self.eval(value);
                let mem = self.address(addr);
                match commit {
                    None => {
                        self.em.store(&mut self.b, &mem, v, ty.kind);
                        self.inject(InjectPoint::AfterStore);
                    }
                    Some(c) => {
                        self.inject(InjectPoint::BeforeCommit);
                        if recheck_index {
                            self.recheck_index(area, idx, exits);
                        }
                        self.em.commit(&mut self.b, &mem, v, ty.kind, *c);
                    }
                }
            }
            StepKind::Memcpy { dst, src, len } => {
                let d = self.address(dst);
                let s = self.address(src);
                let len = match len {
                    MemcpyLen::Const(n) => CopyLen::Const(*n),
                    MemcpyLen::Runtime(o) => CopyLen::Reg(self.reg(o)),
                };
                self.em.memcpy(&mut self.b, &d, &s, len);
                self.inject(InjectPoint::AfterStore);
            }
        }
    }

    /// Escaping locals must live in a scratch register (the decode reads them from outputs).
    fn pin(&mut self, local: usize, v: Src) -> Src {
        if !self.escaping.contains(&local) || matches!(v, Src::Reg(Reg::V(_))) {
            return v;
        }
        let dst = self.b.vreg();
        self.em.mov(&mut self.b, dst, v);
        Src::Reg(Reg::V(dst))
    }

    fn eval(&mut self, o: &Operand) -> Src {
        let pb = self.em.pointer_bytes();
        match &o.node {
            Node::Local(l) => self.values[*l].expect("local defined before use"),
            Node::Param(p) => {
                let name = format!(
                    "p_{}",
                    syn::ext::IdentExt::unraw(&self.seq.params[*p].ident)
                );
                Src::Reg(self.input(InputSource::Param(*p), name))
            }
            Node::Ext(e) => {
                let ext = &self.seq.externals[*e];
                let imm = ext
                    .literal
                    .and_then(|v| canonical(v, ext.ty.kind, ext.ty.kind.width(pb)))
                    .filter(|&v| self.em.imm_fits(v));
                match imm {
                    Some(v) => Src::Imm(v),
                    None if ext.is_const && self.em.const_operands() => {
                        Src::Reg(self.b.const_input(InputSource::Ext(*e), format!("e{e}")))
                    }
                    None => Src::Reg(self.input(InputSource::Ext(*e), format!("e{e}"))),
                }
            }
            Node::Bin(op, l, r) => {
                let lv = self.eval(l);
                let rv = self.eval(r);
                let dst = self.b.vreg();
                self.em.mov(&mut self.b, dst, lv);
                self.em.arith(&mut self.b, *op, dst, rv, o.ty.kind);
                Src::Reg(Reg::V(dst))
            }
            Node::Cast(inner) => {
                let v = self.eval(inner);
                let (from, to) = (inner.ty.kind, o.ty.kind);
                let (wf, wt) = (from.width(pb), to.width(pb));
                // `as` keeps the canonical word when nothing is truncated and the extension agrees.
                let noop = wt == pb
                    || (wt >= wf && (from.signed() == to.signed() || (wt > wf && !from.signed())));
                if noop && !matches!(v, Src::Imm(_)) {
                    return v;
                }
                let dst = self.b.vreg();
                self.em.mov(&mut self.b, dst, v);
                self.em.normalize(&mut self.b, dst, to);
                Src::Reg(Reg::V(dst))
            }
        }
    }

    fn reg(&mut self, o: &Operand) -> Reg {
        match self.eval(o) {
            Src::Reg(r) if !self.b.is_const(r) => r,
            Src::Reg(r) => {
                let dst = self.b.vreg();
                self.em.mov(&mut self.b, dst, Src::Reg(r));
                Reg::V(dst)
            }
            imm @ Src::Imm(_) => {
                let dst = self.b.vreg();
                self.em.mov(&mut self.b, dst, imm);
                Reg::V(dst)
            }
        }
    }

    /// An address operand, folding `base + offset` and `base - constant` into the addressing mode.
    fn address(&mut self, o: &Operand) -> Mem {
        if let Node::Bin(op @ (BinOp::Add | BinOp::Sub), l, r) = &o.node {
            if l.ty.is_ptr() {
                let off = self.eval(r);
                let disp = match (op, off) {
                    (BinOp::Add, Src::Imm(v)) => Some(Disp::Imm(v)),
                    (BinOp::Sub, Src::Imm(v)) if v != i64::MIN && self.em.imm_fits(-v) => {
                        Some(Disp::Imm(-v))
                    }
                    (BinOp::Add, Src::Reg(r)) => Some(Disp::Reg(r)),
                    _ => None,
                };
                if let Some(disp) = disp {
                    let base = self.reg(l);
                    return Mem { base, disp };
                }
            }
        }
        Mem {
            base: self.reg(o),
            disp: Disp::None,
        }
    }
}

/// Result of register allocation: scratch index per virtual register, and how many scratches.
struct Allocation {
    phys: HashMap<VReg, usize>,
    count: usize,
}

/// Linear-scan allocation over the straight-line instruction list (loops are emitted as one
/// early-clobber group or keep their registers live past the back edge by construction).
fn allocate(insns: &[Insn]) -> Allocation {
    let mut first: HashMap<VReg, usize> = HashMap::new();
    let mut last: HashMap<VReg, usize> = HashMap::new();
    for (i, ins) in insns.iter().enumerate() {
        for &v in ins.defs.iter().chain(&ins.uses) {
            first.entry(v).or_insert(i);
            last.insert(v, i);
        }
    }
    let mut phys: HashMap<VReg, usize> = HashMap::new();
    let mut count = 0;
    for (i, ins) in insns.iter().enumerate() {
        for &d in &ins.defs {
            if first[&d] != i || phys.contains_key(&d) {
                continue;
            }
            let busy: Vec<usize> = phys
                .iter()
                .filter(|(v, _)| {
                    let (f, l) = (first[v], last[v]);
                    // Live across this instruction, or defined here too.
                    (f < i && l > i) || f == i || (ins.early_clobber && f < i && l == i)
                })
                .map(|(_, &p)| p)
                .collect();
            let hinted = ins
                .copy
                .filter(|&(dst, _)| dst == d)
                .and_then(|(_, src)| phys.get(&src).copied())
                .filter(|p| !busy.contains(p));
            let p = hinted
                .unwrap_or_else(|| (0..).find(|p| !busy.contains(p)).expect("a free register"));
            count = count.max(p + 1);
            phys.insert(d, p);
        }
    }
    Allocation { phys, count }
}

/// Replaces `{vN` with `{sK` per the allocation.
fn rename(text: &str, phys: &HashMap<VReg, usize>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("{v") {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 2..];
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            out.push_str("{v");
            rest = after;
            continue;
        }
        let v: VReg = after[..digits].parse().expect("digits");
        let _ = write!(out, "{{s{}", phys[&v]);
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// Describes each input for annotations (`base0` is "`counters`: slot 0 address").
pub fn describe_input(seq: &Sequence, input: &Input) -> String {
    let param = |p: usize| syn::ext::IdentExt::unraw(&seq.params[p].ident).to_string();
    match &input.source {
        InputSource::Area => "the thread's rseq area".into(),
        InputSource::Base(p) => format!("`{}`: address of slot 0", param(*p)),
        InputSource::Stride(p) => format!("`{}`: slot stride", param(*p)),
        InputSource::Len(p) => format!("`{}`: slot count", param(*p)),
        InputSource::Param(p) => format!("parameter `{}`", param(*p)),
        InputSource::Ext(e) => format!(
            "`{}` (evaluated before the section)",
            crate::pretty(&quote::ToTokens::to_token_stream(&seq.externals[*e].expr))
        ),
        InputSource::SlotAddr(l) => {
            format!(
                "address of slot `{}` (computed before the section)",
                seq.locals[*l].ident
            )
        }
        InputSource::InjectDelays => {
            "`sym` of the runtime's delay counts per injection point".into()
        }
        InputSource::Spill => {
            "address of the spilled inputs (words loaded inside the section)".into()
        }
    }
}
