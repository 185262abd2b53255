//! The roster calls: devices listed, named and removed, pairing's roster merge,
//! pausing and leaving.

use super::*;

/// Counts records per collection, for `status`.
pub fn record_counts(doc: &hearth_core::doc::Doc) -> BTreeMap<String, usize> {
    Collection::ALL
        .iter()
        .map(|c| (c.key().to_string(), doc.count(*c)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Adds people and devices learnt in pairing, leaving records already present alone.
pub fn add_to_roster(
    docs: &mut Docs,
    roster: hearth_core::roster::RosterExport,
    now: Millis,
) -> Result<Outcome, ApiError> {
    let mut kinds = BTreeSet::new();
    let known_people: BTreeSet<PersonId> = docs.people().iter().map(|p| p.id).collect();
    for person in &roster.people {
        if !known_people.contains(&person.id) {
            docs.add_person(person, now).map_err(api_error)?;
            kinds.insert("people");
        }
    }
    let known_devices: BTreeMap<String, Device> = docs
        .devices()
        .into_iter()
        .map(|d| (d.id.clone(), d))
        .collect();
    for device in &roster.devices {
        match known_devices.get(&device.id) {
            Some(current) if current == device => {}
            // A revocation is never undone by an older copy of the roster.
            Some(current) if current.revoked_at.is_some() => {}
            Some(current) => {
                let mut merged = device.clone();
                merged.age_recipient = merged
                    .age_recipient
                    .or_else(|| current.age_recipient.clone());
                docs.put_device(&merged, now).map_err(api_error)?;
                kinds.insert("devices");
            }
            None => {
                docs.put_device(device, now).map_err(api_error)?;
                kinds.insert("devices");
            }
        }
    }
    let mut touched = BTreeMap::new();
    if !kinds.is_empty() {
        touched.insert(DocKind::Household, kinds);
    }
    Ok(Outcome {
        value: json!({ "added": true }),
        touched,
    })
}

/// Whether this device holds entries beyond its own person and device.
pub fn holds_entries(docs: &Docs) -> bool {
    [&docs.household, &docs.private].iter().any(|doc| {
        Collection::ALL
            .iter()
            .filter(|c| !matches!(c, Collection::People | Collection::Devices))
            .any(|c| doc.count(*c) > 0)
    })
}

// ----- the roster, pausing and leaving ------------------------------------------------
//
// These calls need to know which device is answering, so the owner routes them here
// rather than through `handle`. The rules they keep are in ARCHITECTURE.md ("Roster").

/// The longest pause `pause --for` accepts: a pause is a breather, not a way to leave.
pub const MAX_PAUSE_SECS: u64 = 90 * 24 * 3600;

/// A device id as typed: upper case, without the dashes between groups or spaces.
pub(super) fn device_key(id: &str) -> String {
    id.chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .flat_map(char::to_uppercase)
        .collect()
}

/// Resolves a device id or a prefix of it (dashes and case do not matter).
pub fn resolve_device(docs: &Docs, prefix: &str) -> Result<Device, ApiError> {
    let wanted = device_key(prefix);
    let not_found = || {
        ApiError::new(
            ErrorCode::NotFound,
            format!(
                "no device on the roster has an id starting with `{}`",
                prefix.trim()
            ),
            "`hearth devices list` shows the ids; a few characters are enough",
        )
    };
    if wanted.is_empty() {
        return Err(not_found());
    }
    let mut matches: Vec<Device> = docs
        .devices()
        .into_iter()
        .filter(|d| device_key(&d.id).starts_with(&wanted))
        .collect();
    match matches.len() {
        0 => Err(not_found()),
        1 => Ok(matches.remove(0)),
        n => Err(ApiError::new(
            ErrorCode::Ambiguous,
            format!("`{}` matches {n} devices", prefix.trim()),
            "type more characters of the id",
        )),
    }
}

pub(super) fn device_summary(
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

pub(super) fn partner_names(docs: &Docs) -> Vec<String> {
    docs.people()
        .into_iter()
        .filter(|p| p.id != docs.me)
        .map(|p| p.name)
        .collect()
}

/// Refuses pausing or leaving when there is nobody to share with, or sharing has ended.
pub(super) fn require_sharing(docs: &Docs, what: &str) -> Result<(), ApiError> {
    let people = docs.people();
    if !people.iter().any(|p| p.id != docs.me) {
        return Err(ApiError::new(
            ErrorCode::Invalid,
            format!("no partner has joined this household yet, so there is no sharing to {what}"),
            "pair your partner's device with `hearth pair invite` first",
        ));
    }
    if let Some(who) = people.iter().find(|p| docs.left_at(p.id).is_some()) {
        let subject = if who.id == docs.me {
            "you".to_string()
        } else {
            who.name.clone()
        };
        return Err(ApiError::new(
            ErrorCode::Invalid,
            format!("sharing in this household has ended ({subject} left), so there is nothing to {what}"),
            "your own copy stays here; `hearth export` writes it out",
        ));
    }
    Ok(())
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
    let policy = hearth_core::sync::Policy::from_docs(docs, now);
    match call {
        RosterCall::DevicesList => {
            let mut list: Vec<hearth_api::DeviceSummary> = docs
                .devices()
                .iter()
                .map(|d| device_summary(docs, d, this_device, &policy))
                .collect();
            // Yours first, then by when they were added.
            list.sort_by_key(|d| (d.person_id != docs.me.to_string(), d.added_at));
            Ok(Outcome::read(to_json(&list)))
        }
        RosterCall::DevicesRename { id, name } => {
            let mut device = resolve_device(docs, &id)?;
            if device.person != docs.me {
                return Err(ApiError::new(
                    ErrorCode::Invalid,
                    format!(
                        "that device is {}'s; each person names their own devices",
                        name_of(docs, device.person)
                    ),
                    "ask them to rename it with `hearth devices rename` on one of their devices",
                ));
            }
            if device.revoked_at.is_some() {
                return Err(ApiError::new(
                    ErrorCode::Invalid,
                    "that device was removed from the household",
                    "`hearth devices list` shows the devices still in use",
                ));
            }
            device.name = name.trim().to_string();
            docs.put_device(&device, now).map_err(api_error)?;
            let summary = device_summary(docs, &device, this_device, &policy);
            Ok(Outcome::wrote(
                to_json(&summary),
                DocKind::Household,
                "devices",
            ))
        }
        RosterCall::DevicesRemove { id } => {
            let mut device = resolve_device(docs, &id)?;
            if device.id == this_device {
                return Err(ApiError::new(
                    ErrorCode::Invalid,
                    "that is the device you are using",
                    "remove it from another of your devices; to stop sharing with your partner altogether, use `hearth leave`",
                ));
            }
            let distrusted = docs.distrusted().iter().any(|(d, _)| *d == device.id);
            if device.revoked_at.is_some() || distrusted {
                return Err(ApiError::new(
                    ErrorCode::Invalid,
                    "that device was already removed",
                    "`hearth devices list` shows the devices still in use",
                ));
            }
            device.revoked_at = Some(now);
            let doc = if device.person == docs.me {
                // One of this person's own devices: a signed removal that every device
                // of the household honours.
                let key = hearth_core::roster::parse_key(&device.public_key).map_err(|_| {
                    ApiError::new(
                        ErrorCode::Invalid,
                        "that device's key on the roster is damaged",
                        "nothing was changed; `hearth status` lists roster entries this device refused",
                    )
                })?;
                device.removal = Some(hearth_core::roster::remove(signer, &key, now));
                docs.put_device(&device, now).map_err(api_error)?;
                tracing::info!(peer = %device.id, "removed one of this person's devices from the roster");
                DocKind::Household
            } else {
                // The partner's device: only this person's devices stop trusting it.
                // What the partner's devices trust among themselves is theirs to decide.
                docs.distrust(&device.id, now).map_err(api_error)?;
                tracing::info!(peer = %device.id, "this person's devices stop trusting a partner's device");
                DocKind::Private(docs.me)
            };
            let summary = device_summary(docs, &device, this_device, &policy);
            Ok(Outcome::wrote(to_json(&summary), doc, "devices"))
        }
        RosterCall::Pause { for_secs } => {
            require_sharing(docs, "pause")?;
            let until = match for_secs {
                Some(0) => {
                    return Err(ApiError::new(
                        ErrorCode::Invalid,
                        "a pause needs to last a while",
                        "give --for a length such as 2h or 2d, or leave it out to pause until `hearth resume`",
                    ))
                }
                Some(secs) if secs > MAX_PAUSE_SECS => {
                    return Err(ApiError::new(
                        ErrorCode::Invalid,
                        format!(
                            "a pause can last at most {} days",
                            MAX_PAUSE_SECS / (24 * 3600)
                        ),
                        "pick a shorter --for, or pause without --for and resume when you are ready",
                    ))
                }
                Some(secs) => Some(now.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX / 2) * 1000)),
                None => None,
            };
            let pause = hearth_core::model::Pause { since: now, until };
            docs.set_pause(docs.me, Some(&pause), now)
                .map_err(api_error)?;
            tracing::info!("sharing with the partner's devices is paused");
            Ok(Outcome::wrote(
                to_json(&Paused {
                    paused: true,
                    since: pause.since,
                    until: pause.until,
                    with: partner_names(docs),
                }),
                DocKind::Household,
                "people",
            ))
        }
        RosterCall::Resume => {
            let recorded = docs.pause_of(docs.me);
            let was_active = recorded.is_some_and(|p| p.active_at(now));
            if recorded.is_none() {
                return Ok(Outcome::read(to_json(&Resumed {
                    resumed: false,
                    with: None,
                })));
            }
            docs.set_pause(docs.me, None, now).map_err(api_error)?;
            tracing::info!("sharing with the partner's devices resumed");
            Ok(Outcome::wrote(
                to_json(&Resumed {
                    resumed: was_active,
                    with: Some(partner_names(docs)),
                }),
                DocKind::Household,
                "people",
            ))
        }
        RosterCall::Leave { confirm } => {
            if let Some(at) = docs.left_at(docs.me) {
                return Ok(Outcome::read(to_json(&Left {
                    left: true,
                    already: true,
                    at,
                    with: None,
                })));
            }
            if !confirm {
                return Err(ApiError::new(
                    ErrorCode::Invalid,
                    "leaving ends sharing with your partner for good, so it needs a confirmation",
                    "run `hearth leave` on a terminal to be asked, or add --yes",
                ));
            }
            require_sharing(docs, "end")?;
            docs.set_left(docs.me, now, now).map_err(api_error)?;
            tracing::info!("this person ended sharing with the partner");
            Ok(Outcome::wrote(
                to_json(&Left {
                    left: true,
                    already: false,
                    at: now,
                    with: Some(partner_names(docs)),
                }),
                DocKind::Household,
                "people",
            ))
        }
    }
}

/// Whether this device is fresh enough to become another device of someone else: no
/// entries, and a roster of nothing but itself and its own person.
pub fn is_fresh_device(docs: &Docs, this_device: &str) -> bool {
    !holds_entries(docs)
        && docs.people().iter().all(|p| p.id == docs.me)
        && docs.devices().iter().all(|d| d.id == this_device)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod roster_tests {
    use super::*;

    fn device(id: &str, person: PersonId) -> Device {
        Device {
            id: id.into(),
            person,
            name: format!("device {id}"),
            public_key: "00".repeat(32),
            age_recipient: None,
            added_by: None,
            added_at: 0,
            revoked_at: None,
            admission: None,
            self_sig: None,
            removal: None,
        }
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
