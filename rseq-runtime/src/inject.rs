//! Fault injection: delay counts for the injection points of instrumented sequences.
//!
//! Sequences compiled with the `inject` feature of `rseq-dsl` (or the `#[rseq(inject)]` attribute)
//! contain a delay loop at every injection point: before the descriptor store, after the index
//! check, after each load, compare-exit and speculative store, and just before the commit. Each loop
//! runs `delay(point)` iterations (a `sub`/`jae` pair on x86_64, a few cycles each), read from
//! [`DELAYS`] at that point, so a test can widen one window of the critical section at a time and
//! make preemption, migration and signals land inside it (the kernel selftests do the same).
//!
//! The counts are process-wide and start at 0 (a loop of 0 iterations). Without the feature or the
//! attribute the generated code contains no delay loop and never reads [`DELAYS`].
//!
//! ```
//! use rseq_runtime::inject::{set_delay, delay, Point};
//! set_delay(Point::BeforeCommit, 500);
//! assert_eq!(delay(Point::BeforeCommit), 500);
//! rseq_runtime::inject::clear();
//! ```

use core::sync::atomic::{AtomicU64, Ordering};

/// An injection point. The order is the code generator's (`rseq_codegen::ir::InjectPoint`): the
/// generated asm reads `DELAYS[point as usize]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum Point {
    /// Before the descriptor address is stored into `rseq_cs` (outside the section).
    BeforeArm = 0,
    /// After a slot's index check.
    AfterIndex = 1,
    /// After each `load`.
    AfterLoad = 2,
    /// After each compare-exit.
    AfterCompare = 3,
    /// After each speculative `store` / `memcpy`.
    AfterStore = 4,
    /// Just before the committing store.
    BeforeCommit = 5,
}

/// Number of injection points.
pub const POINTS: usize = 6;

impl Point {
    /// Every point, in table order.
    pub const ALL: [Point; POINTS] = [
        Point::BeforeArm,
        Point::AfterIndex,
        Point::AfterLoad,
        Point::AfterCompare,
        Point::AfterStore,
        Point::BeforeCommit,
    ];

    /// The point's name (as in the code generator's annotations).
    pub fn name(self) -> &'static str {
        match self {
            Point::BeforeArm => "before_arm",
            Point::AfterIndex => "after_index",
            Point::AfterLoad => "after_load",
            Point::AfterCompare => "after_compare",
            Point::AfterStore => "after_store",
            Point::BeforeCommit => "before_commit",
        }
    }
}

/// The delay table the generated asm reads (through a `sym` operand; one `u64` per point). Use
/// [`set_delay`] rather than writing it directly.
#[doc(hidden)]
pub static DELAYS: [AtomicU64; POINTS] = [const { AtomicU64::new(0) }; POINTS];

/// Whether the `inject` feature of the runtime is on (`rseq-dsl`'s `inject` feature turns it on
/// together with the macro's): then every sequence of the build has injection points. Sequences
/// with `#[rseq(inject)]` have them regardless.
pub const ENABLED: bool = cfg!(feature = "inject");

/// Sets the number of delay-loop iterations at `point` (0 = no delay).
pub fn set_delay(point: Point, count: u64) {
    DELAYS[point as usize].store(count, Ordering::Relaxed);
}

/// The number of delay-loop iterations at `point`.
pub fn delay(point: Point) -> u64 {
    DELAYS[point as usize].load(Ordering::Relaxed)
}

/// Sets every point's delay to 0.
pub fn clear() {
    for d in &DELAYS {
        d.store(0, Ordering::Relaxed);
    }
}

/// Reports a failed debug check (`#[rseq(debug_checks)]` or the `debug-checks` feature) and aborts
/// the process: the section was about to commit although the index or the data one of its compares
/// read changed inside it, i.e. it was not protected (silent corruption made loud).
///
/// Async-signal-safe (sequences run in signal handlers): the message is formatted on the stack and
/// written with `write(2)`, then `abort()`.
#[cold]
#[inline(never)]
pub fn debug_check_failed(sequence: &str, what: &str, index: u64) -> ! {
    use core::fmt::Write as _;

    struct Buf {
        bytes: [u8; 1024],
        len: usize,
    }
    impl core::fmt::Write for Buf {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let n = s.len().min(self.bytes.len() - self.len);
            self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
            self.len += n;
            Ok(())
        }
    }
    let mut buf = Buf {
        bytes: [0; 1024],
        len: 0,
    };
    let _ = writeln!(
        buf,
        "rseq-dsl: debug check failed in `{sequence}` (index {index} at the start): {what}; aborting"
    );
    // SAFETY: write(2) of an initialised stack buffer to stderr, then abort(3); both are
    // async-signal-safe and have no other preconditions.
    unsafe {
        libc::write(2, buf.bytes.as_ptr().cast(), buf.len);
        libc::abort()
    }
}
