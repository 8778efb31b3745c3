//! Variants of the examples' sequences: an mm_cid counter, an array buffer, memcpy of fixed-size
//! items and of a runtime length, a counter on an explicit CPU, narrow signed widths.

use std::mem::offset_of;

use rseq_dsl::{rseq, PerCpu, PerMmCid};

pub const CAP: usize = 32;

#[derive(Clone, Copy)]
pub struct CpuBuf {
    pub len: usize,
    pub slots: [usize; CAP],
}

#[derive(Clone, Copy)]
pub struct Buf16 {
    pub len: usize,
    pub items: [[u64; 2]; CAP],
}

#[derive(Clone, Copy)]
pub struct Buf64 {
    pub len: usize,
    pub items: [[u64; 8]; CAP],
}

rseq! {
    /// Adds `n` to the counter of the calling thread's mm_cid.
    #[rseq(index = mm_cid)]
    pub fn cid_counter_add(counters: &PerMmCid<u64>, n: u64) {
        let slot = counters.current();
        let v = load(slot);
        commit store(slot, v + n);
    }

    /// Pushes `item` on this CPU's array buffer; false when full.
    pub unsafe fn buf_push(bufs: &PerCpu<CpuBuf>, item: usize) -> bool {
        let b = bufs.current();
        let n = load::<usize>(b + offset_of!(CpuBuf, len));
        if n >= CAP { return false; }
        store(b + offset_of!(CpuBuf, slots) + (n << 3), item);
        commit store(b + offset_of!(CpuBuf, len), n + 1);
        true
    }

    /// Pops from this CPU's array buffer (compares both the offset and the top slot).
    pub unsafe fn buf_pop(bufs: &PerCpu<CpuBuf>) -> Option<usize> {
        let b = bufs.current();
        let n = load::<usize>(b + offset_of!(CpuBuf, len));
        if n == 0 { return None; }
        let item = load::<usize>(b + offset_of!(CpuBuf, slots) + ((n - 1) << 3));
        if item == 0 { return None; }
        commit store(b + offset_of!(CpuBuf, len), n - 1);
        Some(item)
    }

    /// Copies a 16-byte item into this CPU's buffer.
    pub unsafe fn push16(bufs: &PerCpu<Buf16>, src: *const u64) -> bool {
        let b = bufs.current();
        let n = load::<usize>(b + offset_of!(Buf16, len));
        if n >= CAP { return false; }
        memcpy(b + offset_of!(Buf16, items) + (n << 4), src, 16);
        commit store(b + offset_of!(Buf16, len), n + 1);
        true
    }

    /// Copies this CPU's top 64-byte item out.
    pub unsafe fn pop64(bufs: &PerCpu<Buf64>, dst: *mut u64) -> bool {
        let b = bufs.current();
        let n = load::<usize>(b + offset_of!(Buf64, len));
        if n == 0 { return false; }
        memcpy(dst, b + offset_of!(Buf64, items) + ((n - 1) << 6), 64);
        commit store_release(b + offset_of!(Buf64, len), n - 1);
        true
    }

    /// Copies `len` bytes (checked against the cap before the section).
    pub unsafe fn copy_in(bufs: &PerCpu<Buf64>, src: *const u8, len: usize) {
        let b = bufs.current();
        memcpy(b + offset_of!(Buf64, items), src, len);
        commit store(b + offset_of!(Buf64, len), len);
    }

    /// Adds `n` to CPU `cpu`'s counter, provided the thread runs there.
    pub fn counter_add_on(counters: &PerCpu<u64>, cpu: usize, n: u64) {
        let slot = counters.on_cpu(cpu);
        let v = load(slot);
        commit store(slot, v + n);
    }

    /// Narrow signed arithmetic, casts and shifts.
    pub fn narrow(cells: &PerCpu<i8>, k: u32) -> i64 {
        let c = cells.current();
        let v = load(c);
        let w = (v as i64) >> k;
        if v < -3 { return w; }
        commit store(c, v - 5);
        (v as i64) << 2
    }

    /// Register shift counts of narrow types (masked to the type's width) and the logical
    /// operators with immediates and registers.
    pub fn narrow_shifts(cells: &PerCpu<u32>, k: u32, h: i16, s: i16) -> i16 {
        let c = cells.current();
        let v = load(c);
        let a = (v << k) ^ 0x55;
        let b = (a >> k) | v;
        let t = (h << s) >> s;
        if t < 0 { return t >> 3; }
        if b == 0 { return t; }
        commit store(c, (b & 0xfff0) - 7);
        t
    }
}
