//! Descriptors outside `__rseq_cs` and abort signatures no descriptor reaches.
//!
//! `fixtures/scanned_descriptors.c`, built here by gcc, has two x86_64 critical sections whose
//! descriptors live in `.data.rel.ro` and `.data` (no `__rseq_cs`, no pointer array), as a per-CPU
//! library may emit them; with `-DSTRAY_ONLY` it has one section whose descriptor is built at run
//! time, so the file holds an abort signature that no descriptor in the file reaches. The audit must
//! find the former by scanning data (with the PIE's relative relocations applied), say so, and must not
//! report either file as free of rseq code.
//!
//! The assertions go through the CLI and its JSON so that they also ran (and failed) against the
//! audit before the scan existed.

mod common;

use std::path::Path;

use object::{Object, ObjectSection};

use common::{fixture, temp_dir};

const NOTHING: &str = "no rseq critical sections found";

fn build(dir: &Path, name: &str, flags: &[&str]) {
    let src = fixture("scanned_descriptors.c");
    let mut args = vec!["-O2", "-Wall", "-Werror"];
    args.extend_from_slice(flags);
    args.push(src.to_str().expect("utf-8 path"));
    common::gcc(&args, &dir.join(name));
}

/// Runs `rseq-inspect elf <name> --json` and parses the report.
fn json(dir: &Path, name: &str) -> (i32, serde_json::Value) {
    let (code, stdout, stderr) = common::inspect(dir, &["elf", name, "--json"]);
    let value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{name}: not JSON ({e}):\n{stdout}{stderr}"));
    (code, value)
}

#[test]
fn descriptors_in_data_sections_are_found_by_scanning() {
    let dir = temp_dir("scanned");
    for (name, flags, relocated) in [
        ("pie", &["-fPIE", "-pie"][..], true),
        // Packed relative relocations (SHT_RELR): the places hold the addend, the table names them.
        (
            "pie-relr",
            &["-fPIE", "-pie", "-Wl,-z,pack-relative-relocs"][..],
            true,
        ),
        ("no-pie", &["-fno-PIE", "-no-pie"][..], false),
        ("object.o", &["-c"][..], true),
    ] {
        build(&dir, name, flags);
        let (code, table, stderr) = common::inspect(&dir, &["elf", name]);
        assert_eq!(code, 0, "{name}:\n{table}{stderr}");
        assert!(!table.contains(NOTHING), "{name}:\n{table}");
        let how = if relocated {
            "relocated"
        } else {
            "not relocated"
        };
        for section in [".data.rel.ro", ".data"] {
            let provenance = format!("(scanned from {section}, {how})");
            assert!(table.contains(&provenance), "{name}: {provenance}\n{table}");
        }

        let (_, report) = json(&dir, name);
        let descriptors = report["descriptors"].as_array().expect("descriptors");
        assert_eq!(descriptors.len(), 2, "{name}:\n{table}");
        let mut functions: Vec<&str> = descriptors
            .iter()
            .map(|d| d["function"]["name"].as_str().unwrap_or("?"))
            .collect();
        functions.sort_unstable();
        assert_eq!(functions, ["percpu_add_data", "percpu_add_relro"], "{name}");
        for d in descriptors {
            assert_eq!(d["ok"], true, "{name}:\n{table}");
            assert_eq!(d["found_in"], serde_json::json!(["data scan"]), "{name}");
            assert_eq!(d["scanned_from"]["relocated"], relocated, "{name}");
            assert_eq!(d["length"], 15, "{name}");
            // Every rule ran: nothing skipped on x86_64 with a symbol table.
            for r in d["rules"].as_array().expect("rules") {
                assert_eq!(r["status"], "pass", "{name}: {r}\n{table}");
            }
        }
        assert_eq!(report["summary"]["scanned"], 2, "{name}");
        assert_eq!(report["summary"]["signatures"], 2, "{name}");
        assert_eq!(
            report["unreached_signatures"],
            serde_json::json!([]),
            "{name}"
        );
    }
}

#[test]
fn relocations_supply_the_scanned_descriptor_words() {
    // GNU ld also writes a RELA relative relocation's value into its place; zeroing those words in the
    // file must not change the audit: the addresses come from `.rela.dyn`.
    let dir = temp_dir("scanned-relocations");
    build(&dir, "pie", &["-fPIE", "-pie"]);
    let original = std::fs::read(dir.join("pie")).expect("read");
    let file = object::File::parse(&*original).expect("parse");
    assert!(
        file.section_by_name(".rela.dyn").is_some(),
        "the PIE has dynamic relocations"
    );
    let mut zeroed = original.clone();
    for name in [".data.rel.ro", ".data"] {
        let section = file.section_by_name(name).expect(name);
        let (offset, size) = section.file_range().expect("file range");
        let addr = section.address();
        // The descriptors are the 32-byte aligned chunks whose version/flags are 0 and whose
        // post_commit_offset is 15 (the fixture's section length).
        let mut hits = 0;
        for at in (addr.next_multiple_of(32)..addr + size).step_by(32) {
            let off = usize::try_from(offset + (at - addr)).unwrap();
            let Some(chunk) = original.get(off..off + 32) else {
                continue;
            };
            if chunk[..8] == [0; 8] && chunk[16..24] == 15u64.to_le_bytes() {
                zeroed[off + 8..off + 16].fill(0);
                zeroed[off + 24..off + 32].fill(0);
                hits += 1;
            }
        }
        assert_eq!(hits, 1, "{name}: one descriptor");
    }
    assert_ne!(zeroed, original);
    let options = rseq_inspect::Options::default();
    let a = rseq_inspect::audit("pie", &original, &options).expect("audit original");
    let b = rseq_inspect::audit("pie", &zeroed, &options).expect("audit zeroed");
    assert_eq!(a.render(), b.render());
    assert_eq!(b.summary.ok, 2, "{}", b.render());
}

#[test]
fn signature_without_a_descriptor_is_reported() {
    let dir = temp_dir("scanned-stray");
    build(&dir, "stray", &["-DSTRAY_ONLY", "-fPIE", "-pie"]);
    let (code, table, stderr) = common::inspect(&dir, &["elf", "stray"]);
    assert_eq!(code, 4, "{table}{stderr}");
    assert!(!table.contains(NOTHING), "{table}");
    assert!(table.contains("not reached by any descriptor"), "{table}");

    let (code, report) = json(&dir, "stray");
    assert_eq!(code, 4);
    assert_eq!(report["summary"]["descriptors"], 0);
    let stray = report["unreached_signatures"]
        .as_array()
        .expect("unreached_signatures");
    assert_eq!(stray.len(), 1, "{table}");
    assert_eq!(
        stray[0]["function"].as_str(),
        Some("percpu_add_runtime"),
        "{table}"
    );
    let (at, abort) = (
        stray[0]["address"].as_u64().expect("address"),
        stray[0]["abort"].as_u64().expect("abort"),
    );
    assert_eq!(abort, at + 7, "0f b9 3d + 4 signature bytes");
    assert!(
        table.contains(&format!("signature at {at:#x}")),
        "{at:#x}\n{table}"
    );
}

#[test]
fn sections_found_in_rseq_sections_leave_no_stray_signature() {
    // The librseq-style fixture: every signature is reached by a `__rseq_cs` descriptor.
    let dir = temp_dir("scanned-librseq");
    let src = fixture("librseq_style.c");
    common::gcc(
        &["-O2", src.to_str().expect("utf-8 path")],
        &dir.join("pie"),
    );
    let (code, report) = json(&dir, "pie");
    assert_eq!(code, 0);
    assert_eq!(report["summary"]["scanned"], 0);
    assert_eq!(report["summary"]["signatures"], 3);
    assert_eq!(report["unreached_signatures"], serde_json::json!([]));
}
