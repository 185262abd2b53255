//! The inviter decides whom a code admits (THREAT-MODEL P4), between real daemons.
//!
//! Each attack asserts what the attacker does not get (no roster, no household secret,
//! none of the victim's private entries), that the victim's roster and trust are
//! unchanged, and that the refusal is visible on the inviting side (its `pair invite`
//! answer, and a log line naming the refused device). The stock CLI is used where the
//! attack needs nothing more; a modified client is [`RawPeer`], which speaks
//! `hearth-pair/1` with whatever it likes to say and whatever role it likes to bind.
#![allow(clippy::unwrap_used)]

mod common;

use common::{invite, invite_for, secrets_of, wait_for_invite, RawPeer};
use hearth_api::client::ClientError;
use hearth_api::{CheckinParams, DaemonCall, DeviceSummary, DocCall, NetCall, RosterCall};
use hearth_core::identity::DeviceId;
use hearth_core::model::Visibility;
use hearth_core::pair::{InviteRole, JoinerInfo, JoinerPolicy};
use hearth_tests::harness::{pair_with, two_paired, TestDaemon};

const ADA_SECRET: &str = "ada's private worry, for her devices only";

fn private_checkin(d: &TestDaemon, note: &str) {
    d.call(DocCall::CheckinAdd(CheckinParams {
        battery: 40,
        note: Some(note.into()),
        visibility: Some(Visibility::Private),
        ..Default::default()
    }))
    .unwrap();
}

fn person_id(d: &TestDaemon) -> String {
    d.status().unwrap().person.unwrap().id
}

fn device_id(d: &TestDaemon) -> String {
    d.status().unwrap().device_id.unwrap()
}

/// What a device trusts and who is in its household: the part of its state an attack
/// on pairing would change.
fn trust_state(d: &TestDaemon) -> (Vec<(String, String, bool)>, Vec<String>) {
    let devices: Vec<DeviceSummary> =
        serde_json::from_value(d.call(RosterCall::DevicesList).unwrap()).unwrap();
    let mut devices: Vec<_> = devices
        .into_iter()
        .map(|d| (d.id, d.person_id, d.trusted))
        .collect();
    devices.sort();
    let mut people: Vec<_> = d
        .status()
        .unwrap()
        .people
        .into_iter()
        .map(|p| p.id)
        .collect();
    people.sort();
    (devices, people)
}

/// Whether `d` holds the private document of `person`.
fn holds_private_of(d: &TestDaemon, person: &str) -> bool {
    let doc = format!("private-{person}");
    d.status().unwrap().documents.iter().any(|s| s.id == doc)
}

/// The error `pair.wait` ended with.
fn refused(waiter: std::thread::JoinHandle<Result<serde_json::Value, ClientError>>) -> String {
    match waiter.join().unwrap() {
        Err(ClientError::Api(e)) => e.message,
        other => panic!("the invite did not end in a refusal: {other:?}"),
    }
}

#[test]
fn an_own_device_join_names_the_new_device_on_both_screens() {
    let a = TestDaemon::start().unwrap();
    let a2 = TestDaemon::start().unwrap();
    a.init("Ada").unwrap();
    a2.call(DaemonCall::Init {
        name: "Ada".into(),
        device_name: Some("Ada's phone".into()),
        passphrase: None,
    })
    .unwrap();
    let (waited, joined) = pair_with(&a, &a2, true).unwrap();
    let phone = device_id(&a2);
    assert_eq!(waited["role"], "own-device");
    assert_eq!(waited["device_id"], phone.as_str());
    assert_eq!(waited["device_name"], "Ada's phone");
    assert_eq!(joined["role"], "own-device");
    assert_eq!(joined["this_device"]["id"], phone.as_str());
    assert_eq!(joined["this_device"]["name"], "Ada's phone");
    assert_eq!(person_id(&a2), person_id(&a));

    // A partner invite says so on both sides too.
    let b = TestDaemon::start().unwrap();
    b.init("Bo").unwrap();
    let (waited, joined) = pair_with(&a, &b, false).unwrap();
    assert_eq!(
        (&waited["role"], &joined["role"]),
        (&"partner".into(), &"partner".into())
    );
    assert_eq!(waited["device_id"], device_id(&b).as_str());
    assert_eq!(waited["name"], "Bo");
    assert_ne!(person_id(&b), person_id(&a));
}

#[test]
fn a_partner_invite_is_refused_once_both_people_are_in() {
    let (a, b) = two_paired().unwrap();
    for d in [&a, &b] {
        let err = d
            .call(NetCall::PairInvite {
                timeout_secs: Some(60),
                own_device: false,
            })
            .unwrap_err();
        let ClientError::Api(e) = err else {
            panic!("unexpected {err}")
        };
        assert!(
            e.message.contains("already in this household"),
            "{}",
            e.message
        );
        assert!(
            e.hint.unwrap_or_default().contains("--own-device"),
            "the hint names the way to add one's own device"
        );
        // An own-device invite is still fine.
        d.call(NetCall::PairInvite {
            timeout_secs: Some(60),
            own_device: true,
        })
        .unwrap();
    }
}

/// The partner's paired device types Ada's own-device code with the stock CLI.
#[test]
fn the_partners_device_gets_nothing_private_from_an_own_device_code() {
    let (a, b) = two_paired().unwrap();
    private_checkin(&a, ADA_SECRET);
    let ada = person_id(&a);
    let (bo, bo_device) = (person_id(&b), device_id(&b));
    let (victim_before, partner_before) = (trust_state(&a), trust_state(&b));

    let (code, addr) = invite_for(&a, true);
    let waiter = wait_for_invite(&a);
    let err = b
        .call(NetCall::PairJoin {
            code,
            addr: Some(addr),
            merge: false,
        })
        .unwrap_err();
    let ClientError::Api(e) = err else {
        panic!("unexpected {err}")
    };
    assert!(
        e.message
            .contains("another device of the person who invited"),
        "{}",
        e.message
    );
    assert!(e.hint.unwrap_or_default().contains("partner invite"));

    // Visible to Ada: her `pair invite` ends in a refusal, and her log names the device.
    let why = refused(waiter);
    assert!(why.contains("stopped before saying who it is"), "{why}");
    a.wait_for_log("a pairing attempt failed").unwrap();
    assert!(a
        .log_lines()
        .iter()
        .any(|l| l.contains("a pairing attempt failed") && l.contains(&bo_device)));

    // Bo got nothing of Ada's and is still himself; Ada's roster and trust are as they were.
    assert_eq!(person_id(&b), bo);
    assert!(!holds_private_of(&b, &ada));
    assert!(!b.notes().unwrap().iter().any(|n| n == ADA_SECRET));
    assert_eq!(trust_state(&a), victim_before);
    assert_eq!(trust_state(&b), partner_before);
    assert!(a.notes().unwrap().iter().any(|n| n == ADA_SECRET));
}

/// A modified client on the partner's paired device skips its own freshness check and
/// joins Ada's own-device code with its real key: Ada refuses a key already on the
/// roster before anything private leaves.
#[test]
fn a_modified_partner_device_with_an_own_device_code_is_refused_by_the_inviter() {
    let (a, b) = two_paired().unwrap();
    private_checkin(&a, ADA_SECRET);
    let ada = person_id(&a);
    let before = trust_state(&a);
    let bo_secrets = secrets_of(&b.paths.data_dir);
    let rogue = RawPeer::new(Some(bo_secrets.device_pkcs8()), &[]);

    let (code, addr) = invite_for(&a, true);
    let waiter = wait_for_invite(&a);
    let info = JoinerInfo {
        device_key: rogue.public_key(),
        person_id: uuid::Uuid::parse_str(&ada).unwrap(),
        person_name: "Ada".into(),
        device_name: "Ada's new phone".into(),
    };
    let (outcome, _) = rogue.join_with(&addr, &code, info, JoinerPolicy::default());
    assert!(
        outcome.is_err(),
        "the rogue got the roster and the household secret"
    );
    assert!(refused(waiter).contains("already on this household's roster"));
    assert_eq!(trust_state(&a), before);
    assert!(!holds_private_of(&b, &ada));
    let bo_device = DeviceId::from_public_key(&rogue.public_key()).to_string();
    a.wait_for_log("a pairing attempt failed").unwrap();
    assert!(a.log_lines().iter().any(|l| l.contains(&bo_device)));
}

/// A modified client joins Ada's partner code but binds the own-device role, hoping
/// to be filed as one of her devices: key confirmation fails exactly as a wrong code
/// does, and the invite is used up.
#[test]
fn a_joiner_pretending_to_be_an_own_device_fails_like_a_wrong_code() {
    let a = TestDaemon::start().unwrap();
    a.init("Ada").unwrap();
    private_checkin(&a, ADA_SECRET);
    let before = trust_state(&a);

    let (code, addr) = invite(&a);
    let waiter = wait_for_invite(&a);
    let rogue = RawPeer::new(None, &[]);
    let info = JoinerInfo {
        device_key: rogue.public_key(),
        person_id: uuid::Uuid::new_v4(),
        person_name: "Mallory".into(),
        device_name: "Ada's tablet".into(),
    };
    let pretending = JoinerPolicy {
        claim: Some(InviteRole::OwnDevice),
        ..JoinerPolicy::default()
    };
    let (outcome, _) = rogue.join_with(&addr, &code, info, pretending);
    let err = outcome.unwrap_err();
    assert!(err.contains("did not match"), "{err}");
    // The same words Ada sees for a mistyped code.
    assert!(refused(waiter).contains("did not match"));
    assert_eq!(trust_state(&a), before);

    // The invite is burnt: an honest join with the same code gets nothing either.
    let (outcome, _) = RawPeer::new(None, &[]).join(&addr, &code, "Late Larry");
    assert!(outcome.is_err());
    assert_eq!(trust_state(&a), before);
}

/// A modified client joins a partner code claiming Ada's own person id, which would
/// file its device under her (and route her private document to it).
#[test]
fn a_partner_claiming_a_person_already_in_the_household_is_refused() {
    let a = TestDaemon::start().unwrap();
    a.init("Ada").unwrap();
    private_checkin(&a, ADA_SECRET);
    let ada = person_id(&a);
    let before = trust_state(&a);

    let (code, addr) = invite(&a);
    let waiter = wait_for_invite(&a);
    let rogue = RawPeer::new(None, &[]);
    let info = JoinerInfo {
        device_key: rogue.public_key(),
        person_id: uuid::Uuid::parse_str(&ada).unwrap(),
        person_name: "Ada".into(),
        device_name: "Ada's tablet".into(),
    };
    let (outcome, _) = rogue.join_with(&addr, &code, info, JoinerPolicy::default());
    assert!(
        outcome.is_err(),
        "the rogue got the roster and the household secret"
    );
    assert!(refused(waiter).contains("someone already in this household"));
    assert_eq!(trust_state(&a), before);
    let rogue_device = DeviceId::from_public_key(&rogue.public_key()).to_string();
    a.wait_for_log("a pairing attempt failed").unwrap();
    assert!(a.log_lines().iter().any(|l| l.contains(&rogue_device)));
}
