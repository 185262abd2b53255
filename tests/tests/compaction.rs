//! When the daemon compacts its store: at a quiet moment, not in the middle of a burst
//! of writes or a sync exchange, and soon after a start that finds many chunks left.
#![allow(clippy::unwrap_used)]

mod common;

use common::{household_dir, store_files, write};
use hearth_tests::harness::TestDaemon;

const COMPACTED: &str = "compacted a document into one snapshot";

/// Enough writes with long notes that the chunks outweigh the 64 KiB a store may hold
/// before compaction is due (`storage::MIN_COMPACTION_BYTES`).
fn burst(d: &TestDaemon, tag: &str) {
    let long = "x".repeat(3000);
    for i in 0..30 {
        write(d, &format!("{tag}{i} {long}")).unwrap();
    }
}

#[test]
fn a_store_is_compacted_once_writes_pause_and_after_a_restart_that_finds_chunks() {
    let mut d = TestDaemon::start().unwrap();
    d.init("Ada").unwrap();
    let dir = household_dir(&d.paths.data_dir);

    // 1. A burst of writes calls for compaction; it happens once the writes stop.
    burst(&d, "a");
    d.wait_for_log(COMPACTED).unwrap();
    let after_quiet = store_files(&dir);
    assert_eq!(after_quiet.snapshots.len(), 1, "{after_quiet:?}");
    assert!(after_quiet.chunks.is_empty(), "{after_quiet:?}");

    // 2. Another burst, stopped at once: its chunks wait for the next start.
    burst(&d, "b");
    d.stop().unwrap();
    let left = store_files(&dir);
    if left.chunks.len() < 2 {
        // Only a machine that stalled for longer than the quiet period between the
        // last write and the stop gets here; the start below has nothing to catch up.
        eprintln!("note: the daemon compacted before it stopped ({left:?})");
        return;
    }

    // 3. The next start compacts them as soon as nothing else is asked of it, and
    //    every note is still there.
    let again = TestDaemon::start_in(&d.paths.data_dir).unwrap();
    again.wait_for_log(COMPACTED).unwrap();
    let restarted = store_files(&dir);
    assert!(restarted.chunks.is_empty(), "{restarted:?}");
    assert!(restarted.quarantined.is_empty(), "{restarted:?}");
    let notes = common::notes(&again);
    for tag in ["a0 ", "a29 ", "b0 ", "b29 "] {
        assert!(notes.iter().any(|n| n.starts_with(tag)), "{tag} is missing");
    }
}
