use rseq_dsl::{rseq, PerCpu};

rseq! {
    pub unsafe fn copy(bufs: &PerCpu<u64>, src: *const u8) {
        let slot = bufs.current();
        memcpy(slot, src);
        commit store(slot, 1);
    }
}
fn main() {}
