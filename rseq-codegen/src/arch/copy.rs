//! `memcpy` composed once for every load/store architecture: the unrolled copy of a constant length
//! from the emitter's [`load`](ArchEmitter::load) and [`store`](ArchEmitter::store), and the loop
//! for a runtime length from the few lines an architecture supplies through [`CopyLoop`].
//!
//! Both forms copy word-wise: pointer-wide moves first, then the power-of-two tail (4/2/1 bytes on
//! 64-bit targets, 2/1 on 32-bit arm), each an unsigned load into one scratch register and a store
//! of the same width. Misaligned accesses are allowed on every supported Linux target (in hardware
//! or emulated by the kernel); they are correct, only slower, so hot buffers should be aligned.
//!
//! The loop keeps two running pointers and a remaining count in scratch registers (inputs are never
//! written) and is emitted as one early-clobber group ([`Builder::emit_group`]): none of its
//! registers shares a register with the addresses or the length, which stay live across the back
//! edge. Its shape, on every architecture that uses it:
//!
//! ```text
//!     s = &src; d = &dst; r = len
//! 1:  if r < W goto 2          W = pointer width
//!     copy W bytes, s += W, d += W
//!     r -= W
//!     goto 1
//! 2:  for w in W/2 .. 1:  if r & w: copy w bytes, s += w, d += w
//! ```
//!
//! x86_64 keeps its own indexed loop (`[base + i]` addressing needs no running pointers) and
//! overrides [`ArchEmitter::memcpy`].

use super::{ArchEmitter, Builder, CopyLen, Mem, Operands, Reg, Src, VReg};
use crate::ty::WordKind;

/// The lines of the runtime-length copy loop an architecture supplies. Each returns template lines
/// inside the loop's allocation group: registers come as template text already named through the
/// group's [`Operands`] (`t` the scratch word, `s`/`d` the running pointers, `r` the remaining
/// count), labels as numbers (forward references `Nf`, back references `Nb`).
pub trait CopyLoop {
    /// `dst = m`'s address.
    fn addr_lines(&self, o: &mut Operands, dst: &str, m: &Mem) -> Vec<String>;
    /// `dst = src` (register copy). Unused when [`count_before_group`](Self::count_before_group).
    fn move_line(&self, dst: &str, src: &str) -> String;
    /// The count is copied from the length before the group, with the emitter's `mov`, so that it
    /// can share the length's register when the length dies there (armv7: one register fewer).
    fn count_before_group(&self) -> bool {
        false
    }
    /// Branch forward to `label` when `r < n` (unsigned); may write `t`.
    fn branch_if_below(&self, t: &str, r: &str, n: u32, label: u32) -> Vec<String>;
    /// Branch forward to `label` when bit `w` (a power of two) of `r` is clear; may write `t`.
    fn skip_if_clear(&self, t: &str, r: &str, w: u32, label: u32) -> Vec<String>;
    /// Copy `w` bytes from `[s]` to `[d]` through `t` ([`CopyRegs`]) and advance both pointers
    /// by `w`; the last copy (`last`) need not advance them.
    fn copy_advance(&self, o: &mut Operands, r: CopyRegs, w: u32, last: bool) -> Vec<String>;
    /// `r -= n`.
    fn sub_line(&self, r: &str, n: u32) -> String;
}

/// The loop's scratch word (a register to name through [`Operands`], with the width modifier the
/// instruction needs) and its running pointers (template text).
#[derive(Clone, Copy, Debug)]
pub struct CopyRegs<'a> {
    pub t: VReg,
    pub s: &'a str,
    pub d: &'a str,
}

/// The unsigned word kind of `w` bytes.
fn unsigned(w: u32) -> WordKind {
    match w {
        1 => WordKind::U8,
        2 => WordKind::U16,
        4 => WordKind::U32,
        _ => WordKind::U64,
    }
}

/// Copies `len` bytes from `src` to `dst` with `em`'s primitives.
pub fn memcpy<E: ArchEmitter + ?Sized>(
    em: &E,
    b: &mut Builder,
    dst: &Mem,
    src: &Mem,
    len: CopyLen,
) {
    let t = b.vreg();
    let word = em.pointer_bytes();
    let widths = [8u32, 4, 2, 1].into_iter().filter(move |&w| w <= word);
    match len {
        CopyLen::Const(n) => {
            let mut off = 0u64;
            for w in widths {
                while n - off >= u64::from(w) {
                    let k = i64::try_from(off).expect("memcpy length is capped");
                    em.load(b, t, src, k, unsigned(w));
                    em.store(b, dst, k, Src::Reg(Reg::V(t)), unsigned(w));
                    off += u64::from(w);
                }
            }
        }
        CopyLen::Reg(len) => {
            let cl = em
                .copy_loop()
                .expect("an emitter without CopyLoop overrides memcpy");
            let (ps, pd, rem) = (b.vreg(), b.vreg(), b.vreg());
            let (l1, l2) = (b.label(), b.label());
            let tails: Vec<(u32, u32)> = widths.skip(1).map(|w| (w, b.label())).collect();
            if cl.count_before_group() {
                em.mov(b, rem, Src::Reg(len));
            }
            b.emit_group(|o| {
                let tt = o.def(t);
                let (s, d) = (o.def(ps), o.def(pd));
                let r = if cl.count_before_group() {
                    o.def_use(rem)
                } else {
                    o.def(rem)
                };
                let mut group = cl.addr_lines(o, &s, src);
                group.extend(cl.addr_lines(o, &d, dst));
                if !cl.count_before_group() {
                    group.push(cl.move_line(&r, &o.use_(len)));
                }
                group.push(format!("{l1}:"));
                group.extend(cl.branch_if_below(&tt, &r, word, l2));
                let regs = CopyRegs { t, s: &s, d: &d };
                group.extend(cl.copy_advance(o, regs, word, false));
                group.push(cl.sub_line(&r, word));
                group.push(format!("{} {l1}b", em.facts().jump));
                group.push(format!("{l2}:"));
                for &(w, skip) in &tails {
                    group.extend(cl.skip_if_clear(&tt, &r, w, skip));
                    group.extend(cl.copy_advance(o, regs, w, w == 1));
                    group.push(format!("{skip}:"));
                }
                group
            });
        }
    }
}
