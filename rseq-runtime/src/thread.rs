//! [`ThisThread`]: the calling thread's entry, looked up once for many sections.

use core::marker::PhantomData;

use crate::error::Error;
use crate::registration::{enter, known_area, mm_cid_advertised, require_mm_cid, Entry};

/// The calling thread, ready to run sequences: its registered rseq area, or the process's fallback
/// mode, looked up once by [`this_thread`] and handed to sequences that declare a `ThisThread<'_>`
/// parameter.
///
/// Every generated function otherwise finds the calling thread's area itself: a thread-local load and
/// a test, cheap, but repeated before every section, together with the loads of a `&PerCpu`'s fields,
/// because a section's `asm!` may write any memory and the compiler cannot keep them in registers
/// across it. A caller running many sections in a loop takes the token once instead (and, for the
/// fields, copies its handle into a local: see `rseq_dsl::percpu::Counter::local`).
///
/// The token is `Copy`, one or two words, and cannot outlive the closure passed to
/// [`this_thread`] (its lifetime is that call's) nor move to another thread (`!Send`, `!Sync`). The
/// area it holds is therefore the calling thread's, and stays registered while the closure runs: a
/// thread's own registration ends only in its rseq-dsl TLS destructor, which runs outside any
/// closure (a later `this_thread` registers the area again, until the thread is gone); glibc's ends
/// with the thread.
///
/// ```
/// use rseq_runtime::this_thread;
///
/// let native = this_thread(|t| t.is_native()).expect("the thread can run sequences");
/// assert_eq!(native, rseq_runtime::status().mode == rseq_runtime::Mode::Native);
/// ```
#[derive(Clone, Copy)]
pub struct ThisThread<'t> {
    entry: Entry,
    /// Invariant in `'t`: the token is tied to exactly one `this_thread` call.
    _scope: PhantomData<fn(&'t ()) -> &'t ()>,
    /// `!Send` and `!Sync`: the area belongs to the thread that looked it up.
    _thread: PhantomData<*mut ()>,
}

impl ThisThread<'_> {
    /// The token for `entry`, the calling thread's (the callers above looked it up).
    #[inline]
    fn new(entry: Entry) -> Self {
        ThisThread {
            entry,
            _scope: PhantomData,
            _thread: PhantomData,
        }
    }

    /// Whether sequences run natively on this thread (else under the fallback locks).
    #[inline]
    pub fn is_native(self) -> bool {
        matches!(self.entry, Entry::Native(_))
    }
}

impl core::fmt::Debug for ThisThread<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ThisThread")
            .field("native", &self.is_native())
            .field("mm_cid", &(self.is_native() && mm_cid_advertised()))
            .finish()
    }
}

/// Runs `f` with a [`ThisThread`] token for the calling thread: sequences given the token skip the
/// per-call lookup of the thread's area.
///
/// # Errors
/// Those of the lookup every sequence does: [`Error::Unavailable`] when the process runs natively
/// but this thread cannot register.
#[inline]
pub fn this_thread<R>(f: impl for<'t> FnOnce(ThisThread<'t>) -> R) -> Result<R, Error> {
    Ok(f(ThisThread::new(enter()?)))
}

/// Runs `f` with a [`ThisThread`] token if the calling thread is registered natively and its area
/// was looked up before (by an earlier sequence or [`this_thread`] on this thread); `None`
/// otherwise, without running `f`.
///
/// Unlike [`this_thread`], it never registers the thread, makes no syscall and never allocates:
/// one thread-local load and a test. That makes it the fast path of code the runtime's own first
/// steps may call back into, such as a global allocator (registration and the fallback locks'
/// table allocate): take the token here, and on `None` go to a slow path that guards against
/// re-entry and calls [`this_thread`] (or the sequence without a token).
///
/// ```
/// use rseq_runtime::{this_thread, this_thread_if_registered};
///
/// let native = this_thread(|t| t.is_native()).expect("the thread can run sequences");
/// // Registered by the call above if the process runs natively; never in fallback mode.
/// assert_eq!(this_thread_if_registered(|t| t.is_native()).is_some(), native);
/// ```
#[inline]
pub fn this_thread_if_registered<R>(f: impl for<'t> FnOnce(ThisThread<'t>) -> R) -> Option<R> {
    Some(f(ThisThread::new(Entry::Native(known_area()?))))
}

/// Generated code: the entry of a sequence taking a token (`enter()`'s counterpart).
#[doc(hidden)]
#[inline(always)]
pub fn thread_entry(t: ThisThread<'_>) -> Result<Entry, Error> {
    Ok(t.entry)
}

/// Generated code: as [`thread_entry`] for mm_cid-indexed sequences (`enter_mm_cid()`'s
/// counterpart).
#[doc(hidden)]
#[inline(always)]
pub fn thread_entry_mm_cid(t: ThisThread<'_>) -> Result<Entry, Error> {
    // Read here rather than stored in the token: the decision word, read-mostly (a sequence indexed
    // by CPU id never pays for it).
    require_mm_cid(t.entry, mm_cid_advertised)
}
