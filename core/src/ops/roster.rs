//! The roster's use cases: devices named and removed, pausing, resuming and leaving,
//! and pairing's roster merge. The rules they keep are in ARCHITECTURE.md ("Roster"):
//! each person names and removes their own devices, a partner's device is only
//! distrusted by this person's devices, and a pause or a leaving is this person's own.
//!
//! They need to know which device is answering (`this_device`) and sign with its key;
//! both come in as arguments.

use std::collections::{BTreeMap, BTreeSet};

use ring::signature::Ed25519KeyPair;

use super::{name_of, Touched, Written};
use crate::doc::{Collection, DocError, DocKind, Docs};
use crate::model::{Device, Millis, Pause, PersonId};
use crate::roster::RosterExport;

/// The longest pause `pause --for` accepts: a pause is a breather, not a way to leave.
pub const MAX_PAUSE_SECS: u64 = 90 * 24 * 3600;

/// Why a roster, pause or leave call was refused. Each leaves the documents as they
/// were.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RosterOpError {
    /// No device's id starts with what was typed.
    #[error("no device on the roster has an id starting with `{prefix}`")]
    NoSuchDevice {
        /// What was typed, trimmed.
        prefix: String,
    },
    /// Several devices' ids start with what was typed.
    #[error("`{prefix}` matches {count} devices")]
    AmbiguousDevice {
        /// What was typed, trimmed.
        prefix: String,
        /// How many matched.
        count: usize,
    },
    /// A rename of the partner's device.
    #[error("that device is {owner}'s; each person names their own devices")]
    NotYourDevice {
        /// The name of the person it belongs to.
        owner: String,
    },
    /// A rename of a device already removed.
    #[error("that device was removed from the household")]
    DeviceGone,
    /// A removal of the device answering.
    #[error("that is the device you are using")]
    ThisDevice,
    /// A second removal.
    #[error("that device was already removed")]
    AlreadyRemoved,
    /// The device's key on the roster does not parse, so no removal can name it.
    #[error("that device's key on the roster is damaged")]
    DamagedKey,
    /// A pause or leave with nobody to share with.
    #[error("no partner has joined this household yet, so there is no sharing to {what}")]
    NoPartnerYet {
        /// What was asked: `pause`, `end`.
        what: &'static str,
    },
    /// A pause or leave after someone left.
    #[error("sharing in this household has ended ({who} left), so there is nothing to {what}")]
    SharingEnded {
        /// `you`, or the partner's name.
        who: String,
        /// What was asked: `pause`, `end`.
        what: &'static str,
    },
    /// `pause --for 0`.
    #[error("a pause needs to last a while")]
    PauseTooShort,
    /// `pause --for` beyond [`MAX_PAUSE_SECS`].
    #[error("a pause can last at most {days} days")]
    PauseTooLong {
        /// The longest pause, in days.
        days: u64,
    },
    /// `leave` without confirming.
    #[error("leaving ends sharing with your partner for good, so it needs a confirmation")]
    LeaveUnconfirmed,
    /// The documents refused the write.
    #[error(transparent)]
    Doc(#[from] DocError),
}

impl RosterOpError {
    /// What to do next, for an API error's hint; `None` for [`RosterOpError::Doc`], whose
    /// hint depends on the document error.
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self {
            RosterOpError::NoSuchDevice { .. } => {
                "`hearth devices list` shows the ids; a few characters are enough"
            }
            RosterOpError::AmbiguousDevice { .. } => "type more characters of the id",
            RosterOpError::NotYourDevice { .. } => {
                "ask them to rename it with `hearth devices rename` on one of their devices"
            }
            RosterOpError::DeviceGone | RosterOpError::AlreadyRemoved => {
                "`hearth devices list` shows the devices still in use"
            }
            RosterOpError::ThisDevice => {
                "remove it from another of your devices; to stop sharing with your partner altogether, use `hearth leave`"
            }
            RosterOpError::DamagedKey => {
                "nothing was changed; `hearth status` lists roster entries this device refused"
            }
            RosterOpError::NoPartnerYet { .. } => {
                "pair your partner's device with `hearth pair invite` first"
            }
            RosterOpError::SharingEnded { .. } => {
                "your own copy stays here; `hearth export` writes it out"
            }
            RosterOpError::PauseTooShort => {
                "give --for a length such as 2h or 2d, or leave it out to pause until `hearth resume`"
            }
            RosterOpError::PauseTooLong { .. } => {
                "pick a shorter --for, or pause without --for and resume when you are ready"
            }
            RosterOpError::LeaveUnconfirmed => {
                "run `hearth leave` on a terminal to be asked, or add --yes"
            }
            RosterOpError::Doc(_) => return None,
        })
    }
}

/// Adds people and devices learnt in pairing, leaving records already present alone.
/// A revocation here is never undone by an older copy of the roster, and an age
/// recipient this device knows is kept when the copy lacks it.
pub fn merge_roster(
    docs: &mut Docs,
    roster: &RosterExport,
    now: Millis,
) -> Result<Touched, DocError> {
    let mut kinds = BTreeSet::new();
    let known_people: BTreeSet<PersonId> = docs.people().iter().map(|p| p.id).collect();
    for person in &roster.people {
        if !known_people.contains(&person.id) {
            docs.add_person(person, now)?;
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
            Some(current) if current.revoked_at.is_some() => {}
            Some(current) => {
                let mut merged = device.clone();
                merged.age_recipient = merged
                    .age_recipient
                    .or_else(|| current.age_recipient.clone());
                docs.put_device(&merged, now)?;
                kinds.insert("devices");
            }
            None => {
                docs.put_device(device, now)?;
                kinds.insert("devices");
            }
        }
    }
    let mut touched = Touched::new();
    if !kinds.is_empty() {
        touched.insert(DocKind::Household, kinds);
    }
    Ok(touched)
}

/// Whether this device holds entries beyond its people and devices.
pub fn holds_entries(docs: &Docs) -> bool {
    [&docs.household, &docs.private].iter().any(|doc| {
        Collection::ALL
            .iter()
            .filter(|c| !matches!(c, Collection::People | Collection::Devices))
            .any(|c| doc.count(*c) > 0)
    })
}

/// Whether this device is fresh enough to become another device of someone else: no
/// entries, and a roster of nothing but itself and its own person.
pub fn is_fresh_device(docs: &Docs, this_device: &str) -> bool {
    !holds_entries(docs)
        && docs.people().iter().all(|p| p.id == docs.me)
        && docs.devices().iter().all(|d| d.id == this_device)
}

/// A device id as typed: upper case, without the dashes between groups or spaces.
fn device_key(id: &str) -> String {
    id.chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .flat_map(char::to_uppercase)
        .collect()
}

/// The device whose id starts with `prefix` (dashes, spaces and case do not matter).
pub fn resolve_device(docs: &Docs, prefix: &str) -> Result<Device, RosterOpError> {
    let wanted = device_key(prefix);
    let not_found = || RosterOpError::NoSuchDevice {
        prefix: prefix.trim().to_string(),
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
        count => Err(RosterOpError::AmbiguousDevice {
            prefix: prefix.trim().to_string(),
            count,
        }),
    }
}

/// Every device on the roster: this person's first, then by when they were added.
pub fn devices_listed(docs: &Docs) -> Vec<Device> {
    let mut list = docs.devices();
    list.sort_by_key(|d| (d.person != docs.me, d.added_at));
    list
}

/// Renames one of this person's own devices still in use.
pub fn rename_device(
    docs: &mut Docs,
    id: &str,
    name: &str,
    now: Millis,
) -> Result<Written<Device>, RosterOpError> {
    let mut device = resolve_device(docs, id)?;
    if device.person != docs.me {
        return Err(RosterOpError::NotYourDevice {
            owner: name_of(docs, device.person),
        });
    }
    if device.revoked_at.is_some() {
        return Err(RosterOpError::DeviceGone);
    }
    device.name = name.trim().to_string();
    docs.put_device(&device, now)?;
    Ok(Written::one(device, DocKind::Household, "devices"))
}

/// Removes a device other than the one answering. One of this person's own devices gets
/// a removal signed by `signer` that every device of the household honours; a partner's
/// device is only distrusted by this person's devices (what the partner's devices trust
/// among themselves is theirs to decide). The device comes back with `revoked_at` set
/// either way, as this person's devices now see it.
pub fn remove_device(
    docs: &mut Docs,
    this_device: &str,
    signer: &Ed25519KeyPair,
    id: &str,
    now: Millis,
) -> Result<Written<Device>, RosterOpError> {
    let mut device = resolve_device(docs, id)?;
    if device.id == this_device {
        return Err(RosterOpError::ThisDevice);
    }
    let distrusted = docs.distrusted().iter().any(|(d, _)| *d == device.id);
    if device.revoked_at.is_some() || distrusted {
        return Err(RosterOpError::AlreadyRemoved);
    }
    device.revoked_at = Some(now);
    let doc = if device.person == docs.me {
        let key =
            crate::roster::parse_key(&device.public_key).map_err(|_| RosterOpError::DamagedKey)?;
        device.removal = Some(crate::roster::remove(signer, &key, now));
        docs.put_device(&device, now)?;
        tracing::info!(peer = %device.id, "removed one of this person's devices from the roster");
        DocKind::Household
    } else {
        docs.distrust(&device.id, now)?;
        tracing::info!(peer = %device.id, "this person's devices stop trusting a partner's device");
        DocKind::Private(docs.me)
    };
    Ok(Written::one(device, doc, "devices"))
}

/// The partner's names, for answers that say with whom sharing changed.
pub fn partner_names(docs: &Docs) -> Vec<String> {
    docs.people()
        .into_iter()
        .filter(|p| p.id != docs.me)
        .map(|p| p.name)
        .collect()
}

/// Refuses pausing or leaving when there is nobody to share with, or sharing has ended.
fn require_sharing(docs: &Docs, what: &'static str) -> Result<(), RosterOpError> {
    let people = docs.people();
    if !people.iter().any(|p| p.id != docs.me) {
        return Err(RosterOpError::NoPartnerYet { what });
    }
    if let Some(who) = people.iter().find(|p| docs.left_at(p.id).is_some()) {
        let who = if who.id == docs.me {
            "you".to_string()
        } else {
            who.name.clone()
        };
        return Err(RosterOpError::SharingEnded { who, what });
    }
    Ok(())
}

/// A pause as written, and with whom.
#[derive(Debug, Clone, PartialEq)]
pub struct Paused {
    /// The pause.
    pub pause: Pause,
    /// The partner's names.
    pub with: Vec<String>,
}

/// Pauses sharing with the partner's devices, for `for_secs` or until `resume`.
pub fn pause(
    docs: &mut Docs,
    for_secs: Option<u64>,
    now: Millis,
) -> Result<Written<Paused>, RosterOpError> {
    require_sharing(docs, "pause")?;
    let until = match for_secs {
        Some(0) => return Err(RosterOpError::PauseTooShort),
        Some(secs) if secs > MAX_PAUSE_SECS => {
            return Err(RosterOpError::PauseTooLong {
                days: MAX_PAUSE_SECS / (24 * 3600),
            })
        }
        Some(secs) => Some(now.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX / 2) * 1000)),
        None => None,
    };
    let pause = Pause { since: now, until };
    docs.set_pause(docs.me, Some(&pause), now)?;
    tracing::info!("sharing with the partner's devices is paused");
    let with = partner_names(docs);
    Ok(Written::one(
        Paused { pause, with },
        DocKind::Household,
        "people",
    ))
}

/// What `resume` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Resumed {
    /// No pause was recorded; nothing was written.
    NotPaused,
    /// The pause was cleared.
    Cleared {
        /// Whether it was still in force (rather than already past its end).
        was_active: bool,
        /// The partner's names.
        with: Vec<String>,
    },
}

/// Ends this person's pause.
pub fn resume(docs: &mut Docs, now: Millis) -> Result<Written<Resumed>, RosterOpError> {
    let Some(recorded) = docs.pause_of(docs.me) else {
        return Ok(Written::nothing(Resumed::NotPaused));
    };
    let was_active = recorded.active_at(now);
    docs.set_pause(docs.me, None, now)?;
    tracing::info!("sharing with the partner's devices resumed");
    let with = partner_names(docs);
    Ok(Written::one(
        Resumed::Cleared { was_active, with },
        DocKind::Household,
        "people",
    ))
}

/// What `leave` did.
#[derive(Debug, Clone, PartialEq)]
pub struct Left {
    /// When this person left.
    pub at: Millis,
    /// Whether they had left before this call (and nothing was written).
    pub already: bool,
    /// The partner's names, when this call is the leaving.
    pub with: Option<Vec<String>>,
}

/// Ends sharing with the partner for good, once and only when confirmed. Each side
/// keeps its own copy.
pub fn leave(docs: &mut Docs, confirm: bool, now: Millis) -> Result<Written<Left>, RosterOpError> {
    if let Some(at) = docs.left_at(docs.me) {
        return Ok(Written::nothing(Left {
            at,
            already: true,
            with: None,
        }));
    }
    if !confirm {
        return Err(RosterOpError::LeaveUnconfirmed);
    }
    require_sharing(docs, "end")?;
    docs.set_left(docs.me, now, now)?;
    tracing::info!("this person ended sharing with the partner");
    let with = Some(partner_names(docs));
    Ok(Written::one(
        Left {
            at: now,
            already: false,
            with,
        },
        DocKind::Household,
        "people",
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::doc::tests::{actor, person};

    const THIS: &str = "AAAA-BBBB-CCCC";
    const NOW: Millis = 1_000;

    fn device(id: &str, person: PersonId) -> Device {
        Device::unsigned(id.into(), person, format!("device {id}"), "00".repeat(32))
    }

    /// Ada with two devices (this one first), and Bo with one when `with_partner`.
    fn household(with_partner: bool) -> Docs {
        let ada = person("Ada", 1);
        let mut docs = Docs::new(ada.id, actor(1));
        docs.add_person(&ada, 0).unwrap();
        docs.put_device(&device(THIS, ada.id), 0).unwrap();
        docs.put_device(&device("AAAA-ZZZZ-0000", ada.id), 0)
            .unwrap();
        if with_partner {
            let bo = person("Bo", 2);
            docs.add_person(&bo, 0).unwrap();
            docs.put_device(&device("QQQQ-RRRR-SSSS", bo.id), 0)
                .unwrap();
        }
        docs
    }

    fn signer() -> Ed25519KeyPair {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&crate::test_rng()).unwrap();
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    #[test]
    fn device_ids_resolve_by_prefix_whatever_the_dashes_and_case() {
        let docs = household(true);
        assert_eq!(
            resolve_device(&docs, "qqqq r").unwrap().id,
            "QQQQ-RRRR-SSSS"
        );
        assert!(matches!(
            resolve_device(&docs, "aaaa"),
            Err(RosterOpError::AmbiguousDevice { count: 2, .. })
        ));
        for nothing in ["XYZ", " - "] {
            assert!(matches!(
                resolve_device(&docs, nothing),
                Err(RosterOpError::NoSuchDevice { .. })
            ));
        }
    }

    #[test]
    fn each_person_renames_only_their_own_devices() {
        let mut docs = household(true);
        let renamed = rename_device(&mut docs, "aaaaz", " phone ", NOW).unwrap();
        assert_eq!(renamed.record.name, "phone");
        assert_eq!(
            renamed.touched,
            BTreeMap::from([(DocKind::Household, BTreeSet::from(["devices"]))])
        );
        assert!(matches!(
            rename_device(&mut docs, "QQQQ", "x", NOW),
            Err(RosterOpError::NotYourDevice { owner }) if owner == "Bo"
        ));
    }

    #[test]
    fn an_own_device_is_removed_for_everyone_and_a_partners_only_for_this_person() {
        let mut docs = household(true);
        let me = docs.me;
        let signer = signer();
        assert!(matches!(
            remove_device(&mut docs, THIS, &signer, THIS, NOW),
            Err(RosterOpError::ThisDevice)
        ));
        // The partner's device: distrusted in this person's private document; the
        // household's roster entry is theirs and stays as it is.
        let theirs = remove_device(&mut docs, THIS, &signer, "QQQQ", NOW).unwrap();
        assert_eq!(theirs.record.revoked_at, Some(NOW));
        assert_eq!(
            theirs.touched,
            BTreeMap::from([(DocKind::Private(me), BTreeSet::from(["devices"]))])
        );
        assert_eq!(resolve_device(&docs, "QQQQ").unwrap().revoked_at, None);
        assert!(matches!(
            remove_device(&mut docs, THIS, &signer, "QQQQ", NOW),
            Err(RosterOpError::AlreadyRemoved)
        ));
        // An own device carries a removal signed by this one.
        let own = remove_device(&mut docs, THIS, &signer, "AAAAZ", NOW).unwrap();
        assert!(own.record.removal.is_some());
        assert_eq!(
            own.touched.keys().collect::<Vec<_>>(),
            [&DocKind::Household]
        );
        assert!(matches!(
            rename_device(&mut docs, "AAAAZ", "x", NOW),
            Err(RosterOpError::DeviceGone)
        ));
        let listed = devices_listed(&docs);
        assert_eq!(listed.last().unwrap().person, person("Bo", 2).id);
    }

    #[test]
    fn pausing_needs_a_partner_and_a_sensible_length() {
        assert!(matches!(
            pause(&mut household(false), None, NOW),
            Err(RosterOpError::NoPartnerYet { what: "pause" })
        ));
        let mut docs = household(true);
        assert!(matches!(
            pause(&mut docs, Some(0), NOW),
            Err(RosterOpError::PauseTooShort)
        ));
        assert!(matches!(
            pause(&mut docs, Some(MAX_PAUSE_SECS + 1), NOW),
            Err(RosterOpError::PauseTooLong { days: 90 })
        ));
        let paused = pause(&mut docs, Some(60), NOW).unwrap().record;
        assert_eq!(paused.pause.until, Some(61_000));
        assert_eq!(paused.with, ["Bo"]);
        // Resumed after its end: cleared, but it was no longer in force.
        let late = resume(&mut docs, 61_000).unwrap();
        assert!(matches!(
            late.record,
            Resumed::Cleared {
                was_active: false,
                ..
            }
        ));
        let again = resume(&mut docs, 62_000).unwrap();
        assert_eq!(again.record, Resumed::NotPaused);
        assert!(again.touched.is_empty());
    }

    #[test]
    fn leaving_needs_confirmation_happens_once_and_ends_pausing() {
        let mut docs = household(true);
        assert!(matches!(
            leave(&mut docs, false, NOW),
            Err(RosterOpError::LeaveUnconfirmed)
        ));
        pause(&mut docs, None, NOW).unwrap();
        let left = leave(&mut docs, true, NOW).unwrap().record;
        assert_eq!(
            (left.already, left.with),
            (false, Some(vec!["Bo".to_string()]))
        );
        assert_eq!(docs.pause_of(docs.me), None, "leaving ends the pause");
        let again = leave(&mut docs, false, NOW + 1).unwrap();
        assert_eq!((again.record.at, again.record.already), (NOW, true));
        assert!(again.touched.is_empty());
        assert!(matches!(
            pause(&mut docs, None, NOW),
            Err(RosterOpError::SharingEnded { who, .. }) if who == "you"
        ));
    }

    #[test]
    fn a_roster_merge_never_undoes_a_revocation_and_keeps_a_known_age_recipient() {
        let mut docs = household(true);
        let mut known = resolve_device(&docs, "AAAAZ").unwrap();
        known.age_recipient = Some("age1known".into());
        docs.put_device(&known, 0).unwrap();
        let mut gone = resolve_device(&docs, "QQQQ").unwrap();
        gone.revoked_at = Some(5);
        docs.put_device(&gone, 0).unwrap();
        // An older copy: neither revocation nor recipient, and a new name.
        let mut older = household(true);
        let mut renamed = resolve_device(&older, "AAAAZ").unwrap();
        renamed.name = "tablet".into();
        older.put_device(&renamed, 0).unwrap();
        let roster = RosterExport {
            people: older.people(),
            devices: older.devices(),
            left: Vec::new(),
        };
        let touched = merge_roster(&mut docs, &roster, NOW).unwrap();
        assert_eq!(
            touched,
            BTreeMap::from([(DocKind::Household, BTreeSet::from(["devices"]))])
        );
        let merged = resolve_device(&docs, "AAAAZ").unwrap();
        assert_eq!(merged.name, "tablet");
        assert_eq!(merged.age_recipient.as_deref(), Some("age1known"));
        assert_eq!(resolve_device(&docs, "QQQQ").unwrap().revoked_at, Some(5));
    }

    #[test]
    fn a_device_is_fresh_only_without_entries_or_anyone_else() {
        let ada = person("Ada", 1);
        let mut alone = Docs::new(ada.id, actor(1));
        alone.add_person(&ada, 0).unwrap();
        alone.put_device(&device(THIS, ada.id), 0).unwrap();
        assert!(is_fresh_device(&alone, THIS) && !holds_entries(&alone));
        assert!(!is_fresh_device(&alone, "ANOTHER"));
        assert!(!is_fresh_device(&household(true), THIS));
    }
}
