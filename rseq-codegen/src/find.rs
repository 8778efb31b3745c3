//! Find `rseq!` invocations in a parsed Rust file (for tools and golden tests).

use syn::{File, Item, Macro, Stmt};

use crate::parse::{SeqFile, SeqFn};

/// Every sequence fn of every `rseq!` invocation in `file`, in source order (items, nested modules,
/// and statements inside fn bodies). Invocations that do not parse are reported as errors.
pub fn find_sequences(file: &File) -> Result<Vec<SeqFn>, syn::Error> {
    let mut macros = Vec::new();
    for item in &file.items {
        item_macros(item, &mut macros);
    }
    let mut out = Vec::new();
    for m in macros {
        out.extend(m.parse_body::<SeqFile>()?.fns);
    }
    Ok(out)
}

fn is_rseq(m: &Macro) -> bool {
    m.path.segments.last().is_some_and(|s| s.ident == "rseq")
}

fn item_macros<'a>(item: &'a Item, out: &mut Vec<&'a Macro>) {
    match item {
        Item::Macro(m) if is_rseq(&m.mac) => out.push(&m.mac),
        Item::Mod(m) => {
            for i in m.content.iter().flat_map(|(_, items)| items) {
                item_macros(i, out);
            }
        }
        Item::Fn(f) => block_macros(&f.block.stmts, out),
        Item::Impl(i) => {
            for ii in &i.items {
                if let syn::ImplItem::Fn(f) = ii {
                    block_macros(&f.block.stmts, out);
                }
            }
        }
        _ => {}
    }
}

fn block_macros<'a>(stmts: &'a [Stmt], out: &mut Vec<&'a Macro>) {
    for s in stmts {
        match s {
            Stmt::Item(i) => item_macros(i, out),
            Stmt::Macro(m) if is_rseq(&m.mac) => out.push(&m.mac),
            _ => {}
        }
    }
}
