//! Virtual registers and the instruction [`Builder`]: the operand types the emitters work with
//! ([`Reg`], [`Src`], [`Mem`], [`Disp`]), the block's inputs ([`Input`], [`InputSource`]), and the
//! instruction list ([`Insn`]) each emitter appends to, with the defs and uses register allocation
//! (`regalloc.rs`) reads.

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
