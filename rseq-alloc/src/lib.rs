//! A per-CPU caching allocator ([`GlobalAlloc`]) whose fast path is one restartable sequence.
//!
//! ```no_run
//! #[global_allocator]
//! static ALLOC: rseq_alloc::RseqAlloc = rseq_alloc::RseqAlloc;
//! ```
//!
//! Small requests (up to [`MAX_SMALL`] bytes, alignment up to 4096) are served from the calling
//! CPU's cache of free blocks of the request's size class: a bounded array stack per class and CPU
//! (`cache_pop` / `cache_push`, two `rseq!` sequences: load the top, compare, commit the new top).
//! An empty cache refills from the central free list of its class in a batch; a full one spills
//! half of itself to it. The central lists take spans from `mmap`. Larger requests go to the
//! system allocator (`malloc`, `posix_memalign`, `realloc`, `free`).
//!
//! Memory: a CPU's caches hold at most [`per_cpu_bound`] bytes, whatever the number of threads; a
//! block freed on another CPU than the one it came from simply joins that CPU's cache. The central
//! lists keep what the caches give back; [`trim`] and [`trim_all`] move cached blocks back to them,
//! and [`release`] then unmaps the spans that are wholly free. `docs/ALLOCATOR.md` explains the design and its limits.
//!
//! Without rseq (old kernels, seccomp, qemu-user, `RSEQ_DSL_FALLBACK=1`) the same sequences run
//! as their fallback bodies under the runtime's per-CPU locks.
//!
//! Re-entry: the runtime allocates on a thread's first sequence (registration) and on the first
//! fallback use (its lock table). The fast path runs only when the thread's area is registered and
//! known (`rseq_dsl::this_thread_if_registered`: no registration, no allocation): one sequence, no
//! guard. Everything else takes the slow path, which marks the thread as inside the allocator; a
//! request made while the thread is inside goes straight to the central lists, so the allocator
//! never re-enters itself.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;
use core::mem::ManuallyDrop;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicU8, Ordering};

use rseq_dsl::{rseq, this_thread, this_thread_if_registered, Error, PerCpu, ThisThread};

mod central;
mod classes;

pub use classes::{capacity, class_of, per_cpu_bound, CLASSES, MAX_SMALL, SIZES};

rseq! {
    /// Pushes `block` on the calling CPU's cache of one class; false when it holds `lim` bytes of
    /// pointers already.
    ///
    /// `thread` is the calling thread's token: the fast paths take it from
    /// `this_thread_if_registered`, which never registers nor allocates.
    ///
    /// # Safety
    /// `cache` views a class cache: a `top` word (bytes in use) followed by `lim` bytes of slots.
    #[inline]
    unsafe fn cache_push(
        thread: ThisThread<'_>,
        cache: &PerCpu<usize>,
        lim: usize,
        block: usize,
    ) -> bool {
        let b = cache.current();
        let t = load::<usize>(b);
        if t >= lim { return false; }
        store::<usize>(b + t + 8, block);
        commit store::<usize>(b, t + 8);
        true
    }

    /// Pops the top block of the calling CPU's cache of one class; 0 when it is empty.
    ///
    /// # Safety
    /// As for `cache_push`.
    #[inline]
    unsafe fn cache_pop(thread: ThisThread<'_>, cache: &PerCpu<usize>) -> usize {
        let b = cache.current();
        let t = load::<usize>(b);
        if t == 0 { return 0; }
        let block = load::<usize>(b + t);
        commit store::<usize>(b, t - 8);
        block
    }
}

// A class cache is a `top` word then `capacity(c)` pointer slots, each 8 bytes on every target
// (the sequences step `top` by 8 and address `b + t`, `b + t + 8`): on 32-bit targets a pointer
// uses the low-address half of its 8 bytes. The slot is an array of `u64` so that its size and
// the offsets below are in 8-byte units everywhere.

/// Offset of each class's cache in a CPU's slot, and the slot's size, in 8-byte units.
const OFFSETS: [usize; CLASSES + 1] = {
    let mut o = [0; CLASSES + 1];
    let mut c = 0;
    while c < CLASSES {
        o[c + 1] = o[c] + 1 + capacity(c);
        c += 1;
    }
    o
};
const WORDS: usize = OFFSETS[CLASSES];

/// `cache_push`'s `lim` of each class: its capacity in bytes of slots (a table: `capacity` divides).
const LIMITS: [usize; CLASSES] = {
    let mut l = [0; CLASSES];
    let mut c = 0;
    while c < CLASSES {
        l[c] = capacity(c) * 8;
        c += 1;
    }
    l
};

/// The per-CPU caches: one slot of [`WORDS`] 8-byte units per CPU, and a view of each class's part.
struct Caches {
    _all: PerCpu<[u64; WORDS]>,
    views: [ManuallyDrop<PerCpu<usize>>; CLASSES],
}

const UNINIT: u8 = 0;
const BUSY: u8 = 1;
const READY: u8 = 2;
static STATE: AtomicU8 = AtomicU8::new(UNINIT);
static CACHES: AtomicPtr<Caches> = AtomicPtr::new(ptr::null_mut());
static ABORTS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Whether this thread is inside the allocator (no destructor: usable during thread exit).
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// The caches if built.
#[inline]
fn built() -> Option<&'static Caches> {
    // SAFETY: null, or set once by `init` from a leaked box, never freed.
    unsafe { CACHES.load(Ordering::Acquire).as_ref() }
}

/// The caches once built; builds them on first use (inside the allocator, so the runtime's
/// allocations on the way go to the central lists).
#[inline]
fn caches() -> Option<&'static Caches> {
    built().or_else(init)
}

impl Caches {
    /// The cache of class `c`.
    #[inline]
    fn class(&self, c: usize) -> &PerCpu<usize> {
        // A class comes from `class_of` (below `CLASSES`); the mask lets the compiler drop the
        // bounds check on the fast path without `unsafe` (CLASSES is not a power of two: `min`).
        &self.views[c.min(CLASSES - 1)]
    }
}

#[cold]
fn init() -> Option<&'static Caches> {
    if STATE
        .compare_exchange(UNINIT, BUSY, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        // Another thread is building them (its requests meanwhile use the central lists), or they
        // are ready.
        let p = CACHES.load(Ordering::Acquire);
        // SAFETY: as in `caches`.
        return (!p.is_null()).then(|| unsafe { &*p });
    }
    central::install_fork_handlers();
    let all = PerCpu::new([0u64; WORDS]);
    // SAFETY: each view lies inside a slot (`OFFSETS` within `WORDS` 8-byte units), 8-aligned, over
    // zero-initialised words (a `top` of 0: empty); `all` lives as long as the views (leaked below).
    let views = core::array::from_fn(|c| unsafe { all.__view::<usize>(OFFSETS[c] * 8) });
    let caches = Box::leak(Box::new(Caches { _all: all, views }));
    CACHES.store(caches, Ordering::Release);
    STATE.store(READY, Ordering::Release);
    Some(caches)
}

/// Runs `f` with this thread marked inside the allocator; `None` if it already was (or is exiting
/// past its thread-locals), in which case the caller uses the central lists.
#[inline]
fn enter<R>(f: impl FnOnce() -> R) -> Option<R> {
    INSIDE
        .try_with(|inside| {
            if inside.replace(true) {
                return None;
            }
            let r = f();
            inside.set(false);
            Some(r)
        })
        .ok()
        .flatten()
}

/// One block from the calling CPU's cache of one class (null when empty); `None` when the
/// sequence cannot run on this thread (`rseq_dsl::Error` other than an abort): the caller uses
/// the central list.
#[inline]
fn pop(t: ThisThread<'_>, cache: &PerCpu<usize>) -> Option<*mut u8> {
    loop {
        // SAFETY: `cache` is a class view of the caches.
        match unsafe { try_cache_pop(t, cache) } {
            Ok(b) => return Some(b as *mut u8),
            Err(Error::Aborted) => {
                ABORTS.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => return None,
        }
    }
}

/// Pushes `b` on the calling CPU's cache of class `c`; false when full or unusable.
#[inline]
fn push(t: ThisThread<'_>, cache: &PerCpu<usize>, c: usize, b: *mut u8) -> bool {
    let lim = LIMITS[c.min(CLASSES - 1)];
    loop {
        // SAFETY: as in `pop`; `b` is a free block of class `c`.
        match unsafe { try_cache_push(t, cache, lim, b as usize) } {
            Ok(done) => return done,
            Err(Error::Aborted) => {
                ABORTS.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => return false,
        }
    }
}

fn central_one(c: usize) -> *mut u8 {
    let mut b = [ptr::null_mut(); 1];
    if central::alloc_batch(c, &mut b) == 1 {
        b[0]
    } else {
        ptr::null_mut()
    }
}

/// A block of class `c`: the CPU's cache, else a batch from the central list (the rest refills
/// the cache).
///
/// The fast path runs only on a thread whose rseq area is registered and known: then the sequence
/// neither registers nor allocates, and cannot re-enter the allocator. Everything else (the
/// thread's first request, fallback mode, an empty cache) takes the slow path.
#[inline]
fn alloc_small(c: usize) -> *mut u8 {
    if let Some(caches) = built() {
        let got = this_thread_if_registered(|t| pop(t, caches.class(c)));
        if let Some(Some(b)) = got {
            if !b.is_null() {
                return b;
            }
        }
    }
    alloc_small_slow(c)
}

/// `alloc_small` with the re-entry guard: the thread may register (and the runtime allocate) on
/// the way, or run the sequences under the fallback locks (whose table is allocated on first use).
#[cold]
#[inline(never)]
fn alloc_small_slow(c: usize) -> *mut u8 {
    let got = enter(|| {
        let cache = caches()?.class(c);
        this_thread(|t| {
            let b = pop(t, cache)?;
            if !b.is_null() {
                return Some(b);
            }
            Some(refill(t, cache, c))
        })
        .ok()
        .flatten()
    });
    match got {
        Some(Some(b)) => b,
        _ => central_one(c),
    }
}

fn refill(t: ThisThread<'_>, cache: &PerCpu<usize>, c: usize) -> *mut u8 {
    let mut batch = [ptr::null_mut(); 33];
    let n = central::alloc_batch(c, &mut batch[..classes::batch(c) + 1]);
    if n == 0 {
        return ptr::null_mut();
    }
    let mut back = [ptr::null_mut(); 32];
    let mut k = 0;
    for &b in &batch[1..n] {
        if !push(t, cache, c, b) {
            back[k] = b;
            k += 1;
        }
    }
    // SAFETY: blocks of class c just taken from the central list, unused.
    unsafe { central::free_batch(c, &back[..k]) };
    batch[0]
}

/// Frees a block of class `c`: the CPU's cache, or (full) the central list with half the cache.
///
/// # Safety
/// `b` is a block of class `c` from this allocator, no longer in use.
#[inline]
unsafe fn free_small(c: usize, b: *mut u8) {
    // The fast path as in `alloc_small`.
    if let Some(caches) = built() {
        if this_thread_if_registered(|t| push(t, caches.class(c), c, b)) == Some(true) {
            return;
        }
    }
    // SAFETY: the caller's contract.
    unsafe { free_small_slow(c, b) }
}

/// `free_small` with the re-entry guard (as `alloc_small_slow`); a full cache spills half of
/// itself with `b`.
///
/// # Safety
/// As for `free_small`.
#[cold]
#[inline(never)]
unsafe fn free_small_slow(c: usize, b: *mut u8) {
    let done = enter(|| {
        let cache = caches()?.class(c);
        this_thread(|t| push(t, cache, c, b) || spill(t, cache, c, b)).ok()
    });
    if done != Some(Some(true)) {
        // SAFETY: the caller's block, freed.
        unsafe { central::free_batch(c, &[b]) };
    }
}

fn spill(t: ThisThread<'_>, cache: &PerCpu<usize>, c: usize, b: *mut u8) -> bool {
    let mut out = [ptr::null_mut(); 33];
    out[0] = b;
    let mut n = 1;
    while n <= classes::batch(c) {
        let p = pop(t, cache).unwrap_or(ptr::null_mut());
        if p.is_null() {
            break;
        }
        out[n] = p;
        n += 1;
    }
    // SAFETY: the caller's freed block and blocks taken from a cache: all free, of class c.
    unsafe { central::free_batch(c, &out[..n]) };
    true
}

/// The allocator. Zero-sized: its state is global (one set of caches per process).
#[derive(Clone, Copy, Debug, Default)]
pub struct RseqAlloc;

// SAFETY: small blocks are `SIZES[c]` bytes (>= the request), aligned to the request's alignment
// (`class_of`: a multiple of it, carved at multiples of the size from page-aligned spans); each
// block is handed out once until freed (the caches and lists hold only free blocks). Large requests
// are the system allocator's. `dealloc` receives the layout of `alloc`, so it finds the same class.
unsafe impl GlobalAlloc for RseqAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class_of(layout.size(), layout.align()) {
            Some(c) => {
                let b = alloc_small(c);
                if !b.is_null() {
                    asan::unpoison(b, SIZES[c]);
                    debug::check(c, b);
                    asan::hand_out(b, SIZES[c], layout.size());
                }
                b
            }
            None => large_alloc(layout),
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match class_of(layout.size(), layout.align()) {
            Some(c) => {
                asan::unpoison(ptr, SIZES[c]);
                debug::poison(c, ptr);
                asan::poison(ptr, SIZES[c]);
                // SAFETY: the caller frees a block `alloc` gave for this layout.
                unsafe { free_small(c, ptr) }
            }
            // SAFETY: as above, from the system allocator.
            None => unsafe { libc::free(ptr.cast()) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = class_of(layout.size(), layout.align());
        if let Some(c) = old.filter(|&c| Some(c) == class_of(new_size, layout.align())) {
            asan::hand_out(ptr, SIZES[c], new_size);
            return ptr;
        }
        if old.is_none() && layout.align() <= MALLOC_ALIGN && new_size > MAX_SMALL {
            // SAFETY: a block of the system allocator's `malloc`, as `large_alloc` made it.
            return unsafe { libc::realloc(ptr.cast(), new_size) }.cast();
        }
        // SAFETY: the caller's contract for `realloc`: `new_size` with `layout.align()` is a valid
        // layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a valid non-zero layout (the caller's contract).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks hold at least the smaller size; they are distinct allocations.
            unsafe { ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            // SAFETY: the old block, no longer used.
            unsafe { self.dealloc(ptr, layout) };
        }
        new
    }
}

/// The alignment glibc's `malloc` guarantees (`2 * sizeof(size_t)`).
const MALLOC_ALIGN: usize = 2 * core::mem::size_of::<usize>();

fn large_alloc(layout: Layout) -> *mut u8 {
    if layout.align() <= MALLOC_ALIGN {
        // SAFETY: malloc has no preconditions.
        return unsafe { libc::malloc(layout.size()) }.cast();
    }
    let mut p = ptr::null_mut();
    let align = layout.align().max(core::mem::size_of::<usize>());
    // SAFETY: `align` is a power of two and a multiple of the pointer size, as required.
    if unsafe { libc::posix_memalign(&mut p, align, layout.size()) } != 0 {
        return ptr::null_mut();
    }
    p.cast()
}

/// What the allocator holds (a snapshot; the per-CPU parts are read while other threads run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Bytes mapped for small objects (spans; [`release`] unmaps the wholly free ones).
    pub mapped: usize,
    /// Bytes of free blocks in the per-CPU caches, all CPUs.
    pub cached: usize,
    /// The largest of the CPUs' cached bytes (bounded by [`per_cpu_bound`]).
    pub cached_max_cpu: usize,
    /// Bytes of free blocks in the central lists.
    pub central: usize,
    /// Sections the kernel aborted (and the allocator retried) so far.
    pub aborts: u64,
}

/// The allocator's counters. Takes each central list's lock briefly; reads the per-CPU cache tops
/// with relaxed loads while the sequences may be changing them (a stale value, never a torn one).
pub fn stats() -> Stats {
    let mut cached = 0;
    let mut cached_max_cpu = 0;
    let p = CACHES.load(Ordering::Acquire);
    // SAFETY: null, or the leaked caches (`init`), never freed.
    if let Some(caches) = unsafe { p.as_ref() } {
        for cpu in 0..rseq_dsl::possible_cpus() {
            let mut this = 0;
            for (view, size) in caches.views.iter().zip(SIZES) {
                this += view.load(cpu).unwrap_or(0) / 8 * size;
            }
            cached += this;
            cached_max_cpu = cached_max_cpu.max(this);
        }
    }
    Stats {
        mapped: central::mapped_bytes(),
        cached,
        cached_max_cpu,
        central: central::free_bytes(),
        aborts: ABORTS.load(Ordering::Relaxed),
    }
}

/// Moves the calling CPU's cached blocks (every class) to the central lists.
pub fn trim() {
    let Some(caches) = enter(caches).flatten() else {
        return;
    };
    for c in 0..CLASSES {
        let cache = &caches.views[c];
        let mut out = [ptr::null_mut(); 64];
        loop {
            let mut n = 0;
            let got = enter(|| {
                let _ = this_thread(|t| {
                    while n < out.len() {
                        let b = pop(t, cache).unwrap_or(ptr::null_mut());
                        if b.is_null() {
                            break;
                        }
                        out[n] = b;
                        n += 1;
                    }
                });
            });
            // SAFETY: blocks popped from a cache: free, of class c.
            unsafe { central::free_batch(c, &out[..n]) };
            if got.is_none() || n < out.len() {
                break;
            }
        }
    }
}

/// [`trim`] on every CPU this thread may run on: pins the thread to each in turn, then restores
/// its affinity. Returns the CPUs trimmed.
pub fn trim_all() -> usize {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity fills it.
    let mut old: libc::cpu_set_t = unsafe { core::mem::zeroed() };
    let size = core::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `old` is a valid cpu_set_t of `size` bytes.
    if unsafe { libc::sched_getaffinity(0, size, &mut old) } != 0 {
        trim();
        return 1;
    }
    let mut done = 0;
    for cpu in 0..libc::CPU_SETSIZE as usize {
        // SAFETY: `cpu` < CPU_SETSIZE.
        if !unsafe { libc::CPU_ISSET(cpu, &old) } {
            continue;
        }
        // SAFETY: as above.
        let mut one: libc::cpu_set_t = unsafe { core::mem::zeroed() };
        // SAFETY: `cpu` < CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu, &mut one) };
        // SAFETY: `one` is a valid set.
        if unsafe { libc::sched_setaffinity(0, size, &one) } == 0 {
            trim();
            done += 1;
        }
    }
    // SAFETY: `old` is the affinity read above.
    unsafe { libc::sched_setaffinity(0, size, &old) };
    done
}

/// Returns memory to the kernel: moves every CPU's cached blocks to the central lists
/// ([`trim_all`]), then unmaps each span whose blocks are all free there. Returns the bytes
/// unmapped. Blocks in use, or cached again by other threads meanwhile, keep their spans mapped.
///
/// Takes each class's central lock for one pass over its free blocks (it reads each linked block's
/// first word): meant for quiet moments (after a burst, before going idle), not for a hot loop.
pub fn release() -> usize {
    trim_all();
    central::release()
}

/// The `asan` feature, for builds with `-Zsanitizer=address`: tells AddressSanitizer which bytes
/// of the small blocks are the caller's. A free block is poisoned whole (the central list unpoisons
/// its first word only while it writes or reads the link), a block handed out is addressable up to
/// the requested size (the rest of its class is poisoned), so a read or write after free or past
/// the request is reported. Without the feature these are empty.
pub(crate) mod asan {
    #[cfg(feature = "asan")]
    extern "C" {
        fn __asan_poison_memory_region(addr: *const u8, size: usize);
        fn __asan_unpoison_memory_region(addr: *const u8, size: usize);
    }

    /// Marks `n` bytes at `p` as not the caller's.
    #[inline(always)]
    pub fn poison(p: *mut u8, n: usize) {
        #[cfg(feature = "asan")]
        // SAFETY: only changes AddressSanitizer's shadow of memory this allocator owns.
        unsafe {
            __asan_poison_memory_region(p, n);
        }
        let _ = (p, n);
    }

    /// Marks `n` bytes at `p` as addressable.
    #[inline(always)]
    pub fn unpoison(p: *mut u8, n: usize) {
        #[cfg(feature = "asan")]
        // SAFETY: as in `poison`.
        unsafe {
            __asan_unpoison_memory_region(p, n);
        }
        let _ = (p, n);
    }

    /// A block of `class_size` bytes handed to a caller who asked for `size`.
    #[inline(always)]
    pub fn hand_out(p: *mut u8, class_size: usize, size: usize) {
        poison(p, class_size);
        unpoison(p, size);
    }
}

/// The `debug` feature: freed blocks are filled with [`debug::POISON`] past their first word, and
/// a block handed out is checked to still hold it (a write after free) before it is returned;
/// freeing a block that still holds the poison aborts (a double free, or a block whose contents
/// happen to be all poison: the check is a heuristic).
mod debug {
    #[cfg(feature = "debug")]
    pub const POISON: u8 = 0xa5;

    #[cfg(feature = "debug")]
    fn poisoned(c: usize, b: *mut u8) -> bool {
        let size = crate::SIZES[c];
        // SAFETY: `b` is a block of `size` bytes.
        let bytes = unsafe { core::slice::from_raw_parts(b.add(8), size - 8) };
        bytes.iter().all(|&x| x == POISON)
    }

    #[cfg(feature = "debug")]
    pub fn poison(c: usize, b: *mut u8) {
        if poisoned(c, b) {
            fatal(b"rseq-alloc: double free (or a freed block written with the poison byte)\n");
        }
        // SAFETY: the block is being freed: its bytes are ours.
        unsafe { b.add(8).write_bytes(POISON, crate::SIZES[c] - 8) };
    }

    #[cfg(feature = "debug")]
    pub fn check(c: usize, b: *mut u8) {
        // A block carved from a fresh span is zero, not poisoned: only blocks that were freed are
        // checked, recognised by a poisoned last word.
        if b.is_null() {
            return;
        }
        let size = crate::SIZES[c];
        // SAFETY: `b` is a block of `size` bytes.
        let last = unsafe { b.add(size - 1).read() };
        if last == POISON && !poisoned(c, b) {
            fatal(b"rseq-alloc: a freed block was written after it was freed\n");
        }
        if last == POISON {
            // SAFETY: the block is being handed out: clear the poison so that a later free of
            // a block the user did not write does not look like a double free.
            unsafe { b.add(size - 1).write(0) };
        }
    }

    #[cfg(feature = "debug")]
    fn fatal(msg: &[u8]) -> ! {
        // SAFETY: write(2) on stderr with a valid buffer; abort has no preconditions.
        unsafe {
            libc::write(2, msg.as_ptr().cast(), msg.len());
            libc::abort()
        }
    }

    #[cfg(not(feature = "debug"))]
    #[inline(always)]
    pub fn poison(_c: usize, _b: *mut u8) {}

    #[cfg(not(feature = "debug"))]
    #[inline(always)]
    pub fn check(_c: usize, _b: *mut u8) {}
}
