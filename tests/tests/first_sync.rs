//! After a pairing, the two devices sync on their own, promptly, even on a busy machine.
//!
//! Issue 15 asked why the joiner's first `hearth/1` dial was sometimes not retried
//! within a minute under load. Two faults had made it so, both fixed before this test:
//! the inviter refused that dial while its roster update was in flight (it now refreshes
//! its trusted keys before answering the pairing), and a dial that never answered left
//! the dial loop asleep for the longest backoff, 60 s (it now wakes for the next
//! attempt). The harness waits up to 60 s for convergence, which hid the second one;
//! this test holds the first sync to 15 s, four times the fast redial cap, with both
//! cores kept busy. `HEARTH_LONG_TESTS=1` pairs 20 times instead of 3.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_tests::harness::{pair, wait_converged_within, TestDaemon};

/// Well above a redial after a refused or lost first dial, well below the 60 s
/// backoff cap the fault slept for.
const FIRST_SYNC_WITHIN: Duration = Duration::from_secs(15);

fn pairings() -> usize {
    if std::env::var("HEARTH_LONG_TESTS").is_ok_and(|v| v == "1") {
        20
    } else {
        3
    }
}

/// Keeps every core busy until dropped.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start() -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
            })
            .collect();
        Load { stop, threads }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[test]
fn a_new_pair_syncs_on_its_own_within_seconds_on_a_busy_machine() {
    let _load = Load::start();
    let mut took = Vec::new();
    for _ in 0..pairings() {
        let a = TestDaemon::start().unwrap();
        let b = TestDaemon::start().unwrap();
        a.init("Ada").unwrap();
        b.init("Bo").unwrap();
        pair(&a, &b).unwrap();
        let paired = Instant::now();
        // No `sync` call: the daemons must find each other themselves.
        wait_converged_within(&[&a, &b], "household", FIRST_SYNC_WITHIN).unwrap();
        took.push(paired.elapsed());
    }
    eprintln!("first sync after pairing: {took:?}");
}
