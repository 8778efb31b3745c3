use rseq_dsl::{rseq, PerCpu};

rseq! {
    pub fn add(counters: &PerCpu<u64>, n: u64) {
        let slot = counters.current();
        let v = load(slot);
        let w = v * n;
        let x = y + 1;
        commit store(slot, z);
    }
}
fn main() {}
