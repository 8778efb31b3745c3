//! The central layer: one free list per class behind a spin lock, fed by spans mapped from the
//! kernel. The per-CPU caches refill from it and spill to it in batches; it also serves every
//! request made while this thread is already inside the allocator (the runtime's own first-use
//! allocations), so the allocator never re-enters itself.
//!
//! Free blocks are kept first in a per-class array of pointers (the transfer array, [`TRANSFER`]
//! entries): a batch a cache spills is copied in, a batch another cache refills with is copied out,
//! and neither touches the blocks themselves. That matters when blocks move between CPUs (one
//! thread allocates, another frees): a linked list would read or write every block's first word,
//! a cache miss each on the other CPU. Beyond the array, free blocks are linked through their first
//! word. Spans are [`SPAN`] bytes, aligned to [`SPAN`] (so a block's span is its address rounded
//! down), and carved at multiples of the class size; the first block of each span is its header
//! (the link to the class's next span and a count used by [`release`]), never handed out.
//! [`release`] unmaps the spans whose every block is in the central lists; nothing else returns
//! memory to the kernel. The locks are held for a few pointer operations only (a whole pass over
//! the class in `release`) and never across a call that could allocate; `fork` takes them all
//! first (`pthread_atfork`), so a child finds them free.

use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::classes::{CLASSES, SIZES};

/// Bytes mapped at a time for one class.
pub const SPAN: usize = 64 * 1024;

/// Free blocks a class's transfer array holds (then its linked list takes the rest).
pub const TRANSFER: usize = 512;

/// A spin lock that yields the CPU while it waits (held for a few instructions: no thread sleeps
/// holding it, but the holder may be preempted).
struct SpinLock {
    held: AtomicBool,
}

impl SpinLock {
    const fn new() -> Self {
        SpinLock {
            held: AtomicBool::new(false),
        }
    }

    fn lock(&self) {
        let mut spins = 0u32;
        while self
            .held
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins < 64 {
                core::hint::spin_loop();
            } else {
                // SAFETY: sched_yield has no preconditions.
                unsafe { libc::sched_yield() };
            }
        }
    }

    fn unlock(&self) {
        self.held.store(false, Ordering::Release);
    }
}

/// One class's free blocks (the transfer array, then a linked list) and the unused rest of its
/// current span.
struct List {
    /// `array[..count]` are free blocks, the most recently freed last.
    array: [*mut u8; TRANSFER],
    count: usize,
    /// Linked free blocks, and how many (not counting the array's).
    head: *mut u8,
    free: usize,
    /// Next uncarved block of the current span, and the span's end.
    next: *mut u8,
    end: *mut u8,
    /// The class's spans, linked through their headers.
    spans: *mut Header,
}

/// The first block of a span (every class size holds its 16 bytes).
struct Header {
    next: *mut Header,
    /// Free blocks of the span counted by `release`; 0 outside it.
    free: usize,
}

struct Class {
    lock: SpinLock,
    list: UnsafeCell<List>,
}

// SAFETY: `list` is only accessed with `lock` held (`with_list`).
unsafe impl Sync for Class {}

impl Class {
    const fn new() -> Self {
        Class {
            lock: SpinLock::new(),
            list: UnsafeCell::new(List {
                array: [ptr::null_mut(); TRANSFER],
                count: 0,
                head: ptr::null_mut(),
                free: 0,
                next: ptr::null_mut(),
                end: ptr::null_mut(),
                spans: ptr::null_mut(),
            }),
        }
    }

    fn with_list<R>(&self, f: impl FnOnce(&mut List) -> R) -> R {
        self.lock.lock();
        // SAFETY: the lock is held: no other reference to the list exists until it is released.
        let r = f(unsafe { &mut *self.list.get() });
        self.lock.unlock();
        r
    }
}

static CLASS: [Class; CLASSES] = [const { Class::new() }; CLASSES];
static MAPPED: AtomicUsize = AtomicUsize::new(0);

/// Bytes mapped for small objects so far.
pub fn mapped_bytes() -> usize {
    MAPPED.load(Ordering::Relaxed)
}

/// Bytes in the central free lists (a snapshot).
pub fn free_bytes() -> usize {
    (0..CLASSES)
        .map(|c| CLASS[c].with_list(|l| l.free + l.count) * SIZES[c])
        .sum()
}

/// Takes up to `out.len()` blocks of class `c`; returns how many (0 only when the kernel refused
/// memory).
pub fn alloc_batch(c: usize, out: &mut [*mut u8]) -> usize {
    let size = SIZES[c];
    CLASS[c].with_list(|l| {
        // The most recently freed first, without touching them.
        let n = out.len().min(l.count);
        out[..n].copy_from_slice(&l.array[l.count - n..l.count]);
        l.count -= n;
        let mut n = n;
        while n < out.len() {
            if !l.head.is_null() {
                let b = l.head;
                l.head = next_of(b);
                l.free -= 1;
                out[n] = b;
                n += 1;
            } else if l.next < l.end {
                out[n] = l.next;
                // SAFETY: `next + size <= end`: spans are multiples of every class size.
                l.next = unsafe { l.next.add(size) };
                n += 1;
            } else if !map_span(l, size) {
                break;
            }
        }
        n
    })
}

/// Returns blocks of class `c` to its free list.
///
/// # Safety
/// Every block is a block of class `c` handed out by this allocator and no longer in use.
pub unsafe fn free_batch(c: usize, blocks: &[*mut u8]) {
    CLASS[c].with_list(|l| {
        let n = blocks.len().min(TRANSFER - l.count);
        l.array[l.count..l.count + n].copy_from_slice(&blocks[..n]);
        l.count += n;
        for &b in &blocks[n..] {
            set_next(b, l.head);
            l.head = b;
            l.free += 1;
        }
    });
}

/// Maps `SPAN` bytes aligned to `SPAN` (twice as much, then the excess is unmapped); null if the
/// kernel refuses.
fn map_aligned() -> *mut u8 {
    // SAFETY: an anonymous private mapping has no preconditions; the result is checked.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            2 * SPAN,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return ptr::null_mut();
    }
    let p = p.cast::<u8>();
    let head = p.align_offset(SPAN);
    // SAFETY: `head < SPAN`, so both ranges lie inside the 2 * SPAN mapping; unmapping the parts
    // before and after the aligned span leaves exactly that span mapped.
    unsafe {
        if head > 0 {
            libc::munmap(p.cast(), head);
        }
        libc::munmap(p.add(head + SPAN).cast(), SPAN - head);
        p.add(head)
    }
}

/// Maps a new span as the list's carving area (its first block becomes its header).
fn map_span(l: &mut List, size: usize) -> bool {
    let p = map_aligned();
    if p.is_null() {
        return false;
    }
    MAPPED.fetch_add(SPAN, Ordering::Relaxed);
    let header = p.cast::<Header>();
    // SAFETY: the span is fresh, SPAN-aligned, and its first block (at least 16 bytes) is the
    // header, never handed out.
    unsafe {
        header.write(Header {
            next: l.spans,
            free: 0,
        })
    };
    l.spans = header;
    // SAFETY: the first block is the header; the carving stops at the last whole block (SPAN is
    // not a multiple of every size: the remainder is left unused), one past it is the end.
    unsafe {
        l.next = p.add(size);
        l.end = p.add(SPAN - SPAN % size);
    }
    true
}

/// The span header of a block.
fn header_of(b: *mut u8) -> *mut Header {
    b.map_addr(|a| a & !(SPAN - 1)).cast()
}

/// Unmaps every span of every class whose blocks are all in the central lists (or not carved
/// yet); returns the bytes unmapped. The per-CPU caches keep theirs: `trim_all` first moves them
/// here. Takes each class's lock for one pass over its free blocks.
pub fn release() -> usize {
    (0..CLASSES)
        .map(|c| CLASS[c].with_list(|l| release_class(l, SIZES[c])))
        .sum()
}

fn release_class(l: &mut List, size: usize) -> usize {
    let per_span = SPAN / size - 1;
    // 1. Count each span's free blocks in its header.
    let count = |b: *mut u8| {
        // SAFETY: `b` is a free block of this class, inside a live span whose header is ours.
        unsafe { (*header_of(b)).free += 1 };
    };
    l.array[..l.count].iter().copied().for_each(count);
    let mut b = l.head;
    while !b.is_null() {
        count(b);
        b = next_of(b);
    }
    if !l.next.is_null() && l.next < l.end {
        // The uncarved rest of the current span counts as free.
        let rest = (l.end as usize - l.next as usize) / size;
        // SAFETY: the current span is live; its header is ours.
        unsafe { (*header_of(l.next)).free += rest };
    }
    let empty = |b: *mut u8| {
        // SAFETY: `b` is a free block of a live span (the array, the list or the carving area),
        // whose header is ours.
        unsafe { (*header_of(b)).free == per_span }
    };
    // 2. Drop the blocks of wholly free spans from the array and the list.
    let mut kept = 0;
    for i in 0..l.count {
        if !empty(l.array[i]) {
            l.array[kept] = l.array[i];
            kept += 1;
        }
    }
    l.count = kept;
    let mut head = ptr::null_mut();
    let mut free = 0;
    let mut b = l.head;
    while !b.is_null() {
        let next = next_of(b);
        if !empty(b) {
            set_next(b, head);
            head = b;
            free += 1;
        }
        b = next;
    }
    l.head = head;
    l.free = free;
    if !l.next.is_null() && l.next < l.end && empty(l.next) {
        l.next = ptr::null_mut();
        l.end = ptr::null_mut();
    }
    // 3. Unmap them, keep the others (with their counts reset).
    let mut released = 0;
    let mut spans = ptr::null_mut();
    let mut h = l.spans;
    while !h.is_null() {
        // SAFETY: `h` is a live span's header.
        let (next, all_free) = unsafe { ((*h).next, (*h).free == per_span) };
        if all_free {
            // SAFETY: no free list, array or carving area refers to the span any more, and no
            // block of it is in use or cached (all were counted free here).
            unsafe { libc::munmap(h.cast(), SPAN) };
            released += SPAN;
        } else {
            // SAFETY: as above.
            unsafe {
                (*h).free = 0;
                (*h).next = spans;
            }
            spans = h;
        }
        h = next;
    }
    l.spans = spans;
    MAPPED.fetch_sub(released, Ordering::Relaxed);
    released
}

/// The link word of a linked free block.
fn next_of(b: *mut u8) -> *mut u8 {
    crate::asan::unpoison(b, 8);
    // SAFETY: `b` is a linked free block of its class: its first word is the link.
    let n = unsafe { b.cast::<*mut u8>().read() };
    crate::asan::poison(b, 8);
    n
}

/// Sets the link word of a free block.
fn set_next(b: *mut u8, next: *mut u8) {
    crate::asan::unpoison(b, 8);
    // SAFETY: `b` is a free block of its class: its first word is the allocator's.
    unsafe { b.cast::<*mut u8>().write(next) };
    crate::asan::poison(b, 8);
}

// fork: take every lock before, release in both processes after, so that no lock is held in the
// child by a thread that does not exist there.
extern "C" fn prepare() {
    for c in &CLASS {
        c.lock.lock();
    }
}

extern "C" fn unlock_all() {
    for c in CLASS.iter().rev() {
        c.lock.unlock();
    }
}

/// Registers the fork handlers (once).
pub fn install_fork_handlers() {
    static DONE: AtomicBool = AtomicBool::new(false);
    if !DONE.swap(true, Ordering::AcqRel) {
        // SAFETY: the handlers only touch the static locks.
        unsafe { libc::pthread_atfork(Some(prepare), Some(unlock_all), Some(unlock_all)) };
    }
}
