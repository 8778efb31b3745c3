//! [`Stack`]: intrusive per-CPU free lists, with cross-CPU `drain` and `steal`.

use core::alloc::Layout;
use core::marker::PhantomData;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use super::pool::{alloc_shared, Pool, PoolChunk, RawAlloc};
use super::{check_cpu, fence, fence_ready, native, RemoteError};
use crate::{rseq, Error, PerCpu};

/// Per-CPU layout at the allocation's offset: the selector, then two list heads. The selector holds
/// the chunk-relative offset of the *active* head (`off + HEAD_A` or `off + HEAD_B`); sections only
/// use the active head; the other one is empty except during a cross-CPU operation.
const SEL: usize = 0;
const HEAD_A: usize = 8;
const HEAD_B: usize = 16;
const SIZE: usize = 24;

rseq! {
    /// Links `node` (its link word at offset 0) on top of the calling CPU's active list.
    ///
    /// # Safety
    /// `off` is a live stack allocation of `chunks`; `node` is valid for writes and on no list.
    #[inline]
    unsafe fn stack_push(chunks: &PerCpu<PoolChunk>, off: usize, node: *mut u8) {
        let s = chunks.current();
        let h = load::<usize>(s + off);
        let old = load::<usize>(s + h);
        store::<usize>(node, old);
        commit store_release::<usize>(s + h, node as usize);
    }

    /// Links the chain `first ..= last` (already linked through their link words) on top of the
    /// calling CPU's active list.
    ///
    /// # Safety
    /// As for `stack_push`, for every node of the chain; `last` is the chain's last node.
    #[inline]
    unsafe fn stack_push_chain(chunks: &PerCpu<PoolChunk>, off: usize, first: *mut u8, last: *mut u8) {
        let s = chunks.current();
        let h = load::<usize>(s + off);
        let old = load::<usize>(s + h);
        store::<usize>(last, old);
        commit store_release::<usize>(s + h, first as usize);
    }

    /// Unlinks the top of the calling CPU's active list; 0 when it is empty.
    ///
    /// # Safety
    /// `off` is a live stack allocation of `chunks` whose nodes are valid while on a list.
    #[inline]
    unsafe fn stack_pop(chunks: &PerCpu<PoolChunk>, off: usize) -> usize {
        let s = chunks.current();
        let h = load::<usize>(s + off);
        let top = load::<usize>(s + h);
        if top == 0 { return 0; }
        let next = load::<usize>(top as *mut u8);
        commit store::<usize>(s + h, next);
        top
    }
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
/// mode.
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
    raw: RawAlloc,
    /// Serializes cross-CPU operations (they flip selectors and own the inactive heads).
    remote: Mutex<()>,
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
        Self::from_raw(alloc_shared(Self::layout()).expect("24 bytes fit any pool"))
    }

    /// An empty stack in `pool`; `None` when the pool is full.
    pub fn new_in(pool: &Pool) -> Option<Stack<T>> {
        pool.alloc_raw(Self::layout()).map(Self::from_raw)
    }

    fn from_raw(raw: RawAlloc) -> Stack<T> {
        let s = Stack {
            raw,
            remote: Mutex::new(()),
            _marker: PhantomData,
        };
        for cpu in 0..s.raw.cpus() {
            s.sel(cpu).store(s.raw.offset() + HEAD_A, Ordering::Relaxed);
        }
        s
    }

    fn word(&self, cpu: usize, at: usize) -> &AtomicUsize {
        // SAFETY: an in-bounds, 8-aligned word of this allocation (at < SIZE), living as long as
        // `self`; every access to it is atomic (sections' aligned single-copy-atomic accesses, these
        // atomics, or the fallback's atomic loads and stores).
        unsafe { AtomicUsize::from_ptr(self.raw.ptr(cpu).add(at).cast()) }
    }

    fn sel(&self, cpu: usize) -> &AtomicUsize {
        self.word(cpu, SEL)
    }

    fn head(&self, cpu: usize, chunk_offset: usize) -> &AtomicPtr<Node<T>> {
        let at = chunk_offset - self.raw.offset();
        debug_assert!(at == HEAD_A || at == HEAD_B);
        // SAFETY: as in `word`; AtomicPtr has the layout of AtomicUsize.
        unsafe { AtomicPtr::from_ptr(self.raw.ptr(cpu).add(at).cast()) }
    }

    /// One attempt to push `node` on the calling CPU's list; gives it back with the error when the
    /// section was restarted (nothing happened).
    ///
    /// # Errors
    /// Those of a generated `try_` function (see `docs/DSL.md`).
    #[inline]
    pub fn try_push_once(&self, node: Box<Node<T>>) -> Result<(), (Box<Node<T>>, Error)> {
        let p = Box::into_raw(node);
        // SAFETY: `p` is a valid, exclusively owned node on no list; the allocation is a live stack
        // allocation of these chunks.
        match unsafe { try_stack_push(self.raw.chunks(), self.raw.offset(), p.cast()) } {
            Ok(()) => Ok(()),
            // SAFETY: not committed: the node was not linked, so we still own it.
            Err(e) => Err((unsafe { Box::from_raw(p) }, e)),
        }
    }

    /// Pushes `node` on the calling CPU's list.
    #[inline]
    pub fn push(&self, node: Box<Node<T>>) {
        let p = Box::into_raw(node);
        // SAFETY: as in `try_push_once`; the infallible form retries until it commits.
        unsafe { stack_push(self.raw.chunks(), self.raw.offset(), p.cast()) }
    }

    /// One attempt to pop from the calling CPU's list: `Err(Error::Aborted)` when the section was
    /// restarted (nothing happened).
    ///
    /// # Errors
    /// Those of a generated `try_` function (see `docs/DSL.md`).
    #[inline]
    pub fn try_pop_once(&self) -> Result<Option<Box<Node<T>>>, Error> {
        // SAFETY: nodes on the lists are boxes owned by the stack, valid while linked.
        let top = unsafe { try_stack_pop(self.raw.chunks(), self.raw.offset()) }?;
        // SAFETY: the commit unlinked `top`, a box that was pushed: it is ours now.
        Ok((top != 0).then(|| unsafe { Box::from_raw(top as *mut Node<T>) }))
    }

    /// Pops the top of the calling CPU's list; `None` when that list is empty (other CPUs' lists
    /// may still hold nodes: see [`steal`](Stack::steal)).
    #[inline]
    pub fn pop(&self) -> Option<Box<Node<T>>> {
        // SAFETY: as in `try_pop_once`.
        let top = unsafe { stack_pop(self.raw.chunks(), self.raw.offset()) };
        // SAFETY: as in `try_pop_once`.
        (top != 0).then(|| unsafe { Box::from_raw(top as *mut Node<T>) })
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
        let _serial = self.remote.lock().unwrap_or_else(PoisonError::into_inner);
        let off = self.raw.offset();
        let head = if native() {
            fence_ready()?;
            let sel = self.sel(cpu);
            let old = sel.load(Ordering::Relaxed);
            let new = if old == off + HEAD_A {
                off + HEAD_B
            } else {
                off + HEAD_A
            };
            // 1. Redirect: sections that read the selector from now on use the other (empty) head.
            sel.store(new, Ordering::Release);
            // 2. Fence: every section that read the old selector has committed (visible to us now:
            //    membarrier orders it before our next loads) or is aborted and will re-read it.
            fence(cpu).unwrap_or_else(|e| {
                panic!("rseq fence of CPU {cpu} failed after it was available: {e}")
            });
            // 3. The old head is quiescent: no section can commit to it any more. Take it.
            self.head(cpu, old).swap(ptr::null_mut(), Ordering::Acquire)
        } else {
            // Fallback sequences at index `cpu` run under this lock: holding it excludes them.
            let _g = crate::__private::fallback_lock_index(cpu).map_err(RemoteError::from_lock)?;
            let active = self.sel(cpu).load(Ordering::Relaxed);
            self.head(cpu, active)
                .swap(ptr::null_mut(), Ordering::Acquire)
        };
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
            // SAFETY: the drained chain is exclusively ours and null-terminated.
            unsafe {
                while !(*last).next.is_null() {
                    last = (*last).next;
                }
                stack_push_chain(
                    self.raw.chunks(),
                    self.raw.offset(),
                    first_rest.cast(),
                    last.cast(),
                );
            }
        }
        Ok(first)
    }
}

impl<T> Drop for Stack<T> {
    fn drop(&mut self) {
        // `&mut self`: no section or cross-CPU operation runs on this stack.
        for cpu in 0..self.raw.cpus() {
            for at in [HEAD_A, HEAD_B] {
                let head = self.raw.offset() + at;
                drop(Drain::<T> {
                    head: self
                        .head(cpu, head)
                        .swap(ptr::null_mut(), Ordering::Acquire),
                    _marker: PhantomData,
                });
            }
        }
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
        // SAFETY: the chain is exclusively ours (taken from a quiescent head) and made of boxes that
        // were pushed; we unlink the first.
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
