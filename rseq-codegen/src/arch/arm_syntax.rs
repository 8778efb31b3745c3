//! What the two ARM emitters (`aarch64.rs`, A64; `arm.rs`, A32) write alike: memory operands in
//! the `[base]`, `[base, #imm]`, `[base, index]` syntax, and the shift mnemonics.

use super::{Operands, Reg, Shift};

/// A memory operand `[base]`, `[base, #imm]` or `[base, index]` ready to be written.
#[derive(Clone, Copy)]
pub enum Addr {
    Base(Reg),
    Imm(Reg, i64),
    Index(Reg, Reg),
}

impl Addr {
    pub fn text(self, o: &mut Operands) -> String {
        match self {
            Addr::Base(base) => format!("[{}]", o.use_(base)),
            Addr::Imm(base, d) => format!("[{}, #{d}]", o.use_(base)),
            Addr::Index(base, i) => format!("[{}, {}]", o.use_(base), o.use_(i)),
        }
    }
}

/// `lsl`, `lsr` or `asr`.
pub fn shift_name(shift: Shift) -> &'static str {
    match shift {
        Shift::Left => "lsl",
        Shift::Right => "lsr",
        Shift::RightArith => "asr",
    }
}
