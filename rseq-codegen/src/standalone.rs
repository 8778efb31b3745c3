//! Standalone items: a compiled sequence's block for one architecture as a self-contained
//! `#[no_mangle] pub unsafe extern "C" fn`, for tools that compile it without the macro, e.g. for a
//! target whose std is not installed (`#![no_core]` + a minicore) or to link it into a C harness.
//!
//! The `asm!` template and the operand list are the same data the macro turns into tokens
//! ([`AsmBlock::template`], [`AsmBlock::operands`]); only the Rust around them differs:
//!
//! ```text
//! #[repr(C)]
//! pub struct <prefix>_<name>_out { pub status: usize, pub index: usize, pub l_<local>: usize, .. }
//!
//! #[no_mangle]
//! pub unsafe extern "C" fn <prefix>_<name>(out: *mut <prefix>_<name>_out, <inputs>) -> usize
//! ```
//!
//! - One argument per register input, in the block's input order and named like the operand:
//!   `area`, `base<p>`, `slot_<local>` are `*mut u8`; `stride<p>`, `len<p>`, `p_<param>`, `e<k>`
//!   are `usize` holding the value's canonical word (zero- or sign-extended to the register width,
//!   as `Word::to_word` truncated to `usize`).
//! - Returns the status (0 committed, 1 aborted, then the sequence's exits in order, then debug
//!   checks) and also writes it to `out.status`. `out.index` is the index the section read (0 when
//!   no exit needs it), then one `usize` per local the exits or the tail read, in
//!   `Sequence::escaping_locals` order. In C: `size_t out[2 + n]`.
//! - `const` operands (x86_64 `offset_of!`/`size_of` values) are substituted by
//!   [`Options::const_value`], since the user's types do not exist in a standalone crate.
//! - The injection-point table (a `sym` operand) is [`Options::inject_sym`]: the crate must define
//!   it, e.g. declared with [`inject_delays_decl`] and defined by the C side.
//!
//! The item uses `asm!` unqualified: the crate imports it (`use minicore::arch::asm;` under
//! `#![no_core]`, `use core::arch::asm;` otherwise).

use std::fmt::Write as _;

use crate::arch::{describe_input, AsmBlock, Input, InputSource, OperandKind};
use crate::ir::InjectPoint;
use crate::{Arch, Compiled};

/// Options of [`standalone_item`].
pub struct Options<'a> {
    /// Prefix of the exported symbols: `<prefix>_<name>`.
    pub prefix: &'a str,
    /// Path of the injection-point table used as the `sym` operand (blocks with injection points).
    pub inject_sym: &'a str,
    /// The value substituted for a `const` input (`offset_of!`/`size_of` on x86_64).
    pub const_value: &'a dyn Fn(&Input) -> String,
}

impl std::fmt::Debug for Options<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("prefix", &self.prefix)
            .field("inject_sym", &self.inject_sym)
            .finish_non_exhaustive()
    }
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            prefix: "rseq",
            inject_sym: "RSEQ_INJECT_DELAYS",
            const_value: &|_| "8".to_owned(),
        }
    }
}

/// `extern "C" { static mut <name>: [u64; N]; }`: the injection-point table the items' `sym`
/// operands name. The linking party defines it (in C: `uint64_t <name>[N]`, delay counts per
/// `InjectPoint::index`), so a harness sets the delays itself; a definition in a `no_core` crate
/// would need the `drop_in_place` lang item.
pub fn inject_delays_decl(name: &str) -> String {
    let n = InjectPoint::ALL.len();
    format!(
        "extern \"C\" {{\n    /// Delay counts per injection point, defined by the linking party.\n    pub static mut {name}: [u64; {n}];\n}}\n"
    )
}

/// The standalone item of `c`'s block for `arch`, or `None` when `arch` has no block for it.
pub fn standalone_item(c: &Compiled, arch: Arch, opts: &Options<'_>) -> Option<String> {
    let b = c.block(arch)?;
    let seq = &c.seq;
    let fname = format!("{}_{}", opts.prefix, seq.ident);
    let out_ty = format!("{fname}_out");
    let escaping = seq.escaping_locals();
    let mut s = String::new();

    let _ = writeln!(
        s,
        "/// Outputs of [`{fname}`]: status, index read, then the locals read after the section."
    );
    let _ = writeln!(s, "#[repr(C)]\n#[allow(non_camel_case_types)]");
    let _ = writeln!(
        s,
        "pub struct {out_ty} {{\n    pub status: usize,\n    pub index: usize,"
    );
    for &l in escaping {
        let _ = writeln!(s, "    pub l_{}: usize,", seq.locals[l].ident);
    }
    s.push_str("}\n\n");

    let _ = writeln!(
        s,
        "/// `{}` for {} (rseq-codegen standalone item). Returns the status.",
        seq.ident,
        arch.name()
    );
    let _ = writeln!(s, "///\n/// Arguments:");
    let mut args = vec![format!("out: *mut {out_ty}")];
    for op in b.operands() {
        if let (OperandKind::In, Some(input)) = (op.kind, op.input) {
            let ty = match input.source {
                InputSource::Area
                | InputSource::Base(_)
                | InputSource::SlotAddr(_)
                | InputSource::Spill => "*mut u8",
                _ => "usize",
            };
            args.push(format!("{}: {ty}", input.name));
            let _ = writeln!(s, "/// - `{}`: {}", input.name, describe_input(seq, input));
            if input.source == InputSource::Spill {
                for (k, w) in b.spilled.iter().enumerate() {
                    let _ = writeln!(
                        s,
                        "///   - word {k}: `{}`, {}",
                        w.name,
                        describe_input(seq, w)
                    );
                }
            }
        }
    }
    let _ = writeln!(
        s,
        "///\n/// # Safety\n/// As the sequence's own `unsafe fn` contract, plus: `area` is the calling thread's registered\n/// rseq area and `out` is writable."
    );
    let _ = writeln!(s, "#[no_mangle]");
    let _ = writeln!(
        s,
        "pub unsafe extern \"C\" fn {fname}({}) -> usize {{",
        args.join(", ")
    );
    let word = "usize";
    let _ = writeln!(s, "    let {}: {word};", b.status);
    for v in &b.scratch {
        let _ = writeln!(s, "    let {v}: {word};");
    }
    let _ = writeln!(
        s,
        "    // SAFETY: the caller upholds the sequence's contract; the block writes only its outputs,\n    // the area's `rseq_cs` and the memory the sequence stores to."
    );
    s.push_str("    unsafe {\n");
    s.push_str(&asm_statement(b, opts));

    let _ = writeln!(s, "        (*out).status = {};", b.status);
    let _ = writeln!(
        s,
        "        (*out).index = {};",
        b.index.as_deref().unwrap_or("0")
    );
    for &l in escaping {
        let reg = b
            .locals
            .iter()
            .find(|(loc, _)| *loc == l)
            .map_or("0", |(_, r)| r.as_str());
        let _ = writeln!(s, "        (*out).l_{} = {reg};", seq.locals[l].ident);
    }
    let _ = writeln!(s, "    }}\n    {}\n}}", b.status);
    Some(s)
}

/// The `asm!( .. );` statement of `b`: the template lines and [`AsmBlock::operands`], with every
/// register operand bound to the Rust local of its name.
fn asm_statement(b: &AsmBlock, opts: &Options<'_>) -> String {
    let mut s = String::from("        asm!(\n");
    for line in b.template() {
        let _ = writeln!(s, "            {line:?},");
    }
    for op in b.operands() {
        let name = op.name.unwrap_or("");
        let _ = match op.kind {
            OperandKind::In => writeln!(s, "            {name} = in({}) {name},", op.class),
            OperandKind::Const => writeln!(
                s,
                "            {name} = const {},",
                (opts.const_value)(op.input.expect("input"))
            ),
            OperandKind::Sym => writeln!(s, "            {name} = sym {},", opts.inject_sym),
            OperandKind::Out => writeln!(s, "            {name} = out({}) {name},", op.class),
            OperandKind::Clobber => writeln!(s, "            out(\"{}\") _,", op.class),
        };
    }
    let _ = writeln!(s, "            options({}),", b.options.join(", "));
    s.push_str("        );\n");
    s
}

/// A negative control for test harnesses: `block` without the arming store and without its
/// descriptor, pointer-array and exit-point entries. The same instructions then run unprotected,
/// so preemption or a signal between the load and the commit loses updates. Never for real use.
pub fn unarmed(block: &AsmBlock) -> AsmBlock {
    let mut b = block.clone();
    let mut skipping = false;
    b.lines.retain(|l| {
        let t = l.text.trim();
        if l.note.starts_with("arm: ") {
            return false;
        }
        if t.starts_with(".pushsection __rseq_cs") || t.starts_with(".pushsection __rseq_exit") {
            skipping = true;
            return false;
        }
        if skipping {
            skipping = t != ".popsection";
            return false;
        }
        true
    });
    b
}

/// The section file `xarch/README.md` specifies ("The section ABI") for `arch`, from the
/// sequences `counter_inc`, `stack_push` and `stack_pop` of `compiled` (see
/// `tests/golden/sources/xarch.rs`): their standalone items (prefix `rseq_gen`) plus the four
/// exported ABI functions wrapping them (`counter_inc_unarmed` runs [`unarmed`]).
/// `None` when a sequence is missing or `arch` rejects one.
pub fn xarch_section_file(compiled: &[Compiled], arch: Arch) -> Option<String> {
    let find = |name: &str| compiled.iter().find(|c| c.seq.ident == name);
    let (inc, push, pop) = (
        find("counter_inc")?,
        find("stack_push")?,
        find("stack_pop")?,
    );
    let mut unarmed_inc = inc.clone();
    unarmed_inc.seq.ident = syn::Ident::new("counter_inc_unarmed", inc.seq.ident.span());
    for b in &mut unarmed_inc.blocks {
        *b = unarmed(b);
    }
    let opts = Options {
        prefix: "rseq_gen",
        ..Options::default()
    };
    let mut s = format!(
        "//! Generated by `rseq-codegen` (examples/xarch_sections.rs) for {}: the section ABI of\n\
         //! `xarch/README.md` from the `rseq!` sequences of\n\
         //! `rseq-codegen/tests/golden/sources/xarch.rs`. Do not edit.\n\
         #![feature(no_core)]\n#![no_core]\n#![allow(unused)]\n\n\
         extern crate minicore;\nuse minicore::arch::asm;\n\n",
        arch.name()
    );
    // The ABI functions hold the blocks themselves: a wrapper would need a local of the outputs'
    // struct type, which needs the `freeze` lang item the minicore lacks.
    let abi = "area: *mut u8, base: *mut u8, stride: usize, len: usize";
    let fns = [
        ("counter_inc", inc, String::new(), ""),
        ("counter_inc_unarmed", &unarmed_inc, String::new(), ""),
        ("stack_push", push, ", node: *mut u8".to_owned(), ""),
        ("stack_pop", pop, ", out: *mut *mut u8".to_owned(), "t"),
    ];
    for (name, c, extra, out_local) in fns {
        let b = c.block(arch)?;
        let _ = writeln!(
            s,
            "/// ABI `{name}` (`{}` of `xarch.rs`).\n#[no_mangle]\npub unsafe extern \"C\" fn {name}({abi}{extra}) -> usize {{",
            c.seq.ident
        );
        for i in b.inputs.iter().filter(|i| !i.is_const) {
            let v = match i.name.as_str() {
                "area" => "area",
                "base0" => "base",
                "stride0" => "stride",
                "len0" => "len",
                "p_node" => "node as usize",
                _ => return None,
            };
            let _ = writeln!(s, "    let {} = {v};", i.name);
        }
        let _ = writeln!(s, "    let {}: usize;", b.status);
        for v in &b.scratch {
            let _ = writeln!(s, "    let {v}: usize;");
        }
        s.push_str("    // SAFETY: the harness passes its thread's area and valid slots and nodes.\n    unsafe {\n");
        s.push_str(&asm_statement(b, &opts));
        if !out_local.is_empty() {
            let l = c.seq.locals.iter().position(|l| l.ident == out_local)?;
            let reg = &b.locals.iter().find(|(loc, _)| *loc == l)?.1;
            // A literal pattern: `==` would need `PartialEq`, which the minicore lacks.
            let _ = writeln!(
                s,
                "        match {} {{\n            0 => *out = {reg} as *mut u8,\n            _ => {{}}\n        }}",
                b.status
            );
        }
        let _ = writeln!(s, "    }}\n    {}\n}}\n", b.status);
    }
    Some(s)
}
