//! Per-CPU buffers of small items copied in and out with `memcpy` (word-wise), for 16-byte and
//! 64-byte items. Each item carries a checksum of its contents, so a torn copy is caught, and items are
//! conserved and never duplicated.
//!
//! `cargo run --release --example memcpy_buffer`

// `tests/examples.rs` includes this file as a module and provides `common` itself.
#[cfg(not(test))]
#[path = "common/mod.rs"]
mod common;

use std::collections::HashSet;
use std::mem::offset_of;

use crate::common::{finish, retry, run_workers, Config, Report, Tally};
use rseq_dsl::{rseq, PerCpu};

/// Items per CPU buffer.
pub const CAP: usize = 32;

/// A CPU's buffer of 16-byte items.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(16))]
pub struct Buf16 {
    pub len: usize,
    pub pad: usize,
    pub items: [[u64; 2]; CAP],
}

/// A CPU's buffer of 64-byte items.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
pub struct Buf64 {
    pub len: usize,
    pub pad: [usize; 7],
    pub items: [[u64; 8]; CAP],
}

rseq! {
    /// Copies 16 bytes from `src` into this CPU's buffer; false when full.
    ///
    /// # Safety
    /// `src` valid for 16 bytes of reads.
    pub unsafe fn push16(bufs: &PerCpu<Buf16>, src: *const u64) -> bool {
        let b = bufs.current();
        let n = load::<usize>(b + offset_of!(Buf16, len));
        if n >= CAP { return false; }
        memcpy(b + offset_of!(Buf16, items) + (n << 4), src, 16);
        commit store(b + offset_of!(Buf16, len), n + 1);
        true
    }

    /// Copies this CPU's top 16-byte item to `dst`; false when empty.
    ///
    /// # Safety
    /// `dst` valid for 16 bytes of writes.
    pub unsafe fn pop16(bufs: &PerCpu<Buf16>, dst: *mut u64) -> bool {
        let b = bufs.current();
        let n = load::<usize>(b + offset_of!(Buf16, len));
        if n == 0 { return false; }
        memcpy(dst, b + offset_of!(Buf16, items) + ((n - 1) << 4), 16);
        commit store(b + offset_of!(Buf16, len), n - 1);
        true
    }

    /// Copies 64 bytes from `src` into this CPU's buffer; false when full.
    ///
    /// # Safety
    /// `src` valid for 64 bytes of reads.
    pub unsafe fn push64(bufs: &PerCpu<Buf64>, src: *const u64) -> bool {
        let b = bufs.current();
        let n = load::<usize>(b + offset_of!(Buf64, len));
        if n >= CAP { return false; }
        memcpy(b + offset_of!(Buf64, items) + (n << 6), src, 64);
        commit store(b + offset_of!(Buf64, len), n + 1);
        true
    }

    /// Copies this CPU's top 64-byte item to `dst`; false when empty.
    ///
    /// # Safety
    /// `dst` valid for 64 bytes of writes.
    pub unsafe fn pop64(bufs: &PerCpu<Buf64>, dst: *mut u64) -> bool {
        let b = bufs.current();
        let n = load::<usize>(b + offset_of!(Buf64, len));
        if n == 0 { return false; }
        memcpy(dst, b + offset_of!(Buf64, items) + ((n - 1) << 6), 64);
        commit store(b + offset_of!(Buf64, len), n - 1);
        true
    }
}

/// An item of `W` words: word 0 is its id, the others derive from it, so a torn copy is detectable.
fn make<const W: usize>(id: u64) -> [u64; W] {
    let mut a = [0; W];
    for (k, w) in a.iter_mut().enumerate() {
        *w = id.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(k as u32) ^ k as u64;
    }
    a[0] = id;
    a
}

fn intact<const W: usize>(a: &[u64; W]) -> bool {
    *a == make::<W>(a[0])
}

macro_rules! run_items {
    ($name:literal, $cfg:expr, $buf:ty, $init:expr, $w:literal, $push:ident, $pop:ident, $try_push:ident, $try_pop:ident) => {{
        let cfg: &Config = $cfg;
        let bufs = PerCpu::<$buf>::new($init);
        let items = (cfg.threads * 4).min(bufs.len() * CAP / 2) as u64;
        for id in 1..=items {
            let it = make::<$w>(id);
            // SAFETY: `it` is a live array of the right size.
            while !unsafe { $push(&bufs, it.as_ptr()) } {}
        }
        let tally = Tally::default();
        run_workers(cfg, &tally, |_, ops, aborts| {
            let mut it = [0u64; $w];
            // SAFETY: `it` is valid for writes of the item size.
            if retry(aborts, || unsafe { $try_pop(&bufs, it.as_mut_ptr()) }) {
                if !intact(&it) {
                    tally.violation();
                }
                // SAFETY: `it` is valid for reads of the item size.
                while !retry(aborts, || unsafe { $try_push(&bufs, it.as_ptr()) }) {
                    std::hint::spin_loop();
                }
                *ops += 2;
            }
        });
        let mut found = Vec::new();
        for i in 0..bufs.len() {
            // SAFETY: slot i is a valid buffer and nothing runs concurrently.
            let b = unsafe { *bufs.slot_ptr(i).unwrap() };
            found.extend(b.items[..b.len.min(CAP)].iter().copied());
        }
        let torn = found.iter().filter(|a| !intact(a)).count();
        let distinct: HashSet<u64> = found.iter().map(|a| a[0]).collect();
        let violations =
            (found.len().abs_diff(items as usize) + found.len() - distinct.len() + torn) as u64;
        tally.report(
            $name,
            cfg,
            violations,
            format!(
                "{} items, {} distinct, {torn} torn, {items} expected",
                found.len(),
                distinct.len()
            ),
        )
    }};
}

pub fn run16(cfg: &Config) -> Report {
    run_items!(
        "memcpy/16",
        cfg,
        Buf16,
        Buf16 {
            len: 0,
            pad: 0,
            items: [[0; 2]; CAP]
        },
        2,
        push16,
        pop16,
        try_push16,
        try_pop16
    )
}

pub fn run64(cfg: &Config) -> Report {
    run_items!(
        "memcpy/64",
        cfg,
        Buf64,
        Buf64 {
            len: 0,
            pad: [0; 7],
            items: [[0; 8]; CAP]
        },
        8,
        push64,
        pop64,
        try_push64,
        try_pop64
    )
}

fn main() {
    let cfg = Config::from_args();
    println!("rseq-dsl: {}", rseq_dsl::status());
    finish(&[run16(&cfg), run64(&cfg)]);
}
