//! Stress tests of `rseq_dsl::percpu`: every structure with threads = 4 x CPUs under a SIGUSR1
//! storm, with exact invariants (sums exact; every node / item present exactly once, intact), and
//! with the cross-CPU operations (counter reset, stack drain and steal, buffer drains) running
//! concurrently with sections on the CPUs they target. Natively the storm must abort sections
//! (counted through the `try_` forms); the same scenarios run in forced fallback mode and in
//! self-registration mode (child processes).

#[allow(dead_code)]
#[path = "../benches/compare.rs"]
mod compare;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rseq_dsl::percpu::{Buffer, Counter, ItemBuffer, Node, Pool, RemoteError, SpinLock, Stack};
use rseq_dsl::{possible_cpus, status, Error, Mode, Owner};
use rseq_testkit::{is_child, run_child};

/// Per scenario (doubled, up to 3 times, when a native run saw no abort); the whole file stays
/// within a few seconds in debug builds on 2 CPUs.
/// `RSEQ_PERCPU_MS` overrides it (runners raise it on single-stepped emulated kernels, where 150 ms
/// may not complete an operation in fallback mode).
fn duration() -> Duration {
    rseq_testkit::env_ms("RSEQ_PERCPU_MS", 150)
}

/// 4 per CPU; `RSEQ_TEST_THREADS_PER_CPU` overrides the 4 (runners lower it on many-vCPU VMs).
fn threads() -> usize {
    let per_cpu = std::env::var("RSEQ_TEST_THREADS_PER_CPU")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(4, |n| n.max(1));
    per_cpu * std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[derive(Debug, Default)]
struct Tally {
    ops: AtomicU64,
    aborts: AtomicU64,
    remote: AtomicU64,
}

impl Tally {
    fn report(&self, name: &str, mode: Mode) {
        let (ops, aborts, remote) = (
            self.ops.load(Ordering::Relaxed),
            self.aborts.load(Ordering::Relaxed),
            self.remote.load(Ordering::Relaxed),
        );
        println!("{name:<12} {mode:?}: ops {ops}, aborts {aborts}, cross-CPU operations {remote}");
        rseq_testkit::report_aborts(name, aborts);
        assert!(ops > 0, "{name}: no operation completed");
        match mode {
            Mode::Native => assert!(aborts > 0, "{name}: the storm aborted no section"),
            Mode::Fallback => assert_eq!(aborts, 0, "{name}: fallback mode has no sections"),
        }
    }
}

/// Runs `work(thread, round, &mut aborts)` in a loop on `threads()` threads under a signal storm.
fn run(dur: Duration, tally: &Tally, work: impl Fn(usize, u64, &mut u64) + Sync) {
    let start = Instant::now();
    rseq_testkit::stress(threads(), true, |t| {
        let (mut round, mut aborts) = (0u64, 0u64);
        while start.elapsed() < dur {
            for _ in 0..64 {
                work(t, round, &mut aborts);
                round += 1;
            }
        }
        tally.ops.fetch_add(round, Ordering::Relaxed);
        tally.aborts.fetch_add(aborts, Ordering::Relaxed);
    });
}

/// Calls a one-attempt form until it does not abort, counting the aborts.
fn retry<R>(aborts: &mut u64, mut attempt: impl FnMut() -> Result<R, Error>) -> R {
    loop {
        match attempt() {
            Ok(r) => return r,
            Err(Error::Aborted) => *aborts += 1,
            Err(e) => panic!("sequence failed: {e}"),
        }
    }
}

/// A CPU to operate on from another thread: cycles through all of them.
fn target(round: u64) -> usize {
    (round / 16) as usize % possible_cpus()
}

/// A counter under concurrent adds and resets from thread 0: every add is counted exactly once by
/// a reset or the final sum. `add(counter, round, aborts)` does one round's adds and returns what
/// it added (wrapping).
fn counter_scenario(
    name: &str,
    pool: &Pool,
    dur: Duration,
    add: impl Fn(&Counter, u64, &mut u64) -> u64 + Sync,
) -> Tally {
    let c = Counter::new_in(pool).unwrap();
    let (added, taken) = (AtomicU64::new(0), AtomicU64::new(0));
    let tally = Tally::default();
    run(dur, &tally, |t, round, aborts| {
        if t == 0 && round % 16 == 0 {
            taken.fetch_add(c.reset(), Ordering::Relaxed);
            tally.remote.fetch_add(1, Ordering::Relaxed);
        } else {
            added.fetch_add(add(&c, round, aborts), Ordering::Relaxed);
        }
    });
    c.add(5);
    let want = added.load(Ordering::Relaxed).wrapping_add(5);
    let got = taken.load(Ordering::Relaxed).wrapping_add(c.sum());
    assert_eq!(got, want, "{name}: reset totals + sum != added");
    tally
}

fn counter(pool: &Pool, dur: Duration) -> Tally {
    counter_scenario("counter", pool, dur, |c, round, aborts| {
        let n = if round % 7 == 0 {
            2u64.wrapping_neg()
        } else {
            round % 3 + 1
        };
        retry(aborts, || c.try_add(n));
        n
    })
}

/// `Counter::local` under a `this_thread` token: runs of adds through one hoisted handle (the
/// section takes the thread's entry from the token).
fn local_counter(pool: &Pool, dur: Duration) -> Tally {
    counter_scenario("local counter", pool, dur, |c, round, aborts| {
        rseq_dsl::this_thread(|th| {
            let local = c.local(th);
            let mut sum = 0u64;
            for k in 0..8 {
                let n = (round + k) % 3 + 1;
                retry(aborts, || local.try_add(n));
                sum += n;
            }
            local.sub(1);
            sum - 1
        })
        .expect("a worker thread can run sequences")
    })
}

fn spinlock(pool: &Pool, dur: Duration) -> Tally {
    spinlock_scenario(pool, dur, false)
}

/// `SpinLock::local` under a `this_thread` token (the section takes the thread's entry from it).
fn local_spinlock(pool: &Pool, dur: Duration) -> Tally {
    spinlock_scenario(pool, dur, true)
}

fn spinlock_scenario(pool: &Pool, dur: Duration, local: bool) -> Tally {
    let lock = SpinLock::new_in(pool, |_| (0u64, 0usize)).unwrap();
    let tally = Tally::default();
    let violations = AtomicU64::new(0);
    run(dur, &tally, |t, _, aborts| {
        let take = |aborts: &mut u64| {
            if local {
                rseq_dsl::this_thread(|th| {
                    let l = lock.local(th);
                    retry(aborts, || l.try_lock_once())
                })
                .expect("a worker thread can run sequences")
            } else {
                retry(aborts, || lock.try_lock_once())
            }
        };
        let mut g = loop {
            if let Some(g) = take(aborts) {
                break g;
            }
            std::hint::spin_loop();
        };
        // A non-atomic read-modify-write and an "owner inside" flag: a broken lock loses updates or
        // sees another owner.
        let data = &mut *g;
        // SAFETY: plain places behind the guard's `&mut`; volatile keeps the window open.
        unsafe {
            if std::ptr::read_volatile(&data.1) != 0 {
                violations.fetch_add(1, Ordering::Relaxed);
            }
            std::ptr::write_volatile(&mut data.1, t + 1);
            let v = std::ptr::read_volatile(&data.0);
            std::hint::spin_loop();
            std::ptr::write_volatile(&mut data.0, v + 1);
            if std::ptr::read_volatile(&data.1) != t + 1 {
                violations.fetch_add(1, Ordering::Relaxed);
            }
            std::ptr::write_volatile(&mut data.1, 0);
        }
    });
    assert_eq!(
        violations.load(Ordering::Relaxed),
        0,
        "spinlock: two owners"
    );
    assert!(
        (0..lock.len()).all(|cpu| !lock.is_locked(cpu)),
        "a lock left held"
    );
    let sum: u64 = lock.into_inner().iter().map(|d| d.0).sum();
    assert_eq!(
        sum,
        tally.ops.load(Ordering::Relaxed),
        "spinlock: lost updates"
    );
    tally
}

fn stack(pool: &Pool, dur: Duration) -> Tally {
    stack_scenario(pool, dur, false)
}

/// `Stack::local` under a `this_thread` token, with the drains and steals of `stack`.
fn local_stack(pool: &Pool, dur: Duration) -> Tally {
    stack_scenario(pool, dur, true)
}

fn stack_scenario(pool: &Pool, dur: Duration, local: bool) -> Tally {
    let s: Stack<u64> = Stack::new_in(pool).unwrap();
    let total = threads() as u64 * 16;
    for id in 0..total {
        s.push(Node::new(id));
    }
    let tally = Tally::default();
    run(dur, &tally, |t, round, aborts| {
        if t == 0 && round % 16 == 0 {
            // Take a whole list from another thread's point of view, then give it back.
            for node in s.drain(target(round)).unwrap() {
                s.push(node);
            }
            tally.remote.fetch_add(1, Ordering::Relaxed);
        } else if t == 1 && round % 16 == 0 {
            if let Some(node) = s.steal(target(round)).unwrap() {
                s.push(node);
            }
            tally.remote.fetch_add(1, Ordering::Relaxed);
        } else if local {
            rseq_dsl::this_thread(|th| {
                let l = s.local(th);
                if let Some(node) = retry(aborts, || l.try_pop_once()) {
                    assert!(**node < total, "stack: corrupted node {}", **node);
                    let mut node = Some(node);
                    while let Some(n) = node.take() {
                        if let Err((n, e)) = l.try_push_once(n) {
                            assert_eq!(e, Error::Aborted);
                            *aborts += 1;
                            node = Some(n);
                        }
                    }
                }
            })
            .expect("a worker thread can run sequences");
        } else if let Some(node) = retry(aborts, || s.try_pop_once()) {
            assert!(**node < total, "stack: corrupted node {}", **node);
            let mut node = Some(node);
            while let Some(n) = node.take() {
                if let Err((n, e)) = s.try_push_once(n) {
                    assert_eq!(e, Error::Aborted);
                    *aborts += 1;
                    node = Some(n);
                }
            }
        }
    });
    let mut ids = Vec::new();
    for cpu in 0..possible_cpus() {
        ids.extend(s.drain(cpu).unwrap().map(|n| n.into_inner()));
    }
    ids.sort_unstable();
    assert_eq!(
        ids,
        (0..total).collect::<Vec<_>>(),
        "stack: nodes lost or duplicated"
    );
    tally
}

fn buffer(pool: &Pool, dur: Duration) -> Tally {
    buffer_scenario(pool, dur, false)
}

/// `Buffer::local` under a `this_thread` token, with the drains of `buffer`.
fn local_buffer(pool: &Pool, dur: Duration) -> Tally {
    buffer_scenario(pool, dur, true)
}

fn buffer_scenario(pool: &Pool, dur: Duration, local: bool) -> Tally {
    let total = threads() * 8;
    let b: Buffer<u64> = Buffer::with_capacity_in(pool, total).unwrap();
    for id in 0..total as u64 {
        b.push(Box::new(id)).unwrap();
    }
    // Pushes back until they succeed (through `try_push`: the buffer's or a loop form's): with
    // capacity == total, "full" only means "being drained".
    type TryPush<'a> = &'a dyn Fn(Box<u64>) -> Result<(), (Box<u64>, Option<Error>)>;
    let push_back = |try_push: TryPush, mut item: Box<u64>, aborts: &mut u64| loop {
        match try_push(item) {
            Ok(()) => return,
            Err((i, e)) => {
                if e == Some(Error::Aborted) {
                    *aborts += 1;
                } else {
                    assert_eq!(e, None);
                    std::thread::yield_now();
                }
                item = i;
            }
        }
    };
    let plain = |item| b.try_push_once(item);
    let tally = Tally::default();
    run(dur, &tally, |t, round, aborts| {
        if t == 0 && round % 16 == 0 {
            for item in b.drain(target(round)).unwrap() {
                push_back(&plain, item, aborts);
            }
            tally.remote.fetch_add(1, Ordering::Relaxed);
        } else if local {
            rseq_dsl::this_thread(|th| {
                let l = b.local(th);
                if let Some(item) = retry(aborts, || l.try_pop_once()) {
                    assert!(*item < total as u64, "buffer: corrupted item");
                    push_back(&|item| l.try_push_once(item), item, aborts);
                }
            })
            .expect("a worker thread can run sequences");
        } else if let Some(item) = retry(aborts, || b.try_pop_once()) {
            assert!(*item < total as u64, "buffer: corrupted item");
            push_back(&plain, item, aborts);
        }
    });
    let mut ids: Vec<u64> = (0..possible_cpus())
        .flat_map(|cpu| b.drain(cpu).unwrap())
        .map(|i| *i)
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        (0..total as u64).collect::<Vec<_>>(),
        "buffer: items lost or duplicated"
    );
    tally
}

/// An item of `W` words whose words derive from its id, so a torn copy is detected.
fn make<const W: usize>(id: u64) -> [u64; W] {
    let mut a = [0; W];
    for (k, w) in a.iter_mut().enumerate() {
        *w = id
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(k as u32 * 7)
            ^ k as u64;
    }
    a[0] = id;
    a
}

/// Items of `W` words through the buffer's methods, or (`local`) through `ItemBuffer::local` under a
/// `this_thread` token, with the drains of `buffer`.
fn items<const W: usize>(name: &str, pool: &Pool, dur: Duration, local: bool) -> Tally {
    const N: usize = 64;
    let b: ItemBuffer<[u64; W], N> = ItemBuffer::new_in(pool).unwrap();
    let total = (threads() * 4).min(N) as u64;
    for id in 0..total {
        b.push(make::<W>(id)).unwrap();
    }
    let torn = AtomicU64::new(0);
    let check = |it: &[u64; W]| {
        if *it != make::<W>(it[0]) || it[0] >= total {
            torn.fetch_add(1, Ordering::Relaxed);
        }
    };
    type TryPush<'a, const W: usize> = &'a dyn Fn([u64; W]) -> Result<bool, Error>;
    let push_back = |try_push: TryPush<W>, it: [u64; W], aborts: &mut u64| loop {
        match try_push(it) {
            Ok(true) => return,
            Ok(false) => std::thread::yield_now(), // full: only while a drain marks the buffer
            Err(Error::Aborted) => *aborts += 1,
            Err(e) => panic!("{e}"),
        }
    };
    let tally = Tally::default();
    run(dur, &tally, |t, round, aborts| {
        if t == 0 && round % 16 == 0 {
            for it in b.drain(target(round)).unwrap() {
                check(&it);
                push_back(&|it| b.try_push_once(it), it, aborts);
            }
            tally.remote.fetch_add(1, Ordering::Relaxed);
        } else if local {
            rseq_dsl::this_thread(|th| {
                let l = b.local(th);
                if let Some(it) = retry(aborts, || l.try_pop_once()) {
                    check(&it);
                    push_back(&|it| l.try_push_once(it), it, aborts);
                }
            })
            .expect("a worker thread can run sequences");
        } else if let Some(it) = retry(aborts, || b.try_pop_once()) {
            check(&it);
            push_back(&|it| b.try_push_once(it), it, aborts);
        }
    });
    assert_eq!(
        torn.load(Ordering::Relaxed),
        0,
        "{name}: torn or corrupted items"
    );
    let mut ids: Vec<u64> = (0..possible_cpus())
        .flat_map(|cpu| b.drain(cpu).unwrap())
        .map(|it| {
            assert_eq!(it, make::<W>(it[0]), "{name}: torn item");
            it[0]
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        (0..total).collect::<Vec<_>>(),
        "{name}: items lost or duplicated"
    );
    tally
}

type Scenario = fn(&Pool, Duration) -> Tally;

/// Every scenario; all structures share one pool, as an application's would. A native run that saw
/// no abort is repeated with a longer duration (a few times), so that "aborts > 0" is a real
/// requirement without being flaky on a loaded machine.
fn run_all(mode: Mode) {
    assert_eq!(status().mode, mode, "{}", status());
    let pool = Pool::new();
    let scenarios: [(&str, Scenario); 16] = [
        ("counter", counter),
        ("local counter", local_counter),
        ("spinlock", spinlock),
        ("local spinlock", local_spinlock),
        ("stack", stack),
        ("local stack", local_stack),
        ("buffer", buffer),
        ("local buffer", local_buffer),
        // One-word form on 64-bit targets (the words in registers), the unrolled copy on 32-bit.
        ("items/8", |p, d| items::<1>("items/8", p, d, false)),
        ("local items/8", |p, d| {
            items::<1>("local items/8", p, d, true)
        }),
        // Two-word form on 64-bit targets, the unrolled copy on 32-bit.
        ("items/16", |p, d| items::<2>("items/16", p, d, false)),
        ("local items/16", |p, d| {
            items::<2>("local items/16", p, d, true)
        }),
        // The generic sequences (slot copy with a length).
        ("items/24", |p, d| items::<3>("items/24", p, d, false)),
        ("local items/24", |p, d| {
            items::<3>("local items/24", p, d, true)
        }),
        // The unrolled 32-byte copy on every target.
        ("items/32", |p, d| items::<4>("items/32", p, d, false)),
        ("local items/32", |p, d| {
            items::<4>("local items/32", p, d, true)
        }),
    ];
    for (name, scenario) in scenarios {
        let mut dur = duration();
        let mut tally = scenario(&pool, dur);
        for _ in 0..3 {
            if mode == Mode::Fallback || tally.aborts.load(Ordering::Relaxed) > 0 {
                break;
            }
            dur *= 2;
            tally = scenario(&pool, dur);
        }
        tally.report(name, mode);
    }
}

/// The mode a runner expects (`RSEQ_DSL_EXPECT_MODE`, `RSEQ_DSL_EXPECT_OWNER`; nothing is asserted
/// when unset): a run meant to be native cannot pass in fallback mode.
#[test]
fn expected_mode() {
    let s = status();
    rseq_testkit::check_expected_mode(s.mode == Mode::Native, s.owner == Some(Owner::Glibc), s);
}

#[test]
fn percpu_native_glibc_registration() {
    if rseq_testkit::skip_unless_glibc_registers("percpu_native_glibc_registration") {
        return;
    }
    assert_eq!(status().owner, Some(Owner::Glibc), "{}", status());
    run_all(Mode::Native);
}

/// With `--features inject`, the same scenarios with a delay loop just before every commit: the
/// window between a section's loads and its commit grows from a few to hundreds of cycles, so the
/// cross-CPU operations' mark/fence/verify steps race with sections far more often (a drain without
/// its verify step, or without its fence, loses or duplicates nodes here).
#[cfg(feature = "inject")]
#[test]
fn percpu_native_with_delay_before_commit() {
    if rseq_testkit::skip_unless_native("percpu_native_with_delay_before_commit") {
        return;
    }
    use rseq_dsl::inject::{clear, set_delay, Point};
    set_delay(Point::BeforeCommit, 300);
    run_all(Mode::Native);
    clear();
}

#[test]
fn percpu_fallback_mode() {
    run_child("child_percpu_fallback", &[("RSEQ_DSL_FALLBACK", "1")], None);
}

#[test]
#[ignore = "child process of percpu_fallback_mode"]
fn child_percpu_fallback() {
    assert!(is_child("child_percpu_fallback"));
    run_all(Mode::Fallback);
}

#[test]
fn percpu_self_registration() {
    if rseq_testkit::skip_unless_native("percpu_self_registration") {
        return;
    }
    run_child(
        "child_percpu_self_registered",
        &[("GLIBC_TUNABLES", "glibc.pthread.rseq=0")],
        None,
    );
}

#[test]
#[ignore = "child process of percpu_self_registration"]
fn child_percpu_self_registered() {
    assert!(is_child("child_percpu_self_registered"));
    assert_eq!(status().owner, Some(Owner::Runtime), "{}", status());
    run_all(Mode::Native);
}

#[test]
fn single_thread_semantics() {
    // Pin, so that "this CPU" stays the same between calls.
    let cpus = rseq_testkit::allowed_cpus();
    rseq_testkit::pin_to(&cpus[..1]);
    let cpu = cpus[0];
    let pool = Pool::new();

    let c = Counter::new_in(&pool).unwrap();
    c.sub(3);
    c.add(10);
    assert_eq!(c.sum(), 7);
    assert_eq!(c.per_cpu()[cpu], 7);
    assert_eq!(c.reset(), 7);
    assert_eq!((c.sum(), c.reset()), (0, 0));

    let s: Stack<&str> = Stack::new_in(&pool).unwrap();
    s.push(Node::new("a"));
    s.push(Node::new("b"));
    assert_eq!(s.pop().map(|n| n.into_inner()), Some("b"));
    s.push(Node::new("c"));
    let stolen = s.steal(cpu).unwrap().map(|n| n.into_inner());
    assert_eq!(stolen, Some("c"));
    // The rest of the list moved back onto this CPU's list.
    assert_eq!(s.pop().map(|n| n.into_inner()), Some("a"));
    assert!(s.pop().is_none());
    assert!(matches!(
        s.drain(possible_cpus()),
        Err(RemoteError::NoSuchCpu { .. })
    ));
    drop(s);

    let b: Buffer<u32> = Buffer::with_capacity_in(&pool, 2).unwrap();
    b.push(Box::new(1)).unwrap();
    b.push(Box::new(2)).unwrap();
    assert_eq!(b.push(Box::new(3)).map_err(|x| *x), Err(3), "full");
    assert_eq!(b.lens()[cpu], 2);
    assert_eq!(b.pop().map(|x| *x), Some(2));
    assert_eq!(
        b.drain(cpu)
            .unwrap()
            .into_iter()
            .map(|x| *x)
            .collect::<Vec<_>>(),
        [1]
    );
    assert!(b.pop().is_none());
    b.push(Box::new(4)).unwrap(); // freed by Drop

    // Odd sizes take the generic (length loop) path; 8/16/32/64 the unrolled one.
    let odd: ItemBuffer<[u8; 3], 4> = ItemBuffer::new_in(&pool).unwrap();
    for k in 0..4u8 {
        odd.push([k, k + 1, k + 2]).unwrap();
    }
    assert_eq!(odd.push([9; 3]), Err([9; 3]));
    assert_eq!(odd.pop(), Some([3, 4, 5]));
    assert_eq!(odd.lens()[cpu], 3);
    assert_eq!(odd.into_items(), [[0, 1, 2], [1, 2, 3], [2, 3, 4]]);
    let wide: ItemBuffer<[u64; 8], 2> = ItemBuffer::new_in(&pool).unwrap();
    wide.push([7; 8]).unwrap();
    assert_eq!(wide.pop(), Some([7; 8]));
    assert_eq!(wide.pop(), None);
    let word: ItemBuffer<u64, 2> = ItemBuffer::new_in(&pool).unwrap();
    word.push(u64::MAX).unwrap();
    assert_eq!(word.drain(cpu).unwrap(), [u64::MAX]);

    let l: SpinLock<u32> = SpinLock::new_in(&pool, |i| i as u32).unwrap();
    {
        let g = l.lock();
        assert_eq!((g.cpu(), *g), (cpu, cpu as u32));
        assert!(l.is_locked(cpu));
        assert!(l.try_lock().is_none(), "this CPU's lock is held");
    }
    assert!(!l.is_locked(cpu));

    // A pool that runs out says so; freed space is reused.
    let small = Pool::new();
    let mut held = Vec::new();
    while let Some(b) = Buffer::<u8>::with_capacity_in(&small, 100) {
        held.push(b);
    }
    assert!(!held.is_empty());
    held.pop();
    assert!(Buffer::<u8>::with_capacity_in(&small, 100).is_some());
    rseq_testkit::pin_to(&cpus);
}

/// The comparison program runs (quick mode, a debug build: a few seconds) and writes its table and
/// plot. Timings are never asserted.
#[test]
fn compare_program_smoke() {
    let dir = std::env::temp_dir().join(format!("rseq-compare-smoke-{}", std::process::id()));
    let mut cfg = compare::Config::quick(dir.to_str().unwrap());
    // The fallback section's child: this test binary, running `compare_fallback_child`.
    cfg.fallback_child = Some(
        [
            "compare_fallback_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ]
        .map(String::from)
        .to_vec(),
    );
    let md = compare::run(&cfg);
    let mut needles = vec![
        "fallback percpu::Counter::add",
        "fallback percpu::SpinLock",
        "per-CPU lock xadd (sched_getcpu), 8 thread(s)",
        "ItemBuffer",
        "Targets",
    ];
    // A process in fallback mode measures the fallback section alone (in-process).
    if status().mode == Mode::Native {
        needles.extend(["rseq percpu::Counter::add", "Treiber", "ArrayQueue"]);
    }
    for needle in needles {
        assert!(md.contains(needle), "no `{needle}` in the table:\n{md}");
    }
    // The child measured the fallback rows (a failed child leaves the section without rows).
    let row = md
        .lines()
        .find(|l| l.starts_with("| **fallback percpu::Counter::add** |"))
        .unwrap_or_else(|| panic!("no fallback row (the child failed?):\n{md}"));
    assert!(!row.contains("NaN"), "{row}");
    let svg = std::fs::read_to_string(dir.join("compare.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("polyline"));
    parse_svg(&svg, "the smoke run's compare.svg");
    std::fs::remove_dir_all(dir).unwrap();
}

/// The fallback section's child of `compare_program_smoke` (started with `RSEQ_DSL_FALLBACK=1`).
#[test]
#[ignore = "run by compare_program_smoke in a child process"]
fn compare_fallback_child() {
    compare::fallback_child();
}

/// Parses `svg` as XML (what browsers and `rsvg-convert` require) and checks it is a plot.
fn parse_svg(svg: &str, what: &str) {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{what} is not XML: {e}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg", "{what}");
    assert!(
        root.descendants().any(|n| n.has_tag_name("polyline")),
        "{what}: no lines"
    );
}

/// The plot escapes what names contain (`shared Mutex<u64>` made the committed plot invalid XML),
/// and the committed plot parses.
#[test]
fn benchmark_plot_is_valid_xml() {
    use compare::report::{svg, Panel, Series};
    let panels = [Panel {
        group: "a <group> & \"more\"".into(),
        series: vec![Series {
            name: "shared Mutex<u64> & 'friends'".into(),
            rseq: false,
            cells: vec![1.0, 2.0, f64::NAN, 8.0],
        }],
    }];
    let text = svg(&panels, &[1, 2, 4, 8], "machine <x> & y");
    parse_svg(&text, "a plot of awkward names");
    assert!(text.contains("shared Mutex&lt;u64&gt; &amp; &apos;friends&apos;"));
    // Embedded at compile time: the test binary also runs where the repository is not (VMs).
    parse_svg(
        include_str!("../docs/benchmarks/compare.svg"),
        "docs/benchmarks/compare.svg",
    );
    let csv = include_str!("../docs/benchmarks/compare.csv");
    let panels = compare::report::panels_from_csv(csv, &[1, 2, 4, 8]).unwrap();
    assert!(panels.iter().all(|p| !p.series.is_empty()));
}

#[test]
fn shared_pool_keeps_allocating() {
    // More than one chunk's worth through `new()`: the shared pool is replaced when full.
    let bufs: Vec<Buffer<u8>> = (0..8).map(|_| Buffer::with_capacity(1000)).collect();
    let sets: BTreeSet<usize> = bufs.iter().map(|b| b.capacity()).collect();
    assert_eq!(sets.into_iter().collect::<Vec<_>>(), [1000]);
}
