//! The meaning of the steps, defined once. The driver (`arch/driver.rs`) turns steps into emitter
//! calls and the fallback body (`rseq-macros`, `fallback.rs`) turns them into Rust; both take every
//! decision about values from here: which compares are signed, how each operator wraps and shifts,
//! which conversions change a word, which types fit a register, and what each status means in words.
//!
//! The word model (`docs/DSL.md`, "Types and semantics"): a value of type `T` lives in one register
//! (natively pointer-wide, in the fallback body a `u64`) in canonical form: its `T`-width bits,
//! zero-extended when `T` is unsigned or a pointer, sign-extended when `T` is signed (what
//! `Word::to_word` returns). Every step reads canonical words and leaves canonical words.
//! [`Words::eval_arith`], [`Words::eval_conversion`] and [`Compare::holds`] compute the definition
//! on words; the unit tests check them against Rust's operators on typed values.

use crate::error::{Error, ErrorKind};
use crate::ir::{BinOp, CmpOp, DebugCheckKind, ExitKind, Node, Operand, Sequence};
use crate::ty::{WordKind, WordTy};

/// Where the words of one execution live: registers of `register_bytes`, and `usize`, `isize` and
/// pointers of `pointer_bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Words {
    pub pointer_bytes: u32,
    pub register_bytes: u32,
}

/// How `value as T` changes a canonical word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conversion {
    /// The word is already the result's canonical form: no truncation, and the extension agrees.
    Keep,
    /// Keep the low `bits` and zero-extend them (an unsigned or pointer target narrower than the
    /// source, or of a signed source's width or wider).
    ZeroExtend { bits: u32 },
    /// Keep the low `bits` and sign-extend them (a signed target narrower than the source, or of an
    /// unsigned source's width).
    SignExtend { bits: u32 },
}

impl Words {
    /// Pointer widths of the supported targets. The fallback body is expanded once for whichever
    /// target is built, so it takes a decision that depends on the pointer width only where every
    /// width agrees.
    pub const POINTER_WIDTHS: [u32; 2] = [4, 8];

    /// An emitter's registers: pointer-wide (8 bytes on 64-bit architectures, 4 on arm).
    pub fn native(pointer_bytes: u32) -> Words {
        Words {
            pointer_bytes,
            register_bytes: pointer_bytes,
        }
    }

    /// The fallback body: `u64` words, pointers of the target's width.
    pub fn fallback(pointer_bytes: u32) -> Words {
        Words {
            pointer_bytes,
            register_bytes: 8,
        }
    }

    /// Width of `kind` in bits.
    pub fn bits(self, kind: WordKind) -> u32 {
        kind.width(self.pointer_bytes) * 8
    }

    /// Whether a value of `kind` fits one register. Where it does not (a 64-bit value on a 32-bit
    /// architecture) the architecture rejects the sequence: a register pair cannot be requested as
    /// an `asm!` operand.
    pub fn fits(self, kind: WordKind) -> bool {
        kind.width(self.pointer_bytes) <= self.register_bytes
    }

    /// How `value as to` changes the canonical word of a `from` value.
    pub fn conversion(self, from: WordKind, to: WordKind) -> Conversion {
        let (wf, wt) = (from.width(self.pointer_bytes), to.width(self.pointer_bytes));
        // A register-wide target is the word itself; otherwise nothing may be truncated, and the
        // extension must agree (or a zero-extended source is widened, so its top bit is clear).
        let keep = wt >= self.register_bytes
            || (wt >= wf && (from.signed() == to.signed() || (wt > wf && !from.signed())));
        match (keep, to.signed()) {
            (true, _) => Conversion::Keep,
            (false, true) => Conversion::SignExtend { bits: wt * 8 },
            (false, false) => Conversion::ZeroExtend { bits: wt * 8 },
        }
    }

    /// The canonical word of `kind` whose low bits are `word`'s.
    pub fn canonical(self, kind: WordKind, word: u64) -> u64 {
        let bits = self.bits(kind).min(self.register_bytes * 8);
        extend(word, bits, kind.signed()) & self.register_mask()
    }

    /// `value as to` on a canonical word (the definition [`Words::conversion`] describes).
    pub fn eval_conversion(self, conversion: Conversion, word: u64) -> u64 {
        match conversion {
            Conversion::Keep => word,
            Conversion::ZeroExtend { bits } => extend(word, bits, false),
            Conversion::SignExtend { bits } => extend(word, bits, true) & self.register_mask(),
        }
    }

    /// `a op b` on canonical words of `rule.kind` (the definition [`Arith`] describes).
    pub fn eval_arith(self, rule: Arith, a: u64, b: u64) -> u64 {
        let count = |b: u64| b & u64::from(self.bits(rule.kind) - 1);
        let raw = match rule.op {
            BinOp::Add => a.wrapping_add(b),
            BinOp::Sub => a.wrapping_sub(b),
            BinOp::And => a & b,
            BinOp::Or => a | b,
            BinOp::Xor => a ^ b,
            BinOp::Shl => a << count(b),
            // The word is canonical, so a shift of the whole register by less than the width
            // fills with the same bits as one of the value.
            BinOp::Shr if rule.arithmetic_shift => {
                let shift = 64 - self.register_bytes * 8;
                let signed = ((a << shift) as i64) >> shift;
                (signed >> count(b)) as u64
            }
            BinOp::Shr => a >> count(b),
        };
        if rule.renormalize {
            self.canonical(rule.kind, raw)
        } else {
            raw & self.register_mask()
        }
    }

    fn register_mask(self) -> u64 {
        u64::MAX >> (64 - self.register_bytes * 8)
    }
}

/// Checks that every value of `seq` fits a register of `words` ([`Words::fits`]). The first that does
/// not (per step: the memory access's type, then each operand before its sub-operands) is a
/// `WordTooWide` error naming the architecture `arch`.
pub fn check_widths(seq: &Sequence, words: Words, arch: &'static str) -> Result<(), Error> {
    fn too_wide(o: &Operand, words: Words) -> Option<&Operand> {
        if !words.fits(o.ty.kind) {
            return Some(o);
        }
        match &o.node {
            Node::Bin(_, l, r) => too_wide(l, words).or_else(|| too_wide(r, words)),
            Node::Cast(inner) => too_wide(inner, words),
            Node::Local(_) | Node::Param(_) | Node::RustOperand(_) => None,
        }
    }
    let err = |span, ty: &WordTy| {
        Err(Error::new(
            span,
            ErrorKind::WordTooWide {
                arch,
                ty: ty.spelling(),
            },
        ))
    };
    for step in &seq.steps {
        if let Some(ty) = step.kind.access().filter(|ty| !words.fits(ty.kind)) {
            return err(step.span, ty);
        }
        if let Some(o) = step
            .kind
            .operands()
            .into_iter()
            .find_map(|o| too_wide(o, words))
        {
            return err(o.span, &o.ty);
        }
    }
    Ok(())
}

/// `word`'s low `bits`, zero- or sign-extended to 64 bits.
fn extend(word: u64, bits: u32, signed: bool) -> u64 {
    if bits >= 64 {
        return word;
    }
    let low = word & ((1u64 << bits) - 1);
    if signed && low >> (bits - 1) == 1 {
        low | !((1u64 << bits) - 1)
    } else {
        low
    }
}

/// How `a op b` is computed on canonical words of the result type `kind`: wrapping, like Rust's
/// `wrapping_*` operations on `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arith {
    pub op: BinOp,
    /// The result type (for `pointer ± offset`, the pointer).
    pub kind: WordKind,
    /// `<<` and `>>`: the count is taken modulo the width of `kind` (`b & (bits - 1)`, like
    /// `wrapping_shl`), so no count reaches the hardware that the width does not allow.
    pub masks_count: bool,
    /// `>>` of a signed type shifts arithmetically (sign-filling), every other shift logically.
    pub arithmetic_shift: bool,
    /// The raw result is re-extended to the canonical form of `kind` (truncated to its width, then
    /// zero- or sign-extended): `+`, `-` and `<<` carry bits past the width. `& | ^` of canonical
    /// words and right shifts by less than the width stay canonical.
    pub renormalize: bool,
}

/// The rule of `a op b` with result type `kind`.
pub fn arith(op: BinOp, kind: WordKind) -> Arith {
    let shift = matches!(op, BinOp::Shl | BinOp::Shr);
    Arith {
        op,
        kind,
        masks_count: shift,
        arithmetic_shift: op == BinOp::Shr && kind.signed(),
        renormalize: matches!(op, BinOp::Add | BinOp::Sub | BinOp::Shl),
    }
}

/// How a compare-exit compares: the whole canonical words (the register natively, the `u64` in the
/// fallback body), with no normalisation first. Its operands are canonical words of one type, or
/// an address and an address or `usize`, so ordering the extended words orders the values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compare {
    pub op: CmpOp,
    /// Signed exactly when both operands are integers of a signed type; any pointer makes it an
    /// unsigned address compare.
    pub signed: bool,
}

/// Whether `lhs op rhs` compares signed (see [`Compare::signed`]).
pub fn compare_is_signed(lhs: &WordTy, rhs: &WordTy) -> bool {
    !lhs.is_ptr() && !rhs.is_ptr() && lhs.kind.signed()
}

/// The rule of the compare `lhs op rhs`.
pub fn compare(lhs: &WordTy, op: CmpOp, rhs: &WordTy) -> Compare {
    Compare {
        op,
        signed: compare_is_signed(lhs, rhs),
    }
}

impl Compare {
    /// Whether the compare holds for the canonical words `a` and `b` of registers of
    /// `register_bits` (the definition).
    pub fn holds(self, register_bits: u32, a: u64, b: u64) -> bool {
        let shift = 64 - register_bits;
        let ord = if self.signed {
            (((a << shift) as i64) >> shift).cmp(&(((b << shift) as i64) >> shift))
        } else {
            (a << shift).cmp(&(b << shift))
        };
        match self.op {
            CmpOp::Eq => ord.is_eq(),
            CmpOp::Ne => ord.is_ne(),
            CmpOp::Lt => ord.is_lt(),
            CmpOp::Le => ord.is_le(),
            CmpOp::Gt => ord.is_gt(),
            CmpOp::Ge => ord.is_ge(),
        }
    }
}

/// How a step's source appears in a description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quote {
    /// As written: asm notes, where every other note shows its step the same way.
    Plain,
    /// In backticks: the dump's header and messages, where it stands inside a sentence.
    Backticks,
}

fn step_source(seq: &Sequence, step: usize, quote: Quote) -> String {
    let source = &seq.steps[step].source;
    match quote {
        Quote::Plain => source.clone(),
        Quote::Backticks => format!("`{source}`"),
    }
}

/// What leaving through an exit means ("index out of range for" the slot parameter, "wrong CPU
/// for" the slot, or the compare-exit's source), for the asm notes and the dump's header.
pub fn describe_exit(seq: &Sequence, kind: &ExitKind, quote: Quote) -> String {
    match kind {
        ExitKind::IndexOutOfRange { param } => {
            format!("index out of range for `{}`", seq.params[*param].ident)
        }
        ExitKind::WrongCpu { local } => format!("wrong CPU for `{}`", seq.locals[*local].ident),
        ExitKind::Compare { step } => step_source(seq, *step, quote),
    }
}

/// What a failed debug re-check means, briefly ("debug check failed:" the index "changed", or the
/// compare-exit's source), for the asm notes and the dump's header.
pub fn describe_debug_check(seq: &Sequence, kind: DebugCheckKind, quote: Quote) -> String {
    match kind {
        DebugCheckKind::Index => format!("debug check failed: {} changed", seq.index.name()),
        DebugCheckKind::Compare { step } => {
            format!("debug check failed: {}", step_source(seq, step, quote))
        }
    }
}

/// What a failed debug re-check means, with its likely cause: the message the process prints
/// before it aborts.
pub fn explain_debug_check(seq: &Sequence, kind: DebugCheckKind) -> String {
    match kind {
        DebugCheckKind::Index => format!(
            "the {} read again just before the commit differs from the one read at the start: the \
             kernel did not abort the section although the thread changed CPU",
            seq.index.name()
        ),
        DebugCheckKind::Compare { step } => format!(
            "{} would now leave: the data it read changed inside the critical section (written \
             from another CPU, or without a sequence or lock, or the section was not protected)",
            step_source(seq, step, Quote::Backticks)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [WordKind; 11] = [
        WordKind::U8,
        WordKind::U16,
        WordKind::U32,
        WordKind::U64,
        WordKind::Usize,
        WordKind::I8,
        WordKind::I16,
        WordKind::I32,
        WordKind::I64,
        WordKind::Isize,
        WordKind::Ptr,
    ];

    const SAMPLES: [i128; 14] = [
        0,
        1,
        2,
        3,
        7,
        63,
        64,
        127,
        128,
        255,
        -1,
        -128,
        0x1234_5678_9abc_def0,
        -0x7fff_ffff_ffff_ffff,
    ];

    /// The fixed-width kind `kind` is on a target with `pb`-byte pointers.
    fn fixed(kind: WordKind, pb: u32) -> WordKind {
        match (kind, pb) {
            (WordKind::Usize | WordKind::Ptr, 4) => WordKind::U32,
            (WordKind::Isize, 4) => WordKind::I32,
            (WordKind::Usize | WordKind::Ptr, _) => WordKind::U64,
            (WordKind::Isize, _) => WordKind::I64,
            (k, _) => k,
        }
    }

    /// Rust's value of `v` as `kind` on a target with `pb`-byte pointers, as its canonical `u64`
    /// word (`Word::to_word`).
    fn word_on(pb: u32, kind: WordKind, v: i128) -> u64 {
        let v = v as u64;
        match fixed(kind, pb) {
            WordKind::U8 => u64::from(v as u8),
            WordKind::U16 => u64::from(v as u16),
            WordKind::U32 => u64::from(v as u32),
            WordKind::I8 => v as i8 as i64 as u64,
            WordKind::I16 => v as i16 as i64 as u64,
            WordKind::I32 => v as i32 as i64 as u64,
            _ => v,
        }
    }

    fn word(kind: WordKind, v: i128) -> u64 {
        word_on(8, kind, v)
    }

    /// The typed Rust result of `a op b` on `kind` (pointers of `pb` bytes), as its canonical word.
    fn rust_arith(pb: u32, op: BinOp, kind: WordKind, a: i128, b: i128) -> u64 {
        macro_rules! typed {
            ($t:ty) => {{
                let (x, y) = (a as u64 as $t, b as u64 as $t);
                let n = (b as u64 & 0xffff_ffff) as u32;
                let r: $t = match op {
                    BinOp::Add => x.wrapping_add(y),
                    BinOp::Sub => x.wrapping_sub(y),
                    BinOp::And => x & y,
                    BinOp::Or => x | y,
                    BinOp::Xor => x ^ y,
                    BinOp::Shl => x.wrapping_shl(n),
                    BinOp::Shr => x.wrapping_shr(n),
                };
                word_on(pb, kind, i128::from(r))
            }};
        }
        match fixed(kind, pb) {
            WordKind::U8 => typed!(u8),
            WordKind::U16 => typed!(u16),
            WordKind::U32 => typed!(u32),
            WordKind::I8 => typed!(i8),
            WordKind::I16 => typed!(i16),
            WordKind::I32 => typed!(i32),
            WordKind::I64 => typed!(i64),
            _ => typed!(u64),
        }
    }

    #[test]
    fn arithmetic_is_rusts_wrapping_arithmetic() {
        let ops = [
            BinOp::Add,
            BinOp::Sub,
            BinOp::And,
            BinOp::Or,
            BinOp::Xor,
            BinOp::Shl,
            BinOp::Shr,
        ];
        for pb in Words::POINTER_WIDTHS {
            let words = Words::fallback(pb);
            let w = |kind, v| word_on(pb, kind, v);
            for kind in KINDS {
                for op in ops {
                    for a in SAMPLES {
                        for b in SAMPLES {
                            let got = words.eval_arith(arith(op, kind), w(kind, a), w(kind, b));
                            assert_eq!(
                                got,
                                rust_arith(pb, op, kind, a, b),
                                "{pb}-byte pointers: {kind:?} {a} {} {b}",
                                op.symbol()
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn conversions_are_rusts_as() {
        for pb in Words::POINTER_WIDTHS {
            let words = Words::fallback(pb);
            for from in KINDS {
                for to in KINDS {
                    for v in SAMPLES {
                        let w = word_on(pb, from, v);
                        let got = words.eval_conversion(words.conversion(from, to), w);
                        // Rust's `as` truncates then extends per the target: the word of the low
                        // bits (the source's extension is already in `w`).
                        assert_eq!(
                            got,
                            word_on(pb, to, i128::from(w)),
                            "{pb}-byte pointers: {v} as {from:?} -> {to:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn conversions_on_32_bit_registers() {
        let words = Words::native(4);
        // -1i8 as u32 fills the register; as usize it is the register itself.
        assert_eq!(
            words.conversion(WordKind::I8, WordKind::U32),
            Conversion::Keep
        );
        assert_eq!(
            words.conversion(WordKind::U32, WordKind::I16),
            Conversion::SignExtend { bits: 16 }
        );
        assert_eq!(
            words.eval_conversion(Conversion::Keep, 0xffff_ffff),
            0xffff_ffff
        );
        assert!(!words.fits(WordKind::U64));
        assert!(words.fits(WordKind::Isize));
        assert_eq!(
            words.eval_arith(arith(BinOp::Shr, WordKind::I32), 0x8000_0000, 4),
            0xf800_0000
        );
        assert_eq!(
            words.eval_arith(arith(BinOp::Add, WordKind::U8), 250, 10),
            4
        );
    }

    #[test]
    fn compares_order_values() {
        for kind in KINDS {
            let ty = WordTy::prim(match kind {
                WordKind::Ptr => "*mut u8",
                WordKind::U8 => "u8",
                WordKind::U16 => "u16",
                WordKind::U32 => "u32",
                WordKind::U64 => "u64",
                WordKind::Usize => "usize",
                WordKind::I8 => "i8",
                WordKind::I16 => "i16",
                WordKind::I32 => "i32",
                WordKind::I64 => "i64",
                WordKind::Isize => "isize",
            });
            for a in SAMPLES {
                for b in SAMPLES {
                    let (wa, wb) = (word(kind, a), word(kind, b));
                    // The values as Rust orders them: signed kinds as i64, the rest as u64.
                    let expected = if kind.signed() {
                        (wa as i64).cmp(&(wb as i64))
                    } else {
                        wa.cmp(&wb)
                    };
                    let rule = compare(&ty, CmpOp::Lt, &ty);
                    assert_eq!(rule.holds(64, wa, wb), expected.is_lt(), "{kind:?}");
                }
            }
        }
    }
}
