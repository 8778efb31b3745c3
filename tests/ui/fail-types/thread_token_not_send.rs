use rseq_dsl::this_thread;

fn main() {
    // The token cannot move to another thread: it names the calling thread's area.
    this_thread(|t| {
        std::thread::scope(|s| {
            s.spawn(move || t.is_native());
        });
    })
    .unwrap();
}
