//! The four basic sequences as first specified, verbatim (comments included): a counter add, a
//! try-lock, and push and pop on an intrusive stack.

use std::mem::offset_of;

use rseq_dsl::{rseq, PerCpu};

pub struct Node {
    pub next: *mut Node,
}

rseq! {
    /// Adds `n` to the calling CPU's counter.
    pub fn counter_add(counters: &PerCpu<u64>, n: u64) {
        let slot = counters.current();      // this CPU's slot: CPU id read *inside* the section
        let v = load(slot);                 // load
        commit store(slot, v + n);          // the single committing store, last step
    }

    /// Per-CPU try-lock: true when taken.
    pub fn try_lock(locks: &PerCpu<usize>) -> bool {
        let lock = locks.current();
        let held = load(lock);
        if held != 0 { return false; }      // compare: leave without committing
        commit store(lock, 1);
        true
    }

    /// Pushes `node` on this CPU's intrusive stack.
    pub unsafe fn push(heads: &PerCpu<*mut Node>, node: *mut Node) {
        let head = heads.current();
        let old = load(head);
        store(node + offset_of!(Node, next), old);   // speculative store (before the commit)
        commit store(head, node);
    }

    /// Pops from this CPU's stack.
    pub unsafe fn pop(heads: &PerCpu<*mut Node>) -> Option<*mut Node> {
        let head = heads.current();
        let top = load(head);
        if top == 0 { return None; }
        let next = load::<*mut Node>(top + offset_of!(Node, next));
        commit store(head, next);
        Some(top)
    }
}
