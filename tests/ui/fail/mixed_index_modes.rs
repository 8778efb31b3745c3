use rseq_dsl::rseq;

use rseq_dsl::PerMmCid;

rseq! {
    pub fn add(counters: &PerMmCid<u64>, n: u64) {
        let slot = counters.current();
        let v = load(slot);
        commit store(slot, v + n);
    }
}
fn main() {}
