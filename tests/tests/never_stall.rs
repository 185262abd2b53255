//! Sync must never stall: two daemons on a two-host namespace LAN keep writing through
//! outages and a frozen peer, and every acknowledged write reaches the other side soon
//! after the link returns.
//!
//! Named after what broke: both sides queued more than a QUIC stream window for each
//! other during a cut, both blocked in a write, neither read, and sync stopped for good
//! while `status` still said `connected`.
//!
//! Needs root and iproute2 (network namespaces this test creates; nothing touches the
//! machine's own interfaces). Without them each test prints why and passes.
//! `HEARTH_OUTAGE_SECS` changes the length of the cut (default 15) to measure other
//! lengths; `HEARTH_LONG_TESTS=1` also runs the frozen-peer RSS measurement.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hearth_api::DocCall;
use hearth_tests::harness::{pair, wait_converged, DaemonOptions, Lan, Link, TestDaemon};
use serde_json::{json, Value};

/// What the issue promises: every acknowledged write is on both sides this soon after
/// the network returns.
const HEAL_WITHIN: Duration = Duration::from_secs(10);

fn unavailable() -> bool {
    match Lan::unavailable() {
        Some(why) => {
            eprintln!("skipped: the stall tests need network namespaces: {why}");
            true
        }
        None => false,
    }
}

/// Two initialised daemons on hosts 1 and 2 of `lan`, paired over the LAN link.
fn paired_on(lan: &Lan, dirs: &[tempfile::TempDir; 2]) -> (TestDaemon, TestDaemon) {
    let start = |n: usize| {
        TestDaemon::start_opts(
            dirs[n - 1].path(),
            &DaemonOptions {
                listen: format!("{}:0", lan.addr(n)),
                netns: Some(lan.ns(n).into()),
                log: Some("info,hearthd::net=debug".into()),
                ..DaemonOptions::default()
            },
        )
        .unwrap()
    };
    let (a, b) = (start(1), start(2));
    a.init("Ada").unwrap();
    b.init("Bo").unwrap();
    pair(&a, &b).unwrap();
    wait_converged(&[&a, &b], "household").unwrap();
    (a, b)
}

fn set_link(lan: &Lan, host: usize, up: bool) {
    let state = if up { "up" } else { "down" };
    let status = Command::new("ip")
        .args(["-n", lan.ns(host), "link", "set", "eth0", state])
        .status()
        .unwrap();
    assert!(status.success(), "could not set host {host}'s link {state}");
}

fn signal(daemon: &TestDaemon, name: &str) {
    use rustix::process::{kill_process, Pid, Signal};
    let signal = match name {
        "STOP" => Signal::STOP,
        _ => Signal::CONT,
    };
    let pid = daemon
        .pid()
        .and_then(|p| Pid::from_raw(i32::try_from(p).unwrap_or(0)))
        .unwrap();
    kill_process(pid, signal).unwrap();
}

/// Writes a moment about every 16 ms (about 60 a second) until told to stop, and
/// keeps the notes of the writes the daemon acknowledged.
struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(daemon: &TestDaemon, tag: &'static str) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let mut client = daemon.client().unwrap();
        let (flag, kept) = (stop.clone(), acked.clone());
        let thread = std::thread::spawn(move || {
            let mut n = 0u64;
            while !flag.load(Ordering::Relaxed) {
                let note = format!("{tag}-{n}");
                n += 1;
                let call = DocCall::MomentAdd(hearth_api::MomentParams {
                    kind: hearth_core::model::MomentKind::Laugh,
                    started_by: None,
                    note: Some(note.clone()),
                    at: hearth_api::At::default(),
                });
                if client.call(call).is_ok() {
                    kept.lock().unwrap().push(note);
                }
                std::thread::sleep(Duration::from_millis(16));
            }
        });
        Writer {
            stop,
            acked,
            thread: Some(thread),
        }
    }

    /// Stops writing and returns every acknowledged note.
    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        std::mem::take(&mut *self.acked.lock().unwrap())
    }
}

/// Asserts that both daemons hold every note in `acked`, and that they converged within
/// [`HEAL_WITHIN`] of `back`.
fn assert_healed(a: &TestDaemon, b: &TestDaemon, acked: &[String], back: Instant, what: &str) {
    wait_converged(&[a, b], "household").unwrap();
    let healed = back.elapsed();
    eprintln!(
        "{what}: {} acknowledged writes on both sides {healed:?} after the link returned",
        acked.len()
    );
    for daemon in [a, b] {
        let notes: BTreeSet<String> = daemon.notes().unwrap().into_iter().collect();
        let missing: Vec<&String> = acked.iter().filter(|n| !notes.contains(*n)).collect();
        assert!(
            missing.is_empty(),
            "{what}: {} acknowledged writes are missing, e.g. {:?}",
            missing.len(),
            missing.first()
        );
    }
    assert!(
        healed <= HEAL_WITHIN,
        "{what}: took {healed:?} to heal, more than {HEAL_WITHIN:?}"
    );
}

#[test]
fn both_sides_keep_writing_through_a_cut_and_everything_arrives_after_it() {
    if unavailable() {
        return;
    }
    let outage = std::env::var("HEARTH_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(15), Duration::from_secs);
    let lan = Lan::create("cut", 2, Link::Ipv4).unwrap();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (a, b) = paired_on(&lan, &dirs);
    let writers = [Writer::start(&a, "ada"), Writer::start(&b, "bo")];
    std::thread::sleep(Duration::from_secs(1));
    // 1. The link goes down while both keep writing, then comes back.
    set_link(&lan, 1, false);
    std::thread::sleep(outage);
    set_link(&lan, 1, true);
    let back = Instant::now();
    // 2. Both write on for a moment after it returns, then stop.
    std::thread::sleep(Duration::from_secs(1));
    let mut acked = Vec::new();
    for writer in writers {
        acked.extend(writer.finish());
    }
    assert!(
        acked.len() > 200,
        "the writers barely wrote: {}",
        acked.len()
    );
    // 3. Everything acknowledged is on both sides soon after.
    assert_healed(&a, &b, &acked, back, &format!("a {outage:?} cut"));
    // 4. And the link is alive: a new write crosses at once.
    a.moment("after the cut").unwrap();
    wait_converged(&[&a, &b], "household").unwrap();
}

#[test]
fn a_frozen_peer_gets_everything_soon_after_it_wakes() {
    if unavailable() {
        return;
    }
    let lan = Lan::create("frozen", 2, Link::Ipv4).unwrap();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (a, b) = paired_on(&lan, &dirs);
    let writer = Writer::start(&a, "ada");
    std::thread::sleep(Duration::from_millis(500));
    // 1. Bo's daemon is frozen for 30 s while Ada writes on.
    signal(&b, "STOP");
    std::thread::sleep(Duration::from_secs(30));
    // 2. Ada's side no longer says it is connected to a peer that does not answer.
    let peers = a.status().unwrap().peers;
    assert!(
        peers.iter().all(|p| !p.connected),
        "a frozen peer still shows as connected: {peers:?}"
    );
    signal(&b, "CONT");
    let back = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    let acked = writer.finish();
    assert_healed(&a, &b, &acked, back, "a 30 s freeze");
}

/// Automerge messages each bigger than QUIC's stream window (1.25 MB), one each way at
/// once: with a link that only reads between writes, both would wait forever.
#[test]
fn several_stream_windows_both_ways_at_once_converge() {
    if unavailable() {
        return;
    }
    let lan = Lan::create("windows", 2, Link::Ipv4).unwrap();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (a, b) = paired_on(&lan, &dirs);
    // 1. Apart, each side takes in megabytes the other lacks.
    set_link(&lan, 1, false);
    for (daemon, tag) in [(&a, "ada"), (&b, "bo")] {
        let imported = daemon
            .call(DocCall::Import {
                data: big_export(daemon, tag, 2500),
            })
            .unwrap();
        assert!(imported.to_string().contains("2500"), "{imported}");
    }
    // 2. Together again, both send at once, and converge.
    set_link(&lan, 1, true);
    let back = Instant::now();
    wait_converged(&[&a, &b], "household").unwrap();
    eprintln!("two 10 MB catch-ups crossed in {:?}", back.elapsed());
    let notes_a = a.notes().unwrap();
    assert_eq!(notes_a, b.notes().unwrap());
    assert!(notes_a.len() >= 5000, "{}", notes_a.len());
    let traffic: Value = serde_json::to_value(a.status().unwrap().peers).unwrap();
    eprintln!("traffic seen by Ada: {traffic}");
}

/// An export of `count` moments by this daemon's person, each with a 3,900-character
/// note of random hex (so it does not compress away).
fn big_export(daemon: &TestDaemon, tag: &str, count: usize) -> Value {
    daemon.moment("template").unwrap();
    let export = daemon.call(DocCall::Export).unwrap();
    let template = export["records"]["moments"]
        .as_array()
        .and_then(|m| m.first())
        .cloned()
        .unwrap();
    let moments: Vec<Value> = (0..count)
        .map(|n| {
            let mut moment = template.clone();
            let mut filler = vec![0u8; 1940];
            rand::Rng::fill(&mut rand::thread_rng(), filler.as_mut_slice());
            let hex: String = filler.iter().map(|b| format!("{b:02x}")).collect();
            moment["id"] = json!(uuid::Uuid::new_v4());
            moment["note"] = json!(format!("{tag}-{n}-{hex}"));
            moment
        })
        .collect();
    let mut data = export;
    data["records"] = json!({ "moments": moments });
    data
}

/// Peak memory of a daemon whose peer is frozen while it takes 10,000 writes. Opt-in
/// (`HEARTH_LONG_TESTS=1`): it prints the figure for the notes rather than asserting a
/// machine-dependent number.
#[test]
fn rss_stays_flat_while_the_peer_is_frozen() {
    if std::env::var_os("HEARTH_LONG_TESTS").is_none() || unavailable() {
        return;
    }
    let lan = Lan::create("rss", 2, Link::Ipv4).unwrap();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (a, b) = paired_on(&lan, &dirs);
    let rss = |d: &TestDaemon| -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid().unwrap())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    };
    signal(&b, "STOP");
    let mut client = a.client().unwrap();
    for n in 0..10_000u32 {
        if n % 2000 == 0 {
            let (now, peak) = rss(&a);
            eprintln!("after {n} writes: RSS {now} KiB, peak {peak} KiB");
        }
        client
            .call(DocCall::MomentAdd(hearth_api::MomentParams {
                kind: hearth_core::model::MomentKind::Laugh,
                started_by: None,
                note: Some(format!("frozen-{n}")),
                at: hearth_api::At::default(),
            }))
            .unwrap();
    }
    let (now, peak) = rss(&a);
    eprintln!("after 10000 writes with the peer frozen: RSS {now} KiB, peak {peak} KiB");
    signal(&b, "CONT");
    let back = Instant::now();
    wait_converged(&[&a, &b], "household").unwrap();
    eprintln!("the thawed peer caught up in {:?}", back.elapsed());
}
