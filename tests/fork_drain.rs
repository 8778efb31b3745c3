//! `fork()` while another thread runs cross-CPU operations (`Stack::drain`, `Buffer::drain`,
//! `Counter::reset`): the child must find every structure usable (`rseq-runtime`'s `remote` module:
//! marks registered and cleared in the child, locks of a previous fork generation free). Before,
//! children inherited the drain marks and the locked mutex: `push` spun forever, `Buffer::push`
//! reported full, `pop` empty, `drain` blocked.
//!
//! Each child pins itself to every CPU it may use and pushes, pops, drains and resets there under
//! a 10 s alarm, then exits with the number of marks its fork handler cleared. The test forks until
//! some child was forked in the middle of a drain (its handler cleared a mark) and at least 20 times,
//! for at most 60 s. The drainer refills the structures only every 8th round, so most of its time is
//! spent inside drains (mark set, waiting for the fence); the forking thread waits a varying time
//! between forks so that forks do not fall into one phase of the drainer's loop. About 1 fork in 50
//! lands in a drain on a 2-CPU x86_64 host; on a loaded CI machine it once took more than 400.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rseq_dsl::percpu::{Buffer, Counter, Node, Stack};
use rseq_dsl::{remote, status, Mode, Owner};

/// Exit statuses of a child that found a structure unusable (below: marks cleared, capped at 100).
const STACK_POP_EMPTY: i32 = 101;
const BUFFER_FULL: i32 = 102;
const BUFFER_POP_EMPTY: i32 = 103;
const DRAIN_FAILED: i32 = 104;

/// What a child does; returns its exit status. Only what a forked child of a multi-threaded
/// process may do in practice (glibc's malloc is fork-safe); no printing (stdout's lock may be held).
fn child(stack: &Stack<u64>, buffer: &Buffer<u64>, counter: &Counter) -> i32 {
    // SAFETY: alarm has no preconditions; SIGALRM's default action ends a hung child.
    unsafe { libc::alarm(10) };
    for cpu in rseq_testkit::allowed_cpus() {
        rseq_testkit::pin_to(&[cpu]);
        stack.push(Node::new(7));
        if stack.pop().is_none() {
            return STACK_POP_EMPTY;
        }
        if buffer.push(Box::new(9)).is_err() {
            return BUFFER_FULL;
        }
        if buffer.pop().is_none() {
            return BUFFER_POP_EMPTY;
        }
        counter.add(1);
        if stack.drain(cpu).is_err() || buffer.drain(cpu).is_err() {
            return DRAIN_FAILED;
        }
        counter.reset();
    }
    remote::marks_cleared_by_fork().min(100) as i32
}

#[test]
fn fork_during_cross_cpu_operations_leaves_usable_structures() {
    let stack = Stack::<u64>::new();
    let buffer = Buffer::<u64>::with_capacity(64);
    let counter = Counter::new();
    let cpus = rseq_testkit::allowed_cpus();
    for i in 0..256 {
        stack.push(Node::new(i));
    }
    for i in 0..16 {
        buffer.push(Box::new(i)).expect("room for 16 items");
    }
    let stop = AtomicBool::new(false);
    let (mut forks, mut stranded, mut failures) = (0u32, 0, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    std::thread::scope(|s| {
        s.spawn(|| {
            // Drains every CPU in a loop; every 8th round puts the items back (on the drainer's
            // CPU), so the structures do not stay empty.
            let (mut nodes, mut items) = (Vec::new(), Vec::new());
            let mut round = 0u32;
            while !stop.load(Ordering::Relaxed) {
                for &cpu in &cpus {
                    nodes.extend(stack.drain(cpu).expect("drain"));
                    items.extend(buffer.drain(cpu).expect("drain"));
                    counter.reset();
                }
                round += 1;
                if round % 8 == 0 {
                    for n in nodes.drain(..) {
                        stack.push(n);
                    }
                    for item in items.drain(..) {
                        let _ = buffer.push(item);
                    }
                }
            }
        });
        while forks < 20 || (stranded == 0 && Instant::now() < deadline) {
            // 0 to ~100 us of spinning, varying from fork to fork.
            for _ in 0..(forks.wrapping_mul(2_654_435_761) >> 20) {
                std::hint::spin_loop();
            }
            // SAFETY: the child only runs `child` (no locks another thread could hold but malloc's,
            // which glibc resets in the child) and leaves with `_exit`.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
            if pid == 0 {
                let code = child(&stack, &buffer, &counter);
                // SAFETY: ends the child without running the parent's destructors or test harness.
                unsafe { libc::_exit(code) };
            }
            let mut st = 0;
            // SAFETY: waits for the child just forked.
            assert_eq!(unsafe { libc::waitpid(pid, &mut st, 0) }, pid);
            forks += 1;
            if libc::WIFEXITED(st) && libc::WEXITSTATUS(st) <= 100 {
                stranded += libc::WEXITSTATUS(st);
            } else if libc::WIFEXITED(st) {
                failures.push(format!("child {forks}: exit {}", libc::WEXITSTATUS(st)));
            } else {
                failures.push(format!(
                    "child {forks}: killed by signal {}",
                    libc::WTERMSIG(st)
                ));
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    println!(
        "{:?}: {forks} forks while another thread drained; {stranded} marks cleared in children; {} failed",
        status().mode,
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "children found stuck structures: {failures:?}"
    );
    if status().mode == Mode::Native {
        assert!(
            stranded > 0,
            "no fork happened during a drain: the test proved nothing"
        );
    }
}

/// The mode a runner expects (`RSEQ_DSL_EXPECT_MODE`, `RSEQ_DSL_EXPECT_OWNER`; nothing is asserted
/// when unset): a run meant to be native cannot pass in fallback mode.
#[test]
fn expected_mode() {
    let s = status();
    rseq_testkit::check_expected_mode(s.mode == Mode::Native, s.owner == Some(Owner::Glibc), s);
}
