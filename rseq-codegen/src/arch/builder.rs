//! Virtual registers and the instruction [`Builder`]: the operand types the emitters work with
//! ([`Reg`], [`Src`], [`Mem`], [`Disp`]), the block's inputs ([`Input`], [`InputSource`]), and the
//! instruction list ([`Insn`]) each emitter appends to, with the defs and uses register allocation
//! (`regalloc.rs`) reads.
//!
//! An emitter records an instruction with one call: [`Builder::emit`] takes a closure that writes
//! the template text and names each register through [`Operands`] (`o.def(dst)`, `o.use_(src)`,
//! ...), which returns the register's template text and records its role. The defs and uses are
//! never listed separately, so they cannot disagree with the text:
//!
//! ```text
//! b.emit(|o| format!("mul {}, {}, {}", o.def(dst), o.use_(idx), o.use_(stride)));
//! ```

/// A virtual register: one value in the section, mapped to a scratch register by the register
/// allocator (`allocate`).
pub type VReg = u32;

/// A register operand: a virtual (scratch) register or an input operand of the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reg {
    V(VReg),
    In(usize),
}

impl From<VReg> for Reg {
    fn from(v: VReg) -> Self {
        Reg::V(v)
    }
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
    /// A Rust operand (`{ expr }`, `offset_of!`, ...; as `Word::to_word`), evaluated before the section.
    RustOperand(usize),
    /// The address of the slot local `l` (`on_cpu`), computed before the section.
    SlotAddr(usize),
    /// The runtime's table of delay counts per injection point, as a `sym` operand (a `const`
    /// input: it takes no register). Only with `Instrument::inject`.
    InjectDelays,
    /// Address of an array of words holding the block's spilled inputs
    /// ([`AsmBlock::spilled`](super::AsmBlock::spilled), in that order), loaded inside the section
    /// where they are used. Only in blocks that would not fit the architecture's registers with
    /// every input in a register of its own.
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
    /// Virtual registers written, in the order they were named (the order they get registers).
    pub defs: Vec<VReg>,
    /// Virtual registers read (inputs are not tracked).
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

    /// Appends one instruction. `text` writes its template, naming every register through the
    /// [`Operands`] it is given, which records the register's role for register allocation.
    pub fn emit(&mut self, text: impl FnOnce(&mut Operands) -> String) {
        self.emit_keep(&[], text);
    }

    /// [`emit`](Self::emit), with `keep` read here too: values a later decode (after an exit
    /// branch) still needs stay in their registers up to this instruction.
    pub fn emit_keep(&mut self, keep: &[VReg], text: impl FnOnce(&mut Operands) -> String) {
        let (text, defs, mut uses) = self.record(text);
        uses.extend(keep);
        self.push(text, defs, uses, None, false);
    }

    /// Appends a register copy (one def, one use): when the source is a virtual register that
    /// dies here, both get the same register and the copy is elided.
    pub fn emit_copy(&mut self, text: impl FnOnce(&mut Operands) -> String) {
        let (text, defs, uses) = self.record(text);
        assert_eq!(defs.len(), 1, "a copy writes one register: {text}");
        let copy = match uses[..] {
            [src] => Some((defs[0], src)),
            _ => None,
        };
        self.push(text, defs, uses, copy, false);
    }

    /// Appends a multi-line group (a loop) as one allocation unit: every line carries the defs and
    /// uses of the whole group, and its defs never share a register with its uses (early clobber).
    /// Defs get registers in the order they are first named.
    pub fn emit_group(&mut self, lines: impl FnOnce(&mut Operands) -> Vec<String>) {
        let (lines, defs, uses) = self.record(lines);
        for line in lines {
            self.push(line, defs.clone(), uses.clone(), None, true);
        }
    }

    /// A pseudo-instruction keeping `vregs` alive up to here (no text).
    pub fn keep(&mut self, vregs: &[VReg]) {
        self.push(String::new(), Vec::new(), vregs.to_vec(), None, false);
    }

    /// Appends a line that names no register (label, directive, fence, branch).
    pub fn line(&mut self, text: impl Into<String>) {
        self.push(text.into(), Vec::new(), Vec::new(), None, false);
    }

    /// Runs `write` on a fresh [`Operands`]: its result and the defs and uses it named.
    fn record<T>(&self, write: impl FnOnce(&mut Operands) -> T) -> (T, Vec<VReg>, Vec<VReg>) {
        let mut ops = Operands {
            inputs: &self.inputs,
            defs: Vec::new(),
            uses: Vec::new(),
        };
        let out = write(&mut ops);
        (out, ops.defs, ops.uses)
    }

    fn push(
        &mut self,
        text: String,
        defs: Vec<VReg>,
        uses: Vec<VReg>,
        copy: Option<(VReg, VReg)>,
        early_clobber: bool,
    ) {
        self.insns.push(Insn {
            text,
            defs,
            uses,
            copy,
            early_clobber,
            note: self.note.clone(),
        });
    }
}

/// The registers of one instruction, recorded as its text is written: each method returns a
/// register's template text (`{vN}`, `{vN:mod}` or `{input}`) and notes whether the instruction
/// writes it (a def) or reads it (a use), so text and roles cannot disagree. Input operands are
/// never written and do not take part in liveness.
#[derive(Debug)]
pub struct Operands<'a> {
    inputs: &'a [Input],
    defs: Vec<VReg>,
    uses: Vec<VReg>,
}

impl Operands<'_> {
    /// A register the instruction writes.
    pub fn def(&mut self, v: VReg) -> String {
        self.def_mod(v, "")
    }

    /// A register the instruction writes, with a modifier (`e`, `x`, `l`, `w`, ...).
    pub fn def_mod(&mut self, v: VReg, modifier: &str) -> String {
        if !self.defs.contains(&v) {
            self.defs.push(v);
        }
        self.text(Reg::V(v), modifier)
    }

    /// A register the instruction reads.
    pub fn use_(&mut self, r: impl Into<Reg>) -> String {
        self.use_mod(r, "")
    }

    /// A register the instruction reads, with a modifier.
    pub fn use_mod(&mut self, r: impl Into<Reg>, modifier: &str) -> String {
        let r = r.into();
        if let Reg::V(v) = r {
            if !self.uses.contains(&v) {
                self.uses.push(v);
            }
        }
        self.text(r, modifier)
    }

    /// A register the instruction reads and then writes (two-operand forms: `add {d}, 1`).
    pub fn def_use(&mut self, v: VReg) -> String {
        self.def_use_mod(v, "")
    }

    /// A register read then written, with a modifier.
    pub fn def_use_mod(&mut self, v: VReg, modifier: &str) -> String {
        self.use_mod(v, modifier);
        self.def_mod(v, modifier)
    }

    /// Whether `reg` is a `const` input (usable only where an immediate is).
    pub fn is_const(&self, reg: Reg) -> bool {
        matches!(reg, Reg::In(i) if self.inputs[i].is_const)
    }

    /// Template text of a register with an optional modifier.
    fn text(&self, reg: Reg, modifier: &str) -> String {
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
}
