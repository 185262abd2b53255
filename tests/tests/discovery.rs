//! Discovery end to end through the static board: real daemons pair and find each
//! other again without ever being given an address, and nothing goes on any network
//! but loopback.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use hearth_api::client::{Client, ClientError};
use hearth_api::{At, DocCall, MomentParams, NetCall};
use hearth_core::model::MomentKind;
use hearth_tests::harness::{wait_converged, DaemonOptions, TestDaemon, TestDiscovery};
use serde_json::Value;

fn on_board(data_dir: &Path, board: &Path) -> TestDaemon {
    TestDaemon::start_opts(
        data_dir,
        &DaemonOptions {
            listen: "127.0.0.1:0".into(),
            discovery: TestDiscovery::Board(board.to_path_buf()),
            ..DaemonOptions::default()
        },
    )
    .unwrap()
}

fn moment(d: &TestDaemon, note: &str) {
    d.call(DocCall::MomentAdd(MomentParams {
        kind: MomentKind::Laugh,
        started_by: None,
        note: Some(note.into()),
        at: At::default(),
    }))
    .unwrap();
}

/// `pair invite` on one, `pair join CODE` with no address on the other.
fn pair_without_address(inviter: &TestDaemon, joiner: &TestDaemon) -> Value {
    let invite = inviter
        .call(NetCall::PairInvite {
            timeout_secs: Some(60),
            own_device: false,
        })
        .unwrap();
    let code = invite["code"].as_str().unwrap().to_string();
    let socket = inviter.paths.socket.clone();
    let waiter =
        std::thread::spawn(move || Client::connect(&socket).unwrap().call(NetCall::PairWait));
    let joined = joiner
        .call(NetCall::PairJoin {
            code,
            addr: None,
            merge: false,
        })
        .unwrap();
    waiter.join().unwrap().unwrap();
    joined
}

#[test]
fn two_daemons_pair_and_refind_each_other_with_no_address() {
    let board = tempfile::tempdir().unwrap();
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let mut a = on_board(dir_a.path(), board.path());
    let b = on_board(dir_b.path(), board.path());
    a.init("Ada").unwrap();
    b.init("Bo").unwrap();

    // 1. Pairing finds the inviter on the board from the code alone.
    let joined = pair_without_address(&a, &b);
    assert_eq!(joined["paired"], true);

    // 2. They sync.
    moment(&a, "found you");
    wait_converged(&[&a, &b], "household").unwrap();

    // 3. Ada's device restarts on a new port and forgets every address it knew; Bo's
    //    remembered address for it is now stale. Discovery alone brings them together.
    a.stop().unwrap();
    std::fs::remove_file(dir_a.path().join("peers.hearth")).ok();
    moment(&b, "while you were away");
    a = on_board(dir_a.path(), board.path());
    wait_converged(&[&a, &b], "household").unwrap();

    // 4. The board held nothing but labels.
    for entry in std::fs::read_dir(board.path()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let label = name.strip_suffix(".addrs").unwrap_or(&name);
        assert!(
            hearthd::discovery::token::parse_label(label).is_some(),
            "{name} is not a label"
        );
    }
    a.stop().unwrap();
    let mut b = b;
    b.stop().unwrap();
    // Goodbyes: both withdrew their labels on the way out.
    let left: Vec<_> = std::fs::read_dir(board.path()).unwrap().collect();
    assert!(left.is_empty(), "labels left on the board: {left:?}");
}

#[test]
fn join_without_address_and_without_discovery_says_what_to_do() {
    let a = TestDaemon::start().unwrap();
    a.init("Ada").unwrap();
    let err = a.call(NetCall::PairJoin {
        code: "4-amber-orbit-lantern".into(),
        addr: None,
        merge: false,
    });
    let Err(ClientError::Api(err)) = err else {
        panic!("expected a refusal, got {err:?}");
    };
    assert!(err.message.contains("discovery is off"), "{err:?}");
    assert!(err.hint.unwrap_or_default().contains("--addr"));
}

#[test]
fn join_finds_nobody_with_a_number_nobody_announces() {
    let board = tempfile::tempdir().unwrap();
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let a = on_board(dir_a.path(), board.path());
    let b = on_board(dir_b.path(), board.path());
    a.init("Ada").unwrap();
    b.init("Bo").unwrap();
    let code = a
        .call(NetCall::PairInvite {
            timeout_secs: Some(60),
            own_device: false,
        })
        .unwrap()["code"]
        .as_str()
        .unwrap()
        .to_string();
    // The same words with another number: nobody announces that number.
    let (number, words) = code.split_once('-').unwrap();
    let other = if number == "7" { "8" } else { "7" };
    let started = std::time::Instant::now();
    let err = b
        .call(NetCall::PairJoin {
            code: format!("{other}-{words}"),
            addr: None,
            merge: false,
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("no device on this network"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    // The invite was not touched: nobody connected to it.
    assert!(a.status().unwrap().peers.is_empty());
}
