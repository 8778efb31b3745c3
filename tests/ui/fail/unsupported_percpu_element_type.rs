use rseq_dsl::{rseq, PerCpu};

#[derive(Clone, Copy)]
pub struct Pair {
    pub a: u64,
    pub b: u64,
}

rseq! {
    pub fn add(pairs: &PerCpu<Pair>, n: u64) {
        let slot = pairs.current();
        let v = load::<u64>(slot);
        commit store(slot, v + n);
    }
}
fn main() {}
