//! Finds the critical-section descriptors, exit points and abort signatures of an [`Image`].
//!
//! Descriptors come from three places, merged by address:
//! - the contents of every `__rseq_cs` section, read as an array of 32-byte `struct rseq_cs` (what every
//!   producer emits: each descriptor `.balign 32` in that section), skipping all-zero padding and chunks
//!   that overlap a descriptor the pointer array names at another address (a misaligned one);
//! - every non-zero entry of `__rseq_cs_ptr_array`, 8 bytes each (librseq writes `.quad label` on 64-bit
//!   and `.long label, 0` on 32-bit machines, so entries are 64-bit everywhere);
//! - a scan of every other allocated, non-executable section with contents (`.data.rel.ro`, `.data`,
//!   `.rodata`, ...), for code that keeps its descriptors elsewhere (`scan_data`, below). The words are read
//!   with the file's relocations applied, so PIE and shared-object descriptors, whose address words are
//!   0 in the file (or only meaningful with `.rela.dyn`), are recognised.
//!
//! `__rseq_exit_point_array` holds `(start_ip, exit_ip)` pairs of 64-bit fields; each pair is attached to
//! the descriptors with that `start_ip`.
//!
//! Separately, [`code_signatures`] lists every place in executable code that looks like an abort
//! signature; the audit reports those whose following address is no descriptor's `abort_ip`.
//!
//! # The data scan and its false-positive guard
//!
//! A candidate is read at every word-aligned address (8 bytes in a 64-bit file, 4 in a 32-bit one;
//! a hit off a 32-byte boundary is kept and fails `aligned-32`). It is taken as a descriptor only when
//! all of these hold:
//! - `version` is 0 and `flags` has no bit outside the three (deprecated) `RSEQ_CS_FLAG_*` bits;
//! - `0 < post_commit_offset <=` [`SCAN_MAX_RANGE`];
//! - `start_ip` is inside an executable section and `start_ip + post_commit_offset` is inside (or at
//!   the end of) the same section;
//! - `abort_ip` is inside an executable section and the 4 bytes before it are the architecture's
//!   signature value (the bytes the kernel compares; the x86 `0f b9 3d` prefix is then checked by the
//!   `signature` rule, not required here).
//!
//! Random data meets these with negligible probability (two code addresses, a small length, and a
//! 32-bit constant in code at exactly the right place). The price: a descriptor whose signature is
//! wrong, or whose words are only written at run time, is not found by the scan; an unreached signature
//! (below) is how the latter shows. Machines without a known signature are not scanned.
//!
//! # Signatures in code and their false-positive guard
//!
//! [`code_signatures`] looks, in every executable section with contents, for the full encoding that
//! precedes an abort handler: on x86 the 7 bytes `0f b9 3d 53 30 05 53` (`ud1 edi, [rip+0x53053053]`,
//! what glibc, librseq and rseq-dsl emit), at any byte; elsewhere the 4-byte signature at instruction
//! alignment ([`Arch::instruction_align`](crate::arch::Arch::instruction_align)). Requiring the x86
//! prefix keeps out the `mov ecx, 0x53053053` every registering program (glibc included) contains; on
//! the other machines the value is a trapping instruction that compilers do not emit, and on s390x a
//! word that is the immediate of an RIL-format instruction (glibc's `llilf %r5, 0xb2ff0fff`) is
//! skipped; a 32-bit literal of that value placed in code otherwise (an arm literal pool) would still
//! be reported. A handler written with the bare 4-byte value on x86 is not listed.
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::image::{Image, RSEQ_SECTIONS};

/// Size of `struct rseq_cs`.
pub const DESCRIPTOR_SIZE: u64 = 32;
/// Upper bound on descriptors audited per file, so hostile pointer arrays cannot make the audit run
/// for hours. Real binaries have a handful to a few thousand.
pub const MAX_DESCRIPTORS: usize = 100_000;
/// Longest critical section the data scan accepts (real ones are tens to a few hundred bytes).
pub const SCAN_MAX_RANGE: u64 = 4096;
/// Upper bound on signatures in code recorded per file.
pub const MAX_SIGNATURES: usize = 100_000;
/// The `RSEQ_CS_FLAG_NO_RESTART_ON_{PREEMPT,SIGNAL,MIGRATE}` bits, the only flags ever defined.
pub const KNOWN_FLAGS: u32 = 0b111;

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

impl RawDescriptor {
    /// Decodes the 32 bytes of a descriptor in the file's byte order.
    pub fn from_bytes(b: &[u8; 32], big_endian: bool) -> RawDescriptor {
        let u32_at = |at: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(b.get(at..at + 4).unwrap_or(&[0; 4]));
            if big_endian {
                u32::from_be_bytes(w)
            } else {
                u32::from_le_bytes(w)
            }
        };
        let u64_at = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(b.get(at..at + 8).unwrap_or(&[0; 8]));
            if big_endian {
                u64::from_be_bytes(w)
            } else {
                u64::from_le_bytes(w)
            }
        };
        RawDescriptor {
            version: u32_at(0),
            flags: u32_at(4),
            start_ip: u64_at(8),
            post_commit_offset: u64_at(16),
            abort_ip: u64_at(24),
        }
    }
}

/// Where the data scan found a descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanOrigin {
    /// The section holding it (`.data.rel.ro`, `.data`, ...).
    pub section: String,
    /// Whether a relocation fills any of its 32 bytes (its addresses are load-time values).
    pub relocated: bool,
}

/// A place in executable code that holds an abort signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureSite {
    /// First byte of the encoding (the x86 prefix, or the 4-byte value).
    pub address: u64,
    /// The address right after it: where an abort handler behind it starts.
    pub abort: u64,
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
    /// Found by the data scan, and where.
    pub scanned_from: Option<ScanOrigin>,
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
    /// Abort signatures in executable code, sorted by address.
    pub signatures: Vec<SignatureSite>,
    /// Notes about the layout of the rseq sections.
    pub warnings: Vec<String>,
}

/// Reads the 32-byte descriptor at `addr`.
pub fn read_descriptor(image: &Image<'_>, addr: u64) -> Option<RawDescriptor> {
    let bytes = <&[u8; 32]>::try_from(image.bytes(addr, DESCRIPTOR_SIZE)?).ok()?;
    Some(RawDescriptor::from_bytes(bytes, image.big_endian))
}

/// Scans `image` for descriptors, exit points and signatures in code.
pub fn scan(image: &Image<'_>) -> Scan {
    let mut out = Scan::default();
    let mut found: BTreeMap<u64, Found> = BTreeMap::new();
    let new = |addr| Found {
        addr,
        in_section: false,
        in_ptr_array: false,
        scanned_from: None,
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
    // 3. Every other allocated, non-executable section, scanned.
    scan_data(image, &mut found, &mut out.warnings);
    if found.len() >= MAX_DESCRIPTORS {
        out.warnings.push(format!(
            "more than {MAX_DESCRIPTORS} descriptors: only the first {MAX_DESCRIPTORS} are audited"
        ));
    }
    for f in found.values_mut() {
        f.fields = read_descriptor(image, f.addr);
    }

    // 4. Exit points, attached by start_ip.
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
    out.signatures = code_signatures(image, &mut out.warnings);
    out
}

/// Scans the allocated, non-executable sections other than the rseq ones for descriptors (module
/// docs: the guard), adding them to `found` with their [`ScanOrigin`].
fn scan_data(image: &Image<'_>, found: &mut BTreeMap<u64, Found>, warnings: &mut Vec<String>) {
    let Some(sig) = image.arch.signature() else {
        warnings.push(format!(
            "no known rseq signature for {}: data sections were not scanned for descriptors",
            image.arch.name()
        ));
        return;
    };
    let sig = sig.value_bytes(image.big_endian);
    let step: u64 = if image.is_64 { 8 } else { 4 };
    for section in &image.sections {
        if !section.alloc || section.exec || RSEQ_SECTIONS.contains(&section.name.as_str()) {
            continue;
        }
        let Some(data) = section.data.as_deref() else {
            continue;
        };
        // First word-aligned address in the section.
        let misalign = section.addr % step;
        let mut offset = if misalign == 0 { 0 } else { step - misalign };
        while found.len() < MAX_DESCRIPTORS {
            let (Ok(start), Some(addr)) =
                (usize::try_from(offset), section.addr.checked_add(offset))
            else {
                break;
            };
            let Some(chunk) = start
                .checked_add(DESCRIPTOR_SIZE as usize)
                .and_then(|end| data.get(start..end))
                .and_then(|c| <&[u8; 32]>::try_from(c).ok())
            else {
                break;
            };
            offset = offset.saturating_add(step);
            let d = RawDescriptor::from_bytes(chunk, image.big_endian);
            if looks_like_descriptor(image, &d, sig) {
                let origin = ScanOrigin {
                    section: section.name.clone(),
                    relocated: image.relocated_within(addr, DESCRIPTOR_SIZE),
                };
                found
                    .entry(addr)
                    .or_insert_with(|| Found {
                        addr,
                        in_section: false,
                        in_ptr_array: false,
                        scanned_from: None,
                        fields: None,
                        exit_points: Vec::new(),
                    })
                    .scanned_from = Some(origin);
            }
        }
    }
}

/// The data scan's test (module docs): cheap field checks first, section lookups last.
fn looks_like_descriptor(image: &Image<'_>, d: &RawDescriptor, sig: [u8; 4]) -> bool {
    if d.version != 0
        || d.flags & !KNOWN_FLAGS != 0
        || d.post_commit_offset == 0
        || d.post_commit_offset > SCAN_MAX_RANGE
    {
        return false;
    }
    let Some(end) = d.start_ip.checked_add(d.post_commit_offset) else {
        return false;
    };
    let range_ok = image
        .section_at(d.start_ip)
        .is_some_and(|s| s.exec && end <= s.end());
    let abort_ok = image.section_at(d.abort_ip).is_some_and(|s| s.exec)
        && d.abort_ip
            .checked_sub(4)
            .and_then(|at| image.bytes(at, 4))
            .is_some_and(|b| b == sig);
    range_ok && abort_ok
}

/// s390x: whether the word at `i` is the 32-bit immediate of an RIL-format instruction (opcode byte
/// `c0`, `c2`, `c4`, `c6`, `c8` or `cc` two bytes before it), such as the `llilf %r5, 0xb2ff0fff`
/// with which glibc passes the signature to the rseq system call.
fn is_s390x_immediate(image: &Image<'_>, data: &[u8], i: usize) -> bool {
    image.arch == crate::arch::Arch::S390x
        && i.checked_sub(2)
            .and_then(|at| data.get(at))
            .is_some_and(|op| matches!(op, 0xc0 | 0xc2 | 0xc4 | 0xc6 | 0xc8 | 0xcc))
}

/// Every abort signature in executable code (module docs: what counts), sorted by address.
pub fn code_signatures(image: &Image<'_>, warnings: &mut Vec<String>) -> Vec<SignatureSite> {
    let Some(sig) = image.arch.signature() else {
        return Vec::new();
    };
    let pattern = sig.encoded(image.big_endian);
    let Some(&first) = pattern.first() else {
        return Vec::new();
    };
    let align = image.arch.instruction_align();
    let len = pattern.len() as u64;
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    'sections: for section in image.sections.iter().filter(|s| s.alloc && s.exec) {
        let Some(data) = section.data.as_deref() else {
            continue;
        };
        for (i, window) in data.windows(pattern.len()).enumerate() {
            if window.first() != Some(&first) || window != pattern.as_slice() {
                continue;
            }
            let Some(address) = section.addr.checked_add(i as u64) else {
                break;
            };
            if address % align != 0 || is_s390x_immediate(image, data, i) {
                continue;
            }
            let Some(abort) = address.checked_add(len) else {
                break;
            };
            if out.len() >= MAX_SIGNATURES {
                warnings.push(format!(
                    "more than {MAX_SIGNATURES} abort signatures in code: only the first {MAX_SIGNATURES} are listed"
                ));
                break 'sections;
            }
            // Sections overlap in malformed files: list each address once.
            if seen.insert(address) {
                out.push(SignatureSite { address, abort });
            }
        }
    }
    out.sort_unstable_by_key(|s| s.address);
    out
}
