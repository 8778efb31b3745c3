//! Detects whether the compiler has `core::hint::cold_path` (stable since Rust 1.95; the crate's
//! minimum is 1.85): with it, the generated decodes mark their rare branches without a call.

use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(rseq_cold_path)");
    println!("cargo::rerun-if-env-changed=RUSTC");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let minor = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| {
            // "rustc 1.95.0 (...)"
            let mut parts = v.split_whitespace().nth(1)?.split('.');
            let major: u32 = parts.next()?.parse().ok()?;
            let minor: u32 = parts.next()?.parse().ok()?;
            (major == 1).then_some(minor)
        });
    // An unknown version keeps the portable form (a call to a cold function).
    if minor.is_some_and(|m| m >= 95) {
        println!("cargo::rustc-cfg=rseq_cold_path");
    }
}
