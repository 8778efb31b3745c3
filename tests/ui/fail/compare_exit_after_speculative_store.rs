use rseq_dsl::{rseq, PerCpu};

rseq! {
    pub fn add(counters: &PerCpu<u64>, n: u64) -> bool {
        let slot = counters.current();
        let v = load(slot);
        store(slot, 0);
        if v == 0 { return false; }
        commit store(slot, v + n);
        true
    }
}
fn main() {}
