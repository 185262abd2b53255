//! Only paired devices get in, and the logs give nothing away.
//!
//! * A replayed pairing transcript fails, and so does an invite code used a second time.
//! * An initialised but unpaired daemon that dials a household device is refused at the
//!   handshake and never gets its data.
//! * The PII test: every log line of a whole session at trace level (init with a
//!   passphrase, unlock, writes of every kind, pairing, sync, a wrong code, a stranger
//!   knocking, hostile control requests) must hold no display name, note, ledger title,
//!   passphrase, pairing code or key material (as in str0m's `tests/pii.rs`).
//!
//! Refusals of unknown, revoked and stolen-certificate keys at the TLS layer are tested
//! next to the transport (`daemon/src/transport/tests.rs`); socket modes and other uids
//! in `tests/socket.rs`.
#![allow(clippy::unwrap_used)]

mod common;

use common::{invite, invite_for, notes, secrets_of, wait_for_invite, write, RawPeer};
use hearth_api::client::ClientError;
use hearth_api::{At, Call, DaemonCall, DocCall, MomentParams, NetCall};
use hearth_core::model::MomentKind;
use hearth_tests::harness::{wait_converged, DaemonOptions, TestDaemon};
use serde_json::json;

/// A replayed transcript of a successful pairing, sent to a new invite, fails and
/// burns that invite; the original code, used again, is refused outright.
#[test]
fn a_replayed_pairing_transcript_and_a_reused_code_fail() {
    let a = TestDaemon::start().unwrap();
    a.init("Ada").unwrap();

    // 1. An honest joiner (driven by the test) pairs and records what it sent.
    let (code, addr) = invite(&a);
    let waiter = wait_for_invite(&a);
    let joiner = RawPeer::new(None, &[]);
    let (outcome, transcript) = joiner.join(&addr, &code, "Replayed Rosalind");
    outcome.unwrap();
    waiter.join().unwrap().unwrap();
    let devices = a.status().unwrap().peers.len();
    assert_eq!(devices, 1);

    // 2. The same bytes replayed to a fresh invite, by the same device and by another.
    //    Both people are in now, so the fresh invites are for Ada's own devices.
    for replayer in [&joiner, &RawPeer::new(None, &[])] {
        let (_, addr) = invite_for(&a, true);
        let waiter = wait_for_invite(&a);
        replayer.send_and_wait_close(&addr, hearthd::transport::Alpn::Pair, &transcript);
        match waiter.join().unwrap() {
            Err(ClientError::Api(e)) => {
                assert!(e.message.contains("did not match"), "{}", e.message)
            }
            other => panic!("a replayed transcript was not refused: {other:?}"),
        }
    }

    // 3. The first code again, now that its invite is used: refused before any
    //    handshake (no invite is open).
    let (outcome, _) = RawPeer::new(None, &[]).join(&addr, &code, "Late Larry");
    assert!(outcome.is_err(), "a used code paired again");
    let b = TestDaemon::start().unwrap();
    b.init("Bo").unwrap();
    let err = b
        .call(NetCall::PairJoin {
            code: code.clone(),
            addr: Some(addr.clone()),
            merge: false,
        })
        .unwrap_err();
    assert!(matches!(err, ClientError::Api(_)), "{err}");
    assert_eq!(a.status().unwrap().peers.len(), devices);
    assert!(b.status().unwrap().peers.is_empty());
}

/// A device that was never paired dials a household device and never sees a record.
///
/// A daemon only dials keys on its own roster, so an unpaired daemon gives up on the
/// household device's certificate itself, before showing its own; the household
/// device sees a handshake that failed. A stranger that does accept the household
/// device's certificate (anyone who dials once has seen it) is refused by the
/// listener at the handshake, logged with its device id.
#[test]
fn an_unpaired_device_is_refused_and_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = TestDaemon::start_opts(
        dir.path(),
        &DaemonOptions {
            log: Some("info,hearthd::net=debug".into()),
            ..DaemonOptions::default()
        },
    )
    .unwrap();
    let c = TestDaemon::start().unwrap();
    a.init("Ada").unwrap();
    c.init("Cy").unwrap();
    write(&a, "household only").unwrap();
    c.call(NetCall::PeersAdd {
        addr: a.addr().unwrap(),
    })
    .unwrap();
    c.call(NetCall::SyncNow).unwrap();
    a.wait_for_log("an incoming connection was refused")
        .unwrap();
    assert!(notes(&c).is_empty());
    let people: Vec<String> = c
        .status()
        .unwrap()
        .people
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(people, vec!["Cy".to_string()]);
    assert!(a.status().unwrap().peers.is_empty());
    assert!(c.status().unwrap().peers.is_empty());

    // The stranger that trusts A's key, with valid frames ready to send. Without the
    // household secret it cannot tell A's one-time certificate from anyone's, refuses
    // it, and never gets as far as showing its own.
    let a_secrets = secrets_of(&a.paths.data_dir);
    let a_key = a_secrets.device_public_key();
    let stranger = RawPeer::new(None, &[a_key]);
    let stranger_id = hearth_core::identity::DeviceId::from_public_key(&stranger.public_key());
    let ended = stranger.send_and_wait_close(
        &a.addr().unwrap(),
        hearthd::transport::Alpn::Sync,
        &[0, 0, 0, 1, 0xa0],
    );
    assert!(matches!(ended, common::Ended::Other(_)), "{ended:?}");

    // One that holds the household secret (a removed device, say) but whose key is not
    // on the roster shows its certificate and is refused at the handshake, by id.
    let insider = RawPeer::new(None, &[a_key]).in_household(*a_secrets.household_secret().unwrap());
    let insider_id = hearth_core::identity::DeviceId::from_public_key(&insider.public_key());
    let ended = insider.send_and_wait_close(
        &a.addr().unwrap(),
        hearthd::transport::Alpn::Sync,
        &[0, 0, 0, 1, 0xa0],
    );
    assert!(matches!(ended, common::Ended::Other(_)), "{ended:?}");
    let line = a
        .wait_for_log("refused an incoming connection: the device is not allowed to connect")
        .unwrap();
    assert!(line.contains(&insider_id.to_string()), "{line}");
    assert!(
        a.log_lines()
            .iter()
            .all(|l| !l.contains(&stranger_id.to_string())),
        "A never saw the stranger's certificate"
    );
    assert_eq!(notes(&a), ["household only".to_string()].into());
}

/// A stranger who dials while an invite is open (it cannot know the code) is shown a
/// one-time key, never the inviter's device key, and a new one each time.
#[test]
fn a_stranger_who_dials_an_open_invite_sees_no_device_key() {
    let a = TestDaemon::start().unwrap();
    a.init("Ada").unwrap();
    let a_key = secrets_of(&a.paths.data_dir).device_public_key();
    let mut shown = std::collections::BTreeSet::new();
    for _ in 0..2 {
        let (_code, addr) = invite(&a);
        let stranger = RawPeer::new(None, &[]);
        let key = stranger
            .shown_key(&addr, hearthd::transport::Alpn::Pair)
            .unwrap();
        assert_ne!(key, a_key);
        shown.insert(key);
    }
    assert_eq!(shown.len(), 2, "each dial met a new key");
}

/// Everything a log must never hold, with a label for the failure message.
struct Secrets(Vec<(String, String)>);

impl Secrets {
    fn add(&mut self, label: &str, value: impl Into<String>) {
        let value = value.into();
        assert!(value.len() >= 6, "{label} is too short to search for");
        self.0.push((label.to_string(), value));
    }

    /// Adds key bytes in every encoding a log might show them in.
    fn add_key(&mut self, label: &str, bytes: &[u8]) {
        use data_encoding::{BASE32_NOPAD, BASE64, BASE64URL_NOPAD, HEXLOWER, HEXUPPER};
        self.add(&format!("{label} (hex)"), HEXLOWER.encode(bytes));
        self.add(&format!("{label} (HEX)"), HEXUPPER.encode(bytes));
        self.add(
            &format!("{label} (base64)"),
            BASE64.encode(bytes).trim_end_matches('=').to_string(),
        );
        self.add(
            &format!("{label} (base64url)"),
            BASE64URL_NOPAD.encode(bytes),
        );
        self.add(&format!("{label} (base32)"), BASE32_NOPAD.encode(bytes));
        // Debug output of a byte array: "[17, 34, ...]".
        let debug = format!("{:?}", &bytes[..8.min(bytes.len())]);
        self.add(
            &format!("{label} (debug)"),
            debug.trim_end_matches(']').to_string(),
        );
    }

    fn check(&self, who: &str, lines: &[String]) {
        for line in lines {
            for (label, value) in &self.0 {
                assert!(
                    !line.contains(value.as_str()),
                    "{who}'s log holds the {label}: {line}"
                );
            }
        }
    }
}

fn traced() -> DaemonOptions {
    DaemonOptions {
        log: Some("trace".into()),
        ..DaemonOptions::default()
    }
}

#[test]
fn logs_hold_no_names_notes_titles_passphrases_codes_or_keys() {
    let mut secrets = Secrets(Vec::new());
    let names = ["Wilhelmina Quartz", "Bartholomew Zephyr"];
    let passphrase = "correct horse battery staple 7731";
    let note = "I felt unseen when the dishes piled up";
    let ask = "could you take the Tuesday pickups";
    let title = "Schedule the pediatrician visits";
    let good_enough = "booked within two weeks of the letter";
    let reflection = "we still laugh at the same films";
    let moment = "stargazing on the balcony at midnight";
    let thanks = "thank you for noticing the quiet work";
    let done_note = "called the clinic twice before noon";
    let device_names = ["Wilhelmina's quill laptop", "Bartholomew's zither phone"];
    for (label, value) in [
        ("display name", names[0]),
        ("display name", names[1]),
        ("passphrase", passphrase),
        ("check-in note", note),
        ("check-in ask", ask),
        ("ledger title", title),
        ("good-enough standard", good_enough),
        ("reflection note", reflection),
        ("moment note", moment),
        ("acknowledgment note", thanks),
        ("done note", done_note),
        ("device name", device_names[0]),
        ("device name", device_names[1]),
    ] {
        secrets.add(label, value);
    }
    // Words unusual enough that any appearance is a leak, not a coincidence.
    for word in [
        "Wilhelmina",
        "Bartholomew",
        "pediatrician",
        "stargazing",
        "unseen",
    ] {
        secrets.add("word from a private text", word);
    }

    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let mut a = TestDaemon::start_opts(dir_a.path(), &traced()).unwrap();
    let b = TestDaemon::start_opts(dir_b.path(), &traced()).unwrap();
    let mut logs: Vec<(String, Vec<String>)> = Vec::new();

    // 1. A starts with a passphrase and is restarted, so it unlocks.
    a.call(DaemonCall::Init {
        name: names[0].into(),
        device_name: Some(device_names[0].into()),
        passphrase: Some(passphrase.into()),
    })
    .unwrap();
    b.call(DaemonCall::Init {
        name: names[1].into(),
        device_name: Some(device_names[1].into()),
        passphrase: None,
    })
    .unwrap();
    a.stop().unwrap();
    logs.push(("A before restart".into(), a.log_lines()));
    let mut a = TestDaemon::start_opts(dir_a.path(), &traced()).unwrap();
    let err = a
        .call(DaemonCall::Unlock {
            passphrase: "wrong horse".into(),
        })
        .unwrap_err();
    assert!(matches!(err, ClientError::Api(_)));
    a.call(DaemonCall::Unlock {
        passphrase: passphrase.into(),
    })
    .unwrap();

    // 2. A wrong code first (burns that invite), then the real pairing.
    let (code, addr) = invite(&a);
    let waiter = wait_for_invite(&a);
    let parts: Vec<&str> = code.split('-').collect();
    // The last word swapped for another one: always a different code, unlike a
    // reordering, which is the same code when the words repeat.
    let other = if parts[3] == "acorn" {
        "amber"
    } else {
        "acorn"
    };
    let wrong = format!("{}-{}-{}-{other}", parts[0], parts[1], parts[2]);
    let _ = b.call(NetCall::PairJoin {
        code: wrong.clone(),
        addr: Some(addr),
        merge: false,
    });
    let _ = waiter.join();
    secrets.add("burnt pairing code", code);
    secrets.add("wrong pairing code", wrong);
    let (code, addr) = invite(&a);
    secrets.add("pairing code", code.clone());
    let waiter = wait_for_invite(&a);
    b.call(NetCall::PairJoin {
        code,
        addr: Some(addr),
        merge: false,
    })
    .unwrap();
    waiter.join().unwrap().unwrap();

    // 3. Writes of every kind on both sides, synced.
    let call = |d: &TestDaemon, method: &str, params: serde_json::Value| {
        let call: Call =
            serde_json::from_value(json!({ "method": method, "params": params })).unwrap();
        d.call(call)
    };
    call(
        &b,
        "checkin.add",
        json!({
            "battery": 22, "signs": {"dread": 3}, "basics": {"sleep": "no"},
            "note": note, "ask": ask, "visibility": "shared"
        }),
    )
    .unwrap();
    call(
        &b,
        "checkin.add",
        json!({
            "battery": 10, "note": format!("{note} (private)"), "visibility": "private"
        }),
    )
    .unwrap();
    call(
        &b,
        "reflect.add",
        json!({
            "energy": "yes", "safe": "unsure", "aligned": "yes", "note": reflection,
            "visibility": "shared"
        }),
    )
    .unwrap();
    let item = call(
        &a,
        "ledger.add",
        json!({
            "title": title, "domain": "parenting", "labour": "cognitive", "invisible": true,
            "good_enough": good_enough, "weight": 3
        }),
    )
    .unwrap();
    let item_id = item["id"].as_str().unwrap().to_string();
    let done = call(
        &a,
        "ledger.done",
        json!({"item": item_id, "note": done_note}),
    )
    .unwrap();
    call(&b, "moment.add", json!({"kind": "quiet", "note": moment})).unwrap();
    wait_converged(&[&a, &b], "household").unwrap();
    call(
        &b,
        "ledger.ack",
        json!({
            "target_kind": "done", "target": done["id"], "kind": "thanks", "note": thanks
        }),
    )
    .unwrap();
    call(
        &b,
        "ledger.handoff",
        json!({
            "item": item_id, "stage": "plan", "note": format!("{ask} instead")
        }),
    )
    .unwrap();
    wait_converged(&[&a, &b], "household").unwrap();
    let _ = a.call(DocCall::Insights {
        weeks: Some(4),
        include_private: true,
        utc_offset_min: 0,
    });
    let _ = a.call(DocCall::Export);

    // 4. Failures that echo user text: bad requests carrying private words, and an
    //    import that conflicts.
    let _ = a.call(DocCall::MomentAdd(MomentParams {
        kind: MomentKind::Other,
        started_by: Some(format!("{} stargazing", names[1])),
        note: Some(moment.into()),
        at: At::default(),
    }));
    let _ = a.call(DocCall::LedgerShow {
        id: "pediatrician".into(),
    });
    let mut export = a.call(DocCall::Export).unwrap();
    export["records"]["moments"][0]["note"] = serde_json::json!("unseen rewrite");
    let _ = a.call(DocCall::Import { data: export });

    // 5. A stranger knocks.
    let stranger = RawPeer::new(None, &[]);
    let _ = stranger.send_and_wait_close(
        &a.addr().unwrap(),
        hearthd::transport::Alpn::Sync,
        &[0, 0, 0, 1, 0xa0],
    );

    // 6. A crash and restart of B (it reloads and resyncs), then a clean stop of all.
    let listen_b = b.addr().unwrap();
    let mut b = b;
    b.kill();
    logs.push(("B before its crash".into(), b.log_lines()));
    let mut b = TestDaemon::start_opts(
        dir_b.path(),
        &DaemonOptions {
            listen: listen_b,
            ..traced()
        },
    )
    .unwrap();
    write(&a, "one more after the crash").unwrap();
    wait_converged(&[&a, &b], "household").unwrap();
    a.stop().unwrap();
    b.stop().unwrap();
    logs.push(("A".into(), a.log_lines()));
    logs.push(("B".into(), b.log_lines()));

    // Key material, read back from the identity files.
    for (who, dir, pass) in [
        ("A", dir_a.path(), Some(passphrase)),
        ("B", dir_b.path(), None),
    ] {
        let bytes = std::fs::read(dir.join("identity.age")).unwrap();
        let s = hearth_core::secrets::DeviceSecrets::from_file_bytes(&bytes, pass).unwrap();
        secrets.add_key(&format!("{who}'s device private key"), s.device_pkcs8());
        secrets.add_key(
            &format!("{who}'s device public key"),
            &s.device_public_key(),
        );
        if let Some(h) = s.household_secret() {
            secrets.add_key(&format!("{who}'s first household secret"), h);
        }
        // A joined device keeps the household's secret epochs sealed in their own file.
        if let Ok(sealed) = std::fs::read(dir.join("household-secret.hearth")) {
            let plain = hearth_core::envelope::open(s.age_identity(), &sealed).unwrap();
            let epochs = hearth_core::epochs::Epochs::decode(&plain).unwrap();
            for epoch in epochs.all() {
                secrets.add_key(
                    &format!("{who}'s household secret of epoch {}", epoch.number),
                    epoch.secret.as_slice(),
                );
            }
        }
        use age::secrecy::ExposeSecret;
        let age_secret = s.age_identity().to_string();
        secrets.add(&format!("{who}'s age identity"), age_secret.expose_secret());
        secrets.add(
            &format!("{who}'s age recipient"),
            s.age_recipient().to_string(),
        );
    }

    let total: usize = logs.iter().map(|(_, l)| l.len()).sum();
    assert!(
        total > 100,
        "only {total} log lines at trace level: is logging on?"
    );
    for (who, lines) in &logs {
        secrets.check(who, lines);
    }
    eprintln!(
        "checked {total} log lines against {} secrets",
        secrets.0.len()
    );
}
