//! Audits the restartable-sequence (rseq) critical sections of any ELF file: ours, a C program built on
//! librseq, tcmalloc, an object file.
//!
//! ```no_run
//! let bytes = std::fs::read("target/debug/examples/status")?;
//! let report = rseq_inspect::audit("status", &bytes, &rseq_inspect::Options::default())?;
//! print!("{}", report.render());
//! if report.has_failures() {
//!     std::process::exit(rseq_inspect::EXIT_RULE_FAILED);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! prints, for a binary with one sequence (abridged):
//!
//! ```text
//! format:       ELF64 little-endian x86_64, position-independent executable or shared object
//! #  descriptor  function        start   post-commit  abort   length  exits  result
//! 0  0x4ba0      counter_add     0x1140  0x115a       0x1180  26      0      ok
//!
//! [0] descriptor 0x4ba0 in `counter_add` (found in __rseq_cs, __rseq_cs_ptr_array)
//!     pass  version-zero                 version 0
//!     pass  signature                    0f b9 3d 53 30 05 53 before abort
//!     pass  commit-is-store              commit `mov [rsi+rcx], rax`
//!     ...
//! ```
//!
//! The pipeline: [`image::Image::parse`] (sections, function symbols, relocations applied) ->
//! [`scan::scan`] (descriptors from `__rseq_cs`, `__rseq_cs_ptr_array` and a scan of the other data
//! sections, exit points, abort signatures in code) -> [`rules::check`] per descriptor ->
//! [`report::Report`] (rendered as a table or serialised as JSON).
//!
//! Each descriptor says how it was found: `found in __rseq_cs, __rseq_cs_ptr_array`, or `scanned from
//! .data.rel.ro, relocated` for one the data scan recognised (the words filled by relocations, as in a
//! PIE) and `..., not relocated` when the file holds final addresses. Abort signatures in executable
//! code whose next address is no found descriptor's `abort_ip` are listed as warnings, and make the
//! CLI exit with [`EXIT_UNREACHED_SIGNATURE`]: the file has rseq code the audit could not tie to a
//! descriptor. [`scan`] documents both heuristics and what guards them against false positives.
//!
//! Rules and the architectures they cover:
//!
//! | rule | covers |
//! |---|---|
//! | `version-zero`, `flags-zero`, `aligned-32`, `abort-outside-range` | every ELF |
//! | `signature` | x86_64, x32, i386 (with the `0f b9 3d` prefix), aarch64, arm, riscv64, ppc64, s390x, loongarch64 |
//! | `range-in-one-function` | every ELF with a symbol table (skipped when there is none) |
//! | `range-in-executable-section` | every ELF with section headers |
//! | `commit-is-store`, `no-call-syscall-stack` | x86_64, x32, i386 (iced-x86), aarch64 (yaxpeax-arm); skipped elsewhere |
//!
//! Exit status of the CLI ([`Report::exit_status`]): [`EXIT_RULE_FAILED`] when a rule failed, else
//! [`EXIT_UNREACHED_SIGNATURE`] when a signature is not reached, else [`EXIT_OK`]; "no rseq critical
//! sections found" is printed only when neither a descriptor nor a signature was found.
//!
//! Input is untrusted: a malformed file yields an [`Error`], never a panic or an out-of-bounds read.

pub mod arch;
pub mod disasm;
mod error;
pub mod image;
pub mod report;
pub mod rules;
pub mod scan;
pub mod source;

pub use error::Error;
pub use report::Report;

use std::collections::BTreeSet;

use image::{Image, SymbolSource};
use report::{DescriptorReport, ExitPair, FunctionInfo, InsnReport, UnreachedSignature};
use rules::RangeCode;

/// Exit status: every rule passed (or was skipped).
pub const EXIT_OK: i32 = 0;
/// Exit status: at least one rule failed, or a descriptor pointer was unreadable.
pub const EXIT_RULE_FAILED: i32 = 1;
/// Exit status: bad command line.
pub const EXIT_USAGE: i32 = 2;
/// Exit status: the input could not be read or is not a well-formed ELF file.
pub const EXIT_UNREADABLE: i32 = 3;
/// Exit status: no rule failed, but abort signatures sit in code that no descriptor found reaches:
/// the file has rseq code the audit could not tie to a descriptor, so it cannot vouch for it.
pub const EXIT_UNREACHED_SIGNATURE: i32 = 4;

/// What to include in the report.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Include each critical section's instructions and its abort stub.
    pub disasm: bool,
}

/// Longest symbol name that is demangled; longer names are shown raw (bounds demangler work on hostile
/// input).
const MAX_DEMANGLE_LEN: usize = 4096;

/// Demangles a Rust (legacy or v0) or C++ (Itanium) symbol name; other names are returned unchanged.
pub fn demangle(name: &str) -> String {
    if name.len() > MAX_DEMANGLE_LEN {
        return name.to_string();
    }
    if let Ok(d) = rustc_demangle::try_demangle(name) {
        return format!("{d:#}");
    }
    if name.starts_with("_Z") {
        if let Ok(sym) = cpp_demangle::Symbol::new(name) {
            if let Ok(d) = sym.demangle() {
                return d;
            }
        }
    }
    name.to_string()
}

/// Audits the ELF file `data`; `file` is only used as the name in the report.
pub fn audit(file: &str, data: &[u8], options: &Options) -> Result<Report, Error> {
    let image = Image::parse(data)?;
    let scan = scan::scan(&image);

    let descriptors = scan
        .descriptors
        .iter()
        .map(|found| describe(&image, found, options))
        .collect();

    let reached: BTreeSet<u64> = scan
        .descriptors
        .iter()
        .filter_map(|f| f.fields.map(|d| d.abort_ip))
        .collect();
    let unreached_signatures = scan
        .signatures
        .iter()
        .filter(|s| !reached.contains(&s.abort))
        .map(|s| UnreachedSignature {
            address: s.address,
            abort: s.abort,
            section: image
                .section_at(s.address)
                .map_or_else(|| "?".to_string(), |sec| sec.name.clone()),
            function: image.function_at(s.address).map(|(f, _)| demangle(&f.name)),
        })
        .collect();

    let mut warnings = image.warnings.clone();
    warnings.extend(scan.warnings.iter().cloned());
    let mut report = Report {
        file: file.to_string(),
        arch: image.arch.name(),
        elf_class: if image.is_64 { 64 } else { 32 },
        endian: if image.big_endian { "big" } else { "little" },
        kind: image.kind.describe(),
        symbols: match image.symbol_source {
            SymbolSource::Full => "symtab",
            SymbolSource::DynamicOnly => "dynsym",
            SymbolSource::None => "none",
        },
        disassembler: image.arch.disassembler(),
        descriptors,
        orphan_exit_points: scan
            .orphan_exit_points
            .iter()
            .map(|&(start, exit)| ExitPair { start, exit })
            .collect(),
        signature_pattern: signature_pattern(&image),
        signatures_in_code: scan.signatures.len(),
        unreached_signatures,
        warnings,
        summary: report::Summary::default(),
    };
    report.summarize();
    Ok(report)
}

fn describe(image: &Image<'_>, found: &scan::Found, options: &Options) -> DescriptorReport {
    let mut found_in = Vec::new();
    if found.in_section {
        found_in.push("__rseq_cs");
    }
    if found.in_ptr_array {
        found_in.push("__rseq_cs_ptr_array");
    }
    if found.scanned_from.is_some() {
        found_in.push(report::FOUND_BY_SCAN);
    }
    let mut out = DescriptorReport {
        address: found.addr,
        found_in,
        scanned_from: found.scanned_from.clone(),
        unreadable: None,
        version: None,
        flags: None,
        start: None,
        post_commit: None,
        abort: None,
        length: None,
        function: None,
        exit_points: found.exit_points.clone(),
        rules: Vec::new(),
        ok: false,
        instructions: None,
        abort_instructions: None,
        disasm_error: None,
    };
    let Some(d) = found.fields else {
        out.unreadable = Some(format!(
            "the 32 bytes at {:#x} are not inside any section of the file",
            found.addr
        ));
        return out;
    };
    out.version = Some(d.version);
    out.flags = Some(d.flags);
    out.start = Some(d.start_ip);
    out.post_commit = Some(d.start_ip.wrapping_add(d.post_commit_offset));
    out.abort = Some(d.abort_ip);
    out.length = Some(d.post_commit_offset);
    out.function = image.function_at(d.start_ip).map(|(f, _)| FunctionInfo {
        name: demangle(&f.name),
        symbol: f.name.clone(),
        address: f.addr,
        size: f.size,
    });
    let code = rules::decode_range(image, &d);
    out.rules = rules::check(image, found.addr, &d, &code);
    out.ok = out.rules.iter().all(|r| r.status != rules::Status::Fail);
    if options.disasm {
        match &code {
            RangeCode::Decoded(decoded) => {
                out.instructions = Some(decoded.insns.iter().map(insn_report).collect());
                out.disasm_error.clone_from(&decoded.error);
            }
            RangeCode::Unavailable(why) => {
                out.instructions = Some(Vec::new());
                out.disasm_error = Some(why.clone());
            }
        }
        out.abort_instructions = Some(abort_stub(image, d.abort_ip));
    }
    out
}

/// What [`scan::code_signatures`] looks for, in words: `` `0f b9 3d 53 30 05 53` at any address ``.
fn signature_pattern(image: &Image<'_>) -> Option<String> {
    let sig = image.arch.signature()?;
    let bytes: Vec<String> = sig
        .encoded(image.big_endian)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let align = image.arch.instruction_align();
    let at = if align == 1 {
        "at any address".to_string()
    } else {
        format!("at {align}-byte-aligned addresses")
    };
    Some(format!("`{}` {at}", bytes.join(" ")))
}

fn insn_report(i: &disasm::Insn) -> InsnReport {
    InsnReport {
        address: i.addr,
        bytes: i
            .bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" "),
        text: i.text.clone(),
    }
}

/// The signature and up to four instructions of the abort handler.
fn abort_stub(image: &Image<'_>, abort: u64) -> Vec<InsnReport> {
    let sig_len = image
        .arch
        .signature()
        .map_or(4, |s| 4 + s.prefix.len() as u64);
    let Some(from) = abort.checked_sub(sig_len) else {
        return Vec::new();
    };
    let Some(section) = image.section_at(from) else {
        return Vec::new();
    };
    // Up to 48 bytes, clipped to the section.
    let len = section.end().saturating_sub(from).min(sig_len + 48);
    let Some(code) = image.bytes(from, len) else {
        return Vec::new();
    };
    let Some(decoded) = disasm::decode(image.arch, code, from) else {
        return Vec::new();
    };
    // The signature, then the handler up to its first jump or return (at most 6 instructions).
    let mut out = Vec::new();
    for i in decoded.insns.iter().take(6) {
        out.push(insn_report(i));
        if i.ends_flow && i.addr >= abort {
            break;
        }
    }
    out
}
