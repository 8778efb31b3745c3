use rseq_dsl::{rseq, PerCpu, ThisThread};

rseq! {
    /// Two tokens: a sequence runs on one thread.
    pub fn add_twice(a: ThisThread<'_>, counters: &PerCpu<u64>, b: ThisThread<'_>) {
        let slot = counters.current();
        let v = load(slot);
        commit store(slot, v + 1);
    }

    /// The token is not a word.
    pub fn store_token(t: ThisThread<'_>, counters: &PerCpu<u64>) {
        let slot = counters.current();
        commit store(slot, t);
    }
}

fn main() {}
