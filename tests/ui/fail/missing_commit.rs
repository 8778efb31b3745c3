use rseq_dsl::{rseq, PerCpu};

rseq! {
    pub fn add(counters: &PerCpu<u64>, n: u64) {
        let slot = counters.current();
        let v = load(slot);
        store(slot, v + n);
    }
}
fn main() {}
