//! Random invalid (and some valid) inputs to `parse` + `compile` + `render`: they must return
//! errors or succeed, never panic (a panic in the proc macro is an unreadable compile error).
//!
//! Inputs: mutations of valid sequences (the golden sources, the examples and a few inline ones:
//! delete / duplicate / swap / insert / replace tokens, swap steps, change delimiters, truncate) and
//! random token soups, some wrapped in a sequence fn so they reach the body parser.
//!
//! Seeded and bounded: `RSEQ_FUZZ_SEED` (default fixed) and `RSEQ_FUZZ_SECS` (default 3 s). Each
//! input has its own seed (`iteration seed`), printed with the input on a panic, so a failure
//! reproduces with `RSEQ_FUZZ_SEED=<iteration seed> RSEQ_FUZZ_ITERS=1`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use proc_macro2::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};
use rseq_codegen::Arch;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const INLINE: &[&str] = &[
    "pub fn add(c: &PerCpu<u64>, n: u64) { let slot = c.current(); let v = load(slot); commit store(slot, v + n); }",
    "pub fn pop(c: &PerCpu<u64>, e: u64) -> Option<u64> { let slot = c.current(); let v = load(slot); \
     if v == e { return None; } let w = (v >> 3u32) as u8; commit store_release(slot, v - 1); Some(v) }",
    "pub unsafe fn cp(c: &PerCpu<[u64; 4]>, src: *const u8, p: *mut u8, n: usize) { let slot = c.current(); \
     let x = load::<i16>(p + 6); if x < -3 { return; } store::<u32>(p + 8, (x as u32) << 5); \
     memcpy(slot, src, 24); memcpy(slot, src, n); commit store::<u64>(slot + 24, 7); }",
    "#[rseq(index = mm_cid)] pub fn cid(c: &PerMmCid<u64>, n: u64) -> u64 { let slot = c.current(); \
     let v = load(slot); commit store(slot, v + n); v }",
    "pub fn on(c: &PerCpu<u64>, cpu: usize, n: i32) { let slot = c.on_cpu(cpu); let v = load(slot); \
     let k = ((n as i64) - (-5i64)) ^ { N * 2 }; if k >= 0 { return; } commit store(slot, v + (k as u64)); }",
    "#[rseq(inject, debug_checks)] pub unsafe fn f(c: &PerCpu<u64>, p: *mut *mut u8) { let slot = c.current(); \
     let q = load(p); let v = load::<u64>(q + offset_of!(S, f)); if v != 0 { return; } commit store(slot, v); }",
];

/// Tokens used for replacement and insertion.
fn pool(rng: &mut Rng) -> TokenTree {
    const IDENTS: &[&str] = &[
        "let",
        "if",
        "return",
        "fn",
        "unsafe",
        "pub",
        "commit",
        "store",
        "store_release",
        "load",
        "memcpy",
        "slot",
        "current",
        "on_cpu",
        "PerCpu",
        "PerMmCid",
        "ByCpu",
        "ByMmCid",
        "u8",
        "u16",
        "u32",
        "u64",
        "usize",
        "i8",
        "i16",
        "i32",
        "i64",
        "isize",
        "as",
        "mut",
        "const",
        "self",
        "Self",
        "async",
        "rseq",
        "index",
        "cpu_id",
        "mm_cid",
        "inject",
        "debug_checks",
        "offset_of",
        "size_of",
        "v",
        "n",
        "c",
        "p",
        "x",
        "_",
        "true",
        "match",
        "loop",
        "while",
        "else",
    ];
    const PUNCTS: &[&str] = &[
        "+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>", "==", "!=", "<", "<=", ">", ">=", "=",
        ";", ",", ".", "::", "->", "=>", "!", "#", "?", "@", "~", ":", "&&", "||", "..", "'",
    ];
    const LITERALS: &[&str] = &[
        "0",
        "1",
        "7",
        "255",
        "256",
        "1024",
        "1025",
        "4096",
        "0x7fffffff",
        "0x80000000",
        "9223372036854775807",
        "9223372036854775808",
        "0x8000000000000000u64",
        "18446744073709551615",
        "18446744073709551616",
        "340282366920938463463374607431768211456",
        "1u8",
        "300u8",
        "-1i8",
        "5u32",
        "2usize",
        "1.5",
        "1e3",
        "\"s\"",
        "'c'",
        "b'x'",
        "b\"bytes\"",
        "1i128",
    ];
    match rng.below(3) {
        0 => TokenTree::Ident(Ident::new(
            IDENTS[rng.below(IDENTS.len())],
            Span::call_site(),
        )),
        1 => {
            let p = PUNCTS[rng.below(PUNCTS.len())];
            let ts: TokenStream = if p == "'" {
                "'a".parse().unwrap()
            } else {
                p.parse().unwrap()
            };
            // A multi-char punct is several trees; take the first (Joint spacing kept).
            ts.into_iter().next().unwrap()
        }
        _ => {
            let l: TokenStream = LITERALS[rng.below(LITERALS.len())].parse().unwrap();
            let t = l.into_iter().next().unwrap();
            if let TokenTree::Literal(l) = t {
                TokenTree::Literal(l)
            } else {
                TokenTree::Literal(Literal::u8_suffixed(1))
            }
        }
    }
}

fn delim(rng: &mut Rng) -> Delimiter {
    [
        Delimiter::Parenthesis,
        Delimiter::Brace,
        Delimiter::Bracket,
        Delimiter::None,
    ][rng.below(4)]
}

/// A random token soup, groups nested up to `depth`.
fn soup(rng: &mut Rng, len: usize, depth: u32) -> TokenStream {
    (0..len)
        .map(|_| {
            if depth > 0 && rng.below(6) == 0 {
                let n = rng.below(8);
                TokenTree::Group(Group::new(delim(rng), soup(rng, n, depth - 1)))
            } else {
                pool(rng)
            }
        })
        .collect()
}

/// One mutation somewhere in `ts` (at this level or inside a random group).
fn mutate(rng: &mut Rng, ts: TokenStream) -> TokenStream {
    let mut v: Vec<TokenTree> = ts.into_iter().collect();
    let groups: Vec<usize> = (0..v.len())
        .filter(|&i| matches!(v[i], TokenTree::Group(_)))
        .collect();
    if !groups.is_empty() && rng.below(3) != 0 {
        let i = groups[rng.below(groups.len())];
        if let TokenTree::Group(g) = &v[i] {
            let inner = mutate(rng, g.stream());
            let d = if rng.below(20) == 0 {
                delim(rng)
            } else {
                g.delimiter()
            };
            v[i] = TokenTree::Group(Group::new(d, inner));
        }
        return v.into_iter().collect();
    }
    let n = v.len();
    match rng.below(8) {
        0 if n > 0 => {
            v.remove(rng.below(n));
        }
        1 if n > 0 => {
            let i = rng.below(n);
            let t = v[i].clone();
            v.insert(i, t);
        }
        2 if n > 1 => {
            let (i, j) = (rng.below(n), rng.below(n));
            v.swap(i, j);
        }
        3 if n > 0 => {
            let i = rng.below(n);
            v[i] = pool(rng);
        }
        4 => {
            let i = rng.below(n + 1);
            v.insert(i, pool(rng));
        }
        5 if n > 0 => v.truncate(rng.below(n)),
        6 => {
            // Swap two `;`-separated steps.
            let mut steps: Vec<Vec<TokenTree>> = vec![Vec::new()];
            for t in v.drain(..) {
                let end = matches!(&t, TokenTree::Punct(p) if p.as_char() == ';');
                steps.last_mut().unwrap().push(t);
                if end {
                    steps.push(Vec::new());
                }
            }
            let m = steps.len();
            steps.swap(rng.below(m), rng.below(m));
            v = steps.into_iter().flatten().collect();
        }
        7 if n > 0 && rng.below(2) == 0 => {
            // Replace a literal with another literal (keeps most inputs valid: reaches the emitters).
            let lits: Vec<usize> = (0..n)
                .filter(|&i| matches!(v[i], TokenTree::Literal(_)))
                .collect();
            if !lits.is_empty() {
                let i = lits[rng.below(lits.len())];
                v[i] = loop {
                    if let t @ TokenTree::Literal(_) = pool(rng) {
                        break t;
                    }
                };
            }
        }
        _ if n > 0 => {
            // Replace an identifier with another one of the same input (names, types, keywords).
            let idents: Vec<TokenTree> = v
                .iter()
                .filter(|t| matches!(t, TokenTree::Ident(_)))
                .cloned()
                .collect();
            if !idents.is_empty() {
                let i = rng.below(n);
                v[i] = idents[rng.below(idents.len())].clone();
            }
        }
        _ => v.push(TokenTree::Punct(Punct::new(';', Spacing::Alone))),
    }
    v.into_iter().collect()
}

fn corpus() -> Vec<TokenStream> {
    let mut out: Vec<TokenStream> = INLINE.iter().map(|s| s.parse().unwrap()).collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [root.join("tests/golden/sources"), root.join("../examples")] {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files.sort();
    for p in files {
        let file = syn::parse_file(&std::fs::read_to_string(&p).unwrap()).unwrap();
        for f in rseq_codegen::find_sequences(&file).unwrap() {
            let (attrs, vis, sig, body) = (&f.attrs, &f.vis, &f.sig, &f.body);
            out.push(quote::quote!(#(#attrs)* #vis #sig { #body }));
        }
    }
    out
}

/// Runs `f`; returns its panic message if it panicked.
fn catch(f: impl FnOnce()) -> Option<String> {
    catch_unwind(AssertUnwindSafe(f)).err().map(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "<non-string panic>".into())
    })
}

/// Runs every phase on `ts`; returns the panic message if one panicked.
fn exercise(ts: &TokenStream) -> Option<String> {
    let ts = ts.clone();
    catch(move || {
        let Ok(fns) = rseq_codegen::parse(ts) else {
            return;
        };
        for f in &fns {
            let _ = f.parse_body();
            if let Ok(c) = rseq_codegen::compile(f) {
                for arch in Arch::ALL {
                    let _ = rseq_codegen::render(&c, arch);
                }
            }
        }
    })
}

fn input(rng: &mut Rng, corpus: &[TokenStream]) -> TokenStream {
    match rng.below(10) {
        // Mutations of valid sequences (most inputs).
        0..=6 => {
            let mut ts = corpus[rng.below(corpus.len())].clone();
            for _ in 0..1 + rng.below(4) {
                ts = mutate(rng, ts);
            }
            ts
        }
        // A soup as a sequence body, so it reaches the body parser and lowering.
        7 | 8 => {
            let n = rng.below(30);
            let body = soup(rng, n, 3);
            quote::quote!(pub unsafe fn f(c: &PerCpu<u64>, p: *mut u8, n: u64) -> u64 { let slot = c.current(); #body })
        }
        // A bare soup.
        _ => {
            let n = rng.below(40);
            soup(rng, n, 3)
        }
    }
}

/// Panic messages of known, unfixed codegen bugs, each pinned by an `#[ignore = "bug: .."]` test. The
/// fuzzer counts and prints them instead of failing; any other panic fails the test. Empty: the two
/// bugs this fuzzer and the differential generator found are fixed and their tests below now run.
const KNOWN_BUGS: &[(&str, &str)] = &[];

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|s| {
        let s = s.trim();
        s.strip_prefix("0x")
            .map_or_else(|| s.parse(), |h| u64::from_str_radix(h, 16))
            .unwrap_or_else(|_| panic!("{name}: a u64"))
    })
}

#[test]
fn parser_and_validator_never_panic() {
    let seed = env_u64("RSEQ_FUZZ_SEED").unwrap_or(0xf022_5eed);
    let budget = Duration::from_secs(env_u64("RSEQ_FUZZ_SECS").unwrap_or(3));
    let max_iters = env_u64("RSEQ_FUZZ_ITERS").unwrap_or(u64::MAX);
    let corpus = corpus();
    assert!(corpus.len() > 20, "corpus: {}", corpus.len());
    // Every corpus entry compiles: mutations start from valid sequences.
    for ts in &corpus {
        let fns = rseq_codegen::parse(ts.clone()).unwrap();
        assert!(rseq_codegen::compile(&fns[0]).is_ok(), "{ts}");
    }

    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let start = Instant::now();
    let mut seeds = Rng(seed);
    let (mut iters, mut parsed, mut compiled) = (0u64, 0u64, 0u64);
    let mut panics: Vec<String> = Vec::new();
    let mut known = std::collections::BTreeMap::new();
    while iters < max_iters && start.elapsed() < budget {
        // The first iteration uses `seed` itself, so a reported iteration seed reproduces alone.
        let iter_seed = if iters == 0 { seed } else { seeds.next() };
        iters += 1;
        let mut rng = Rng(iter_seed);
        let ts = input(&mut rng, &corpus);
        if let Ok(fns) = rseq_codegen::parse(ts.clone()) {
            parsed += 1;
            compiled += fns
                .iter()
                .filter(|f| {
                    catch_unwind(AssertUnwindSafe(|| rseq_codegen::compile(f).is_ok()))
                        .unwrap_or(false)
                })
                .count() as u64;
        }
        if let Some(msg) = exercise(&ts) {
            if let Some((_, test)) = KNOWN_BUGS.iter().find(|(m, _)| msg == *m) {
                *known.entry(*test).or_insert(0u64) += 1;
                continue;
            }
            panics.push(format!(
                "iteration seed {iter_seed:#x} (RSEQ_FUZZ_SEED={iter_seed:#x} RSEQ_FUZZ_ITERS=1): panicked: {msg}\n  input: {}",
                rseq_codegen::pretty(&ts)
            ));
        }
    }
    std::panic::set_hook(hook);
    println!(
        "seed {seed:#x}: {iters} inputs in {:?}, {parsed} parsed, {compiled} sequences compiled, {} panics",
        start.elapsed(),
        panics.len()
    );
    for (test, n) in &known {
        println!("  {n} inputs hit the known bug pinned by the ignored test `{test}`");
    }
    assert!(
        panics.is_empty(),
        "{} inputs panicked (first 5):\n{}",
        panics.len(),
        panics[..panics.len().min(5)].join("\n")
    );
}

/// The harness's own control: a panic is caught and reported with its message, a valid input is not.
#[test]
fn exercise_reports_panics() {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let msg = catch(|| panic!("boom {}", 1));
    std::panic::set_hook(hook);
    assert_eq!(msg.as_deref(), Some("boom 1"));
    assert_eq!(exercise(&INLINE[0].parse().unwrap()), None);
}

/// Found by the differential generator (`rseq-difftest`): subtracting the immediate `i64::MIN`
/// made the riscv64, loongarch64, ppc64le and s390x emitters compute `-v` with overflow, which
/// panicked in a debug build of the macro (`attempt to negate with overflow`). Fixed: the
/// immediate form is used only when the negation exists.
#[test]
fn sub_of_i64_min_immediate_does_not_panic() {
    for body in [
        "let l = (v - 0x8000000000000000u64);",
        "let l = ((v as i64) - (-9223372036854775808i64));",
    ] {
        let src = format!(
            "fn f(c: &PerCpu<u64>) {{ let slot = c.current(); let v = load(slot); {body} commit store(slot, l as u64); }}"
        );
        let ts: TokenStream = src.parse().unwrap();
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let msg = exercise(&ts);
        std::panic::set_hook(hook);
        assert_eq!(msg, None, "{src}");
    }
}

/// Found by this fuzzer: an integer literal whose suffix is not a word type (`1i128`, `1u128`)
/// reached `WordTy::prim(suffix)`, which panicked instead of reporting a spanned error. Fixed: it is
/// a `NotAWord` error at the literal.
#[test]
fn non_word_literal_suffix_is_an_error() {
    for step in ["if v == 1i128 { return; }", "let l = v + 1u128;"] {
        let src = format!(
            "fn f(c: &PerCpu<u64>) {{ let slot = c.current(); let v = load(slot); {step} commit store(slot, v); }}"
        );
        let ts: TokenStream = src.parse().unwrap();
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let msg = exercise(&ts);
        std::panic::set_hook(hook);
        assert_eq!(msg, None, "{src}");
        let fns = rseq_codegen::parse(ts).unwrap();
        assert!(rseq_codegen::compile(&fns[0]).is_err(), "{src}");
    }
}
