//! rseq-alloc as this test binary's global allocator (libtest, the threads, channels and the child
//! processes all allocate through it): layouts, cross-thread frees, signal storms with the aborts
//! counted, thread churn against the per-CPU bound, fork, and fallback mode.

use std::alloc::{GlobalAlloc, Layout};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rseq_alloc::{per_cpu_bound, stats, RseqAlloc, MAX_SMALL, SIZES};
use rseq_dsl::{status, Mode, Owner};

#[global_allocator]
static ALLOC: RseqAlloc = RseqAlloc;

#[test]
fn expected_mode() {
    let s = status();
    rseq_testkit::check_expected_mode(s.mode == Mode::Native, s.owner == Some(Owner::Glibc), s);
}

/// Fills `len` bytes at `p` with a pattern derived from `tag`.
fn fill(p: *mut u8, len: usize, tag: u64) {
    for i in 0..len {
        // SAFETY: the caller's block has `len` bytes.
        unsafe { p.add(i).write((tag as u8).wrapping_add(i as u8)) };
    }
}

/// Whether the pattern of `fill` is intact.
fn intact(p: *const u8, len: usize, tag: u64) -> bool {
    // SAFETY: as in `fill`.
    (0..len).all(|i| unsafe { p.add(i).read() } == (tag as u8).wrapping_add(i as u8))
}

#[test]
fn every_size_and_alignment() {
    let mut live = Vec::new();
    for align in [1usize, 8, 16, 32, 64, 256, 1024, 4096] {
        for size in (1..=MAX_SMALL + 64)
            .step_by(7)
            .chain([MAX_SMALL, 4096, 100_000])
        {
            let layout = Layout::from_size_align(size, align).unwrap();
            // SAFETY: a non-zero layout.
            let p = unsafe { ALLOC.alloc(layout) };
            assert!(!p.is_null(), "{layout:?}");
            assert_eq!(p as usize % align, 0, "{layout:?} at {p:?}");
            fill(p, size, size as u64);
            live.push((p, layout));
        }
    }
    let distinct: HashSet<_> = live.iter().map(|&(p, _)| p as usize).collect();
    assert_eq!(distinct.len(), live.len(), "a block handed out twice");
    for (p, layout) in live {
        assert!(intact(p, layout.size(), layout.size() as u64), "{layout:?}");
        // SAFETY: allocated above with this layout.
        unsafe { ALLOC.dealloc(p, layout) };
    }
}

#[test]
fn realloc_keeps_the_contents() {
    let mut v: Vec<u8> = Vec::new();
    for i in 0..200_000u32 {
        v.push(i as u8);
        if i % 10_007 == 0 {
            v.shrink_to_fit();
        }
    }
    assert!(v.iter().enumerate().all(|(i, &b)| b == i as u8));
    for align in [16usize, 64, 4096] {
        let layout = Layout::from_size_align(24, align).unwrap();
        // SAFETY: a non-zero layout.
        let mut p = unsafe { ALLOC.alloc(layout) };
        fill(p, 24, 7);
        let mut size = 24;
        for new_size in [40, 1000, 5000, 300, 17] {
            // SAFETY: `p` is live with `size` bytes and this alignment.
            p = unsafe {
                ALLOC.realloc(p, Layout::from_size_align(size, align).unwrap(), new_size)
            };
            assert_eq!(p as usize % align, 0);
            assert!(intact(p, size.min(new_size).min(24), 7));
            size = new_size;
        }
        // SAFETY: the last reallocation's layout.
        unsafe { ALLOC.dealloc(p, Layout::from_size_align(size, align).unwrap()) };
    }
}

/// Blocks allocated on producer threads and freed on consumer threads (cross-CPU frees), contents
/// checked at the consumer; every block is freed exactly once.
#[test]
fn frees_on_other_threads() {
    let (tx, rx) = mpsc::sync_channel::<(usize, usize, u64)>(1024);
    let rx = std::sync::Mutex::new(rx);
    let freed = AtomicU64::new(0);
    const PER: u64 = 20_000;
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let tx = tx.clone();
            s.spawn(move || {
                for i in 0..PER {
                    let size = SIZES[(i as usize + t as usize) % SIZES.len()] - (i as usize % 5);
                    let layout = Layout::from_size_align(size, 8).unwrap();
                    // SAFETY: a non-zero layout.
                    let p = unsafe { ALLOC.alloc(layout) };
                    let tag = t << 32 | i;
                    fill(p, size, tag);
                    tx.send((p as usize, size, tag)).unwrap();
                }
            });
        }
        drop(tx);
        for _ in 0..3 {
            s.spawn(|| loop {
                let Ok((p, size, tag)) = rx.lock().unwrap().recv() else {
                    break;
                };
                assert!(
                    intact(p as *const u8, size, tag),
                    "block {p:#x} changed in flight"
                );
                // SAFETY: allocated by a producer with this layout, freed once here.
                unsafe { ALLOC.dealloc(p as *mut u8, Layout::from_size_align(size, 8).unwrap()) };
                freed.fetch_add(1, Ordering::Relaxed);
            });
        }
    });
    assert_eq!(freed.into_inner(), 4 * PER);
}

/// The allocation loop of the storm tests: each thread keeps a window of live blocks, each filled
/// with a tag unique to (thread, allocation) and checked before it is freed, so a block handed to
/// two threads at once (a lost or duplicated cache update) shows as a changed tag. Returns the
/// operations done.
fn churn(thread: usize, deadline: Instant) -> u64 {
    let mut live: Vec<(*mut u8, Layout, u64)> = Vec::with_capacity(64);
    let mut n = 0u64;
    while Instant::now() < deadline {
        for _ in 0..256 {
            let size = SIZES[(n as usize * 7 + thread) % SIZES.len()];
            let layout = Layout::from_size_align(size, 16).unwrap();
            // SAFETY: a non-zero layout.
            let p = unsafe { ALLOC.alloc(layout) };
            assert!(!p.is_null());
            let tag = (thread as u64) << 40 | n;
            fill(p, 16, tag);
            live.push((p, layout, tag));
            n += 1;
            if live.len() == 64 || n % 3 == 0 {
                let (p, layout, tag) = live.swap_remove((n as usize * 13) % live.len());
                assert!(intact(p, 16, tag), "block {p:?} was handed out twice");
                // SAFETY: allocated above with `layout`, freed once.
                unsafe { ALLOC.dealloc(p, layout) };
            }
        }
    }
    for (p, layout, tag) in live {
        assert!(intact(p, 16, tag), "block {p:?} was handed out twice");
        // SAFETY: as above.
        unsafe { ALLOC.dealloc(p, layout) };
    }
    n
}

/// Eight threads on every CPU of the machine allocate and free under a SIGUSR1 storm; natively the
/// storm must abort sections (counted by the allocator's retries) and no block may be handed out
/// twice.
#[test]
fn signal_storm() {
    let native = status().mode == Mode::Native;
    let before = stats().aborts;
    let period = rseq_testkit::env_ms("RSEQ_ALLOC_STORM_MS", 300);
    let ops = AtomicU64::new(0);
    rseq_testkit::storm_until_aborted(8, period, native, |t, deadline| {
        ops.fetch_add(churn(t, deadline), Ordering::Relaxed);
        // The aborts are counted by the allocator, not per thread: report them once below.
        0
    });
    // storm_until_aborted stops early only on reported aborts: go on here until the allocator saw
    // one (natively), up to its period count.
    let mut rounds = 0;
    while native && stats().aborts == before && rounds < rseq_testkit::STORM_PERIODS {
        rseq_testkit::stress(8, true, |t| {
            ops.fetch_add(churn(t, Instant::now() + period), Ordering::Relaxed);
        });
        rounds += 1;
    }
    let aborts = stats().aborts - before;
    rseq_testkit::report_aborts("rseq-alloc storm", aborts);
    println!(
        "{} operations, {aborts} aborts",
        ops.load(Ordering::Relaxed)
    );
    if native {
        assert!(aborts > 0, "the storm aborted no section");
    }
}

/// 1,000 threads, at most eight at a time, each allocating a few hundred blocks and freeing them
/// before it exits: the per-CPU caches never hold more than the bound, and the mapped memory stays
/// at what eight threads' live blocks need (it does not grow with the number of threads).
#[test]
fn thousand_threads_stay_within_the_bound() {
    let threads = rseq_testkit::env_count("RSEQ_ALLOC_THREADS", 1000);
    let mapped_before = stats().mapped;
    for wave in 0..threads.div_ceil(8) {
        std::thread::scope(|s| {
            for t in 0..8.min(threads - wave * 8) {
                s.spawn(move || {
                    let v: Vec<Box<[u8]>> = (0..300)
                        .map(|i| vec![t as u8; SIZES[i % SIZES.len()]].into_boxed_slice())
                        .collect();
                    assert!(v.iter().all(|b| b.iter().all(|&x| x == t as u8)));
                });
            }
        });
        let s = stats();
        assert!(
            s.cached_max_cpu <= per_cpu_bound(),
            "a CPU caches {} bytes, bound {}",
            s.cached_max_cpu,
            per_cpu_bound()
        );
    }
    let s = stats();
    // Eight threads x 300 blocks of 16..4096 bytes (about 2.3 MB live at most), plus the caches,
    // plus what the rest of this test binary allocates: far below the 1,000 threads' total.
    let grown = s.mapped - mapped_before;
    println!("after {threads} threads: {s:?}, mapped grew by {grown} bytes");
    assert!(grown <= 16 << 20, "mapped memory grew by {grown} bytes");
}

/// A thread allocates while the main thread forks; each child allocates and frees under an alarm
/// (a lock inherited in the held state would hang it).
#[test]
fn fork_child_can_allocate() {
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                churn(1, Instant::now() + Duration::from_millis(5));
            }
        });
        for _ in 0..20 {
            // SAFETY: the child only calls async-signal-safe functions and the allocator, whose
            // locks the fork handlers release in the child, then `_exit`.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                // SAFETY: alarm has no preconditions; SIGALRM kills the child if it hangs.
                unsafe { libc::alarm(10) };
                let v: Vec<Vec<u8>> = (0..2000).map(|i| vec![1u8; 16 + i % 1000]).collect();
                let ok = v.iter().all(|b| b.iter().all(|&x| x == 1));
                drop(v);
                // SAFETY: _exit has no preconditions.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) };
            }
            let mut st = 0;
            // SAFETY: `pid` is our child.
            assert_eq!(unsafe { libc::waitpid(pid, &mut st, 0) }, pid);
            assert!(
                libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
                "child status {st:#x}"
            );
        }
        stop.store(true, Ordering::Relaxed);
    });
}

#[test]
fn trim_moves_cached_blocks_to_the_central_lists() {
    let v: Vec<Box<[u8; 48]>> = (0..10_000).map(|_| Box::new([3; 48])).collect();
    drop(v);
    let trimmed = rseq_alloc::trim_all();
    assert!(trimmed >= 1);
    let s = stats();
    println!("after trim_all ({trimmed} CPUs): {s:?}");
    assert!(s.central > 0);
}

/// `release` unmaps wholly free spans, keeps the spans of blocks in use, and the memory left is
/// still correct to use. In a child: the counts are exact only without other tests allocating.
#[test]
fn release_returns_free_spans() {
    rseq_testkit::run_child("release_child", &[], None);
}

#[test]
#[ignore = "run by release_returns_free_spans in a child process"]
fn release_child() {
    if !rseq_testkit::is_child("release_child") {
        return;
    }
    // The 896-byte class: 72 blocks per 64 KiB span (the first block is the span's header).
    const SIZE: usize = 896;
    const N: usize = 7_200;
    let layout = Layout::from_size_align(SIZE, 8).unwrap();
    let alloc_all = |tag: u64| -> Vec<*mut u8> {
        (0..N)
            .map(|i| {
                // SAFETY: a non-zero layout.
                let p = unsafe { ALLOC.alloc(layout) };
                assert!(!p.is_null());
                fill(p, SIZE, tag + i as u64);
                p
            })
            .collect()
    };
    let free_all = |v: &[*mut u8]| {
        for &p in v {
            // SAFETY: blocks of `layout`, each freed once.
            unsafe { ALLOC.dealloc(p, layout) };
        }
    };
    let before = stats().mapped;
    let v = alloc_all(1);
    let grown = stats().mapped - before;
    assert!(grown >= N * SIZE, "{grown}");
    // Keep every tenth block: the spans holding them must stay.
    let (keep, drop_now): (Vec<_>, Vec<_>) = v.iter().enumerate().partition(|(i, _)| i % 720 == 0);
    let keep: Vec<*mut u8> = keep.into_iter().map(|(_, &p)| p).collect();
    let drop_now: Vec<*mut u8> = drop_now.into_iter().map(|(_, &p)| p).collect();
    free_all(&drop_now);
    // Read just before `release`: the vectors above took blocks of other classes, which may have
    // mapped spans of their own (with classes up to 4 KiB, the partition's growth did on aarch64).
    let pre = stats().mapped;
    let released = rseq_alloc::release();
    let after = stats().mapped;
    println!(
        "mapped {before} -> +{grown} -> {pre} -> {after}: released {released}, kept {}",
        keep.len()
    );
    assert_eq!(pre - released, after);
    // 100 spans hold the blocks; the 10 kept blocks pin at most 10 of them, the others go.
    assert!(released >= 85 * 64 * 1024, "released only {released}");
    for (k, &p) in keep.iter().enumerate() {
        assert!(
            intact(p, SIZE, 1 + (k * 720) as u64),
            "a kept block changed"
        );
    }
    // The allocator still works over what is left, and grows again.
    let w = alloc_all(100_000);
    for (i, &p) in w.iter().enumerate() {
        assert!(intact(p, SIZE, 100_000 + i as u64));
    }
    let all: HashSet<usize> = w.iter().chain(&keep).map(|&p| p as usize).collect();
    assert_eq!(all.len(), N + keep.len(), "a block handed out twice");
    free_all(&w);
    free_all(&keep);
    assert!(rseq_alloc::release() >= 90 * 64 * 1024);
}

/// The storm and the churn again with `RSEQ_DSL_FALLBACK=1`: every sequence runs as its fallback
/// body under the runtime's locks.
#[test]
fn fallback_mode() {
    rseq_testkit::run_child(
        "fallback_child",
        &[("RSEQ_DSL_FALLBACK", "1"), ("RSEQ_ALLOC_THREADS", "200")],
        None,
    );
}

#[test]
#[ignore = "run by fallback_mode in a child process"]
fn fallback_child() {
    if !rseq_testkit::is_child("fallback_child") {
        return;
    }
    assert_eq!(status().mode, Mode::Fallback);
    rseq_testkit::stress(8, true, |t| {
        churn(t, Instant::now() + Duration::from_millis(200));
    });
    thousand_threads_stay_within_the_bound();
}

/// The negative control for the storm test: the caches' array stack written without rseq, as
/// separate loads and stores indexed by `sched_getcpu()` (relaxed atomics: the race is the
/// lost update between the load of `top` and its store, not a data race in Rust's sense). Under
/// the same threads and storm it hands a token to two threads at once or loses one; the storm
/// test's checks would see either. Statistical: up to twenty rounds until it fails (a single-stepped
/// VM lost 1-5 tokens in its first round).
#[test]
fn unprotected_control_loses_or_duplicates() {
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    // Each CPU's stack can hold every token, so a push never finds it full unless the race
    // duplicated tokens.
    const CAP: usize = 64;
    let ncpu = rseq_dsl::possible_cpus();
    let tokens = CAP;
    let period = rseq_testkit::env_ms("RSEQ_ALLOC_STORM_MS", 300);
    let mut broken = 0;
    for _round in 0..20 {
        let top: Vec<AtomicUsize> = (0..ncpu).map(|_| AtomicUsize::new(0)).collect();
        let slot: Vec<AtomicUsize> = (0..ncpu * CAP).map(|_| AtomicUsize::new(0)).collect();
        let held: Vec<AtomicBool> = (0..tokens).map(|_| AtomicBool::new(false)).collect();
        for i in 0..tokens {
            // Token i (stored as i + 1) on CPU i % ncpu.
            let (cpu, t) = (i % ncpu, top[i % ncpu].load(Ordering::Relaxed));
            slot[cpu * CAP + t].store(i + 1, Ordering::Relaxed);
            top[cpu].store(t + 1, Ordering::Relaxed);
        }
        let dup = AtomicU64::new(0);
        rseq_testkit::stress(8, true, |_| {
            let deadline = Instant::now() + period;
            while Instant::now() < deadline {
                let cpu = rseq_testkit::sched_getcpu();
                let t = top[cpu].load(Ordering::Relaxed);
                if t == 0 {
                    continue;
                }
                let tok = slot[cpu * CAP + t - 1].load(Ordering::Relaxed);
                top[cpu].store(t - 1, Ordering::Relaxed);
                if tok == 0 || held[tok - 1].swap(true, Ordering::Relaxed) {
                    dup.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                std::hint::black_box(tok);
                held[tok - 1].store(false, Ordering::Relaxed);
                let cpu = rseq_testkit::sched_getcpu();
                let t = top[cpu].load(Ordering::Relaxed);
                if t < CAP {
                    slot[cpu * CAP + t].store(tok, Ordering::Relaxed);
                    top[cpu].store(t + 1, Ordering::Relaxed);
                } else {
                    // Full: only possible after a duplication; the token is dropped (lost).
                    dup.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let present: HashSet<usize> = (0..ncpu)
            .flat_map(|cpu| {
                let n = top[cpu].load(Ordering::Relaxed);
                (0..n).map(move |k| cpu * CAP + k)
            })
            .map(|i| slot[i].load(Ordering::Relaxed))
            .collect();
        let lost = tokens - present.len().min(tokens);
        broken = dup.into_inner() + lost as u64;
        if broken > 0 {
            break;
        }
    }
    rseq_testkit::report_lost("rseq-alloc unprotected cache control", broken);
    assert!(
        broken > 0,
        "the unprotected cache lost and duplicated nothing in twenty rounds"
    );
}

/// Runs the ignored test `scenario` in a child process, which is expected to die; its output and
/// its stderr.
#[cfg(any(feature = "debug", feature = "asan"))]
fn crashing_child(scenario: &str) -> (std::process::Output, String) {
    let out = rseq_testkit::command(std::env::current_exe().unwrap())
        .args([
            scenario,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(rseq_testkit::CHILD_ENV, scenario)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stderr)
}

/// The `debug` feature: a double free and a write after free abort the process (in a child).
#[cfg(feature = "debug")]
#[test]
fn debug_catches_double_free_and_write_after_free() {
    for scenario in ["double_free_child", "write_after_free_child"] {
        let (out, stderr) = crashing_child(scenario);
        // Built with the `asan` feature too, AddressSanitizer stops the write after free first
        // (the block is poisoned) and exits with an error instead of the debug mode's abort.
        if cfg!(feature = "asan") && scenario == "write_after_free_child" {
            assert!(!out.status.success(), "{scenario}: {stderr}");
            assert!(
                stderr.contains("AddressSanitizer: use-after-poison"),
                "{scenario}: {stderr}"
            );
            continue;
        }
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGABRT),
            "{scenario}: {stderr}"
        );
        assert!(stderr.contains("rseq-alloc: "), "{scenario}: {stderr}");
    }
}

#[cfg(feature = "debug")]
#[test]
#[ignore = "run by debug_catches_double_free_and_write_after_free"]
fn double_free_child() {
    if !rseq_testkit::is_child("double_free_child") {
        return;
    }
    let layout = Layout::from_size_align(40, 8).unwrap();
    // SAFETY: a non-zero layout; the second dealloc is the bug under test (the allocator aborts).
    unsafe {
        let p = ALLOC.alloc(layout);
        ALLOC.dealloc(p, layout);
        ALLOC.dealloc(p, layout);
    }
}

#[cfg(feature = "debug")]
#[test]
#[ignore = "run by debug_catches_double_free_and_write_after_free"]
fn write_after_free_child() {
    if !rseq_testkit::is_child("write_after_free_child") {
        return;
    }
    let layout = Layout::from_size_align(40, 8).unwrap();
    // SAFETY: a non-zero layout; the write after free is the bug under test, on memory the
    // allocator keeps mapped (the block sits in this CPU's cache, and the next allocation of the
    // class on this CPU takes it back and aborts). Pinned, so that both run on one CPU.
    unsafe {
        rseq_testkit::pin_to(&[rseq_testkit::sched_getcpu()]);
        let p = ALLOC.alloc(layout);
        ALLOC.dealloc(p, layout);
        p.add(20).write(1);
        let q = ALLOC.alloc(layout);
        std::hint::black_box(q);
    }
}

/// The committed benchmark plot is valid XML (browsers refuse a plot with an unescaped name).
#[test]
fn committed_plot_parses() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/benchmarks/alloc.svg");
    let Ok(svg) = std::fs::read_to_string(path) else {
        rseq_testkit::skip(
            "committed_plot_parses",
            "no docs/benchmarks/alloc.svg in this tree",
        );
        return;
    };
    roxmltree::Document::parse(&svg).expect("docs/benchmarks/alloc.svg is not valid XML");
}

/// The `asan` feature (built with `-Zsanitizer=address`, as `.ci/run` does): a read after free and
/// a write past the request, inside the block's class size, are reported by AddressSanitizer.
#[cfg(feature = "asan")]
#[test]
fn asan_reports_use_after_free_and_overflow() {
    for scenario in [
        "asan_read_after_free_child",
        "asan_write_past_request_child",
    ] {
        let (out, stderr) = crashing_child(scenario);
        assert!(!out.status.success(), "{scenario}: {stderr}");
        assert!(
            stderr.contains("AddressSanitizer: use-after-poison"),
            "{scenario}: {stderr}"
        );
        assert!(stderr.contains(scenario), "{scenario}: {stderr}");
    }
}

#[cfg(feature = "asan")]
#[test]
#[ignore = "run by asan_reports_use_after_free_and_overflow"]
fn asan_read_after_free_child() {
    if !rseq_testkit::is_child("asan_read_after_free_child") {
        return;
    }
    let layout = Layout::from_size_align(40, 8).unwrap();
    // SAFETY: a non-zero layout; the read after free is the bug under test (ASan stops it).
    unsafe {
        let p = ALLOC.alloc(layout);
        ALLOC.dealloc(p, layout);
        std::hint::black_box(p.add(20).read_volatile());
    }
}

#[cfg(feature = "asan")]
#[test]
#[ignore = "run by asan_reports_use_after_free_and_overflow"]
fn asan_write_past_request_child() {
    if !rseq_testkit::is_child("asan_write_past_request_child") {
        return;
    }
    // 40 bytes get a 48-byte block: bytes 40..48 are the allocator's.
    let layout = Layout::from_size_align(40, 8).unwrap();
    // SAFETY: a non-zero layout; the write past the request is the bug under test.
    unsafe {
        let p = ALLOC.alloc(layout);
        p.add(44).write_volatile(1);
        ALLOC.dealloc(p, layout);
    }
}
