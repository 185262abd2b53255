//! Who belongs: the partner's paired device, running a modified client, writes roster
//! entries, removals and people into the shared household document, and the other
//! person's devices trust none of it.
//!
//! The rogue is a real daemon started with `HEARTH_TEST_ROGUE=1`, so it can write raw
//! fields into the household document and send them over the real sync protocol, as a
//! modified client could. Every test checks three things: what the attacker does not
//! get, that the victim's data and trust are unchanged, and that the victim's `status`
//! names the refused entry and the device that sent it.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use hearth_api::{DocCall, NetCall, RosterCall};
use hearth_core::identity::DeviceId;
use hearth_core::model::Device;
use hearth_core::roster::{self, Admit};
use hearth_tests::harness::{pair, pair_same_person, wait_converged, TestDaemon};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{json, Value};
use uuid::Uuid;

/// Ada with a laptop and a phone, and Bo, whose one device runs a modified client.
struct House {
    laptop: TestDaemon,
    phone: TestDaemon,
    bo: TestDaemon,
}

impl House {
    fn new() -> House {
        let laptop = TestDaemon::start().unwrap();
        let phone = TestDaemon::start().unwrap();
        let bo = TestDaemon::start_rogue().unwrap();
        laptop.init("Ada").unwrap();
        phone.init("Ada").unwrap();
        bo.init("Bo").unwrap();
        pair_same_person(&laptop, &phone).unwrap();
        pair(&laptop, &bo).unwrap();
        let house = House { laptop, phone, bo };
        house.converge();
        house
    }

    fn converge(&self) {
        wait_converged(&[&self.laptop, &self.phone, &self.bo], "household").unwrap();
    }

    fn ada(&self) -> Uuid {
        self.laptop
            .status()
            .unwrap()
            .person
            .unwrap()
            .id
            .parse()
            .unwrap()
    }

    /// Writes raw fields into a household record from Bo's modified client.
    fn rogue_put(&self, collection: &str, key: &str, fields: Value) {
        self.bo
            .call(DocCall::RoguePut {
                collection: collection.into(),
                key: key.into(),
                fields: fields.as_object().unwrap().clone(),
            })
            .unwrap();
    }
}

fn device_id(d: &TestDaemon) -> String {
    d.status().unwrap().device_id.unwrap()
}

fn keypair() -> Ed25519KeyPair {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

fn public(key: &Ed25519KeyPair) -> [u8; 32] {
    key.public_key().as_ref().try_into().unwrap()
}

/// The devices `d` trusts for sync (its peers) and lists on its roster.
fn trust_of(d: &TestDaemon) -> (BTreeSet<String>, Vec<Value>) {
    let peers = d
        .status()
        .unwrap()
        .peers
        .into_iter()
        .map(|p| p.device_id)
        .collect();
    let list = d.call(RosterCall::DevicesList).unwrap();
    (peers, list.as_array().unwrap().clone())
}

/// Asserts that `victim`'s status lists a refusal of `what` for `device`, sent by `by`.
fn assert_refused(victim: &TestDaemon, device: &str, what: &str, by: &str) {
    let refused = victim.status().unwrap().refused;
    assert!(
        refused.iter().any(|r| r.device_id == device
            && r.what == what
            && r.sent_by.as_deref().is_some_and(|s| s.contains(by))),
        "no refusal of the {what} of {device} sent by {by}: {refused:?}"
    );
}

#[test]
fn a_partner_cannot_add_a_device_as_the_other_person() {
    let house = House::new();
    let before = [trust_of(&house.laptop), trust_of(&house.phone)];
    // Bo's client makes up a key, signs an entry with it claiming to be Ada's tablet,
    // and admits it "as Ada's own device" with another key of its own.
    let (fake, sponsor) = (keypair(), keypair());
    let fake_key = public(&fake);
    let ada = house.ada();
    let mut entry = Device {
        id: DeviceId::from_public_key(&fake_key).to_string(),
        person: ada,
        name: "Ada's tablet".into(),
        public_key: data_encoding::HEXLOWER.encode(&fake_key),
        age_recipient: Some("age1rogue".into()),
        added_by: Some(device_id(&house.laptop)),
        added_at: 1,
        revoked_at: None,
        admission: Some(roster::admit(&sponsor, &fake_key, ada, Admit::OwnDevice, 1)),
        self_sig: None,
        removal: None,
    };
    entry.self_sig = Some(roster::self_sign(&fake, &entry));
    house.rogue_put("devices", &entry.id, serde_json::to_value(&entry).unwrap());
    // And a third person, with a record of their own.
    let mallory = Uuid::new_v4();
    house.rogue_put(
        "people",
        &mallory.to_string(),
        json!({"id": mallory.to_string(), "name": "Mallory", "joined_at": 0}),
    );
    house.converge();
    // Ada's devices trust exactly what they trusted before, and name the refusal.
    assert_eq!(
        [trust_of(&house.laptop), trust_of(&house.phone)],
        before,
        "the forged device changed Ada's trust"
    );
    for victim in [&house.laptop, &house.phone] {
        let people = victim.status().unwrap().people;
        assert_eq!(people.len(), 2, "{people:?}");
        assert!(people.iter().all(|p| p.name != "Mallory"));
    }
    assert_refused(&house.laptop, &entry.id, "device", &device_id(&house.bo));
}

#[test]
fn a_partner_cannot_remove_or_rewrite_the_other_persons_device() {
    let house = House::new();
    let phone_id = device_id(&house.phone);
    let ada = house.ada();
    let phone_entry = house
        .laptop
        .call(RosterCall::DevicesList)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == phone_id.as_str())
        .cloned()
        .unwrap();
    assert!(phone_entry["removed_at"].is_null());
    // Bo's client marks Ada's phone removed, with a "removal" signed by a key of its
    // own, and swaps the phone's age recipient (what bundles are sealed to) for its own.
    let stranger = keypair();
    let phone_key = house.laptop.call(DocCall::Export).unwrap()["records"]["devices"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .find(|d| d["id"] == phone_id.as_str())
        .and_then(|d| d["public_key"].as_str().map(String::from))
        .unwrap();
    let key = roster::parse_key(&phone_key).unwrap();
    let refusals = |d: &TestDaemon| {
        d.log_lines()
            .iter()
            .filter(|l| l.contains("refused changes that touch what is not their author's"))
            .count()
    };
    let laptop_before = refusals(&house.laptop);
    house.rogue_put(
        "devices",
        &phone_id,
        json!({
            "revoked_at": 5,
            "removal": roster::remove(&stranger, &key, 5),
            "age_recipient": "age1rogue",
        }),
    );
    // And with the stock CLI: Bo removes Ada's phone, which only stops Bo's devices
    // trusting it.
    house
        .bo
        .call(RosterCall::DevicesRemove {
            id: phone_id.clone(),
        })
        .unwrap();
    // The rewrite of Ada's entry is a change to another person's roster entry: her
    // laptop, which syncs with Bo's device, refuses it before it is applied, so it never
    // reaches her phone either.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while refusals(&house.laptop) == laptop_before {
        assert!(
            std::time::Instant::now() < deadline,
            "Ada's devices never refused the rewrite"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Ada's laptop and phone still trust each other and share the private document.
    for (victim, other) in [(&house.laptop, &house.phone), (&house.phone, &house.laptop)] {
        let (peers, list) = trust_of(victim);
        assert!(peers.contains(&device_id(other)), "{peers:?}");
        let entry = list
            .iter()
            .find(|d| d["id"] == device_id(other).as_str())
            .unwrap();
        assert!(entry["removed_at"].is_null(), "{entry}");
        assert_eq!(entry["person_id"], ada.to_string());
    }
    house
        .laptop
        .call(DocCall::CheckinAdd(hearth_api::CheckinParams {
            battery: 40,
            visibility: Some(hearth_core::model::Visibility::Private),
            note: Some("only for my own devices".into()),
            ..Default::default()
        }))
        .unwrap();
    wait_converged(&[&house.laptop, &house.phone], "private").unwrap();
    // Ada's devices count what they refused against the device that sent it.
    let bo_id = device_id(&house.bo);
    let status = house.laptop.status().unwrap();
    let from_bo = status.peers.iter().find(|p| p.device_id == bo_id).unwrap();
    assert!(from_bo.refused_changes > 0, "{from_bo:?}");
    // Bo's own devices did stop trusting the phone: Bo's removal is Bo's to make.
    let (bo_peers, bo_list) = trust_of(&house.bo);
    assert!(!bo_peers.contains(&phone_id), "{bo_peers:?}");
    let on_bo = bo_list
        .iter()
        .find(|d| d["id"] == phone_id.as_str())
        .unwrap();
    assert!(!on_bo["removed_at"].is_null(), "{on_bo}");
    // And Ada's phone, dialling Bo's device, learns that it no longer accepts it.
    house
        .phone
        .call(NetCall::PeersAdd {
            addr: house.bo.addr().unwrap(),
        })
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !house
        .phone
        .status()
        .unwrap()
        .peers
        .iter()
        .any(|p| p.device_id == bo_id && p.refuses_this_device)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "Ada's phone never saw that Bo's device refuses it"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn removing_ones_own_device_is_signed_and_honoured_on_every_device() {
    let house = House::new();
    let phone_id = device_id(&house.phone);
    house
        .laptop
        .call(RosterCall::DevicesRemove {
            id: phone_id.clone(),
        })
        .unwrap();
    wait_converged(&[&house.laptop, &house.bo], "household").unwrap();
    for d in [&house.laptop, &house.bo] {
        let (peers, list) = trust_of(d);
        assert!(!peers.contains(&phone_id), "{peers:?}");
        let entry = list.iter().find(|e| e["id"] == phone_id.as_str()).unwrap();
        assert!(!entry["removed_at"].is_null(), "{entry}");
    }
    // The removed phone gets nothing new.
    house.laptop.moment("after the phone was removed").unwrap();
    wait_converged(&[&house.laptop, &house.bo], "household").unwrap();
    assert!(!house
        .phone
        .notes()
        .unwrap()
        .contains(&"after the phone was removed".to_string()));
}
