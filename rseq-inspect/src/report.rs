//! The audit result as data (serialised as-is by `--json`) and its human-readable rendering.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::rules::{RuleResult, Status};

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
    /// Where it was found: `__rseq_cs` and/or `__rseq_cs_ptr_array`.
    pub found_in: Vec<&'static str>,
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

    /// Recomputes [`Report::summary`] from the descriptors.
    pub fn summarize(&mut self) {
        let mut s = Summary {
            descriptors: self.descriptors.len(),
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
            "found:        {} descriptor(s) (__rseq_cs: {in_section}, __rseq_cs_ptr_array: {in_array}), {} exit point(s)",
            self.descriptors.len(),
            exits + self.orphan_exit_points.len()
        );
        for w in &self.warnings {
            let _ = writeln!(o, "warning:      {w}");
        }
        if self.descriptors.is_empty() {
            let _ = writeln!(o, "\nno rseq critical sections found");
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
        let _ = writeln!(o);
        let _ = writeln!(o, "{}", self.summary_line());
        out
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
        format!(
            "summary: {} descriptor(s), {} ok, {} failed; failed rules: {}; skipped rules: {}",
            self.summary.descriptors,
            self.summary.ok,
            self.summary.failed,
            list(&self.summary.failed_rules),
            list(&self.summary.skipped_rules)
        )
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
        "[{i}] descriptor {:#x}{within} (found in {})",
        d.address,
        d.found_in.join(", ")
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
