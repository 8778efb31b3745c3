//! Running one generated sequence on derived inputs and recording everything it could change.
//! A module of the library, and included with `#[path]` by the scratch crates of
//! `difftest-shrink`, so that a shrunk candidate runs on exactly the inputs of the test.

use rseq_dsl::{Error, PerCpu};

/// One generated sequence.
#[derive(Debug)]
pub struct Case {
    /// The generated fn's name.
    pub name: &'static str,
    /// Its `rseq!` source, printed on a mismatch.
    pub source: &'static str,
    /// Runs `try_<name>(c, p, a as A, b as B)`.
    pub run: fn(&PerCpu<Slot>, *mut u8, u64, u64) -> Result<u64, Error>,
}

/// The element type of every generated sequence's `PerCpu`: a 64-bit word, or the machine word
/// where registers hold 32 bits (the generator then leaves out `u64`/`i64` too: the macro refuses
/// them on arm).
#[cfg(target_pointer_width = "64")]
pub type Slot = u64;
/// See the 64-bit definition.
#[cfg(not(target_pointer_width = "64"))]
pub type Slot = usize;

/// The scratch memory every sequence's `p` points at.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct Scratch(pub [u8; 256]);

/// Deterministic splitmix64 stream.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value biased towards edge cases (0, 1, all ones, top bits, small numbers).
    fn word(&mut self) -> u64 {
        match self.next_u64() % 8 {
            0 => 0,
            1 => 1,
            2 => u64::MAX,
            3 => 0x80 << (8 * (self.next_u64() % 8)),
            4 => self.next_u64() % 16,
            5 => (self.next_u64() % 16).wrapping_neg(),
            _ => self.next_u64(),
        }
    }
}

/// The inputs of one run, derived from `(case, round)`.
fn inputs(case: usize, round: usize) -> (u64, Box<Scratch>, u64, u64) {
    let mut rng = Rng(((case as u64) << 32) ^ round as u64 ^ 0xd1ff_0000_0000_0000);
    let mut mem = Box::new(Scratch([0; 256]));
    match round % 4 {
        // All zero: equality compares hold, loads agree.
        0 => {}
        // Few distinct bytes: compares go both ways.
        1 => {
            for b in &mut mem.0 {
                *b = [0u8, 1, 0x7f, 0x80, 0xff][(rng.next_u64() % 5) as usize];
            }
        }
        _ => {
            for b in &mut mem.0 {
                *b = rng.next_u64() as u8;
            }
        }
    }
    (rng.word(), mem, rng.word(), rng.word())
}

/// Outcome counts of a digest run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Runs that committed (tail value).
    pub committed: usize,
    /// Runs that left through a compare-exit (values with top byte `0xee`).
    pub exited: usize,
    /// Native attempts aborted by the kernel and retried.
    pub aborts: usize,
}

/// Runs case number `index` for `rounds` inputs and appends one line per round to `lines`:
/// `case round result slots scratch-hex`. Inputs depend on `(index, round)` only.
pub fn digest_case(
    index: usize,
    case: &Case,
    rounds: usize,
    lines: &mut Vec<String>,
    stats: &mut Stats,
) {
    for round in 0..rounds {
        let (r, c, mem) = loop {
            let (slot, mut mem, a, b) = inputs(index, round);
            #[allow(clippy::cast_possible_truncation)]
            let c = PerCpu::new(slot as Slot);
            match (case.run)(&c, mem.0.as_mut_ptr(), a, b) {
                Err(Error::Aborted) => stats.aborts += 1,
                r => break (r, c, mem),
            }
        };
        #[allow(clippy::unnecessary_cast)] // `Slot` is `u64` on 64-bit targets
        let slots: Vec<u64> = c.iter().map(|v| v as u64).collect();
        let mut hex = String::with_capacity(512);
        for b in mem.0 {
            hex.push_str(&format!("{b:02x}"));
        }
        // Exit values carry top byte 0xee, tails top byte 0 (see gen/mod.rs).
        match r {
            Ok(v) if v >> 56 == 0xee => stats.exited += 1,
            Ok(_) => stats.committed += 1,
            Err(_) => {}
        }
        lines.push(format!("{index} {round} {r:?} {slots:?} {hex}"));
    }
}
