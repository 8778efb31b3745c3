//! Shrinks a failing case of the differential test.
//!
//! ```text
//! cargo run -p rseq-difftest --bin difftest-shrink -- --seed S --case K [--rounds R] [--steps N]
//!                                                     [--release] [--fault xor|xor-build]
//! ```
//!
//! Regenerates case `K` of seed `S` (the generator is `gen/mod.rs`, the same module `build.rs`
//! uses) as a proptest `ValueTree` and walks `simplify()` / `complicate()`. It generates for, and
//! builds and runs on, the machine it runs on: shrink a failure seen on another architecture
//! there (a 32-bit target draws other cases, and the register budget it checks is the host's).
//! A candidate "fails" when its scratch build (`target/difftest-shrink/case`, a crate depending on
//! rseq-dsl by path, running the library's `digest_case` on the test's inputs for case `K`) prints
//! different lines natively and with `RSEQ_DSL_FALLBACK=1`; failing candidates are kept. At most
//! `--steps` candidates (default 200) are evaluated; each prints a progress line on stderr, and
//! the minimal failing sequence's source is printed at the end.
//!
//! Candidates that render to a source already evaluated are not built again (many proptest
//! simplifications do not change the source).
//!
//! Injected faults check the shrinker without a real bug: `--fault xor` evaluates candidates
//! without building them (a candidate fails when it still validates and fits the register budget,
//! per `rseq_codegen`, and its steps use `^`; the unit tests below use it), `--fault xor-build`
//! builds and runs every candidate and adds a fake difference to the fallback output of those
//! whose steps use `^`.

#[allow(dead_code)] // build.rs's half
#[path = "../../gen/mod.rs"]
mod seqgen;

use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::strategy::ValueTree;
use seqgen::{Check, Spec, Target};

const USAGE: &str = "usage: difftest-shrink --seed S --case K [--rounds R] [--steps N] [--release] [--fault xor|xor-build]";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Fails when the steps contain `^` (no build).
    Xor,
    /// Builds and runs every candidate as usual, but the scratch program adds a fake difference
    /// to its fallback output when the steps contain `^`: checks the build-and-run path.
    XorBuild,
}

#[derive(Debug, PartialEq, Eq)]
struct Args {
    seed: u64,
    case: usize,
    rounds: usize,
    steps: usize,
    release: bool,
    fault: Option<Fault>,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut seed = None;
    let mut case = None;
    let mut out = Args {
        seed: 0,
        case: 0,
        rounds: 16,
        steps: 200,
        release: false,
        fault: None,
    };
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut value = |what: &str| it.next().ok_or(format!("{a}: missing {what}"));
        match a.as_str() {
            "--seed" => {
                let v = value("seed")?;
                seed = Some(seqgen::parse_seed(&v).ok_or(format!("--seed {v}: not a u64"))?);
            }
            "--case" => {
                case = Some(
                    value("index")?
                        .parse()
                        .map_err(|e| format!("--case: {e}"))?,
                )
            }
            "--rounds" => {
                out.rounds = value("count")?
                    .parse()
                    .map_err(|e| format!("--rounds: {e}"))?
            }
            "--steps" => {
                out.steps = value("count")?
                    .parse()
                    .map_err(|e| format!("--steps: {e}"))?
            }
            "--release" => out.release = true,
            "--fault" => match value("kind")?.as_str() {
                "xor" => out.fault = Some(Fault::Xor),
                "xor-build" => out.fault = Some(Fault::XorBuild),
                f => return Err(format!("--fault {f}: known faults: xor, xor-build")),
            },
            "-h" | "--help" => return Err(USAGE.to_owned()),
            _ => return Err(format!("unknown argument {a}\n{USAGE}")),
        }
    }
    out.seed = seed.ok_or(format!("--seed is required\n{USAGE}"))?;
    out.case = case.ok_or(format!("--case is required\n{USAGE}"))?;
    Ok(out)
}

/// Runs `f` with the panic hook silenced: `rseq_codegen::compile` panics are caught and reported
/// by `seqgen::check`, not printed.
fn quiet<R>(f: impl FnOnce() -> R) -> R {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = f();
    std::panic::set_hook(hook);
    r
}

/// The result of a shrink.
struct Shrunk {
    /// The simplest failing spec found.
    best: Spec,
    /// Candidates evaluated (built and run, or checked by a fault predicate).
    steps: usize,
    /// Candidates that failed and were kept.
    kept: usize,
    /// Whether the value tree could not be simplified further (else the step cap stopped it).
    complete: bool,
}

/// Proptest's shrink walk: from a failing `tree`, `simplify()` while candidates fail and
/// `complicate()` when one passes; stops when neither applies or after `max_steps` evaluations.
///
/// Many simplifications do not change the rendered source (an index that resolves to the same
/// value, the bits of a literal that its kind ignores): candidates are keyed by `key` (their
/// source) and each source is evaluated once. `report(step, candidate, failed)` follows each
/// evaluation.
fn shrink(
    tree: &mut dyn ValueTree<Value = Spec>,
    max_steps: usize,
    key: impl Fn(&Spec) -> String,
    mut fails: impl FnMut(&Spec) -> bool,
    mut report: impl FnMut(usize, &Spec, bool),
) -> Shrunk {
    let mut out = Shrunk {
        best: tree.current(),
        steps: 0,
        kept: 0,
        complete: false,
    };
    let mut seen = std::collections::HashMap::new();
    seen.insert(key(&out.best), true);
    if !tree.simplify() {
        out.complete = true;
        return out;
    }
    // Walks without an evaluation are cheap, but bounded all the same.
    for _ in 0..1_000_000 {
        let cand = tree.current();
        let k = key(&cand);
        let failed = match seen.get(&k) {
            Some(&f) => f,
            None if out.steps == max_steps => return out,
            None => {
                out.steps += 1;
                let f = fails(&cand);
                report(out.steps, &cand, f);
                seen.insert(k, f);
                out.kept += usize::from(f);
                f
            }
        };
        let more = if failed {
            out.best = cand;
            tree.simplify()
        } else {
            tree.complicate()
        };
        if !more {
            out.complete = true;
            break;
        }
    }
    out
}

/// `--fault xor`: a candidate fails when it is a valid sequence within the register budget whose
/// steps use `^`.
fn xor_fault(target: &Target, spec: &Spec, name: &str) -> bool {
    let r = seqgen::render(target, spec, name);
    r.steps.contains('^') && matches!(quiet(|| seqgen::check(target, &r.source)), Check::Fits)
}

/// The outcome of building and running one candidate.
enum Outcome {
    /// Native and fallback outputs differ: the first differing lines.
    Mismatch(String, String),
    Agree,
    /// Not run: over the budget, invalid, or the scratch build failed.
    Skipped(String),
}

/// The scratch crate that builds and runs candidates of case `case`.
struct Scratch {
    root: PathBuf,
    dir: PathBuf,
    target_dir: PathBuf,
    case: usize,
    rounds: usize,
    release: bool,
    /// `--fault xor-build`.
    fake_xor: bool,
    /// Builds so far: each program prints a stamp (process id and build number), so that a stale
    /// binary (a rewrite that cargo did not see) cannot pass for the candidate.
    builds: std::cell::Cell<u64>,
}

impl Scratch {
    fn new(root: &Path, args: &Args) -> std::io::Result<Scratch> {
        let base = root.join("target").join("difftest-shrink");
        let dir = base.join("case");
        std::fs::create_dir_all(dir.join("src"))?;
        let manifest = format!(
            "[package]\nname = \"difftest-case\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\nrseq-dsl = {{ path = {:?} }}\nrseq-testkit = {{ path = {:?} }}\n\n\
             # Not a member of the rseq-dsl workspace.\n[workspace]\n",
            root.display().to_string(),
            root.join("rseq-testkit").display().to_string()
        );
        std::fs::write(dir.join("Cargo.toml"), manifest)?;
        // The workspace's versions of the dependencies (cargo drops the entries it does not need).
        if !dir.join("Cargo.lock").exists() {
            let _ = std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"));
        }
        Ok(Scratch {
            root: root.to_owned(),
            dir,
            target_dir: base.join("target"),
            case: args.case,
            rounds: args.rounds,
            release: args.release,
            fake_xor: args.fault == Some(Fault::XorBuild),
            builds: std::cell::Cell::new(0),
        })
    }

    fn main_rs(&self, r: &seqgen::Rendered, name: &str, stamp: &str) -> String {
        let runner = self.root.join("rseq-difftest/src/runner.rs");
        format!(
            "//! One candidate of `difftest-shrink` (generated; overwritten by each step).\n\
             #![allow(unused_variables, unused_parens, dead_code, clippy::all)]\n\n\
             #[path = {runner:?}]\nmod runner;\n\n\
             use rseq_dsl::{{rseq, Error, PerCpu}};\nuse runner::{{Case, Slot}};\n\n\
             rseq! {{\n{src}}}\n\n{run}\n\
             fn main() {{\n    \
                 // The test pins too: natively the slot is that CPU's, in fallback mode the lock index\n    \
                 // comes from sched_getcpu().\n    \
                 let first = rseq_testkit::allowed_cpus()[0];\n    \
                 rseq_testkit::pin_to(&[first]);\n    \
                 let rounds: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(16);\n    \
                 let case = Case {{ name: {name:?}, source: \"\", run: run_{name} }};\n    \
                 let (mut lines, mut stats) = (Vec::new(), runner::Stats::default());\n    \
                 runner::digest_case({k}, &case, rounds, &mut lines, &mut stats);\n    \
                 let mode = rseq_dsl::status().mode;\n    \
                 if let (true, rseq_dsl::Mode::Fallback, Some(l)) = ({fake}, mode, lines.first_mut()) {{\n        \
                     l.push_str(\" (fake difference: --fault xor-build)\");\n    \
                 }}\n    \
                 println!(\"mode {{mode:?}} {stamp}\");\n    \
                 for l in lines {{\n        println!(\"{{l}}\");\n    }}\n}}\n",
            runner = runner.display().to_string(),
            src = r.source,
            run = seqgen::runner_fn(name, r),
            k = self.case,
            fake = self.fake_xor && r.steps.contains('^'),
        )
    }

    /// Builds `r` and runs it natively and in fallback mode.
    fn run(&self, r: &seqgen::Rendered, name: &str) -> Result<Outcome, String> {
        self.builds.set(self.builds.get() + 1);
        let stamp = format!("{}.{}", std::process::id(), self.builds.get());
        std::fs::write(self.dir.join("src/main.rs"), self.main_rs(r, name, &stamp))
            .map_err(|e| format!("write the scratch crate: {e}"))?;
        let mut build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        build
            .args(["build", "--quiet", "--manifest-path"])
            .arg(self.dir.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", &self.target_dir)
            .env_remove("RSEQ_DSL_FALLBACK");
        if self.release {
            build.arg("--release");
        }
        let out = build.output().map_err(|e| format!("run cargo: {e}"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let head: Vec<&str> = err.lines().take(20).collect();
            return Ok(Outcome::Skipped(format!(
                "scratch build failed:\n{}",
                head.join("\n")
            )));
        }
        let exe = self
            .target_dir
            .join(if self.release { "release" } else { "debug" })
            .join("difftest-case");
        let run = |fallback: bool| -> Result<(bool, Vec<String>), String> {
            let mut cmd = Command::new(&exe);
            cmd.arg(self.rounds.to_string());
            if fallback {
                cmd.env("RSEQ_DSL_FALLBACK", "1");
            } else {
                cmd.env_remove("RSEQ_DSL_FALLBACK");
            }
            let out = cmd
                .output()
                .map_err(|e| format!("run {}: {e}", exe.display()))?;
            let text = String::from_utf8_lossy(&out.stdout);
            Ok((
                out.status.success(),
                text.lines().map(str::to_owned).collect(),
            ))
        };
        let (native_ok, native) = run(false)?;
        let (fallback_ok, fallback) = run(true)?;
        for (ok, lines, mode) in [
            (native_ok, &native, "Native"),
            (fallback_ok, &fallback, "Fallback"),
        ] {
            let first = lines.first().map_or("", String::as_str);
            if ok && first != format!("mode {mode} {stamp}") {
                return Err(format!(
                    "the {mode} run printed {first:?}, not `mode {mode} {stamp}`: a stale build, or \
                     no native rseq here (shrink on a machine with rseq)"
                ));
            }
        }
        let body = |v: &[String]| v.get(1..).unwrap_or_default().to_vec();
        let (native, fallback) = (body(&native), body(&fallback));
        if native_ok != fallback_ok {
            return Ok(Outcome::Mismatch(
                format!("exit ok: {native_ok}, {} lines", native.len()),
                format!("exit ok: {fallback_ok}, {} lines", fallback.len()),
            ));
        }
        for i in 0..native.len().max(fallback.len()) {
            let (a, b) = (native.get(i), fallback.get(i));
            if a != b {
                return Ok(Outcome::Mismatch(
                    a.cloned().unwrap_or_else(|| "(missing)".into()),
                    b.cloned().unwrap_or_else(|| "(missing)".into()),
                ));
            }
        }
        Ok(Outcome::Agree)
    }

    /// Whether `spec` still fails: `Some(native line, fallback line)` of its first difference.
    /// Candidates over the register budget and failed builds count as passing (with a note).
    fn fails(
        &self,
        target: &Target,
        spec: &Spec,
        name: &str,
    ) -> Result<Option<(String, String)>, String> {
        let r = seqgen::render(target, spec, name);
        let outcome = match quiet(|| seqgen::check(target, &r.source)) {
            Check::Fits => self.run(&r, name)?,
            other => Outcome::Skipped(format!("{other:?}")),
        };
        Ok(match outcome {
            Outcome::Mismatch(a, b) => Some((a, b)),
            Outcome::Agree => None,
            Outcome::Skipped(why) => {
                eprintln!("  (candidate skipped: {why})");
                None
            }
        })
    }
}

fn main() {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let target = Target::host();
    let name = seqgen::case_name(args.case);
    let case = quiet(|| seqgen::generate(&target, args.seed, args.case));
    let mut tree = case.tree;
    println!(
        "case {} of seed {:#x} ({} steps; {} candidates before it over the register budget):\nrseq! {{\n{}}}",
        args.case,
        args.seed,
        tree.current().steps(),
        case.rejected,
        case.rendered.source
    );

    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_owned();
    let scratch = match args.fault {
        Some(Fault::Xor) => None,
        _ => match Scratch::new(&root, &args) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("cannot write the scratch crate: {e}");
                std::process::exit(2);
            }
        },
    };
    let mut last_mismatch = None;
    let mut fails = |spec: &Spec| -> bool {
        match (args.fault, &scratch) {
            (Some(Fault::Xor), _) => xor_fault(&target, spec, &name),
            (_, Some(scratch)) => match scratch.fails(&target, spec, &name) {
                Ok(Some(lines)) => {
                    last_mismatch = Some(lines);
                    true
                }
                Ok(None) => false,
                Err(e) => {
                    eprintln!("difftest-shrink: {e}");
                    std::process::exit(2);
                }
            },
            (_, None) => unreachable!("a scratch crate unless --fault xor"),
        }
    };

    if scratch.is_some() {
        eprintln!("building and running the case (the first build compiles rseq-dsl) ...");
    }
    if !fails(&tree.current()) {
        let why = match args.fault {
            Some(Fault::Xor) => "its steps do not use `^`".to_owned(),
            _ => format!("native and fallback agree over {} rounds", args.rounds),
        };
        println!(
            "case {} does not fail here: {why}; nothing to shrink",
            args.case
        );
        std::process::exit(1);
    }
    let max = args.steps;
    let key = |s: &Spec| seqgen::render(&target, s, &name).source;
    let shrunk = shrink(&mut *tree, max, key, &mut fails, |step, spec, failed| {
        eprintln!(
            "[{step:>3}/{max}] {} steps, {} lines: {}",
            spec.steps(),
            seqgen::render(&target, spec, &name).source.lines().count(),
            if failed {
                "still fails, kept"
            } else {
                "passes, back"
            }
        );
    });
    let best = seqgen::render(&target, &shrunk.best, &name);
    println!(
        "\nminimal failing sequence ({} candidates evaluated, {} kept; {}):\nrseq! {{\n{}}}",
        shrunk.steps,
        shrunk.kept,
        if shrunk.complete {
            "no simpler candidate left"
        } else {
            "stopped at --steps; rerun with more"
        },
        best.source
    );
    if args.fault == Some(Fault::Xor) {
        println!("(fault injected: failure means the steps use `^`; nothing was compiled)");
    } else if let Some((a, b)) = last_mismatch {
        println!("--- native\n{a}\n--- fallback\n{b}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The command the test prints on a mismatch parses, with the build's seed.
    #[test]
    fn printed_command_parses() {
        let cmd = rseq_difftest::shrink_command(17, 16);
        let (_, rest) = cmd.split_once(" -- ").unwrap();
        let args = parse_args(rest.split_whitespace().map(str::to_owned)).unwrap();
        assert_eq!(args.seed, rseq_difftest::SEED);
        assert_eq!((args.case, args.rounds, args.steps), (17, 16, 200));
        assert_eq!(args.release, !cfg!(debug_assertions));
        assert!(parse_args(["--case".to_owned(), "1".to_owned()]).is_err());
        assert_eq!(
            seqgen::parse_seed("0x5eed_d1ff_7e57_0001"),
            Some(seqgen::DEFAULT_SEED)
        );
    }

    /// Replay: regenerating case `k` of the build's seed gives exactly the case the build wrote
    /// (this binary is built for the same target), rejections included.
    #[test]
    fn regenerates_the_built_cases() {
        let target = Target::host();
        let mut rejected = 0;
        for (k, built) in rseq_difftest::CASES.iter().enumerate() {
            let case = quiet(|| seqgen::generate(&target, rseq_difftest::SEED, k));
            assert_eq!(case.rendered.source, built.source, "case {k}");
            rejected += case.rejected;
        }
        assert_eq!(rejected, rseq_difftest::REJECTED_FOR_BUDGET);
    }

    /// Another seed gives other cases.
    #[test]
    fn seeds_differ() {
        let target = Target::host();
        let a: Vec<String> = (0..5)
            .map(|k| quiet(|| seqgen::generate(&target, 1, k)).rendered.source)
            .collect();
        let b: Vec<String> = (0..5)
            .map(|k| quiet(|| seqgen::generate(&target, 2, k)).rendered.source)
            .collect();
        assert_ne!(a, b);
    }

    /// Shrinking works: with a fault that fails every valid sequence using `^`, a large generated
    /// case shrinks, within the default step cap, to one that has at most one step besides the
    /// slot and the commit and a single `^`.
    #[test]
    fn fault_xor_shrinks_to_a_minimal_sequence() {
        let target = Target::host();
        // The first case of the default seed with many steps and several `^`.
        let (k, case) = (0..500)
            .map(|k| {
                (
                    k,
                    quiet(|| seqgen::generate(&target, seqgen::DEFAULT_SEED, k)),
                )
            })
            .find(|(_, c)| {
                c.tree.current().steps() >= 6 && c.rendered.steps.matches('^').count() >= 2
            })
            .expect("a large case using `^`");
        let name = seqgen::case_name(k);
        let mut tree = case.tree;
        assert!(xor_fault(&target, &tree.current(), &name));
        let before = case.rendered.source;
        let shrunk = shrink(
            &mut *tree,
            200,
            |s| seqgen::render(&target, s, &name).source,
            |s| xor_fault(&target, s, &name),
            |_, _, _| {},
        );
        let after = seqgen::render(&target, &shrunk.best, &name);
        println!(
            "case {k}: {} candidates, {} kept\n--- before\n{before}--- after\n{}",
            shrunk.steps, shrunk.kept, after.source
        );
        assert!(shrunk.complete, "not minimal within 200 steps");
        assert!(xor_fault(&target, &shrunk.best, &name));
        assert!(shrunk.best.steps() <= 1, "{}", after.source);
        assert_eq!(after.steps.matches('^').count(), 1, "{}", after.source);
        assert!(after.source.lines().count() < before.lines().count());
    }

    /// The build-and-run path end to end: `--fault xor-build` on the same kind of case, every
    /// candidate built in the scratch crate and run natively and in fallback mode.
    #[test]
    #[ignore = "builds ~30 scratch programs with cargo (the first one compiles rseq-dsl) and needs native rseq"]
    fn fault_xor_build_shrinks_end_to_end() {
        let target = Target::host();
        let k = (0..500)
            .find(|&k| {
                let c = quiet(|| seqgen::generate(&target, seqgen::DEFAULT_SEED, k));
                c.tree.current().steps() >= 6 && c.rendered.steps.matches('^').count() >= 2
            })
            .expect("a large case using `^`");
        let args = Args {
            seed: seqgen::DEFAULT_SEED,
            case: k,
            rounds: 4,
            steps: 200,
            release: false,
            fault: Some(Fault::XorBuild),
        };
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let scratch = Scratch::new(root, &args).unwrap();
        let name = seqgen::case_name(k);
        let mut tree = quiet(|| seqgen::generate(&target, args.seed, k)).tree;
        let mut fails = |s: &Spec| scratch.fails(&target, s, &name).unwrap().is_some();
        assert!(fails(&tree.current()), "the original must fail");
        let shrunk = shrink(
            &mut *tree,
            args.steps,
            |s| seqgen::render(&target, s, &name).source,
            &mut fails,
            |_, _, _| {},
        );
        let after = seqgen::render(&target, &shrunk.best, &name);
        println!("{} builds\n{}", shrunk.steps, after.source);
        assert!(
            shrunk.complete && shrunk.best.steps() <= 1,
            "{}",
            after.source
        );
    }
}
