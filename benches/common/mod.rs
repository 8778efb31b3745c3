//! Baselines shared by `benches/ops.rs` and `benches/compare.rs`.
#![allow(dead_code)]

use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use rseq_dsl::{rseq, PerCpu};

rseq! {
    /// The plain DSL counter on a dedicated `PerCpu<u64>` (a safe sequence, no pool offset).
    #[inline]
    pub fn dsl_counter_add(counters: &PerCpu<u64>, n: u64) {
        let slot = counters.current();
        let v = load(slot);
        commit store(slot, v + n);
    }
}

/// A 128-byte aligned value (no false sharing between neighbours).
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Padded<T>(pub T);

/// Per-CPU atomic slots for the `lock xadd` baselines.
#[derive(Debug)]
pub struct XaddSlots(pub Box<[Padded<AtomicU64>]>);

impl XaddSlots {
    pub fn new() -> Self {
        XaddSlots(
            (0..rseq_dsl::possible_cpus())
                .map(|_| Padded(AtomicU64::new(0)))
                .collect(),
        )
    }

    /// `lock xadd` on the slot of `sched_getcpu()`.
    #[inline]
    pub fn add_sched_getcpu(&self, n: u64) {
        // SAFETY: no preconditions.
        let cpu = unsafe { libc::sched_getcpu() } as usize;
        self.0[cpu % self.0.len()].0.fetch_add(n, Ordering::Relaxed);
    }

    /// `lock xadd` on the slot of the rseq area's `cpu_id` (no critical section).
    #[inline]
    pub fn add_rseq_cpu_id(&self, n: u64) {
        let cpu = rseq_dsl::cpu_id().unwrap_or(0);
        self.0[cpu % self.0.len()].0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn sum(&self) -> u64 {
        self.0.iter().map(|s| s.0.load(Ordering::Relaxed)).sum()
    }
}

thread_local! {
    pub static TLS_COUNTER: Cell<u64> = const { Cell::new(0) };
}

/// Thread-local `Cell` counter (a lower bound); `black_box` keeps one load and one store per call
/// (otherwise the compiler sums a whole loop in a register).
#[inline]
pub fn tls_add(n: u64) {
    TLS_COUNTER.with(|c| c.set(black_box(c.get()) + n));
}

/// Plain non-atomic increment of a private cache line (a lower bound): one load and one store,
/// volatile so the compiler keeps them in memory as the other variants do.
#[inline]
pub fn plain_add(slot: &mut Padded<u64>, n: u64) {
    let p = &raw mut slot.0;
    // SAFETY: `p` is a valid, exclusively borrowed u64.
    unsafe { p.write_volatile(p.read_volatile() + n) };
}

/// A Treiber stack over node indices with a 32-bit ABA tag packed beside the index in one 64-bit
/// word (no pointers, no reclamation: nodes are slots of a vector that outlives every operation, so
/// it is sound; a tag wraps after 2^32 pops of one head value, far beyond a benchmark run).
#[derive(Debug)]
pub struct Treiber {
    head: Padded<AtomicU64>,
    next: Box<[AtomicU32]>,
}

const NIL: u32 = u32::MAX;

impl Treiber {
    /// A stack able to hold nodes `0..capacity` (initially empty).
    pub fn new(capacity: usize) -> Self {
        Treiber {
            head: Padded(AtomicU64::new(u64::from(NIL))),
            next: (0..capacity).map(|_| AtomicU32::new(NIL)).collect(),
        }
    }

    #[inline]
    pub fn push(&self, node: u32) {
        let mut h = self.head.0.load(Ordering::Relaxed);
        loop {
            self.next[node as usize].store(h as u32, Ordering::Relaxed);
            let new = ((h >> 32).wrapping_add(1) << 32) | u64::from(node);
            match self
                .head
                .0
                .compare_exchange_weak(h, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(cur) => h = cur,
            }
        }
    }

    #[inline]
    pub fn pop(&self) -> Option<u32> {
        let mut h = self.head.0.load(Ordering::Acquire);
        loop {
            let top = h as u32;
            if top == NIL {
                return None;
            }
            let next = self.next[top as usize].load(Ordering::Relaxed);
            let new = ((h >> 32).wrapping_add(1) << 32) | u64::from(next);
            match self
                .head
                .0
                .compare_exchange_weak(h, new, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => return Some(top),
                Err(cur) => h = cur,
            }
        }
    }
}
