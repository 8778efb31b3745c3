//! Finds the critical-section descriptors and exit points of an [`Image`].
//!
//! Descriptors come from two places, merged by address:
//! - the contents of every `__rseq_cs` section, read as an array of 32-byte `struct rseq_cs` (what every
//!   producer emits: each descriptor `.balign 32` in that section), skipping all-zero padding and chunks
//!   that overlap a descriptor the pointer array names at another address (a misaligned one);
//! - every non-zero entry of `__rseq_cs_ptr_array`, 8 bytes each (librseq writes `.quad label` on 64-bit
//!   and `.long label, 0` on 32-bit machines, so entries are 64-bit everywhere).
//!
//! `__rseq_exit_point_array` holds `(start_ip, exit_ip)` pairs of 64-bit fields; each pair is attached to
//! the descriptors with that `start_ip`.

use std::collections::BTreeMap;

use crate::image::Image;

/// Size of `struct rseq_cs`.
pub const DESCRIPTOR_SIZE: u64 = 32;
/// Upper bound on descriptors audited per file, so hostile pointer arrays cannot make the audit run
/// for hours. Real binaries have a handful to a few thousand.
pub const MAX_DESCRIPTORS: usize = 100_000;

/// The fields of `struct rseq_cs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawDescriptor {
    /// Must be 0.
    pub version: u32,
    /// Must be 0 (the `RSEQ_CS_FLAG_NO_RESTART_ON_*` bits are deprecated).
    pub flags: u32,
    /// First instruction of the critical section.
    pub start_ip: u64,
    /// Length of the critical section: `post_commit_ip - start_ip`.
    pub post_commit_offset: u64,
    /// Where the kernel resumes the thread on abort.
    pub abort_ip: u64,
}

/// A descriptor found in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Address of the descriptor.
    pub addr: u64,
    /// Found by reading the `__rseq_cs` section as an array.
    pub in_section: bool,
    /// Named by an entry of `__rseq_cs_ptr_array`.
    pub in_ptr_array: bool,
    /// The fields, or `None` when the 32 bytes are not readable (the pointer leads outside the file's
    /// allocated sections).
    pub fields: Option<RawDescriptor>,
    /// Exit points recorded for this descriptor's `start_ip`.
    pub exit_points: Vec<u64>,
}

/// Everything the scan found.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Descriptors, sorted by address.
    pub descriptors: Vec<Found>,
    /// Exit-point pairs whose `start_ip` matches no descriptor.
    pub orphan_exit_points: Vec<(u64, u64)>,
    /// Number of exit-point pairs read.
    pub exit_point_count: usize,
    /// Notes about the layout of the rseq sections.
    pub warnings: Vec<String>,
}

/// Reads the 32-byte descriptor at `addr`.
pub fn read_descriptor(image: &Image<'_>, addr: u64) -> Option<RawDescriptor> {
    image.bytes(addr, DESCRIPTOR_SIZE)?;
    Some(RawDescriptor {
        version: image.u32_at(addr)?,
        flags: image.u32_at(addr.checked_add(4)?)?,
        start_ip: image.u64_at(addr.checked_add(8)?)?,
        post_commit_offset: image.u64_at(addr.checked_add(16)?)?,
        abort_ip: image.u64_at(addr.checked_add(24)?)?,
    })
}

/// Scans `image` for descriptors and exit points.
pub fn scan(image: &Image<'_>) -> Scan {
    let mut out = Scan::default();
    let mut found: BTreeMap<u64, Found> = BTreeMap::new();
    let new = |addr| Found {
        addr,
        in_section: false,
        in_ptr_array: false,
        fields: None,
        exit_points: Vec::new(),
    };

    // 1. Pointer array entries.
    for section in image.sections_named("__rseq_cs_ptr_array") {
        let Some(data) = section.data.as_deref() else {
            continue;
        };
        if data.len() % 8 != 0 {
            out.warnings.push(format!(
                "`__rseq_cs_ptr_array` at {:#x} is {} bytes, not a whole number of 8-byte entries",
                section.addr,
                data.len()
            ));
        }
        let mut offset: u64 = 0;
        while let Some(addr) = section.addr.checked_add(offset) {
            let Some(ptr) = image.u64_at(addr) else {
                break;
            };
            offset = offset.saturating_add(8);
            if ptr != 0 && found.len() < MAX_DESCRIPTORS {
                found.entry(ptr).or_insert_with(|| new(ptr)).in_ptr_array = true;
            }
            if offset >= section.size {
                break;
            }
        }
    }
    let named: Vec<u64> = found.keys().copied().collect();

    // 2. The `__rseq_cs` sections read as arrays.
    for section in image.sections_named("__rseq_cs") {
        let Some(data) = section.data.as_deref() else {
            continue;
        };
        let whole = data.len() as u64 / DESCRIPTOR_SIZE * DESCRIPTOR_SIZE;
        let mut offset = 0;
        while offset < whole && found.len() < MAX_DESCRIPTORS {
            let Some(addr) = section.addr.checked_add(offset) else {
                break;
            };
            offset += DESCRIPTOR_SIZE;
            let all_zero = image
                .bytes(addr, DESCRIPTOR_SIZE)
                .is_some_and(|b| b.iter().all(|&x| x == 0));
            let overlaps_named = {
                // A descriptor named at another address that overlaps this chunk: this chunk is not a
                // descriptor, just a window across a misaligned one.
                let lo = addr.saturating_sub(DESCRIPTOR_SIZE - 1);
                let hi = addr.saturating_add(DESCRIPTOR_SIZE);
                let pos = named.partition_point(|&n| n < lo);
                named
                    .get(pos..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|&&n| n < hi)
                    .any(|&n| n != addr)
            };
            if all_zero || overlaps_named {
                continue;
            }
            found.entry(addr).or_insert_with(|| new(addr)).in_section = true;
        }
        let tail = data.len() as u64 - whole;
        if tail != 0 {
            let tail_start = section.addr.saturating_add(whole);
            let covered = named
                .iter()
                .any(|&n| n <= tail_start && tail_start < n.saturating_add(DESCRIPTOR_SIZE));
            if !covered {
                out.warnings.push(format!(
                    "`__rseq_cs` at {:#x} ends with {tail} byte(s) that are not a whole descriptor",
                    section.addr
                ));
            }
        }
    }
    if found.len() >= MAX_DESCRIPTORS {
        out.warnings.push(format!(
            "more than {MAX_DESCRIPTORS} descriptors: only the first {MAX_DESCRIPTORS} are audited"
        ));
    }
    for f in found.values_mut() {
        f.fields = read_descriptor(image, f.addr);
    }

    // 3. Exit points, attached by start_ip.
    let mut by_start: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for f in found.values() {
        if let Some(fields) = f.fields {
            by_start.entry(fields.start_ip).or_default().push(f.addr);
        }
    }
    for section in image.sections_named("__rseq_exit_point_array") {
        if section.data.is_none() {
            continue;
        }
        if section.size % 16 != 0 {
            out.warnings.push(format!(
                "`__rseq_exit_point_array` at {:#x} is {} bytes, not a whole number of 16-byte pairs",
                section.addr, section.size
            ));
        }
        let mut offset: u64 = 0;
        while offset.saturating_add(16) <= section.size {
            let Some(addr) = section.addr.checked_add(offset) else {
                break;
            };
            offset = offset.saturating_add(16);
            let (Some(start), Some(exit)) = (
                image.u64_at(addr),
                addr.checked_add(8).and_then(|a| image.u64_at(a)),
            ) else {
                break;
            };
            if start == 0 && exit == 0 {
                continue;
            }
            out.exit_point_count += 1;
            match by_start.get(&start) {
                Some(descriptors) => {
                    for d in descriptors {
                        if let Some(f) = found.get_mut(d) {
                            if !f.exit_points.contains(&exit) {
                                f.exit_points.push(exit);
                            }
                        }
                    }
                }
                None => out.orphan_exit_points.push((start, exit)),
            }
        }
    }
    out.descriptors = found.into_values().collect();
    for d in &mut out.descriptors {
        d.exit_points.sort_unstable();
    }
    out
}
