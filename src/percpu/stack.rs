//! [`Stack`]: intrusive per-CPU free lists, with cross-CPU `drain` and `steal`.

use core::alloc::Layout;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::pool::{alloc_shared, Pool, RawAlloc};
use super::{check_cpu, fence, fence_ready, native, RemoteError};
use crate::remote::{MarkTicket, RemoteLock};
use crate::{rseq, Error, PerCpu, ThisThread};

/// Per-CPU layout at the allocation's offset: one list head. Nodes are at least 8-aligned, so bit 0
/// of a head is free: a drain sets it (`MARK`) while it takes the list, and sections that see it
/// exit without a store (module docs, "Cross-CPU operations").
const SIZE: usize = 8;
const MARK: usize = 1;

rseq! {
    /// Links `node` (its link word at offset 0) on top of the calling CPU's list; false (nothing
    /// done) while a drain has marked that list.
    ///
    /// # Safety
    /// `heads` is a live stack's view; `node` is valid for writes and on no list.
    #[inline]
    unsafe fn stack_push(heads: &PerCpu<usize>, node: *mut u8) -> bool {
        let s = heads.current();
        let old = load(s);
        if (old & 1) != 0 { return false; }
        store::<usize>(node, old);
        commit store_release(s, node as usize);
        true
    }

    /// Links the chain `first ..= last` (already linked through their link words) on top of the
    /// calling CPU's list; false while a drain has marked it.
    ///
    /// # Safety
    /// As for `stack_push`, for every node of the chain; `last` is the chain's last node.
    #[inline]
    unsafe fn stack_push_chain(heads: &PerCpu<usize>, first: *mut u8, last: *mut u8) -> bool {
        let s = heads.current();
        let old = load(s);
        if (old & 1) != 0 { return false; }
        store::<usize>(last, old);
        commit store_release(s, first as usize);
        true
    }

    /// Unlinks the top of the calling CPU's list; 0 when it is empty or marked by a drain.
    ///
    /// # Safety
    /// `heads` is a live stack's view whose nodes are valid while on a list.
    #[inline]
    unsafe fn stack_pop(heads: &PerCpu<usize>) -> usize {
        let s = heads.current();
        let top = load(s);
        if top == 0 { return 0; }
        if (top & 1) != 0 { return 0; }
        let next = load::<usize>(top as *mut u8);
        commit store(s, next);
        top
    }

    /// `stack_push` with the thread's entry passed in (see [`LocalStack`]).
    ///
    /// # Safety
    /// As for `stack_push`.
    #[inline]
    unsafe fn stack_push_in(thread: ThisThread<'_>, heads: &PerCpu<usize>, node: *mut u8) -> bool {
        let s = heads.current();
        let old = load(s);
        if (old & 1) != 0 { return false; }
        store::<usize>(node, old);
        commit store_release(s, node as usize);
        true
    }

    /// `stack_pop` with the thread's entry passed in (see [`LocalStack`]).
    ///
    /// # Safety
    /// As for `stack_pop`.
    #[inline]
    unsafe fn stack_pop_in(thread: ThisThread<'_>, heads: &PerCpu<usize>) -> usize {
        let s = heads.current();
        let top = load(s);
        if top == 0 { return 0; }
        if (top & 1) != 0 { return 0; }
        let next = load::<usize>(top as *mut u8);
        commit store(s, next);
        top
    }
}

/// Waits a little for a drain of the calling CPU's list to finish (it lasts one `membarrier`).
fn wait_for_drain(round: &mut u32) {
    if *round < 64 {
        core::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
    *round = round.saturating_add(1);
}

/// A node of a [`Stack`]: the link word the stack uses (at offset 0), then your value. Allocate
/// it once (`Node::new`) and move the box between stacks and owners as often as you like: pushing
/// and popping never allocate.
#[repr(C)]
pub struct Node<T> {
    next: *mut Node<T>,
    value: T,
}

// SAFETY: the link is only used by the stack that owns the node; the node is data like `T`.
unsafe impl<T: Send> Send for Node<T> {}
// SAFETY: `&Node<T>` only gives `&T`.
unsafe impl<T: Sync> Sync for Node<T> {}

impl<T> Node<T> {
    /// A new unlinked node.
    pub fn new(value: T) -> Box<Node<T>> {
        Box::new(Node {
            next: ptr::null_mut(),
            value,
        })
    }

    /// The value (frees the node).
    #[allow(clippy::boxed_local)] // nodes only exist boxed: this takes the box a pop returned
    pub fn into_inner(self: Box<Self>) -> T {
        self.value
    }
}

impl<T: core::fmt::Debug> core::fmt::Debug for Node<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Node").field(&self.value).finish()
    }
}

impl<T> core::ops::Deref for Node<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> core::ops::DerefMut for Node<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

/// An intrusive per-CPU stack (LIFO free list) of boxed [`Node`]s.
///
/// [`push`](Stack::push) and [`pop`](Stack::pop) are restartable sequences on the calling CPU's
/// list (no atomic read-modify-write, no shared cache line). [`drain`](Stack::drain) takes another
/// CPU's whole list and [`steal`](Stack::steal) takes one node from it, from any thread, while
/// sections run on that CPU: see the module docs ([`crate::percpu`], "Cross-CPU operations") for the
/// protocol, which uses an rseq membarrier fence natively and the runtime's index lock in fallback
/// mode. While a drain of a CPU's list is in progress (one `membarrier` system call), pops on that
/// CPU find it empty and pushes wait for the drain to finish (so do not push from a signal handler
/// that may interrupt a drain of the same CPU's list on the same thread).
///
/// The stack owns the nodes on it and frees them when dropped.
///
/// ```
/// use rseq_dsl::percpu::{Node, Stack};
///
/// let free: Stack<[u8; 64]> = Stack::new();
/// for _ in 0..4 {
///     free.push(Node::new([0; 64]));
/// }
/// // Pop from this CPU's list (the thread may have moved: then this CPU's list may be empty).
/// if let Some(mut buf) = free.pop() {
///     buf[0] = 1;
///     free.push(buf);
/// }
/// // Take everything from every CPU.
/// let total: usize = (0..rseq_dsl::possible_cpus())
///     .map(|cpu| free.drain(cpu).unwrap().count())
///     .sum();
/// assert_eq!(total, 4);
/// ```
pub struct Stack<T> {
    /// The head word of every CPU's list (a non-owning view into `raw`'s pool chunks), held inline
    /// so that sections load the slot parameters from `self` directly, not through the pool's `Arc`.
    view: ManuallyDrop<PerCpu<usize>>,
    /// Keeps the pool (and so `view`'s memory) alive.
    raw: RawAlloc,
    /// Serializes cross-CPU operations (one mark at a time per list).
    remote: RemoteLock,
    _marker: PhantomData<Box<Node<T>>>,
}

// SAFETY: the stack owns boxed nodes; sending it sends them.
unsafe impl<T: Send> Send for Stack<T> {}
// SAFETY: shared use moves whole nodes between threads (push on one, pop on another), never shares
// a `&T` across threads; hence `T: Send` suffices.
unsafe impl<T: Send> Sync for Stack<T> {}

impl<T> core::fmt::Debug for Stack<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Stack")
            .field("cpus", &self.raw.cpus())
            .finish_non_exhaustive()
    }
}

impl<T> Default for Stack<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Stack<T> {
    fn layout() -> Layout {
        Layout::from_size_align(SIZE, 8).expect("valid layout")
    }

    /// An empty stack in the shared [`Pool`].
    pub fn new() -> Stack<T> {
        Self::from_raw(alloc_shared(Self::layout()).expect("8 bytes fit any pool"))
    }

    /// An empty stack in `pool`; `None` when the pool is full.
    pub fn new_in(pool: &Pool) -> Option<Stack<T>> {
        pool.alloc_raw(Self::layout()).map(Self::from_raw)
    }

    fn from_raw(raw: RawAlloc) -> Stack<T> {
        // The allocation is zeroed: every list starts empty and unmarked.
        // SAFETY: `raw` is an 8-aligned 8-byte allocation at `raw.offset()` in every chunk (zeroed: a
        // valid usize), and `raw`, which keeps the pool alive, is stored beside the view, which is
        // never used after it.
        let view = unsafe { raw.view::<usize>() };
        Stack {
            view,
            raw,
            remote: RemoteLock::new(),
            _marker: PhantomData,
        }
    }

    fn head(&self, cpu: usize) -> &AtomicUsize {
        // SAFETY: the in-bounds, 8-aligned head word of CPU `cpu`, living as long as `self`; every
        // access to it is atomic (sections' aligned single-copy-atomic accesses, these atomics, or
        // the fallback's atomic loads and stores).
        unsafe { AtomicUsize::from_ptr(self.raw.ptr(cpu).cast()) }
    }

    /// One attempt to push `node` on the calling CPU's list (waiting out a drain of that list);
    /// gives it back with the error when the section was restarted (nothing happened).
    ///
    /// # Errors
    /// Those of a generated `try_` function (see `docs/DSL.md`).
    #[inline]
    pub fn try_push_once(&self, node: Box<Node<T>>) -> Result<(), (Box<Node<T>>, Error)> {
        let p = Box::into_raw(node);
        let mut round = 0;
        loop {
            // SAFETY: `p` is a valid, exclusively owned node on no list; `view` is this stack's.
            match unsafe { try_stack_push(&self.view, p.cast()) } {
                Ok(true) => return Ok(()),
                Ok(false) => wait_for_drain(&mut round),
                // SAFETY: not committed: the node was not linked, so we still own it.
                Err(e) => return Err((unsafe { Box::from_raw(p) }, e)),
            }
        }
    }

    /// Pushes `node` on the calling CPU's list.
    #[inline]
    pub fn push(&self, node: Box<Node<T>>) {
        let p = Box::into_raw(node);
        let mut round = 0;
        // SAFETY: as in `try_push_once`; the infallible form retries aborts until it commits.
        while !unsafe { stack_push(&self.view, p.cast()) } {
            wait_for_drain(&mut round);
        }
    }

    /// One attempt to pop from the calling CPU's list: `Err(Error::Aborted)` when the section was
    /// restarted (nothing happened).
    ///
    /// # Errors
    /// Those of a generated `try_` function (see `docs/DSL.md`).
    #[inline]
    pub fn try_pop_once(&self) -> Result<Option<Box<Node<T>>>, Error> {
        // SAFETY: nodes on the lists are boxes owned by the stack, valid while linked.
        let top = unsafe { try_stack_pop(&self.view) }?;
        // SAFETY: the commit unlinked `top`, a box that was pushed: it is ours now.
        Ok((top != 0).then(|| unsafe { Box::from_raw(top as *mut Node<T>) }))
    }

    /// Pops the top of the calling CPU's list; `None` when that list is empty (other CPUs' lists
    /// may still hold nodes: see [`steal`](Stack::steal)).
    #[inline]
    pub fn pop(&self) -> Option<Box<Node<T>>> {
        // SAFETY: as in `try_pop_once`.
        let top = unsafe { stack_pop(&self.view) };
        // SAFETY: as in `try_pop_once`.
        (top != 0).then(|| unsafe { Box::from_raw(top as *mut Node<T>) })
    }

    /// A handle for pushing and popping from the calling thread in a loop: it holds the thread's
    /// token and a copy of the stack's slot parameters, so that, kept in a local, each operation is
    /// the section alone (as [`Counter::local`](super::Counter::local)).
    ///
    /// ```
    /// use rseq_dsl::{percpu::{Node, Stack}, this_thread};
    ///
    /// let s: Stack<u32> = Stack::new();
    /// this_thread(|t| {
    ///     let local = s.local(t);
    ///     let mut node = Node::new(7);
    ///     for _ in 0..1000 {
    ///         local.push(node);
    ///         node = local.pop().unwrap_or_else(|| Node::new(7));
    ///     }
    /// })
    /// .expect("this thread can run sequences");
    /// ```
    #[inline]
    pub fn local<'s, 't>(&'s self, thread: ThisThread<'t>) -> LocalStack<'s, 't, T> {
        LocalStack {
            // SAFETY: as in `from_raw`: the same allocation, and the view does not outlive `'s`,
            // during which `self.raw` keeps the pool alive.
            view: unsafe { self.raw.view::<usize>() },
            thread,
            _stack: PhantomData,
        }
    }

    /// Takes CPU `cpu`'s whole list, from any thread, while sections may run on that CPU.
    /// Not async-signal-safe (it takes a mutex and may make a `membarrier` system call).
    ///
    /// # Errors
    /// [`RemoteError::NoSuchCpu`]; natively [`RemoteError::Fence`] when the kernel refuses rseq
    /// membarrier fences (before 5.10, or seccomp) — nothing was changed then; in fallback mode
    /// [`RemoteError::WouldDeadlock`] from a signal handler interrupting a sequence of that index.
    pub fn drain(&self, cpu: usize) -> Result<Drain<T>, RemoteError> {
        check_cpu(cpu, self.raw.cpus())?;
        let _serial = self.remote.lock();
        let head = self.head(cpu);
        let list = if native() {
            fence_ready()?;
            // SAFETY: the head lives as long as `self`, which outlives the ticket (dropped at the
            // end of this block, after the mark is cleared). A fork now clears the mark in the child.
            let _ticket = unsafe { MarkTicket::new(head, MARK) };
            loop {
                // 1. Mark: sections that read the head from now on exit without a store.
                head.fetch_or(MARK, Ordering::AcqRel);
                // 2. Fence: every section that read the head before the mark has committed
                //    (visible to us now: membarrier orders it before our next loads) or is aborted.
                fence(cpu).unwrap_or_else(|e| {
                    panic!("rseq fence of CPU {cpu} failed after it was available: {e}")
                });
                // 3. Verify: a commit after the mark replaced it; then mark again.
                let h = head.load(Ordering::Acquire);
                if h & MARK != 0 {
                    // 4. No section can commit while the mark is set: the list is ours. Unmark
                    //    and empty it (release: later sections see it after our reads).
                    head.store(0, Ordering::Release);
                    break h & !MARK;
                }
            }
        } else {
            // Fallback sequences at index `cpu` run under this lock: holding it excludes them.
            let _g = crate::__private::fallback_lock_index(cpu).map_err(RemoteError::from_lock)?;
            head.swap(0, Ordering::Acquire)
        };
        let head = list as *mut Node<T>;
        Ok(Drain {
            head,
            _marker: PhantomData,
        })
    }

    /// Takes one node from CPU `cpu`'s list and moves the rest of that list onto the calling CPU's
    /// list (one splice). `Ok(None)` when CPU `cpu`'s list was empty. As [`drain`](Stack::drain)
    /// for when and how it may be called.
    ///
    /// # Errors
    /// As [`drain`](Stack::drain).
    pub fn steal(&self, cpu: usize) -> Result<Option<Box<Node<T>>>, RemoteError> {
        let mut list = self.drain(cpu)?;
        let first = list.next();
        if !list.head.is_null() {
            let first_rest = core::mem::replace(&mut list.head, ptr::null_mut());
            let mut last = first_rest;
            let mut round = 0;
            // SAFETY: the drained chain is exclusively ours and null-terminated; it is linked whole
            // onto the calling CPU's list.
            unsafe {
                while !(*last).next.is_null() {
                    last = (*last).next;
                }
                while !stack_push_chain(&self.view, first_rest.cast(), last.cast()) {
                    wait_for_drain(&mut round);
                }
            }
        }
        Ok(first)
    }
}

impl<T> Drop for Stack<T> {
    fn drop(&mut self) {
        // `&mut self`: no section or cross-CPU operation runs on this stack.
        for cpu in 0..self.raw.cpus() {
            drop(Drain::<T> {
                head: (self.head(cpu).swap(0, Ordering::Acquire) & !MARK) as *mut Node<T>,
                _marker: PhantomData,
            });
        }
    }
}

/// [`Stack::push`] and [`Stack::pop`] for one thread and one stack, with the lookups hoisted: see
/// [`Stack::local`].
pub struct LocalStack<'s, 't, T> {
    /// The heads' view, copied: a local `LocalStack` keeps these words in registers.
    view: ManuallyDrop<PerCpu<usize>>,
    thread: ThisThread<'t>,
    _stack: PhantomData<&'s Stack<T>>,
}

impl<T> LocalStack<'_, '_, T> {
    /// One attempt, as [`Stack::try_push_once`].
    ///
    /// # Errors
    /// Those of a generated `try_` function (see `docs/DSL.md`).
    #[inline]
    pub fn try_push_once(&self, node: Box<Node<T>>) -> Result<(), (Box<Node<T>>, Error)> {
        let p = Box::into_raw(node);
        let mut round = 0;
        loop {
            // SAFETY: `p` is a valid, exclusively owned node on no list; `view` is the stack's.
            match unsafe { try_stack_push_in(self.thread, &self.view, p.cast()) } {
                Ok(true) => return Ok(()),
                Ok(false) => wait_for_drain(&mut round),
                // SAFETY: not committed: the node was not linked, so we still own it.
                Err(e) => return Err((unsafe { Box::from_raw(p) }, e)),
            }
        }
    }

    /// As [`Stack::push`].
    #[inline]
    pub fn push(&self, node: Box<Node<T>>) {
        let p = Box::into_raw(node);
        let mut round = 0;
        // SAFETY: as in `try_push_once`; the infallible form retries aborts until it commits.
        while !unsafe { stack_push_in(self.thread, &self.view, p.cast()) } {
            wait_for_drain(&mut round);
        }
    }

    /// One attempt, as [`Stack::try_pop_once`].
    ///
    /// # Errors
    /// Those of a generated `try_` function (see `docs/DSL.md`).
    #[inline]
    pub fn try_pop_once(&self) -> Result<Option<Box<Node<T>>>, Error> {
        // SAFETY: nodes on the lists are boxes owned by the stack, valid while linked.
        let top = unsafe { try_stack_pop_in(self.thread, &self.view) }?;
        // SAFETY: the commit unlinked `top`, a box that was pushed: it is ours now.
        Ok((top != 0).then(|| unsafe { Box::from_raw(top as *mut Node<T>) }))
    }

    /// As [`Stack::pop`].
    #[inline]
    pub fn pop(&self) -> Option<Box<Node<T>>> {
        // SAFETY: as in `try_pop_once`.
        let top = unsafe { stack_pop_in(self.thread, &self.view) };
        // SAFETY: as in `try_pop_once`.
        (top != 0).then(|| unsafe { Box::from_raw(top as *mut Node<T>) })
    }
}

impl<T> core::fmt::Debug for LocalStack<'_, '_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LocalStack")
            .field("thread", &self.thread)
            .finish_non_exhaustive()
    }
}

/// The nodes taken by [`Stack::drain`], top first. Dropping it frees the rest.
pub struct Drain<T> {
    head: *mut Node<T>,
    _marker: PhantomData<Box<Node<T>>>,
}

// SAFETY: owns boxed nodes.
unsafe impl<T: Send> Send for Drain<T> {}
// SAFETY: `&Drain` gives access to nothing.
unsafe impl<T: Send> Sync for Drain<T> {}

impl<T> core::fmt::Debug for Drain<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Drain")
            .field("empty", &self.head.is_null())
            .finish()
    }
}

impl<T> Iterator for Drain<T> {
    type Item = Box<Node<T>>;
    fn next(&mut self) -> Option<Box<Node<T>>> {
        if self.head.is_null() {
            return None;
        }
        // SAFETY: the chain is exclusively ours (taken from a marked or locked head) and made of
        // boxes that were pushed; we unlink the first.
        let mut node = unsafe { Box::from_raw(self.head) };
        self.head = core::mem::replace(&mut node.next, ptr::null_mut());
        Some(node)
    }
}

impl<T> Drop for Drain<T> {
    fn drop(&mut self) {
        self.for_each(drop);
    }
}
