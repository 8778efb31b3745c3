//! Inputs a Rust user writes that the macro must take as they are: raw identifiers, locals captured
//! by a format string in the tail, sequences in `impl` blocks (also generic ones), sequences generic
//! over the pointee type of their words. Each one runs (natively where rseq is available).

use std::cell::Cell;
use std::mem::offset_of;

use rseq_dsl::{rseq, PerCpu};

rseq! {
    /// A raw identifier as a parameter and as the fn name.
    pub fn r#match(r#type: &PerCpu<u64>, r#in: u64) -> u64 {
        let slot = r#type.current();
        let v = load(slot);
        commit store(slot, v + r#in);
        v + r#in
    }

    /// A local the tail names only inside format strings.
    pub fn describe(c: &PerCpu<u64>, n: u64) -> String {
        let slot = c.current();
        let v = load(slot);
        let w = v + n;
        commit store(slot, w);
        format!("{v} -> {w:>4} ({n:?}) {{v}}")
    }

    /// Generic over the node type: any node whose first word is its `next` pointer.
    ///
    /// # Safety
    /// `node` is valid for writes, not on a list, and begins with a `*mut T` next pointer.
    pub unsafe fn push<T>(heads: &PerCpu<*mut T>, node: *mut T) {
        let head = heads.current();
        let old = load(head);
        store(node, old);
        commit store(head, node);
    }

    /// # Safety
    /// Every node on the lists stays valid while it is there.
    pub unsafe fn pop<T>(heads: &PerCpu<*mut T>) -> Option<*mut T>
    where
        T: Sized,
    {
        let head = heads.current();
        let top = load(head);
        if top == 0 { return None; }
        let next = load::<*mut T>(top);
        commit store(head, next);
        Some(top)
    }
}

#[repr(C)]
struct Small {
    next: *mut Small,
    tag: u8,
}

#[repr(C)]
struct Big {
    next: *mut Big,
    payload: [u64; 5],
}

struct Stats {
    hits: PerCpu<u64>,
}

impl Stats {
    rseq! {
        /// An associated sequence.
        pub fn hit(hits: &PerCpu<u64>, n: u64) -> u64 {
            let slot = hits.current();
            let v = load(slot);
            commit store(slot, v + n);
            v + n
        }
    }

    fn record(&self) -> u64 {
        let first = Self::hit(&self.hits, 1);
        loop {
            match Self::try_hit(&self.hits, 1) {
                Ok(v) => return v.max(first),
                Err(rseq_dsl::Error::Aborted) => {}
                Err(e) => panic!("{e}"),
            }
        }
    }
}

/// A generic impl: the sequence uses the impl's type parameter behind pointers.
struct List<T> {
    heads: PerCpu<*mut T>,
}

impl<T> List<T> {
    rseq! {
        /// # Safety
        /// `node` is valid, not on a list, and begins with its `*mut T` next pointer.
        unsafe fn link(heads: &PerCpu<*mut T>, node: *mut T, next_at: usize) {
            let head = heads.current();
            let old = load(head);
            store(node + next_at, old);
            commit store(head, node);
        }
    }

    fn count(&self, next_at: usize) -> usize {
        let mut n = 0;
        for mut p in self.heads.iter() {
            while !p.is_null() {
                n += 1;
                // SAFETY: every node on the lists is a leaked, live allocation whose word at
                // `next_at` is its next pointer.
                p = unsafe { *p.cast::<u8>().add(next_at).cast::<*mut T>() };
            }
        }
        n
    }
}

thread_local! {
    static EVALS: Cell<u64> = const { Cell::new(0) };
}

fn counted(n: u64) -> u64 {
    EVALS.with(|e| e.set(e.get() + 1));
    n
}

rseq! {
    /// A side-effecting Rust operand: evaluated once per call of the retrying form.
    pub fn add_counted(c: &PerCpu<u64>, n: u64) {
        let slot = c.current();
        let v = load(slot);
        commit store(slot, v + { counted(n) });
    }
}

fn main() {
    let c = PerCpu::<u64>::new(0);
    assert_eq!(r#match(&c, 2), c.iter().sum::<u64>());
    assert_eq!(try_match(&c, 3).unwrap(), c.iter().sum::<u64>());

    let d = PerCpu::<u64>::new(0);
    let s = describe(&d, 5);
    assert!(s.starts_with("0 ->    5 (5) {v}"), "{s}");

    let small = PerCpu::<*mut Small>::new(std::ptr::null_mut());
    let big = PerCpu::<*mut Big>::new(std::ptr::null_mut());
    for i in 0..10u8 {
        let s = Box::into_raw(Box::new(Small { next: std::ptr::null_mut(), tag: i }));
        let b = Box::into_raw(Box::new(Big { next: std::ptr::null_mut(), payload: [u64::from(i); 5] }));
        // SAFETY: fresh nodes, first field is the next pointer.
        unsafe {
            push(&small, s);
            push(&big, b);
        }
    }
    let (mut tags, mut sum, mut popped) = (0u32, 0u64, 0);
    // SAFETY: the nodes were leaked above and are reclaimed here, once each: popped from the
    // current CPU's list, then (single-threaded) walked off every list.
    unsafe {
        while let Some(p) = pop(&small) {
            tags += u32::from((*p).tag);
            drop(Box::from_raw(p));
            popped += 1;
        }
        for mut p in small.iter() {
            while !p.is_null() {
                let next = (*p).next;
                tags += u32::from((*p).tag);
                drop(Box::from_raw(p));
                p = next;
            }
        }
        for mut p in big.iter() {
            while !p.is_null() {
                let next = (*p).next;
                sum += (*p).payload[4];
                drop(Box::from_raw(p));
                p = next;
            }
        }
    }
    assert!(popped <= 10);
    assert_eq!(tags, 45);
    assert_eq!(sum, 45);

    let stats = Stats { hits: PerCpu::new(0) };
    let v = stats.record();
    assert!(v >= 1 && stats.hits.iter().sum::<u64>() == 2);

    let list = List::<Small> { heads: PerCpu::new(std::ptr::null_mut()) };
    for i in 0..4 {
        let s = Box::into_raw(Box::new(Small { next: std::ptr::null_mut(), tag: i }));
        // SAFETY: a fresh node; its next pointer is at `offset_of!(Small, next)`.
        unsafe { List::<Small>::link(&list.heads, s, offset_of!(Small, next)) };
    }
    assert_eq!(list.count(offset_of!(Small, next)), 4);

    let e = PerCpu::<u64>::new(0);
    for _ in 0..1000 {
        add_counted(&e, 1);
    }
    assert_eq!(e.iter().sum::<u64>(), 1000);
    assert_eq!(EVALS.with(Cell::get), 1000);
}
