use rseq_dsl::{rseq, PerCpu};

rseq! {
    pub fn add<const N: u64>(counters: &PerCpu<u64>) {
        let slot = counters.current();
        let v = load(slot);
        commit store(slot, v + N);
    }
}
fn main() {}
