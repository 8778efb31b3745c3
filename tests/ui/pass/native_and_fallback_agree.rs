//! Every form (mm_cid, explicit CPU, memcpy, narrow signed/unsigned arithmetic, casts, shifts,
//! compare-exits, store_release) gives the same results natively and in fallback mode: the binary
//! re-runs itself with `RSEQ_DSL_FALLBACK=1` and compares the digests.

use rseq_dsl::{rseq, PerCpu, PerMmCid};

rseq! {
    /// Narrow signed arithmetic.
    pub fn mix_i8(c: &PerCpu<i8>, a: i8, s: u32) -> (i8, i8) {
        let slot = c.current();
        let v = load(slot);
        let sum = v + a;
        let sh = (v << s) ^ (v >> s);
        commit store(slot, sum ^ a);
        (sum, sh)
    }

    /// Casts between widths and signedness.
    pub fn mix_cast(c: &PerCpu<i8>, a: i8) -> u8 {
        let slot = c.current();
        let v = load(slot);
        let cast = (v as u8) + ((a as i64) - (v as i64)) as u8;
        commit store(slot, (cast as i8) - a);
        cast
    }

    /// Unsigned compare-exit and 16-bit wrap.
    pub fn mix_u16(c: &PerCpu<u16>, a: u16) -> Option<(u16, u32)> {
        let slot = c.current();
        let v = load(slot);
        if v < a { return None; }
        let d = v - a + 40000;
        let z = (d as u32) << 20;
        commit store_release(slot, d);
        Some((d, z))
    }

    /// Signed 32-bit compare-exit returning a local.
    pub fn mix_i32(c: &PerCpu<i32>, a: i32) -> i32 {
        let slot = c.current();
        let v = load(slot);
        if v <= a { return v; }
        let x = (v | 3) & (a ^ -1);
        commit store(slot, x);
        x >> 1
    }

    #[rseq(index = mm_cid)]
    pub fn cid_add(c: &PerMmCid<u64>, n: u64) -> u64 {
        let slot = c.current();
        let v = load(slot);
        commit store(slot, v + n);
        v
    }

    pub fn add_on(c: &PerCpu<u64>, cpu: usize, n: u64) {
        let slot = c.on_cpu(cpu);
        let v = load(slot);
        commit store(slot, v + n);
    }

    pub unsafe fn copy_in(c: &PerCpu<[u64; 4]>, src: *const u8, len: usize) {
        let slot = c.current();
        memcpy(slot, src, len);
        commit store::<u64>(slot + 24, 7);
    }
}

fn lcg(x: &mut u64) -> u64 {
    *x = x
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *x >> 33
}

fn digest() -> String {
    let mut seed = 1u64;
    let mut out = Vec::new();
    for _ in 0..500 {
        let (v, a, s) = (
            lcg(&mut seed) as i8,
            lcg(&mut seed) as i8,
            lcg(&mut seed) as u32,
        );
        let c = PerCpu::new(v);
        out.push(format!(
            "{:?}{:?}",
            mix_i8(&c, a, s),
            c.iter().collect::<Vec<_>>()
        ));
        let (v, a) = (lcg(&mut seed) as u16, lcg(&mut seed) as u16);
        let c = PerCpu::new(v);
        out.push(format!(
            "{:?}{:?}",
            mix_u16(&c, a),
            c.iter().collect::<Vec<_>>()
        ));
        let (v, a) = (lcg(&mut seed) as i32, lcg(&mut seed) as i32);
        let c = PerCpu::new(v);
        out.push(format!(
            "{:?}{:?}",
            mix_i32(&c, a),
            c.iter().collect::<Vec<_>>()
        ));
    }
    let c = PerMmCid::new(5u64);
    for _ in 0..100 {
        assert_eq!(cid_add(&c, 1).map(|_| ()), Ok(()));
    }
    out.push(format!("{}", c.iter().sum::<u64>()));

    let c = PerCpu::new(0u64);
    let mut wrong = 0;
    for i in 0..200 {
        match add_on(&c, i % c.len(), 1) {
            Ok(()) => {}
            Err(rseq_dsl::Error::WrongCpu { .. }) => wrong += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(c.iter().sum::<u64>() + wrong, 200);
    assert_eq!(
        add_on(&c, c.len(), 1),
        Err(rseq_dsl::Error::IndexOutOfRange {
            index: c.len(),
            len: c.len()
        })
    );

    let c = PerCpu::new([0u64; 4]);
    let src: Vec<u8> = (1..=23).collect();
    for len in [0usize, 1, 7, 8, 15, 23] {
        // SAFETY: `src` has 23 bytes and each slot 32; the memcpy stays below offset 24.
        unsafe { copy_in(&c, src.as_ptr(), len) };
        // SAFETY: as above.
        assert!(matches!(
            unsafe { try_copy_in(&c, src.as_ptr(), 5000) },
            Err(rseq_dsl::Error::TooLong {
                len: 5000,
                max: 1024
            })
        ));
    }
    let tails: Vec<u64> = (0..c.len())
        // SAFETY: in range; no section runs concurrently (one thread).
        .map(|i| unsafe { c.slot_ptr(i).unwrap().read()[3] })
        .collect();
    out.push(format!("{tails:?}"));
    out.join("\n")
}

/// Pins the thread to the first CPU it may run on, so that both runs use the same slot: natively the
/// slot is the CPU's, and in fallback mode the first free index from `sched_getcpu()`.
fn pin_to_one_cpu() {
    // SAFETY: zeroed cpu_set_t is an empty set; the calls get valid pointers and the set's size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set), 0);
        let first = (0..libc::CPU_SETSIZE as usize).find(|&c| libc::CPU_ISSET(c, &set)).unwrap();
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(first, &mut one);
        assert_eq!(libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one), 0);
    }
}

fn main() {
    pin_to_one_cpu();
    let mine = digest();
    if std::env::var_os("AGREE_CHILD").is_some() {
        print!("{mine}");
        return;
    }
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .env("AGREE_CHILD", "1")
        .env("RSEQ_DSL_FALLBACK", "1")
        .output()
        .unwrap();
    assert!(
        child.status.success(),
        "{}",
        String::from_utf8_lossy(&child.stderr)
    );
    let theirs = String::from_utf8(child.stdout).unwrap();
    assert_eq!(mine.lines().count(), theirs.lines().count());
    for (i, (a, b)) in mine.lines().zip(theirs.lines()).enumerate() {
        assert_eq!(a, b, "line {i}: native vs fallback");
    }
    println!(
        "native and fallback agree on {} results",
        mine.lines().count()
    );
}
