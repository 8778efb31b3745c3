//! The typed IR of one sequence: resolved names, typed operands, and the exit table shared by every
//! emitter and the fallback body.

use proc_macro2::Span;
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, FnArg, Ident, ReturnType, Token, Visibility};

use crate::ty::WordTy;

/// Status of a section that committed.
pub const STATUS_COMMITTED: u32 = 0;
/// Status of a section the kernel aborted.
pub const STATUS_ABORTED: u32 = 1;
/// Longest `memcpy` (bytes) a sequence may perform: constant lengths above it are a compile error,
/// runtime lengths above it return `Error::TooLong` before the section starts.
pub const MEMCPY_MAX: u64 = 1024;

/// Which kernel field indexes the per-CPU slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexMode {
    CpuId,
    MmCid,
}

impl IndexMode {
    pub fn name(self) -> &'static str {
        match self {
            IndexMode::CpuId => "cpu_id",
            IndexMode::MmCid => "mm_cid",
        }
    }
}

/// One compiled sequence.
#[derive(Debug, Clone)]
pub struct Sequence {
    /// Attributes passed through to the generated fns (docs included, `#[rseq(..)]` removed).
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub unsafety: Option<Token![unsafe]>,
    pub ident: Ident,
    /// Lifetimes and type parameters (with the `where` clause), passed to both generated fns.
    pub generics: syn::Generics,
    pub inputs: Punctuated<FnArg, Token![,]>,
    pub output: ReturnType,
    pub index: IndexMode,
    pub params: Vec<Param>,
    pub rust_operands: Vec<RustOperand>,
    pub locals: Vec<Local>,
    pub steps: Vec<Step>,
    pub tail: Option<Expr>,
    /// Exits other than commit and abort, with their status values (2, 3, ...).
    pub exits: Vec<Exit>,
    /// Opt-in instrumentation (off by default: the default emission does not depend on it).
    pub instrument: Instrument,
    /// With `instrument.debug_checks`: the re-checks made before the commit, with their statuses
    /// (numbered after [`Sequence::exits`]); empty otherwise.
    pub debug_checks: Vec<DebugCheck>,
    /// Locals the decode after the section needs (named by a return value or the tail), in
    /// ascending order: computed once by lowering, read by every consumer through
    /// [`Sequence::escaping_locals`].
    pub escaping: Vec<usize>,
}

/// Opt-in instrumentation of a sequence: set by `#[rseq(inject)]` / `#[rseq(debug_checks)]` or, for
/// every sequence of a build, by the `inject` / `debug-checks` features of `rseq-dsl` (which the
/// macro passes to [`crate::compile_with`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Instrument {
    /// A delay loop at every [`InjectPoint`], its count read from a global per point.
    pub inject: bool,
    /// Re-check the index and every compare just before the commit; a mismatch aborts the process.
    pub debug_checks: bool,
}

/// Where a delay loop goes when [`Instrument::inject`] is set. The runtime's delay table
/// (`rseq_runtime::inject`) is indexed by [`InjectPoint::index`]; both sides list the points in this
/// order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InjectPoint {
    /// Before the descriptor address is stored into `rseq_cs` (outside the section).
    BeforeArm,
    /// After a slot's index check (bounds or expected CPU).
    AfterIndex,
    /// After each `load`.
    AfterLoad,
    /// After each compare-exit.
    AfterCompare,
    /// After each speculative `store` or `memcpy`.
    AfterStore,
    /// Just before the committing store.
    BeforeCommit,
}

impl InjectPoint {
    pub const ALL: [InjectPoint; 6] = [
        InjectPoint::BeforeArm,
        InjectPoint::AfterIndex,
        InjectPoint::AfterLoad,
        InjectPoint::AfterCompare,
        InjectPoint::AfterStore,
        InjectPoint::BeforeCommit,
    ];

    /// Index into the runtime's delay table.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Name used in annotations (the runtime's `inject::Point` variants have the same names).
    pub fn name(self) -> &'static str {
        match self {
            InjectPoint::BeforeArm => "before_arm",
            InjectPoint::AfterIndex => "after_index",
            InjectPoint::AfterLoad => "after_load",
            InjectPoint::AfterCompare => "after_compare",
            InjectPoint::AfterStore => "after_store",
            InjectPoint::BeforeCommit => "before_commit",
        }
    }
}

/// One debug re-check (see [`Instrument::debug_checks`]).
#[derive(Debug, Clone)]
pub struct DebugCheck {
    /// The status the section leaves with when the check fails.
    pub status: u32,
    pub kind: DebugCheckKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebugCheckKind {
    /// The index (cpu_id or mm_cid) read again just before the commit differs from the one read at
    /// the start: the kernel did not abort the section although the thread changed CPU.
    Index,
    /// Compare-exit `step`, re-evaluated on re-loaded values, now leaves: the data it read changed
    /// inside the section (another writer, or a section that was not protected).
    Compare { step: usize },
}

/// A parameter.
#[derive(Debug, Clone)]
pub struct Param {
    pub ident: Ident,
    pub kind: ParamKind,
}

// Built once per sequence at compile time: size differences between variants do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum ParamKind {
    /// `&PerCpu<elem, I>`: `elem_word` is `Some` when the element is a machine word.
    PerCpu {
        elem: syn::Type,
        elem_word: Option<WordTy>,
        mode: IndexMode,
    },
    Word(WordTy),
    /// `ThisThread<'_>`: the caller's token for the calling thread (`rseq_dsl::this_thread`); the
    /// generated code takes the thread's entry (area or fallback) from it instead of looking it up.
    Thread,
}

/// A Rust operand: an expression the sequence does not compute (`{ expr }`, `offset_of!`, an integer
/// literal, ...), evaluated in Rust once per call before the section and passed in (identical
/// operands once); a literal may become an immediate.
#[derive(Debug, Clone)]
pub struct RustOperand {
    pub expr: Expr,
    pub ty: WordTy,
    /// The value of an integer literal (emitters may encode it as an immediate).
    pub literal: Option<i128>,
    /// A constant expression (`offset_of!`, `size_of::<T>()`): passed as a `const` operand.
    pub is_const: bool,
}

/// A sequence local (`let name = ..;`).
#[derive(Debug, Clone)]
pub struct Local {
    pub ident: Ident,
    pub ty: WordTy,
    /// Index of the defining step.
    pub step: usize,
    /// `Some(param)` for a slot (`p.current()` / `p.on_cpu(..)`).
    pub slot_of: Option<usize>,
}

/// A typed value expression.
#[derive(Debug, Clone)]
pub struct Operand {
    pub node: Node,
    pub ty: WordTy,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum Node {
    Local(usize),
    Param(usize),
    RustOperand(usize),
    Bin(BinOp, Box<Operand>, Box<Operand>),
    /// `inner as ty` (the target type is the operand's `ty`).
    Cast(Box<Operand>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    And,
    Or,
    Xor,
    Shl,
    Shr,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::And => "&",
            BinOp::Or => "|",
            BinOp::Xor => "^",
            BinOp::Shl => "<<",
            BinOp::Shr => ">>",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// The operator with its operands swapped (`a < b` is `b > a`).
    pub fn swapped(self) -> CmpOp {
        match self {
            CmpOp::Eq => CmpOp::Eq,
            CmpOp::Ne => CmpOp::Ne,
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitKind {
    Store,
    StoreRelease,
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum MemcpyLen {
    Const(u64),
    /// A `usize` parameter or Rust operand, checked against [`MEMCPY_MAX`] before the section.
    Runtime(Operand),
}

/// One step, with its source span and a one-line rendering for annotations.
#[derive(Debug, Clone)]
pub struct Step {
    pub kind: StepKind,
    pub span: Span,
    pub source: String,
}

#[derive(Debug, Clone)]
pub enum StepKind {
    /// `let local = param.current()` or `.on_cpu(cpu)`.
    Slot {
        local: usize,
        param: usize,
        cpu: Option<Operand>,
    },
    Load {
        local: usize,
        addr: Operand,
        ty: WordTy,
        /// `load_acquire`: no later load or store of this thread (in the section or after it) is
        /// ordered before this load (an acquire barrier after it where the architecture needs one).
        acquire: bool,
    },
    Compute {
        local: usize,
        value: Operand,
    },
    /// `if lhs op rhs { return ret; }` (a compare-exit: it leaves through one of the
    /// [`Exit`]s, kind [`ExitKind::Compare`]).
    CompareExit {
        lhs: Operand,
        op: CmpOp,
        rhs: Operand,
        ret: Option<Expr>,
        status: u32,
    },
    Store {
        addr: Operand,
        value: Operand,
        ty: WordTy,
        commit: Option<CommitKind>,
    },
    Memcpy {
        dst: Operand,
        src: Operand,
        len: MemcpyLen,
    },
}

impl StepKind {
    /// The type a `load` or `store` accesses memory with.
    pub fn access(&self) -> Option<&WordTy> {
        match self {
            StepKind::Load { ty, .. } | StepKind::Store { ty, .. } => Some(ty),
            StepKind::Slot { .. }
            | StepKind::Compute { .. }
            | StepKind::CompareExit { .. }
            | StepKind::Memcpy { .. } => None,
        }
    }

    /// The step's operands, in source order.
    pub fn operands(&self) -> Vec<&Operand> {
        match self {
            StepKind::Slot { cpu, .. } => cpu.iter().collect(),
            StepKind::Load { addr, .. } => vec![addr],
            StepKind::Compute { value, .. } => vec![value],
            StepKind::CompareExit { lhs, rhs, .. } => vec![lhs, rhs],
            StepKind::Store { addr, value, .. } => vec![addr, value],
            StepKind::Memcpy { dst, src, len } => {
                let mut all = vec![dst, src];
                if let MemcpyLen::Runtime(o) = len {
                    all.push(o);
                }
                all
            }
        }
    }
}

/// A non-commit, non-abort way out of the section, with its status value: an index out of range, a
/// wrong CPU, or a compare-exit step's condition ("exit" names only this; the step is
/// [`StepKind::CompareExit`]).
#[derive(Debug, Clone)]
pub struct Exit {
    pub status: u32,
    pub kind: ExitKind,
    /// The step whose check or comparison leaves through this exit.
    pub step: usize,
}

#[derive(Debug, Clone)]
pub enum ExitKind {
    /// The index read for slot param `param` is not below its length.
    IndexOutOfRange { param: usize },
    /// The thread runs on another CPU than the one `on_cpu` names (the slot `local`).
    WrongCpu { local: usize },
    /// Compare-exit at step `step`.
    Compare { step: usize },
}

impl Sequence {
    /// Turns on `instrument` (in addition to what the attributes asked) and numbers the debug
    /// re-checks after the exits: the index first, then every compare-exit in step order.
    pub fn instrument(&mut self, extra: Instrument) {
        self.instrument.inject |= extra.inject;
        self.instrument.debug_checks |= extra.debug_checks;
        self.debug_checks.clear();
        if !self.instrument.debug_checks {
            return;
        }
        let first = 2 + u32::try_from(self.exits.len()).expect("exit count fits u32");
        let kinds = std::iter::once(DebugCheckKind::Index).chain(
            self.steps
                .iter()
                .enumerate()
                .filter(|(_, s)| matches!(s.kind, StepKind::CompareExit { .. }))
                .map(|(i, _)| DebugCheckKind::Compare { step: i }),
        );
        self.debug_checks = kinds
            .zip(first..)
            .map(|(kind, status)| DebugCheck { status, kind })
            .collect();
    }

    /// Index of the step before which the compares are re-checked: the first speculative `store` or
    /// `memcpy` (a store may legitimately overwrite what a compare read; compare-exits never follow
    /// one), else the commit.
    pub fn recheck_step(&self) -> usize {
        self.steps
            .iter()
            .position(|s| matches!(s.kind, StepKind::Store { .. } | StepKind::Memcpy { .. }))
            .unwrap_or(self.steps.len().saturating_sub(1))
    }

    /// The `ThisThread` parameter, if the sequence takes one.
    pub fn thread_param(&self) -> Option<usize> {
        self.params
            .iter()
            .position(|p| matches!(p.kind, ParamKind::Thread))
    }

    /// Whether the sequence runs on one named CPU (`on_cpu`): its infallible form returns `Result`.
    pub fn explicit_cpu(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.kind, StepKind::Slot { cpu: Some(_), .. }))
    }

    /// The exit taken by step `step` (a slot's index check or a compare-exit).
    pub fn exit_at(&self, step: usize) -> Option<&Exit> {
        self.exits.iter().find(|e| e.step == step)
    }

    /// The slot steps in order: `(local, param, cpu)`.
    pub fn slots(&self) -> impl Iterator<Item = (usize, usize, Option<&Operand>)> {
        self.steps.iter().filter_map(|s| match &s.kind {
            StepKind::Slot { local, param, cpu } => Some((*local, *param, cpu.as_ref())),
            _ => None,
        })
    }

    /// Locals a Rust expression (return value or tail) may name, defined before step `before`.
    pub fn locals_named_in(&self, expr: &Expr, before: usize) -> Vec<usize> {
        let mut names = Vec::new();
        collect_idents(quote::ToTokens::to_token_stream(expr), &mut names);
        (0..self.locals.len())
            .filter(|&l| {
                self.locals[l].step < before && names.iter().any(|n| *n == self.locals[l].ident)
            })
            .collect()
    }

    /// Locals the decode after the section needs: named by a return value or the tail, in
    /// ascending order (the order of the section's outputs and of the fallback's values).
    pub fn escaping_locals(&self) -> &[usize] {
        &self.escaping
    }

    /// Computes [`Sequence::escaping`] from the steps and the tail (lowering calls it once).
    pub fn find_escaping_locals(&self) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        let mut add = |ls: Vec<usize>| {
            for l in ls {
                if !out.contains(&l) {
                    out.push(l);
                }
            }
        };
        for (i, s) in self.steps.iter().enumerate() {
            if let StepKind::CompareExit { ret: Some(e), .. } = &s.kind {
                add(self.locals_named_in(e, i));
            }
        }
        if let Some(t) = &self.tail {
            add(self.locals_named_in(t, usize::MAX));
        }
        out.sort_unstable();
        out
    }
}

fn collect_idents(ts: proc_macro2::TokenStream, out: &mut Vec<Ident>) {
    for tt in ts {
        match tt {
            proc_macro2::TokenTree::Ident(i) => out.push(i),
            proc_macro2::TokenTree::Group(g) => collect_idents(g.stream(), out),
            proc_macro2::TokenTree::Literal(l) => format_captures(&l, out),
            proc_macro2::TokenTree::Punct(_) => {}
        }
    }
}

/// Names a format string captures implicitly (`"{v}"`, `"{v:?}"`, `"{v:>w$}"`): a string literal in
/// the tail may be the format string of `format!`/`println!`/`write!`, whose captured locals are no
/// tokens of their own. An ordinary string literal that happens to contain `{name}` only makes the
/// local escape the section (one more live value), never changes a result.
fn format_captures(lit: &proc_macro2::Literal, out: &mut Vec<Ident>) {
    let Ok(syn::Lit::Str(s)) = syn::parse_str::<syn::Lit>(&lit.to_string()) else {
        return;
    };
    let text = s.value();
    let mut rest = text.as_str();
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        if let Some(after) = rest.strip_prefix('{') {
            rest = after; // `{{` is a literal brace
            continue;
        }
        let end = rest.find(['}', ':']).unwrap_or(rest.len());
        let arg = rest[..end].trim();
        let width = rest[end..].split('}').next().unwrap_or("");
        for name in std::iter::once(arg).chain(
            width
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
                .filter_map(|w| w.strip_suffix('$')),
        ) {
            if let Ok(id) = syn::parse_str::<Ident>(name) {
                out.push(Ident::new(&id.to_string(), lit.span()));
            }
        }
    }
}
