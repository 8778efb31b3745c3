//! Criterion benchmarks, one thread, per operation of `rseq_dsl::percpu` and the main baselines.
//! `cargo bench --bench ops`. For the multi-threaded comparison see `benches/compare.rs`.

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use common::{dsl_counter_add, plain_add, tls_add, CounterWord, Padded, Treiber, XaddSlots};
use criterion::{criterion_group, criterion_main, Criterion};
use rseq_dsl::percpu::{Buffer, Counter, ItemBuffer, Node, SpinLock, Stack};
use rseq_dsl::PerCpu;

fn counters(c: &mut Criterion) {
    let mut g = c.benchmark_group("counter");
    let ctr = Counter::new();
    g.bench_function("rseq Counter::add", |b| b.iter(|| ctr.add(black_box(1))));
    let per = PerCpu::<CounterWord>::new(0);
    g.bench_function("rseq DSL on PerCpu<u64>", |b| {
        b.iter(|| dsl_counter_add(&per, black_box(1)))
    });
    let shared = Padded(AtomicU64::new(0));
    g.bench_function("shared fetch_add", |b| {
        b.iter(|| shared.0.fetch_add(black_box(1), Ordering::Relaxed))
    });
    let slots = XaddSlots::new();
    g.bench_function("per-CPU lock xadd sched_getcpu", |b| {
        b.iter(|| slots.add_sched_getcpu(black_box(1)))
    });
    g.bench_function("per-CPU lock xadd rseq cpu_id", |b| {
        b.iter(|| slots.add_rseq_cpu_id(black_box(1)))
    });
    g.bench_function("thread-local Cell", |b| b.iter(|| tls_add(black_box(1))));
    let mut plain = Padded(0u64);
    g.bench_function("plain increment", |b| {
        b.iter(|| plain_add(&mut plain, black_box(1)))
    });
    g.finish();
}

fn locks(c: &mut Criterion) {
    let mut g = c.benchmark_group("lock+inc+unlock");
    let l = SpinLock::new(|_| 0u64);
    g.bench_function("rseq SpinLock", |b| b.iter(|| *l.lock() += 1));
    let m = Mutex::new(0u64);
    g.bench_function("Mutex", |b| b.iter(|| *m.lock().unwrap() += 1));
    g.finish();
}

/// Each iteration is one push and one pop (two operations).
fn stacks(c: &mut Criterion) {
    let mut g = c.benchmark_group("push+pop (2 ops)");
    let s: Stack<u64> = Stack::new();
    let mut node = Some(Node::new(1));
    g.bench_function("rseq Stack", |b| {
        b.iter(|| {
            s.push(node.take().unwrap());
            node = Some(s.pop().unwrap_or_else(|| Node::new(1)));
        })
    });
    let buf: Buffer<u64> = Buffer::with_capacity(16);
    let mut item = Some(Box::new(1u64));
    g.bench_function("rseq Buffer", |b| {
        b.iter(|| {
            let i = item.take().unwrap();
            let _ = buf.push(i).map_err(|i| item = Some(i));
            item = item.take().or_else(|| buf.pop()).or(Some(Box::new(1)));
        })
    });
    let items: ItemBuffer<[u8; 16], 64> = ItemBuffer::new();
    g.bench_function("rseq ItemBuffer 16 bytes", |b| {
        b.iter(|| {
            let _ = items.push(black_box([3; 16]));
            black_box(items.pop())
        })
    });
    let t = Treiber::new(1);
    g.bench_function("Treiber", |b| {
        b.iter(|| {
            t.push(0);
            black_box(t.pop())
        })
    });
    let v = Mutex::new(Vec::<Box<u64>>::new());
    let mut item = Some(Box::new(1u64));
    g.bench_function("Mutex<Vec>", |b| {
        b.iter(|| {
            v.lock().unwrap().push(item.take().unwrap());
            item = v.lock().unwrap().pop();
        })
    });
    let q = crossbeam_queue::ArrayQueue::new(16);
    g.bench_function("crossbeam ArrayQueue", |b| {
        b.iter(|| {
            let _ = q.push(black_box(1u64));
            black_box(q.pop())
        })
    });
    g.finish();
}

criterion_group!(benches, counters, locks, stacks);
criterion_main!(benches);
