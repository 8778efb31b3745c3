//! Instrumented variants of example sequences: `#[rseq(inject)]` adds a delay loop at every
//! injection point, `#[rseq(debug_checks)]` re-checks the index and the compares before the commit.
//! The same sequences without the attributes are in `examples/` and their golden files are unchanged.

use std::mem::offset_of;

use rseq_dsl::{rseq, PerCpu};

pub struct Node {
    pub next: *mut Node,
}

#[repr(C)]
pub struct CpuBuf {
    pub len: usize,
    pub slots: [usize; 64],
}

rseq! {
    /// `counter_add` with injection points.
    #[rseq(inject)]
    pub fn counter_add(counters: &PerCpu<u64>, n: u64) {
        let slot = counters.current();
        let v = load(slot);
        commit store(slot, v + n);
    }

    /// The stack push with injection points (a speculative store).
    #[rseq(inject)]
    pub unsafe fn push(heads: &PerCpu<*mut Node>, node: *mut Node) {
        let head = heads.current();
        let old = load(head);
        store(node + offset_of!(Node, next), old);
        commit store(head, node);
    }

    /// The buffer pop with injection points and debug checks (two compare-exits).
    #[rseq(inject, debug_checks)]
    pub unsafe fn buf_pop(bufs: &PerCpu<CpuBuf>) -> Option<usize> {
        let b = bufs.current();
        let n = load::<usize>(b + offset_of!(CpuBuf, len));
        if n == 0 { return None; }
        let item = load::<usize>(b + offset_of!(CpuBuf, slots) + ((n - 1) << 3));
        if item == 0 { return None; }
        commit store(b + offset_of!(CpuBuf, len), n - 1);
        Some(item)
    }

    /// The spinlock's trylock with debug checks (compare re-checked before the commit).
    #[rseq(debug_checks)]
    pub fn spin_trylock(locks: &PerCpu<usize>) -> *mut usize {
        let lock = locks.current();
        let held = load(lock);
        if held != 0 { return core::ptr::null_mut(); }
        commit store(lock, 1);
        lock
    }

    /// The buffer push with debug checks: the compare is re-checked before the speculative store.
    #[rseq(debug_checks)]
    pub unsafe fn buf_push(bufs: &PerCpu<CpuBuf>, item: usize) -> bool {
        let b = bufs.current();
        let n = load::<usize>(b + offset_of!(CpuBuf, len));
        if n >= 64 { return false; }
        store(b + offset_of!(CpuBuf, slots) + (n << 3), item);
        commit store(b + offset_of!(CpuBuf, len), n + 1);
        true
    }

    /// The explicit-CPU counter with debug checks (the index re-check compares with the CPU read first).
    #[rseq(debug_checks)]
    pub fn counter_add_on(counters: &PerCpu<u64>, cpu: usize, n: u64) {
        let slot = counters.on_cpu(cpu);
        let v = load(slot);
        commit store(slot, v + n);
    }
}
