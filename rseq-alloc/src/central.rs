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
//! word. Spans are [`SPAN`] bytes, page-aligned
//! (`mmap`), never unmapped: memory returns to the lists, not to the kernel (`docs/ALLOCATOR.md`,
//! limits). The locks are held for a few pointer operations only and never across a call that could
//! allocate; `fork` takes them all first (`pthread_atfork`), so a child finds them free.

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
                crate::asan::unpoison(b, 8);
                // SAFETY: `b` is a free block of this class (at least 16 bytes, aligned), linked
                // through its first word by `free_batch`.
                l.head = unsafe { b.cast::<*mut u8>().read() };
                crate::asan::poison(b, 8);
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
            crate::asan::unpoison(b, 8);
            // SAFETY: the caller gives back a free block of this class: its first word is ours.
            unsafe { b.cast::<*mut u8>().write(l.head) };
            crate::asan::poison(b, 8);
            l.head = b;
            l.free += 1;
        }
    });
}

/// Maps a new span as the list's carving area.
fn map_span(l: &mut List, size: usize) -> bool {
    // SAFETY: an anonymous private mapping has no preconditions; the result is checked.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            SPAN,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return false;
    }
    MAPPED.fetch_add(SPAN, Ordering::Relaxed);
    l.next = p.cast();
    // SAFETY: the mapping is SPAN bytes; the end is one past it. The carving stops at the last
    // whole block (SPAN is not a multiple of every size: the remainder is left unused).
    l.end = unsafe { l.next.add(SPAN - SPAN % size) };
    true
}

// fork: take every lock before, release in both processes after, so that no lock is held in the
// child by a thread that does not exist there.
extern "C" fn prepare() {
    for c in &CLASS {
        c.lock.lock();
    }
}

extern "C" fn release() {
    for c in CLASS.iter().rev() {
        c.lock.unlock();
    }
}

/// Registers the fork handlers (once).
pub fn install_fork_handlers() {
    static DONE: AtomicBool = AtomicBool::new(false);
    if !DONE.swap(true, Ordering::AcqRel) {
        // SAFETY: the handlers only touch the static locks.
        unsafe { libc::pthread_atfork(Some(prepare), Some(release), Some(release)) };
    }
}
