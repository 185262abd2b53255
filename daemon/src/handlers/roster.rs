//! The roster calls: devices listed, named and removed, pairing's roster merge,
//! pausing and leaving. The rules are `hearth_core::ops::roster`'s; this turns their
//! answers into the control API's.

use super::*;
use hearth_core::doc::Collection;
use hearth_core::model::Device;
use hearth_core::ops::roster::{Left, Paused, Resumed};

pub use hearth_core::ops::roster::MAX_PAUSE_SECS;

/// Counts records per collection, for `status`.
pub fn record_counts(doc: &hearth_core::doc::Doc) -> BTreeMap<String, usize> {
    Collection::ALL
        .iter()
        .map(|c| (c.key().to_string(), doc.count(*c)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Adds people and devices learnt in pairing, leaving records already present alone
/// (`ops::roster::merge_roster`).
pub fn add_to_roster(
    docs: &mut Docs,
    roster: hearth_core::roster::RosterExport,
    now: Millis,
) -> Result<Outcome, ApiError> {
    let touched = ops::roster::merge_roster(docs, &roster, now).map_err(api_error)?;
    Outcome::of(&json!({ "added": true }), touched)
}

/// Whether this device holds entries beyond its own person and device.
pub fn holds_entries(docs: &Docs) -> bool {
    ops::roster::holds_entries(docs)
}

/// Whether this device is fresh enough to become another device of someone else.
pub fn is_fresh_device(docs: &Docs, this_device: &str) -> bool {
    ops::roster::is_fresh_device(docs, this_device)
}

/// Resolves a device id or a prefix of it (dashes and case do not matter).
pub fn resolve_device(docs: &Docs, prefix: &str) -> Result<Device, ApiError> {
    ops::roster::resolve_device(docs, prefix).map_err(roster_error)
}

fn device_summary(
    docs: &Docs,
    device: &Device,
    this_device: &str,
    policy: &hearth_core::sync::Policy,
) -> hearth_api::DeviceSummary {
    let devices = docs.devices();
    hearth_api::DeviceSummary {
        id: device.id.clone(),
        name: device.name.clone(),
        person_id: device.person.to_string(),
        person: name_of(docs, device.person),
        added_by: device.added_by.clone(),
        added_by_name: device
            .added_by
            .as_ref()
            .and_then(|by| devices.iter().find(|d| &d.id == by))
            .map(|d| d.name.clone()),
        added_at: device.added_at,
        removed_at: device.revoked_at,
        this_device: device.id == this_device,
        trusted: device.id == this_device || policy.trusts(device),
    }
}

/// Handles a roster, pause or leave call on the owner's thread. `this_device` is the
/// id of the device answering.
pub fn roster_call(
    docs: &mut Docs,
    this_device: &str,
    signer: &ring::signature::Ed25519KeyPair,
    call: RosterCall,
    now: Millis,
) -> Result<Outcome, ApiError> {
    // The policy before the call: a removed device's summary says it is no longer
    // trusted because its copy carries `revoked_at`.
    let policy = hearth_core::sync::Policy::from_docs(docs, now);
    let summary = |docs: &Docs, written: Written<Device>| {
        let answer = device_summary(docs, &written.record, this_device, &policy);
        Outcome::of(&answer, written.touched)
    };
    match call {
        RosterCall::DevicesList => {
            let list: Vec<hearth_api::DeviceSummary> = ops::roster::devices_listed(docs)
                .iter()
                .map(|d| device_summary(docs, d, this_device, &policy))
                .collect();
            Outcome::read(&list)
        }
        RosterCall::DevicesRename { id, name } => {
            let written =
                ops::roster::rename_device(docs, &id, &name, now).map_err(roster_error)?;
            summary(docs, written)
        }
        RosterCall::DevicesRemove { id } => {
            let written = ops::roster::remove_device(docs, this_device, signer, &id, now)
                .map_err(roster_error)?;
            summary(docs, written)
        }
        RosterCall::Pause { for_secs } => {
            let written = ops::roster::pause(docs, for_secs, now).map_err(roster_error)?;
            let Paused { pause, with } = written.record;
            let paused = hearth_api::Paused {
                paused: true,
                since: pause.since,
                until: pause.until,
                with,
            };
            Outcome::of(&paused, written.touched)
        }
        RosterCall::Resume => {
            let written = ops::roster::resume(docs, now).map_err(roster_error)?;
            let resumed = match written.record {
                Resumed::NotPaused => hearth_api::Resumed {
                    resumed: false,
                    with: None,
                },
                Resumed::Cleared { was_active, with } => hearth_api::Resumed {
                    resumed: was_active,
                    with: Some(with),
                },
            };
            Outcome::of(&resumed, written.touched)
        }
        RosterCall::Leave { confirm } => {
            let written = ops::roster::leave(docs, confirm, now).map_err(roster_error)?;
            let Left { at, already, with } = written.record;
            let left = hearth_api::Left {
                left: true,
                already,
                at,
                with,
            };
            Outcome::of(&left, written.touched)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod roster_tests {
    use super::*;
    use hearth_core::model::{Person, PersonId};

    fn device(id: &str, person: PersonId) -> Device {
        Device::unsigned(id.into(), person, format!("device {id}"), "00".repeat(32))
    }

    fn docs(with_partner: bool) -> Docs {
        let ada = Uuid::from_u128(1);
        let bo = Uuid::from_u128(2);
        let mut docs = Docs::new(ada, automerge::ActorId::random());
        docs.add_person(
            &Person {
                id: ada,
                name: "Ada".into(),
                joined_at: 0,
            },
            0,
        )
        .unwrap();
        docs.put_device(&device("AAAA-BBBB-CCCC", ada), 0).unwrap();
        docs.put_device(&device("AAAA-ZZZZ-0000", ada), 0).unwrap();
        if with_partner {
            docs.add_person(
                &Person {
                    id: bo,
                    name: "Bo".into(),
                    joined_at: 0,
                },
                0,
            )
            .unwrap();
            docs.put_device(&device("QQQQ-RRRR-SSSS", bo), 0).unwrap();
        }
        docs
    }

    const THIS: &str = "AAAA-BBBB-CCCC";

    fn call(docs: &mut Docs, call: RosterCall) -> Result<Value, ApiError> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let signer = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        roster_call(docs, THIS, &signer, call, 1_000).map(|o| o.value)
    }

    #[test]
    fn device_ids_resolve_by_prefix_whatever_the_dashes_and_case() {
        let docs = docs(true);
        assert_eq!(
            resolve_device(&docs, "qqqq r").unwrap().id,
            "QQQQ-RRRR-SSSS"
        );
        assert_eq!(resolve_device(&docs, "AAAAZ").unwrap().id, "AAAA-ZZZZ-0000");
        assert_eq!(
            resolve_device(&docs, "aaaa").unwrap_err().code,
            ErrorCode::Ambiguous
        );
        assert_eq!(
            resolve_device(&docs, "XYZ").unwrap_err().code,
            ErrorCode::NotFound
        );
        assert_eq!(
            resolve_device(&docs, " - ").unwrap_err().code,
            ErrorCode::NotFound
        );
    }

    #[test]
    fn people_rename_their_own_devices_and_nobody_removes_the_device_they_use() {
        let mut docs = docs(true);
        let renamed = call(
            &mut docs,
            RosterCall::DevicesRename {
                id: "aaaaz".into(),
                name: " phone ".into(),
            },
        )
        .unwrap();
        assert_eq!(renamed["name"], "phone");
        let theirs = call(
            &mut docs,
            RosterCall::DevicesRename {
                id: "QQQQ".into(),
                name: "x".into(),
            },
        )
        .unwrap_err();
        assert!(theirs.message.contains("Bo's"), "{}", theirs.message);
        let own = call(&mut docs, RosterCall::DevicesRemove { id: THIS.into() }).unwrap_err();
        assert!(own.message.contains("the device you are using"));
        // A partner's lost phone may be removed from here (for this person's devices);
        // only once.
        let removed = call(&mut docs, RosterCall::DevicesRemove { id: "QQQQ".into() }).unwrap();
        assert_eq!(removed["removed_at"], 1_000);
        assert_eq!(removed["trusted"], false);
        let again = call(&mut docs, RosterCall::DevicesRemove { id: "QQQQ".into() }).unwrap_err();
        assert!(again.message.contains("already removed"));
        let list = call(&mut docs, RosterCall::DevicesList).unwrap();
        let list = list.as_array().unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[2]["person"], "Bo", "this person's devices come first");
        assert!(list
            .iter()
            .any(|d| d["this_device"] == true && d["id"] == THIS));
    }

    #[test]
    fn pausing_needs_a_partner_and_a_sensible_length() {
        let mut alone = docs(false);
        let err = call(&mut alone, RosterCall::Pause { for_secs: None }).unwrap_err();
        assert!(err.message.contains("no partner"), "{}", err.message);
        let mut docs = docs(true);
        for bad in [0, MAX_PAUSE_SECS + 1] {
            assert!(call(
                &mut docs,
                RosterCall::Pause {
                    for_secs: Some(bad)
                }
            )
            .is_err());
        }
        let paused = call(&mut docs, RosterCall::Pause { for_secs: Some(60) }).unwrap();
        assert_eq!(paused["until"], 61_000);
        assert_eq!(paused["with"], serde_json::json!(["Bo"]));
        assert_eq!(
            call(&mut docs, RosterCall::Resume).unwrap()["resumed"],
            true
        );
        assert_eq!(
            call(&mut docs, RosterCall::Resume).unwrap()["resumed"],
            false
        );
    }

    #[test]
    fn leaving_needs_confirmation_happens_once_and_ends_pausing() {
        let mut docs = docs(true);
        let unconfirmed = call(&mut docs, RosterCall::Leave { confirm: false }).unwrap_err();
        assert!(unconfirmed.hint.unwrap().contains("--yes"));
        call(&mut docs, RosterCall::Pause { for_secs: None }).unwrap();
        let left = call(&mut docs, RosterCall::Leave { confirm: true }).unwrap();
        assert_eq!(left["already"], false);
        assert_eq!(docs.pause_of(docs.me), None, "leaving ends the pause");
        let again = call(&mut docs, RosterCall::Leave { confirm: false }).unwrap();
        assert_eq!(again["already"], true);
        let pause = call(&mut docs, RosterCall::Pause { for_secs: None }).unwrap_err();
        assert!(pause.message.contains("ended"), "{}", pause.message);
    }
}
