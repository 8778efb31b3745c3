//! A per-CPU array buffer of pointers (a bounded stack in one slot): push stores the item
//! speculatively then commits the new length; pop compares both the length and the top slot before
//! committing. Items are conserved and never duplicated.
//!
//! `cargo run --release --example buffer`

// `tests/examples.rs` includes this file as a module and provides `common` itself.
#[cfg(not(test))]
#[path = "common/mod.rs"]
mod common;

use std::collections::HashSet;
use std::mem::offset_of;

use crate::common::{finish, retry, run_workers, Config, Report, Tally};
use rseq_dsl::{rseq, PerCpu};

/// Capacity of one CPU's buffer.
pub const CAP: usize = 64;

/// One item slot: 8 bytes on every target (a machine word, padded on 32-bit ones), so that slot
/// `i` is `i << 3` bytes into `slots` everywhere.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(8))]
pub struct Slot {
    pub item: usize,
}

/// One CPU's buffer: `len` items in `slots[..len]`; items are non-zero.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct CpuBuf {
    pub len: usize,
    pub slots: [Slot; CAP],
}

rseq! {
    /// Pushes `item` (non-zero) on this CPU's buffer; false when it is full.
    ///
    /// # Safety
    /// `bufs` slots must hold valid `CpuBuf`s (they do when built by `PerCpu::new`).
    pub unsafe fn buf_push(bufs: &PerCpu<CpuBuf>, item: usize) -> bool {
        let b = bufs.current();
        let n = load::<usize>(b + offset_of!(CpuBuf, len));
        if n >= CAP { return false; }
        store(b + offset_of!(CpuBuf, slots) + (n << 3), item);
        commit store(b + offset_of!(CpuBuf, len), n + 1);
        true
    }

    /// Pops the top item of this CPU's buffer.
    ///
    /// # Safety
    /// As for `buf_push`.
    pub unsafe fn buf_pop(bufs: &PerCpu<CpuBuf>) -> Option<usize> {
        let b = bufs.current();
        let n = load::<usize>(b + offset_of!(CpuBuf, len));
        if n == 0 { return None; }
        let item = load::<usize>(b + offset_of!(CpuBuf, slots) + ((n - 1) << 3));
        if item == 0 { return None; }
        commit store(b + offset_of!(CpuBuf, len), n - 1);
        Some(item)
    }
}

/// All items left in the buffers (no sequence may run concurrently).
fn collect(bufs: &PerCpu<CpuBuf>) -> Vec<usize> {
    (0..bufs.len())
        .flat_map(|i| {
            // SAFETY: slot i is a valid CpuBuf and nothing runs concurrently.
            let b = unsafe { *bufs.slot_ptr(i).unwrap() };
            b.slots[..b.len.min(CAP)]
                .iter()
                .map(|s| s.item)
                .collect::<Vec<_>>()
        })
        .collect()
}

pub fn run(cfg: &Config) -> Report {
    let bufs = PerCpu::<CpuBuf>::new(CpuBuf {
        len: 0,
        slots: [Slot { item: 0 }; CAP],
    });
    let items = (cfg.threads * 8).min(bufs.len() * CAP / 2);
    for item in 1..=items {
        // SAFETY: the buffers were built by PerCpu::new.
        while !unsafe { buf_push(&bufs, item) } {}
    }
    let tally = Tally::default();
    run_workers(cfg, &tally, |_, ops, aborts| {
        // SAFETY: as above.
        if let Some(item) = retry(aborts, || unsafe { try_buf_pop(&bufs) }) {
            // Put it back; if this CPU's buffer is full, keep trying (another thread will pop).
            // SAFETY: as above.
            while !retry(aborts, || unsafe { try_buf_push(&bufs, item) }) {
                std::hint::spin_loop();
            }
            *ops += 2;
        }
    });
    let found = collect(&bufs);
    let distinct: HashSet<_> = found.iter().copied().collect();
    let ok_items = distinct.iter().all(|&i| (1..=items).contains(&i));
    let violations =
        (found.len().abs_diff(items) + found.len() - distinct.len()) as u64 + u64::from(!ok_items);
    tally.report(
        "buffer",
        cfg,
        violations,
        format!(
            "{} items in the buffers, {} distinct, {items} expected",
            found.len(),
            distinct.len()
        ),
    )
}

fn main() {
    let cfg = Config::from_args();
    println!("rseq-dsl: {}", rseq_dsl::status());
    finish(&[run(&cfg)]);
}
