//! The sequences behind the cross-architecture harness's section ABI (`xarch/README.md`):
//! `rseq-codegen/examples/xarch_sections.rs` turns them into the section files `xarch/run` runs.

use rseq_dsl::{rseq, PerCpu};

rseq! {
    /// `slot[cpu] += 1`.
    pub fn counter_inc(slots: &PerCpu<usize>) {
        let slot = slots.current();
        let v = load(slot);
        commit store(slot, v + 1);
    }

    /// Pushes `node` (its first word is `next`) on this CPU's stack.
    pub unsafe fn stack_push(heads: &PerCpu<usize>, node: *mut usize) {
        let head = heads.current();
        let t = load(head);
        store(node, t);
        commit store(head, node as usize);
    }

    /// Pops this CPU's stack head (0 when empty).
    pub unsafe fn stack_pop(heads: &PerCpu<usize>) -> usize {
        let head = heads.current();
        let t = load(head);
        if t == 0 {
            return 0;
        }
        let n = load::<usize>(t as *mut usize);
        commit store(head, n);
        t
    }
}
