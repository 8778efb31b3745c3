//! Linear-scan register allocation: maps the virtual registers of a block's instruction list to
//! scratch operands `s0..` and renames them in the template text.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::{Insn, VReg};

/// Result of register allocation: scratch index per virtual register, and how many scratches.
pub(super) struct Allocation {
    pub(super) phys: HashMap<VReg, usize>,
    pub(super) count: usize,
}

/// Linear-scan allocation over the straight-line instruction list (loops are emitted as one
/// early-clobber group or keep their registers live past the back edge by construction).
pub(super) fn allocate(insns: &[Insn]) -> Allocation {
    let mut first: HashMap<VReg, usize> = HashMap::new();
    let mut last: HashMap<VReg, usize> = HashMap::new();
    for (i, ins) in insns.iter().enumerate() {
        for &v in ins.defs.iter().chain(&ins.uses) {
            first.entry(v).or_insert(i);
            last.insert(v, i);
        }
    }
    let mut phys: HashMap<VReg, usize> = HashMap::new();
    let mut count = 0;
    for (i, ins) in insns.iter().enumerate() {
        for &d in &ins.defs {
            if first[&d] != i || phys.contains_key(&d) {
                continue;
            }
            let busy: Vec<usize> = phys
                .iter()
                .filter(|(v, _)| {
                    let (f, l) = (first[v], last[v]);
                    // Live across this instruction, or defined here too.
                    (f < i && l > i) || f == i || (ins.early_clobber && f < i && l == i)
                })
                .map(|(_, &p)| p)
                .collect();
            let hinted = ins
                .copy
                .filter(|&(dst, _)| dst == d)
                .and_then(|(_, src)| phys.get(&src).copied())
                .filter(|p| !busy.contains(p));
            let p = hinted
                .unwrap_or_else(|| (0..).find(|p| !busy.contains(p)).expect("a free register"));
            count = count.max(p + 1);
            phys.insert(d, p);
        }
    }
    Allocation { phys, count }
}

/// Replaces `{vN` with `{sK` per the allocation.
pub(super) fn rename(text: &str, phys: &HashMap<VReg, usize>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("{v") {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 2..];
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            out.push_str("{v");
            rest = after;
            continue;
        }
        let v: VReg = after[..digits].parse().expect("digits");
        let _ = write!(out, "{{s{}", phys[&v]);
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}
