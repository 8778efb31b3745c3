//! Cross-CPU operations that a `fork()` cannot strand: the serialising lock of a structure's
//! cross-CPU operations ([`RemoteLock`]) and the registry of the marks they set in per-CPU words
//! ([`MarkTicket`]).
//!
//! A cross-CPU operation (a `percpu` drain) marks the word a CPU's sections read, so that no section
//! commits while it takes that CPU's items, then clears the mark. A `fork()` by another thread in
//! between leaves the child with the mark set and the lock held by a thread that does not exist
//! there: every push would wait or report full, every pop report empty, every drain block. So:
//!
//! - a mark is registered (the word's address and which bit) before it is set and unregistered
//!   after it is cleared; a `pthread_atfork` child handler clears every registered mark. The data
//!   under a mark is intact in the child: the operation either had not taken the items yet (they
//!   stay, now reachable again), or had taken them into a thread that does not exist in the child
//!   (they leak there, they are never duplicated);
//! - the lock records the fork generation it was taken in; the child handler starts a new
//!   generation, and a lock from an older one is free.
//!
//! The child handler touches only this module's statics and the registered words (async-signal-
//! safe, as a child handler of a multi-threaded process must be).

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Marks that may be set at the same time (one per cross-CPU operation in progress).
const SLOTS: usize = 64;

/// Registered marks: the marked word's address, bit 0 set when the mark is the word's top bit
/// (clear: bit 0). Words are at least 4-byte aligned, so bit 0 of the address is free.
static MARKS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];

/// Incremented in every child process by the fork handler.
static FORK_GENERATION: AtomicUsize = AtomicUsize::new(0);

static HANDLER: AtomicBool = AtomicBool::new(false);

/// Marks the fork handler cleared in this process (it is a child that another thread's cross-CPU
/// operation would have stranded).
static CLEARED: AtomicUsize = AtomicUsize::new(0);

/// How many marks of cross-CPU operations in progress at the `fork()` that created this process
/// the child handler cleared (0 in a process that was not forked during one). For tests.
pub fn marks_cleared_by_fork() -> usize {
    CLEARED.load(Ordering::Relaxed)
}

const TOP_BIT: usize = 1 << (usize::BITS - 1);

fn install_fork_handler() {
    if !HANDLER.load(Ordering::Acquire) && !HANDLER.swap(true, Ordering::AcqRel) {
        // SAFETY: registers a child handler that touches only this module's statics and the words
        // registered in `MARKS`, which stay valid while registered (see `MarkTicket::new`).
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    }
}

extern "C" fn after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
    for slot in &MARKS {
        let entry = slot.swap(0, Ordering::Relaxed);
        if entry == 0 {
            continue;
        }
        let mark = if entry & 1 != 0 { TOP_BIT } else { 1 };
        // SAFETY: a registered word is live until its ticket is dropped (`MarkTicket::new`), and
        // in the child no thread but this one exists, so none dropped it since the fork.
        let word = unsafe { AtomicUsize::from_ptr((entry & !1) as *mut usize) };
        word.fetch_and(!mark, Ordering::Relaxed);
        CLEARED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Keeps a mark registered while it may be set; dropping it unregisters the mark (drop it after
/// clearing the mark).
#[derive(Debug)]
pub struct MarkTicket {
    slot: usize,
    entry: usize,
}

impl MarkTicket {
    /// Registers the mark `mark` (`1` or the top bit) of `word` before the caller sets it.
    ///
    /// # Safety
    /// `word` must stay valid (not freed, not moved) until the ticket is dropped.
    pub unsafe fn new(word: &AtomicUsize, mark: usize) -> MarkTicket {
        debug_assert!(
            mark == 1 || mark == TOP_BIT,
            "a mark is bit 0 or the top bit"
        );
        install_fork_handler();
        let entry = word.as_ptr() as usize | usize::from(mark == TOP_BIT);
        let mut round = 0u32;
        loop {
            for (slot, s) in MARKS.iter().enumerate() {
                if s.compare_exchange(0, entry, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    return MarkTicket { slot, entry };
                }
            }
            // 64 cross-CPU operations in progress at once: wait for one to end.
            round += 1;
            backoff(round);
        }
    }
}

impl Drop for MarkTicket {
    fn drop(&mut self) {
        // Only this ticket's entry: in a child, the fork handler may have emptied the slot and
        // another ticket taken it since.
        let _ =
            MARKS[self.slot].compare_exchange(self.entry, 0, Ordering::Release, Ordering::Relaxed);
    }
}

/// The lock serialising a structure's cross-CPU operations; a lock held when another thread called
/// `fork()` is free in the child. Not async-signal-safe (it waits).
#[derive(Debug, Default)]
pub struct RemoteLock {
    /// `generation << 1 | locked` (the generation modulo 2^(bits - 1): a lock would have to survive
    /// that many forks of its holder's process to be mistaken for a current one).
    state: AtomicUsize,
}

impl RemoteLock {
    /// An unlocked lock.
    pub const fn new() -> RemoteLock {
        RemoteLock {
            state: AtomicUsize::new(0),
        }
    }

    /// Takes the lock, waiting while another thread of this process holds it.
    pub fn lock(&self) -> RemoteGuard<'_> {
        install_fork_handler();
        let mut round = 0u32;
        loop {
            let generation = FORK_GENERATION.load(Ordering::Relaxed) & (usize::MAX >> 1);
            let s = self.state.load(Ordering::Relaxed);
            // Free, or taken before the last fork by a thread this process does not have.
            if (s & 1 == 0 || s >> 1 != generation)
                && self
                    .state
                    .compare_exchange(s, generation << 1 | 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return RemoteGuard { lock: self };
            }
            round += 1;
            backoff(round);
        }
    }
}

/// Holds a [`RemoteLock`]; unlocks on drop.
#[derive(Debug)]
pub struct RemoteGuard<'l> {
    lock: &'l RemoteLock,
}

impl Drop for RemoteGuard<'_> {
    fn drop(&mut self) {
        self.lock.state.fetch_and(!1, Ordering::Release);
    }
}

/// Spins briefly, then yields the CPU: the other side is a cross-CPU operation of a few
/// microseconds (a fence and a copy).
fn backoff(round: u32) {
    if round < 64 {
        core::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The child handler clears exactly the registered mark bit and frees a lock of the
    /// previous generation.
    #[test]
    fn child_handler_clears_marks_and_frees_old_locks() {
        let low = AtomicUsize::new(0x1000 | 1);
        let top = AtomicUsize::new(TOP_BIT | 7);
        let lock = RemoteLock::new();
        let g = lock.lock();
        // SAFETY: both words outlive the tickets.
        let (a, b) = unsafe { (MarkTicket::new(&low, 1), MarkTicket::new(&top, TOP_BIT)) };
        after_fork_in_child();
        assert_eq!(low.load(Ordering::Relaxed), 0x1000);
        assert_eq!(top.load(Ordering::Relaxed), 7);
        // As in a child: the thread holding the lock is gone, the lock is free.
        core::mem::forget(g);
        drop(lock.lock());
        drop((a, b));
        assert!(MARKS
            .iter()
            .all(|s| s.load(Ordering::Relaxed) != low.as_ptr() as usize));
    }
}
