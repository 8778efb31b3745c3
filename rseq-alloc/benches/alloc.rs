//! rseq-alloc against the system allocator (glibc), mimalloc and (with `--features bench-tcmalloc`)
//! TCMalloc through tcmalloc-better, every allocator called directly
//! through `GlobalAlloc` in the same process and run (the binary's own global allocator is the
//! system one), at 1/2/4/8 threads:
//!
//! - **pair**: allocate and free one block, sizes cycling through 16..256 bytes;
//! - **mixed**: a window of 64 live blocks per thread, one replaced per operation, sizes 16..1024
//!   plus one 4096-byte block in 16;
//! - **producer/consumer**: threads in pairs, one allocates batches of 128 blocks and hands them
//!   over, the other frees them (every free is a cross-thread, usually cross-CPU, free); one
//!   operation is one block allocated and freed, and only the allocation and free loops are timed
//!   (waiting for the other thread is not);
//!
//! and the resident memory (`VmRSS`) of a child process per allocator after 1,000 threads (eight
//! at a time) each allocated and freed 300 blocks.
//!
//!     cargo bench -p rseq-alloc --bench alloc [--features bench-tcmalloc] -- [--ms 200] [--reps 3] [--stat median|fastest] [--out docs/benchmarks]
//!
//! ns/op is the benchmark threads' CPU time (`CLOCK_THREAD_CPUTIME_ID`) over their operations,
//! the median of `--reps` interleaved repetitions (as `benches/compare.rs` of rseq-dsl), or with
//! `--stat fastest` the fastest of them: on a shared virtual machine, whose neighbours only ever
//! add time (steal, cache and memory-bandwidth interference), many short repetitions and their
//! fastest estimate the undisturbed cost better than a median, which a noisy minute shifts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[path = "../../benches/report/mod.rs"]
#[allow(dead_code)]
mod report;

const THREADS: [usize; 4] = [1, 2, 4, 8];

struct Allocator {
    name: &'static str,
    ours: bool,
    a: &'static (dyn GlobalAlloc + Sync),
}

static RSEQ: rseq_alloc::RseqAlloc = rseq_alloc::RseqAlloc;
#[cfg(target_arch = "x86_64")]
static MIMALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
#[cfg(all(target_arch = "x86_64", feature = "bench-tcmalloc"))]
static TCMALLOC: tcmalloc_better::TCMalloc = tcmalloc_better::TCMalloc;

fn allocators() -> Vec<Allocator> {
    let mut v = vec![
        Allocator {
            name: "rseq-alloc",
            ours: true,
            a: &RSEQ,
        },
        Allocator {
            name: "glibc malloc",
            ours: false,
            a: &System,
        },
    ];
    #[cfg(target_arch = "x86_64")]
    v.push(Allocator {
        name: "mimalloc",
        ours: false,
        a: &MIMALLOC,
    });
    #[cfg(all(target_arch = "x86_64", feature = "bench-tcmalloc"))]
    v.push(Allocator {
        name: "tcmalloc-better",
        ours: false,
        a: &TCMALLOC,
    });
    v
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

/// Runs `work(thread, stop)` on `threads` threads for `ms`; returns CPU ns per operation (`work`
/// returns its operations).
fn measure(threads: usize, ms: u64, work: &(dyn Fn(usize, &AtomicBool) -> u64 + Sync)) -> f64 {
    let stop = AtomicBool::new(false);
    let (ops, cpu) = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let stop = &stop;
                s.spawn(move || {
                    let c0 = thread_cpu_ns();
                    let n = work(t, stop);
                    (n, thread_cpu_ns() - c0)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(ms));
        stop.store(true, Ordering::Relaxed);
        hs.into_iter()
            .map(|h| h.join().unwrap())
            .fold((0, 0), |(a, b), (n, c)| (a + n, b + c))
    });
    cpu as f64 / ops.max(1) as f64
}

/// Sizes 16..256 in a fixed pseudo-random order (a table: no division in the timed loop).
fn small_sizes() -> [Layout; 512] {
    core::array::from_fn(|i| layout(16 + (i * 48) % 241))
}

fn pair(a: &dyn GlobalAlloc, _t: usize, stop: &AtomicBool) -> u64 {
    let sizes = small_sizes();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for &l in &sizes {
            // SAFETY: non-zero layouts; each block is freed once with its layout.
            unsafe {
                let p = a.alloc(l);
                p.write_volatile(1);
                a.dealloc(p, l);
            }
        }
        n += 512;
    }
    n
}

fn mixed(a: &dyn GlobalAlloc, t: usize, stop: &AtomicBool) -> u64 {
    let table: [usize; 512] = core::array::from_fn(|i| {
        if i % 16 == 15 {
            4096
        } else {
            16 + (i * 88 + t * 16) % 1009
        }
    });
    let size = |i: usize| table[i % 512];
    let mut live: Vec<(*mut u8, Layout)> = (0..64)
        .map(|i| {
            let l = layout(size(i));
            // SAFETY: a non-zero layout.
            (unsafe { a.alloc(l) }, l)
        })
        .collect();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for i in 0..512usize {
            let k = (i * 29) % 64;
            let (p, l) = live[k];
            let nl = layout(size(i + (n as usize / 512) * 7));
            // SAFETY: `p` is live with `l`; the new block replaces it.
            unsafe {
                a.dealloc(p, l);
                let q = a.alloc(nl);
                q.write_volatile(1);
                live[k] = (q, nl);
            }
        }
        n += 512;
    }
    for (p, l) in live {
        // SAFETY: live blocks, freed once.
        unsafe { a.dealloc(p, l) };
    }
    n
}

/// Blocks handed over between the two threads of a pair, a batch at a time.
const BATCH: usize = 128;

/// One pair's hand-over: batches of (address, size) from the producer to the consumer.
struct Pair {
    batches: std::sync::Mutex<Vec<Vec<(usize, usize)>>>,
}

/// Producer (even `t`): allocates batches; consumer (odd `t`): frees them. Only the allocator's
/// calls are timed (thread CPU time around each batch of allocations or frees, added to
/// `timed`): waiting for the other thread and the hand-over itself are not, so the cell is the
/// cost of an allocation plus a free made on another thread (usually another CPU). Returns the
/// blocks this thread allocated.
fn handoff(
    a: &dyn GlobalAlloc,
    pairs: &[Pair],
    t: usize,
    stop: &AtomicBool,
    timed: &AtomicU64,
) -> u64 {
    let pair = &pairs[t / 2];
    let sizes = small_sizes();
    let mut n = 0u64;
    if t % 2 == 0 {
        let mut i = 0usize;
        while !stop.load(Ordering::Relaxed) {
            if pair.batches.lock().unwrap().len() >= 4 {
                std::thread::yield_now();
                continue;
            }
            let mut batch = Vec::with_capacity(BATCH);
            let c0 = thread_cpu_ns();
            for _ in 0..BATCH {
                let l = sizes[i % 512];
                // SAFETY: a non-zero layout; the consumer frees it with the same layout.
                let p = unsafe { a.alloc(l) };
                // SAFETY: a fresh block of at least 16 bytes.
                unsafe { p.write_volatile(1) };
                batch.push((p as usize, l.size()));
                i += 1;
            }
            timed.fetch_add(thread_cpu_ns() - c0, Ordering::Relaxed);
            pair.batches.lock().unwrap().push(batch);
            n += BATCH as u64;
        }
    } else {
        loop {
            let batch = pair.batches.lock().unwrap().pop();
            let Some(batch) = batch else {
                if stop.load(Ordering::Relaxed) && pair.batches.lock().unwrap().is_empty() {
                    break;
                }
                std::thread::yield_now();
                continue;
            };
            let c0 = thread_cpu_ns();
            for &(p, size) in &batch {
                // SAFETY: a block the producer allocated with this size and alignment 8.
                unsafe { a.dealloc(p as *mut u8, layout(size)) };
            }
            timed.fetch_add(thread_cpu_ns() - c0, Ordering::Relaxed);
        }
    }
    n
}

fn workload(name: &str, a: &(dyn GlobalAlloc + Sync), threads: usize, ms: u64) -> f64 {
    match name {
        "pair" => measure(threads, ms, &|t, s| pair(a, t, s)),
        "mixed" => measure(threads, ms, &|t, s| mixed(a, t, s)),
        _ => {
            // Pairs of threads: the 1-thread cell is one pair.
            let n = threads.div_ceil(2);
            let pairs: Vec<Pair> = (0..n)
                .map(|_| Pair {
                    batches: std::sync::Mutex::new(Vec::new()),
                })
                .collect();
            let timed = AtomicU64::new(0);
            let ops = AtomicU64::new(0);
            measure(n * 2, ms, &|t, s| {
                ops.fetch_add(handoff(a, &pairs, t, s, &timed), Ordering::Relaxed);
                0
            });
            timed.into_inner() as f64 / ops.into_inner().max(1) as f64
        }
    }
}

/// The child: 1,000 threads, eight at a time, each allocating and freeing 300 blocks; prints VmRSS.
fn rss_child(name: &str) {
    let a = allocators().into_iter().find(|x| x.name == name).unwrap().a;
    for _ in 0..125 {
        std::thread::scope(|s| {
            for t in 0..8usize {
                s.spawn(move || {
                    let v: Vec<(*mut u8, Layout)> = (0..300)
                        .map(|i| {
                            let l = layout(16 + (i * 88 + t) % 1009);
                            // SAFETY: a non-zero layout.
                            let p = unsafe { a.alloc(l) };
                            // SAFETY: a fresh block of l.size() bytes.
                            unsafe { p.write_bytes(1, l.size()) };
                            (p, l)
                        })
                        .collect();
                    for (p, l) in v {
                        // SAFETY: freed once with its layout.
                        unsafe { a.dealloc(p, l) };
                    }
                });
            }
        });
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let rss = status.lines().find(|l| l.starts_with("VmRSS")).unwrap();
    println!("RSS {}", rss.split_whitespace().nth(1).unwrap());
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |k: &str| {
        args.iter()
            .position(|a| a == k)
            .map(|i| args[i + 1].clone())
    };
    if let Some(name) = arg("--rss-child") {
        rss_child(&name);
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let ms: u64 = arg("--ms").map_or(if quick { 20 } else { 200 }, |v| v.parse().unwrap());
    let reps: usize = arg("--reps").map_or(if quick { 1 } else { 3 }, |v| v.parse().unwrap());
    let fastest = match arg("--stat").as_deref() {
        None | Some("median") => false,
        Some("fastest") => true,
        Some(other) => {
            eprintln!("--stat takes median or fastest, not {other}");
            std::process::exit(2);
        }
    };
    let stat = if fastest { "fastest" } else { "median" };
    // cargo runs benches in the package's directory: a relative `--out` is taken from the
    // workspace root, as the documented command writes it.
    let out = arg("--out").map(|d| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        root.join(d).to_string_lossy().into_owned()
    });
    let t0 = Instant::now();
    let machine = report::machine();
    let allocs = allocators();
    if let Some(group) = arg("--only") {
        // A quick look at one workload (no files): `--only pair [--threads N]`, the allocators
        // interleaved `reps` times; the fastest and the median repetition of each.
        let threads: usize = arg("--threads").map_or(1, |v| v.parse().unwrap());
        let mut runs = vec![Vec::new(); allocs.len()];
        for _ in 0..reps {
            for (ai, a) in allocs.iter().enumerate() {
                runs[ai].push(workload(&group, a.a, threads, ms));
            }
        }
        println!("{group}, {threads} thread(s), {ms} ms x {reps} reps: ns/op (fastest, median)");
        for (a, r) in allocs.iter().zip(runs) {
            println!("{:>16} {:8.2} {:8.2}", a.name, min(&r), median(r));
        }
        return;
    }
    let groups = ["pair", "mixed", "producer/consumer"];
    println!(
        "rseq-alloc benchmark: {machine}; rseq-dsl {}; {ms} ms x {reps} reps, {stat}",
        rseq_dsl::status()
    );
    // cells[group][alloc][threads]
    let mut cells = vec![vec![vec![Vec::new(); THREADS.len()]; allocs.len()]; groups.len()];
    for _ in 0..reps {
        for (g, group) in groups.iter().enumerate() {
            for (ti, &t) in THREADS.iter().enumerate() {
                for (ai, a) in allocs.iter().enumerate() {
                    cells[g][ai][ti].push(workload(group, a.a, t, ms));
                }
            }
        }
    }
    let est: Vec<Vec<Vec<f64>>> = cells
        .into_iter()
        .map(|g| {
            g.into_iter()
                .map(|a| {
                    a.into_iter()
                        .map(|r| if fastest { min(&r) } else { median(r) })
                        .collect()
                })
                .collect()
        })
        .collect();
    let exe = std::env::current_exe().unwrap();
    let rss: Vec<Option<u64>> = allocs
        .iter()
        .map(|a| {
            let o = std::process::Command::new(&exe)
                .args(["--rss-child", a.name])
                .output()
                .ok()?;
            let s = String::from_utf8_lossy(&o.stdout);
            s.lines()
                .find_map(|l| l.strip_prefix("RSS ")?.trim().parse().ok())
        })
        .collect();

    let mut md = String::new();
    let _ = writeln!(md, "## rseq-alloc against other allocators ({machine}; rseq-dsl: {}; {ms} ms x {reps} reps per cell, {stat})\n", rseq_dsl::status());
    let _ = writeln!(md, "ns/op = CPU time of the benchmark threads / operations (`rseq-alloc/benches/alloc.rs`). One operation is one allocation and one free. producer/consumer: the threads come in pairs (the 1-thread column is one pair); only the batches of allocations and of frees are timed, not the waiting.\n");
    let mut csv = String::from("group,variant,rseq,threads,ns_per_op\n");
    let mut panels = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        let _ = writeln!(md, "### {group}\n");
        let _ = writeln!(md, "| allocator | 1 thr ns/op | 2 thr ns/op | 4 thr ns/op | 8 thr ns/op | x glibc (1 thr) | 8 thr / 1 thr |");
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
        let mut series = Vec::new();
        for (ai, a) in allocs.iter().enumerate() {
            let c = &est[g][ai];
            let name = if a.ours {
                format!("**{}**", a.name)
            } else {
                a.name.to_string()
            };
            let _ = writeln!(
                md,
                "| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                c[0],
                c[1],
                c[2],
                c[3],
                c[0] / est[g][1][0],
                c[3] / c[0]
            );
            for (ti, t) in THREADS.iter().enumerate() {
                let _ = writeln!(csv, "{group},{},{},{t},{:.4}", a.name, a.ours, c[ti]);
            }
            series.push(report::Series {
                name: a.name.to_string(),
                rseq: a.ours,
                cells: c.clone(),
            });
        }
        md.push('\n');
        panels.push(report::Panel {
            group: group.to_string(),
            series,
        });
    }
    let _ = writeln!(md, "### Resident memory after 1,000 threads (eight at a time) each allocated and freed 300 blocks of 16..1024 bytes\n");
    let _ = writeln!(md, "| allocator | VmRSS of the child process |");
    let _ = writeln!(md, "|---|---:|");
    for (a, r) in allocs.iter().zip(&rss) {
        let _ = writeln!(
            md,
            "| {} | {} |",
            a.name,
            r.map_or("n/a".to_string(), |k| format!("{k} KiB"))
        );
    }
    let _ = writeln!(md, "\n### Targets\n");
    let _ = writeln!(md, "| target | measured | met |");
    let _ = writeln!(md, "|---|---|:-:|");
    let fastest_other = (1..allocs.len())
        .map(|ai| est[0][ai][0])
        .fold(f64::INFINITY, f64::min);
    let r = est[0][0][0] / fastest_other;
    let _ = writeln!(md, "| pair at 1 thread <= 1.2x the fastest other allocator | {:.2} / {fastest_other:.2} = {r:.2}x | {} |", est[0][0][0], if r <= 1.2 { "yes" } else { "**no**" });
    for (g, group) in groups.iter().enumerate() {
        let (ours, glibc) = (est[g][0][3], est[g][1][3]);
        let _ = writeln!(
            md,
            "| {group} at 8 threads faster than glibc | {ours:.2} vs {glibc:.2} | {} |",
            if ours < glibc { "yes" } else { "**no**" }
        );
    }
    println!("{md}");
    if let Some(dir) = out {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/alloc.md"), &md).unwrap();
        std::fs::write(format!("{dir}/alloc.csv"), &csv).unwrap();
        let title = format!(
            "rseq-alloc vs glibc malloc vs mimalloc: ns/op (CPU time) vs threads; {machine}"
        );
        std::fs::write(
            format!("{dir}/alloc.svg"),
            report::svg(&panels, &THREADS, &title),
        )
        .unwrap();
        println!(
            "wrote {dir}/alloc.md, alloc.csv and alloc.svg in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
    }
}
