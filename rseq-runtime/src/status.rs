//! What the runtime decided, and the kernel-provided ids.

use core::ptr;

use crate::abi::{AREA_CPU_ID_OFFSET, AREA_MM_CID_OFFSET, AREA_NODE_ID_OFFSET};
use crate::error::{Error, Unavailable};
use crate::registration::{decision, enter, feature_covers, Entry, Mode, Owner};

/// The runtime's process-wide state, for diagnostics (`println!("{}", rseq_dsl::status())`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Native or fallback.
    pub mode: Mode,
    /// Who registered the areas (native mode only).
    pub owner: Option<Owner>,
    /// Why sequences run in fallback mode.
    pub reason: Option<Unavailable>,
    /// `AT_RSEQ_FEATURE_SIZE` (0 on pre-6.3 kernels).
    pub feature_size: usize,
    /// `AT_RSEQ_ALIGN` (0 on pre-6.3 kernels).
    pub align: usize,
    /// Whether [`node_id`] works (native mode and a kernel that advertises it).
    pub node_id_usable: bool,
    /// Whether [`mm_cid`] and mm_cid-indexed sequences work natively.
    pub mm_cid_usable: bool,
}

/// The runtime's status, deciding the process-wide mode if nobody did yet.
pub fn status() -> Status {
    let d = decision();
    let native = d.mode == Mode::Native;
    Status {
        mode: d.mode,
        owner: d.owner,
        reason: d.reason,
        feature_size: d.feature_size,
        align: d.align,
        node_id_usable: native && feature_covers(d.feature_size, AREA_NODE_ID_OFFSET),
        mm_cid_usable: native && feature_covers(d.feature_size, AREA_MM_CID_OFFSET),
    }
}

impl core::fmt::Display for Status {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match (self.mode, self.owner, self.reason) {
            (Mode::Native, Some(Owner::Glibc), _) => {
                f.write_str("native (area registered by glibc)")?
            }
            (Mode::Native, _, _) => f.write_str("native (area registered by rseq-dsl)")?,
            (Mode::Fallback, _, Some(r)) => write!(f, "fallback ({r})")?,
            (Mode::Fallback, _, None) => f.write_str("fallback")?,
        }
        write!(
            f,
            "; feature size {}, align {}, node_id {}, mm_cid {}",
            self.feature_size,
            self.align,
            if self.node_id_usable { "yes" } else { "no" },
            if self.mm_cid_usable { "yes" } else { "no" }
        )
    }
}

fn read_area_u32(offset: usize) -> Result<Option<u32>, Error> {
    match enter()? {
        // SAFETY: `area` is the calling thread's registered area; the field is read with a volatile load
        // because the kernel writes it.
        Entry::Native(area) => Ok(Some(unsafe {
            ptr::read_volatile(area.cast::<u8>().add(offset).cast::<u32>())
        })),
        Entry::Fallback => Ok(None),
    }
}

/// The CPU the calling thread runs on (it may have moved by the time you use it): the rseq area's
/// `cpu_id` in native mode, `sched_getcpu()` in fallback mode.
///
/// # Errors
/// [`Error::Unavailable`] when the process runs natively but this thread cannot register.
pub fn cpu_id() -> Result<usize, Error> {
    match read_area_u32(AREA_CPU_ID_OFFSET)? {
        Some(cpu) => Ok(cpu as usize),
        None => {
            // SAFETY: sched_getcpu has no preconditions.
            let cpu = unsafe { libc::sched_getcpu() };
            usize::try_from(cpu).map_err(|_| Error::Unavailable(Unavailable::Errno(libc::ENOSYS)))
        }
    }
}

/// The calling thread's mm_cid.
///
/// # Errors
/// [`Error::MmCidUnavailable`] unless rseq runs natively and the kernel advertises mm_cid (6.3+).
pub fn mm_cid() -> Result<usize, Error> {
    if !status().mm_cid_usable {
        return Err(Error::MmCidUnavailable);
    }
    read_area_u32(AREA_MM_CID_OFFSET)?
        .map(|v| v as usize)
        .ok_or(Error::MmCidUnavailable)
}

/// The NUMA node of the calling thread's CPU.
///
/// # Errors
/// [`Error::NodeIdUnavailable`] unless rseq runs natively and the kernel advertises node_id (6.3+).
pub fn node_id() -> Result<usize, Error> {
    if !status().node_id_usable {
        return Err(Error::NodeIdUnavailable);
    }
    read_area_u32(AREA_NODE_ID_OFFSET)?
        .map(|v| v as usize)
        .ok_or(Error::NodeIdUnavailable)
}
