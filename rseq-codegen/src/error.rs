//! Typed codegen errors. Each carries the span of the offending token; the macro turns them into
//! `syn::Error`s at the edge ([`Error::to_syn`], [`combine`]).

use std::fmt;

use proc_macro2::Span;

/// One codegen error: what went wrong, and where.
#[derive(Clone, Debug)]
pub struct Error {
    pub span: Span,
    pub kind: ErrorKind,
}

/// Every error the pipeline reports. Messages are lowercase, without a final period, and name the
/// offending syntax in backticks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A syntax error from the parser.
    Syntax(String),
    /// A const generic parameter.
    Generics,
    /// A type parameter used where a machine word is needed.
    GenericWord(String),
    /// `T: ?Sized`: `*mut T` may be a fat pointer.
    UnsizedParam(String),
    Async,
    /// `const fn`, `extern "C" fn`, variadics, `where` clauses, `self`.
    UnsupportedSignature(&'static str),
    UnknownIndexMode(String),
    UnknownAttribute(String),
    ParamPattern,
    UnsupportedParamType(String),
    UnsupportedElementType(String),
    IndexModeMismatch {
        param: String,
        param_mode: &'static str,
        seq_mode: &'static str,
    },
    UnknownStep,
    StoreReleaseNotCommit,
    NestedStep(&'static str),
    DuplicateName(String),
    UndefinedLocal(String),
    UsedBeforeDefinition(String),
    NotPerCpu(String),
    PerCpuAsValue(String),
    ThreadAsValue(String),
    SecondThread,
    SlotMethod(String),
    NotAnAddress {
        op: &'static str,
        ty: String,
    },
    LoadTypeNeeded,
    StoreTypeNeeded,
    NotAWord(String),
    UnsupportedOperator(String),
    UnsupportedExpr,
    CannotInferType,
    TypeMismatch {
        left: String,
        right: String,
    },
    ExpectedType {
        expected: String,
        found: String,
    },
    MalformedCompareExit(&'static str),
    MalformedMemcpy(&'static str),
    MemcpyTooLong {
        len: u64,
        max: u64,
    },
    OnCpuNeedsCpuId,
    OnCpuLocal,
    NoSlot,
    NoCommit,
    MultipleCommits,
    StepAfterCommit,
    ExitAfterStore,
    UnsafeRequired(String),
    TooManyLiveValues {
        arch: &'static str,
        needed: usize,
        available: usize,
    },
    /// A 64-bit value in a section for a 32-bit architecture (its registers hold 32 bits).
    WordTooWide {
        arch: &'static str,
        ty: String,
    },
}

impl Error {
    pub fn new(span: Span, kind: ErrorKind) -> Error {
        Error { span, kind }
    }

    pub fn to_syn(&self) -> syn::Error {
        syn::Error::new(self.span, &self.kind)
    }
}

impl From<syn::Error> for Error {
    fn from(e: syn::Error) -> Error {
        Error::new(e.span(), ErrorKind::Syntax(e.to_string()))
    }
}

/// All errors of a phase as one `syn::Error` (reported together, each at its own token).
pub fn combine(errors: &[Error]) -> Option<syn::Error> {
    let mut iter = errors.iter().map(Error::to_syn);
    let mut first = iter.next()?;
    for e in iter {
        first.combine(e);
    }
    Some(first)
}

impl fmt::Display for ErrorKind {
    #[allow(clippy::too_many_lines)]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Syntax(m) => f.write_str(m),
            ErrorKind::Generics => f.write_str(
                "`rseq!` sequences cannot have const generic parameters: the asm of each sequence is fixed \
                 when the macro runs; pass the value as a parameter",
            ),
            ErrorKind::GenericWord(t) => write!(
                f,
                "`{t}` is a type parameter, not a machine word: the macro must know the width of every value; \
                 use `*mut {t}` / `*const {t}` (a pointer to any sized type is a word) or a concrete word type"
            ),
            ErrorKind::UnsizedParam(t) => write!(
                f,
                "`{t}: ?Sized` is not supported: a pointer to an unsized type is two words, a sequence's values \
                 are one word each"
            ),
            ErrorKind::Async => f.write_str(
                "`rseq!` sequences cannot be `async`: a critical section cannot span an await point",
            ),
            ErrorKind::UnsupportedSignature(what) => {
                write!(f, "`rseq!` sequences cannot have {what}")
            }
            ErrorKind::UnknownIndexMode(m) => {
                write!(f, "unknown index mode `{m}`: expected `cpu_id` or `mm_cid`")
            }
            ErrorKind::UnknownAttribute(k) => {
                write!(f, "unknown `rseq` attribute `{k}`: expected `index = cpu_id`, `index = mm_cid`, `inject` or `debug_checks`")
            }
            ErrorKind::ParamPattern => f.write_str(
                "sequence parameters must be plain identifiers (`name: Type`)",
            ),
            ErrorKind::UnsupportedParamType(t) => write!(
                f,
                "unsupported parameter type `{t}`: expected `&PerCpu<W>`, `&PerMmCid<W>`, `ThisThread<'_>` \
                 or a machine word (`u8`..`u64`, `i8`..`i64`, `usize`, `isize`, `*mut T`, `*const T`)"
            ),
            ErrorKind::UnsupportedElementType(t) => write!(
                f,
                "unsupported element type `{t}` in a safe fn: a safe sequence may only access a slot whose \
                 element is a machine word; declare `unsafe fn` to address fields with `load::<W>(slot + offset)`"
            ),
            ErrorKind::IndexModeMismatch { param, param_mode, seq_mode } => write!(
                f,
                "`{param}` is indexed by {param_mode} but the sequence by {seq_mode}: mixing index modes on one \
                 `PerCpu` would let two CPUs own the same slot{}",
                if *param_mode == "mm_cid" { "; add `#[rseq(index = mm_cid)]` to the fn" } else { "" }
            ),
            ErrorKind::UnknownStep => f.write_str(
                "unknown step: expected `let x = p.current();`, `let x = load(..);`, `let x = <arithmetic>;`, \
                 `if a <op> b { return ..; }`, `store(..);`, `memcpy(..);` or `commit store(..);`",
            ),
            ErrorKind::StoreReleaseNotCommit => f.write_str(
                "`store_release` is only valid as the committing store: write `commit store_release(..)`",
            ),
            ErrorKind::NestedStep(s) => write!(
                f,
                "`{s}` is a step, not a value: give it its own `let` step"
            ),
            ErrorKind::DuplicateName(n) => write!(
                f,
                "`{n}` is already defined: sequence locals cannot shadow parameters or other locals"
            ),
            ErrorKind::UndefinedLocal(n) => {
                write!(f, "cannot find sequence local or parameter `{n}`")
            }
            ErrorKind::UsedBeforeDefinition(n) => {
                write!(f, "local `{n}` is used before its definition")
            }
            ErrorKind::NotPerCpu(n) => write!(
                f,
                "`{n}` is not a `PerCpu` parameter: only `&PerCpu<W>` parameters have `current()` and `on_cpu()`"
            ),
            ErrorKind::PerCpuAsValue(n) => write!(
                f,
                "`{n}` is a `PerCpu` parameter, not a value: take a slot with `{n}.current()`"
            ),
            ErrorKind::ThreadAsValue(n) => write!(
                f,
                "`{n}` is the thread token, not a value: the generated code uses it to enter the \
                 section; it cannot be loaded, stored or computed with"
            ),
            ErrorKind::SecondThread => f.write_str(
                "a second `ThisThread` parameter: a sequence runs on one thread, pass its token once",
            ),
            ErrorKind::SlotMethod(m) => write!(
                f,
                "unknown slot method `{m}`: expected `current()` or `on_cpu(cpu)`"
            ),
            ErrorKind::NotAnAddress { op, ty } => write!(
                f,
                "`{op}` from a non-address of type `{ty}`: expected a slot (`p.current()`), a raw pointer, \
                 or `address + offset`"
            ),
            ErrorKind::LoadTypeNeeded => f.write_str(
                "cannot infer the width of this `load`: the address does not point to a machine word; write `load::<W>(..)`",
            ),
            ErrorKind::StoreTypeNeeded => f.write_str(
                "cannot infer the width of this store: write `store::<W>(..)` or give the value a type (`5u32`)",
            ),
            ErrorKind::NotAWord(t) => write!(
                f,
                "`{t}` is not a machine word type (`u8`..`u64`, `i8`..`i64`, `usize`, `isize`, `*mut T`, `*const T`)"
            ),
            ErrorKind::UnsupportedOperator(op) => write!(
                f,
                "unsupported operator `{op}` in sequence arithmetic: use `+ - & | ^ << >>` and `as`, or a Rust \
                 block `{{ .. }}` evaluated before the section"
            ),
            ErrorKind::UnsupportedExpr => f.write_str(
                "unsupported expression in a sequence: use locals, parameters, `+ - & | ^ << >>`, `as`, or a Rust \
                 operand (literal, constant, path, macro call, `{ .. }` block) evaluated before the section",
            ),
            ErrorKind::CannotInferType => f.write_str(
                "cannot infer the type of this operand: give it a suffix (`5u32`) or a cast (`X as u32`)",
            ),
            ErrorKind::TypeMismatch { left, right } => {
                write!(f, "mismatched types `{left}` and `{right}`: convert one with `as`")
            }
            ErrorKind::ExpectedType { expected, found } => {
                write!(f, "expected a value of type `{expected}`, found `{found}`: convert it with `as`")
            }
            ErrorKind::MalformedCompareExit(why) => write!(f, "malformed compare-exit: {why}"),
            ErrorKind::MalformedMemcpy(why) => write!(f, "malformed `memcpy`: {why}"),
            ErrorKind::MemcpyTooLong { len, max } => write!(
                f,
                "`memcpy` of {len} bytes exceeds the cap of {max} bytes: a long section is aborted more often"
            ),
            ErrorKind::OnCpuNeedsCpuId => f.write_str(
                "`on_cpu` needs cpu_id indexing: mm_cid values are not CPU numbers",
            ),
            ErrorKind::OnCpuLocal => f.write_str(
                "the CPU of `on_cpu` is checked before the section starts: it must be a parameter or a Rust operand, not a sequence local",
            ),
            ErrorKind::NoSlot => f.write_str(
                "the sequence addresses no per-CPU slot: start with `let slot = p.current();`",
            ),
            ErrorKind::NoCommit => f.write_str(
                "missing `commit store(..)`: a sequence ends with exactly one committing store",
            ),
            ErrorKind::MultipleCommits => f.write_str(
                "second `commit`: a sequence has exactly one committing store",
            ),
            ErrorKind::StepAfterCommit => f.write_str(
                "step after `commit`: the committing store must be the last instruction of the section",
            ),
            ErrorKind::ExitAfterStore => f.write_str(
                "compare-exit after a speculative store: the exit would leave the store visible without a commit; \
                 move the comparison before the first `store`/`memcpy`",
            ),
            ErrorKind::UnsafeRequired(why) => write!(f, "{why}: declare the sequence `unsafe fn`"),
            ErrorKind::TooManyLiveValues { arch, needed, available } => write!(
                f,
                "too many live values for {arch}: the section needs {needed} registers but {available} are available"
            ),
            ErrorKind::WordTooWide { arch, ty } => write!(
                f,
                "`{ty}` values are not supported on {arch}: its registers hold 32 bits and a section commits one register; use `usize`, `u32` or narrower words (for a 64-bit per-CPU count, `rseq_dsl::percpu::Counter` works on every target)"
            ),
        }
    }
}
