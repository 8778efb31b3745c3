//! Every variant of every operation in one process, one run, for 1, 2, 4 and 8 threads: prints a
//! Markdown table of ns/op with ratios against the baselines, checks the speed targets (the counter
//! against a plain increment and per-CPU `lock xadd`, ns/op limits for the stack, the buffer and
//! 16-byte items, the spinlock and the loop forms against `Counter::add` and the bare sequences),
//! and writes `compare.md`, `compare.svg` (ns/op vs threads) and `compare.csv` (the raw cells) to
//! the output directory.
//!
//! The last section, fallback mode, measures the structures as they run without rseq beside the
//! per-CPU `lock xadd` baseline (target: within 1.2x of it at 1 and at 8 threads). The mode
//! is decided once per process, so the benchmark re-executes itself (`current_exe()
//! --fallback-child`) with `RSEQ_DSL_FALLBACK=1`; the child measures that group, baseline included,
//! and prints its cells on stdout, which the parent reads into the same tables, targets, CSV and
//! plot. A process started in fallback mode measures only that section, in-process.
//!
//! `cargo bench --bench compare [-- --ms 300 --reps 3 --out DIR --quick --only A|B --no-fallback]`;
//! the plot alone from a committed run: `cargo bench --bench compare -- --replot docs/benchmarks`.
//!
//! ns/op is the CPU time the benchmark threads consumed (the sum of their
//! `CLOCK_THREAD_CPUTIME_ID`) divided by the operations they completed: the cost of an operation,
//! including with more threads than CPUs what preemption costs it (aborts and restarts, cache
//! refills, spinning on a preempted lock holder), but not time spent descheduled or asleep, so
//! other load on the machine distorts it far less than wall time would. Each cell is the median of
//! `--reps` runs of `--ms` milliseconds, the repetitions interleaved (every cell of a group once,
//! then again). For stacks and buffers one op is a push or a pop (each
//! thread pushes the item it holds, then pops one); for the spinlock, lock + increment + unlock.

#[path = "common/mod.rs"]
mod common;
#[path = "report/mod.rs"]
pub mod report;

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use common::{dsl_counter_add, plain_add, tls_add, CounterWord, Padded, Treiber, XaddSlots};
use crossbeam_queue::{ArrayQueue, SegQueue};
use rseq_dsl::percpu::{Buffer, Counter, ItemBuffer, Node, SpinLock, Stack};
use rseq_dsl::PerCpu;

const THREADS: [usize; 4] = [1, 2, 4, 8];
/// Operations between two checks of the stop flag.
const BATCH: u64 = 512;

/// How long to measure and where to write.
#[derive(Debug, Clone)]
pub struct Config {
    /// Milliseconds per measurement.
    pub ms: u64,
    /// Measurements per cell (the median is reported).
    pub reps: usize,
    /// Output directory for `compare.md` and `compare.svg`.
    pub out: String,
    /// `--only A|B`: run just the variants whose name contains one of the `|`-separated parts,
    /// print their cells, write nothing (for exploring one change).
    pub only: Option<String>,
    /// How to run the fallback section: the arguments that make `current_exe()` run
    /// [`fallback_child`] (it is started with `RSEQ_DSL_FALLBACK=1`, the mode being decided once per
    /// process); `None` skips the section. In a process already in fallback mode the section runs
    /// in-process instead.
    pub fallback_child: Option<Vec<String>>,
}

impl Config {
    /// The CI smoke configuration: 5 ms, one repetition.
    pub fn quick(out: &str) -> Config {
        Config {
            ms: 5,
            reps: 1,
            out: out.into(),
            only: None,
            fallback_child: None,
        }
    }
}

fn config() -> Config {
    let mut cfg = Config {
        ms: 300,
        reps: 3,
        out: "target/bench-compare".into(),
        only: None,
        fallback_child: Some(vec![FALLBACK_CHILD_ARG.into()]),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().unwrap_or_else(|| usage(a));
        match a.as_str() {
            "--ms" => cfg.ms = val().parse().unwrap_or_else(|_| usage(a)),
            "--reps" => cfg.reps = val().parse::<usize>().unwrap_or_else(|_| usage(a)).max(1),
            "--out" => cfg.out = val(),
            "--only" => cfg.only = Some(val()),
            "--quick" => {
                cfg.ms = 20;
                cfg.reps = 1;
            }
            "--no-fallback" => cfg.fallback_child = None,
            "--bench" => {} // passed by `cargo bench`
            _ => usage(a),
        }
    }
    cfg
}

fn usage(bad: &str) -> ! {
    eprintln!("unexpected argument `{bad}`; usage: [--ms N] [--reps N] [--out DIR] [--quick] [--only A|B] [--no-fallback]");
    std::process::exit(2)
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to write; the clock id is a constant the kernel supports.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Runs `op(thread_state)` on `threads` threads for `ms`; returns ns/op (see the file docs).
/// `setup(thread)` builds each thread's state before the clock starts; `op` returns how many
/// operations it did.
fn measure<S>(
    threads: usize,
    ms: u64,
    setup: impl Fn(usize) -> S + Sync,
    op: impl Fn(&mut S) -> u64 + Sync,
) -> f64 {
    let stop = AtomicBool::new(false);
    let total = AtomicU64::new(0);
    let cpu_ns = AtomicU64::new(0);
    let ready = Barrier::new(threads + 1);
    let start = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (stop, total, cpu_ns, ready, start, setup, op) =
                (&stop, &total, &cpu_ns, &ready, &start, &setup, &op);
            s.spawn(move || {
                let mut state = setup(t);
                ready.wait();
                start.wait();
                let c0 = thread_cpu_ns();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..BATCH {
                        n += op(&mut state);
                    }
                }
                cpu_ns.fetch_add(thread_cpu_ns() - c0, Ordering::Relaxed);
                total.fetch_add(n, Ordering::Relaxed);
                drop(state);
            });
        }
        ready.wait();
        start.wait();
        std::thread::sleep(Duration::from_millis(ms));
        stop.store(true, Ordering::Relaxed);
    });
    cpu_ns.load(Ordering::Relaxed) as f64 / total.load(Ordering::Relaxed).max(1) as f64
}

// The variants measured both natively and in the fallback section (`fallback_group`).

fn counter_add_ns(t: usize, ms: u64) -> f64 {
    let c = Counter::new();
    measure(
        t,
        ms,
        |_| (),
        |()| {
            c.add(1);
            1
        },
    )
}

fn fetch_add_ns(t: usize, ms: u64) -> f64 {
    let c = Padded(AtomicU64::new(0));
    measure(
        t,
        ms,
        |_| (),
        |()| {
            c.0.fetch_add(1, Ordering::Relaxed);
            1
        },
    )
}

fn xadd_sched_getcpu_ns(t: usize, ms: u64) -> f64 {
    let c = XaddSlots::new();
    measure(
        t,
        ms,
        |_| (),
        |()| {
            c.add_sched_getcpu(1);
            1
        },
    )
}

fn spinlock_ns(t: usize, ms: u64) -> f64 {
    let l = SpinLock::new(|_| 0u64);
    measure(
        t,
        ms,
        |_| (),
        |()| {
            *l.lock() += 1;
            1
        },
    )
}

fn stack_ns(t: usize, ms: u64) -> f64 {
    let s: Stack<u64> = Stack::new();
    measure(
        t,
        ms,
        |_| Some(Node::new(1)),
        |held| {
            if let Some(n) = held.take() {
                s.push(n);
            }
            *held = s.pop();
            2
        },
    )
}

fn buffer_ns(t: usize, ms: u64) -> f64 {
    let b: Buffer<u64> = Buffer::with_capacity(64);
    measure(
        t,
        ms,
        |_| Some(Box::new(1)),
        |held| {
            if let Some(n) = held.take() {
                if let Err(n) = b.push(n) {
                    *held = Some(n);
                    return 1;
                }
            }
            *held = b.pop();
            2
        },
    )
}

fn item_buffer_ns(t: usize, ms: u64) -> f64 {
    let b: ItemBuffer<[u8; 16], 64> = ItemBuffer::new();
    measure(
        t,
        ms,
        |_| [7u8; 16],
        |it| {
            if b.push(black_box(*it)).is_ok() {
                if let Some(x) = b.pop() {
                    *it = x;
                }
            }
            2
        },
    )
}

/// The first three fields of `/proc/loadavg`, to record how busy the machine was.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".into(),
        |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A benchmarked variant: its name, whether it is an rseq variant, and `run(threads, ms) -> ns/op`.
struct Variant {
    name: &'static str,
    rseq: bool,
    run: Box<dyn Fn(usize, u64) -> f64>,
}

fn variant(name: &'static str, rseq: bool, run: impl Fn(usize, u64) -> f64 + 'static) -> Variant {
    Variant {
        name,
        rseq,
        run: Box::new(run),
    }
}

struct Group {
    title: &'static str,
    /// Names of the variants the ratio columns divide by.
    baselines: &'static [&'static str],
    variants: Vec<Variant>,
}

fn counter_group() -> Group {
    Group {
        title: "counter increment",
        baselines: &[
            "plain non-atomic increment",
            "per-CPU lock xadd, sched_getcpu()",
        ],
        variants: vec![
            variant("rseq percpu::Counter::add", true, counter_add_ns),
            variant(
                "rseq percpu::Counter, LocalCounter in a loop",
                true,
                |t, ms| {
                    let c = Counter::new();
                    measure(
                        t,
                        ms,
                        |_| (),
                        |()| {
                            // The thread token and the counter's parameters are looked up once per
                            // BATCH increments (`Counter::local`), not per increment.
                            rseq_dsl::this_thread(|th| {
                                let local = c.local(th);
                                for _ in 0..BATCH {
                                    local.add(1);
                                }
                            })
                            .expect("the benchmark thread can run sequences");
                            BATCH
                        },
                    )
                },
            ),
            variant("rseq DSL sequence on PerCpu<u64>", true, |t, ms| {
                let c = PerCpu::<CounterWord>::new(0);
                measure(
                    t,
                    ms,
                    |_| (),
                    |()| {
                        dsl_counter_add(&c, 1);
                        1
                    },
                )
            }),
            variant(
                "rseq DSL sequence, PerCpu owned by the thread",
                true,
                |t, ms| {
                    measure(
                        t,
                        ms,
                        |_| PerCpu::<CounterWord>::new(0),
                        |c| {
                            dsl_counter_add(c, 1);
                            1
                        },
                    )
                },
            ),
            variant("hand-written asm, DSL's instructions", false, |t, ms| {
                let c = PerCpu::<CounterWord>::new(0);
                measure(
                    t,
                    ms,
                    |_| (),
                    |()| {
                        common::hand::counter_add_dsl_layout(&c, 1);
                        1
                    },
                )
            }),
            variant("hand-written asm, stride as a shift", false, |t, ms| {
                let c = PerCpu::<CounterWord>::new(0);
                measure(
                    t,
                    ms,
                    |_| (),
                    |()| {
                        common::hand::counter_add_shift_stride(&c, 1);
                        1
                    },
                )
            }),
            variant("hand-written asm, librseq's layout", false, |t, ms| {
                let c = PerCpu::<CounterWord>::new(0);
                measure(
                    t,
                    ms,
                    |_| (),
                    |()| {
                        common::hand::counter_add_librseq_layout(&c, 1);
                        1
                    },
                )
            }),
            variant("shared AtomicU64::fetch_add", false, fetch_add_ns),
            variant(
                "per-CPU lock xadd, sched_getcpu()",
                false,
                xadd_sched_getcpu_ns,
            ),
            variant("per-CPU lock xadd, rseq cpu_id", false, |t, ms| {
                let c = XaddSlots::new();
                measure(
                    t,
                    ms,
                    |_| (),
                    |()| {
                        c.add_rseq_cpu_id(1);
                        1
                    },
                )
            }),
            variant("shared Mutex<u64>", false, |t, ms| {
                let c = Mutex::new(0u64);
                measure(
                    t,
                    ms,
                    |_| (),
                    |()| {
                        *c.lock().unwrap() += 1;
                        1
                    },
                )
            }),
            variant("thread-local Cell", false, |t, ms| {
                measure(
                    t,
                    ms,
                    |_| (),
                    |()| {
                        tls_add(1);
                        1
                    },
                )
            }),
            variant("plain non-atomic increment", false, |t, ms| {
                measure(
                    t,
                    ms,
                    |_| Box::new(Padded(0u64)),
                    |s| {
                        plain_add(s, 1);
                        1
                    },
                )
            }),
            variant("plain increment, address recomputed", false, |t, ms| {
                measure(
                    t,
                    ms,
                    |_| (0..2).map(|_| Padded(0u64)).collect::<Vec<_>>(),
                    |s| {
                        common::plain_add_indexed(s, 1);
                        1
                    },
                )
            }),
        ],
    }
}

fn lock_group() -> Group {
    Group {
        title: "lock + increment + unlock",
        baselines: &["shared Mutex<u64>"],
        variants: vec![
            variant("rseq percpu::SpinLock", true, spinlock_ns),
            variant(
                "rseq percpu::SpinLock, LocalSpinLock in a loop",
                true,
                |t, ms| {
                    let l = SpinLock::new(|_| 0u64);
                    measure(
                        t,
                        ms,
                        |_| (),
                        |()| {
                            // The token and the lock's parameters are looked up once per BATCH.
                            rseq_dsl::this_thread(|th| {
                                let local = l.local(th);
                                for _ in 0..BATCH {
                                    *local.lock() += 1;
                                }
                            })
                            .expect("the benchmark thread can run sequences");
                            BATCH
                        },
                    )
                },
            ),
            variant("shared Mutex<u64>", false, |t, ms| {
                let c = Mutex::new(0u64);
                measure(
                    t,
                    ms,
                    |_| (),
                    |()| {
                        *c.lock().unwrap() += 1;
                        1
                    },
                )
            }),
        ],
    }
}

/// Each thread holds one item: it pushes it, then pops one (maybe another thread's); a pop that
/// finds nothing (the thread moved to a CPU whose list is empty) leaves it empty-handed until a
/// later pop succeeds. Both calls count as operations.
const RESERVE: usize = 1;

fn stack_group() -> Group {
    Group {
        title: "stack / buffer push + pop (per op)",
        baselines: &["Mutex<Vec>", "Treiber stack (tagged CAS)"],
        variants: vec![
            variant("rseq percpu::Stack (intrusive list)", true, stack_ns),
            variant("rseq percpu::Stack, LocalStack in a loop", true, |t, ms| {
                let s: Stack<u64> = Stack::new();
                measure(
                    t,
                    ms,
                    |_| Some(Node::new(1)),
                    |held| {
                        // The token and the stack's parameters are looked up once per BATCH
                        // push + pop pairs.
                        rseq_dsl::this_thread(|th| {
                            let local = s.local(th);
                            for _ in 0..BATCH {
                                if let Some(n) = held.take() {
                                    local.push(n);
                                }
                                *held = local.pop();
                            }
                        })
                        .expect("the benchmark thread can run sequences");
                        2 * BATCH
                    },
                )
            }),
            variant("rseq percpu::Buffer (array)", true, buffer_ns),
            variant(
                "rseq percpu::Buffer, LocalBuffer in a loop",
                true,
                |t, ms| {
                    let b: Buffer<u64> = Buffer::with_capacity(64);
                    measure(
                        t,
                        ms,
                        |_| Some(Box::new(1)),
                        |held| {
                            let mut ops = 0;
                            rseq_dsl::this_thread(|th| {
                                let local = b.local(th);
                                for _ in 0..BATCH {
                                    if let Some(n) = held.take() {
                                        if let Err(n) = local.push(n) {
                                            *held = Some(n);
                                            ops += 1;
                                            continue;
                                        }
                                    }
                                    *held = local.pop();
                                    ops += 2;
                                }
                            })
                            .expect("the benchmark thread can run sequences");
                            ops
                        },
                    )
                },
            ),
            variant(
                "bare DSL stack on PerCpu (no pool, no drain)",
                false,
                |t, ms| {
                    let heads = PerCpu::<usize>::new(0);
                    measure(
                        t,
                        ms,
                        |_| Some(Box::into_raw(Box::new([0usize; 2])).cast::<u8>() as usize),
                        |held| {
                            // SAFETY: nodes are leaked 16-byte boxes (link at offset 0), each on at most
                            // one list or held by one thread; they are never freed.
                            unsafe {
                                if let Some(n) = held.take() {
                                    common::bare_push(&heads, n as *mut u8);
                                }
                                let top = common::bare_pop(&heads);
                                *held = (top != 0).then_some(top);
                            }
                            2
                        },
                    )
                },
            ),
            variant(
                "bare DSL buffer on PerCpu (no pool, no drain)",
                false,
                |t, ms| {
                    let bufs = PerCpu::<common::BareBuf>::new([0; 65]);
                    measure(
                        t,
                        ms,
                        |th| Some(th + 1),
                        |held| {
                            // SAFETY: the sequences only touch their own CPU's 520-byte slot,
                            // within its bounds (the top is checked against 512 before use).
                            unsafe {
                                if let Some(n) = held.take() {
                                    if !common::bare_buf_push(&bufs, n) {
                                        *held = Some(n);
                                        return 1;
                                    }
                                }
                                let top = common::bare_buf_pop(&bufs);
                                *held = (top != 0).then_some(top);
                            }
                            2
                        },
                    )
                },
            ),
            variant("Mutex<Vec>", false, |t, ms| {
                let v: Mutex<Vec<Box<u64>>> = Mutex::new(Vec::with_capacity(64));
                measure(
                    t,
                    ms,
                    |_| Some(Box::new(1)),
                    |held| {
                        if let Some(n) = held.take() {
                            v.lock().unwrap().push(n);
                        }
                        *held = v.lock().unwrap().pop();
                        2
                    },
                )
            }),
            variant("Treiber stack (tagged CAS)", false, |t, ms| {
                let s = Treiber::new(t * RESERVE);
                measure(
                    t,
                    ms,
                    |th| Some(th as u32),
                    |held| {
                        if let Some(n) = held.take() {
                            s.push(n);
                        }
                        *held = s.pop();
                        2
                    },
                )
            }),
            variant("crossbeam ArrayQueue", false, |t, ms| {
                let q: ArrayQueue<Box<u64>> = ArrayQueue::new(t * RESERVE);
                measure(
                    t,
                    ms,
                    |_| Some(Box::new(1)),
                    |held| {
                        if let Some(n) = held.take() {
                            if let Err(n) = q.push(n) {
                                *held = Some(n);
                                return 1;
                            }
                        }
                        *held = q.pop();
                        2
                    },
                )
            }),
            variant("crossbeam SegQueue", false, |t, ms| {
                let q: SegQueue<Box<u64>> = SegQueue::new();
                measure(
                    t,
                    ms,
                    |_| Some(Box::new(1)),
                    |held| {
                        if let Some(n) = held.take() {
                            q.push(n);
                        }
                        *held = q.pop();
                        2
                    },
                )
            }),
        ],
    }
}

fn items_group() -> Group {
    Group {
        title: "16-byte item copy-in + copy-out (per op)",
        baselines: &["Mutex<VecDeque<[u8; 16]>>"],
        variants: vec![
            variant(
                "rseq percpu::ItemBuffer<[u8; 16], 64>",
                true,
                item_buffer_ns,
            ),
            variant(
                "rseq percpu::ItemBuffer, LocalItemBuffer in a loop",
                true,
                |t, ms| {
                    let b: ItemBuffer<[u8; 16], 64> = ItemBuffer::new();
                    measure(
                        t,
                        ms,
                        |_| [7u8; 16],
                        |it| {
                            rseq_dsl::this_thread(|th| {
                                let local = b.local(th);
                                for _ in 0..BATCH {
                                    if local.push(black_box(*it)).is_ok() {
                                        if let Some(x) = local.pop() {
                                            *it = x;
                                        }
                                    }
                                }
                            })
                            .expect("the benchmark thread can run sequences");
                            2 * BATCH
                        },
                    )
                },
            ),
            variant("Mutex<VecDeque<[u8; 16]>>", false, |t, ms| {
                let q: Mutex<VecDeque<[u8; 16]>> = Mutex::new(VecDeque::with_capacity(64));
                measure(
                    t,
                    ms,
                    |_| [7u8; 16],
                    |it| {
                        q.lock().unwrap().push_back(black_box(*it));
                        if let Some(x) = q.lock().unwrap().pop_back() {
                            *it = x;
                        }
                        2
                    },
                )
            }),
            variant("crossbeam ArrayQueue<[u8; 16]>", false, |t, ms| {
                let q: ArrayQueue<[u8; 16]> = ArrayQueue::new(64);
                measure(
                    t,
                    ms,
                    |_| [7u8; 16],
                    |it| {
                        if q.push(black_box(*it)).is_ok() {
                            if let Some(x) = q.pop() {
                                *it = x;
                            }
                        }
                        2
                    },
                )
            }),
        ],
    }
}

/// The fallback section's group (also the CSV's and the plot's group name: no comma).
const FALLBACK_GROUP: &str = "fallback mode (RSEQ_DSL_FALLBACK=1 child process; per op)";
/// The argument that makes the `compare` binary run [`fallback_child`].
const FALLBACK_CHILD_ARG: &str = "--fallback-child";
/// Environment of the child: `ms reps`, and the `--only` filter.
const CHILD_CFG_ENV: &str = "RSEQ_COMPARE_CHILD";
const CHILD_ONLY_ENV: &str = "RSEQ_COMPARE_CHILD_ONLY";
/// Prefix of the child's result lines on stdout: `name TAB cells...`.
const CELL_LINE: &str = "compare-fallback-cell\t";
/// The fallback rows with a target (1.2x the per-CPU `lock xadd` at 1 and at 8 threads).
const FALLBACK_TARGETS: [&str; 5] = [
    "fallback percpu::Counter::add",
    "fallback percpu::SpinLock (lock + increment + unlock)",
    "fallback percpu::Stack (push or pop)",
    "fallback percpu::Buffer (push or pop)",
    "fallback percpu::ItemBuffer<[u8; 16], 64> (copy in or out)",
];
const FALLBACK_BASELINE: &str = "per-CPU lock xadd, sched_getcpu()";

/// The structures in fallback mode beside the per-CPU `lock xadd` they must stay near, measured in
/// one process (the child's), so that the ratios compare cells of one run.
fn fallback_group() -> Group {
    let [counter, lock, stack, buffer, items] = FALLBACK_TARGETS;
    Group {
        title: FALLBACK_GROUP,
        baselines: &[FALLBACK_BASELINE],
        variants: vec![
            variant(counter, true, counter_add_ns),
            variant(lock, true, spinlock_ns),
            variant(stack, true, stack_ns),
            variant(buffer, true, buffer_ns),
            variant(items, true, item_buffer_ns),
            variant(FALLBACK_BASELINE, false, xadd_sched_getcpu_ns),
            variant("shared AtomicU64::fetch_add", false, fetch_add_ns),
        ],
    }
}

/// The child's side of the fallback section: measures [`fallback_group`] with the parent's
/// settings (from the environment) and prints its cells on stdout. Exits with an error if the
/// process is not in fallback mode.
pub fn fallback_child() {
    let status = rseq_dsl::status();
    if status.mode != rseq_dsl::Mode::Fallback {
        eprintln!(
            "the fallback section's child runs natively ({status}): is RSEQ_DSL_FALLBACK=1 set?"
        );
        std::process::exit(1);
    }
    let var = std::env::var(CHILD_CFG_ENV).unwrap_or_default();
    let mut it = var.split_whitespace().map(|v| v.parse::<u64>().ok());
    let (Some(Some(ms)), Some(Some(reps))) = (it.next(), it.next()) else {
        eprintln!("{CHILD_CFG_ENV} must be `ms reps`, not `{var}`");
        std::process::exit(2)
    };
    let cfg = Config {
        ms,
        reps: usize::try_from(reps).unwrap_or(1).max(1),
        out: String::new(),
        only: std::env::var(CHILD_ONLY_ENV).ok(),
        fallback_child: None,
    };
    eprintln!("rseq-dsl (fallback section's child): {status}");
    Counter::new().add(1);
    let r = run_group(fallback_group(), &cfg);
    for (name, _, cells) in &r.rows {
        let cells: Vec<String> = cells.iter().map(|c| format!("{c:.4}")).collect();
        println!("{CELL_LINE}{name}\t{}", cells.join("\t"));
    }
}

/// The fallback section's cells: from a child process started with `RSEQ_DSL_FALLBACK=1`, or measured
/// here if this process already runs in fallback mode. `None` when skipped; no rows when the child
/// failed.
fn fallback_results(cfg: &Config) -> Option<Results> {
    if rseq_dsl::status().mode == rseq_dsl::Mode::Fallback {
        return Some(run_group(fallback_group(), cfg));
    }
    let args = cfg.fallback_child.as_ref()?;
    let g = fallback_group();
    // A failed child leaves the section without rows: its targets show as not met.
    let empty = Results {
        group: g.title,
        baselines: g.baselines,
        rows: Vec::new(),
    };
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let mut cmd = std::process::Command::new(exe);
    cmd.args(args)
        .env("RSEQ_DSL_FALLBACK", "1")
        .env(CHILD_CFG_ENV, format!("{} {}", cfg.ms, cfg.reps))
        .env_remove(CHILD_ONLY_ENV)
        .stderr(std::process::Stdio::inherit());
    if let Some(o) = &cfg.only {
        cmd.env(CHILD_ONLY_ENV, o);
    }
    let out = match cmd.output() {
        Ok(out) if out.status.success() => out,
        Ok(out) => {
            eprintln!("the fallback section's child failed: {}", out.status);
            out
        }
        Err(e) => {
            eprintln!("the fallback section's child did not start: {e}");
            return Some(empty);
        }
    };
    let mut rows = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // Anywhere in the line: a test harness may print before it on the same line.
        let Some(rest) = line.find(CELL_LINE).map(|i| &line[i + CELL_LINE.len()..]) else {
            continue;
        };
        let mut f = rest.split('\t');
        let name = f.next().unwrap_or_default();
        let cells: Vec<f64> = f.map(|c| c.parse().unwrap_or(f64::NAN)).collect();
        if let Some(v) = g.variants.iter().find(|v| v.name == name) {
            if cells.len() == THREADS.len() {
                rows.push((v.name, v.rseq, cells));
            }
        }
    }
    Some(Results { rows, ..empty })
}

struct Results {
    group: &'static str,
    baselines: &'static [&'static str],
    rows: Vec<(&'static str, bool, Vec<f64>)>,
}

impl Results {
    fn get(&self, name: &str, threads: usize) -> Option<f64> {
        let k = THREADS.iter().position(|&t| t == threads)?;
        self.rows.iter().find(|r| r.0 == name).map(|r| r.2[k])
    }
}

fn run_group(g: Group, cfg: &Config) -> Results {
    eprintln!("== {}", g.title);
    let only = cfg.only.as_deref();
    let variants: Vec<&Variant> = g
        .variants
        .iter()
        .filter(|v| only.is_none_or(|o| o.split('|').any(|p| v.name.contains(p))))
        .collect();
    // Repetitions are the outer loop: each one measures every variant and thread count once, so
    // that a slow phase of a shared host (they last seconds) spreads over all cells instead of
    // landing on the consecutive repetitions of one cell.
    let mut samples = vec![vec![Vec::with_capacity(cfg.reps); THREADS.len()]; variants.len()];
    for _ in 0..cfg.reps {
        for (v, cells) in variants.iter().zip(&mut samples) {
            for (&t, cell) in THREADS.iter().zip(cells.iter_mut()) {
                cell.push((v.run)(t, cfg.ms));
            }
        }
    }
    let mut rows = Vec::new();
    for (v, cells) in variants.iter().zip(samples) {
        let cells: Vec<f64> = cells.into_iter().map(median).collect();
        eprintln!("   {:<42} {:?}", v.name, cells);
        rows.push((v.name, v.rseq, cells));
    }
    Results {
        group: g.title,
        baselines: g.baselines,
        rows,
    }
}

fn table(r: &Results) -> String {
    let mut s = format!("### {}\n\n| variant |", r.group);
    for t in THREADS {
        write!(s, " {t} thr ns/op |").unwrap();
    }
    for b in r.baselines {
        write!(s, " x {b} (1 thr) |").unwrap();
    }
    s.push_str(" 8 thr / 1 thr |\n|---|");
    for _ in 0..THREADS.len() + r.baselines.len() + 1 {
        s.push_str("---:|");
    }
    s.push('\n');
    for (name, rseq, cells) in &r.rows {
        let bold = if *rseq { "**" } else { "" };
        write!(s, "| {bold}{name}{bold} |").unwrap();
        for c in cells {
            write!(s, " {c:.2} |").unwrap();
        }
        for b in r.baselines {
            let base = r.get(b, 1).unwrap_or(f64::NAN);
            write!(s, " {:.2} |", cells[0] / base).unwrap();
        }
        writeln!(s, " {:.2} |", cells[3] / cells[0]).unwrap();
    }
    s
}

/// The speed targets (see the module docs), from this run's numbers (only the fallback section's
/// when the process runs in fallback mode).
fn targets(all: &[Results]) -> String {
    let (cg, sg, ig) = (
        "counter increment",
        "stack / buffer push + pop (per op)",
        "16-byte item copy-in + copy-out (per op)",
    );
    let native = all.iter().any(|r| r.group == cg);
    let find = |group: &str, name: &str, t: usize| {
        all.iter()
            .find(|r| r.group == group)
            .and_then(|r| r.get(name, t))
            .unwrap_or(f64::NAN)
    };
    let mut s = String::from(
        "### Targets (one thread unless stated)\n\n| target | measured | met |\n|---|---|:-:|\n",
    );
    let mut row = |what: String, measured: String, ok: bool| {
        if !native && !what.starts_with("fallback") {
            return;
        }
        writeln!(
            s,
            "| {what} | {measured} | {} |",
            if ok { "yes" } else { "**no**" }
        )
        .unwrap();
    };
    let ctr = find(cg, "rseq percpu::Counter::add", 1);
    let hand = find(cg, "hand-written asm, librseq's layout", 1);
    row(
        "(reference) counter vs hand-written asm, librseq's layout".into(),
        format!("{ctr:.2} / {hand:.2} = {:.2}x", ctr / hand),
        ctr <= 1.2 * hand,
    );
    let plain = find(cg, "plain non-atomic increment", 1);
    let xadd = find(cg, "per-CPU lock xadd, sched_getcpu()", 1);
    let xadd_rseq = find(cg, "per-CPU lock xadd, rseq cpu_id", 1);
    row(
        "counter <= 3x plain non-atomic increment".into(),
        format!("{ctr:.2} / {plain:.2} = {:.2}x", ctr / plain),
        ctr <= 3.0 * plain,
    );
    let local = find(cg, "rseq percpu::Counter, LocalCounter in a loop", 1);
    row(
        "counter in a loop (LocalCounter) <= 3x plain non-atomic increment".into(),
        format!("{local:.2} / {plain:.2} = {:.2}x", local / plain),
        local <= 3.0 * plain,
    );
    row(
        "counter >= 2x faster than per-CPU lock xadd (sched_getcpu)".into(),
        format!("{xadd:.2} / {ctr:.2} = {:.2}x", xadd / ctr),
        xadd >= 2.0 * ctr,
    );
    row(
        "counter >= 2x faster than per-CPU lock xadd (rseq cpu_id)".into(),
        format!("{xadd_rseq:.2} / {ctr:.2} = {:.2}x", xadd_rseq / ctr),
        xadd_rseq >= 2.0 * ctr,
    );
    for (g, name, limit) in [
        (sg, "rseq percpu::Stack (intrusive list)", 2.0),
        (sg, "rseq percpu::Buffer (array)", 2.0),
        (ig, "rseq percpu::ItemBuffer<[u8; 16], 64>", 3.0),
    ] {
        let v = find(g, name, 1);
        row(
            format!("{name} <= {limit} ns/op"),
            format!("{v:.2} ns"),
            v <= limit,
        );
    }
    // The lock at the cost of its section, the loop forms near the bare sequences.
    let lg = "lock + increment + unlock";
    for (what, v, base, limit) in [
        (
            "SpinLock lock + increment + unlock <= 1.3x Counter::add",
            find(lg, "rseq percpu::SpinLock", 1),
            ctr,
            1.3,
        ),
        (
            "LocalSpinLock in a loop <= 1.3x Counter::add",
            find(lg, "rseq percpu::SpinLock, LocalSpinLock in a loop", 1),
            ctr,
            1.3,
        ),
        (
            "LocalItemBuffer in a loop <= 1.3x ItemBuffer push + pop",
            find(ig, "rseq percpu::ItemBuffer, LocalItemBuffer in a loop", 1),
            find(ig, "rseq percpu::ItemBuffer<[u8; 16], 64>", 1),
            1.3,
        ),
        (
            "LocalBuffer in a loop <= 1.3x the bare DSL buffer",
            find(sg, "rseq percpu::Buffer, LocalBuffer in a loop", 1),
            find(sg, "bare DSL buffer on PerCpu (no pool, no drain)", 1),
            1.3,
        ),
        (
            "LocalCounter in a loop <= 1.3x the DSL sequence on a thread-owned PerCpu",
            find(
                "counter increment",
                "rseq percpu::Counter, LocalCounter in a loop",
                1,
            ),
            find(
                "counter increment",
                "rseq DSL sequence, PerCpu owned by the thread",
                1,
            ),
            1.3,
        ),
        (
            "LocalStack in a loop <= 1.3x the bare DSL stack",
            find(sg, "rseq percpu::Stack, LocalStack in a loop", 1),
            find(sg, "bare DSL stack on PerCpu (no pool, no drain)", 1),
            1.3,
        ),
    ] {
        row(
            what.into(),
            format!("{v:.2} / {base:.2} = {:.2}x", v / base),
            v <= limit * base,
        );
    }
    // Fallback mode at least as fast as the naive alternative (per-CPU lock xadd), within one run.
    if all.iter().any(|r| r.group == FALLBACK_GROUP) {
        for name in FALLBACK_TARGETS {
            for t in [1, 8] {
                let (v, base) = (
                    find(FALLBACK_GROUP, name, t),
                    find(FALLBACK_GROUP, FALLBACK_BASELINE, t),
                );
                row(
                    format!("{name} <= 1.2x per-CPU lock xadd (sched_getcpu), {t} thread(s)"),
                    format!("{v:.2} / {base:.2} = {:.2}x", v / base),
                    v <= 1.2 * base,
                );
            }
        }
    }
    for r in all.iter().filter(|r| r.group != FALLBACK_GROUP) {
        for (name, rseq, cells) in &r.rows {
            if *rseq {
                let ratio = cells[3] / cells[0];
                row(
                    format!("{name}: 8 threads <= 1.5x 1 thread"),
                    format!("{:.2} / {:.2} = {ratio:.2}x", cells[3], cells[0]),
                    ratio <= 1.5,
                );
            }
        }
    }
    s
}

/// The plot's panels from this run's results.
fn panels(all: &[Results]) -> Vec<report::Panel> {
    all.iter()
        .map(|r| report::Panel {
            group: r.group.into(),
            series: r
                .rows
                .iter()
                .map(|(name, rseq, cells)| report::Series {
                    name: (*name).into(),
                    rseq: *rseq,
                    cells: cells.clone(),
                })
                .collect(),
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--replot") {
        let dir = args.get(i + 1).unwrap_or_else(|| usage("--replot"));
        replot(dir).unwrap_or_else(|e| {
            eprintln!("--replot {dir}: {e}");
            std::process::exit(1)
        });
        return;
    }
    if args.iter().any(|a| a == FALLBACK_CHILD_ARG) {
        fallback_child();
        return;
    }
    println!("{}", run(&config()));
}

/// `--replot DIR`: rewrites `DIR/compare.svg` from `DIR/compare.csv`, titled with the first line of
/// `DIR/compare.md` (the run's machine and status). Measures nothing.
fn replot(dir: &str) -> Result<(), String> {
    let read =
        |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).map_err(|e| format!("{f}: {e}"));
    let csv = read("compare.csv")?;
    let md = read("compare.md")?;
    let title = md
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("## ")
        .to_string();
    let panels = report::panels_from_csv(&csv, &THREADS)?;
    std::fs::write(
        format!("{dir}/compare.svg"),
        report::svg(&panels, &THREADS, &title),
    )
    .map_err(|e| format!("compare.svg: {e}"))
}

/// Runs every group, writes `compare.md` and `compare.svg` to `cfg.out`, returns the Markdown.
pub fn run(cfg: &Config) -> String {
    let started = Instant::now();
    let status = rseq_dsl::status();
    eprintln!(
        "rseq-dsl: {status}; {} CPUs; {} ms x {} reps per cell",
        cpus(),
        cfg.ms,
        cfg.reps
    );
    let load_before = loadavg();
    // Warm up the runtime (registration, shared pool) outside the measurements.
    Counter::new().add(1);
    let native = status.mode == rseq_dsl::Mode::Native;
    let mut all: Vec<Results> = if native {
        [counter_group(), lock_group(), stack_group(), items_group()]
            .into_iter()
            .map(|g| run_group(g, cfg))
            .collect()
    } else {
        // The hand-written sections need native rseq: in fallback mode only the fallback section.
        Vec::new()
    };
    all.extend(fallback_results(cfg));
    if cfg.only.is_some() {
        return String::from("(--only: the cells are on stderr; nothing written)");
    }
    let mut md = format!(
        "## rseq-dsl comparison ({}; {status}; {} ms x {} reps per cell, median)\n\nns/op = CPU time of the benchmark threads / operations (see `benches/compare.rs`). **Bold**: rseq variants. Load average (1, 5, 15 min) before the run: {load_before}; after: {}.\n\n",
        report::machine(),
        cfg.ms,
        cfg.reps,
        loadavg()
    );
    for r in &all {
        md.push_str(&table(r));
        md.push('\n');
    }
    md.push_str(&targets(&all));
    std::fs::create_dir_all(&cfg.out).expect("create the output directory");
    let mut csv = String::from("group,variant,rseq,threads,ns_per_op\n");
    for r in &all {
        for (name, rseq, cells) in &r.rows {
            for (t, v) in THREADS.iter().zip(cells) {
                writeln!(
                    csv,
                    "{},{},{rseq},{t},{v:.4}",
                    r.group,
                    name.replace(',', ";")
                )
                .unwrap();
            }
        }
    }
    std::fs::write(format!("{}/compare.csv", cfg.out), csv).expect("write compare.csv");
    let md_path = format!("{}/compare.md", cfg.out);
    let svg_path = format!("{}/compare.svg", cfg.out);
    std::fs::write(&md_path, &md).expect("write compare.md");
    let title = format!(
        "rseq-dsl comparison: {}; {status}; {} ms x {} reps per cell, median",
        report::machine(),
        cfg.ms,
        cfg.reps
    );
    std::fs::write(&svg_path, report::svg(&panels(&all), &THREADS, &title))
        .expect("write compare.svg");
    eprintln!(
        "wrote {md_path} and {svg_path} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    md
}
