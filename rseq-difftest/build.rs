//! Generates random *valid* `rseq!` sequences and a table of runners into `OUT_DIR/generated.rs`.
//!
//! Seeded and reproducible: `RSEQ_DIFFTEST_SEED` (default fixed) and `RSEQ_DIFFTEST_N` (default 200)
//! choose the set; the seed and every sequence's source end up in the generated table, so a failing
//! test prints them. Every candidate is valid by construction (one commit, last; no compare-exit after
//! a speculative store; names defined before use; operands typed per `docs/DSL.md`); it is then run
//! through `rseq_codegen::parse` + `compile` here: a validation error is a generator (or codegen) bug
//! and fails the build with the source, and a candidate over x86_64's register budget is replaced by
//! a new one (counted in `REJECTED_FOR_BUDGET`).
//!
//! Memory layout the sequences assume (the runner provides it): `p` points at 256 bytes aligned to
//! 64. Loads and stores stay in `[0, 128)`, aligned to their width; `memcpy` copies from `[128, 256)`
//! to `[0, 128)` (never overlapping).

use std::fmt::Write as _;

const DEFAULT_SEED: u64 = 0x5eed_d1ff_7e57_0001;
const DEFAULT_N: usize = 200;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ty {
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

/// The word types of the target: all ten where registers hold 64 bits; on 32-bit targets (arm)
/// no `u64`/`i64` (the macro refuses them there) and `usize`/`isize` are 4 bytes.
struct Target {
    tys: Vec<Ty>,
    ptr_bytes: u64,
    /// The element type of the `PerCpu` parameter (`rseq_difftest::Slot`).
    slot: Ty,
    /// The architecture whose register budget candidates must fit (besides x86_64's).
    arch: rseq_codegen::Arch,
}

impl Target {
    fn from_cargo_env() -> Target {
        let var = |k: &str| std::env::var(k).unwrap_or_default();
        let ptr_bytes = if var("CARGO_CFG_TARGET_POINTER_WIDTH") == "32" {
            4
        } else {
            8
        };
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
        let arch = match var("CARGO_CFG_TARGET_ARCH").as_str() {
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
}

thread_local! {
    static TARGET: Target = Target::from_cargo_env();
}

fn tys() -> Vec<Ty> {
    TARGET.with(|t| t.tys.clone())
}

impl Ty {
    fn name(self) -> &'static str {
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
    fn bytes(self) -> u64 {
        match self {
            Ty::U8 | Ty::I8 => 1,
            Ty::U16 | Ty::I16 => 2,
            Ty::U32 | Ty::I32 => 4,
            Ty::U64 | Ty::I64 => 8,
            Ty::Usize | Ty::Isize => TARGET.with(|t| t.ptr_bytes),
        }
    }
    fn signed(self) -> bool {
        matches!(self, Ty::I8 | Ty::I16 | Ty::I32 | Ty::I64 | Ty::Isize)
    }
}

/// A literal of type `t`, with its suffix, biased towards edge values.
fn literal(rng: &mut Rng, t: Ty) -> String {
    let bits = t.bytes() * 8;
    let raw: u64 = match rng.below(8) {
        0 => 0,
        1 => 1,
        2 => u64::MAX,              // -1 / max
        3 => 1 << (bits - 1),       // min / top bit
        4 => (1 << (bits - 1)) - 1, // signed max
        5 => rng.below(16),
        6 => rng.below(300),
        _ => rng.next(),
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
        if rng.chance(30) {
            format!("{v:#x}{}", t.name())
        } else {
            format!("{v}{}", t.name())
        }
    }
}

struct Gen<'a> {
    rng: &'a mut Rng,
    /// Sequence locals and integer parameters with their types (pointers are not listed: their
    /// values differ between processes and must not reach results).
    vals: Vec<(String, Ty)>,
    next_local: usize,
    /// Whether the expression being generated names a value (see `named_expr`).
    named: bool,
}

impl Gen<'_> {
    fn fresh(&mut self) -> String {
        self.next_local += 1;
        format!("l{}", self.next_local - 1)
    }

    /// A leaf of type `t`: a value of that type, a cast of another value, or a literal.
    fn leaf(&mut self, t: Ty) -> String {
        let same: Vec<String> = self
            .vals
            .iter()
            .filter(|(_, vt)| *vt == t)
            .map(|(n, _)| n.clone())
            .collect();
        match self.rng.below(10) {
            0..=3 if !same.is_empty() => {
                self.named = true;
                self.rng.pick(&same).clone()
            }
            0..=6 if !self.vals.is_empty() => {
                self.named = true;
                let (n, _) = self.rng.pick(&self.vals).clone();
                format!("({n} as {})", t.name())
            }
            _ => literal(self.rng, t),
        }
    }

    /// An expression of type `t`.
    fn expr(&mut self, t: Ty, depth: u32) -> String {
        if depth == 0 || self.rng.chance(35) {
            return self.leaf(t);
        }
        match self.rng.below(10) {
            0..=5 => {
                let op = *self.rng.pick(&["+", "-", "&", "|", "^"]);
                let (a, b) = self.operands(t, t, depth - 1);
                format!("({a} {op} {b})")
            }
            6 | 7 => {
                let op = *self.rng.pick(&["<<", ">>"]);
                let a = self.named_expr(t, depth - 1);
                // Counts: constants (also >= the width: masked like `wrapping_shl`), or any value.
                let b = if self.rng.chance(60) {
                    format!("{}", self.rng.below(80))
                } else {
                    let ct = *self.rng.pick(&tys());
                    self.leaf(ct)
                };
                format!("({a} {op} {b})")
            }
            _ => {
                let from = *self.rng.pick(&tys());
                let inner = self.expr(from, depth - 1);
                format!("({inner} as {})", t.name())
            }
        }
    }

    /// Two operands of a binary operation, at least one naming a value: an operation on literals
    /// only is a Rust operand, evaluated by Rust (it may overflow at compile time), not by the DSL.
    fn operands(&mut self, ta: Ty, tb: Ty, depth: u32) -> (String, String) {
        let outer = self.named;
        self.named = false;
        let a = self.expr(ta, depth);
        let b = if self.named {
            self.expr(tb, depth)
        } else {
            self.named_expr(tb, depth)
        };
        self.named = true;
        let _ = outer;
        (a, b)
    }

    /// An expression of type `t` that names at least one value. The lowering gives an expression
    /// made only of literals (`73i32 - 5i32`) no type even when they are suffixed (it becomes one
    /// Rust operand, typed by context only): `cannot infer the type` in a `let` or a compare.
    fn named_expr(&mut self, t: Ty, depth: u32) -> String {
        loop {
            self.named = false;
            let e = self.expr(t, depth);
            if self.named {
                return e;
            }
            // A bare literal is fine as an operand, not as a whole `let` or compare side.
        }
    }

    /// An aligned address in `[0, 128)` for a `w`-byte access: constant or computed offset.
    fn addr(&mut self, w: u64) -> String {
        if !self.vals.is_empty() && self.rng.chance(20) {
            let (n, _) = self.rng.pick(&self.vals).clone();
            // (n as usize) & 0x78 is a multiple of 8 below 128.
            format!("p + (({n} as usize) & 120)")
        } else {
            let off = self.rng.below(128 / w) * w;
            format!("p + {off}")
        }
    }

    fn define(&mut self, name: String, t: Ty) {
        self.vals.push((name, t));
    }
}

/// One candidate: `(fn source, param types)`.
fn sequence(rng: &mut Rng, name: &str) -> (String, Ty, Ty) {
    let (ta, tb) = (*rng.pick(&tys()), *rng.pick(&tys()));
    let slot = TARGET.with(|t| t.slot);
    let mut g = Gen {
        rng,
        vals: vec![("a".into(), ta), ("b".into(), tb)],
        next_local: 0,
        named: false,
    };
    let mut body = String::new();
    body.push_str("        let slot = c.current();\n");
    if g.rng.chance(50) {
        let l = g.fresh();
        writeln!(body, "        let {l} = load(slot);").unwrap();
        g.define(l, slot);
    }
    let mut exits = 0u64;
    // Phase 1: loads, computations and compare-exits.
    for _ in 0..g.rng.below(5) {
        match g.rng.below(3) {
            0 => {
                let t = *g.rng.pick(&tys());
                let a = g.addr(t.bytes());
                let l = g.fresh();
                writeln!(body, "        let {l} = load::<{}>({a});", t.name()).unwrap();
                g.define(l, t);
            }
            1 => {
                let t = *g.rng.pick(&tys());
                let e = g.named_expr(t, 2);
                let l = g.fresh();
                writeln!(body, "        let {l} = {e};").unwrap();
                g.define(l, t);
            }
            _ => {
                let t = *g.rng.pick(&tys());
                let lhs = g.named_expr(t, 1);
                let rhs = g.expr(t, 1);
                let op = *g.rng.pick(&["==", "!=", "<", "<=", ">", ">="]);
                // Exit values have top byte 0xee (commits: 0), then the exit number.
                let tag = 0xee00_0000_0000_0000u64 | (exits << 48);
                let ret = if g.rng.chance(50) {
                    let (n, _) = g.rng.pick(&g.vals).clone();
                    format!("{tag:#x} | (({n} as u64) & 0xffff_ffff_ffff)")
                } else {
                    format!("{tag:#x}")
                };
                exits += 1;
                writeln!(body, "        if {lhs} {op} {rhs} {{ return {ret}; }}").unwrap();
            }
        }
    }
    // Phase 2: speculative stores and copies (plus loads and computations); no compare-exits.
    for _ in 0..g.rng.below(4) {
        match g.rng.below(4) {
            0 => {
                let t = *g.rng.pick(&tys());
                let a = g.addr(t.bytes());
                let v = g.expr(t, 1);
                writeln!(body, "        store::<{}>({a}, {v});", t.name()).unwrap();
            }
            1 => {
                let len = 1 + g.rng.below(64);
                let dst = g.rng.below(128 - len + 1);
                let src = 128 + g.rng.below(128 - len + 1);
                writeln!(body, "        memcpy(p + {dst}, p + {src}, {len});").unwrap();
            }
            2 => {
                let t = *g.rng.pick(&tys());
                let a = g.addr(t.bytes());
                let l = g.fresh();
                writeln!(body, "        let {l} = load::<{}>({a});", t.name()).unwrap();
                g.define(l, t);
            }
            _ => {
                let t = *g.rng.pick(&tys());
                let e = g.named_expr(t, 2);
                let l = g.fresh();
                writeln!(body, "        let {l} = {e};").unwrap();
                g.define(l, t);
            }
        }
    }
    let kind = *g.rng.pick(&["store", "store_release"]);
    if g.rng.chance(40) {
        let v = g.expr(slot, 2);
        writeln!(body, "        commit {kind}(slot, {v});").unwrap();
    } else {
        let t = *g.rng.pick(&tys());
        let a = g.addr(t.bytes());
        let v = g.expr(t, 2);
        writeln!(body, "        commit {kind}::<{}>({a}, {v});", t.name()).unwrap();
    }
    // Tail: Rust over every local and parameter (as their Rust types).
    let mut tail = String::from("0x00ff_ffff_ffff_ffff & (0u64");
    for (i, (n, _)) in g.vals.iter().enumerate() {
        write!(tail, " ^ ({n} as u64).rotate_left({})", (i * 7) % 64).unwrap();
    }
    writeln!(body, "        {tail})").unwrap();
    let src = format!(
        "    pub unsafe fn {name}(c: &PerCpu<{}>, p: *mut u8, a: {}, b: {}) -> u64 {{\n{body}    }}\n",
        slot.name(),
        ta.name(),
        tb.name()
    );
    (src, ta, tb)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RSEQ_DIFFTEST_SEED");
    println!("cargo:rerun-if-env-changed=RSEQ_DIFFTEST_N");
    let seed = std::env::var("RSEQ_DIFFTEST_SEED")
        .ok()
        .map(|s| {
            let s = s.trim();
            s.strip_prefix("0x")
                .map_or_else(|| s.parse(), |h| u64::from_str_radix(h, 16))
                .expect("RSEQ_DIFFTEST_SEED: a u64")
        })
        .unwrap_or(DEFAULT_SEED);
    let n: usize = std::env::var("RSEQ_DIFFTEST_N")
        .ok()
        .map_or(DEFAULT_N, |s| s.parse().expect("RSEQ_DIFFTEST_N: a count"));

    let mut rng = Rng(seed);
    let mut out = String::new();
    let mut table = String::new();
    let mut rejected = 0usize;
    // Candidates on which `compile` panicked (a codegen bug: the macro would panic too); reported by
    // the `codegen_does_not_panic` test, and replaced here so the differential test still runs.
    let mut panics: Vec<String> = Vec::new();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for i in 0..n {
        let name = format!("d{i:03}");
        let (src, ta, tb) = loop {
            let cand = sequence(&mut rng, &name);
            let tokens: proc_macro2::TokenStream = cand.0.parse().expect("generated tokens");
            let fns = rseq_codegen::parse(tokens)
                .unwrap_or_else(|e| panic!("generated sequence does not parse: {e}\n{}", cand.0));
            let compiled = match std::panic::catch_unwind(|| rseq_codegen::compile(&fns[0])) {
                Ok(r) => r,
                Err(e) => {
                    let msg = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_default();
                    panics.push(format!("{msg}\n{}", cand.0));
                    continue;
                }
            };
            let compiled = compiled.unwrap_or_else(|errs| {
                let msgs: Vec<String> = errs.iter().map(|e| format!("{e:?}")).collect();
                panic!(
                    "generated sequence rejected (generator or codegen bug; seed {seed:#x}):\n{}\n{}",
                    cand.0,
                    msgs.join("\n")
                )
            });
            let target_arch = TARGET.with(|t| t.arch);
            if compiled.arch_error(rseq_codegen::Arch::X86_64).is_some()
                || compiled.arch_error(target_arch).is_some()
            {
                rejected += 1;
                continue;
            }
            break cand;
        };
        writeln!(out, "rseq! {{\n{src}}}\n").unwrap();
        writeln!(
            out,
            "fn run_{name}(c: &PerCpu<Slot>, p: *mut u8, a: u64, b: u64) -> Result<u64, Error> {{\n    \
             // SAFETY: `p` points at the runner's 256-byte scratch area (64-aligned); the sequence only\n    \
             // accesses [0, 256) at addresses aligned to their width (by construction); one thread.\n    \
             unsafe {{ try_{name}(c, p, a as {}, b as {}) }}\n}}\n",
            ta.name(),
            tb.name()
        )
        .unwrap();
        writeln!(
            table,
            "    Case {{ name: \"{name}\", source: {src:?}, run: run_{name} }},"
        )
        .unwrap();
    }
    std::panic::set_hook(default_hook);
    let file = format!(
        "/// Seed of this set (`RSEQ_DIFFTEST_SEED`).\npub const SEED: u64 = {seed:#x};\n\
         /// Candidates replaced because they exceeded x86_64's or the target's register budget.\n\
         pub const REJECTED_FOR_BUDGET: usize = {rejected};\n\
         /// Candidates on which `rseq_codegen::compile` panicked: message and source.\n\
         pub const CODEGEN_PANICS: &[&str] = &{panics:?};\n\n{out}\n\
         /// Every generated sequence.\npub static CASES: &[Case] = &[\n{table}];\n"
    );
    let path = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("generated.rs");
    std::fs::write(path, file).expect("write generated.rs");
}
