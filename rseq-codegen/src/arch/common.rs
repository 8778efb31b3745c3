//! Helpers shared by the emitters: 16-bit immediate chunks, the descriptor tables (every emitter)
//! and the in-section stub layout (every emitter but x86_64).
//!
//! Stub placement (all emitters in this directory except x86_64): the exit stubs and the abort stub
//! (signature + label `5:`) stay in the function's own section, after the post-commit code and behind
//! an unconditional branch to label [`AFTER_STUBS`]. Conditional branches reach only +-4 KiB
//! (riscv64), +-32 KiB (ppc64), +-64 KiB (s390x `brc`), +-128 KiB (loongarch64) or +-1 MiB
//! (aarch64): a branch into `__rseq_failure` would need a linker-resolved relocation that fails once
//! the binary's text is larger than that. Inside one section every distance is known to the
//! assembler and bounded by the block's own size. The cost is one taken branch after the commit.

use super::{Builder, Labels};

/// Label after the stubs: the committed path branches over the stubs to it.
pub const AFTER_STUBS: u32 = 7;

/// Splits `v` into the 16-bit chunks `(shift, chunk)` that are not zero (at least one).
pub fn chunks16(v: u64) -> Vec<(u32, u64)> {
    let mut out: Vec<(u32, u64)> = (0..4)
        .map(|i| (i * 16, (v >> (i * 16)) & 0xffff))
        .filter(|&(_, c)| c != 0)
        .collect();
    if out.is_empty() {
        out.push((0, 0));
    }
    out
}

/// The descriptor, its pointer-array entry and the exit-point pairs for 64-bit architectures
/// (`.quad` fields), then the label after the stubs ([`AFTER_STUBS`]).
pub fn descriptor64(b: &mut Builder, labels: &Labels, exits: &[u32]) {
    tables(b, labels, exits, quad);
    b.line(format!("{AFTER_STUBS}:"));
}

/// The same for 32-bit little-endian architectures: every 64-bit field is a `.long low, 0` pair
/// (the kernel reads `u64`s; addresses fit the low word, the high word is zero).
pub fn descriptor32(b: &mut Builder, labels: &Labels, exits: &[u32]) {
    tables(b, labels, exits, |a: &str| format!(".long {a}, 0"));
    b.line(format!("{AFTER_STUBS}:"));
}

/// A 64-bit field.
pub fn quad(a: &str) -> String {
    format!(".quad {a}")
}

/// The descriptor (in `__rseq_cs`), its entry in `__rseq_cs_ptr_array` and the `(start, exit)` pairs
/// of `__rseq_exit_point_array`, each 64-bit field written by `u64_field`.
pub fn tables(b: &mut Builder, labels: &Labels, exits: &[u32], u64_field: impl Fn(&str) -> String) {
    let Labels {
        start,
        descriptor,
        post_commit,
        abort,
        ..
    } = *labels;
    b.line(".pushsection __rseq_cs, \"aw\"");
    b.line(".balign 32");
    b.line(format!("{descriptor}:"));
    b.line(".long 0, 0");
    b.line(u64_field(&format!("{start}b")));
    b.line(u64_field(&format!("{post_commit}b - {start}b")));
    b.line(u64_field(&format!("{abort}b")));
    b.line(".popsection");
    // "R" (SHF_GNU_RETAIN): nothing references the arrays, so --gc-sections would drop them.
    b.line(".pushsection __rseq_cs_ptr_array, \"awR\"");
    b.line(".balign 8");
    b.line(u64_field(&format!("{descriptor}b")));
    b.line(".popsection");
    if !exits.is_empty() {
        b.line(".pushsection __rseq_exit_point_array, \"awR\"");
        b.line(".balign 8");
        for e in exits {
            b.line(u64_field(&format!("{start}b")));
            b.line(u64_field(&format!("{e}b")));
        }
        b.line(".popsection");
    }
}
