//! The audit result as data (serialised as-is by `--json`) and its human-readable rendering.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::rules::{RuleResult, Status};
use crate::scan::ScanOrigin;

/// `found_in` entry of a descriptor found by the data scan.
pub const FOUND_BY_SCAN: &str = "data scan";

/// Unreached signatures listed in the text rendering (`--json` has them all).
const MAX_RENDERED_SIGNATURES: usize = 20;

/// The audit of one file.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The file name as given.
    pub file: String,
    /// `x86_64`, `aarch64`, ...
    pub arch: String,
    /// 32 or 64.
    pub elf_class: u8,
    /// `little` or `big`.
    pub endian: &'static str,
    /// `executable`, `relocatable object`, ...
    pub kind: String,
    /// Where function names come from: `symtab`, `dynsym` or `none`.
    pub symbols: &'static str,
    /// The disassembler used for `commit-is-store` and `no-call-syscall-stack`; `null` when the
    /// architecture has none here and those rules are skipped.
    pub disassembler: Option<&'static str>,
    /// Every descriptor, sorted by address.
    pub descriptors: Vec<DescriptorReport>,
    /// `__rseq_exit_point_array` pairs whose start matches no descriptor.
    pub orphan_exit_points: Vec<ExitPair>,
    /// What the signature search in executable code looked for (`null` when the machine has no known
    /// signature): the bytes and the alignment.
    pub signature_pattern: Option<String>,
    /// Abort signatures found in executable code, reached or not.
    pub signatures_in_code: usize,
    /// Signatures in code whose following address is no descriptor's `abort_ip`: rseq code whose
    /// descriptor the audit did not find (built at run time, or in a form the scan does not
    /// recognise), or a constant that merely looks like a signature (see `signature_pattern`).
    pub unreached_signatures: Vec<UnreachedSignature>,
    /// Notes that limit the audit (unsupported relocations, partial sections, ...).
    pub warnings: Vec<String>,
    /// Totals.
    pub summary: Summary,
}

/// One `(start_ip, exit_ip)` pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExitPair {
    /// The `start_ip` the pair names.
    pub start: u64,
    /// The exit address.
    pub exit: u64,
}

/// An abort signature in code that no descriptor reaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnreachedSignature {
    /// First byte of the signature's encoding.
    pub address: u64,
    /// The address after it, where the abort handler it announces starts.
    pub abort: u64,
    /// The executable section holding it.
    pub section: String,
    /// The (demangled) function symbol containing it, if any.
    pub function: Option<String>,
}

/// The function symbol enclosing a critical section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FunctionInfo {
    /// Demangled name (Rust or C++), or the raw name.
    pub name: String,
    /// Raw symbol name.
    pub symbol: String,
    /// Symbol address.
    pub address: u64,
    /// Symbol size (0 when not recorded).
    pub size: u64,
}

/// One decoded instruction, for `--disasm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InsnReport {
    /// Address.
    pub address: u64,
    /// Encoded bytes, hex, space-separated.
    pub bytes: String,
    /// Disassembly.
    pub text: String,
}

/// One descriptor and its rule results.
#[derive(Debug, Clone, Serialize)]
pub struct DescriptorReport {
    /// Address of the descriptor.
    pub address: u64,
    /// Where it was found: `__rseq_cs`, `__rseq_cs_ptr_array` and/or `data scan`.
    pub found_in: Vec<&'static str>,
    /// For a descriptor found by the data scan: the section and whether relocations fill it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scanned_from: Option<ScanOrigin>,
    /// Why the descriptor could not be read (then every field below is `null` and no rule ran).
    pub unreadable: Option<String>,
    /// `version` field.
    pub version: Option<u32>,
    /// `flags` field.
    pub flags: Option<u32>,
    /// `start_ip`.
    pub start: Option<u64>,
    /// `start_ip + post_commit_offset`.
    pub post_commit: Option<u64>,
    /// `abort_ip`.
    pub abort: Option<u64>,
    /// `post_commit_offset`, the length of the range in bytes.
    pub length: Option<u64>,
    /// Enclosing function of `start_ip`.
    pub function: Option<FunctionInfo>,
    /// Exit addresses recorded for this `start_ip`.
    pub exit_points: Vec<u64>,
    /// One result per rule, in rule order.
    pub rules: Vec<RuleResult>,
    /// Whether no rule failed and the descriptor was readable.
    pub ok: bool,
    /// The range's instructions (only with `--disasm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instructions: Option<Vec<InsnReport>>,
    /// The signature and the first instructions at `abort_ip` (only with `--disasm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_instructions: Option<Vec<InsnReport>>,
    /// Why decoding stopped early (only with `--disasm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disasm_error: Option<String>,
}

/// Totals over the file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Descriptors found.
    pub descriptors: usize,
    /// Descriptors with no failed rule.
    pub ok: usize,
    /// Descriptors with a failed rule or unreadable.
    pub failed: usize,
    /// Descriptors found by the data scan (outside `__rseq_cs` and the pointer array, or also there).
    pub scanned: usize,
    /// Abort signatures in executable code.
    pub signatures: usize,
    /// Of those, the ones no descriptor reaches.
    pub unreached_signatures: usize,
    /// Failures per rule name.
    pub failed_rules: BTreeMap<&'static str, usize>,
    /// Skips per rule name.
    pub skipped_rules: BTreeMap<&'static str, usize>,
}

impl Report {
    /// Whether any rule failed or any descriptor was unreadable.
    pub fn has_failures(&self) -> bool {
        self.summary.failed > 0
    }

    /// Whether abort signatures sit in code that no descriptor reaches.
    pub fn has_unreached_signatures(&self) -> bool {
        !self.unreached_signatures.is_empty()
    }

    /// The CLI's exit status for this report: [`crate::EXIT_RULE_FAILED`] when a rule failed, else
    /// [`crate::EXIT_UNREACHED_SIGNATURE`] when a signature in code is not reached, else
    /// [`crate::EXIT_OK`].
    pub fn exit_status(&self) -> i32 {
        if self.has_failures() {
            crate::EXIT_RULE_FAILED
        } else if self.has_unreached_signatures() {
            crate::EXIT_UNREACHED_SIGNATURE
        } else {
            crate::EXIT_OK
        }
    }

    /// Recomputes [`Report::summary`] from the descriptors and signatures.
    pub fn summarize(&mut self) {
        let mut s = Summary {
            descriptors: self.descriptors.len(),
            scanned: self
                .descriptors
                .iter()
                .filter(|d| d.scanned_from.is_some())
                .count(),
            signatures: self.signatures_in_code,
            unreached_signatures: self.unreached_signatures.len(),
            ..Summary::default()
        };
        for d in &self.descriptors {
            if d.ok {
                s.ok += 1;
            } else {
                s.failed += 1;
            }
            for r in &d.rules {
                match r.status {
                    Status::Fail => *s.failed_rules.entry(r.rule.name()).or_default() += 1,
                    Status::Skipped => *s.skipped_rules.entry(r.rule.name()).or_default() += 1,
                    Status::Pass => {}
                }
            }
        }
        self.summary = s;
    }

    /// The human-readable rendering: header, one table row per descriptor, then each descriptor's
    /// rules (and instructions with `--disasm`), then the summary.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let o = &mut out;
        let _ = writeln!(o, "file:         {}", self.file);
        let _ = writeln!(
            o,
            "format:       ELF{} {}-endian {}, {}",
            self.elf_class, self.endian, self.arch, self.kind
        );
        let _ = writeln!(o, "symbols:      {}", self.symbols);
        match self.disassembler {
            Some(d) => {
                let _ = writeln!(o, "disassembler: {d}");
            }
            None => {
                let _ = writeln!(
                    o,
                    "disassembler: none for {}: commit-is-store and no-call-syscall-stack are skipped",
                    self.arch
                );
            }
        }
        let in_section = self
            .descriptors
            .iter()
            .filter(|d| d.found_in.contains(&"__rseq_cs"))
            .count();
        let in_array = self
            .descriptors
            .iter()
            .filter(|d| d.found_in.contains(&"__rseq_cs_ptr_array"))
            .count();
        let exits: usize = self.descriptors.iter().map(|d| d.exit_points.len()).sum();
        let _ = writeln!(
            o,
            "found:        {} descriptor(s) (__rseq_cs: {in_section}, __rseq_cs_ptr_array: {in_array}, data scan: {}), {} exit point(s), {} abort signature(s) in code",
            self.descriptors.len(),
            self.summary.scanned,
            exits + self.orphan_exit_points.len(),
            self.signatures_in_code,
        );
        for w in &self.warnings {
            let _ = writeln!(o, "warning:      {w}");
        }
        if self.descriptors.is_empty() && self.unreached_signatures.is_empty() {
            let _ = writeln!(o, "\nno rseq critical sections found");
        } else if self.descriptors.is_empty() {
            let _ = writeln!(
                o,
                "\nno descriptor found, but {} abort signature(s) sit in executable code: this file likely has\n\
                 rseq critical sections whose descriptors the audit cannot locate; they are not audited",
                self.unreached_signatures.len()
            );
        } else {
            let _ = writeln!(o);
            self.render_table(o);
            for (i, d) in self.descriptors.iter().enumerate() {
                let _ = writeln!(o);
                render_descriptor(o, i, d);
            }
        }
        if !self.orphan_exit_points.is_empty() {
            let _ = writeln!(o, "\nexit points whose start matches no descriptor:");
            for p in &self.orphan_exit_points {
                let _ = writeln!(o, "    start {:#x} exit {:#x}", p.start, p.exit);
            }
        }
        if !self.unreached_signatures.is_empty() {
            self.render_unreached(o);
        }
        let _ = writeln!(o);
        let _ = writeln!(o, "{}", self.summary_line());
        out
    }

    fn render_unreached(&self, o: &mut String) {
        let pattern = self.signature_pattern.as_deref().unwrap_or("?");
        let _ = writeln!(o, "\nabort signatures in code that no descriptor reaches:");
        for u in self
            .unreached_signatures
            .iter()
            .take(MAX_RENDERED_SIGNATURES)
        {
            let within = u
                .function
                .as_ref()
                .map(|f| format!(" in `{f}`"))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "    warning: signature at {:#x} not reached by any descriptor (handler {:#x}{within}, section {})",
                u.address, u.abort, u.section
            );
        }
        let more = self
            .unreached_signatures
            .len()
            .saturating_sub(MAX_RENDERED_SIGNATURES);
        if more > 0 {
            let _ = writeln!(o, "    ... and {more} more (--json lists them all)");
        }
        let _ = writeln!(
            o,
            "  (heuristic: {pattern} in an executable section,\n   \
             and the address after it is no found descriptor's abort_ip. A descriptor built at run time,\n   \
             or one the data scan does not recognise, leaves such a signature; so can a constant that\n   \
             only looks like one.)"
        );
    }

    fn summary_line(&self) -> String {
        let list = |m: &BTreeMap<&str, usize>| {
            if m.is_empty() {
                "none".to_string()
            } else {
                m.iter()
                    .map(|(k, v)| format!("{k} ({v})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let mut line = format!(
            "summary: {} descriptor(s), {} ok, {} failed; failed rules: {}; skipped rules: {}",
            self.summary.descriptors,
            self.summary.ok,
            self.summary.failed,
            list(&self.summary.failed_rules),
            list(&self.summary.skipped_rules)
        );
        if self.summary.unreached_signatures > 0 {
            let _ = write!(
                line,
                "; {} signature(s) in code not reached by any descriptor",
                self.summary.unreached_signatures
            );
        }
        line
    }

    fn render_table(&self, o: &mut String) {
        let opt = |v: Option<u64>| v.map_or_else(|| "?".to_string(), |v| format!("{v:#x}"));
        let header = [
            "#",
            "descriptor",
            "function",
            "start",
            "post-commit",
            "abort",
            "length",
            "exits",
            "result",
        ];
        let rows: Vec<[String; 9]> = self
            .descriptors
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let failed: Vec<&str> = d
                    .rules
                    .iter()
                    .filter(|r| r.status == Status::Fail)
                    .map(|r| r.rule.name())
                    .collect();
                let result = if d.unreadable.is_some() {
                    "FAIL (unreadable)".to_string()
                } else if failed.is_empty() {
                    "ok".to_string()
                } else {
                    format!("FAIL ({})", failed.join(", "))
                };
                [
                    i.to_string(),
                    format!("{:#x}", d.address),
                    d.function
                        .as_ref()
                        .map_or_else(|| "?".to_string(), |f| f.name.clone()),
                    opt(d.start),
                    opt(d.post_commit),
                    opt(d.abort),
                    d.length.map_or_else(|| "?".to_string(), |l| l.to_string()),
                    d.exit_points.len().to_string(),
                    result,
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |o: &mut String, cells: &[&str]| {
            let mut s = String::new();
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                if i + 1 == cells.len() {
                    s.push_str(cell);
                } else {
                    let _ = write!(s, "{cell:<w$}  ");
                }
            }
            let _ = writeln!(o, "{}", s.trim_end());
        };
        line(o, &header);
        for row in &rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            line(o, &cells);
        }
    }
}

fn render_descriptor(o: &mut String, i: usize, d: &DescriptorReport) {
    let within = d
        .function
        .as_ref()
        .map(|f| format!(" in `{}`", f.name))
        .unwrap_or_default();
    let _ = writeln!(
        o,
        "[{i}] descriptor {:#x}{within} ({})",
        d.address,
        provenance(d)
    );
    if let Some(why) = &d.unreadable {
        let _ = writeln!(o, "    FAIL  unreadable: {why}");
        return;
    }
    let width = d
        .rules
        .iter()
        .map(|r| r.rule.name().len())
        .max()
        .unwrap_or(0);
    for r in &d.rules {
        let status = match r.status {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Skipped => "skip",
        };
        let _ = writeln!(o, "    {status}  {:<width$}  {}", r.rule.name(), r.detail);
    }
    if !d.exit_points.is_empty() {
        let list: Vec<String> = d.exit_points.iter().map(|e| format!("{e:#x}")).collect();
        let _ = writeln!(o, "    exit points: {}", list.join(", "));
    }
    if let Some(insns) = &d.instructions {
        let _ = writeln!(o, "    critical section:");
        render_insns(o, insns);
        if let Some(e) = &d.disasm_error {
            let _ = writeln!(o, "      ({e})");
        }
    }
    if let Some(insns) = &d.abort_instructions {
        let _ = writeln!(o, "    abort (signature, then handler):");
        render_insns(o, insns);
    }
}

/// How a descriptor was found: `found in __rseq_cs, __rseq_cs_ptr_array`, `scanned from .data.rel.ro,
/// relocated`, or both.
fn provenance(d: &DescriptorReport) -> String {
    let named: Vec<&str> = d
        .found_in
        .iter()
        .copied()
        .filter(|&f| f != FOUND_BY_SCAN)
        .collect();
    let mut parts = Vec::new();
    if !named.is_empty() {
        parts.push(format!("found in {}", named.join(", ")));
    }
    if let Some(origin) = &d.scanned_from {
        parts.push(format!(
            "scanned from {}, {}",
            origin.section,
            if origin.relocated {
                "relocated"
            } else {
                "not relocated"
            }
        ));
    }
    if parts.is_empty() {
        parts.push("found nowhere".to_string());
    }
    parts.join("; ")
}

fn render_insns(o: &mut String, insns: &[InsnReport]) {
    let width = insns.iter().map(|i| i.bytes.len()).max().unwrap_or(0);
    let addr_width = insns
        .iter()
        .map(|i| format!("{:#x}", i.address).len())
        .max()
        .unwrap_or(0);
    for i in insns {
        let addr = format!("{:#x}", i.address);
        let _ = writeln!(
            o,
            "      {addr:>addr_width$}  {:<width$}  {}",
            i.bytes, i.text
        );
    }
}
