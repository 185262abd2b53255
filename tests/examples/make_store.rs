//! Builds a stopped daemon's data directory with years of history, and optionally
//! some un-compacted chunks written by the daemon itself, and keeps it, so a start
//! can be profiled on its own (`perf`, `valgrind --tool=callgrind`, `heaptrack`):
//!
//! `cargo run --release -p hearth-tests --example make_store -- DIR YEARS CHUNKS`
//!
//! then e.g. `valgrind --tool=callgrind target/release/hearthd --data-dir DIR/data`.
//! Needs the release `hearthd` and `hearth` binaries next to the example's directory.

use std::path::PathBuf;

use hearth_api::{DocCall, MomentParams};
use hearth_core::model::MomentKind;
use hearth_tests::bench::fixture;
use hearth_tests::harness::TestDaemon;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: make_store DIR YEARS CHUNKS";
    let dir = PathBuf::from(args.next().ok_or_else(|| anyhow::anyhow!(usage))?);
    let years: f64 = args.next().ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
    let chunks: usize = args.next().ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
    std::fs::create_dir_all(&dir)?;
    let data = dir.join("data");
    let daemon = TestDaemon::start_in(&data)?;
    daemon.init("Alex")?;
    let me = fixture::person_of(&daemon)?;
    let mut daemon = daemon;
    daemon.stop()?;
    let filled = fixture::fill_alone(&data, me, &fixture::options_ending_yesterday(years, 42))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("records: {}", filled.summary.total());
    drop(filled);
    if chunks > 0 {
        let daemon = TestDaemon::start_in(&data)?;
        for _ in 0..chunks {
            daemon.call(DocCall::MomentAdd(MomentParams {
                kind: MomentKind::Laugh,
                started_by: None,
                note: None,
                at: Default::default(),
            }))?;
        }
        // A kill, not a stop: a clean stop may compact the chunks away.
        drop(daemon);
    }
    println!("kept {}", data.display());
    Ok(())
}
