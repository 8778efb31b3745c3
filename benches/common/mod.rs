//! Baselines shared by `benches/ops.rs` and `benches/compare.rs`.
#![allow(dead_code)]

use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use rseq_dsl::{rseq, PerCpu};

/// The counters' word: `u64`, or the machine word where registers hold 32 bits (the DSL refuses
/// 64-bit words on arm).
#[cfg(target_pointer_width = "64")]
pub type CounterWord = u64;
/// See the 64-bit definition.
#[cfg(not(target_pointer_width = "64"))]
pub type CounterWord = usize;

#[cfg(target_pointer_width = "64")]
rseq! {
    /// The plain DSL counter on a dedicated `PerCpu<u64>` (a safe sequence, no pool offset).
    #[inline]
    pub fn dsl_counter_add(counters: &PerCpu<u64>, n: u64) {
        let slot = counters.current();
        let v = load(slot);
        commit store(slot, v + n);
    }
}

#[cfg(not(target_pointer_width = "64"))]
rseq! {
    /// The plain DSL counter on a dedicated `PerCpu<usize>` (32-bit targets).
    #[inline]
    pub fn dsl_counter_add(counters: &PerCpu<usize>, n: usize) {
        let slot = counters.current();
        let v = load(slot);
        commit store(slot, v + n);
    }
}

rseq! {

    /// The examples' stack push on a dedicated `PerCpu` of heads: no pool offset and no drain mark
    /// test (isolates what `percpu::Stack`'s pool allocation and cross-CPU support cost).
    ///
    /// # Safety
    /// `node` valid for writes (its link at offset 0) and on no list.
    #[inline]
    pub unsafe fn bare_push(heads: &PerCpu<usize>, node: *mut u8) {
        let head = heads.current();
        let old = load(head);
        store::<usize>(node, old);
        commit store_release(head, node as usize);
    }

    /// The matching pop; 0 when empty.
    ///
    /// # Safety
    /// Nodes on the lists stay valid while linked.
    #[inline]
    pub unsafe fn bare_pop(heads: &PerCpu<usize>) -> usize {
        let head = heads.current();
        let top = load(head);
        if top == 0 { return 0; }
        let next = load::<usize>(top as *mut u8);
        commit store(head, next);
        top
    }
}

/// Slots of the bare DSL buffer, in 8-byte steps on every target: step 0 holds the top (bytes used
/// above it), steps 1..=64 the items (a `usize` at the start of each step).
pub type BareBuf = [u64; 65];

rseq! {
    /// An array buffer's push on a dedicated `PerCpu` of buffers: the same section as
    /// `percpu::Buffer`'s (top, bound, item store, release commit) without the pool view, the drain
    /// mark or the returned status decode of the structure.
    ///
    /// # Safety
    /// None beyond the sequence's own checks; `unsafe` because typed loads and stores are.
    #[inline]
    pub unsafe fn bare_buf_push(bufs: &PerCpu<BareBuf>, item: usize) -> bool {
        let b = bufs.current();
        let t = load::<usize>(b);
        if t >= 512 { return false; }
        store::<usize>(b + t + 8, item);
        commit store_release::<usize>(b, t + 8);
        true
    }

    /// The matching pop; 0 when empty.
    ///
    /// # Safety
    /// As for `bare_buf_push`.
    #[inline]
    pub unsafe fn bare_buf_pop(bufs: &PerCpu<BareBuf>) -> usize {
        let b = bufs.current();
        let t = load::<usize>(b);
        if t == 0 { return 0; }
        let item = load::<usize>(b + t);
        commit store::<usize>(b, t - 8);
        item
    }
}

/// Plain non-atomic increment through an address recomputed at every call from an opaque index
/// (as a per-CPU slot's is): the same instructions as [`plain_add`] plus an address computation the
/// CPU cannot see through, which defeats memory renaming of the load after the previous store.
#[inline]
pub fn plain_add_indexed(slots: &mut [Padded<u64>], n: u64) {
    let i = black_box(0usize);
    let p = &raw mut slots[i].0;
    // SAFETY: `p` is a valid, exclusively borrowed u64.
    unsafe { p.write_volatile(p.read_volatile() + n) };
}

/// A 128-byte aligned value (no false sharing between neighbours).
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Padded<T>(pub T);

/// Per-CPU atomic slots for the `lock xadd` baselines.
#[derive(Debug)]
pub struct XaddSlots(pub Box<[Padded<AtomicU64>]>);

impl XaddSlots {
    pub fn new() -> Self {
        XaddSlots(
            (0..rseq_dsl::possible_cpus())
                .map(|_| Padded(AtomicU64::new(0)))
                .collect(),
        )
    }

    /// `lock xadd` on the slot of `sched_getcpu()`.
    #[inline]
    pub fn add_sched_getcpu(&self, n: u64) {
        // SAFETY: no preconditions.
        let cpu = unsafe { libc::sched_getcpu() } as usize;
        self.0[cpu % self.0.len()].0.fetch_add(n, Ordering::Relaxed);
    }

    /// `lock xadd` on the slot of the rseq area's `cpu_id` (no critical section).
    #[inline]
    pub fn add_rseq_cpu_id(&self, n: u64) {
        let cpu = rseq_dsl::cpu_id().unwrap_or(0);
        self.0[cpu % self.0.len()].0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn sum(&self) -> u64 {
        self.0.iter().map(|s| s.0.load(Ordering::Relaxed)).sum()
    }
}

thread_local! {
    pub static TLS_COUNTER: Cell<u64> = const { Cell::new(0) };
}

/// Thread-local `Cell` counter (a lower bound); `black_box` keeps one load and one store per call
/// (otherwise the compiler sums a whole loop in a register).
#[inline]
pub fn tls_add(n: u64) {
    TLS_COUNTER.with(|c| c.set(black_box(c.get()) + n));
}

/// Plain non-atomic increment of a private cache line (a lower bound): one load and one store,
/// volatile so the compiler keeps them in memory as the other variants do.
#[inline]
pub fn plain_add(slot: &mut Padded<u64>, n: u64) {
    let p = &raw mut slot.0;
    // SAFETY: `p` is a valid, exclusively borrowed u64.
    unsafe { p.write_volatile(p.read_volatile() + n) };
}

/// A Treiber stack over node indices with a 32-bit ABA tag packed beside the index in one 64-bit
/// word (no pointers, no reclamation: nodes are slots of a vector that outlives every operation, so
/// it is sound; a tag wraps after 2^32 pops of one head value, far beyond a benchmark run).
#[derive(Debug)]
pub struct Treiber {
    head: Padded<AtomicU64>,
    next: Box<[AtomicU32]>,
}

const NIL: u32 = u32::MAX;

impl Treiber {
    /// A stack able to hold nodes `0..capacity` (initially empty).
    pub fn new(capacity: usize) -> Self {
        Treiber {
            head: Padded(AtomicU64::new(u64::from(NIL))),
            next: (0..capacity).map(|_| AtomicU32::new(NIL)).collect(),
        }
    }

    #[inline]
    pub fn push(&self, node: u32) {
        let mut h = self.head.0.load(Ordering::Relaxed);
        loop {
            self.next[node as usize].store(h as u32, Ordering::Relaxed);
            let new = ((h >> 32).wrapping_add(1) << 32) | u64::from(node);
            match self
                .head
                .0
                .compare_exchange_weak(h, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(cur) => h = cur,
            }
        }
    }

    #[inline]
    pub fn pop(&self) -> Option<u32> {
        let mut h = self.head.0.load(Ordering::Acquire);
        loop {
            let top = h as u32;
            if top == NIL {
                return None;
            }
            let next = self.next[top as usize].load(Ordering::Relaxed);
            let new = ((h >> 32).wrapping_add(1) << 32) | u64::from(next);
            match self
                .head
                .0
                .compare_exchange_weak(h, new, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => return Some(top),
                Err(cur) => h = cur,
            }
        }
    }
}

/// Off x86_64 there are no hand-written sections: the two "hand-written" rows run the DSL's counter
/// (so that `tests/percpu.rs`, which runs the comparison program, builds for every target).
#[cfg(not(target_arch = "x86_64"))]
pub mod hand {
    use rseq_dsl::PerCpu;

    /// The DSL's counter (no hand-written section for this architecture).
    #[inline(always)]
    pub fn counter_add_dsl_layout(c: &PerCpu<super::CounterWord>, n: super::CounterWord) {
        super::dsl_counter_add(c, n);
    }

    /// The DSL's counter (no hand-written section for this architecture).
    #[inline(always)]
    pub fn counter_add_librseq_layout(c: &PerCpu<super::CounterWord>, n: super::CounterWord) {
        super::dsl_counter_add(c, n);
    }

    /// The DSL's counter (no hand-written section for this architecture).
    #[inline(always)]
    pub fn counter_add_shift_stride(c: &PerCpu<super::CounterWord>, n: super::CounterWord) {
        super::dsl_counter_add(c, n);
    }
}

/// Hand-written x86_64 counter sections, the reference the DSL's output is compared with.
#[cfg(target_arch = "x86_64")]
pub mod hand {
    use rseq_dsl::__private::{enter, Entry};
    use rseq_dsl::PerCpu;

    fn area() -> *mut u8 {
        match enter() {
            Ok(Entry::Native(area)) => area.cast(),
            other => panic!("hand-written sections need native rseq: {other:?}"),
        }
    }

    /// One counter section with the DSL's layout (CPU read inside, bounds check, slot address,
    /// load/add/store commit), the slot-address instructions given as asm lines with the operands
    /// they name, retried until it commits.
    macro_rules! counter_section {
        ($c:expr, $n:expr, [$($addr:literal),*] $(, $name:ident = $op:expr)*) => {{
            let r = $c.__raw();
            let area = area();
            loop {
                let status: u64;
                // SAFETY: a complete rseq critical section: descriptor stored in rseq_cs before
                // the start label, CPU read and bounds-checked inside, one committing store as the
                // last instruction, abort label preceded by the x86_64 signature. `area` is this
                // thread's registered area; the slot is in bounds of the PerCpu (checked against
                // len; the address lines compute base + index * stride). Inputs are never
                // modified; scratch registers are `out`.
                unsafe {
                    core::arch::asm!(
                        "lea {s0}, [rip + 3f]",
                        "mov qword ptr [{area} + 8], {s0}",
                        "2:",
                        "mov {s0:e}, dword ptr [{area} + 4]",
                        "cmp {s0}, {len}",
                        "jae 5f",
                        $($addr,)*
                        "add {s0}, {base}",
                        "mov {s1}, qword ptr [{s0}]",
                        "add {s1}, {n}",
                        "mov qword ptr [{s0}], {s1}",
                        "4:",
                        "xor {st:e}, {st:e}",
                        "6:",
                        ".pushsection __rseq_failure, \"ax\"",
                        ".byte 0x0f, 0xb9, 0x3d",
                        ".long 0x53053053",
                        "5:",
                        "mov {st:e}, 1",
                        "jmp 6b",
                        ".popsection",
                        ".pushsection __rseq_cs, \"aw\"",
                        ".balign 32",
                        "3:",
                        ".long 0, 0",
                        ".quad 2b, 4b - 2b, 5b",
                        ".popsection",
                        area = in(reg) area,
                        len = in(reg) r.len,
                        base = in(reg) r.base,
                        n = in(reg) $n,
                        $($name = in(reg) $op,)*
                        s0 = out(reg) _,
                        s1 = out(reg) _,
                        st = out(reg) status,
                        options(nostack)
                    );
                }
                if status == 0 {
                    return;
                }
            }
        }};
    }

    /// The instructions the DSL emits for a counter (read the CPU inside, bounds check, `imul`),
    /// without the generated wrapper (no status decode beyond one compare).
    #[inline(always)]
    pub fn counter_add_dsl_layout(c: &PerCpu<u64>, n: u64) {
        counter_section!(c, n, ["imul {s0}, {stride}"], stride = c.__raw().stride)
    }

    /// The DSL's instructions with the slot address as a shift by an immediate (the stride of a
    /// `PerCpu<u64>` is 128 bytes) instead of an `imul` by a register: the same instruction
    /// count, one input register fewer. The experiment behind "cheaper slot addressing"
    /// (`docs/benchmarks/README.md`).
    #[inline(always)]
    pub fn counter_add_shift_stride(c: &PerCpu<u64>, n: u64) {
        assert_eq!(c.__raw().stride, 128, "a PerCpu<u64> slot is 128 bytes");
        counter_section!(c, n, ["shl {s0}, 7"])
    }

    /// librseq's layout: CPU read and slot address computed before the section, which only
    /// compares the CPU (`cmp` with memory) and does load/add/store.
    #[inline(always)]
    pub fn counter_add_librseq_layout(c: &PerCpu<u64>, n: u64) {
        let r = c.__raw();
        let area = area();
        loop {
            // SAFETY: the thread's registered area; cpu_id is kernel-written, read volatile.
            let cpu = unsafe { area.add(4).cast::<u32>().read_volatile() } as usize;
            assert!(cpu < r.len, "cpu_id out of range");
            let slot = r.base.wrapping_add(cpu * r.stride);
            let status: u64;
            // SAFETY: as in `counter_add_dsl_layout`; the section checks that it runs on `cpu`, whose
            // slot (in bounds: checked above) it updates.
            unsafe {
                core::arch::asm!(
                    "lea {s0}, [rip + 3f]",
                    "mov qword ptr [{area} + 8], {s0}",
                    "2:",
                    "cmp dword ptr [{area} + 4], {cpu:e}",
                    "jne 5f",
                    "mov {s1}, qword ptr [{slot}]",
                    "add {s1}, {n}",
                    "mov qword ptr [{slot}], {s1}",
                    "4:",
                    "xor {st:e}, {st:e}",
                    "6:",
                    ".pushsection __rseq_failure, \"ax\"",
                    ".byte 0x0f, 0xb9, 0x3d",
                    ".long 0x53053053",
                    "5:",
                    "mov {st:e}, 1",
                    "jmp 6b",
                    ".popsection",
                    ".pushsection __rseq_cs, \"aw\"",
                    ".balign 32",
                    "3:",
                    ".long 0, 0",
                    ".quad 2b, 4b - 2b, 5b",
                    ".popsection",
                    area = in(reg) area,
                    cpu = in(reg) cpu,
                    slot = in(reg) slot,
                    n = in(reg) n,
                    s0 = out(reg) _,
                    s1 = out(reg) _,
                    st = out(reg) status,
                    options(nostack)
                );
            }
            if status == 0 {
                return;
            }
        }
    }
}
