//! [`Pool`]: per-CPU memory with a fixed stride, like librseq's mempool.

use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use std::alloc::Layout;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::{PerCpu, Word};

/// Bytes of pool memory per CPU: an allocation of a [`Pool`] has one instance per possible CPU, each
/// `POOL_STRIDE` bytes after the previous one.
pub const POOL_STRIDE: usize = 16 * 1024;

/// Largest alignment a [`Pool`] allocation may ask for (the chunks' alignment).
pub const POOL_MAX_ALIGN: usize = 128;

/// One CPU's share of a [`Pool`]: the element type of [`Pool::chunks`], which sequences of your own
/// take as a `&PerCpu<PoolChunk>` parameter and address with `chunks.current() + offset`.
#[derive(Clone, Copy)]
#[repr(C, align(128))]
pub struct PoolChunk([u8; POOL_STRIDE]);

impl core::fmt::Debug for PoolChunk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PoolChunk { .. }")
    }
}

const _: () = assert!(core::mem::align_of::<PoolChunk>() == POOL_MAX_ALIGN);
const _: () = assert!(core::mem::size_of::<PoolChunk>() == POOL_STRIDE);

struct PoolInner {
    chunks: PerCpu<PoolChunk>,
    /// Free byte ranges `(start, len)` of every chunk (allocations are the same in each), sorted and
    /// coalesced.
    free: Mutex<Vec<(usize, usize)>>,
}

/// Per-CPU memory with a fixed stride ([`POOL_STRIDE`]), from which every structure of
/// [`crate::percpu`] takes its per-CPU data.
///
/// An allocation of `size` bytes is an offset `off`; it exists once per possible CPU, at
/// `chunk(cpu) + off`, and `chunk(cpu) = chunk(0) + cpu * POOL_STRIDE`. So one sequence parameter
/// (`&PerCpu<PoolChunk>`) plus the offset address the allocation on whatever CPU the section runs,
/// and the data of several structures used on one CPU sits together in that CPU's chunk (no line
/// is shared between CPUs: chunks are 128-byte aligned and a multiple of 128 bytes long).
///
/// A `Pool` is a cheap handle (an `Arc`): allocations keep their pool alive.
///
/// ```
/// use rseq_dsl::percpu::{Counter, Pool};
///
/// let pool = Pool::new();
/// let hits = Counter::new_in(&pool).unwrap();
/// let misses = Counter::new_in(&pool).unwrap();
/// hits.add(2);
/// misses.add(1);
/// assert_eq!((hits.sum(), misses.sum()), (2, 1));
///
/// // Raw per-CPU instances of any `Copy` type:
/// let slots = pool.alloc(|cpu| cpu as u32).unwrap();
/// assert_eq!(slots.load(0), Some(0));
/// assert!(slots.on_cpu(rseq_dsl::possible_cpus()).is_none());
/// let _mine: *mut u32 = slots.this_cpu();
/// ```
#[derive(Clone)]
pub struct Pool {
    inner: Arc<PoolInner>,
}

impl core::fmt::Debug for Pool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let free: usize = self.free_list().iter().map(|&(_, l)| l).sum();
        f.debug_struct("Pool")
            .field("cpus", &self.inner.chunks.len())
            .field("stride", &POOL_STRIDE)
            .field("free_bytes_per_cpu", &free)
            .finish()
    }
}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

impl Pool {
    /// A new, empty pool: [`POOL_STRIDE`] bytes for each possible CPU, zeroed.
    pub fn new() -> Pool {
        Pool {
            inner: Arc::new(PoolInner {
                chunks: PerCpu::from_fn(|_| PoolChunk([0; POOL_STRIDE])),
                free: Mutex::new(vec![(0, POOL_STRIDE)]),
            }),
        }
    }

    /// The pool the structures' `new()` constructors use: a process-wide pool, replaced by a fresh
    /// one when it has no room left (allocations keep their own pool alive).
    pub fn shared() -> Pool {
        shared_slot().get_or_insert_with(Pool::new).clone()
    }

    /// The per-CPU chunks, for sequences of your own (see the type's docs).
    pub fn chunks(&self) -> &PerCpu<PoolChunk> {
        &self.inner.chunks
    }

    fn free_list(&self) -> MutexGuard<'_, Vec<(usize, usize)>> {
        self.inner
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Allocates one `T` per possible CPU, initialised with `init(cpu)`; `None` when the pool has no
    /// room (or `T` is larger than [`POOL_STRIDE`] or more aligned than [`POOL_MAX_ALIGN`]).
    pub fn alloc<T: Copy>(&self, mut init: impl FnMut(usize) -> T) -> Option<PoolBox<T>> {
        let raw = self.alloc_raw(Layout::new::<T>())?;
        for cpu in 0..self.inner.chunks.len() {
            // SAFETY: the range is ours (just allocated, not shared yet), inside the chunk and aligned
            // for T (chunks are 128-aligned, the offset is a multiple of align_of::<T>() <= 128).
            unsafe { raw.ptr(cpu).cast::<T>().write(init(cpu)) };
        }
        Some(PoolBox {
            raw,
            _marker: PhantomData,
        })
    }

    /// Allocates `layout` bytes per CPU, zeroed.
    pub(crate) fn alloc_raw(&self, layout: Layout) -> Option<RawAlloc> {
        if layout.align() > POOL_MAX_ALIGN || layout.size() > POOL_STRIDE {
            return None;
        }
        let size = layout.size().max(1);
        let align = layout.align();
        let mut free = self.free_list();
        let (k, start) = free.iter().enumerate().find_map(|(k, &(s, l))| {
            let a = s.next_multiple_of(align);
            (a + size <= s + l).then_some((k, a))
        })?;
        let (s, l) = free[k];
        free.remove(k);
        if start + size < s + l {
            free.insert(k, (start + size, s + l - start - size));
        }
        if start > s {
            free.insert(k, (s, start - s));
        }
        drop(free);
        let raw = RawAlloc {
            pool: self.clone(),
            offset: start,
            size,
        };
        for cpu in 0..self.inner.chunks.len() {
            // SAFETY: the range [start, start + size) of every chunk is ours and in bounds; nothing
            // else references it (it was on the free list).
            unsafe { raw.ptr(cpu).write_bytes(0, size) };
        }
        Some(raw)
    }

    fn free_range(&self, start: usize, size: usize) {
        let mut free = self.free_list();
        let k = free.partition_point(|&(s, _)| s < start);
        free.insert(k, (start, size));
        // Coalesce with the neighbours.
        if k + 1 < free.len() && free[k].0 + free[k].1 == free[k + 1].0 {
            free[k].1 += free[k + 1].1;
            free.remove(k + 1);
        }
        if k > 0 && free[k - 1].0 + free[k - 1].1 == free[k].0 {
            free[k - 1].1 += free[k].1;
            free.remove(k);
        }
    }
}

fn shared_slot() -> MutexGuard<'static, Option<Pool>> {
    static SHARED: Mutex<Option<Pool>> = Mutex::new(None);
    SHARED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Allocates from the shared pool, starting a new shared pool when the current one is full.
pub(crate) fn alloc_shared(layout: Layout) -> Option<RawAlloc> {
    let mut slot = shared_slot();
    if let Some(raw) = slot.get_or_insert_with(Pool::new).alloc_raw(layout) {
        return Some(raw);
    }
    let fresh = Pool::new();
    let raw = fresh.alloc_raw(layout)?;
    *slot = Some(fresh);
    Some(raw)
}

/// An untyped pool allocation: `size` bytes at `offset` of every CPU's chunk. Freed on drop.
pub(crate) struct RawAlloc {
    pool: Pool,
    offset: usize,
    size: usize,
}

impl RawAlloc {
    /// The chunks, as sequences take them.
    #[inline(always)]
    pub(crate) fn chunks(&self) -> &PerCpu<PoolChunk> {
        &self.pool.inner.chunks
    }

    /// A non-owning `PerCpu<W>` view of this allocation's first word in every chunk, for
    /// sequences: a structure holds it inline so that a call loads base/stride/len from the
    /// structure itself instead of through the pool's `Arc` (see docs/benchmarks, "Where the time
    /// goes").
    ///
    /// # Safety
    /// The allocation's layout has at least `size_of::<W>()` bytes and `align_of::<W>()` alignment,
    /// and its first word is zero-initialised or holds a valid `W`; the view is not used after
    /// `self` is dropped (keep both in one struct).
    pub(crate) unsafe fn view<W: Word>(&self) -> ManuallyDrop<PerCpu<W>> {
        // SAFETY: offset + size_of::<W>() <= POOL_STRIDE (the allocation fits its chunk), offset is
        // a multiple of align_of::<W>() (the caller's layout; chunks are 128-aligned), and zeroed
        // bytes are a valid word. Lifetime: the caller's contract.
        unsafe { self.chunks().__view::<W>(self.offset) }
    }

    /// Number of CPUs (instances).
    pub(crate) fn cpus(&self) -> usize {
        self.pool.inner.chunks.len()
    }

    /// The instance of CPU `cpu` (which must be `< cpus()`).
    pub(crate) fn ptr(&self, cpu: usize) -> *mut u8 {
        let chunk = self
            .chunks()
            .slot_ptr(cpu)
            .expect("pool allocation: CPU index out of range");
        // SAFETY: offset + size <= POOL_STRIDE, so the result stays inside the chunk.
        unsafe { chunk.cast::<u8>().add(self.offset) }
    }
}

impl Drop for RawAlloc {
    fn drop(&mut self) {
        self.pool.free_range(self.offset, self.size);
    }
}

/// One `T` per possible CPU, allocated from a [`Pool`] (see [`Pool::alloc`]). Freed on drop.
///
/// Like [`PerCpu`], the instances are written by critical sections on any thread, so this hands out
/// raw pointers (and, for word types, atomic loads), never references.
pub struct PoolBox<T: Copy> {
    raw: RawAlloc,
    _marker: PhantomData<T>,
}

// SAFETY: as for `PerCpu`: `T: Copy` has no drop glue and the safe API only copies words out with
// atomic loads; everything else is raw pointers, whose use is unsafe.
unsafe impl<T: Copy> Send for PoolBox<T> {}
// SAFETY: see `Send`.
unsafe impl<T: Copy> Sync for PoolBox<T> {}

impl<T: Copy> core::fmt::Debug for PoolBox<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PoolBox")
            .field("offset", &self.raw.offset)
            .field("size", &self.raw.size)
            .finish_non_exhaustive()
    }
}

impl<T: Copy> PoolBox<T> {
    /// Offset of the instances inside each [`PoolChunk`]: in a sequence,
    /// `chunks.current() + offset` is the calling CPU's instance.
    pub fn offset(&self) -> usize {
        self.raw.offset
    }

    /// The pool's chunks (the `&PerCpu<PoolChunk>` argument of sequences using this allocation).
    pub fn chunks(&self) -> &PerCpu<PoolChunk> {
        self.raw.chunks()
    }

    /// CPU `cpu`'s instance, or `None` if `cpu` is not below the number of possible CPUs.
    pub fn on_cpu(&self, cpu: usize) -> Option<*mut T> {
        (cpu < self.raw.cpus()).then(|| self.raw.ptr(cpu).cast())
    }

    /// The instance of the CPU the calling thread runs on now (it may have moved by the time the
    /// pointer is used: only a critical section pins the CPU).
    pub fn this_cpu(&self) -> *mut T {
        let cpu = crate::cpu_id().unwrap_or(0).min(self.raw.cpus() - 1);
        self.raw.ptr(cpu).cast()
    }
}

impl<T: Word> PoolBox<T> {
    /// CPU `cpu`'s value (a relaxed atomic load), or `None` if out of range.
    pub fn load(&self, cpu: usize) -> Option<T> {
        // SAFETY: an in-bounds instance, aligned for T and initialised by `alloc`; read atomically.
        self.on_cpu(cpu)
            .map(|p| unsafe { T::atomic_load(p, core::sync::atomic::Ordering::Relaxed) })
    }

    /// Every CPU's value in CPU order (relaxed loads).
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        (0..self.raw.cpus()).filter_map(|cpu| self.load(cpu))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_reuse_and_coalesce() {
        let pool = Pool::new();
        let a = pool.alloc_raw(Layout::new::<u64>()).unwrap();
        let b = pool
            .alloc_raw(Layout::from_size_align(100, 128).unwrap())
            .unwrap();
        assert_eq!(a.offset, 0);
        assert_eq!(b.offset, 128);
        drop(a);
        let c = pool.alloc_raw(Layout::new::<u32>()).unwrap();
        assert_eq!(c.offset, 0);
        drop(b);
        drop(c);
        assert_eq!(*pool.free_list(), vec![(0, POOL_STRIDE)]);
        let big = pool.alloc_raw(Layout::from_size_align(POOL_STRIDE, 8).unwrap());
        assert!(big.is_some());
        assert!(pool.alloc_raw(Layout::new::<u8>()).is_none());
        drop(big);
        assert!(pool
            .alloc_raw(Layout::from_size_align(POOL_STRIDE + 1, 8).unwrap())
            .is_none());
        assert!(pool
            .alloc_raw(Layout::from_size_align(8, 256).unwrap())
            .is_none());
    }

    #[test]
    fn instances_are_stride_apart_and_zeroed() {
        let pool = Pool::new();
        let junk = pool.alloc(|_| u64::MAX).unwrap();
        drop(junk);
        let raw = pool.alloc_raw(Layout::new::<u64>()).unwrap();
        for cpu in 0..raw.cpus() {
            assert_eq!(
                raw.ptr(cpu) as usize - raw.ptr(0) as usize,
                cpu * POOL_STRIDE
            );
            // SAFETY: an in-bounds, aligned u64 instance nobody else uses.
            assert_eq!(unsafe { raw.ptr(cpu).cast::<u64>().read() }, 0);
        }
    }
}
