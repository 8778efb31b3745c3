//! Render: an emitted block as annotated assembly text (for tools, docs, dumps and golden files).

use std::fmt::Write as _;

use crate::arch::{describe_input, AsmBlock};
use crate::ir::{Sequence, STATUS_ABORTED, STATUS_COMMITTED};
use crate::semantics::{describe_debug_check, describe_exit, Quote};

const NOTE_COLUMN: usize = 52;

/// Renders `block` with a header (operands, statuses, register count) and a comment on every line
/// whose source step or role differs from the previous one.
pub fn render(seq: &Sequence, block: &AsmBlock) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# rseq sequence `{}` for {} (index: {})",
        seq.ident,
        block.arch.name(),
        seq.index.name()
    );
    let _ = writeln!(out, "# inputs (in({}), never modified):", block.class);
    for input in &block.inputs {
        let _ = writeln!(out, "#   {:<12} {}", input.name, describe_input(seq, input));
    }
    if !block.spilled.is_empty() {
        let bytes = block.arch.emitter().map_or(8, |e| e.pointer_bytes());
        let _ = writeln!(
            out,
            "# spilled inputs (too few registers: words at `spill`, loaded where used):"
        );
        for (k, input) in block.spilled.iter().enumerate() {
            let at = format!("[{}] {}", k * bytes as usize, input.name);
            let _ = writeln!(out, "#   {:<12} {}", at, describe_input(seq, input));
        }
    }
    let _ = writeln!(out, "# outputs (out({})):", block.class);
    let _ = writeln!(
        out,
        "#   {:<12} {STATUS_COMMITTED} committed, {STATUS_ABORTED} aborted",
        block.status
    );
    for exit in &seq.exits {
        let what = describe_exit(seq, &exit.kind, Quote::Backticks);
        let _ = writeln!(out, "#   {:<12} {} {what}", "", exit.status);
    }
    for dc in seq
        .debug_checks
        .iter()
        .filter(|d| block.debug_checks.contains(&d.status))
    {
        let what = describe_debug_check(seq, dc.kind, Quote::Backticks);
        let _ = writeln!(out, "#   {:<12} {} {what}", "", dc.status);
    }
    for s in &block.scratch {
        let holds: Vec<String> = block
            .locals
            .iter()
            .filter(|(_, name)| name == s)
            .map(|(l, _)| format!("`{}`", seq.locals[*l].ident))
            .chain(
                block
                    .index
                    .iter()
                    .filter(|i| *i == s)
                    .map(|_| "the index read".to_owned()),
            )
            .collect();
        let holds = if holds.is_empty() {
            "scratch".to_owned()
        } else {
            format!("scratch; after the block: {}", holds.join(", "))
        };
        let _ = writeln!(out, "#   {s:<12} {holds}");
    }
    for c in &block.clobbers {
        let _ = writeln!(out, "#   {c:<12} clobbered");
    }
    if block.debug_checks.len() < seq.debug_checks.len() {
        let _ = writeln!(
            out,
            "# debug checks: {} of {} (the others do not fit the register budget)",
            block.debug_checks.len(),
            seq.debug_checks.len()
        );
    }
    let _ = writeln!(
        out,
        "# registers: {} (limit {}), options({})",
        block.registers,
        block.arch.emitter().map_or(0, |e| e.registers()),
        block.options.join(", ")
    );
    let mut last_note = "";
    for line in &block.lines {
        let is_label = line.text.ends_with(':') && !line.text.contains(' ');
        let mut text = if is_label {
            line.text.clone()
        } else {
            format!("    {}", line.text)
        };
        if line.note != last_note {
            let pad = NOTE_COLUMN.saturating_sub(text.len()).max(1);
            text.push_str(&" ".repeat(pad));
            text.push_str("# ");
            text.push_str(&line.note);
            last_note = &line.note;
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}
