//! The driver: walks a validated [`Sequence`]'s steps and calls the [`ArchEmitter`] building blocks
//! with virtual registers, adds the exit and debug-check stubs with their notes, allocates scratch
//! registers (`regalloc.rs`) and checks the register budget, spilling inputs to memory and then
//! dropping debug re-checks when a block does not fit ([`emit`]).
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

use std::collections::HashMap;

use super::regalloc::{allocate, rename};
use super::{
    ArchEmitter, AsmBlock, AsmLine, Builder, CopyLen, Disp, ExitTo, Input, InputSource, Mem, Reg,
    Src, VReg, LABELS,
};
use crate::error::{Error, ErrorKind};
use crate::ir::{
    BinOp, DebugCheckKind, ExitKind, InjectPoint, MemcpyLen, Node, Operand, Sequence, StepKind,
    STATUS_ABORTED,
};
use crate::semantics::{self, Conversion, Quote, Words};
use crate::ty::{canonical, WordKind};

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
        escaping: seq.escaping_locals().to_vec(),
        delays: None,
        spill: None,
    };
    semantics::check_widths(seq, Words::native(em.pointer_bytes()), em.arch().name())?;
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
        d.b.set_note(format!(
            "exit: {}",
            semantics::describe_exit(seq, &ex.kind, Quote::Plain)
        ));
        em.label(&mut d.b, label);
        em.set_status(&mut d.b, ex.status);
        em.jump_back(&mut d.b, l.end);
        exits.push(label);
    }
    for dc in &seq.debug_checks {
        let label = exit_labels[&dc.status];
        d.b.set_note(semantics::describe_debug_check(seq, dc.kind, Quote::Plain));
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
                    self.em.load(&mut self.b, dst, &mem, 0, ty.kind);
                    self.values[*local] = Some(Src::Reg(Reg::V(dst)));
                }
                StepKind::Compute { local, value } => {
                    let v = self.eval(value);
                    self.values[*local] = Some(self.pin(*local, v));
                }
                StepKind::CompareExit { lhs, op, rhs, .. } => {
                    let label = self.debug_label(DebugCheckKind::Compare { step: j }, exits);
                    let rule = semantics::compare(&lhs.ty, *op, &rhs.ty);
                    let l = self.eval(lhs);
                    let r = self.eval(rhs);
                    let to = ExitTo { label, keep: &[] };
                    self.em.compare_exit(&mut self.b, l, rule, r, to);
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
        self.em.load(&mut self.b, dst, &mem, 0, WordKind::Usize);
        Reg::V(dst)
    }

    /// Locals the decode of exit `status` reads, plus `extra`.
    fn keep_for(&self, step: usize, extra: &[VReg]) -> Vec<VReg> {
        let mut keep = extra.to_vec();
        if let StepKind::CompareExit { ret: Some(e), .. } = &self.seq.steps[step].kind {
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
                self.em.load(&mut self.b, dst, &mem, 0, ty.kind);
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
            StepKind::CompareExit { lhs, op, rhs, .. } => {
                let rule = semantics::compare(&lhs.ty, *op, &rhs.ty);
                let l = self.eval(lhs);
                let r = self.eval(rhs);
                let keep = self.keep_for(i, &[]);
                let label = exit.expect("compare exit");
                let to = ExitTo { label, keep: &keep };
                self.em.compare_exit(&mut self.b, l, rule, r, to);
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
                        self.em.store(&mut self.b, &mem, 0, v, ty.kind);
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
            Node::RustOperand(e) => {
                let ext = &self.seq.rust_operands[*e];
                let imm = ext
                    .literal
                    .and_then(|v| canonical(v, ext.ty.kind, ext.ty.kind.width(pb)))
                    .filter(|&v| self.em.imm_fits(v));
                match imm {
                    Some(v) => Src::Imm(v),
                    None if ext.is_const && self.em.const_operands() => Src::Reg(
                        self.b
                            .const_input(InputSource::RustOperand(*e), format!("e{e}")),
                    ),
                    None => Src::Reg(self.input(InputSource::RustOperand(*e), format!("e{e}"))),
                }
            }
            Node::Bin(op, l, r) => {
                let lv = self.eval(l);
                let rv = self.eval(r);
                let dst = self.b.vreg();
                self.em.mov(&mut self.b, dst, lv);
                // The emitter implements `semantics::arith(op, kind)` (see `ArchEmitter::arith`).
                self.em.arith(&mut self.b, *op, dst, rv, o.ty.kind);
                Src::Reg(Reg::V(dst))
            }
            Node::Cast(inner) => {
                let v = self.eval(inner);
                let to = o.ty.kind;
                let keep = Words::native(pb).conversion(inner.ty.kind, to) == Conversion::Keep;
                if keep && !matches!(v, Src::Imm(_)) {
                    return v;
                }
                // Zero- or sign-extension from `to`'s width: what `normalize` does for `to`.
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
