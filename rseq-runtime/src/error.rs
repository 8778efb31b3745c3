//! Typed errors of the runtime and of generated sequences.

use core::fmt;

/// Why sequences cannot run natively (with a kernel-protected critical section).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// The user asked for fallback mode (`RSEQ_DSL_FALLBACK=1`).
    DisabledByUser,
    /// `rseq` returned `ENOSYS`: the kernel (or an emulator such as qemu-user or gVisor, or a seccomp
    /// filter) does not provide it.
    NoKernelSupport,
    /// `rseq` returned `EPERM`, typically a seccomp filter.
    Forbidden,
    /// `rseq` returned `EINVAL`: most likely another registrant already registered a different area for
    /// this thread (a second rseq library, or a glibc whose registration we could not find).
    Conflict,
    /// `rseq` failed with another errno.
    Errno(i32),
    /// glibc owns the registration but it failed for this thread (`cpu_id == -2`).
    GlibcRegistrationFailed,
    /// glibc registered the thread, but this runtime cannot locate glibc's area on this architecture.
    UnsupportedArch,
    /// The kernel asks for a larger or more strictly aligned area than this runtime reserves (256 bytes).
    AreaTooLarge {
        /// `AT_RSEQ_FEATURE_SIZE`.
        feature_size: usize,
        /// `AT_RSEQ_ALIGN`.
        align: usize,
    },
}

impl Unavailable {
    pub(crate) fn from_errno(errno: i32) -> Self {
        match errno {
            libc::ENOSYS => Unavailable::NoKernelSupport,
            libc::EPERM => Unavailable::Forbidden,
            libc::EINVAL => Unavailable::Conflict,
            e => Unavailable::Errno(e),
        }
    }
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::DisabledByUser => f.write_str("disabled by the user (RSEQ_DSL_FALLBACK)"),
            Unavailable::NoKernelSupport => f.write_str("the kernel does not support rseq (ENOSYS)"),
            Unavailable::Forbidden => f.write_str("rseq is forbidden, e.g. by a seccomp filter (EPERM)"),
            Unavailable::Conflict => {
                f.write_str("another registrant owns this thread's rseq area (EINVAL)")
            }
            Unavailable::Errno(e) => write!(f, "rseq registration failed with errno {e}"),
            Unavailable::GlibcRegistrationFailed => {
                f.write_str("glibc's rseq registration failed for this thread")
            }
            Unavailable::UnsupportedArch => {
                f.write_str("cannot locate glibc's rseq area on this architecture")
            }
            Unavailable::AreaTooLarge { feature_size, align } => write!(
                f,
                "the kernel wants an rseq area of {feature_size} bytes aligned to {align}, more than reserved"
            ),
        }
    }
}

/// An error from a sequence or from the runtime.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The kernel aborted the critical section (preemption, migration or signal): nothing was committed.
    /// Retrying is always correct; the infallible generated functions do so.
    Aborted,
    /// An explicit-CPU sequence ran on another CPU than the one it names.
    WrongCpu {
        /// The CPU the sequence names.
        expected: usize,
        /// The CPU the thread was on.
        current: usize,
    },
    /// A slot index (CPU id, mm_cid or explicit CPU) is not below the number of slots.
    IndexOutOfRange {
        /// The index.
        index: usize,
        /// The number of slots.
        len: usize,
    },
    /// `mm_cid` is not usable: the kernel does not advertise it (pre-6.3) or the thread is not
    /// registered.
    MmCidUnavailable,
    /// `node_id` is not usable: the kernel does not advertise it or the thread is not registered.
    NodeIdUnavailable,
    /// The process runs sequences natively but this thread cannot register (see the reason). Running
    /// the sequence unprotected would race with the other threads, so it is refused.
    Unavailable(Unavailable),
    /// Fallback mode: every slot the sequence could use is locked by this very thread (a signal handler
    /// ran a sequence while the code it interrupted holds the slot). Waiting would never end.
    WouldDeadlock,
    /// A `memcpy` length is above the documented cap.
    TooLong {
        /// The requested length.
        len: usize,
        /// The cap.
        max: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Aborted => f.write_str("critical section aborted by the kernel"),
            Error::WrongCpu { expected, current } => {
                write!(f, "sequence for CPU {expected} ran on CPU {current}")
            }
            Error::IndexOutOfRange { index, len } => {
                write!(f, "slot index {index} out of range for {len} slots")
            }
            Error::MmCidUnavailable => {
                f.write_str("mm_cid is not available on this kernel or thread")
            }
            Error::NodeIdUnavailable => {
                f.write_str("node_id is not available on this kernel or thread")
            }
            Error::Unavailable(r) => write!(f, "this thread cannot use rseq: {r}"),
            Error::WouldDeadlock => {
                f.write_str("every usable slot is held by the code this signal handler interrupted")
            }
            Error::TooLong { len, max } => {
                write!(f, "copy of {len} bytes exceeds the cap of {max}")
            }
        }
    }
}

impl std::error::Error for Error {}
