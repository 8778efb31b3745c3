use rseq_dsl::{rseq, PerCpu};

rseq! {
    // A type parameter as a word parameter: its width is unknown to the macro.
    pub fn add<T>(counters: &PerCpu<u64>, n: T) {
        let slot = counters.current();
        let v = load(slot);
        commit store(slot, v + 1);
    }

    // As the element of a safe fn's `PerCpu`.
    pub fn bump<T: Copy>(counters: &PerCpu<T>) {
        let slot = counters.current();
        let v = load::<u64>(slot);
        commit store(slot, v + 1);
    }

    // As a load's type.
    pub unsafe fn peek<T>(heads: &PerCpu<*mut T>) -> u64 {
        let head = heads.current();
        let top = load(head);
        let x = load::<T>(top);
        commit store(head, top);
        0
    }
}
fn main() {}
