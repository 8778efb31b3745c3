//! [`Buffer`] (per-CPU bounded array stacks of pointers) and [`ItemBuffer`] (of small copied items).

use core::alloc::Layout;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::mem::{size_of, MaybeUninit};
use core::sync::atomic::{AtomicUsize, Ordering};

use super::pool::{alloc_shared, Pool, RawAlloc, POOL_STRIDE};
use super::{check_cpu, fence, fence_ready, native, RemoteError};
use crate::remote::{MarkTicket, RemoteLock};
use crate::{rseq, Error, PerCpu, ThisThread};

// Per-CPU layout at the allocation's offset `b`: `top` (bytes of items in use), then for `Buffer`
// the pointer slots at `b + 8`, for `ItemBuffer` the byte limit `lim` at `b + 8` and the item slots
// at `b + 16`. The top pointer of a `Buffer` with `top = t` is at `b + 8 + t - 8 = b + t`; the top
// item of an `ItemBuffer` with slots of `sz` bytes at `b + 16 + t - sz`. Working in bytes avoids a
// multiplication (the DSL has none) and a shift.

rseq! {
    /// Pushes `item` (non-zero) on the calling CPU's buffer; false when it is full (`top >= lim`).
    ///
    /// # Safety
    /// `bufs` views a live buffer allocation with `8 + lim` bytes.
    #[inline]
    unsafe fn buf_push(bufs: &PerCpu<usize>, lim: usize, item: usize) -> bool {
        let b = bufs.current();
        let t = load::<usize>(b);
        if t >= lim { return false; }
        store::<usize>(b + t + 8, item);
        commit store_release::<usize>(b, t + 8);
        true
    }

    /// Pops the top item of the calling CPU's buffer; 0 when it is empty (`t == 0`, which wraps
    /// `t - 1` to the maximum) or marked by a drain (`t >= MARK`): one compare for both, against
    /// the chunk size (`POOL_STRIDE`, which every valid `top` is below).
    ///
    /// # Safety
    /// As for `buf_push`.
    #[inline]
    unsafe fn buf_pop(bufs: &PerCpu<usize>) -> usize {
        let b = bufs.current();
        let t = load::<usize>(b);
        if t - 1 >= 16384 { return 0; }
        let item = load::<usize>(b + t);
        commit store::<usize>(b, t - 8);
        item
    }

    /// `buf_push` with the thread's entry passed in (see [`LocalBuffer`]).
    ///
    /// # Safety
    /// As for `buf_push`.
    #[inline]
    unsafe fn buf_push_in(thread: ThisThread<'_>, bufs: &PerCpu<usize>, lim: usize, item: usize) -> bool {
        let b = bufs.current();
        let t = load::<usize>(b);
        if t >= lim { return false; }
        store::<usize>(b + t + 8, item);
        commit store_release::<usize>(b, t + 8);
        true
    }

    /// `buf_pop` with the thread's entry passed in (see [`LocalBuffer`]).
    ///
    /// # Safety
    /// As for `buf_push`.
    #[inline]
    unsafe fn buf_pop_in(thread: ThisThread<'_>, bufs: &PerCpu<usize>) -> usize {
        let b = bufs.current();
        let t = load::<usize>(b);
        if t - 1 >= 16384 { return 0; }
        let item = load::<usize>(b + t);
        commit store::<usize>(b, t - 8);
        item
    }
}

/// Each item sequence twice under one name: in `$group::plain` as written, and in
/// `$group::with_thread` taking the thread's token first (the forms [`LocalItemBuffer`] calls, so
/// that a loop's sections skip the thread lookup). The body is written once; `push_item!` and
/// `pop_item!` choose the form.
macro_rules! item_sequences {
    ($group:ident: $(
        $(#[$attr:meta])*
        unsafe fn $name:ident($($param:tt)*) -> $ret:tt { $($body:tt)* }
    )*) => {
        mod $group {
            pub(super) mod plain {
                use super::super::*;
                rseq! {$(
                    $(#[$attr])*
                    #[inline]
                    pub(in crate::percpu) unsafe fn $name($($param)*) -> $ret { $($body)* }
                )*}
            }
            pub(super) mod with_thread {
                use super::super::*;
                rseq! {$(
                    $(#[$attr])*
                    #[inline]
                    pub(in crate::percpu) unsafe fn $name(thread: ThisThread<'_>, $($param)*) -> $ret { $($body)* }
                )*}
            }
        }
    };
}

item_sequences! { generic:
    /// Copies a slot of `sz` bytes from `src` in as the calling CPU's new top item; false when full
    /// (the byte limit is read from the header: passing it too would need a 14th register).
    ///
    /// # Safety
    /// `bufs` views a live item-buffer allocation (header `top`, `lim`, then `lim` bytes of
    /// slots), `lim` a multiple of `sz <= 1024`; `src` valid for `sz` bytes of reads.
    unsafe fn items_push(bufs: &PerCpu<usize>, sz: usize, src: *const u8) -> bool {
        let b = bufs.current();
        let t = load::<usize>(b);
        let lim = load::<usize>(b + 8);
        if t >= lim { return false; }
        memcpy(b + t + 16, src, sz);
        commit store_release::<usize>(b, t + sz);
        true
    }

    /// Copies the calling CPU's top slot (`sz` bytes) to `dst` and removes it; false when empty.
    ///
    /// # Safety
    /// As for `items_push`; `dst` valid for `sz` bytes of writes.
    unsafe fn items_pop(bufs: &PerCpu<usize>, sz: usize, dst: *mut u8) -> bool {
        let b = bufs.current();
        let t = load::<usize>(b);
        if t - 1 >= 16384 { return false; }
        memcpy(dst, b + t + 16 - sz, sz);
        commit store::<usize>(b, t - sz);
        true
    }
}

// Constant-size forms: the copy is unrolled into word moves (no length loop).
macro_rules! sized_item_sequences {
    ($($push:ident $pop:ident $n:tt;)*) => {
        item_sequences! { sized: $(
            /// `items_push` for items of exactly this many bytes (slots of the same size).
            ///
            /// # Safety
            /// As for `items_push`.
            unsafe fn $push(bufs: &PerCpu<usize>, lim: usize, src: *const u8) -> bool {
                let b = bufs.current();
                let t = load::<usize>(b);
                if t >= lim { return false; }
                memcpy(b + t + 16, src, $n);
                commit store_release::<usize>(b, t + $n);
                true
            }

            /// `items_pop` for items of exactly this many bytes.
            ///
            /// # Safety
            /// As for `items_pop`.
            unsafe fn $pop(bufs: &PerCpu<usize>, dst: *mut u8) -> bool {
                let b = bufs.current();
                let t = load::<usize>(b);
                if t - 1 >= 16384 { return false; }
                memcpy(dst, b + t + 16 - $n, $n);
                commit store::<usize>(b, t - $n);
                true
            }
        )* }
    };
}

sized_item_sequences! {
    items_push8 items_pop8 8;
    items_push16 items_pop16 16;
    items_push32 items_pop32 32;
    items_push64 items_pop64 64;
}

/// Bytes of a machine word, and the offsets the word forms below use (see the layout note at the
/// top: the top item of a buffer with `top = t` starts at `b + 16 + t - slot`).
const W1: usize = size_of::<usize>();
const W2: usize = 2 * W1;
const PUSH2_1: usize = 16 + W1;
const POP1_0: usize = 16 - W1;
const POP2_0: usize = 16 - W2;

// Word forms, for items of exactly one or two machine words: the item travels in registers, so
// neither the caller's copy nor a staging slot goes through memory (a pop's result is two register
// outputs, not a buffer the caller reads back, which also avoids a store-forwarding stall when the
// caller reads the item with one wider load). A pop's words are returned only when it committed.
item_sequences! { word_forms:
    /// Pushes a one-word item; false when full.
    ///
    /// # Safety
    /// As for `items_push`, with word-sized slots.
    unsafe fn items_push_w1(bufs: &PerCpu<usize>, lim: usize, w0: usize) -> bool {
        let b = bufs.current();
        let t = load::<usize>(b);
        if t >= lim { return false; }
        store::<usize>(b + t + 16, w0);
        commit store_release::<usize>(b, t + W1);
        true
    }

    /// Pops a one-word item: `(true, word)`, or `(false, 0)` when empty.
    ///
    /// # Safety
    /// As for `items_pop`, with word-sized slots.
    unsafe fn items_pop_w1(bufs: &PerCpu<usize>) -> (bool, usize) {
        let b = bufs.current();
        let t = load::<usize>(b);
        if t - 1 >= 16384 { return (false, 0); }
        let w0 = load::<usize>(b + t + POP1_0);
        commit store::<usize>(b, t - W1);
        (true, w0)
    }

    /// Pushes a two-word item; false when full.
    ///
    /// # Safety
    /// As for `items_push`, with two-word slots.
    unsafe fn items_push_w2(bufs: &PerCpu<usize>, lim: usize, w0: usize, w1: usize) -> bool {
        let b = bufs.current();
        let t = load::<usize>(b);
        if t >= lim { return false; }
        store::<usize>(b + t + 16, w0);
        store::<usize>(b + t + PUSH2_1, w1);
        commit store_release::<usize>(b, t + W2);
        true
    }

    /// Pops a two-word item: `(true, w0, w1)`, or `(false, 0, 0)` when empty.
    ///
    /// # Safety
    /// As for `items_pop`, with two-word slots.
    unsafe fn items_pop_w2(bufs: &PerCpu<usize>) -> (bool, usize, usize) {
        let b = bufs.current();
        let t = load::<usize>(b);
        if t - 1 >= 16384 { return (false, 0, 0); }
        let w0 = load::<usize>(b + t + POP2_0);
        let w1 = load::<usize>(b + t + POP1_0);
        commit store::<usize>(b, t - W2);
        (true, w0, w1)
    }
}

// The pops' compare-exit `t - 1 >= 16384` relies on this.
const _: () = assert!(POOL_STRIDE == 16384);

/// The mark a drain sets in `top`: pushes see `top >= lim` (full) and pops see `top - 1 >= lim`
/// (empty), so no section commits while it is set.
const MARK: usize = 1 << (usize::BITS - 1);

fn top_word(raw: &RawAlloc, cpu: usize) -> &AtomicUsize {
    // SAFETY: the 8-aligned `top` word of CPU `cpu`'s instance, living as long as `raw`; every access
    // to it is atomic (sections' aligned stores, the fallback's atomics, these atomics).
    unsafe { AtomicUsize::from_ptr(raw.ptr(cpu).cast()) }
}

/// Takes CPU `cpu`'s items: calls `take(items, bytes)` while no section can touch them, then empties
/// the buffer. The protocol (module docs, "Cross-CPU operations"): natively, mark `top`, fence the
/// CPU, and check that the mark survived (a section that read `top` before the mark and committed
/// before the fence overwrote it: then mark again); in fallback mode, hold the index's lock.
fn drain_array(
    raw: &RawAlloc,
    serial: &RemoteLock,
    cpu: usize,
    header: usize,
    take: impl FnOnce(*const u8, usize),
) -> Result<(), RemoteError> {
    check_cpu(cpu, raw.cpus())?;
    let _serial = serial.lock();
    let top = top_word(raw, cpu);
    // SAFETY: the items start `header` bytes into the instance.
    let items = unsafe { raw.ptr(cpu).add(header) }.cast_const();
    if native() {
        fence_ready()?;
        // SAFETY: `top` lives as long as `raw`, which outlives the ticket (dropped at the end of
        // this block, after the mark is cleared). A fork now clears the mark in the child.
        let _ticket = unsafe { MarkTicket::new(top, MARK) };
        let bytes = loop {
            // 1. Mark: sections that read `top` from now on exit without a store.
            top.fetch_or(MARK, Ordering::AcqRel);
            // 2. Fence: sections that read `top` before the mark have committed or are aborted.
            fence(cpu).unwrap_or_else(|e| {
                panic!("rseq fence of CPU {cpu} failed after it was available: {e}")
            });
            // 3. Verify: a commit after the mark would have replaced it.
            let t = top.load(Ordering::Acquire);
            if t & MARK != 0 {
                break t & !MARK;
            }
        };
        take(items, bytes);
        top.store(0, Ordering::Release);
    } else {
        let _g = crate::__private::fallback_lock_index(cpu).map_err(RemoteError::from_lock)?;
        take(items, top.load(Ordering::Acquire));
        top.store(0, Ordering::Release);
    }
    Ok(())
}

fn top(raw: &RawAlloc, cpu: usize) -> usize {
    top_word(raw, cpu).load(Ordering::Acquire) & !MARK
}

/// A bounded per-CPU stack of boxed values (an array of pointers per CPU, like the kernel
/// selftests' "array buffer"): [`push`](Buffer::push) and [`pop`](Buffer::pop) are restartable
/// sequences on the calling CPU's array. Each CPU holds up to [`capacity`](Buffer::capacity) items.
///
/// Push stores the pointer into the free slot speculatively and commits the new length; pop reads
/// the top pointer and commits the shorter length. Sections on one CPU are atomic with respect to
/// each other, so there is no ABA problem; the only other writer of a CPU's array is
/// [`drain`](Buffer::drain), which first stops that CPU's sections (module docs, protocol 1).
///
/// The buffer owns the boxes on it and frees them when dropped.
///
/// ```
/// use rseq_dsl::percpu::Buffer;
///
/// let b: Buffer<String> = Buffer::with_capacity(8);
/// b.push(Box::new("hello".to_string())).unwrap();
/// // The thread may have moved to another CPU between the calls; retry on the CPU it is on.
/// // The thread may have moved to another CPU since the push: then pop finds nothing, and a
/// // cross-CPU drain takes the item from wherever it is.
/// let got = b.pop().or_else(|| {
///     (0..rseq_dsl::possible_cpus()).find_map(|cpu| b.drain(cpu).unwrap().pop())
/// });
/// assert_eq!(got.as_deref().map(String::as_str), Some("hello"));
/// ```
pub struct Buffer<T> {
    /// Every CPU's buffer header, held inline (see `RawAlloc::view`).
    view: ManuallyDrop<PerCpu<usize>>,
    /// Keeps the pool (and so `view`'s memory) alive.
    raw: RawAlloc,
    /// Serializes drains.
    remote: RemoteLock,
    /// `8 * capacity`: the byte limit of `top`.
    lim: usize,
    _marker: PhantomData<Box<T>>,
}

// SAFETY: the buffer owns boxes; sending it sends them.
unsafe impl<T: Send> Send for Buffer<T> {}
// SAFETY: shared use moves whole boxes between threads, never shares a `&T`; `T: Send` suffices.
unsafe impl<T: Send> Sync for Buffer<T> {}

impl<T> core::fmt::Debug for Buffer<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Buffer")
            .field("capacity", &self.capacity())
            .field("lens", &self.lens())
            .finish_non_exhaustive()
    }
}

impl<T> Buffer<T> {
    /// Largest per-CPU capacity (one pool chunk).
    pub const MAX_CAPACITY: usize = (POOL_STRIDE - 8) / 8;

    fn layout(capacity: usize) -> Layout {
        assert!(
            (1..=Self::MAX_CAPACITY).contains(&capacity),
            "Buffer capacity must be in 1..={}",
            Self::MAX_CAPACITY
        );
        Layout::from_size_align(8 + 8 * capacity, 8).expect("valid layout")
    }

    /// An empty buffer of `capacity` items per CPU, in the shared [`Pool`].
    ///
    /// # Panics
    /// Unless `1 <= capacity <= MAX_CAPACITY`.
    pub fn with_capacity(capacity: usize) -> Buffer<T> {
        let raw = alloc_shared(Self::layout(capacity)).expect("at most one chunk");
        // SAFETY: an 8-aligned allocation of 8 + lim bytes, zeroed; the view lives in the same struct.
        let view = unsafe { raw.view::<usize>() };
        Buffer {
            view,
            raw,
            lim: 8 * capacity,
            remote: RemoteLock::new(),
            _marker: PhantomData,
        }
    }

    /// As [`with_capacity`](Buffer::with_capacity), in `pool`; `None` when it has no room.
    ///
    /// # Panics
    /// Unless `1 <= capacity <= MAX_CAPACITY`.
    pub fn with_capacity_in(pool: &Pool, capacity: usize) -> Option<Buffer<T>> {
        let raw = pool.alloc_raw(Self::layout(capacity))?;
        // SAFETY: as in `with_capacity`.
        let view = unsafe { raw.view::<usize>() };
        Some(Buffer {
            view,
            raw,
            lim: 8 * capacity,
            remote: RemoteLock::new(),
            _marker: PhantomData,
        })
    }

    /// Items per CPU.
    pub fn capacity(&self) -> usize {
        self.lim / 8
    }

    /// Items on each CPU's array now (a snapshot), in CPU order.
    pub fn lens(&self) -> Vec<usize> {
        (0..self.raw.cpus())
            .map(|c| top(&self.raw, c) / 8)
            .collect()
    }

    /// One attempt to push: gives the item back with `None` when the calling CPU's array is full,
    /// with `Some(error)` when the section was restarted (nothing happened).
    ///
    /// # Errors
    /// See above; other errors are those of a generated `try_` function (see `docs/DSL.md`).
    #[inline]
    pub fn try_push_once(&self, item: Box<T>) -> Result<(), (Box<T>, Option<Error>)> {
        let p = Box::into_raw(item);
        // SAFETY: the allocation has 8 + lim bytes; `p` is non-null (a box), and on commit the array
        // owns it.
        match unsafe { try_buf_push(&self.view, self.lim, p as usize) } {
            Ok(true) => Ok(()),
            // SAFETY: not committed: we still own the box.
            Ok(false) => Err((unsafe { Box::from_raw(p) }, None)),
            // SAFETY: as above.
            Err(e) => Err((unsafe { Box::from_raw(p) }, Some(e))),
        }
    }

    /// Pushes on the calling CPU's array; gives the item back when that array is full.
    ///
    /// # Errors
    /// The item, when the array is full.
    #[inline]
    pub fn push(&self, item: Box<T>) -> Result<(), Box<T>> {
        let p = Box::into_raw(item);
        // SAFETY: as in `try_push_once`.
        if unsafe { buf_push(&self.view, self.lim, p as usize) } {
            Ok(())
        } else {
            // SAFETY: not committed: we still own the box.
            Err(unsafe { Box::from_raw(p) })
        }
    }

    /// One attempt to pop from the calling CPU's array.
    ///
    /// # Errors
    /// `Error::Aborted` when the section was restarted (nothing happened), and those of a generated
    /// `try_` function.
    #[inline]
    pub fn try_pop_once(&self) -> Result<Option<Box<T>>, Error> {
        // SAFETY: `view` is this live buffer's.
        let p = unsafe { try_buf_pop(&self.view) }?;
        // SAFETY: the commit removed `p`, a pushed box, from the array: it is ours.
        Ok((p != 0).then(|| unsafe { Box::from_raw(p as *mut T) }))
    }

    /// Pops the calling CPU's top item; `None` when its array is empty.
    #[inline]
    pub fn pop(&self) -> Option<Box<T>> {
        // SAFETY: as in `try_pop_once`.
        let p = unsafe { buf_pop(&self.view) };
        // SAFETY: as in `try_pop_once`.
        (p != 0).then(|| unsafe { Box::from_raw(p as *mut T) })
    }

    /// A handle for pushing and popping from the calling thread in a loop: it holds the thread's
    /// token and a copy of the buffer's slot parameters, so that, kept in a local, each operation
    /// is the section alone (as [`Counter::local`](super::Counter::local)).
    ///
    /// ```
    /// use rseq_dsl::{percpu::Buffer, this_thread};
    ///
    /// let b: Buffer<u32> = Buffer::with_capacity(8);
    /// this_thread(|t| {
    ///     let local = b.local(t);
    ///     for i in 0..1000 {
    ///         let _ = local.push(Box::new(i));
    ///         let _ = local.pop();
    ///     }
    /// })
    /// .expect("this thread can run sequences");
    /// ```
    #[inline]
    pub fn local<'b, 't>(&'b self, thread: ThisThread<'t>) -> LocalBuffer<'b, 't, T> {
        LocalBuffer {
            // SAFETY: as in `with_capacity_in`: the same allocation, and the view does not outlive
            // `'b`, during which `self.raw` keeps the pool alive.
            view: unsafe { self.raw.view::<usize>() },
            lim: self.lim,
            thread,
            _buffer: PhantomData,
        }
    }

    /// Takes CPU `cpu`'s items (bottom first), from any thread, while sections may run on that
    /// CPU; meanwhile that CPU's pushes report "full" and its pops "empty" (for the duration of
    /// one `membarrier`). Not async-signal-safe.
    ///
    /// # Errors
    /// As [`Stack::drain`](super::Stack::drain).
    pub fn drain(&self, cpu: usize) -> Result<Vec<Box<T>>, RemoteError> {
        let mut out = Vec::new();
        drain_array(&self.raw, &self.remote, cpu, 8, |items, bytes| {
            for k in 0..bytes / 8 {
                // SAFETY: slot k below `top` holds a pushed box, and no section touches the array
                // (see `drain_array`); we take ownership since `top` is reset afterwards.
                out.push(unsafe { Box::from_raw(items.add(8 * k).cast::<*mut T>().read()) });
            }
        })?;
        Ok(out)
    }
}

/// [`Buffer::push`] and [`Buffer::pop`] for one thread and one buffer, with the lookups hoisted:
/// see [`Buffer::local`].
pub struct LocalBuffer<'b, 't, T> {
    /// The headers' view, copied: a local `LocalBuffer` keeps these words in registers.
    view: ManuallyDrop<PerCpu<usize>>,
    lim: usize,
    thread: ThisThread<'t>,
    _buffer: PhantomData<&'b Buffer<T>>,
}

impl<T> LocalBuffer<'_, '_, T> {
    /// One attempt, as [`Buffer::try_push_once`].
    ///
    /// # Errors
    /// As [`Buffer::try_push_once`].
    #[inline]
    pub fn try_push_once(&self, item: Box<T>) -> Result<(), (Box<T>, Option<Error>)> {
        let p = Box::into_raw(item);
        // SAFETY: as in `Buffer::try_push_once`: the view and limit are the buffer's.
        match unsafe { try_buf_push_in(self.thread, &self.view, self.lim, p as usize) } {
            Ok(true) => Ok(()),
            // SAFETY: not committed: we still own the box.
            Ok(false) => Err((unsafe { Box::from_raw(p) }, None)),
            // SAFETY: as above.
            Err(e) => Err((unsafe { Box::from_raw(p) }, Some(e))),
        }
    }

    /// As [`Buffer::push`].
    ///
    /// # Errors
    /// The item, when the array is full.
    #[inline]
    pub fn push(&self, item: Box<T>) -> Result<(), Box<T>> {
        let p = Box::into_raw(item);
        // SAFETY: as in `try_push_once`.
        if unsafe { buf_push_in(self.thread, &self.view, self.lim, p as usize) } {
            Ok(())
        } else {
            // SAFETY: not committed: we still own the box.
            Err(unsafe { Box::from_raw(p) })
        }
    }

    /// One attempt, as [`Buffer::try_pop_once`].
    ///
    /// # Errors
    /// As [`Buffer::try_pop_once`].
    #[inline]
    pub fn try_pop_once(&self) -> Result<Option<Box<T>>, Error> {
        // SAFETY: `view` is the live buffer's.
        let p = unsafe { try_buf_pop_in(self.thread, &self.view) }?;
        // SAFETY: the commit removed `p`, a pushed box, from the array: it is ours.
        Ok((p != 0).then(|| unsafe { Box::from_raw(p as *mut T) }))
    }

    /// As [`Buffer::pop`].
    #[inline]
    pub fn pop(&self) -> Option<Box<T>> {
        // SAFETY: as in `try_pop_once`.
        let p = unsafe { buf_pop_in(self.thread, &self.view) };
        // SAFETY: as in `try_pop_once`.
        (p != 0).then(|| unsafe { Box::from_raw(p as *mut T) })
    }
}

impl<T> core::fmt::Debug for LocalBuffer<'_, '_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LocalBuffer")
            .field("thread", &self.thread)
            .finish_non_exhaustive()
    }
}

impl<T> Drop for Buffer<T> {
    fn drop(&mut self) {
        // `&mut self`: no section runs on this buffer.
        for cpu in 0..self.raw.cpus() {
            let n = top(&self.raw, cpu) / 8;
            for k in 0..n {
                // SAFETY: slot k < top of CPU cpu's array holds a pushed box, owned by the buffer.
                unsafe {
                    let p = self.raw.ptr(cpu).add(8 + 8 * k).cast::<*mut T>().read();
                    drop(Box::from_raw(p));
                }
            }
        }
    }
}

/// A word-aligned copy of an item padded with zeros to its slot size (at most 1024 bytes), for the
/// generic sequences, which copy whole slots (it keeps them within 13 registers: no separate length).
#[repr(C, align(8))]
struct Staging([u8; 1024]);

impl Staging {
    fn zeroed() -> Staging {
        Staging([0; 1024])
    }

    fn of<T: Plain>(item: &T) -> Staging {
        let mut st = Staging::zeroed();
        // SAFETY: size_of::<T>() <= 1024 (checked when the buffer was built); T: Plain, so every
        // byte copied is initialised.
        unsafe {
            core::ptr::copy_nonoverlapping(
                core::ptr::from_ref(item).cast::<u8>(),
                st.0.as_mut_ptr(),
                size_of::<T>(),
            );
        }
        st
    }

    fn ptr(&mut self) -> *mut u8 {
        self.0.as_mut_ptr()
    }

    /// The first `size_of::<T>()` bytes as a `T`.
    ///
    /// # Safety
    /// They hold a copy of a valid `T`.
    unsafe fn read<T: Plain>(&self) -> T {
        // SAFETY: in bounds (size_of::<T>() <= 1024), unaligned read; validity is the caller's.
        unsafe { self.0.as_ptr().cast::<T>().read_unaligned() }
    }
}

/// The `K` machine words of `item`.
///
/// # Safety
/// `size_of::<T>() == K * size_of::<usize>()`.
#[inline(always)]
unsafe fn words<T: Plain, const K: usize>(item: &T) -> [usize; K] {
    debug_assert_eq!(size_of::<T>(), K * W1);
    // SAFETY: same size (caller), every byte initialised (T: Plain), read unaligned.
    unsafe { (core::ptr::from_ref(item).cast::<[usize; K]>()).read_unaligned() }
}

/// The item whose `K` machine words are `w`.
///
/// # Safety
/// `size_of::<T>() == K * size_of::<usize>()`, and `w` are the words of a valid `T`.
#[inline(always)]
unsafe fn from_words<T: Plain, const K: usize>(w: [usize; K]) -> T {
    debug_assert_eq!(size_of::<T>(), K * W1);
    // SAFETY: same size, the bytes of a valid T (caller), read unaligned.
    unsafe { (core::ptr::from_ref(&w).cast::<T>()).read_unaligned() }
}

/// The push of [`ItemBuffer`] and [`LocalItemBuffer`]: the word forms for items of exactly one or
/// two machine words, the unrolled forms for 8/16/32/64 bytes, else the generic slot copy.
/// `$form` is `plain` or `with_thread` (then `[$thread]` is the token); `try` selects the `try_`
/// functions (one attempt), `run` the retrying ones.
///
/// The caller's `unsafe` block promises that `$view` is the header view of a live
/// `ItemBuffer<T, N>`: each CPU's instance has `16 + LIM` bytes, `LIM` a multiple of
/// `SLOT >= size_of::<T>()`. The item's bytes are all initialised (`T: Plain`).
macro_rules! push_item {
    (@go $form:ident, [$($th:expr)?], $view:expr, $item:expr,
     $w1:ident $w2:ident $s8:ident $s16:ident $s32:ident $s64:ident $any:ident) => {{
        let (c, item): (&PerCpu<usize>, T) = ($view, $item);
        let src: *const u8 = (&raw const item).cast();
        let lim = ItemBuffer::<T, N>::LIM;
        match (ItemBuffer::<T, N>::WORDS, size_of::<T>()) {
            (1, _) => word_forms::$form::$w1($($th,)? c, lim, words::<T, 1>(&item)[0]),
            (2, _) => {
                let [w0, w1] = words::<T, 2>(&item);
                word_forms::$form::$w2($($th,)? c, lim, w0, w1)
            }
            (_, 8) => sized::$form::$s8($($th,)? c, lim, src),
            (_, 16) => sized::$form::$s16($($th,)? c, lim, src),
            (_, 32) => sized::$form::$s32($($th,)? c, lim, src),
            (_, 64) => sized::$form::$s64($($th,)? c, lim, src),
            _ => generic::$form::$any($($th,)? c, ItemBuffer::<T, N>::SLOT, Staging::of(&item).ptr()),
        }
    }};
    ($form:ident, [$($th:expr)?], try, $view:expr, $item:expr) => {
        push_item!(@go $form, [$($th)?], $view, $item, try_items_push_w1 try_items_push_w2
            try_items_push8 try_items_push16 try_items_push32 try_items_push64 try_items_push)
    };
    ($form:ident, [$($th:expr)?], run, $view:expr, $item:expr) => {
        push_item!(@go $form, [$($th)?], $view, $item, items_push_w1 items_push_w2
            items_push8 items_push16 items_push32 items_push64 items_push)
    };
}

/// The pop of [`ItemBuffer`] and [`LocalItemBuffer`], as `push_item!`; `$lift` makes the
/// sequence's result a `Result` (`Ok` for the retrying `run` forms, which cannot fail). The words or
/// bytes of an item are returned only when the pop committed: they are then a copy of an item
/// pushed as a valid `T`.
macro_rules! pop_item {
    (@go $form:ident, [$($th:expr)?], $view:expr, $lift:expr,
     $w1:ident $w2:ident $s8:ident $s16:ident $s32:ident $s64:ident $any:ident) => {{
        let c: &PerCpu<usize> = $view;
        match ItemBuffer::<T, N>::WORDS {
            1 => $lift(word_forms::$form::$w1($($th,)? c))
                .map(|(ok, w0)| ok.then(|| from_words::<T, 1>([w0]))),
            2 => $lift(word_forms::$form::$w2($($th,)? c))
                .map(|(ok, w0, w1)| ok.then(|| from_words::<T, 2>([w0, w1]))),
            _ => {
                let mut out = MaybeUninit::<T>::uninit();
                let dst: *mut u8 = out.as_mut_ptr().cast();
                let r = match size_of::<T>() {
                    8 => $lift(sized::$form::$s8($($th,)? c, dst)),
                    16 => $lift(sized::$form::$s16($($th,)? c, dst)),
                    32 => $lift(sized::$form::$s32($($th,)? c, dst)),
                    64 => $lift(sized::$form::$s64($($th,)? c, dst)),
                    _ => {
                        let mut st = Staging::zeroed();
                        let r = $lift(generic::$form::$any(
                            $($th,)? c, ItemBuffer::<T, N>::SLOT, st.ptr()));
                        if r == Ok(true) {
                            out.write(st.read::<T>());
                        }
                        r
                    }
                };
                r
                .map(|ok| ok.then(|| out.assume_init()))
            }
        }
    }};
    ($form:ident, [$($th:expr)?], try, $view:expr) => {
        pop_item!(@go $form, [$($th)?], $view, core::convert::identity, try_items_pop_w1
            try_items_pop_w2 try_items_pop8 try_items_pop16 try_items_pop32 try_items_pop64
            try_items_pop)
    };
    ($form:ident, [$($th:expr)?], run, $view:expr) => {
        pop_item!(@go $form, [$($th)?], $view, Ok::<_, core::convert::Infallible>, items_pop_w1 items_pop_w2
            items_pop8 items_pop16 items_pop32 items_pop64 items_pop)
        .unwrap_or_else(|never| match never {})
    };
}

/// Types an [`ItemBuffer`] may copy as raw bytes.
///
/// # Safety
/// Every byte of every value is initialised (no padding, no `MaybeUninit`), and the type holds no
/// pointers or references: fallback mode copies items as integer words, which must not read
/// uninitialised memory and would drop pointer provenance.
pub unsafe trait Plain: Copy + Send + 'static {}

macro_rules! plain {
    ($($t:ty),*) => {$(
        // SAFETY: primitive integers, floats, bool and char have no padding and no pointers.
        unsafe impl Plain for $t {}
    )*};
}
plain!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64, bool, char);
// SAFETY: arrays have no padding between elements, and the elements have none.
unsafe impl<T: Plain, const N: usize> Plain for [T; N] {}

/// A bounded per-CPU buffer of small `Copy` items, copied in and out with the DSL's `memcpy`
/// (word-wise: 8-byte moves and a 4/2/1-byte tail, never a byte loop). Each CPU holds up to `N`
/// items. Items of 8, 16, 32 and 64 bytes use sequences with the copy unrolled; other sizes (up
/// to 1024 bytes) use a length loop. Items of exactly one or two machine words (8 or 16 bytes on
/// 64-bit targets) skip the copy through memory: their words are operands of the section (in
/// registers), which on x86_64 halves the cost of a push/pop (see `docs/benchmarks/README.md`).
///
/// Push copies the item into the free slot speculatively and commits the new length; pop copies
/// the top item out speculatively (into the caller's stack, or registers) and commits the shorter
/// length. An aborted pop may have copied part of an item: the copy is only read when the pop
/// committed.
///
/// ```
/// use rseq_dsl::percpu::ItemBuffer;
///
/// let b: ItemBuffer<[u64; 2], 32> = ItemBuffer::new();
/// b.push([1, 2]).unwrap();
/// let got = b.pop().or_else(|| {
///     (0..rseq_dsl::possible_cpus()).find_map(|cpu| b.drain(cpu).unwrap().pop())
/// });
/// assert_eq!(got, Some([1, 2]));
/// ```
pub struct ItemBuffer<T: Plain, const N: usize> {
    /// Every CPU's buffer header, held inline (see `RawAlloc::view`).
    view: ManuallyDrop<PerCpu<usize>>,
    /// Keeps the pool (and so `view`'s memory) alive.
    raw: RawAlloc,
    /// Serializes drains.
    remote: RemoteLock,
    _marker: PhantomData<T>,
}

impl<T: Plain, const N: usize> core::fmt::Debug for ItemBuffer<T, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ItemBuffer")
            .field("capacity", &N)
            .field("lens", &self.lens())
            .finish_non_exhaustive()
    }
}

impl<T: Plain, const N: usize> Default for ItemBuffer<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Plain, const N: usize> ItemBuffer<T, N> {
    /// Bytes of one item slot: the item size rounded up to a word.
    const SLOT: usize = size_of::<T>().next_multiple_of(8);
    /// Byte limit of `top`.
    const LIM: usize = Self::SLOT * N;
    /// 1 or 2 when an item is exactly that many machine words and fills its slot (the word
    /// forms apply), else 0.
    const WORDS: usize = if size_of::<T>() == Self::SLOT && Self::SLOT == W1 {
        1
    } else if size_of::<T>() == Self::SLOT && Self::SLOT == W2 {
        2
    } else {
        0
    };

    fn layout() -> Layout {
        assert!(
            size_of::<T>() > 0 && size_of::<T>() <= 1024,
            "ItemBuffer items must be 1..=1024 bytes (the DSL's memcpy cap)"
        );
        assert!(
            N >= 1 && 16 + Self::LIM <= POOL_STRIDE,
            "ItemBuffer: N items must fit one pool chunk ({POOL_STRIDE} bytes)"
        );
        Layout::from_size_align(16 + Self::LIM, 8).expect("valid layout")
    }

    /// An empty buffer in the shared [`Pool`].
    ///
    /// # Panics
    /// When `T` is zero-sized or larger than 1024 bytes, or `N` items do not fit a pool chunk.
    pub fn new() -> Self {
        Self::from_raw(alloc_shared(Self::layout()).expect("at most one chunk"))
    }

    /// As [`new`](ItemBuffer::new), in `pool`; `None` when it has no room.
    ///
    /// # Panics
    /// As [`new`](ItemBuffer::new).
    pub fn new_in(pool: &Pool) -> Option<Self> {
        Some(Self::from_raw(pool.alloc_raw(Self::layout())?))
    }

    fn from_raw(raw: RawAlloc) -> Self {
        for cpu in 0..raw.cpus() {
            // SAFETY: the 8-aligned `lim` word of CPU `cpu`'s fresh instance (not shared yet).
            unsafe { raw.ptr(cpu).add(8).cast::<usize>().write(Self::LIM) };
        }
        // SAFETY: an 8-aligned allocation (16-byte header, then the slots), zeroed but for `lim`;
        // the view lives in the same struct.
        let view = unsafe { raw.view::<usize>() };
        ItemBuffer {
            view,
            raw,
            remote: RemoteLock::new(),
            _marker: PhantomData,
        }
    }

    /// Items on each CPU's buffer now (a snapshot), in CPU order.
    pub fn lens(&self) -> Vec<usize> {
        (0..self.raw.cpus())
            .map(|c| top(&self.raw, c) / Self::SLOT)
            .collect()
    }

    /// One attempt to push a copy of `item`: `Ok(false)` when the calling CPU's buffer is full,
    /// `Err(Error::Aborted)` when the section was restarted (nothing happened).
    ///
    /// # Errors
    /// See above, and those of a generated `try_` function.
    #[inline]
    pub fn try_push_once(&self, item: T) -> Result<bool, Error> {
        // SAFETY: `view` is this buffer's (see `push_item!`).
        unsafe { push_item!(plain, [], try, &self.view, item) }
    }

    /// Pushes a copy of `item` on the calling CPU's buffer.
    ///
    /// # Errors
    /// The item, when that buffer is full.
    #[inline]
    pub fn push(&self, item: T) -> Result<(), T> {
        // SAFETY: as in `try_push_once`.
        if unsafe { push_item!(plain, [], run, &self.view, item) } {
            Ok(())
        } else {
            Err(item)
        }
    }

    /// One attempt to pop a copy of the calling CPU's top item.
    ///
    /// # Errors
    /// `Error::Aborted` when the section was restarted (nothing happened), and those of a generated
    /// `try_` function.
    #[inline]
    pub fn try_pop_once(&self) -> Result<Option<T>, Error> {
        // SAFETY: `view` is this buffer's (see `pop_item!`).
        unsafe { pop_item!(plain, [], try, &self.view) }
    }

    /// Pops a copy of the calling CPU's top item; `None` when its buffer is empty.
    #[inline]
    pub fn pop(&self) -> Option<T> {
        // SAFETY: as in `try_pop_once`.
        unsafe { pop_item!(plain, [], run, &self.view) }
    }

    /// A handle for pushing and popping from the calling thread in a loop: it holds the thread's
    /// token and a copy of the buffer's headers' view, so that, kept in a local, each operation is
    /// the section alone (as [`Counter::local`](super::Counter::local)).
    ///
    /// ```
    /// use rseq_dsl::{percpu::ItemBuffer, this_thread};
    ///
    /// let b: ItemBuffer<[u64; 2], 8> = ItemBuffer::new();
    /// this_thread(|t| {
    ///     let local = b.local(t);
    ///     for i in 0..1000 {
    ///         let _ = local.push([i, i]);
    ///         let _ = local.pop();
    ///     }
    /// })
    /// .expect("this thread can run sequences");
    /// ```
    #[inline]
    pub fn local<'b, 't>(&'b self, thread: ThisThread<'t>) -> LocalItemBuffer<'b, 't, T, N> {
        LocalItemBuffer {
            // SAFETY: the same allocation as `self.view`, and the copy does not outlive `'b`,
            // during which `self.raw` keeps the pool alive.
            view: unsafe { self.raw.view::<usize>() },
            thread,
            _buffer: PhantomData,
        }
    }

    /// Copies out CPU `cpu`'s items (bottom first) and empties its buffer, from any thread, while
    /// sections may run on that CPU (as [`Buffer::drain`]).
    ///
    /// # Errors
    /// As [`Stack::drain`](super::Stack::drain).
    pub fn drain(&self, cpu: usize) -> Result<Vec<T>, RemoteError> {
        let mut out = Vec::new();
        drain_array(&self.raw, &self.remote, cpu, 16, |items, bytes| {
            for k in 0..bytes / Self::SLOT {
                // SAFETY: slot k below `top` holds a committed copy of a valid T and no section
                // touches the buffer (see `drain_array`); slots are 8-aligned, T may need more.
                out.push(unsafe { items.add(k * Self::SLOT).cast::<T>().read_unaligned() });
            }
        })?;
        Ok(out)
    }

    /// Every item, in CPU order then bottom to top (`&mut self`: nothing runs concurrently).
    pub fn into_items(mut self) -> Vec<T> {
        let this = &mut self;
        (0..this.raw.cpus())
            .flat_map(|cpu| {
                let n = top(&this.raw, cpu) / Self::SLOT;
                (0..n).map(move |k| (cpu, k))
            })
            .map(|(cpu, k)| {
                // SAFETY: slot k below top holds a committed copy of a valid T (8-aligned slot
                // start; read unaligned anyway since T may need more).
                unsafe {
                    this.raw
                        .ptr(cpu)
                        .add(16 + k * Self::SLOT)
                        .cast::<T>()
                        .read_unaligned()
                }
            })
            .collect()
    }
}

/// [`ItemBuffer::push`] and [`ItemBuffer::pop`] for one thread and one buffer, with the lookups
/// hoisted: see [`ItemBuffer::local`].
pub struct LocalItemBuffer<'b, 't, T: Plain, const N: usize> {
    /// The headers' view, copied: a local `LocalItemBuffer` keeps these words in registers.
    view: ManuallyDrop<PerCpu<usize>>,
    thread: ThisThread<'t>,
    _buffer: PhantomData<&'b ItemBuffer<T, N>>,
}

impl<T: Plain, const N: usize> LocalItemBuffer<'_, '_, T, N> {
    /// One attempt, as [`ItemBuffer::try_push_once`].
    ///
    /// # Errors
    /// As [`ItemBuffer::try_push_once`].
    #[inline]
    pub fn try_push_once(&self, item: T) -> Result<bool, Error> {
        // SAFETY: the view is the buffer's (see `push_item!`).
        unsafe { push_item!(with_thread, [self.thread], try, &self.view, item) }
    }

    /// As [`ItemBuffer::push`].
    ///
    /// # Errors
    /// The item, when the calling CPU's buffer is full.
    #[inline]
    pub fn push(&self, item: T) -> Result<(), T> {
        // SAFETY: as in `try_push_once`.
        if unsafe { push_item!(with_thread, [self.thread], run, &self.view, item) } {
            Ok(())
        } else {
            Err(item)
        }
    }

    /// One attempt, as [`ItemBuffer::try_pop_once`].
    ///
    /// # Errors
    /// As [`ItemBuffer::try_pop_once`].
    #[inline]
    pub fn try_pop_once(&self) -> Result<Option<T>, Error> {
        // SAFETY: the view is the buffer's (see `pop_item!`).
        unsafe { pop_item!(with_thread, [self.thread], try, &self.view) }
    }

    /// As [`ItemBuffer::pop`].
    #[inline]
    pub fn pop(&self) -> Option<T> {
        // SAFETY: as in `try_pop_once`.
        unsafe { pop_item!(with_thread, [self.thread], run, &self.view) }
    }
}

impl<T: Plain, const N: usize> core::fmt::Debug for LocalItemBuffer<'_, '_, T, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LocalItemBuffer")
            .field("thread", &self.thread)
            .finish_non_exhaustive()
    }
}
