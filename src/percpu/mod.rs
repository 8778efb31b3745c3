//! Ready-made per-CPU structures, each written with [`rseq!`](crate::rseq) (dogfood):
//!
//! | structure | operations (one restartable sequence each) | cross-CPU |
//! |---|---|---|
//! | [`Counter`] | `add`, `sub`; in a loop, `local(thread)` ([`LocalCounter`]) | `sum`, `reset` (no fence needed, see below) |
//! | [`SpinLock<T>`] | `lock` / `try_lock` this CPU's instance; the guard unlocks (release store) | `is_locked` |
//! | [`Stack<T>`] | intrusive free list of [`Node`]s: `push`, `pop` | `drain(cpu)`, `steal(cpu)` |
//! | [`Buffer<T>`] | bounded array stack of boxes: `push`, `pop` | `drain(cpu)` |
//! | [`ItemBuffer<T, N>`] | bounded buffer of small [`Plain`] items copied with `memcpy` (word-wise): `push`, `pop`; in a loop, `local(thread)` ([`LocalItemBuffer`]) | `drain(cpu)` |
//! | [`Pool`] | per-CPU memory with a fixed stride; [`PoolBox`]: `this_cpu()`, `on_cpu(i)` | |
//!
//! Every structure takes its per-CPU data from a [`Pool`] (the shared one with `new()`, yours
//! with `new_in(&pool)`), so the data of all structures a CPU uses sits in that CPU's chunk. Each
//! structure keeps, inline, a non-owning `PerCpu` view of its own words in every chunk (the chunk
//! base plus the allocation's offset, the pool's stride): its sequences take that view as their
//! `&PerCpu<..>` parameter, so a call loads the slot parameters from the structure itself rather
//! than through the pool's `Arc` (half the cost per call for the counter and the stack; see
//! docs/benchmarks).
//!
//! ```
//! use rseq_dsl::percpu::{Counter, ItemBuffer, Node, Pool, Stack};
//!
//! let pool = Pool::new();
//! let requests = Counter::new_in(&pool).unwrap();
//! let free: Stack<[u8; 256]> = Stack::new_in(&pool).unwrap();
//! let events: ItemBuffer<[u64; 2], 64> = ItemBuffer::new_in(&pool).unwrap();
//!
//! requests.add(1);
//! free.push(Node::new([0; 256]));
//! events.push([7, 42]).unwrap();
//!
//! assert_eq!(requests.sum(), 1);
//! let drained: usize = (0..rseq_dsl::possible_cpus())
//!     .map(|cpu| free.drain(cpu).unwrap().count() + events.drain(cpu).unwrap().len())
//!     .sum();
//! assert_eq!(drained, 2);
//! ```
//!
//! # Fallback mode
//!
//! Every operation works in fallback mode (`RSEQ_DSL_FALLBACK=1`, or no kernel support): the
//! generated fallback bodies run under the runtime's per-index locks, and the cross-CPU operations
//! take the lock of the index they operate on
//! ([`fallback_lock_index`](crate::fallback::fallback_lock_index)), which excludes every sequence
//! at that index.
//!
//! # Cross-CPU operations
//!
//! A restartable sequence is atomic only with respect to other sequences on the same CPU. Another
//! thread changing a CPU's data with an ordinary atomic instruction races with a section that has
//! read the old value and commits after the change — and fencing *after* the change does not help
//! when that section committed before the fence. So the naive protocol "swap the head with an atomic
//! exchange, then `rseq_fence(cpu)`" is **wrong** for a stack: a push that loaded head `A`, then
//! the exchange (which takes `A`), then the push's commit (head = node, `node.next = A`) leaves `A`
//! both in the taken list and on the CPU's list — a duplicate, whatever the fence does afterwards.
//! The structures use two protocols instead:
//!
//! 1. **Mark, fence, verify** ([`Stack::drain`], [`Stack::steal`], [`Buffer::drain`],
//!    [`ItemBuffer::drain`]). The drainer (one at a time per structure, under a mutex) sets a mark
//!    in the CPU's word that every section reads first — bit 0 of a stack's head (nodes are at
//!    least 8-aligned), the top bit of a buffer's `top` — with an atomic `fetch_or`, then calls
//!    `rseq_fence(Some(cpu))` (`membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ,
//!    MEMBARRIER_CMD_FLAG_CPU, cpu)`), then checks that the mark is still there.
//!    - A section that reads a marked word exits without a store: a pop sees "empty" (the
//!      buffers' pop tests empty and marked with one unsigned compare, `top - 1 >= 16384`), a
//!      buffer push sees "full", a stack push waits for the drain to end (it lasts one
//!      `membarrier`).
//!    - When the fence returns, every section that read the word before the mark has either
//!      committed — and its stores are visible to the drainer, since membarrier issues a full
//!      barrier on the target CPU and in the caller — or been aborted (and will re-read the word).
//!      Preemption and migration abort sections too, so no section spans the fence.
//!    - A section that read the word before the mark and committed *after* the mark but before
//!      the fence overwrote the mark: the drainer sees it gone and marks again (the nodes or items
//!      it would have taken are simply still on the list).
//!    - Once the mark has survived a fence, no section can commit until the drainer clears it, so
//!      the drainer reads the list or the items exclusively, then stores the empty, unmarked word
//!      (release). An aborted push may have written the node's link or the slot *at* `top`, never
//!      anything the drainer takes.
//! 2. **Never write the instances** ([`Counter::reset`]). Each CPU's counter is a running total
//!    that only sections write; a reset reads every instance once and remembers, per CPU, how much
//!    it took. No fence and nothing on the hot path (a counter is too cheap to afford even the mark
//!    test).
//!
//! A third protocol was implemented and measured first for the stack: **redirect, fence, take**
//! (two heads per CPU and a selector word that sections load to find the active head; the drainer
//! flips the selector, fences, and then owns the old head, with no busy window). It is correct and
//! never makes a push wait, but the selector load sits on the address of every access to the head:
//! on the benchmark machine it cost about 1.5 ns per push or pop (3.7 instead of 2.2 ns), so the
//! stack uses the mark instead.
//!
//! **Loop forms** (`Counter::local`, `SpinLock::local`, `Stack::local`, `Buffer::local`,
//! `ItemBuffer::local`) call a twin of each sequence with a `ThisThread` parameter (the same steps).
//! The plain methods keep their own sequence: routing them through `this_thread` and the loop form
//! (one sequence per operation, a bitwise copy of the view) measured 2-3.5x slower per operation
//! (stack push + pop 0.93 -> 3.25 ns, spinlock 1.77 -> 4.43 ns). `ItemBuffer`'s fourteen sequences
//! are written once and emitted in both forms by a `macro_rules!` wrapper (`item_sequences!` in
//! `buffer.rs`); the other structures' few twins are still written out.
//!
//! **fork.** A `fork()` by another thread while a cross-CPU operation runs must not strand the
//! child: the mark would stay set (pushes waiting or "full", pops "empty" for good) and the
//! structure's serialising lock held by a thread the child does not have. Protocol 1 registers each
//! mark before it sets it (`rseq_dsl::remote::MarkTicket`) and the runtime's `pthread_atfork` child
//! handler clears the registered marks; the serialising locks (`remote::RemoteLock`, also behind
//! [`Counter::reset`]) are free in the child when they were taken before the fork. The data under a
//! mark is intact in the child: items not yet taken stay, items taken into the drainer (a thread
//! the child does not have) leak there, nothing is duplicated (`tests/fork_drain.rs`).
//!
//! In fallback mode protocol 1 just holds the index's lock while it takes the data.
//! Natively they need the rseq membarrier commands (Linux 5.10+); without them the cross-CPU
//! operations return [`RemoteError::Fence`] before changing anything. The cross-CPU operations are
//! not async-signal-safe (a lock, a system call). Natively the per-CPU operations are (except
//! [`SpinLock::lock`], which may wait for the code the handler interrupted); in fallback mode they
//! follow the runtime's rules ([`crate::fallback`]).
//!
//! # ABA
//!
//! The classic ABA problem of lock-free stacks (a pop reads `top = A` and `next = B`, meanwhile `A`
//! is popped, `B` freed and `A` pushed back, then the pop installs the freed `B`) cannot happen
//! within a CPU: the pop's load of `top`, its load of `top.next` and its commit are one section, and
//! any other operation on that CPU's list preempts it, which aborts it. The only other writers are
//! cross-CPU operations, and they take a list only after the fence of protocol 1, which aborts every
//! section that could still use it. No tags, counters or hazard pointers are needed.
//!
//! # Memory ordering
//!
//! The per-step contract is `docs/DSL.md` ("Memory ordering"); here is why each structure is
//! correct on weakly ordered CPUs (aarch64, arm, riscv64, ppc64le, loongarch64), not only on TSO
//! x86_64 and s390x.
//!
//! - Same-CPU handoffs need no barrier. A push and the pop that takes its node or item run on the
//!   same CPU (each section runs on the CPU whose slot it touches), and a CPU sees its own accesses
//!   in program order; what the pushing thread wrote on another CPU before it migrated is visible
//!   on the new CPU because the kernel's context switch is a full barrier. Pushes still commit with
//!   `commit store_release`, so a node's link and contents are ordered before the new head or `top`
//!   for any other observer (the drainer).
//! - Consuming: a pop's load of `top.next` and the caller's reads of the popped node go through the
//!   pointer the section loaded, an address dependency, which every supported CPU orders after the
//!   load that produced the pointer.
//! - [`SpinLock`] is the one structure that hands data between CPUs without a fence: its guard
//!   unlocks with a release store from whatever CPU the holder moved to, so its section reads the
//!   lock word with `load_acquire` (a barrier after the load on weakly ordered CPUs), which pairs
//!   with that store; `tests/ordering.rs` checks the handoff under a signal storm.
//! - [`Counter`] publishes nothing but its instances: single-copy-atomic word stores that `sum` and
//!   `reset` read with relaxed atomics (each add is counted whole or not at all).
//! - Cross-CPU: the mark `fetch_or` precedes the fence; the membarrier system call has a full
//!   barrier before and after the IPIs and one in the IPI handler; the drainer's loads of the
//!   marked head or `top` (acquire) and of the nodes or items follow it, and the release store that
//!   clears the mark follows them.
//! - Fallback: the runtime's index lock (acquire on lock, release on unlock) orders all accesses of a
//!   sequence with the previous holder's; the sequence bodies use relaxed atomics under it.

mod buffer;
mod counter;
mod pool;
mod spinlock;
mod stack;

pub use buffer::{Buffer, ItemBuffer, LocalBuffer, LocalItemBuffer, Plain};
pub use counter::{Counter, LocalCounter};
pub use pool::{Pool, PoolBox, PoolChunk, POOL_MAX_ALIGN, POOL_STRIDE};
pub use spinlock::{LocalSpinLock, SpinGuard, SpinLock};
pub use stack::{Drain, LocalStack, Node, Stack};

use std::sync::atomic::{AtomicI32, Ordering};

use crate::{Error, Mode};

/// Why a cross-CPU operation (drain, steal) could not run.
#[derive(Debug)]
#[non_exhaustive]
pub enum RemoteError {
    /// `cpu` is not below the number of possible CPUs.
    NoSuchCpu {
        /// The CPU asked for.
        cpu: usize,
        /// The number of possible CPUs.
        len: usize,
    },
    /// Natively: the kernel refused to register or run rseq membarrier fences (Linux before 5.10,
    /// or a seccomp filter). Nothing was changed.
    Fence(std::io::Error),
    /// Fallback mode: this thread already holds the index's lock (a signal handler interrupted a
    /// sequence of that index); waiting would never end.
    WouldDeadlock,
}

impl RemoteError {
    fn from_lock(e: Error) -> RemoteError {
        match e {
            Error::IndexOutOfRange { index, len } => RemoteError::NoSuchCpu { cpu: index, len },
            _ => RemoteError::WouldDeadlock,
        }
    }
}

impl core::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RemoteError::NoSuchCpu { cpu, len } => {
                write!(f, "CPU {cpu} out of range for {len} possible CPUs")
            }
            RemoteError::Fence(e) => write!(f, "rseq membarrier fences are unavailable: {e}"),
            RemoteError::WouldDeadlock => {
                f.write_str("this thread holds the fallback lock of that CPU index")
            }
        }
    }
}

impl std::error::Error for RemoteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RemoteError::Fence(e) => Some(e),
            _ => None,
        }
    }
}

fn check_cpu(cpu: usize, len: usize) -> Result<(), RemoteError> {
    if cpu < len {
        Ok(())
    } else {
        Err(RemoteError::NoSuchCpu { cpu, len })
    }
}

/// Whether sequences run natively in this process (else the fallback locks are in use).
fn native() -> bool {
    crate::status().mode == Mode::Native
}

/// Registers the process for rseq fences; the kernel's answer is cached. Threads racing to ask
/// each register (the registration is idempotent): no `Once`, which a `fork()` in the middle of
/// its initialisation would leave running forever in the child.
fn fence_ready() -> Result<(), RemoteError> {
    /// 0: not asked yet; -1: registered; otherwise the errno of the refusal.
    static READY: AtomicI32 = AtomicI32::new(0);
    const EINVAL: i32 = 22;
    let mut r = READY.load(Ordering::Acquire);
    if r == 0 {
        // An error without an errno cannot come from a system call; report it as EINVAL.
        r = match crate::membarrier::register_rseq() {
            Ok(()) => -1,
            Err(e) => e.raw_os_error().filter(|&e| e > 0).unwrap_or(EINVAL),
        };
        READY.store(r, Ordering::Release);
    }
    if r == -1 {
        Ok(())
    } else {
        Err(RemoteError::Fence(std::io::Error::from_raw_os_error(r)))
    }
}

/// Restarts every section of this process running on `cpu` (after [`fence_ready`]).
///
/// A forked child can find the kernel refusing the fence (`EPERM`: not registered) although the
/// registration cached by [`fence_ready`] says otherwise: seen on riscv64 6.12 and loongarch64 7.2
/// kernels, for a child forked while another thread of the parent was draining, in 1 of 20-30
/// forks (`tests/fork_drain.rs`). The registration is idempotent, so the fence registers again and
/// retries once.
fn fence(cpu: usize) -> std::io::Result<()> {
    /// `EPERM` on every Linux architecture.
    const EPERM: i32 = 1;
    match crate::membarrier::rseq_fence(Some(cpu)) {
        Err(e) if e.raw_os_error() == Some(EPERM) => {
            crate::membarrier::register_rseq()?;
            crate::membarrier::rseq_fence(Some(cpu))
        }
        r => r,
    }
}
