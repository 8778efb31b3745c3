//! Relocation handling, independent of what the linker wrote in place: GNU ld also writes a `RELA`
//! relative relocation's value into its place, lld (Rust's default linker) writes 0. Zeroing the
//! relocated fields of `__rseq_cs` of a GNU-linked static PIE must not change the audit: the descriptors' addresses
//! come from `.rela.dyn`.

mod common;

use object::{Object, ObjectSection};

use common::{fixture, temp_dir};

#[test]
fn relative_relocations_supply_the_descriptor_fields() {
    let dir = temp_dir("relocations");
    let src = fixture("x86_seq.S");
    let path = dir.join("static-pie");
    common::gcc(
        &[
            "-nostdlib",
            "-static-pie",
            "-Wl,--build-id=none",
            src.to_str().expect("utf-8 path"),
        ],
        &path,
    );
    let original = std::fs::read(&path).expect("read");
    let (start, len) = {
        let file = object::File::parse(&*original).expect("parse");
        let section = file.section_by_name("__rseq_cs").expect("__rseq_cs");
        section.file_range().expect("file range")
    };
    // Zero the relocated fields (start_ip at +8, abort_ip at +24 of each 32-byte descriptor); keep
    // version, flags and post_commit_offset, which are constants.
    let mut zeroed = original.clone();
    let start = usize::try_from(start).unwrap();
    for descriptor in (start..start + usize::try_from(len).unwrap()).step_by(32) {
        zeroed[descriptor + 8..descriptor + 16].fill(0);
        zeroed[descriptor + 24..descriptor + 32].fill(0);
    }
    assert_ne!(zeroed, original);
    let options = rseq_inspect::Options::default();
    let a = rseq_inspect::audit("a", &original, &options).expect("audit original");
    let b = rseq_inspect::audit("a", &zeroed, &options).expect("audit zeroed");
    assert_eq!(a.render(), b.render());
    assert_eq!(b.summary.ok, 2, "{}", b.render());
}

#[test]
fn shared_object_descriptors_pass() {
    let dir = temp_dir("relocations-dso");
    let src = fixture("x86_seq.S");
    let path = dir.join("libseq.so");
    common::gcc(
        &[
            "-shared",
            "-nostdlib",
            "-Wl,--build-id=none",
            src.to_str().expect("utf-8 path"),
        ],
        &path,
    );
    let report = common::audit(&path);
    assert!(report.kind.contains("shared object"), "{}", report.render());
    assert_eq!(report.descriptors.len(), 2, "{}", report.render());
    assert_eq!(report.summary.ok, 2, "{}", report.render());
    assert_eq!(
        report.descriptors[1].exit_points.len(),
        1,
        "{}",
        report.render()
    );
}
