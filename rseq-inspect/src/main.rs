//! `rseq-inspect`: command-line front end of the `rseq_inspect` library.
//!
//! Subcommands:
//!
//! ```text
//! rseq-inspect asm <file.rs> [--arch <arch> | --all] [--fn <name>]
//! rseq-inspect elf <binary> [--json] [--disasm]
//! ```
//!
//! Exit status: 0 success (every rule passed or was skipped; every sequence compiled), 1 a rule failed or
//! a sequence does not compile, 2 bad command line, 3 the input could not be read or parsed (not a
//! well-formed ELF file / not Rust), 4 (`elf`) no rule failed but an abort signature in code is not
//! reached by any descriptor found.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use rseq_codegen::Arch;
use rseq_inspect::source::{SourceError, SourceOptions};
use rseq_inspect::{Error, Options, EXIT_OK, EXIT_RULE_FAILED, EXIT_UNREADABLE, EXIT_USAGE};

const USAGE: &str = "\
usage: rseq-inspect asm <file.rs> [--arch <arch> | --all] [--fn <name>]
       rseq-inspect elf <binary> [--json] [--disasm]

asm: prints every rseq! sequence of a Rust source file as the annotated assembly the macro emits
(start / post-commit / abort labels, exits, descriptor, signature, the source step of each
instruction), with the compiler's own errors (file:line:column) for sequences that do not compile.
  --arch <arch>  x86_64 (default), aarch64, riscv64, arm, ppc64le, s390x, loongarch64
  --all          every architecture
  --fn <name>    only this sequence

elf: audits every rseq critical-section descriptor of an ELF file (__rseq_cs, __rseq_cs_ptr_array,
__rseq_exit_point_array, and descriptors recognised by scanning the other data sections, such as
.data.rel.ro, with relocations applied) against the named rules: version-zero, flags-zero,
aligned-32, abort-outside-range, signature, range-in-one-function, range-in-executable-section,
commit-is-store, no-call-syscall-stack. Abort signatures in code that no descriptor reaches are
reported as warnings.

options:
  --json     print the report as JSON instead of a table
  --disasm   include each critical section's instructions and its abort stub

exit status: 0 success, 1 a rule failed or a sequence does not compile, 2 usage error,
             3 unreadable or malformed input, 4 (elf) no rule failed but an abort signature in
             code is not reached by any descriptor (rseq code the audit could not tie to one)
";

/// A parsed command line.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Help,
    Version,
    Elf {
        path: PathBuf,
        json: bool,
        disasm: bool,
    },
    Asm {
        path: PathBuf,
        options: SourceOptions,
    },
}

fn parse_asm_args(rest: &[String]) -> Result<Command, String> {
    let mut path = None;
    let mut options = SourceOptions::default();
    let mut arch_given = false;
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--all" => {
                options.arches = Arch::ALL.to_vec();
                arch_given = true;
            }
            "--arch" => {
                let name = it.next().ok_or("`--arch` needs an architecture")?;
                let arch = Arch::from_name(name).ok_or_else(|| {
                    let names: Vec<_> = Arch::ALL.iter().map(|a| a.name()).collect();
                    format!(
                        "unknown architecture `{name}` (one of {})",
                        names.join(", ")
                    )
                })?;
                if !arch_given {
                    options.arches.clear();
                    arch_given = true;
                }
                if !options.arches.contains(&arch) {
                    options.arches.push(arch);
                }
            }
            "--fn" => options.function = Some(it.next().ok_or("`--fn` needs a name")?.clone()),
            flag if flag.starts_with('-') => return Err(format!("unknown option `{flag}`")),
            p => {
                if path.replace(PathBuf::from(p)).is_some() {
                    return Err("`asm` takes exactly one file".into());
                }
            }
        }
    }
    let path = path.ok_or("`asm` needs a Rust source file")?;
    Ok(Command::Asm { path, options })
}

fn parse_args(args: &[String]) -> Result<Command, String> {
    let Some((sub, rest)) = args.split_first() else {
        return Err("missing subcommand".into());
    };
    match sub.as_str() {
        "-h" | "--help" | "help" => Ok(Command::Help),
        "-V" | "--version" => Ok(Command::Version),
        "asm" => parse_asm_args(rest),
        "elf" => {
            let mut path = None;
            let mut json = false;
            let mut disasm = false;
            let mut only_paths = false;
            for arg in rest {
                match arg.as_str() {
                    "--json" if !only_paths => json = true,
                    "--disasm" if !only_paths => disasm = true,
                    "-h" | "--help" if !only_paths => return Ok(Command::Help),
                    "--" if !only_paths => only_paths = true,
                    flag if flag.starts_with('-') && !only_paths && flag != "-" => {
                        return Err(format!("unknown option `{flag}`"))
                    }
                    p => {
                        if path.replace(PathBuf::from(p)).is_some() {
                            return Err("`elf` takes exactly one file".into());
                        }
                    }
                }
            }
            let path = path.ok_or("`elf` needs a file to audit")?;
            Ok(Command::Elf { path, json, disasm })
        }
        other => Err(format!("unknown subcommand `{other}`")),
    }
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rseq-inspect: {e}\n\n{USAGE}");
            return exit(EXIT_USAGE);
        }
    };
    let (path, json, disasm) = match command {
        Command::Help => {
            print!("{USAGE}");
            return exit(EXIT_OK);
        }
        Command::Version => {
            println!("rseq-inspect {}", env!("CARGO_PKG_VERSION"));
            return exit(EXIT_OK);
        }
        Command::Elf { path, json, disasm } => (path, json, disasm),
        Command::Asm { path, options } => return asm(&path, &options),
    };
    let name = path.display().to_string();
    let result = std::fs::read(&path)
        .map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })
        .and_then(|bytes| rseq_inspect::audit(&name, &bytes, &Options { disasm }));
    let mut stdout = std::io::stdout().lock();
    match result {
        Ok(report) => {
            let text = if json {
                match serde_json::to_string_pretty(&report) {
                    Ok(s) => s + "\n",
                    Err(e) => {
                        eprintln!("rseq-inspect: cannot serialise the report: {e}");
                        return exit(EXIT_UNREADABLE);
                    }
                }
            } else {
                report.render()
            };
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = stdout.write_all(text.as_bytes());
            exit(report.exit_status())
        }
        Err(e) => {
            eprintln!("rseq-inspect: {e}");
            if json {
                let value = serde_json::json!({ "file": name, "error": e.to_string() });
                let _ = writeln!(stdout, "{value:#}");
            }
            exit(EXIT_UNREADABLE)
        }
    }
}

fn asm(path: &std::path::Path, options: &SourceOptions) -> ExitCode {
    let name = path.display().to_string();
    let source = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rseq-inspect: cannot read {name}: {e}");
            return exit(EXIT_UNREADABLE);
        }
    };
    match rseq_inspect::source::view(&name, &source, options) {
        Ok(view) => {
            let _ = std::io::stdout().lock().write_all(view.text.as_bytes());
            if view.sequences == 0 {
                eprintln!("rseq-inspect: no `rseq!` sequence in {name}");
            }
            exit(if view.failed > 0 {
                EXIT_RULE_FAILED
            } else {
                EXIT_OK
            })
        }
        Err(e @ SourceError::NoSuchFunction(_)) => {
            eprintln!("rseq-inspect: {name}: {e}");
            exit(EXIT_USAGE)
        }
        Err(e) => {
            eprintln!("{e}");
            exit(EXIT_UNREADABLE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn parses_elf() {
        assert_eq!(
            parse_args(&args(&["elf", "a.out", "--json"])),
            Ok(Command::Elf {
                path: "a.out".into(),
                json: true,
                disasm: false
            })
        );
        assert_eq!(
            parse_args(&args(&["elf", "--disasm", "--", "--weird"])),
            Ok(Command::Elf {
                path: "--weird".into(),
                json: false,
                disasm: true
            })
        );
    }

    #[test]
    fn parses_asm() {
        assert_eq!(
            parse_args(&args(&["asm", "x.rs"])),
            Ok(Command::Asm {
                path: "x.rs".into(),
                options: SourceOptions::default()
            })
        );
        assert_eq!(
            parse_args(&args(&["asm", "x.rs", "--arch", "aarch64", "--fn", "push"])),
            Ok(Command::Asm {
                path: "x.rs".into(),
                options: SourceOptions {
                    arches: vec![Arch::Aarch64],
                    function: Some("push".into())
                }
            })
        );
        let Ok(Command::Asm { options, .. }) = parse_args(&args(&["asm", "--all", "x.rs"])) else {
            panic!("--all")
        };
        assert_eq!(options.arches, Arch::ALL.to_vec());
    }

    #[test]
    fn rejects_bad_lines() {
        assert!(parse_args(&args(&[])).is_err());
        assert!(parse_args(&args(&["elf"])).is_err());
        assert!(parse_args(&args(&["elf", "a", "b"])).is_err());
        assert!(parse_args(&args(&["elf", "a", "--jsn"])).is_err());
        assert!(parse_args(&args(&["frob"])).is_err());
        assert!(parse_args(&args(&["asm"])).is_err());
        assert!(parse_args(&args(&["asm", "x.rs", "--arch", "vax"])).is_err());
        assert!(parse_args(&args(&["asm", "x.rs", "--fn"])).is_err());
        assert!(parse_args(&args(&["asm", "x.rs", "y.rs"])).is_err());
    }
}
