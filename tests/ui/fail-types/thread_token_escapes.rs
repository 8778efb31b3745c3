use rseq_dsl::{this_thread, ThisThread};

fn main() {
    // The token cannot leave the closure: it is tied to this `this_thread` call.
    let mut kept: Option<ThisThread<'_>> = None;
    this_thread(|t| kept = Some(t)).unwrap();
    let _ = kept;
}
