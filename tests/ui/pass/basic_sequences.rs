//! The four basic sequences of `rseq-codegen/tests/golden/sources/basic_sequences.rs` (plus the
//! `Node` they need), exercised once natively or in fallback.

pub struct Node {
    pub next: *mut Node,
}

use std::mem::offset_of;

use rseq_dsl::{rseq, PerCpu};

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

fn main() {
    let counters = PerCpu::new(0u64);
    for _ in 0..1000 {
        counter_add(&counters, 3);
    }
    assert_eq!(counters.iter().sum::<u64>(), 3000);
    assert!(try_counter_add(&counters, 1).is_ok() || true);

    let locks = PerCpu::new(0usize);
    // Each CPU's lock can be taken once; with one thread, the second attempt on the same CPU fails
    // unless the thread migrated in between.
    let mut taken = 0;
    for _ in 0..4 {
        if try_lock(&locks) {
            taken += 1;
        }
    }
    assert!(taken >= 1);
    assert_eq!(locks.iter().sum::<usize>(), taken);

    let heads: PerCpu<*mut Node> = PerCpu::new(core::ptr::null_mut());
    let nodes: Vec<*mut Node> = (0..10)
        .map(|_| {
            Box::into_raw(Box::new(Node {
                next: core::ptr::null_mut(),
            }))
        })
        .collect();
    for &n in &nodes {
        // SAFETY: `n` is a live node owned by no stack.
        unsafe { push(&heads, n) };
    }
    let mut popped = 0;
    for _ in 0..100 {
        // SAFETY: every node on the stacks is live.
        if let Some(n) = unsafe { pop(&heads) } {
            popped += 1;
            // SAFETY: popped nodes are owned again.
            drop(unsafe { Box::from_raw(n) });
        }
    }
    // Nodes left on other CPUs' stacks (after a migration) are leaked; that is fine here.
    assert!(popped >= 1);
    println!("mode: {:?}", rseq_dsl::status());
}
