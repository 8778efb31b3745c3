use rseq_dsl::{rseq, PerCpu};

// Fourteen loaded values all live at the commit: more than x86_64's registers even with the inputs
// spilled to memory (the code generator's fallback when the inputs alone do not fit).
rseq! {
    pub unsafe fn add(c: &PerCpu<u64>) {
        let slot = c.current();
        let v1 = load::<u64>(slot);
        let v2 = load::<u64>(slot + 8);
        let v3 = load::<u64>(slot + 16);
        let v4 = load::<u64>(slot + 24);
        let v5 = load::<u64>(slot + 32);
        let v6 = load::<u64>(slot + 40);
        let v7 = load::<u64>(slot + 48);
        let v8 = load::<u64>(slot + 56);
        let v9 = load::<u64>(slot + 64);
        let v10 = load::<u64>(slot + 72);
        let v11 = load::<u64>(slot + 80);
        let v12 = load::<u64>(slot + 88);
        commit store(slot, v1 + v2 + v3 + v4 + v5 + v6 + v7 + v8 + v9 + v10 + v11 + v12);
    }
}
fn main() {}
