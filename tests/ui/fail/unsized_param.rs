use rseq_dsl::{rseq, PerCpu};

rseq! {
    // `*mut T` for `T: ?Sized` may be a fat pointer (two words).
    pub unsafe fn push<T: ?Sized>(heads: &PerCpu<*mut T>, node: *mut T) {
        let head = heads.current();
        let old = load(head);
        commit store(head, node);
    }

    pub unsafe fn push_where<T>(heads: &PerCpu<*mut T>, node: *mut T)
    where
        T: ?Sized,
    {
        let head = heads.current();
        commit store(head, node);
    }
}
fn main() {}
