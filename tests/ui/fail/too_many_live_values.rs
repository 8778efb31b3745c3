use rseq_dsl::{rseq, PerCpu};

rseq! {
    pub fn add(c: &PerCpu<u64>, a: u64, b: u64, d: u64, e: u64, f: u64, g: u64) {
        let slot = c.current();
        let v1 = load(slot);
        let v2 = v1 + a;
        let v3 = v2 + b;
        let v4 = v3 + d;
        let v5 = v4 + e;
        let v6 = v5 + f;
        commit store(slot, v1 + v2 + v3 + v4 + v5 + v6 + g);
    }
}
fn main() {}
