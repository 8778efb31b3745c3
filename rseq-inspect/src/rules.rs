//! The named audit rules. Each checks one thing the kernel or the rseq contract requires of a critical
//! section; each result is pass, fail (with what was found) or skipped (with why it could not be
//! checked: no disassembler for the architecture, no symbol table, unreadable bytes).

use serde::Serialize;

use crate::disasm::{self, Decoded};
use crate::image::{Image, SymbolSource};
use crate::scan::RawDescriptor;

/// Ranges longer than this are not disassembled (a real critical section is tens of bytes; a longer
/// range is already wrong, and decoding megabytes of hostile input helps nobody).
pub const MAX_DISASM_RANGE: u64 = 64 * 1024;

/// A rule, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// `version` is 0.
    VersionZero,
    /// `flags` is 0.
    FlagsZero,
    /// The descriptor is 32-byte aligned.
    Aligned32,
    /// `abort_ip` is outside `[start_ip, start_ip + post_commit_offset)`.
    AbortOutsideRange,
    /// The architecture's signature sits in the 4 bytes before `abort_ip` (x86: after `0f b9 3d`).
    Signature,
    /// The range lies inside one function symbol.
    RangeInOneFunction,
    /// The range lies inside one executable section.
    RangeInExecutableSection,
    /// The last instruction of the range is a store (the commit).
    CommitIsStore,
    /// No call, kernel entry or stack-pointer change inside the range.
    NoCallSyscallStack,
}

impl Rule {
    /// Every rule, in report order.
    pub const ALL: [Rule; 9] = [
        Rule::VersionZero,
        Rule::FlagsZero,
        Rule::Aligned32,
        Rule::AbortOutsideRange,
        Rule::Signature,
        Rule::RangeInOneFunction,
        Rule::RangeInExecutableSection,
        Rule::CommitIsStore,
        Rule::NoCallSyscallStack,
    ];

    /// The rule's name as printed (`version-zero`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Rule::VersionZero => "version-zero",
            Rule::FlagsZero => "flags-zero",
            Rule::Aligned32 => "aligned-32",
            Rule::AbortOutsideRange => "abort-outside-range",
            Rule::Signature => "signature",
            Rule::RangeInOneFunction => "range-in-one-function",
            Rule::RangeInExecutableSection => "range-in-executable-section",
            Rule::CommitIsStore => "commit-is-store",
            Rule::NoCallSyscallStack => "no-call-syscall-stack",
        }
    }
}

/// The outcome of one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Checked and satisfied.
    Pass,
    /// Checked and violated.
    Fail,
    /// Not checked; `detail` says why.
    Skipped,
}

/// One rule's result for one descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleResult {
    /// Which rule.
    pub rule: Rule,
    /// Pass, fail or skipped.
    pub status: Status,
    /// What was found (on failure), why not checked (when skipped), or a short confirmation.
    pub detail: String,
}

fn pass(rule: Rule, detail: impl Into<String>) -> RuleResult {
    RuleResult {
        rule,
        status: Status::Pass,
        detail: detail.into(),
    }
}

fn fail(rule: Rule, detail: impl Into<String>) -> RuleResult {
    RuleResult {
        rule,
        status: Status::Fail,
        detail: detail.into(),
    }
}

fn skip(rule: Rule, detail: impl Into<String>) -> RuleResult {
    RuleResult {
        rule,
        status: Status::Skipped,
        detail: detail.into(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The range's instructions, decoded once and shared by the instruction rules.
#[derive(Debug, Clone)]
pub enum RangeCode {
    /// Decoded (possibly with an error partway).
    Decoded(Decoded),
    /// Not decoded; the reason.
    Unavailable(String),
}

/// Decodes the critical section `[start, start + len)`.
pub fn decode_range(image: &Image<'_>, d: &RawDescriptor) -> RangeCode {
    if image.arch.disassembler().is_none() {
        return RangeCode::Unavailable(format!("no disassembler for {}", image.arch.name()));
    }
    if d.post_commit_offset == 0 {
        return RangeCode::Decoded(Decoded {
            insns: Vec::new(),
            error: None,
        });
    }
    if d.post_commit_offset > MAX_DISASM_RANGE {
        return RangeCode::Unavailable(format!(
            "range of {} bytes is too long to disassemble (limit {MAX_DISASM_RANGE})",
            d.post_commit_offset
        ));
    }
    let Some(code) = image.bytes(d.start_ip, d.post_commit_offset) else {
        return RangeCode::Unavailable(
            "the range's bytes are not inside one section of the file".into(),
        );
    };
    match disasm::decode(image.arch, code, d.start_ip) {
        Some(decoded) => RangeCode::Decoded(decoded),
        None => RangeCode::Unavailable(format!("no disassembler for {}", image.arch.name())),
    }
}

/// Runs every rule on the descriptor at `addr`.
pub fn check(image: &Image<'_>, addr: u64, d: &RawDescriptor, code: &RangeCode) -> Vec<RuleResult> {
    Rule::ALL
        .iter()
        .map(|&rule| match rule {
            Rule::VersionZero => version_zero(d),
            Rule::FlagsZero => flags_zero(d),
            Rule::Aligned32 => aligned_32(addr),
            Rule::AbortOutsideRange => abort_outside_range(d),
            Rule::Signature => signature(image, d),
            Rule::RangeInOneFunction => range_in_one_function(image, d),
            Rule::RangeInExecutableSection => range_in_executable_section(image, d),
            Rule::CommitIsStore => commit_is_store(d, code),
            Rule::NoCallSyscallStack => no_call_syscall_stack(code),
        })
        .collect()
}

/// The kernel rejects (and kills the thread for) any descriptor version but 0.
fn version_zero(d: &RawDescriptor) -> RuleResult {
    if d.version == 0 {
        pass(Rule::VersionZero, "version 0")
    } else {
        fail(
            Rule::VersionZero,
            format!("version is {} (the kernel accepts only 0)", d.version),
        )
    }
}

/// The descriptor flags are deprecated: kernels warn about or reject non-zero values.
fn flags_zero(d: &RawDescriptor) -> RuleResult {
    if d.flags == 0 {
        pass(Rule::FlagsZero, "flags 0")
    } else {
        fail(
            Rule::FlagsZero,
            format!("flags are {:#x} (deprecated; must be 0)", d.flags),
        )
    }
}

/// `struct rseq_cs` is declared 32-byte aligned; the ABI requires it.
fn aligned_32(addr: u64) -> RuleResult {
    if addr % 32 == 0 {
        pass(Rule::Aligned32, "32-byte aligned")
    } else {
        fail(
            Rule::Aligned32,
            format!(
                "descriptor at {addr:#x} is {} bytes past a 32-byte boundary",
                addr % 32
            ),
        )
    }
}

/// The kernel refuses an abort address inside the range (it would restart into the section itself).
fn abort_outside_range(d: &RawDescriptor) -> RuleResult {
    // The kernel's own test: abort_ip - start_ip < post_commit_offset means inside.
    if d.abort_ip.wrapping_sub(d.start_ip) < d.post_commit_offset {
        fail(
            Rule::AbortOutsideRange,
            format!(
                "abort {:#x} is inside the range {:#x}..{:#x}",
                d.abort_ip,
                d.start_ip,
                d.start_ip.wrapping_add(d.post_commit_offset)
            ),
        )
    } else {
        pass(Rule::AbortOutsideRange, "abort is outside the range")
    }
}

/// The kernel compares the 4 bytes before `abort_ip` with the registered signature and kills the
/// process on a mismatch; it also has to jump to executable code there.
fn signature(image: &Image<'_>, d: &RawDescriptor) -> RuleResult {
    let Some(sig) = image.arch.signature() else {
        return skip(
            Rule::Signature,
            format!("no known rseq signature for {}", image.arch.name()),
        );
    };
    let expected = sig.encoded(image.big_endian);
    let len = expected.len() as u64;
    match image.section_at(d.abort_ip) {
        Some(s) if s.exec => {}
        Some(s) => {
            return fail(
                Rule::Signature,
                format!(
                    "abort {:#x} is in non-executable section `{}`",
                    d.abort_ip, s.name
                ),
            )
        }
        None => {
            return fail(
                Rule::Signature,
                format!("abort {:#x} is not inside any section", d.abort_ip),
            )
        }
    }
    let found = d
        .abort_ip
        .checked_sub(len)
        .and_then(|at| image.bytes(at, len));
    match found {
        Some(bytes) if bytes == expected.as_slice() => {
            pass(Rule::Signature, format!("{} before abort", hex(&expected)))
        }
        Some(bytes) => fail(
            Rule::Signature,
            format!(
                "expected {} before abort {:#x}, found {}",
                hex(&expected),
                d.abort_ip,
                hex(bytes)
            ),
        ),
        None => fail(
            Rule::Signature,
            format!(
                "the {len} bytes before abort {:#x} are not readable",
                d.abort_ip
            ),
        ),
    }
}

/// A range that spans functions is an assembler or layout mistake: the commit would not be in the code
/// the descriptor was written for.
fn range_in_one_function(image: &Image<'_>, d: &RawDescriptor) -> RuleResult {
    let rule = Rule::RangeInOneFunction;
    if image.symbol_source == SymbolSource::None {
        return skip(rule, "no symbol table");
    }
    let Some(end) = d.start_ip.checked_add(d.post_commit_offset) else {
        return fail(rule, "start_ip + post_commit_offset overflows");
    };
    let Some((f, f_end)) = image.function_at(d.start_ip) else {
        return if image.symbol_source == SymbolSource::DynamicOnly {
            skip(
                rule,
                "only dynamic symbols, and none covers start_ip (stripped binary)",
            )
        } else {
            fail(
                rule,
                format!("start {:#x} is not inside any function symbol", d.start_ip),
            )
        };
    };
    if let Some(g) = image.function_starting_in(d.start_ip, end) {
        return fail(
            rule,
            format!(
                "function `{}` starts at {:#x}, inside the range of `{}`",
                crate::demangle(&g.name),
                g.addr,
                crate::demangle(&f.name)
            ),
        );
    }
    if end > f_end {
        return fail(
            rule,
            format!(
                "range ends at {end:#x}, past the end of `{}` at {f_end:#x}",
                crate::demangle(&f.name)
            ),
        );
    }
    pass(rule, format!("inside `{}`", crate::demangle(&f.name)))
}

/// The kernel only ever sees instruction pointers in executable mappings; a range elsewhere is never
/// protected.
fn range_in_executable_section(image: &Image<'_>, d: &RawDescriptor) -> RuleResult {
    let rule = Rule::RangeInExecutableSection;
    let Some(end) = d.start_ip.checked_add(d.post_commit_offset) else {
        return fail(rule, "start_ip + post_commit_offset overflows");
    };
    match image.section_at(d.start_ip) {
        None => fail(
            rule,
            format!("start {:#x} is not inside any section", d.start_ip),
        ),
        Some(s) if !s.exec => fail(
            rule,
            format!(
                "start {:#x} is in non-executable section `{}`",
                d.start_ip, s.name
            ),
        ),
        Some(s) if end > s.end() => fail(
            rule,
            format!(
                "range ends at {end:#x}, past the end of `{}` at {:#x}",
                s.name,
                s.end()
            ),
        ),
        Some(s) => pass(rule, format!("inside `{}`", s.name)),
    }
}

/// The commit must be the last instruction: the kernel treats the section as done as soon as the
/// instruction pointer reaches post_commit, so anything after the store is unprotected and anything
/// before it can be restarted.
fn commit_is_store(d: &RawDescriptor, code: &RangeCode) -> RuleResult {
    let rule = Rule::CommitIsStore;
    let decoded = match code {
        RangeCode::Unavailable(why) => return skip(rule, why.clone()),
        RangeCode::Decoded(decoded) => decoded,
    };
    if d.post_commit_offset == 0 {
        return fail(rule, "the range is empty (post_commit_offset 0)");
    }
    if let Some(error) = &decoded.error {
        return fail(
            rule,
            format!("instructions do not end at post-commit: {error}"),
        );
    }
    match decoded.insns.last() {
        Some(last) if last.is_store => pass(rule, format!("commit `{}`", last.text)),
        Some(last) => fail(
            rule,
            format!("last instruction `{}` is not a store", last.text),
        ),
        None => fail(rule, "no instruction in the range"),
    }
}

/// The kernel restarts a section on preemption, so a call or syscall inside it would run again (or not
/// return into the section), and a stack change is not undone by the abort.
fn no_call_syscall_stack(code: &RangeCode) -> RuleResult {
    let rule = Rule::NoCallSyscallStack;
    let decoded = match code {
        RangeCode::Unavailable(why) => return skip(rule, why.clone()),
        RangeCode::Decoded(decoded) => decoded,
    };
    let offenders: Vec<String> = decoded
        .insns
        .iter()
        .filter_map(|i| {
            let what = if i.is_call {
                "call"
            } else if i.is_syscall {
                "kernel entry"
            } else if i.writes_sp {
                "stack-pointer change"
            } else {
                return None;
            };
            Some(format!("{what} `{}` at {:#x}", i.text, i.addr))
        })
        .collect();
    match offenders.as_slice() {
        [] => pass(
            rule,
            format!(
                "{} instruction(s), none calls, enters the kernel or moves the stack pointer",
                decoded.insns.len()
            ),
        ),
        [one] => fail(rule, one.clone()),
        [first, rest @ ..] => fail(rule, format!("{first} (and {} more)", rest.len())),
    }
}
