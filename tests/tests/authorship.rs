//! Who wrote it: the partner's paired device, running a modified client, writes into
//! the shared household document as if it were the other person, and the other
//! person's devices apply none of it.
//!
//! Bo's device is a real daemon started with `HEARTH_TEST_ROGUE=1`: it writes raw
//! values over the real sync protocol, can claim another device's key as the author of
//! a change, and applies and passes on whatever it receives without checking. Every
//! test checks that Ada's data is unchanged, byte for byte in her export, and that her
//! `status` reports the attempt against the device that sent it.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use hearth_api::{At, BundleCall, CheckinParams, DocCall, PeerStatus};
use hearth_tests::harness::{pair, pair_same_person, wait_converged, TestDaemon};
use serde_json::{json, Value};
use uuid::Uuid;

const REFUSED_LOG: &str = "refused changes that touch what is not their author's";
const HELD_LOG: &str = "holding changes until their author is proven";

/// Ada's device and Bo's modified one, paired and in sync, with one check-in of Ada's.
struct House {
    ada: TestDaemon,
    bo: TestDaemon,
    ada_checkin: String,
}

impl House {
    fn new() -> House {
        let ada = TestDaemon::start().unwrap();
        let bo = TestDaemon::start_rogue().unwrap();
        ada.init("Ada").unwrap();
        bo.init("Bo").unwrap();
        pair(&ada, &bo).unwrap();
        let written = ada
            .call(DocCall::CheckinAdd(CheckinParams {
                battery: 60,
                note: Some("a calm day".into()),
                ..Default::default()
            }))
            .unwrap();
        let ada_checkin = written["id"].as_str().unwrap().to_string();
        wait_converged(&[&ada, &bo], "household").unwrap();
        House {
            ada,
            bo,
            ada_checkin,
        }
    }

    fn ada_id(&self) -> String {
        person_id(&self.ada)
    }

    fn rogue_put(&self, collection: &str, key: &str, fields: Value) {
        rogue_put(&self.bo, collection, key, fields);
    }
}

fn person_id(d: &TestDaemon) -> String {
    d.status().unwrap().person.unwrap().id
}

fn device_id(d: &TestDaemon) -> String {
    d.status().unwrap().device_id.unwrap()
}

fn rogue_put(d: &TestDaemon, collection: &str, key: &str, fields: Value) {
    d.call(DocCall::RoguePut {
        collection: collection.into(),
        key: key.into(),
        fields: fields.as_object().unwrap().clone(),
    })
    .unwrap();
}

/// Everything `d` holds, as its export gives it.
fn export(d: &TestDaemon) -> Value {
    let mut all = d.call(DocCall::Export).unwrap();
    // When the export was made is not data.
    if let Some(map) = all.as_object_mut() {
        map.remove("exported_at");
    }
    all
}

/// A check-in value as the household document stores it (one compact string), written
/// for `person` on the day of `at`.
fn compact_checkin(person: &str, at: i64, battery: u8, note: &str) -> String {
    let date = chrono::DateTime::from_timestamp_millis(at)
        .unwrap()
        .date_naive();
    let body = json!({
        "at": at,
        "utc_offset_min": 0,
        "battery": battery,
        "note": note,
        "visibility": "shared",
    });
    format!("h1\u{1f}{date}\u{1f}{person}\u{1f}{body}")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// How many log lines of `d` contain `needle`.
fn count_logged(d: &TestDaemon, needle: &str) -> usize {
    d.log_lines().iter().filter(|l| l.contains(needle)).count()
}

/// Waits until `d` logs `needle` more often than `before` times.
fn wait_logged(d: &TestDaemon, needle: &str, before: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while count_logged(d, needle) <= before {
        assert!(Instant::now() < deadline, "hearthd never logged {needle:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The peer entry `victim`'s status has for `sender`.
fn peer<'a>(status: &'a [PeerStatus], sender: &str) -> &'a PeerStatus {
    status
        .iter()
        .find(|p| p.device_id == sender)
        .unwrap_or_else(|| panic!("no peer {sender} in {status:?}"))
}

/// Runs one attack by Bo's client and checks that Ada's data did not move and that
/// her status counts one more refused change against Bo's device.
fn assert_refused(house: &House, attack: impl FnOnce(&House)) {
    let before = export(&house.ada);
    let refused_before =
        peer(&house.ada.status().unwrap().peers, &device_id(&house.bo)).refused_changes;
    let logged = count_logged(&house.ada, REFUSED_LOG);
    attack(house);
    wait_logged(&house.ada, REFUSED_LOG, logged);
    assert_eq!(export(&house.ada), before, "Ada's data changed");
    let status = house.ada.status().unwrap();
    let bo = peer(&status.peers, &device_id(&house.bo));
    assert!(
        bo.refused_changes > refused_before,
        "status does not report the refusal: {bo:?}"
    );
    assert!(!bo.refused_because.is_empty());
    // The reasons are plain words: no record contents.
    assert!(bo
        .refused_because
        .iter()
        .all(|r| !r.contains("want out") && !r.contains("calm")));
}

#[test]
fn the_partner_cannot_forge_edit_or_delete_the_others_check_ins() {
    let house = House::new();
    let ada = house.ada_id();
    // Forge: a new check-in that says Ada wrote it.
    assert_refused(&house, |h| {
        let key = Uuid::new_v4().to_string();
        h.rogue_put(
            "checkins",
            &key,
            json!({ "$value": compact_checkin(&ada, now_ms(), 1, "I want out") }),
        );
    });
    // Edit: Ada's own check-in, rewritten.
    assert_refused(&house, |h| {
        h.rogue_put(
            "checkins",
            &h.ada_checkin,
            json!({ "$value": compact_checkin(&ada, now_ms(), 1, "I want out") }),
        );
    });
    // Delete it.
    assert_refused(&house, |h| {
        h.bo.call(DocCall::RogueDelete {
            collection: "checkins".into(),
            key: h.ada_checkin.clone(),
        })
        .unwrap();
    });
    // Whatever Bo's client writes next builds on what was refused, and is refused
    // with it: a client that forged once must be set right (re-paired) to be heard.
    assert_refused(&house, |h| {
        h.bo.call(DocCall::CheckinAdd(CheckinParams {
            battery: 40,
            note: Some("long week".into()),
            ..Default::default()
        }))
        .unwrap();
    });
}

#[test]
fn the_partner_cannot_rewrite_the_others_pause_or_leaving() {
    let house = House::new();
    let ada = house.ada_id();
    assert_refused(&house, |h| {
        h.rogue_put(
            "people",
            &ada,
            json!({ "sharing_pause": json!({"since": now_ms()}).to_string() }),
        );
    });
    assert_refused(&house, |h| {
        h.rogue_put("people", &ada, json!({ "name": "Someone else" }));
    });
    // A leaving is tried on a fresh pair: Bo's own client believes it at once and
    // ends sharing after this one change, so nothing may come before it.
    let fresh = House::new();
    let ada_again = fresh.ada_id();
    assert_refused(&fresh, |h| {
        h.rogue_put("people", &ada_again, json!({ "sharing_left_at": now_ms() }));
    });
    // Ada is neither paused nor gone, and is still called Ada, on both.
    for (house, id) in [(&house, &ada), (&fresh, &ada_again)] {
        let status = house.ada.status().unwrap();
        let me = status.people.iter().find(|p| &p.id == id).unwrap();
        assert_eq!(me.name, "Ada");
        assert!(me.paused.is_none() && me.left_at.is_none(), "{me:?}");
    }
}

#[test]
fn a_fake_answer_does_not_open_a_reveal_together_answer() {
    let house = House::new();
    let at = now_ms();
    sealed_answer(&house, &house.ada, "sealed until Bo answers", at);
    // Bo's client writes an "answer" for that day under a person nobody knows.
    let stranger = Uuid::new_v4().to_string();
    assert_refused(&house, |h| {
        h.rogue_put(
            "checkins",
            &Uuid::new_v4().to_string(),
            json!({ "$value": compact_checkin(&stranger, at, 50, "fake") }),
        );
    });
    // Ada's answer is still sealed: Bo's device can read nothing of it.
    let bo_sees = export(&house.bo).to_string();
    assert!(!bo_sees.contains("sealed until Bo answers"));
}

/// `writer` answers reveal-together honestly for the day of `at`, and the answer
/// reaches the other device still sealed. Returns the check-in's id.
fn sealed_answer(house: &House, writer: &TestDaemon, note: &str, at: i64) -> String {
    let written = writer
        .call(DocCall::CheckinAdd(CheckinParams {
            battery: 40,
            note: Some(note.into()),
            visibility: Some(hearth_core::model::Visibility::RevealTogether),
            at: At {
                at: Some(at),
                utc_offset_min: 0,
            },
            ..Default::default()
        }))
        .unwrap();
    assert_eq!(written["waiting_for_partner"], Value::Bool(true));
    wait_converged(&[&house.ada, &house.bo], "household").unwrap();
    written["id"].as_str().unwrap().to_string()
}

/// Bo's honest sealed answer, on a day Ada has not answered, so it stays sealed.
fn bos_sealed_answer(house: &House) -> (String, i64) {
    let at = now_ms() - 3 * 24 * 60 * 60 * 1000;
    let id = sealed_answer(house, &house.bo, "sealed until Ada answers", at);
    (id, at)
}

fn refused_because(house: &House) -> Vec<String> {
    let status = house.ada.status().unwrap();
    peer(&status.peers, &device_id(&house.bo))
        .refused_because
        .clone()
}

#[test]
fn a_swapped_reveal_key_is_refused() {
    let house = House::new();
    let (id, _) = bos_sealed_answer(&house);
    // Bo's client "publishes" a key for his sealed answer that does not open it: with
    // it, he could later claim any answer was the one he sealed.
    let swapped = age::x25519::Identity::generate();
    assert_refused(&house, |h| {
        use age::secrecy::ExposeSecret;
        let key = format!("\u{1f}{}", swapped.to_string().expose_secret());
        h.rogue_put("checkins", &id, json!({ "$append": key }));
    });
    assert!(
        refused_because(&house)
            .iter()
            .any(|r| r.contains("does not open")),
        "{:?}",
        refused_because(&house)
    );
    // Ada holds his answer still sealed, as it was.
    let ada_sees = house.ada.call(DocCall::Export).unwrap().to_string();
    assert!(!ada_sees.contains("sealed until Ada answers"));
}

#[test]
fn a_sealed_answer_rewritten_after_it_was_seen_is_refused() {
    let house = House::new();
    let (id, at) = bos_sealed_answer(&house);
    // Bo's client seals a different answer under the same record, as a client that
    // read Ada's answer first and wanted to change its own would.
    let date = chrono::DateTime::from_timestamp_millis(at)
        .unwrap()
        .date_naive();
    let bo = person_id(&house.bo);
    let other = data_encoding::BASE64.encode(b"a different answer");
    assert_refused(&house, |h| {
        h.rogue_put(
            "checkins",
            &id,
            json!({ "$value": format!("s1\u{1f}{date}\u{1f}{bo}\u{1f}{at}\u{1f}{other}") }),
        );
    });
    assert!(
        refused_because(&house)
            .iter()
            .any(|r| r.contains("rewrites")),
        "{:?}",
        refused_because(&house)
    );
}

#[test]
fn a_change_relayed_or_passed_off_under_another_devices_key_is_not_applied() {
    let house = House::new();
    // Bo's second device, also modified: it applies and passes on whatever it gets.
    let bo2 = TestDaemon::start_rogue().unwrap();
    bo2.init("Bo").unwrap();
    pair_same_person(&house.bo, &bo2).unwrap();
    wait_converged(&[&house.ada, &house.bo, &bo2], "household").unwrap();
    let ada = house.ada_id();
    let secrets = hearthd::storage::read_secrets(&house.ada.paths.data_dir).unwrap();
    let ada_key = data_encoding::HEXLOWER.encode(
        &hearth_core::secrets::DeviceSecrets::from_file_bytes(&secrets, None)
            .unwrap()
            .device_public_key(),
    );
    // A change that claims to be written by Ada's own device: Bo's devices hold no
    // signature of Ada's that covers it, so it waits and is never applied.
    let before = export(&house.ada);
    let held_logged = count_logged(&house.ada, HELD_LOG);
    rogue_put(
        &bo2,
        "checkins",
        &Uuid::new_v4().to_string(),
        json!({
            "$value": compact_checkin(&ada, now_ms(), 2, "I want out"),
            "$actor_key": ada_key,
        }),
    );
    wait_logged(&house.ada, HELD_LOG, held_logged);
    assert_eq!(export(&house.ada), before);
    let status = house.ada.status().unwrap();
    let waiting: usize = status.peers.iter().map(|p| p.held_changes).sum();
    assert!(
        waiting > 0,
        "status shows nothing waiting: {:?}",
        status.peers
    );
    let household = status
        .documents
        .iter()
        .find(|d| d.id == "household")
        .unwrap();
    assert!(household.held_changes > 0);
}

#[test]
fn a_bundle_carrying_a_forged_change_is_refused_whole() {
    let mut house = House::new();
    let ada = house.ada_id();
    // Ada's device is off; Bo writes an honest moment and a forged check-in, and sends
    // a bundle instead of syncing.
    let ada_dir = house.ada.paths.data_dir.clone();
    let ada_listen = house.ada.addr().unwrap();
    house.ada.stop().unwrap();
    house.bo.moment("honest moment").unwrap();
    rogue_put(
        &house.bo,
        "checkins",
        &Uuid::new_v4().to_string(),
        json!({ "$value": compact_checkin(&ada, now_ms(), 1, "I want out") }),
    );
    let bundle = house
        .bo
        .call(BundleCall::BundleExport { all: false })
        .unwrap();
    house.bo.stop().unwrap();
    let ada_again = TestDaemon::start_with(&ada_dir, &ada_listen).unwrap();
    let before = export(&ada_again);
    let refused = ada_again
        .call(BundleCall::BundleImport {
            bundle: bundle["bundle"].as_str().unwrap().to_string(),
        })
        .unwrap_err()
        .to_string();
    assert!(refused.contains("not imported"), "{refused}");
    assert!(!refused.contains("want out"));
    // Whole: not even the honest moment came in.
    assert_eq!(export(&ada_again), before);
}
