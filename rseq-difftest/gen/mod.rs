//! The random sequence generator, shared by `build.rs` (which writes the test's cases) and the
//! `difftest-shrink` binary (which regenerates one case and shrinks it). Included with `#[path]`
//! by both, so it only uses `proptest`, `proc-macro2` and `rseq-codegen`.
//!
//! A sequence is generated as a [`Spec`]: a proptest value whose parts name no locals. Value
//! references are [`Index`]es into the values defined so far, resolved when the spec is rendered,
//! so every spec renders to a valid sequence and proptest's shrinking (dropping steps, simplifying
//! expressions towards literals, types towards `u8`, ...) keeps it valid: a removed `let` only
//! makes later references resolve to another value.
//!
//! Rules the rendering enforces (`docs/DSL.md`): one commit, last; compare-exits only before the
//! first speculative store or copy; names defined before use; operands of one type; an
//! expression standing alone (a `let`, a compare's left side, a shifted value) or a binary
//! operation names at least one value (an operation on literals only would be a Rust operand
//! without a type).
//!
//! Memory layout the sequences assume (the runner provides it): `p` points at 256 bytes aligned
//! to 64. Loads and stores stay in `[0, 128)`, aligned to their width; `memcpy` copies from
//! `[128, 256)` to `[0, 128)` (never overlapping).
//!
//! Replay: case `k` of seed `s` draws from its own ChaCha stream (seeded from `(s, k)` only), so
//! it can be regenerated without the other cases. Candidates over x86_64's or the target's
//! register budget are drawn again from the same stream, so the rejections replay too.

use std::fmt::Write as _;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::{BoxedStrategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// `RSEQ_DIFFTEST_SEED` when unset.
pub const DEFAULT_SEED: u64 = 0x5eed_d1ff_7e57_0001;
/// `RSEQ_DIFFTEST_N` when unset.
pub const DEFAULT_N: usize = 200;

/// A seed as written in `RSEQ_DIFFTEST_SEED` or `--seed`: decimal or `0x` hex.
pub fn parse_seed(s: &str) -> Option<u64> {
    let s = s.trim().replace('_', "");
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ty {
    U8,
    U16,
    U32,
    U64,
    Usize,
    I8,
    I16,
    I32,
    I64,
    Isize,
}

impl Ty {
    pub fn name(self) -> &'static str {
        match self {
            Ty::U8 => "u8",
            Ty::U16 => "u16",
            Ty::U32 => "u32",
            Ty::U64 => "u64",
            Ty::Usize => "usize",
            Ty::I8 => "i8",
            Ty::I16 => "i16",
            Ty::I32 => "i32",
            Ty::I64 => "i64",
            Ty::Isize => "isize",
        }
    }

    fn signed(self) -> bool {
        matches!(self, Ty::I8 | Ty::I16 | Ty::I32 | Ty::I64 | Ty::Isize)
    }
}

/// The word types of the target: all ten where registers hold 64 bits; on 32-bit targets (arm)
/// no `u64`/`i64` (the macro refuses them there) and `usize`/`isize` are 4 bytes.
#[derive(Clone, Debug)]
pub struct Target {
    pub tys: Vec<Ty>,
    pub ptr_bytes: u64,
    /// The element type of the `PerCpu` parameter (`rseq_difftest::Slot`).
    pub slot: Ty,
    /// The architecture whose register budget candidates must fit (besides x86_64's).
    pub arch: rseq_codegen::Arch,
}

impl Target {
    /// `arch` as in `CARGO_CFG_TARGET_ARCH` / `std::env::consts::ARCH`.
    pub fn new(pointer_width: u32, arch: &str) -> Target {
        let ptr_bytes = if pointer_width == 32 { 4 } else { 8 };
        let all = [
            Ty::U8,
            Ty::U16,
            Ty::U32,
            Ty::U64,
            Ty::Usize,
            Ty::I8,
            Ty::I16,
            Ty::I32,
            Ty::I64,
            Ty::Isize,
        ];
        let tys = all
            .into_iter()
            .filter(|t| ptr_bytes == 8 || !matches!(t, Ty::U64 | Ty::I64))
            .collect();
        let arch = match arch {
            "aarch64" => rseq_codegen::Arch::Aarch64,
            "arm" => rseq_codegen::Arch::Arm,
            "riscv64" => rseq_codegen::Arch::Riscv64,
            "powerpc64" => rseq_codegen::Arch::Ppc64le,
            "s390x" => rseq_codegen::Arch::S390x,
            "loongarch64" => rseq_codegen::Arch::Loongarch64,
            _ => rseq_codegen::Arch::X86_64,
        };
        Target {
            tys,
            ptr_bytes,
            slot: if ptr_bytes == 8 { Ty::U64 } else { Ty::Usize },
            arch,
        }
    }

    /// The target being built, from a build script's cargo variables (not the host's: the crate
    /// is cross-compiled by `xarch/test`).
    pub fn from_cargo_env() -> Target {
        let var = |k: &str| std::env::var(k).unwrap_or_default();
        let width = if var("CARGO_CFG_TARGET_POINTER_WIDTH") == "32" {
            32
        } else {
            64
        };
        Target::new(width, &var("CARGO_CFG_TARGET_ARCH"))
    }

    /// The target this program was compiled for.
    pub fn host() -> Target {
        Target::new(usize::BITS, std::env::consts::ARCH)
    }

    fn bytes(&self, t: Ty) -> u64 {
        match t {
            Ty::U8 | Ty::I8 => 1,
            Ty::U16 | Ty::I16 => 2,
            Ty::U32 | Ty::I32 => 4,
            Ty::U64 | Ty::I64 => 8,
            Ty::Usize | Ty::Isize => self.ptr_bytes,
        }
    }
}

// ---------------------------------------------------------------- the spec (proptest values)

/// A literal, biased towards edge values: `kind` 0 = 0, 1 = 1, 2 = all ones (-1 / max), 3 = top
/// bit (min), 4 = signed max, 5 = `raw % 16`, 6 = `raw % 300`, 7 = `raw`; truncated to its type.
#[derive(Clone, Debug)]
pub struct Lit {
    pub kind: u8,
    pub raw: u64,
    pub hex: bool,
}

/// An operand: a literal, a value of the wanted type, or a cast of any value.
#[derive(Clone, Debug)]
pub enum Leaf {
    Lit(Lit),
    /// One of the values of the wanted type (a cast of any value when there is none).
    Same(Index),
    /// Any value, cast to the wanted type.
    Any(Index),
}

#[derive(Clone, Copy, Debug)]
pub enum BinOp {
    Add,
    Sub,
    And,
    Or,
    Xor,
}

/// A shift count: a constant (also >= the width: masked like `wrapping_shl`), or any operand.
#[derive(Clone, Debug)]
pub enum Count {
    Const(u8),
    Value(Ty, Leaf),
}

/// An expression; its type comes from where it stands.
#[derive(Clone, Debug)]
pub enum Expr {
    Leaf(Leaf),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    /// `left`: `<<`, else `>>`.
    Shift(bool, Box<Expr>, Count),
    /// `(inner as T)`, `inner` of the given type.
    Cast(Ty, Box<Expr>),
}

/// An aligned address in `[0, 128)`: a constant offset (index of a width-sized cell) or a value
/// masked to a multiple of 8.
#[derive(Clone, Debug)]
pub enum Addr {
    Const(Index),
    Value(Index),
}

#[derive(Clone, Copy, Debug)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A step before the first speculative store: loads, computations, compare-exits.
#[derive(Clone, Debug)]
pub enum Early {
    Load(Ty, Addr),
    Let(Ty, Expr),
    /// `if lhs op rhs { return tag [| value] }`.
    Exit {
        ty: Ty,
        lhs: Expr,
        op: Cmp,
        rhs: Expr,
        ret: Option<Index>,
    },
}

/// A step after the compare-exits: speculative stores and copies, loads, computations.
#[derive(Clone, Debug)]
pub enum Late {
    Store(Ty, Addr, Expr),
    /// `memcpy(p + dst, p + 128 + src, len)`, offsets chosen so that both stay in their half.
    Memcpy {
        len: u8,
        dst: Index,
        src: Index,
    },
    Load(Ty, Addr),
    Let(Ty, Expr),
}

/// The committing store: to the slot (its type) or to the scratch area.
#[derive(Clone, Debug)]
pub enum Commit {
    Slot(Expr),
    Addr(Ty, Addr, Expr),
}

/// One generated sequence.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Types of the parameters `a` and `b`.
    pub ta: Ty,
    pub tb: Ty,
    /// `let l = load(slot);` first.
    pub load_slot: bool,
    pub early: Vec<Early>,
    pub late: Vec<Late>,
    /// `commit store_release` instead of `commit store`.
    pub release: bool,
    pub commit: Commit,
}

impl Spec {
    /// Steps besides `let slot = c.current();` and the commit.
    pub fn steps(&self) -> usize {
        usize::from(self.load_slot) + self.early.len() + self.late.len()
    }
}

// ---------------------------------------------------------------- strategies

fn ty(target: &Target) -> BoxedStrategy<Ty> {
    prop::sample::select(target.tys.clone()).boxed()
}

fn lit() -> impl Strategy<Value = Lit> {
    (0u8..8, any::<u64>(), prop::bool::weighted(0.3)).prop_map(|(kind, raw, hex)| Lit {
        kind,
        raw,
        hex,
    })
}

fn leaf() -> BoxedStrategy<Leaf> {
    prop_oneof![
        3 => lit().prop_map(Leaf::Lit),
        4 => any::<Index>().prop_map(Leaf::Same),
        3 => any::<Index>().prop_map(Leaf::Any),
    ]
    .boxed()
}

/// An expression of at most `depth` operations: a leaf 35% of the time, else a binary operation
/// (60%), a shift (20%) or a cast (20%).
fn expr(target: &Target, depth: u32) -> BoxedStrategy<Expr> {
    if depth == 0 {
        return leaf().prop_map(Expr::Leaf).boxed();
    }
    let sub = expr(target, depth - 1);
    let binop = prop_oneof![
        Just(BinOp::Add),
        Just(BinOp::Sub),
        Just(BinOp::And),
        Just(BinOp::Or),
        Just(BinOp::Xor),
    ];
    let count = prop_oneof![
        6 => (0u8..80).prop_map(Count::Const),
        4 => (ty(target), leaf()).prop_map(|(t, l)| Count::Value(t, l)),
    ];
    prop_oneof![
        35 => leaf().prop_map(Expr::Leaf),
        39 => (binop, sub.clone(), sub.clone())
            .prop_map(|(op, a, b)| Expr::Bin(op, Box::new(a), Box::new(b))),
        13 => (any::<bool>(), sub.clone(), count)
            .prop_map(|(left, a, c)| Expr::Shift(left, Box::new(a), c)),
        13 => (ty(target), sub).prop_map(|(t, e)| Expr::Cast(t, Box::new(e))),
    ]
    .boxed()
}

fn addr() -> BoxedStrategy<Addr> {
    prop_oneof![
        8 => any::<Index>().prop_map(Addr::Const),
        2 => any::<Index>().prop_map(Addr::Value),
    ]
    .boxed()
}

fn cmp() -> impl Strategy<Value = Cmp> {
    prop_oneof![
        Just(Cmp::Eq),
        Just(Cmp::Ne),
        Just(Cmp::Lt),
        Just(Cmp::Le),
        Just(Cmp::Gt),
        Just(Cmp::Ge),
    ]
}

fn early(target: &Target) -> BoxedStrategy<Early> {
    prop_oneof![
        (ty(target), expr(target, 2)).prop_map(|(t, e)| Early::Let(t, e)),
        (ty(target), addr()).prop_map(|(t, a)| Early::Load(t, a)),
        (
            ty(target),
            expr(target, 1),
            cmp(),
            expr(target, 1),
            prop::option::of(any::<Index>())
        )
            .prop_map(|(ty, lhs, op, rhs, ret)| Early::Exit {
                ty,
                lhs,
                op,
                rhs,
                ret
            }),
    ]
    .boxed()
}

fn late(target: &Target) -> BoxedStrategy<Late> {
    prop_oneof![
        (ty(target), expr(target, 2)).prop_map(|(t, e)| Late::Let(t, e)),
        (ty(target), addr()).prop_map(|(t, a)| Late::Load(t, a)),
        (ty(target), addr(), expr(target, 1)).prop_map(|(t, a, e)| Late::Store(t, a, e)),
        (1u8..=64, any::<Index>(), any::<Index>()).prop_map(|(len, dst, src)| Late::Memcpy {
            len,
            dst,
            src
        }),
    ]
    .boxed()
}

/// The generator: a proptest strategy for one sequence of `target`.
pub fn spec(target: &Target) -> BoxedStrategy<Spec> {
    let commit = prop_oneof![
        4 => expr(target, 2).prop_map(Commit::Slot),
        6 => (ty(target), addr(), expr(target, 2)).prop_map(|(t, a, e)| Commit::Addr(t, a, e)),
    ];
    // Shrinking goes through the tuple in order: drop steps first, then simplify the commit, then
    // the parameter types.
    (
        prop::collection::vec(early(target), 0..5),
        prop::collection::vec(late(target), 0..4),
        any::<bool>(),
        commit,
        any::<bool>(),
        (ty(target), ty(target)),
    )
        .prop_map(|(early, late, load_slot, commit, release, (ta, tb))| Spec {
            ta,
            tb,
            load_slot,
            early,
            late,
            release,
            commit,
        })
        .boxed()
}

// ---------------------------------------------------------------- rendering

/// A rendered sequence.
#[derive(Clone, Debug)]
pub struct Rendered {
    /// The fn inside `rseq! { .. }`.
    pub source: String,
    /// The steps alone (no signature, no tail): what the fault predicates look at.
    pub steps: String,
    pub ta: Ty,
    pub tb: Ty,
}

struct Render<'t> {
    target: &'t Target,
    /// Sequence locals and integer parameters with their types (pointers are not listed: their
    /// values differ between processes and must not reach results).
    vals: Vec<(String, Ty)>,
    next_local: usize,
}

fn literal(target: &Target, lit: &Lit, t: Ty) -> String {
    let bits = target.bytes(t) * 8;
    let raw: u64 = match lit.kind {
        0 => 0,
        1 => 1,
        2 => u64::MAX,
        3 => 1 << (bits - 1),
        4 => (1 << (bits - 1)) - 1,
        5 => lit.raw % 16,
        6 => lit.raw % 300,
        _ => lit.raw,
    };
    let shift = 64 - bits;
    if t.signed() {
        let v = ((raw << shift) as i64) >> shift;
        if v < 0 {
            format!("({v}{})", t.name())
        } else {
            format!("{v}{}", t.name())
        }
    } else {
        let v = (raw << shift) >> shift;
        if lit.hex {
            format!("{v:#x}{}", t.name())
        } else {
            format!("{v}{}", t.name())
        }
    }
}

impl Render<'_> {
    fn fresh(&mut self, t: Ty) -> String {
        let name = format!("l{}", self.next_local);
        self.next_local += 1;
        self.vals.push((name.clone(), t));
        name
    }

    fn any(&self, i: &Index) -> &str {
        &self.vals[i.index(self.vals.len())].0
    }

    /// Renders a leaf of type `t`; `named` forces it to name a value. Returns whether it does.
    fn leaf(&self, l: &Leaf, t: Ty, named: bool) -> (String, bool) {
        let same: Vec<&str> = self
            .vals
            .iter()
            .filter(|(_, vt)| *vt == t)
            .map(|(n, _)| n.as_str())
            .collect();
        match l {
            Leaf::Lit(lit) if !named => (literal(self.target, lit, t), false),
            Leaf::Lit(_) => match same.first() {
                Some(n) => ((*n).to_owned(), true),
                None => (format!("({} as {})", self.vals[0].0, t.name()), true),
            },
            Leaf::Same(i) if !same.is_empty() => (same[i.index(same.len())].to_owned(), true),
            Leaf::Same(i) | Leaf::Any(i) => (format!("({} as {})", self.any(i), t.name()), true),
        }
    }

    /// Renders `e` as type `t`; `named`: it must name at least one value (see the module docs).
    fn expr(&self, e: &Expr, t: Ty, named: bool) -> (String, bool) {
        match e {
            Expr::Leaf(l) => self.leaf(l, t, named),
            Expr::Bin(op, a, b) => {
                let op = match op {
                    BinOp::Add => "+",
                    BinOp::Sub => "-",
                    BinOp::And => "&",
                    BinOp::Or => "|",
                    BinOp::Xor => "^",
                };
                let (a, an) = self.expr(a, t, false);
                let (b, _) = self.expr(b, t, !an);
                (format!("({a} {op} {b})"), true)
            }
            Expr::Shift(left, a, count) => {
                let (a, _) = self.expr(a, t, true);
                let c = match count {
                    Count::Const(k) => k.to_string(),
                    Count::Value(ct, l) => self.leaf(l, *ct, false).0,
                };
                let op = if *left { "<<" } else { ">>" };
                (format!("({a} {op} {c})"), true)
            }
            Expr::Cast(from, inner) => {
                let (s, n) = self.expr(inner, *from, named);
                (format!("({s} as {})", t.name()), n)
            }
        }
    }

    fn addr(&self, a: &Addr, t: Ty) -> String {
        match a {
            // (n as usize) & 0x78 is a multiple of 8 below 128.
            Addr::Value(i) => format!("p + (({} as usize) & 120)", self.any(i)),
            Addr::Const(i) => {
                let w = self.target.bytes(t);
                format!("p + {}", i.index((128 / w) as usize) as u64 * w)
            }
        }
    }
}

/// Renders `spec` as the fn `name` (the inside of an `rseq!` invocation).
pub fn render(target: &Target, spec: &Spec, name: &str) -> Rendered {
    let slot = target.slot;
    let mut r = Render {
        target,
        vals: vec![("a".into(), spec.ta), ("b".into(), spec.tb)],
        next_local: 0,
    };
    let mut body = String::new();
    if spec.load_slot {
        let l = r.fresh(slot);
        writeln!(body, "        let {l} = load(slot);").unwrap();
    }
    let mut exits = 0u64;
    for step in &spec.early {
        match step {
            Early::Load(t, a) => {
                let a = r.addr(a, *t);
                let l = r.fresh(*t);
                writeln!(body, "        let {l} = load::<{}>({a});", t.name()).unwrap();
            }
            Early::Let(t, e) => {
                let (e, _) = r.expr(e, *t, true);
                let l = r.fresh(*t);
                writeln!(body, "        let {l} = {e};").unwrap();
            }
            Early::Exit {
                ty,
                lhs,
                op,
                rhs,
                ret,
            } => {
                let (lhs, _) = r.expr(lhs, *ty, true);
                let (rhs, _) = r.expr(rhs, *ty, false);
                let op = match op {
                    Cmp::Eq => "==",
                    Cmp::Ne => "!=",
                    Cmp::Lt => "<",
                    Cmp::Le => "<=",
                    Cmp::Gt => ">",
                    Cmp::Ge => ">=",
                };
                // Exit values have top byte 0xee (commits: 0), then the exit number.
                let tag = 0xee00_0000_0000_0000u64 | (exits << 48);
                let ret = match ret {
                    Some(i) => format!("{tag:#x} | (({} as u64) & 0xffff_ffff_ffff)", r.any(i)),
                    None => format!("{tag:#x}"),
                };
                exits += 1;
                writeln!(body, "        if {lhs} {op} {rhs} {{ return {ret}; }}").unwrap();
            }
        }
    }
    for step in &spec.late {
        match step {
            Late::Store(t, a, e) => {
                let a = r.addr(a, *t);
                let (v, _) = r.expr(e, *t, false);
                writeln!(body, "        store::<{}>({a}, {v});", t.name()).unwrap();
            }
            Late::Memcpy { len, dst, src } => {
                let len = usize::from(*len);
                let dst = dst.index(128 - len + 1);
                let src = 128 + src.index(128 - len + 1);
                writeln!(body, "        memcpy(p + {dst}, p + {src}, {len});").unwrap();
            }
            Late::Load(t, a) => {
                let a = r.addr(a, *t);
                let l = r.fresh(*t);
                writeln!(body, "        let {l} = load::<{}>({a});", t.name()).unwrap();
            }
            Late::Let(t, e) => {
                let (e, _) = r.expr(e, *t, true);
                let l = r.fresh(*t);
                writeln!(body, "        let {l} = {e};").unwrap();
            }
        }
    }
    let kind = if spec.release {
        "store_release"
    } else {
        "store"
    };
    match &spec.commit {
        Commit::Slot(e) => {
            let (v, _) = r.expr(e, slot, false);
            writeln!(body, "        commit {kind}(slot, {v});").unwrap();
        }
        Commit::Addr(t, a, e) => {
            let a = r.addr(a, *t);
            let (v, _) = r.expr(e, *t, false);
            writeln!(body, "        commit {kind}::<{}>({a}, {v});", t.name()).unwrap();
        }
    }
    // Tail: Rust over every local and parameter (as their Rust types).
    let mut tail = String::from("0x00ff_ffff_ffff_ffff & (0u64");
    for (i, (n, _)) in r.vals.iter().enumerate() {
        write!(tail, " ^ ({n} as u64).rotate_left({})", (i * 7) % 64).unwrap();
    }
    let source = format!(
        "    pub unsafe fn {name}(c: &PerCpu<{}>, p: *mut u8, a: {}, b: {}) -> u64 {{\n        \
         let slot = c.current();\n{body}        {tail})\n    }}\n",
        slot.name(),
        spec.ta.name(),
        spec.tb.name()
    );
    Rendered {
        source,
        steps: body,
        ta: spec.ta,
        tb: spec.tb,
    }
}

/// The runner of a rendered sequence: `run_<name>(c, p, a, b)` calls `try_<name>` with its
/// arguments cast to the sequence's parameter types.
pub fn runner_fn(name: &str, r: &Rendered) -> String {
    format!(
        "fn run_{name}(c: &PerCpu<Slot>, p: *mut u8, a: u64, b: u64) -> Result<u64, Error> {{\n    \
         // SAFETY: `p` points at the runner's 256-byte scratch area (64-aligned); the sequence only\n    \
         // accesses [0, 256) at addresses aligned to their width (by construction); one thread.\n    \
         unsafe {{ try_{name}(c, p, a as {}, b as {}) }}\n}}\n",
        r.ta.name(),
        r.tb.name()
    )
}

/// The fn name of case `k`.
pub fn case_name(k: usize) -> String {
    format!("d{k:03}")
}

// ---------------------------------------------------------------- checking and drawing

/// What `rseq_codegen` says about a rendered sequence.
#[derive(Debug)]
pub enum Check {
    /// Compiles for x86_64 and the target.
    Fits,
    /// Over x86_64's or the target's register budget.
    OverBudget,
    /// `compile` panicked (a codegen bug: the macro would panic too): the message.
    Panicked(String),
    /// Does not parse or validate (a generator or codegen bug): the errors.
    Invalid(String),
}

/// Runs `source` through `rseq_codegen::parse` + `compile`. Callers that expect panics silence the
/// panic hook around it.
pub fn check(target: &Target, source: &str) -> Check {
    let tokens: proc_macro2::TokenStream = match source.parse() {
        Ok(t) => t,
        Err(e) => return Check::Invalid(format!("tokens: {e}")),
    };
    let fns = match rseq_codegen::parse(tokens) {
        Ok(f) => f,
        Err(e) => return Check::Invalid(format!("parse: {e}")),
    };
    let compiled = match std::panic::catch_unwind(|| rseq_codegen::compile(&fns[0])) {
        Ok(r) => r,
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            return Check::Panicked(msg);
        }
    };
    match compiled {
        Err(errs) => {
            let msgs: Vec<String> = errs.iter().map(|e| format!("{e:?}")).collect();
            Check::Invalid(msgs.join("\n"))
        }
        Ok(c) => {
            if c.arch_error(rseq_codegen::Arch::X86_64).is_some()
                || c.arch_error(target.arch).is_some()
            {
                Check::OverBudget
            } else {
                Check::Fits
            }
        }
    }
}

/// The proptest runner of case `k` of `seed`: a ChaCha stream seeded from `(seed, k)` alone.
pub fn case_runner(seed: u64, k: usize) -> TestRunner {
    // splitmix64 over (seed, k) fills the 32-byte ChaCha seed.
    let mut state = seed ^ (k as u64).wrapping_mul(0xd1b5_4a32_d192_ed03);
    let mut bytes = Vec::with_capacity(32);
    for _ in 0..4 {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        bytes.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    let config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Case `k` of `seed`, as the build and the shrinker see it.
pub struct Case {
    /// The accepted candidate's value tree: `current()` is the case; shrink it from here.
    pub tree: Box<dyn ValueTree<Value = Spec>>,
    pub rendered: Rendered,
    /// Candidates drawn before it and dropped for the register budget.
    pub rejected: usize,
    /// Candidates on which `compile` panicked: message and source.
    pub panics: Vec<String>,
}

/// Draws case `k` of `seed`: candidates until one fits x86_64's and the target's register budget.
/// Panics on a candidate that does not validate (a generator or codegen bug), with its source.
pub fn generate(target: &Target, seed: u64, k: usize) -> Case {
    let mut runner = case_runner(seed, k);
    let strategy = spec(target);
    let name = case_name(k);
    let mut rejected = 0;
    let mut panics = Vec::new();
    for _ in 0..10_000 {
        let tree = strategy
            .new_tree(&mut runner)
            .expect("no filters: never rejects");
        let rendered = render(target, &tree.current(), &name);
        match check(target, &rendered.source) {
            Check::Fits => {
                return Case {
                    tree,
                    rendered,
                    rejected,
                    panics,
                }
            }
            Check::OverBudget => rejected += 1,
            Check::Panicked(msg) => panics.push(format!("{msg}\n{}", rendered.source)),
            Check::Invalid(msgs) => panic!(
                "generated sequence rejected (generator or codegen bug; seed {seed:#x}, case {k}):\n{}\n{msgs}",
                rendered.source
            ),
        }
    }
    panic!("seed {seed:#x}, case {k}: no candidate in 10000 fits the register budget")
}
