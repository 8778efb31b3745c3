use rseq_dsl::{rseq, PerCpu};

rseq! {
    pub fn add(counters: &PerCpu<u64>, n: u64) {
        let slot = counters.current();
        let w = v + n;
        let v = load(slot);
        commit store(slot, w);
    }
}
fn main() {}
