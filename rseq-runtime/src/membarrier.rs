//! `membarrier(2)` with the rseq commands: restart the critical sections running on other CPUs.
//!
//! After [`register_rseq`], [`rseq_fence`] makes every thread of this process that is inside a critical
//! section on the target CPU(s) abort it (and restart) before the call returns. This is the tool for
//! operating on another CPU's slot: change it, then fence, and no section that read the old value can
//! still commit.

use std::io;

const MEMBARRIER_CMD_QUERY: libc::c_int = 0;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ: libc::c_int = 1 << 7;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ: libc::c_int = 1 << 8;
const MEMBARRIER_CMD_FLAG_CPU: libc::c_uint = 1;

fn membarrier(cmd: libc::c_int, flags: libc::c_uint, cpu: libc::c_int) -> io::Result<libc::c_long> {
    // SAFETY: membarrier takes only integers and touches no user memory.
    let r = unsafe { libc::syscall(libc::SYS_membarrier, cmd, flags, cpu) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Whether the kernel offers the rseq membarrier commands (5.10+).
pub fn supported() -> bool {
    let need = libc::c_long::from(
        MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ,
    );
    membarrier(MEMBARRIER_CMD_QUERY, 0, 0).is_ok_and(|mask| mask & need == need)
}

/// Registers the process for [`rseq_fence`] (idempotent).
///
/// # Errors
/// The kernel's error (`EINVAL` when unsupported, `EPERM` under seccomp, ...).
pub fn register_rseq() -> io::Result<()> {
    membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0, 0).map(drop)
}

/// Restarts every critical section of this process running on `cpu`, or on all CPUs with `None`.
/// A CPU that is offline or does not exist has nothing to restart: that is `Ok`, as the kernel says.
///
/// # Errors
/// `EPERM` without [`register_rseq`], `EINVAL` when unsupported.
pub fn rseq_fence(cpu: Option<usize>) -> io::Result<()> {
    match cpu {
        None => membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, 0, 0).map(drop),
        Some(cpu) => {
            let cpu = libc::c_int::try_from(cpu)
                .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
            membarrier(
                MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ,
                MEMBARRIER_CMD_FLAG_CPU,
                cpu,
            )
            .map(drop)
        }
    }
}
