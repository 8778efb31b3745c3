use rseq_dsl::{rseq, PerCpu};

rseq! {
    pub fn add(counters: &PerCpu<u64>, n: String) {
        let slot = counters.current();
        let v = load(slot);
        commit store(slot, v);
    }
}
fn main() {}
