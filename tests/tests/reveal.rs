//! Answers revealed together, between real daemons: the partner's devices hold only
//! ciphertext until both have answered the same day, then both answers open everywhere,
//! and two of the author's devices revealing at once do no harm.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Instant;

use hearth_api::{
    At, BundleCall, CheckinParams, DaemonCall, DocCall, LogParams, MomentParams, NetCall,
    ReflectParams,
};
use hearth_core::model::{Answer, MomentKind, Visibility};
use hearth_core::secrets::DeviceSecrets;
use hearth_tests::harness::{pair, pair_same_person, wait_converged, TestDaemon, EVENT_TIMEOUT};
use hearthd::storage::DocStore;
use serde_json::Value;

const ADA_NOTE: &str = "ada-sealed-note-7f3a";
const ADA_ASK: &str = "ada-sealed-ask-91c2";
const BO_NOTE: &str = "bo-sealed-note-c4d8";
const SHARED_NOTE: &str = "a-shared-moment-0b6e";
/// 2026-03-10T20:00:00Z and the next day: fixed dates, so "the same day" is certain.
const DAY1: i64 = 1_773_172_800_000;
const DAY2: i64 = DAY1 + 86_400_000;

fn two_paired() -> (TestDaemon, TestDaemon) {
    let (a, b) = hearth_tests::harness::two_paired().unwrap();
    wait_converged(&[&a, &b], "household").unwrap();
    (a, b)
}

fn sealed_checkin(d: &TestDaemon, note: &str, ask: Option<&str>, at: i64) -> Value {
    d.call(DocCall::CheckinAdd(CheckinParams {
        battery: 30,
        note: Some(note.into()),
        ask: ask.map(String::from),
        visibility: Some(Visibility::RevealTogether),
        at: At {
            at: Some(at),
            utc_offset_min: 0,
        },
        ..Default::default()
    }))
    .unwrap()
}

fn log(d: &TestDaemon) -> Value {
    d.call(DocCall::Log(LogParams::default())).unwrap()
}

/// Everything a person can get out of their daemon: status, log and export, as text.
fn everything_readable(d: &TestDaemon) -> String {
    let status = d.call(DaemonCall::Status).unwrap();
    let export = d.call(DocCall::Export).unwrap();
    format!("{status}\n{}\n{export}", log(d))
}

fn notes(d: &TestDaemon) -> Vec<String> {
    let mut notes: Vec<String> = log(d)
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["record"]["note"].as_str().map(String::from))
        .collect();
    notes.sort();
    notes
}

/// The decrypted bytes of every document in a stopped daemon's store, uncompressed, so
/// a plain-text answer would show up as itself.
fn store_plaintext(data_dir: &Path) -> Vec<u8> {
    let secrets = hearthd::storage::read_secrets(data_dir).unwrap();
    let secrets = DeviceSecrets::from_file_bytes(&secrets, None).unwrap();
    let mut all = Vec::new();
    for entry in std::fs::read_dir(data_dir.join("docs")).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let (_, loaded) = DocStore::open(&dir, secrets.age_identity()).unwrap();
        all.extend(loaded.doc.save_nocompress());
    }
    all
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Waits, on events, until `check` holds for the daemon.
fn wait_until(d: &TestDaemon, what: &str, check: impl Fn(&TestDaemon) -> bool) {
    let mut events = d.subscribe().unwrap();
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while !check(d) {
        assert!(Instant::now() < deadline, "gave up waiting until {what}");
        let _ = events.next_event();
    }
}

#[test]
fn the_partner_holds_only_ciphertext_until_both_answered_then_both_open() {
    let (a, mut b) = two_paired();
    // 1. Ada answers sealed; nothing of hers is there for Bo yet, so it waits.
    let mine = sealed_checkin(&a, ADA_NOTE, Some(ADA_ASK), DAY1);
    assert_eq!(mine["waiting_for_partner"], true);
    assert_eq!(mine["note"], ADA_NOTE);
    a.call(DocCall::MomentAdd(MomentParams {
        kind: MomentKind::Laugh,
        started_by: None,
        note: Some(SHARED_NOTE.into()),
        at: At::default(),
    }))
    .unwrap();
    // Ada reads her own answer, marked as waiting.
    let ada_log = log(&a);
    let own = ada_log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "checkins")
        .unwrap();
    assert_eq!(own["record"]["note"], ADA_NOTE);
    assert!(
        own["summary"].as_str().unwrap().contains("sealed until Bo"),
        "{own}"
    );
    wait_converged(&[&a, &b], "household").unwrap();

    // 2. Bo's daemon: the sealed check-in is listed as such, without its contents.
    let bo_log = log(&b);
    let sealed = bo_log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "checkins")
        .unwrap()
        .clone();
    assert_eq!(sealed["record"]["sealed"], true, "{sealed}");
    assert_eq!(sealed["person"], "Ada");
    assert!(sealed["record"].get("battery").is_none(), "{sealed}");
    assert!(sealed["summary"].as_str().unwrap().contains("sealed"));
    let readable = everything_readable(&b);
    assert!(!readable.contains(ADA_NOTE) && !readable.contains(ADA_ASK));
    assert!(
        readable.contains(SHARED_NOTE),
        "the shared moment reached Bo"
    );
    let export = b.call(DocCall::Export).unwrap();
    assert_eq!(export["records"]["checkins"], Value::Array(vec![]));
    assert_eq!(export["records"]["sealed"].as_array().unwrap().len(), 1);
    let insights = b
        .call(DocCall::Insights {
            weeks: None,
            include_private: true,
            utc_offset_min: 0,
        })
        .unwrap();
    assert!(!insights.to_string().contains(ADA_NOTE));

    // 3. Bo's store, decrypted with Bo's own identity: the shared moment is there in
    // plain text, Ada's answer is not.
    let listen = b.addr().unwrap();
    // Keep the data directory past the first process, which is replaced below.
    let _dir = b.take_dir();
    b.stop().unwrap();
    let bytes = store_plaintext(&b.paths.data_dir);
    assert!(holds(&bytes, SHARED_NOTE), "the search can find text");
    assert!(!holds(&bytes, ADA_NOTE) && !holds(&bytes, ADA_ASK));
    assert!(holds(&bytes, hearth_core::doc::SEALED_TAG));
    assert!(!holds(&bytes, "AGE-SECRET-KEY-"), "no key for it either");
    let b = TestDaemon::start_with(&b.paths.data_dir, &listen).unwrap();

    // 4. Bo answers the same day, sealed too: his opens at once (Ada's is there), and
    // Ada's daemon publishes her key when his answer reaches it.
    let his = b
        .call(DocCall::ReflectAdd(ReflectParams {
            energy: Answer::Yes,
            safe: Answer::Yes,
            aligned: Answer::Unsure,
            note: None,
            visibility: Some(Visibility::Shared),
            at: At {
                at: Some(DAY1 + 3_600_000),
                utc_offset_min: 0,
            },
        }))
        .unwrap();
    assert_eq!(his["visibility"], "shared");
    // A reflection is not an answer to a check-in: still sealed.
    let theirs = sealed_checkin(&b, BO_NOTE, None, DAY1 + 7_200_000);
    assert_eq!(theirs["waiting_for_partner"], false);
    wait_until(&b, "Ada's answer opens on Bo's device", |b| {
        notes(b).contains(&ADA_NOTE.to_string())
    });
    wait_until(&a, "Bo's answer opens on Ada's device", |a| {
        notes(a).contains(&BO_NOTE.to_string())
    });
    wait_converged(&[&a, &b], "household").unwrap();
    for d in [&a, &b] {
        assert_eq!(
            notes(d),
            vec![
                SHARED_NOTE.to_string(),
                ADA_NOTE.to_string(),
                BO_NOTE.to_string()
            ]
        );
        let export = d.call(DocCall::Export).unwrap();
        assert_eq!(export["records"]["sealed"], Value::Array(vec![]));
        let log = log(d);
        let ada = log
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["record"]["note"] == ADA_NOTE)
            .unwrap();
        assert_eq!(ada["record"]["ask"], ADA_ASK);
        assert!(
            ada["summary"]
                .as_str()
                .unwrap()
                .contains("revealed together"),
            "{ada}"
        );
    }
}

#[test]
fn an_author_who_never_answers_keeps_the_other_sealed() {
    let (mut a, mut b) = two_paired();
    sealed_checkin(&a, ADA_NOTE, None, DAY1);
    // Bo writes, but never a check-in for that day: one the day after, a private one the
    // same day (which nobody else can see), and a moment.
    b.call(DocCall::CheckinAdd(CheckinParams {
        battery: 70,
        note: Some("next day".into()),
        at: At {
            at: Some(DAY2),
            utc_offset_min: 0,
        },
        ..Default::default()
    }))
    .unwrap();
    b.call(DocCall::CheckinAdd(CheckinParams {
        battery: 40,
        note: Some("just mine".into()),
        visibility: Some(Visibility::Private),
        at: At {
            at: Some(DAY1),
            utc_offset_min: 0,
        },
        ..Default::default()
    }))
    .unwrap();
    wait_converged(&[&a, &b], "household").unwrap();
    // Restarts re-check what is due; still nothing is.
    a.restart(false).unwrap();
    b.restart(false).unwrap();
    wait_converged(&[&a, &b], "household").unwrap();
    assert!(!everything_readable(&b).contains(ADA_NOTE));
    assert_eq!(notes(&b), vec!["just mine", "next day"]);
    assert_eq!(notes(&a), vec![ADA_NOTE, "next day"]);
    b.stop().unwrap();
    assert!(!holds(&store_plaintext(&b.paths.data_dir), ADA_NOTE));
}

/// Stops `d` and starts it on `listen` having forgotten every address it knew, so it
/// reaches nobody until told.
fn restart_alone(d: &mut TestDaemon, listen: &str) -> TestDaemon {
    d.stop().unwrap();
    let book = d.paths.data_dir.join("peers.hearth");
    if book.exists() {
        std::fs::remove_file(book).unwrap();
    }
    TestDaemon::start_with(&d.paths.data_dir, listen).unwrap()
}

#[test]
fn two_of_the_authors_devices_revealing_at_once_is_harmless() {
    // Ada on `a` and `a2` (her second device), Bo on `b`.
    let mut a = TestDaemon::start().unwrap();
    let mut b = TestDaemon::start().unwrap();
    let mut a2 = TestDaemon::start().unwrap();
    a.init("Ada").unwrap();
    b.init("Bo").unwrap();
    a2.init("Ada").unwrap();
    pair(&a, &b).unwrap();
    pair_same_person(&a, &a2).unwrap();
    a2.call(NetCall::PeersAdd {
        addr: b.addr().unwrap(),
    })
    .unwrap();
    wait_converged(&[&a, &b, &a2], "household").unwrap();

    // 1. Ada answers sealed on one device; her other device gets the key with her
    // private document and reads it too.
    sealed_checkin(&a, ADA_NOTE, None, DAY1);
    wait_until(&a2, "Ada's second device reads her answer", |d| {
        notes(d).contains(&ADA_NOTE.to_string())
    });
    wait_converged(&[&a, &b, &a2], "household").unwrap();

    // 2. Bo answers while Ada's devices are off, and his answer reaches each of them
    // on its own (a bundle each) while they cannot reach each other or Bo: both
    // publish Ada's key.
    let b_listen = b.addr().unwrap();
    let (_a_dir, _b_dir, _a2_dir) = (a.take_dir(), b.take_dir(), a2.take_dir());
    a.stop().unwrap();
    a2.stop().unwrap();
    b.call(DocCall::CheckinAdd(CheckinParams {
        battery: 55,
        note: Some(BO_NOTE.into()),
        at: At {
            at: Some(DAY1),
            utc_offset_min: 0,
        },
        ..Default::default()
    }))
    .unwrap();
    let bundle = b.call(BundleCall::BundleExport { all: false }).unwrap();
    assert_eq!(bundle["not_readable_by"], Value::Array(vec![]), "{bundle}");
    assert_eq!(bundle["sealed_for"].as_array().unwrap().len(), 2);
    b.stop().unwrap();
    let a = restart_alone(&mut a, "127.0.0.2:0");
    let a2 = restart_alone(&mut a2, "127.0.0.3:0");
    for d in [&a, &a2] {
        let merged = d
            .call(BundleCall::BundleImport {
                bundle: bundle["bundle"].as_str().unwrap().into(),
            })
            .unwrap();
        assert!(merged["new_changes"].as_u64().unwrap() >= 1, "{merged}");
    }
    for d in [&a, &a2] {
        wait_until(d, "each of Ada's devices publishes on its own", |d| {
            d.call(DocCall::Export).unwrap()["records"]["checkins"]
                .as_array()
                .unwrap()
                .len()
                == 2
                && log(d).to_string().contains("revealed together")
        });
    }
    assert_ne!(
        a.heads("household").unwrap(),
        a2.heads("household").unwrap(),
        "the two publications are separate changes"
    );

    // 3. Together again, through Bo: one history, both answers open everywhere, and
    // nothing keeps rewriting the key.
    let b = TestDaemon::start_with(&b.paths.data_dir, &b_listen).unwrap();
    for d in [&a, &a2] {
        d.call(NetCall::PeersAdd {
            addr: b_listen.clone(),
        })
        .unwrap();
    }
    wait_converged(&[&a, &b, &a2], "household").unwrap();
    let heads = a.heads("household").unwrap();
    for d in [&a, &b, &a2] {
        assert_eq!(notes(d), vec![ADA_NOTE, BO_NOTE]);
        assert_eq!(
            d.call(DocCall::Export).unwrap()["records"]["sealed"],
            Value::Array(vec![])
        );
    }
    a.call(NetCall::SyncNow).unwrap();
    wait_converged(&[&a, &b, &a2], "household").unwrap();
    assert_eq!(a.heads("household").unwrap(), heads);
}

/// A date nobody in these tests answers for except as noted: 2026-03-10.
const DAY1_DATE: &str = "2026-03-10";

/// Ada's own check-in entry in her log.
fn own_entry(d: &TestDaemon, note: &str) -> Value {
    log(d)
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["record"]["note"] == note)
        .cloned()
        .unwrap()
}

#[test]
fn an_answer_under_a_person_nobody_vouches_for_opens_nothing_by_import_or_sync() {
    // Ada, and Bo whose device runs a modified client.
    let a = TestDaemon::start().unwrap();
    let b = TestDaemon::start_rogue().unwrap();
    a.init("Ada").unwrap();
    b.init("Bo").unwrap();
    pair(&a, &b).unwrap();
    wait_converged(&[&a, &b], "household").unwrap();
    sealed_checkin(&a, ADA_NOTE, None, DAY1);
    wait_converged(&[&a, &b], "household").unwrap();
    let stranger = "00000000-0000-4000-8000-00000000dead";

    // 1. By import: a reveal-together check-in for that day "by" a made-up person, with
    // a person record to go with it. Refused whole, naming the record.
    let file = serde_json::json!({
        "format": "hearth-export", "version": 1,
        "records": {
            "people": [{ "id": stranger, "name": "Someone", "joined_at": DAY1 }],
            "checkins": [{
                "id": "00000000-0000-4000-8000-00000000fa01", "author": stranger,
                "at": DAY1, "date": DAY1_DATE, "utc_offset_min": 0,
                "battery": 50, "visibility": "reveal-together"
            }],
        }
    });
    let err = b
        .call(DocCall::Import { data: file })
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("checkins 00000000-0000-4000-8000-00000000fa01"),
        "{err}"
    );
    assert!(err.contains(&format!("people {stranger}")), "{err}");

    // 2. Over sync: the same answer written raw into the household document.
    b.call(DocCall::RoguePut {
        collection: "checkins".into(),
        key: "00000000-0000-4000-8000-00000000fa02".into(),
        fields: serde_json::json!({
            "author": stranger, "date": DAY1_DATE, "at": DAY1, "utc_offset_min": 0,
            "battery": 50, "visibility": "shared"
        })
        .as_object()
        .unwrap()
        .clone(),
    })
    .unwrap();
    taken_in_or_refused(&a, &b);
    a.call(NetCall::SyncNow).unwrap();
    taken_in_or_refused(&a, &b);

    // Ada's answer is still sealed: Bo reads nothing of it, and Ada's log says it waits.
    assert!(!everything_readable(&b).contains(ADA_NOTE));
    assert!(log(&b).to_string().contains("\"sealed\":true"));
    let own = own_entry(&a, ADA_NOTE);
    assert!(
        own["summary"].as_str().unwrap().contains("sealed until Bo"),
        "{own}"
    );
    // That the verified partner's own answer does open it is shown by the tests above
    // and, beside a made-up person, by `core::doc::reveal`'s
    // `an_answer_under_a_person_the_roster_does_not_hold_opens_nothing`. It is not
    // shown here: once received changes are checked against who may write what, Bo's
    // later changes build on the refused one and wait with it.
}

/// Waits until `victim` holds everything `from` holds, or has refused or held back some
/// of what `from` sent (received changes are checked against who may write what, so a
/// forged record never goes in, and the two never converge).
fn taken_in_or_refused(victim: &TestDaemon, from: &TestDaemon) {
    let mut events = victim.subscribe().unwrap();
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        let status = victim.call(DaemonCall::Status).unwrap();
        let stopped = status["peers"].as_array().is_some_and(|peers| {
            peers.iter().any(|p| {
                p["refused_changes"].as_u64().unwrap_or(0) > 0
                    || p["held_changes"].as_u64().unwrap_or(0) > 0
            })
        });
        if stopped || victim.heads("household").unwrap() == from.heads("household").unwrap() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the forged change was neither taken in nor refused: {status}"
        );
        let _ = events.next_event();
    }
}

/// Bo's documents, read from his stopped daemon's store, as his daemon would load them.
fn stored_docs(d: &TestDaemon, me: uuid::Uuid) -> hearth_core::doc::Docs {
    use hearth_core::doc::{Doc, DocKind, Docs};
    let secrets = hearthd::storage::read_secrets(&d.paths.data_dir).unwrap();
    let secrets = DeviceSecrets::from_file_bytes(&secrets, None).unwrap();
    let docs_dir = d.paths.data_dir.join("docs");
    let open = |kind: DocKind| {
        let (_, loaded) =
            DocStore::open(&docs_dir.join(kind.doc_id()), secrets.age_identity()).unwrap();
        Doc::from_automerge(kind, loaded.doc, automerge::ActorId::random())
    };
    let mut docs = Docs::from_parts(open(DocKind::Household), open(DocKind::Private(me)), me);
    docs.set_device_key(secrets.device_public_key());
    docs
}

/// The log of `docs` as the daemon would answer it at `now`.
fn log_at(docs: &mut hearth_core::doc::Docs, now: i64) -> Value {
    hearthd::handlers::handle(docs, DocCall::Log(LogParams::default()), now)
        .unwrap()
        .value
}

#[test]
fn a_day_after_opening_the_author_sees_that_the_partners_answer_is_still_sealed() {
    let (mut a, mut b) = two_paired();
    // 1. Ada answers sealed, then her device goes away.
    sealed_checkin(&a, ADA_NOTE, None, DAY1);
    wait_converged(&[&a, &b], "household").unwrap();
    let _a_dir = a.take_dir();
    a.stop().unwrap();

    // 2. Bo answers the same day: his key is published at once, since Ada's answer is
    // there. Hers stays sealed while her device is off.
    let theirs = sealed_checkin(&b, BO_NOTE, None, DAY1 + 60_000);
    assert_eq!(theirs["waiting_for_partner"], false);
    wait_until(&b, "Bo's key is published", |b| {
        own_entry(b, BO_NOTE)["summary"]
            .as_str()
            .unwrap()
            .contains("revealed together")
    });
    // Just published: nothing to point out yet.
    let own = own_entry(&b, BO_NOTE);
    assert_eq!(own["waiting_for_theirs"], false, "{own}");
    assert!(!own["summary"].as_str().unwrap().contains("still waiting"));

    // 3. A day later by the clock, on Bo's stored documents: the log says plainly that
    // Ada's answer has not opened yet, and says it in JSON too.
    let bo: uuid::Uuid = b.status().unwrap().person.unwrap().id.parse().unwrap();
    let b_listen = b.addr().unwrap();
    let _b_dir = b.take_dir();
    b.stop().unwrap();
    let mut docs = stored_docs(&b, bo);
    let now = hearthd::actor::now_millis();
    let find = |log: &Value| {
        log.as_array()
            .unwrap()
            .iter()
            .find(|e| e["record"]["note"] == BO_NOTE)
            .cloned()
            .unwrap()
    };
    let soon = find(&log_at(&mut docs, now));
    assert_eq!(soon["waiting_for_theirs"], false, "{soon}");
    let later = find(&log_at(
        &mut docs,
        now + hearth_core::doc::WAITING_NOTICE_AFTER + 60_000,
    ));
    assert_eq!(later["waiting_for_theirs"], true, "{later}");
    let summary = later["summary"].as_str().unwrap();
    assert!(
        summary.contains("still waiting for Ada's answer from Tuesday 10 March to open"),
        "{summary}"
    );
    assert!(!summary.contains('%') || summary.starts_with("battery"));

    // 4. Ada's device comes back and publishes: the note goes away.
    let mut b = TestDaemon::start_with(&b.paths.data_dir, &b_listen).unwrap();
    let a = TestDaemon::start_with(&a.paths.data_dir, "127.0.0.1:0").unwrap();
    a.call(NetCall::PeersAdd { addr: b_listen }).unwrap();
    wait_until(&b, "Ada's answer opens on Bo's device", |b| {
        notes(b).contains(&ADA_NOTE.to_string())
    });
    wait_converged(&[&a, &b], "household").unwrap();
    b.stop().unwrap();
    let mut docs = stored_docs(&b, bo);
    let later = find(&log_at(
        &mut docs,
        now + hearth_core::doc::WAITING_NOTICE_AFTER + 60_000,
    ));
    assert_eq!(later["waiting_for_theirs"], false, "{later}");
    drop(a);
}
