//! An intrusive per-CPU stack (a free list): push links a node in with a speculative store of its
//! `next` field, pop unlinks the top. Items are conserved: after the run every node is on exactly one
//! list, once.
//!
//! `cargo run --release --example stack`

// `tests/examples.rs` includes this file as a module and provides `common` itself.
#[cfg(not(test))]
#[path = "common/mod.rs"]
mod common;

use std::collections::HashSet;
use std::mem::offset_of;

use crate::common::{finish, retry, run_workers, Config, Report, Tally};
use rseq_dsl::{rseq, PerCpu};

/// A list node; `next` links it into a CPU's stack.
#[derive(Debug)]
#[repr(C)]
pub struct Node {
    pub next: *mut Node,
    pub value: u64,
}

rseq! {
    /// Pushes `node` on this CPU's stack.
    ///
    /// # Safety
    /// `node` must be valid for writes and not on any list.
    pub unsafe fn push(heads: &PerCpu<*mut Node>, node: *mut Node) {
        let head = heads.current();
        let old = load(head);
        store(node + offset_of!(Node, next), old);
        commit store(head, node);
    }

    /// Pops the top of this CPU's stack.
    ///
    /// # Safety
    /// Every node on the lists must stay valid while it is there.
    pub unsafe fn pop(heads: &PerCpu<*mut Node>) -> Option<*mut Node> {
        let head = heads.current();
        let top = load(head);
        if top == 0 { return None; }
        let next = load::<*mut Node>(top + offset_of!(Node, next));
        commit store(head, next);
        Some(top)
    }
}

/// Walks every CPU's list (no sequence may run concurrently) and returns the nodes found.
fn collect(heads: &PerCpu<*mut Node>) -> Vec<*mut Node> {
    let mut found = Vec::new();
    for mut p in heads.iter() {
        while !p.is_null() {
            found.push(p);
            // SAFETY: nodes on the lists are live (owned by the run's `nodes` vector) and nothing runs
            // concurrently; a corrupted list is bounded by the length check below.
            p = unsafe { (*p).next };
            if found.len() > 10_000_000 {
                break;
            }
        }
    }
    found
}

pub fn run(cfg: &Config) -> Report {
    const NODES_PER_THREAD: usize = 16;
    let heads = PerCpu::<*mut Node>::new(std::ptr::null_mut());
    let mut nodes: Vec<Node> = (0..cfg.threads * NODES_PER_THREAD)
        .map(|i| Node {
            next: std::ptr::null_mut(),
            value: i as u64,
        })
        .collect();
    for n in nodes.iter_mut() {
        // SAFETY: each node is valid and pushed once; no sequence runs concurrently yet.
        unsafe { push(&heads, n) };
    }
    let tally = Tally::default();
    run_workers(cfg, &tally, |_, ops, aborts| {
        // Pop one node, touch it, push it back (on whatever CPU the thread is on now).
        // SAFETY: all nodes live in `nodes`, which outlives the run; a popped node is owned by this thread
        // until pushed back.
        if let Some(n) = retry(aborts, || unsafe { try_pop(&heads) }) {
            // SAFETY: this thread owns the popped node until it pushes it back.
            unsafe {
                (*n).value = (*n).value.wrapping_add(1 << 32);
                retry(aborts, || try_push(&heads, n));
            }
            *ops += 2;
        }
    });
    let found = collect(&heads);
    let distinct: HashSet<_> = found.iter().collect();
    let expected = nodes.len();
    let lost_or_dup = (found.len().abs_diff(expected) + found.len() - distinct.len()) as u64;
    let report = tally.report(
        "stack",
        cfg,
        lost_or_dup,
        format!(
            "{} nodes on the lists, {} distinct, {expected} expected",
            found.len(),
            distinct.len()
        ),
    );
    drop(nodes);
    report
}

fn main() {
    let cfg = Config::from_args();
    println!("rseq-dsl: {}", rseq_dsl::status());
    finish(&[run(&cfg)]);
}
