//! Process-wide mode decision and per-thread registration.
//!
//! # The decision (once per process)
//!
//! The first call that needs it decides, in this order:
//! 1. `RSEQ_DSL_FALLBACK` set to a non-empty value other than `0`: fallback, [`Unavailable::DisabledByUser`].
//! 2. glibc registered (`__rseq_size > 0`, looked up with `dlsym` so there is no link dependency; in a
//!    statically linked program, where `dlsym` cannot see the executable's symbols, through link-time
//!    weak references): adopt glibc's area at `thread pointer + __rseq_offset` ([`Owner::Glibc`]).
//! 3. Otherwise register an area of our own for the calling thread ([`Owner::Runtime`]); the errno of a
//!    failure becomes the fallback reason.
//!
//! The decision is packed into one `AtomicU64` and published with a single compare-exchange: concurrent
//! first callers each compute it (the computation has no locks) and the first to publish wins. So no
//! caller ever waits for another, which keeps every later call async-signal-safe. The very first decision
//! itself reads the environment and calls `dlsym`, which are not async-signal-safe: call
//! [`crate::status`] (or any sequence) once at start-up if the first use could be in a signal handler.
//!
//! # Per thread
//!
//! The fast path is [`enter`]: one load of a `const`-initialised thread-local pointer (no lazy-init
//! branch, no destructor registration) and a null check. The slow path runs once per thread: it finds
//! glibc's area, or registers our own.
//!
//! Our own area lives in a `const` thread-local without destructor, 256 bytes aligned to 256 (enough
//! for any `AT_RSEQ_FEATURE_SIZE` / `AT_RSEQ_ALIGN` seen so far; larger requests fall back with
//! [`Unavailable::AreaTooLarge`]). A second thread-local whose destructor unregisters the area is touched at
//! registration: the thread's registration ends in an orderly way, and while the thread lives that
//! destructor keeps a dynamically loaded library holding this runtime mapped (glibc does not unmap a
//! library with pending TLS destructors), so the area stays valid while it is registered.
//!
//! A sequence that runs after that destructor (in another thread-local's destructor: Rust runs them
//! in reverse order of first use, so a thread-local touched before the thread's first sequence is
//! destroyed after the unregistration) registers the area again, this time until the thread is gone,
//! without a destructor. That is sound for the same reason glibc's own registration is (glibc never
//! unregisters): a thread's TLS, static or dynamic, is freed only after the kernel reported the
//! thread's death (the `CLONE_CHILD_CLEARTID` futex), and a dead task is never returned to user space,
//! the only moment the kernel writes the area. Both registration modes therefore run sequences in
//! TLS destructors natively (`tests/tls_destructor.rs`).

use core::cell::{Cell, UnsafeCell};
use core::ptr;
use core::sync::atomic::{AtomicIsize, AtomicU64, Ordering};

use crate::abi::{
    RseqArea, AREA_CPU_ID_OFFSET, AT_RSEQ_ALIGN, AT_RSEQ_FEATURE_SIZE, CPU_ID_REGISTRATION_FAILED,
    CPU_ID_UNINITIALIZED, ORIG_RSEQ_SIZE, RSEQ_FLAG_UNREGISTER, RSEQ_SIG,
};
use crate::error::{Error, Unavailable};

/// How sequences run in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Kernel-protected critical sections.
    Native,
    /// Per-slot locks taken by generated Rust code (see [`crate::fallback`]).
    Fallback,
}

/// Who registered the threads' rseq areas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// glibc (2.35+) registered every thread; its area is adopted.
    Glibc,
    /// This runtime registers each thread on first use.
    Runtime,
}

/// Size of the area reserved for self-registration.
const OWN_AREA_SIZE: usize = 256;

#[repr(C, align(256))]
struct OwnArea(UnsafeCell<[u8; OWN_AREA_SIZE]>);

// SAFETY: an `OwnArea` is only ever reached through `OWN_AREA`, a thread-local: each thread has its own and
// only that thread (and the kernel, for that thread) touches it. `Sync` is needed by `thread_local!` only.
unsafe impl Sync for OwnArea {}

const STATE_FRESH: u8 = 0;
const STATE_REGISTERED: u8 = 1;
const STATE_EXITED: u8 = 2;

thread_local! {
    /// The hot-path pointer: this thread's area once it is usable, else null.
    static AREA: Cell<*mut RseqArea> = const { Cell::new(ptr::null_mut()) };
    /// Self-registration state of this thread.
    static STATE: Cell<u8> = const { Cell::new(STATE_FRESH) };
    /// Storage for self-registration; no destructor, so it never needs lazy initialisation.
    static OWN_AREA: OwnArea = const { OwnArea(UnsafeCell::new([0; OWN_AREA_SIZE])) };
    /// Unregisters this thread's own area when the thread's TLS is torn down.
    static UNREGISTER: Unregister = const { Unregister };
}

struct Unregister;

impl Drop for Unregister {
    fn drop(&mut self) {
        if STATE.with(Cell::get) == STATE_REGISTERED {
            let (area, len) = own_area_and_len();
            // SAFETY: unregistering with the same area, length and signature as the registration; the area
            // stays valid for the duration of the call.
            unsafe { sys_rseq(area, len, RSEQ_FLAG_UNREGISTER) };
        }
        STATE.with(|s| s.set(STATE_EXITED));
        AREA.with(|a| a.set(ptr::null_mut()));
    }
}

// ---------------------------------------------------------------------------------------------------
// The decision, packed into one word.
//
// bits 0..2   state: 0 undecided, 1 native/glibc, 2 native/runtime, 3 fallback
// bits 8..16  reason code (fallback only), see `encode_reason`
// bits 16..48 reason payload (errno, feature size, align)
// bits 48..56 AT_RSEQ_FEATURE_SIZE (capped to 255)
// bits 56..64 AT_RSEQ_ALIGN (capped to 255)

static DECISION: AtomicU64 = AtomicU64::new(0);
static GLIBC_OFFSET: AtomicIsize = AtomicIsize::new(0);

const D_GLIBC: u64 = 1;
const D_RUNTIME: u64 = 2;
const D_FALLBACK: u64 = 3;

/// The process-wide decision, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    pub(crate) mode: Mode,
    pub(crate) owner: Option<Owner>,
    pub(crate) reason: Option<Unavailable>,
    pub(crate) feature_size: usize,
    pub(crate) align: usize,
}

fn encode_reason(r: Unavailable) -> u64 {
    let (code, payload): (u64, u64) = match r {
        Unavailable::DisabledByUser => (1, 0),
        Unavailable::NoKernelSupport => (2, 0),
        Unavailable::Forbidden => (3, 0),
        Unavailable::Conflict => (4, 0),
        Unavailable::Errno(e) => (5, u64::from(e as u32)),
        Unavailable::GlibcRegistrationFailed => (6, 0),
        Unavailable::UnsupportedArch => (7, 0),
        Unavailable::AreaTooLarge {
            feature_size,
            align,
        } => (
            8,
            ((feature_size.min(0xffff) as u64) << 16) | align.min(0xffff) as u64,
        ),
    };
    (code << 8) | (payload << 16)
}

fn decode_reason(word: u64) -> Option<Unavailable> {
    let payload = (word >> 16) & 0xffff_ffff;
    Some(match (word >> 8) & 0xff {
        1 => Unavailable::DisabledByUser,
        2 => Unavailable::NoKernelSupport,
        3 => Unavailable::Forbidden,
        4 => Unavailable::Conflict,
        5 => Unavailable::Errno(payload as u32 as i32),
        6 => Unavailable::GlibcRegistrationFailed,
        7 => Unavailable::UnsupportedArch,
        8 => Unavailable::AreaTooLarge {
            feature_size: (payload >> 16) as usize,
            align: (payload & 0xffff) as usize,
        },
        _ => return None,
    })
}

fn decode(word: u64) -> Decision {
    let state = word & 3;
    let feature_size = ((word >> 48) & 0xff) as usize;
    let align = ((word >> 56) & 0xff) as usize;
    let (mode, owner, reason) = match state {
        D_GLIBC => (Mode::Native, Some(Owner::Glibc), None),
        D_RUNTIME => (Mode::Native, Some(Owner::Runtime), None),
        _ => (Mode::Fallback, None, decode_reason(word)),
    };
    Decision {
        mode,
        owner,
        reason,
        feature_size,
        align,
    }
}

/// `getauxval` of the kernel's rseq feature size and alignment (0 on pre-6.3 kernels).
fn kernel_feature() -> (usize, usize) {
    // SAFETY: getauxval has no preconditions; it returns 0 for unknown keys.
    let (size, align) = unsafe {
        (
            libc::getauxval(AT_RSEQ_FEATURE_SIZE),
            libc::getauxval(AT_RSEQ_ALIGN),
        )
    };
    (size as usize, align as usize)
}

/// Reads `RSEQ_DSL_FALLBACK` without taking std's environment lock.
fn fallback_forced() -> bool {
    // SAFETY: the name is a valid NUL-terminated string; getenv returns null or a NUL-terminated string
    // that stays valid until the environment is modified.
    unsafe {
        let v = libc::getenv(c"RSEQ_DSL_FALLBACK".as_ptr());
        if v.is_null() {
            return false;
        }
        let first = *v;
        !(first == 0 || (first == b'0' as libc::c_char && *v.add(1) == 0))
    }
}

/// glibc's `__rseq_offset` when glibc registered threads (`__rseq_size > 0`).
fn glibc_rseq_offset() -> Option<isize> {
    // SAFETY: dlsym with RTLD_DEFAULT and valid NUL-terminated names; a non-null result points to the
    // symbol's object, whose types are glibc's documented ABI (`unsigned int __rseq_size`,
    // `ptrdiff_t __rseq_offset`), both read-only after start-up.
    let (size, offset) = unsafe {
        (
            libc::dlsym(libc::RTLD_DEFAULT, c"__rseq_size".as_ptr()).cast::<libc::c_uint>(),
            libc::dlsym(libc::RTLD_DEFAULT, c"__rseq_offset".as_ptr()).cast::<isize>(),
        )
    };
    // A statically linked program: `dlsym` cannot see the executable's own symbols, the link-time
    // weak references can.
    let (size, offset) = if size.is_null() || offset.is_null() {
        linked_glibc_symbols()
    } else {
        (size.cast_const(), offset.cast_const())
    };
    if size.is_null() || offset.is_null() {
        return None;
    }
    // SAFETY: non-null addresses of glibc's two symbols (above), valid for the process's life.
    unsafe {
        if ptr::read_volatile(size) == 0 {
            return None;
        }
        Some(ptr::read_volatile(offset))
    }
}

// Statically linked programs only (`crt-static`): link-time weak references to glibc's `__rseq_size`
// and `__rseq_offset`, two address-sized words, null when the link found no definition (glibc
// before 2.35). A static link resolves them from libc.a (the object defining them also sets up the
// thread pointer, so it is always linked). Dynamic programs use `dlsym` instead: a reference there
// would make the program require the symbols' version (GLIBC_2.35) at load time, even weak. The
// table's symbol is a weak, hidden definition with a frozen layout, so that two copies of this
// runtime in one link share one table instead of clashing.
#[cfg(all(
    target_env = "gnu",
    target_feature = "crt-static",
    target_pointer_width = "64"
))]
core::arch::global_asm!(
    ".pushsection .data.rel.ro.rseq_dsl_glibc_rseq_symbols, \"aw\"",
    ".balign 8",
    ".weak __rseq_size",
    ".weak __rseq_offset",
    ".weak rseq_dsl_glibc_rseq_symbols_v1",
    ".hidden rseq_dsl_glibc_rseq_symbols_v1",
    "rseq_dsl_glibc_rseq_symbols_v1:",
    ".quad __rseq_size",
    ".quad __rseq_offset",
    ".popsection",
);
#[cfg(all(
    target_env = "gnu",
    target_feature = "crt-static",
    target_pointer_width = "32"
))]
core::arch::global_asm!(
    ".pushsection .data.rel.ro.rseq_dsl_glibc_rseq_symbols, \"aw\"",
    ".balign 4",
    ".weak __rseq_size",
    ".weak __rseq_offset",
    ".weak rseq_dsl_glibc_rseq_symbols_v1",
    ".hidden rseq_dsl_glibc_rseq_symbols_v1",
    "rseq_dsl_glibc_rseq_symbols_v1:",
    ".long __rseq_size",
    ".long __rseq_offset",
    ".popsection",
);

/// The addresses of glibc's `__rseq_size` and `__rseq_offset` as a static link resolved them (null
/// when unresolved, in a dynamic program, or on a non-glibc target).
fn linked_glibc_symbols() -> (*const libc::c_uint, *const isize) {
    #[cfg(all(target_env = "gnu", target_feature = "crt-static"))]
    {
        extern "C" {
            static rseq_dsl_glibc_rseq_symbols_v1: [*const u8; 2];
        }
        // SAFETY: the table above: two address-sized words the linker (and the dynamic loader, in a
        // position-independent program) filled; read-only after relocation.
        let [size, offset] =
            unsafe { ptr::read_volatile(&raw const rseq_dsl_glibc_rseq_symbols_v1) };
        (size.cast(), offset.cast())
    }
    #[cfg(not(all(target_env = "gnu", target_feature = "crt-static")))]
    {
        (ptr::null(), ptr::null())
    }
}

/// The thread pointer, for architectures where glibc's area can be located.
#[inline(always)]
fn thread_pointer() -> Option<*mut u8> {
    #[cfg(target_arch = "x86_64")]
    {
        let tp: *mut u8;
        // SAFETY: on x86_64 Linux `%fs:0` holds the TCB's self pointer, which is the thread pointer glibc
        // uses for `__rseq_offset`. The asm only reads memory.
        unsafe {
            core::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) tp, options(nostack, readonly, preserves_flags));
        }
        Some(tp)
    }
    #[cfg(target_arch = "aarch64")]
    {
        let tp: *mut u8;
        // SAFETY: reads the EL0 thread-pointer register, which glibc's `__rseq_offset` is relative to.
        unsafe {
            core::arch::asm!("mrs {}, tpidr_el0", out(reg) tp, options(nomem, nostack, preserves_flags));
        }
        Some(tp)
    }
    #[cfg(target_arch = "riscv64")]
    {
        let tp: *mut u8;
        // SAFETY: copies the `tp` register, which glibc's `__rseq_offset` is relative to.
        unsafe {
            core::arch::asm!("mv {}, tp", out(reg) tp, options(nomem, nostack, preserves_flags));
        }
        Some(tp)
    }
    #[cfg(target_arch = "arm")]
    {
        let tp: *mut u8;
        // SAFETY: reads TPIDRURO, the user read-only thread ID register glibc uses as thread pointer.
        unsafe {
            core::arch::asm!("mrc p15, 0, {}, c13, c0, 3", out(reg) tp, options(nomem, nostack, preserves_flags));
        }
        Some(tp)
    }
    #[cfg(target_arch = "powerpc64")]
    {
        let tp: *mut u8;
        // SAFETY: copies r13, the thread pointer of the 64-bit PowerPC ELF ABIs (what
        // `__builtin_thread_pointer()` returns, which `__rseq_offset` is relative to).
        unsafe {
            core::arch::asm!("mr {}, 13", out(reg) tp, options(nomem, nostack, preserves_flags));
        }
        Some(tp)
    }
    #[cfg(target_arch = "s390x")]
    {
        let tp: *mut u8;
        // SAFETY: the s390x thread pointer is split across access registers a0 (high half) and a1 (low
        // half); `ear` replaces the low 32 bits of the destination, so: a0, shift left 32, then a1.
        unsafe {
            core::arch::asm!(
                "ear {0}, %a0",
                "sllg {0}, {0}, 32",
                "ear {0}, %a1",
                out(reg) tp,
                options(nomem, nostack, preserves_flags)
            );
        }
        Some(tp)
    }
    #[cfg(target_arch = "loongarch64")]
    {
        let tp: *mut u8;
        // SAFETY: copies $tp (r2), the LoongArch thread pointer glibc's `__rseq_offset` is relative to.
        unsafe {
            core::arch::asm!("move {}, $tp", out(reg) tp, options(nomem, nostack, preserves_flags));
        }
        Some(tp)
    }
    #[cfg(not(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "arm",
        target_arch = "powerpc64",
        target_arch = "s390x",
        target_arch = "loongarch64"
    )))]
    {
        None
    }
}

/// The raw `rseq` syscall; returns 0 or the errno.
///
/// # Safety
/// `area` must be valid for `len` bytes for as long as it stays registered.
unsafe fn sys_rseq(area: *mut u8, len: usize, flags: i32) -> i32 {
    // SAFETY: forwarded to the caller.
    let r = unsafe { libc::syscall(libc::SYS_rseq, area, len as u32, flags, RSEQ_SIG) };
    if r == 0 {
        0
    } else {
        errno()
    }
}

fn errno() -> i32 {
    // SAFETY: __errno_location always returns the calling thread's errno slot.
    unsafe { *libc::__errno_location() }
}

fn own_area_and_len() -> (*mut u8, usize) {
    let (feature_size, _) = kernel_feature();
    let len = feature_size.max(ORIG_RSEQ_SIZE);
    (OWN_AREA.with(|a| a.0.get().cast::<u8>()), len)
}

/// Registers this thread's own area. Returns 0 or the errno.
fn register_own() -> i32 {
    // This thread's signal handlers stay out until the registration is complete: a handler running a
    // sequence in the middle would register again, nested inside the destructor registration below
    // (which may allocate: a handler that does the same can deadlock on the allocator's lock) or
    // between the syscall and the `STATE` update. Once per thread; both calls are async-signal-safe.
    let _blocked = BlockSignals::new();
    let (area, len) = own_area_and_len();
    if STATE.with(Cell::get) == STATE_REGISTERED {
        return 0;
    }
    // Touch the destructor first, unless this thread's thread-local destructors already run (it is
    // gone, or being destroyed): the registration then lasts until the thread is dead (module docs).
    if STATE.with(Cell::get) == STATE_FRESH {
        let _ = UNREGISTER.try_with(|_| ());
    }
    // SAFETY: the area is this thread's `OWN_AREA`, 256 bytes aligned to 256 (checked against the kernel's
    // request by the caller), with flags = 0 and rseq_cs = 0 (zeroed, or left so by the kernel and the
    // sequences), and valid until the thread is dead: either `UNREGISTER`'s destructor unregisters it
    // first, or the kernel stops writing it when the thread dies, before its TLS is freed (module docs).
    let e = unsafe { sys_rseq(area, len, 0) };
    // EBUSY: this very area (same address, length and signature) is already registered for this
    // thread. That happens when a signal handler's sequence registers between this call's syscall
    // and its `STATE` update (or the other way round): the registration is in place, so it is a
    // success, not a reason to refuse the thread forever (seen as `errno 16` under signal storms on
    // slow, single-stepped kernels). A different area would be EINVAL.
    if e == 0 || e == libc::EBUSY {
        STATE.with(|s| s.set(STATE_REGISTERED));
        return 0;
    }
    e
}

/// Blocks every blockable signal of the calling thread until dropped (then restores the mask).
struct BlockSignals(libc::sigset_t);

impl BlockSignals {
    fn new() -> BlockSignals {
        // SAFETY: `sigset_t` is plain data that `sigfillset` initialises and `pthread_sigmask` reads;
        // `old` is written by `pthread_sigmask` before it is ever read.
        unsafe {
            let mut all: libc::sigset_t = core::mem::zeroed();
            let mut old: libc::sigset_t = core::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
            BlockSignals(old)
        }
    }
}

impl Drop for BlockSignals {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `new` on this same thread.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, core::ptr::null_mut());
        }
    }
}

fn compute_decision() -> u64 {
    let (feature_size, align) = kernel_feature();
    let feature = ((feature_size.min(255) as u64) << 48) | ((align.min(255) as u64) << 56);
    let fallback = |r: Unavailable| D_FALLBACK | encode_reason(r) | feature;
    if fallback_forced() {
        return fallback(Unavailable::DisabledByUser);
    }
    if RSEQ_SIG == 0 {
        return fallback(Unavailable::UnsupportedArch);
    }
    if let Some(offset) = glibc_rseq_offset() {
        let Some(tp) = thread_pointer() else {
            return fallback(Unavailable::UnsupportedArch);
        };
        GLIBC_OFFSET.store(offset, Ordering::Relaxed);
        let area = tp.wrapping_offset(offset).cast::<RseqArea>();
        if !glibc_area_usable(area) {
            return fallback(Unavailable::GlibcRegistrationFailed);
        }
        return D_GLIBC | feature;
    }
    if feature_size.max(ORIG_RSEQ_SIZE) > OWN_AREA_SIZE || align > OWN_AREA_SIZE {
        return fallback(Unavailable::AreaTooLarge {
            feature_size,
            align,
        });
    }
    match register_own() {
        0 => D_RUNTIME | feature,
        e => fallback(Unavailable::from_errno(e)),
    }
}

fn glibc_area_usable(area: *mut RseqArea) -> bool {
    // SAFETY: `area` is glibc's area of the calling thread (thread pointer + __rseq_offset), valid while the
    // thread lives; cpu_id is read with a volatile load because the kernel writes it.
    let cpu =
        unsafe { ptr::read_volatile(area.cast::<u8>().add(AREA_CPU_ID_OFFSET).cast::<u32>()) };
    cpu != CPU_ID_UNINITIALIZED && cpu != CPU_ID_REGISTRATION_FAILED
}

/// The process-wide decision, computing it on first use (see the module docs).
pub(crate) fn decision() -> Decision {
    let mut word = DECISION.load(Ordering::Acquire);
    if word == 0 {
        let mine = compute_decision();
        word = match DECISION.compare_exchange(0, mine, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => mine,
            Err(winner) => winner,
        };
        if word & 3 == D_FALLBACK {
            crate::fallback::init_locks();
        }
    }
    decode(word)
}

/// How a sequence must run in the calling thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// Natively: the thread's registered area.
    Native(*mut RseqArea),
    /// In fallback mode: take the runtime's per-slot lock and run the generated fallback body.
    Fallback,
}

/// Where sequences of the calling thread run: the fast path of every generated function.
///
/// # Errors
/// [`Error::Unavailable`] when the process runs natively but this thread cannot register.
#[inline(always)]
pub fn enter() -> Result<Entry, Error> {
    if let Some(area) = known_area() {
        return Ok(Entry::Native(area));
    }
    // Every call in fallback mode comes here (no area): answered from the decision word alone,
    // without a call.
    if DECISION.load(Ordering::Acquire) & 3 == D_FALLBACK {
        return Ok(Entry::Fallback);
    }
    enter_slow()
}

/// The calling thread's area if it is registered and already looked up (a sequence or
/// [`crate::this_thread`] ran on this thread before): one thread-local load, no registration, no
/// syscall, no allocation. `None` before that, in fallback mode, and once the thread's rseq-dsl TLS
/// has been torn down.
#[inline]
pub(crate) fn known_area() -> Option<*mut RseqArea> {
    let area = AREA.with(Cell::get);
    (!area.is_null()).then_some(area)
}

#[cold]
#[inline(never)]
fn enter_slow() -> Result<Entry, Error> {
    let d = decision();
    match d.owner {
        None => Ok(Entry::Fallback),
        Some(Owner::Glibc) => {
            let tp = thread_pointer().ok_or(Error::Unavailable(Unavailable::UnsupportedArch))?;
            let area = tp
                .wrapping_offset(GLIBC_OFFSET.load(Ordering::Relaxed))
                .cast::<RseqArea>();
            if !glibc_area_usable(area) {
                return Err(Error::Unavailable(Unavailable::GlibcRegistrationFailed));
            }
            AREA.with(|a| a.set(area));
            Ok(Entry::Native(area))
        }
        Some(Owner::Runtime) => match register_own() {
            0 => {
                let area = OWN_AREA.with(|a| a.0.get().cast::<RseqArea>());
                AREA.with(|a| a.set(area));
                Ok(Entry::Native(area))
            }
            e => Err(Error::Unavailable(Unavailable::from_errno(e))),
        },
    }
}

/// Like [`enter`], for sequences indexed by `mm_cid`: refused unless the kernel advertises mm_cid
/// (`AT_RSEQ_FEATURE_SIZE >= 28`).
///
/// # Errors
/// As [`enter`], plus [`Error::MmCidUnavailable`].
#[inline(always)]
pub fn enter_mm_cid() -> Result<Entry, Error> {
    require_mm_cid(enter()?, mm_cid_advertised)
}

/// `entry`, unless it is native and the kernel does not advertise mm_cid (`advertised`, asked only
/// for a native entry). Shared by `enter_mm_cid` and the `ThisThread` path.
#[inline(always)]
pub(crate) fn require_mm_cid(
    entry: Entry,
    advertised: impl FnOnce() -> bool,
) -> Result<Entry, Error> {
    match entry {
        Entry::Native(_) if !advertised() => Err(Error::MmCidUnavailable),
        e => Ok(e),
    }
}

/// Whether a kernel feature size covers the u32 field at `offset` (node_id, mm_cid, ...).
pub(crate) fn feature_covers(feature_size: usize, offset: usize) -> bool {
    feature_size >= offset + 4
}

#[inline(always)]
pub(crate) fn mm_cid_advertised() -> bool {
    let word = DECISION.load(Ordering::Relaxed);
    feature_covers(
        ((word >> 48) & 0xff) as usize,
        crate::abi::AREA_MM_CID_OFFSET,
    )
}

/// Clears `rseq_cs` of the calling thread's area, if it has one.
///
/// A descriptor address stays in `rseq_cs` after a section ends (the kernel clears it lazily). Before a
/// shared object holding descriptors is unloaded (`dlclose`), every thread that ran its sequences must
/// clear it, as glibc's manual asks; otherwise the kernel would read an unmapped descriptor on the next
/// preemption.
pub fn clear_rseq_cs() {
    let area = AREA.with(Cell::get);
    if !area.is_null() {
        // SAFETY: `area` is this thread's registered area; `rseq_cs` is the one user-owned field, written
        // with a volatile store so it is not elided.
        unsafe {
            ptr::write_volatile(
                area.cast::<u8>()
                    .add(crate::abi::AREA_RSEQ_CS_OFFSET)
                    .cast::<u64>(),
                0,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{decode_reason, encode_reason, Unavailable};

    /// Every reason survives the packing into the mode word (payloads within their documented
    /// ranges), and distinct reasons never share a code.
    #[test]
    fn reasons_round_trip() {
        let all = [
            Unavailable::DisabledByUser,
            Unavailable::NoKernelSupport,
            Unavailable::Forbidden,
            Unavailable::Conflict,
            Unavailable::Errno(0),
            Unavailable::Errno(libc::EFAULT),
            Unavailable::Errno(i32::MAX),
            Unavailable::GlibcRegistrationFailed,
            Unavailable::UnsupportedArch,
            Unavailable::AreaTooLarge {
                feature_size: 512,
                align: 1024,
            },
        ];
        for r in all {
            assert_eq!(decode_reason(encode_reason(r)), Some(r), "{r:?}");
        }
        assert_eq!(decode_reason(0), None);
    }
}
