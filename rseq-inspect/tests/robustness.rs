//! Malformed, truncated and hostile input: the audit returns a report or an error, never panics (tests
//! run in debug mode, so an arithmetic overflow would panic too). A bounded property test: random
//! bytes, random bytes behind a valid ELF identification, and mutations of real binaries built here
//! (truncations, bit flips in the ELF header, the section headers, the rseq and data sections, random
//! overwrites). Each family stops after a fixed count or a time budget, whichever comes first.

mod common;

use std::time::{Duration, Instant};

use object::{Object, ObjectSection};

use common::{fixture, temp_dir};

/// Per-family time budget.
const BUDGET: Duration = Duration::from_millis(250);

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).expect("fits")
    }
}

/// Audits `data` with and without `--disasm`; renders and serialises any report.
fn exercise(data: &[u8]) {
    for disasm in [false, true] {
        if let Ok(report) = rseq_inspect::audit("fuzz", data, &rseq_inspect::Options { disasm }) {
            let _ = report.render();
            let _ = serde_json::to_string(&report).expect("serialisable");
        }
    }
}

fn run_family(name: &str, count: usize, mut make: impl FnMut(&mut Rng) -> Vec<u8>) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
    let started = Instant::now();
    let mut done = 0;
    while done < count && started.elapsed() < BUDGET {
        let input = make(&mut rng);
        exercise(&input);
        done += 1;
    }
    assert!(done > 0, "{name}: no input exercised");
    eprintln!("{name}: {done} inputs in {:?}", started.elapsed());
}

fn real_binaries() -> Vec<Vec<u8>> {
    let dir = temp_dir("robustness");
    let src = fixture("x86_seq.S");
    let src = src.to_str().expect("utf-8 path");
    let scanned = fixture("scanned_descriptors.c");
    let scanned = scanned.to_str().expect("utf-8 path");
    let mut out = Vec::new();
    for (name, args) in [
        ("seq.o", &["-c", src][..]),
        ("seq32.o", &["-m32", "-c", src][..]),
        (
            "seq-static-pie",
            &["-nostdlib", "-static-pie", "-Wl,--build-id=none", src][..],
        ),
        // Descriptors found only by the data scan (.data.rel.ro, .data), relocated.
        ("scanned-pie", &["-O2", "-fPIE", "-pie", scanned][..]),
    ] {
        let path = dir.join(name);
        common::gcc(args, &path);
        out.push(std::fs::read(&path).expect("read"));
    }
    if common::have(common::AARCH64_GCC) {
        let path = dir.join("a64.o");
        common::run_ok(
            std::process::Command::new(common::AARCH64_GCC)
                .arg("-c")
                .arg(fixture("aarch64_seq.S"))
                .arg("-o")
                .arg(&path),
        );
        out.push(std::fs::read(&path).expect("read"));
    }
    out
}

#[test]
fn random_bytes() {
    run_family("random", 3000, |rng| {
        let len = rng.below(2048);
        (0..len).map(|_| rng.next() as u8).collect()
    });
}

#[test]
fn random_bytes_behind_elf_ident() {
    run_family("ident", 3000, |rng| {
        let len = 64 + rng.below(4096);
        let mut v: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        v[..4].copy_from_slice(b"\x7fELF");
        v[4] = 1 + (rng.next() % 2) as u8; // class
        v[5] = 1 + (rng.next() % 2) as u8; // data
        v[6] = 1; // version
        v
    });
}

#[test]
fn mutated_real_binaries() {
    let binaries = real_binaries();
    for (i, original) in binaries.iter().enumerate() {
        // The unmutated binary audits cleanly.
        let report = rseq_inspect::audit("orig", original, &rseq_inspect::Options::default())
            .expect("original audits");
        assert!(!report.descriptors.is_empty());

        // Every truncation length on a stride, plus the last 64 bytes one by one.
        let stride = (original.len() / 400).max(1);
        let mut lengths: Vec<usize> = (0..original.len()).step_by(stride).collect();
        lengths.extend(original.len().saturating_sub(64)..original.len());
        let started = Instant::now();
        for len in lengths {
            if started.elapsed() > BUDGET {
                break;
            }
            exercise(&original[..len]);
        }

        // Where to flip bits: the ELF header, the section header table, the rseq sections, the dynamic
        // relocations, the symbols and the data sections the scan reads.
        let file = object::File::parse(&**original).expect("parse");
        let mut regions: Vec<(usize, usize)> = vec![(0, 64.min(original.len()))];
        let shoff = if file.is_64() {
            u64::from_le_bytes(original[0x28..0x30].try_into().unwrap()) as usize
        } else {
            u32::from_le_bytes(original[0x20..0x24].try_into().unwrap()) as usize
        };
        regions.push((shoff, original.len()));
        for name in [
            "__rseq_cs",
            "__rseq_cs_ptr_array",
            ".rela.dyn",
            ".symtab",
            ".data.rel.ro",
            ".data",
        ] {
            if let Some((start, len)) = file.section_by_name(name).and_then(|s| s.file_range()) {
                regions.push((start as usize, (start + len) as usize));
            }
        }
        let regions_for = |rng: &mut Rng| {
            let (lo, hi) = regions[rng.below(regions.len())];
            lo + rng.below(hi.saturating_sub(lo))
        };
        let name = format!("flips-{i}");
        run_family(&name, 4000, |rng| {
            let mut v = original.clone();
            for _ in 0..1 + rng.below(4) {
                let at = regions_for(rng).min(v.len() - 1);
                v[at] ^= 1 << rng.below(8);
            }
            v
        });
        let name = format!("overwrites-{i}");
        run_family(&name, 2000, |rng| {
            let mut v = original.clone();
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(v.len());
                v[at] = rng.next() as u8;
            }
            v
        });
    }
}

#[test]
fn cli_reports_unreadable_input_with_status_3() {
    let dir = temp_dir("robustness-cli");
    std::fs::write(dir.join("garbage"), b"this is not an ELF file").expect("write");
    std::fs::write(dir.join("truncated"), b"\x7fELF\x02\x01\x01").expect("write");
    for name in ["garbage", "truncated", "does-not-exist"] {
        let (code, stdout, stderr) = common::inspect(&dir, &["elf", name]);
        assert_eq!(code, 3, "{name}: {stdout}{stderr}");
        assert!(stderr.starts_with("rseq-inspect: "), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        let (code, stdout, _) = common::inspect(&dir, &["elf", name, "--json"]);
        assert_eq!(code, 3, "{name}");
        let value: serde_json::Value = serde_json::from_str(&stdout).expect("JSON error object");
        assert!(value["error"].is_string(), "{stdout}");
    }
}
