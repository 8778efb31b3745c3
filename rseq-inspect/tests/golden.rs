//! Golden output: the table and the JSON report for `fixtures/x86_seq.S` assembled as an object file,
//! and the table for it linked as a static PIE (`-nostdlib`, so every address is our code's). Rewrite
//! with `RSEQ_DSL_BLESS=1 cargo test -p rseq-inspect` and review the diff.

mod common;

use common::{check_golden, fixture, temp_dir};

#[test]
fn x86_64_object_table_and_json() {
    let dir = temp_dir("golden-object");
    let src = fixture("x86_seq.S");
    common::gcc(
        &["-c", src.to_str().expect("utf-8 path")],
        &dir.join("x86_seq.o"),
    );
    let (code, table, stderr) = common::inspect(&dir, &["elf", "x86_seq.o", "--disasm"]);
    assert_eq!(code, 0, "{table}{stderr}");
    check_golden("x86_64-object.txt", &table);
    let (code, json, stderr) = common::inspect(&dir, &["elf", "x86_seq.o", "--json"]);
    assert_eq!(code, 0, "{json}{stderr}");
    // It is valid JSON with the documented shape.
    let value: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(value["descriptors"].as_array().map(Vec::len), Some(2));
    assert_eq!(value["descriptors"][0]["rules"][0]["rule"], "version-zero");
    assert_eq!(value["descriptors"][0]["rules"][0]["status"], "pass");
    assert_eq!(value["summary"]["failed"], 0);
    check_golden("x86_64-object.json", &json);
}

#[test]
fn x86_64_static_pie_table() {
    let dir = temp_dir("golden-static-pie");
    let src = fixture("x86_seq.S");
    common::gcc(
        &[
            "-nostdlib",
            "-static-pie",
            "-Wl,--build-id=none",
            src.to_str().expect("utf-8 path"),
        ],
        &dir.join("x86_seq-static-pie"),
    );
    let (code, table, stderr) = common::inspect(&dir, &["elf", "x86_seq-static-pie", "--disasm"]);
    assert_eq!(code, 0, "{table}{stderr}");
    assert!(table.contains("position-independent"), "{table}");
    check_golden("x86_64-static-pie.txt", &table);
}
