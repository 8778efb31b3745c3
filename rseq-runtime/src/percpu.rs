//! Per-CPU storage: one slot per possible CPU.
//!
//! # Layout (the generated asm depends on it)
//!
//! A `PerCpu<T, I>` owns one allocation of `len * stride` bytes, aligned to
//! `max(SLOT_ALIGN, align_of::<T>())`. Slot `i` starts at `base + i * stride`:
//!
//! - `len` is [`possible_cpus()`] at construction, so every CPU id and every mm_cid (which the kernel keeps
//!   below the number of possible CPUs) has a slot. Generated code still bounds-checks the index.
//! - `stride` is `size_of::<T>()` rounded up to a multiple of [`SLOT_ALIGN`] (128 bytes, and at least
//!   that). 128 bytes, not 64, because x86's adjacent-line prefetcher pulls cache lines in pairs and
//!   several aarch64 and POWER parts have 128-byte lines: two CPUs' slots never share a prefetch pair, so
//!   a CPU updating its slot never invalidates its neighbour's.
//!
//! The slots are written by critical sections on any thread, so `PerCpu` is a cell: `T` must be `Copy`
//! (no drop glue, nothing to move), the safe API hands out copies of word slots read with atomic loads,
//! never references, and anything else goes through raw pointers ([`PerCpu::slot_ptr`]).
//!
//! The index marker `I` ([`ByCpu`] or [`ByMmCid`]) fixes which index sequences use for this storage:
//! mixing them on one storage would be unsound (a thread on CPU 1 with mm_cid 0 and a thread on CPU 0
//! would both own slot 0), so it is a type error.

use core::alloc::Layout;
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::word::Word;

/// Alignment and minimum stride of a slot, in bytes.
pub const SLOT_ALIGN: usize = 128;

/// Index marker: slots are chosen by the kernel's `cpu_id` (the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByCpu {}

/// Index marker: slots are chosen by the kernel's `mm_cid` (6.3+), which stays dense when a process
/// runs on few of many CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByMmCid {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::ByCpu {}
    impl Sealed for super::ByMmCid {}
}

/// The index a [`PerCpu`] is addressed by: [`ByCpu`] or [`ByMmCid`].
pub trait IndexKind: sealed::Sealed + 'static {
    /// `"cpu_id"` or `"mm_cid"`.
    const NAME: &'static str;
}
impl IndexKind for ByCpu {
    const NAME: &'static str = "cpu_id";
}
impl IndexKind for ByMmCid {
    const NAME: &'static str = "mm_cid";
}

/// Per-CPU storage indexed by `mm_cid`.
pub type PerMmCid<T> = PerCpu<T, ByMmCid>;

/// The raw parts of a [`PerCpu`], as the generated asm uses them.
#[derive(Debug, Clone, Copy)]
pub struct RawPerCpu {
    /// Address of slot 0.
    pub base: *mut u8,
    /// Distance between slots.
    pub stride: usize,
    /// Number of slots.
    pub len: usize,
}

/// One `T` per possible CPU, padded against false sharing (see the module docs for the layout).
pub struct PerCpu<T: Copy, I: IndexKind = ByCpu> {
    base: NonNull<u8>,
    stride: usize,
    len: usize,
    _marker: PhantomData<(T, I)>,
}

// SAFETY: `T: Copy` has no drop glue, and the safe API never hands out a `&T` or moves a `T` out except as
// a copy of a `Word` (plain data; pointers as plain addresses, whose dereference is unsafe anyway). So
// sharing or sending the storage between threads can only move words around, which is what it is for.
unsafe impl<T: Copy, I: IndexKind> Send for PerCpu<T, I> {}
// SAFETY: see `Send`; concurrent access to slot memory goes through atomics (safe API) or asm/raw pointers.
unsafe impl<T: Copy, I: IndexKind> Sync for PerCpu<T, I> {}

impl<T: Copy, I: IndexKind> PerCpu<T, I> {
    /// Storage with every slot set to `value`.
    pub fn new(value: T) -> Self {
        Self::from_fn(|_| value)
    }

    /// Storage with slot `i` set to `f(i)`.
    pub fn from_fn(mut f: impl FnMut(usize) -> T) -> Self {
        let len = possible_cpus();
        let stride = stride_of::<T>();
        let layout = Self::layout(len, stride);
        // SAFETY: the layout has a non-zero size (len >= 1, stride >= SLOT_ALIGN).
        let base = unsafe { std::alloc::alloc_zeroed(layout) };
        let Some(base) = NonNull::new(base) else {
            std::alloc::handle_alloc_error(layout)
        };
        for i in 0..len {
            // SAFETY: slot i is inside the allocation and aligned for T (stride and base are multiples of
            // align_of::<T>()).
            unsafe { base.as_ptr().add(i * stride).cast::<T>().write(f(i)) };
        }
        PerCpu {
            base,
            stride,
            len,
            _marker: PhantomData,
        }
    }

    fn layout(len: usize, stride: usize) -> Layout {
        let align = SLOT_ALIGN.max(core::mem::align_of::<T>());
        match len
            .checked_mul(stride)
            .map(|size| Layout::from_size_align(size, align))
        {
            Some(Ok(l)) => l,
            _ => panic!("PerCpu: {len} slots of {stride} bytes overflow the address space"),
        }
    }

    /// Number of slots (possible CPUs).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: there is at least one slot.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Distance in bytes between two slots.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Address of slot `index`, or `None` if out of range. Dereferencing it races with critical sections
    /// of the CPU that owns the slot: use atomics or the protocol of your data structure.
    pub fn slot_ptr(&self, index: usize) -> Option<*mut T> {
        (index < self.len)
            // SAFETY: index < len, so the offset stays inside the allocation.
            .then(|| unsafe { self.base.as_ptr().add(index * self.stride).cast::<T>() })
    }

    /// A non-owning view of the same slots as storage of `U` found `offset` bytes into each slot of
    /// `self` (same stride, same length), for sequences on a sub-object of every slot: the view's
    /// fields are its own, so a caller that keeps it inline loads `base`/`stride`/`len` with one
    /// memory access each instead of following a pointer to the owner first.
    ///
    /// The view never frees anything (it is `ManuallyDrop`).
    ///
    /// # Safety
    /// `offset + size_of::<U>() <= self.stride()`; `base + offset` is aligned for `U` in every slot
    /// (`offset` a multiple of `align_of::<U>()`, which is at most the slots' alignment); the bytes
    /// there are valid `U`s; and the view is not used after `self` is dropped.
    #[doc(hidden)]
    #[inline]
    pub unsafe fn __view<U: Copy>(&self, offset: usize) -> core::mem::ManuallyDrop<PerCpu<U, I>> {
        debug_assert!(offset + core::mem::size_of::<U>() <= self.stride);
        core::mem::ManuallyDrop::new(PerCpu {
            // SAFETY: offset < stride <= the allocation's size, so base + offset is in bounds and
            // non-null.
            base: unsafe { self.base.add(offset) },
            stride: self.stride,
            len: self.len,
            _marker: PhantomData,
        })
    }

    /// The raw parts used by generated code.
    #[doc(hidden)]
    #[inline(always)]
    pub fn __raw(&self) -> RawPerCpu {
        RawPerCpu {
            base: self.base.as_ptr(),
            stride: self.stride,
            len: self.len,
        }
    }
}

impl<T: Word, I: IndexKind> PerCpu<T, I> {
    /// Reads slot `index` (a relaxed atomic load), or `None` if out of range.
    pub fn load(&self, index: usize) -> Option<T> {
        // SAFETY: slot_ptr returns an in-bounds pointer aligned for T, initialised at construction.
        self.slot_ptr(index)
            .map(|p| unsafe { T::atomic_load(p, Ordering::Relaxed) })
    }

    /// Every slot's value, in index order (relaxed loads: a concurrent update may or may not be seen).
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        (0..self.len).filter_map(move |i| self.load(i))
    }
}

impl<T: Copy + Default, I: IndexKind> Default for PerCpu<T, I> {
    fn default() -> Self {
        Self::from_fn(|_| T::default())
    }
}

impl<T: Copy, I: IndexKind> core::fmt::Debug for PerCpu<T, I> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PerCpu")
            .field("index", &I::NAME)
            .field("len", &self.len)
            .field("stride", &self.stride)
            .finish_non_exhaustive()
    }
}

impl<T: Copy, I: IndexKind> Drop for PerCpu<T, I> {
    fn drop(&mut self) {
        // SAFETY: allocated in `from_fn` with this very layout; `T: Copy` needs no drop.
        unsafe { std::alloc::dealloc(self.base.as_ptr(), Self::layout(self.len, self.stride)) };
    }
}

/// Stride of a `PerCpu<T>`: `size_of::<T>()` rounded up to a multiple of the slot alignment.
pub fn stride_of<T>() -> usize {
    let align = SLOT_ALIGN.max(core::mem::align_of::<T>());
    core::mem::size_of::<T>().max(1).div_ceil(align) * align
}

/// Generated code: raw parts of a cpu_id-indexed storage (a type error for an mm_cid-indexed one).
#[doc(hidden)]
#[inline(always)]
pub fn raw_by_cpu<T: Copy>(p: &PerCpu<T, ByCpu>) -> RawPerCpu {
    p.__raw()
}

/// Generated code: raw parts of an mm_cid-indexed storage (a type error for a cpu_id-indexed one).
#[doc(hidden)]
#[inline(always)]
pub fn raw_by_mm_cid<T: Copy>(p: &PerCpu<T, ByMmCid>) -> RawPerCpu {
    p.__raw()
}

static POSSIBLE: AtomicUsize = AtomicUsize::new(0);

/// Number of possible CPUs: one more than the highest CPU number in
/// `/sys/devices/system/cpu/possible`, else `sysconf(_SC_NPROCESSORS_CONF)`, else 1. Cached.
pub fn possible_cpus() -> usize {
    let n = POSSIBLE.load(Ordering::Relaxed);
    if n != 0 {
        return n;
    }
    let n = std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .ok()
        .and_then(|s| parse_cpu_list_max(&s))
        .map(|max| max + 1)
        .or_else(|| {
            // SAFETY: sysconf has no preconditions.
            let c = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
            usize::try_from(c).ok().filter(|&c| c > 0)
        })
        .unwrap_or(1);
    POSSIBLE.store(n, Ordering::Relaxed);
    n
}

/// Highest CPU number in a kernel CPU list such as `0-3,8,10-11`.
pub(crate) fn parse_cpu_list_max(s: &str) -> Option<usize> {
    let mut max = None;
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        let hi = match part.split_once('-') {
            Some((lo, hi)) => {
                lo.trim().parse::<usize>().ok()?;
                hi.trim().parse::<usize>().ok()?
            }
            None => part.trim().parse::<usize>().ok()?,
        };
        max = Some(max.map_or(hi, |m: usize| m.max(hi)));
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list_max("0-1\n"), Some(1));
        assert_eq!(parse_cpu_list_max("0"), Some(0));
        assert_eq!(parse_cpu_list_max("0-3,8,10-11"), Some(11));
        assert_eq!(parse_cpu_list_max(""), None);
        assert_eq!(parse_cpu_list_max("x"), None);
    }

    #[test]
    fn layout_is_padded() {
        assert_eq!(stride_of::<u64>(), 128);
        assert_eq!(stride_of::<[u8; 129]>(), 256);
        let p: PerCpu<u64> = PerCpu::from_fn(|i| i as u64 * 10);
        assert_eq!(p.len(), possible_cpus());
        assert_eq!(p.__raw().base as usize % SLOT_ALIGN, 0);
        assert_eq!(
            p.iter().collect::<Vec<_>>(),
            (0..p.len() as u64).map(|i| i * 10).collect::<Vec<_>>()
        );
        assert_eq!(p.load(p.len()), None);
        let a = p.slot_ptr(0).unwrap() as usize;
        let b = p.slot_ptr(p.len() - 1).unwrap() as usize;
        assert_eq!(b - a, (p.len() - 1) * 128);
    }
}
