//! Pairing and sync between real daemons over QUIC on loopback.
#![allow(clippy::unwrap_used)]

use hearth_api::client::ClientError;
use hearth_api::{CheckinParams, DocCall, ErrorCode, Event, NetCall};
use hearth_tests::harness::{pair, pair_same_person, wait_converged, wait_for_event, TestDaemon};
use serde_json::Value;

fn moment(d: &TestDaemon, note: &str) -> Value {
    d.moment(note).unwrap()
}

fn notes(d: &TestDaemon) -> Vec<String> {
    d.notes().unwrap()
}

fn two_paired() -> (TestDaemon, TestDaemon) {
    hearth_tests::harness::two_paired().unwrap()
}

#[test]
fn two_daemons_pair_write_while_apart_and_converge() {
    let (mut a, mut b) = two_paired();
    // 1. Both write while connected and converge.
    moment(&a, "a-1");
    moment(&b, "b-1");
    wait_converged(&[&a, &b], "household").unwrap();
    assert_eq!(notes(&a), vec!["a-1", "b-1"]);

    // 2. Apart: B is down while A writes, then A is down while B writes.
    b.stop().unwrap();
    moment(&a, "a-2");
    a.restart(false).unwrap();
    // Restart B on its directory: it dials A at A's remembered address.
    let mut b2 = TestDaemon::start_in(&b.paths.data_dir).unwrap();
    moment(&b2, "b-2");
    wait_converged(&[&a, &b2], "household").unwrap();
    assert_eq!(notes(&a), vec!["a-1", "a-2", "b-1", "b-2"]);
    assert_eq!(notes(&a), notes(&b2));
    b2.stop().unwrap();
    a.stop().unwrap();
}

#[test]
fn private_entries_never_reach_the_partner() {
    let (a, b) = two_paired();
    b.call(DocCall::CheckinAdd(CheckinParams {
        battery: 20,
        note: Some("only for me".into()),
        visibility: Some(hearth_core::model::Visibility::Private),
        ..Default::default()
    }))
    .unwrap();
    b.call(DocCall::CheckinAdd(CheckinParams {
        battery: 30,
        note: Some("for us both".into()),
        ..Default::default()
    }))
    .unwrap();
    wait_converged(&[&a, &b], "household").unwrap();
    assert_eq!(notes(&a), vec!["for us both"]);
    assert_eq!(notes(&b), vec!["for us both", "only for me"]);
    // A's store holds no document of B's person at all.
    let b_person = b.status().unwrap().person.unwrap().id;
    let a_docs: Vec<String> = std::fs::read_dir(a.paths.docs())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        !a_docs.iter().any(|d| d.contains(&b_person)),
        "A holds {a_docs:?}"
    );
    assert!(a
        .status()
        .unwrap()
        .documents
        .iter()
        .all(|d| !d.id.contains(&b_person)));
}

#[test]
fn a_change_reaches_the_partner_as_an_event() {
    let (a, b) = two_paired();
    wait_converged(&[&a, &b], "household").unwrap();
    let mut events = b.subscribe().unwrap();
    moment(&a, "hello");
    wait_for_event(
        &mut events,
        |e| matches!(e, Event::DocChanged { doc, remote: true, .. } if doc == "household"),
    )
    .unwrap();
    assert_eq!(notes(&b), vec!["hello"]);
}

#[test]
fn three_daemons_converge_through_the_one_they_share() {
    let a = TestDaemon::start().unwrap();
    let b = TestDaemon::start().unwrap();
    let c = TestDaemon::start().unwrap();
    a.init("Ada").unwrap();
    b.init("Bo").unwrap();
    c.init("Cy").unwrap();
    pair(&a, &b).unwrap();
    // A household holds two people: the third daemon is another device of Ada's.
    pair_same_person(&a, &c).unwrap();
    moment(&b, "from b");
    moment(&c, "from c");
    moment(&a, "from a");
    wait_converged(&[&a, &b, &c], "household").unwrap();
    assert_eq!(notes(&b), vec!["from a", "from b", "from c"]);
    assert_eq!(notes(&b), notes(&c));
}

#[test]
fn a_wrong_code_burns_the_invite() {
    let a = TestDaemon::start().unwrap();
    let b = TestDaemon::start().unwrap();
    a.init("Ada").unwrap();
    b.init("Bo").unwrap();
    let invite = a
        .call(NetCall::PairInvite {
            timeout_secs: Some(60),
            own_device: false,
        })
        .unwrap();
    let code = invite["code"].as_str().unwrap().to_string();
    let addr = invite["addresses"][0].as_str().unwrap().to_string();
    let socket = a.paths.socket.clone();
    let waiter = std::thread::spawn(move || {
        hearth_api::client::Client::connect(&socket)
            .unwrap()
            .call(NetCall::PairWait)
    });
    // Same number and words in another order: a well-formed, wrong guess.
    let parts: Vec<&str> = code.split('-').collect();
    let wrong = format!("{}-{}-{}-{}", parts[0], parts[3], parts[2], parts[1]);
    let err = b
        .call(NetCall::PairJoin {
            code: wrong,
            addr: Some(addr.clone()),
            merge: false,
        })
        .unwrap_err();
    assert!(matches!(err, ClientError::Api(_)), "{err}");
    let waited = waiter.join().unwrap().unwrap_err();
    match waited {
        ClientError::Api(e) => assert!(e.message.contains("did not match"), "{}", e.message),
        other => panic!("unexpected {other}"),
    }
    // The right code no longer works: the invite is gone.
    let err = b
        .call(NetCall::PairJoin {
            code,
            addr: Some(addr),
            merge: false,
        })
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Api(ref e) if e.code == ErrorCode::Invalid),
        "{err}"
    );
    assert!(b.status().unwrap().peers.is_empty());
}

#[test]
fn a_device_with_entries_needs_merge_to_join() {
    let a = TestDaemon::start().unwrap();
    let b = TestDaemon::start().unwrap();
    a.init("Ada").unwrap();
    b.init("Bo").unwrap();
    moment(&b, "mine");
    let invite = a
        .call(NetCall::PairInvite {
            timeout_secs: Some(60),
            own_device: false,
        })
        .unwrap();
    let err = b
        .call(NetCall::PairJoin {
            code: invite["code"].as_str().unwrap().into(),
            addr: invite["addresses"][0].as_str().map(String::from),
            merge: false,
        })
        .unwrap_err();
    match err {
        ClientError::Api(e) => assert!(e.hint.unwrap_or_default().contains("--merge")),
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn a_peer_killed_mid_sync_converges_after_restart() {
    let (a, mut b) = two_paired();
    wait_converged(&[&a, &b], "household").unwrap();
    for i in 0..50 {
        moment(&a, &format!("burst-{i:02}"));
        if i == 10 {
            b.restart(true).unwrap();
        }
    }
    wait_converged(&[&a, &b], "household").unwrap();
    assert_eq!(notes(&a), notes(&b));
    assert_eq!(notes(&b).len(), 50);
}

fn sync_bytes(d: &TestDaemon) -> u64 {
    d.status()
        .unwrap()
        .peers
        .iter()
        .map(|p| p.bytes_received + p.bytes_sent)
        .sum()
}

/// Starts B again on its directory and QUIC port and waits until its household is in
/// sync with A; returns the running daemon and the sync bytes it sent and received.
fn start_and_measure(dir: &std::path::Path, listen: &str) -> (TestDaemon, u64) {
    let fresh = TestDaemon::start_with(dir, listen).unwrap();
    let mut events = fresh.subscribe().unwrap();
    wait_for_event(
        &mut events,
        |e| matches!(e, Event::SyncCompleted { doc, .. } if doc == "household"),
    )
    .unwrap();
    let bytes = sync_bytes(&fresh);
    (fresh, bytes)
}

#[test]
fn a_restart_resumes_from_the_persisted_sync_state() {
    let (a, mut b) = two_paired();
    // A long history, imported in one request so the test stays quick: starting over
    // costs a summary of every change, resuming only the heads both already share.
    let me = a.status().unwrap().person.unwrap().id;
    let moments: Vec<Value> = (0..3000)
        .map(|i| {
            serde_json::json!({
                "id": uuid::Uuid::from_u128(0x5eed_0000 + i).to_string(),
                "kind": "talk",
                "started_by": me,
                "at": 1_700_000_000_000_i64 + i as i64 * 3_600_000,
                "date": "2023-11-14",
                "utc_offset_min": 0,
            })
        })
        .collect();
    a.call(DocCall::Import {
        data: serde_json::json!({
            "format": "hearth-export",
            "version": 1,
            "records": { "moments": moments },
        }),
    })
    .unwrap();
    wait_converged(&[&a, &b], "household").unwrap();
    let dir = b.paths.data_dir.clone();
    let listen = b.addr().unwrap();
    // `b` keeps the temp dir alive; the restarts run in their own handles.
    b.stop().unwrap();
    let (mut resumed, resumed_bytes) = start_and_measure(&dir, &listen);
    resumed.stop().unwrap();
    std::fs::remove_dir_all(dir.join("sync")).unwrap();
    let (again, scratch_bytes) = start_and_measure(&dir, &listen);
    assert!(
        resumed_bytes * 4 < scratch_bytes,
        "resuming took {resumed_bytes} bytes, starting over {scratch_bytes}"
    );
    wait_converged(&[&a, &again], "household").unwrap();
}
