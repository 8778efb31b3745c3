use rseq_dsl::{rseq, PerCpu};

rseq! {
    pub fn add(counters: &PerCpu<u64>, p: *mut u64) {
        let slot = counters.current();
        let v = load(p);
        commit store(slot, v);
    }
}
fn main() {}
