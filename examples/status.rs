//! Prints how rseq-dsl runs on this machine: native or fallback (and why), who registered the thread's
//! rseq area, the kernel's feature size, and the ids the kernel publishes.
//!
//! `cargo run --example status`; try it with `RSEQ_DSL_FALLBACK=1` or
//! `GLIBC_TUNABLES=glibc.pthread.rseq=0` in the environment.

fn main() {
    let status = rseq_dsl::status();
    println!("rseq-dsl status: {status}");
    println!("  mode:          {:?}", status.mode);
    println!("  owner:         {:?}", status.owner);
    println!("  reason:        {:?}", status.reason);
    println!(
        "  feature size:  {} (align {})",
        status.feature_size, status.align
    );
    println!("  possible CPUs: {}", rseq_dsl::possible_cpus());
    println!("  cpu_id:        {:?}", rseq_dsl::cpu_id());
    println!("  mm_cid:        {:?}", rseq_dsl::mm_cid());
    println!("  node_id:       {:?}", rseq_dsl::node_id());
    println!(
        "  membarrier:    {}",
        if rseq_dsl::membarrier::supported() {
            "rseq fences supported"
        } else {
            "no rseq fences"
        }
    );
}
