//! The kernel ABI: `struct rseq` (the per-thread area), `struct rseq_cs` (the descriptor of one critical
//! section), the abort signature of each architecture and the constants of the `rseq` syscall.
//!
//! Layouts follow `include/uapi/linux/rseq.h`; the offsets are checked at compile time below because the
//! generated asm addresses the fields by number.

/// The per-thread area the kernel updates (`struct rseq`).
///
/// Never create a Rust reference to a live area: the kernel writes `cpu_id_start`, `cpu_id`, `node_id`,
/// `mm_cid` (and clears `rseq_cs`) behind the compiler's back, on any return to user space. Access it
/// through raw pointers with volatile reads, as [`crate::cpu_id`] and the generated sequences do. User space only ever writes `rseq_cs`
/// (and `flags`, once, as 0 before registering an area of its own).
#[repr(C, align(32))]
#[derive(Debug)]
pub struct RseqArea {
    /// CPU number, always valid (kernel-written).
    pub cpu_id_start: u32,
    /// CPU number, or -1 (never registered) / -2 (registration failed, glibc) as `u32`.
    pub cpu_id: u32,
    /// Address of the current [`RseqCs`] descriptor, or 0 (user-written, kernel-cleared).
    pub rseq_cs: u64,
    /// Must be 0 (user-written once); high bits are kernel status on 7.0+.
    pub flags: u32,
    /// NUMA node of `cpu_id` (kernel-written, 6.3+ with feature size >= 24).
    pub node_id: u32,
    /// Memory-map concurrency id, `< possible CPUs` (kernel-written, 6.3+ with feature size >= 28).
    pub mm_cid: u32,
    /// Time-slice extension control (7.0+).
    pub slice_ctrl: u32,
}

/// A critical-section descriptor (`struct rseq_cs`): 32 bytes, 32-byte aligned, version 0, flags 0.
#[repr(C, align(32))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RseqCs {
    /// Always 0.
    pub version: u32,
    /// Always 0 (the old "no restart on ..." flags are deprecated).
    pub flags: u32,
    /// First instruction of the section.
    pub start_ip: u64,
    /// Length of the section: the end is the address right after the committing store.
    pub post_commit_offset: u64,
    /// Where the kernel jumps on abort; the 4 bytes before it hold the signature.
    pub abort_ip: u64,
}

/// Offset of `cpu_id_start` in [`RseqArea`].
pub const AREA_CPU_ID_START_OFFSET: usize = 0;
/// Offset of `cpu_id` in [`RseqArea`]: read by every section to find its slot.
pub const AREA_CPU_ID_OFFSET: usize = 4;
/// Offset of `rseq_cs` in [`RseqArea`]: the descriptor address is stored here before the section.
pub const AREA_RSEQ_CS_OFFSET: usize = 8;
/// Offset of `flags` in [`RseqArea`].
pub const AREA_FLAGS_OFFSET: usize = 16;
/// Offset of `node_id` in [`RseqArea`].
pub const AREA_NODE_ID_OFFSET: usize = 20;
/// Offset of `mm_cid` in [`RseqArea`]: read by `#[rseq(index = mm_cid)]` sections.
pub const AREA_MM_CID_OFFSET: usize = 24;
/// Offset of `slice_ctrl` in [`RseqArea`].
pub const AREA_SLICE_CTRL_OFFSET: usize = 28;
/// The original (legacy) registration size, also the minimum.
pub const ORIG_RSEQ_SIZE: usize = 32;

const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(offset_of!(RseqArea, cpu_id_start) == AREA_CPU_ID_START_OFFSET);
    assert!(offset_of!(RseqArea, cpu_id) == AREA_CPU_ID_OFFSET);
    assert!(offset_of!(RseqArea, rseq_cs) == AREA_RSEQ_CS_OFFSET);
    assert!(offset_of!(RseqArea, flags) == AREA_FLAGS_OFFSET);
    assert!(offset_of!(RseqArea, node_id) == AREA_NODE_ID_OFFSET);
    assert!(offset_of!(RseqArea, mm_cid) == AREA_MM_CID_OFFSET);
    assert!(offset_of!(RseqArea, slice_ctrl) == AREA_SLICE_CTRL_OFFSET);
    assert!(size_of::<RseqArea>() == 32 && align_of::<RseqArea>() == 32);
    assert!(offset_of!(RseqCs, version) == 0);
    assert!(offset_of!(RseqCs, flags) == 4);
    assert!(offset_of!(RseqCs, start_ip) == 8);
    assert!(offset_of!(RseqCs, post_commit_offset) == 16);
    assert!(offset_of!(RseqCs, abort_ip) == 24);
    assert!(size_of::<RseqCs>() == 32 && align_of::<RseqCs>() == 32);
};

/// `cpu_id` value of an area that was never registered.
pub const CPU_ID_UNINITIALIZED: u32 = -1i32 as u32;
/// `cpu_id` value glibc leaves when its registration failed.
pub const CPU_ID_REGISTRATION_FAILED: u32 = -2i32 as u32;

/// `rseq(2)` flag: unregister.
pub const RSEQ_FLAG_UNREGISTER: i32 = 1;

/// `getauxval` key of the kernel's rseq feature size (bytes of `struct rseq` it knows about).
pub const AT_RSEQ_FEATURE_SIZE: libc::c_ulong = 27;
/// `getauxval` key of the alignment the kernel requires for a registration longer than 32 bytes.
pub const AT_RSEQ_ALIGN: libc::c_ulong = 28;

/// The abort signature of the compiled architecture: the 32-bit word the kernel expects right before every
/// abort address. It must equal the one given at registration; these are glibc's values.
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
pub const RSEQ_SIG: u32 = 0x5305_3053;
/// See the x86 definition.
#[cfg(target_arch = "aarch64")]
pub const RSEQ_SIG: u32 = 0xd428_bc00;
/// See the x86 definition.
#[cfg(target_arch = "arm")]
pub const RSEQ_SIG: u32 = 0xe7f5_def3;
/// See the x86 definition.
#[cfg(target_arch = "riscv64")]
pub const RSEQ_SIG: u32 = 0xf140_1073;
/// See the x86 definition.
#[cfg(any(target_arch = "powerpc64", target_arch = "powerpc"))]
pub const RSEQ_SIG: u32 = 0x0fe5_000b;
/// See the x86 definition.
#[cfg(target_arch = "s390x")]
pub const RSEQ_SIG: u32 = 0xB2FF_0FFF;
/// See the x86 definition.
#[cfg(target_arch = "loongarch64")]
pub const RSEQ_SIG: u32 = 0x002a_0010;
/// No rseq support known for this architecture: sequences run in fallback mode.
#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "aarch64",
    target_arch = "arm",
    target_arch = "riscv64",
    target_arch = "powerpc64",
    target_arch = "powerpc",
    target_arch = "s390x",
    target_arch = "loongarch64"
)))]
pub const RSEQ_SIG: u32 = 0;
