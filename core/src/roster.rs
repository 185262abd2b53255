//! Who belongs: the signed statements on the roster, and the verified roster each
//! device computes for itself from its own key.
//!
//! The roster lives in the household document, which every paired device can write. So
//! no device trusts an entry because it is there. Each device entry carries signed
//! statements, in the spirit of Matrix cross-signing and Keyhive's delegations:
//!
//! * **`admission`**: who let the device in, and as whom. A person's first device signs
//!   its own (*founder*); a later device of the same person is signed by one of that
//!   person's devices (*own device*); the partner's first device is signed by the
//!   inviting device (*partner*).
//! * **`self_sig`**: the device's own signature over its key, person and age
//!   recipient, so nobody else can move it to another person or swap the recipient
//!   that bundles are sealed to. The name is left out: another device of the same
//!   person may rename it (who may edit a roster entry at all is the authorship rule's
//!   job, not the signature's).
//! * **`removal`**: a signature by a device of the *same person* saying the device is
//!   removed. A removal signed by anyone else counts for nothing.
//!
//! [`verify`] starts from this device's own key and walks admissions both ways: an
//! admission signed by a trusted device vouches for the device it admits, and the
//! sponsor named in a trusted device's own admission is trusted too (this device
//! accepted that sponsor's code when it joined). A partner admission counts only when it
//! joins this device's person to one other person, so a household never grows a third
//! person. Everything else is *refused*: ignored for trust, routing and the people list,
//! and reported.
//!
//! This module is pure: statements are made with a key passed in and checked against
//! bytes; time comes in as an argument.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use data_encoding::{BASE64URL_NOPAD, HEXLOWER};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::Serialize;

use crate::identity::DeviceId;
use crate::model::{Device, Millis, Person, PersonId};

/// The roster as it travels inside pairing: the people and the devices, as the
/// inviting device holds them.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct RosterExport {
    /// Everyone in the household.
    pub people: Vec<Person>,
    /// Every device on the roster.
    pub devices: Vec<Device>,
    /// People who ended sharing. Only for the inviting side's own checks; it does not
    /// travel.
    #[serde(skip)]
    pub left: Vec<PersonId>,
}

const ADMISSION_CONTEXT: &[u8] = b"hearth roster admission v1\0";
const SELF_CONTEXT: &[u8] = b"hearth roster device v1\0";
const REMOVAL_CONTEXT: &[u8] = b"hearth roster removal v1\0";

/// As whom a device was admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Admit {
    /// A person's first device, signed by itself.
    Founder,
    /// Another device of the sponsor's person.
    OwnDevice,
    /// The partner's first device, signed by the inviting device.
    Partner,
}

impl Admit {
    fn tag(self) -> &'static str {
        match self {
            Admit::Founder => "founder",
            Admit::OwnDevice => "own",
            Admit::Partner => "partner",
        }
    }

    fn from_tag(tag: &str) -> Option<Admit> {
        [Admit::Founder, Admit::OwnDevice, Admit::Partner]
            .into_iter()
            .find(|a| a.tag() == tag)
    }

    fn byte(self) -> u8 {
        match self {
            Admit::Founder => 1,
            Admit::OwnDevice => 2,
            Admit::Partner => 3,
        }
    }
}

/// Why an entry on the roster is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Refusal {
    /// The public key is not 32 bytes of hex, or the id is not the key's.
    BadKey,
    /// The entry carries no signature of its own device, or a wrong one.
    BadSelfSignature,
    /// The entry carries no admission, or one whose signature does not hold.
    BadAdmission,
    /// The admission is sound but no device this one trusts vouches for it: a device
    /// claiming a person it was never admitted to, or a third person.
    NotVouched,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::BadKey => "its key and id do not match",
            Refusal::BadSelfSignature => "it is not signed by its own key",
            Refusal::BadAdmission => "its admission is missing or its signature does not hold",
            Refusal::NotVouched => "no device of this household vouches for it",
        })
    }
}

/// A roster entry that this device does not trust, for `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refused {
    /// The entry's device id, as written.
    pub device_id: String,
    /// The person it claims.
    pub person: PersonId,
    /// The device it claims added it.
    pub added_by: Option<String>,
    /// Why it is refused.
    pub reason: Refusal,
}

/// A removal that was written but does not count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IgnoredRemoval {
    /// The device the removal names.
    pub device_id: String,
    /// Why it does not count.
    pub reason: &'static str,
}

/// The roster as this device trusts it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    /// Trusted entries, with `revoked_at` set from verified removals only.
    pub devices: Vec<Device>,
    /// The other person, once a partner admission links them to this device's person.
    pub partner: Option<PersonId>,
    /// Entries that are not trusted.
    pub refused: Vec<Refused>,
    /// Removals that do not count.
    pub ignored_removals: Vec<IgnoredRemoval>,
}

impl Verified {
    /// The people with at least one trusted device: this device's person first.
    pub fn people(&self, me: PersonId) -> Vec<PersonId> {
        let mut people = vec![me];
        people.extend(self.partner);
        people
    }

    /// Whether `device_id` is a trusted entry (removed or not).
    pub fn contains(&self, device_id: &str) -> bool {
        self.devices.iter().any(|d| d.id == device_id)
    }
}

/// A statement that could not be read or made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RosterError {
    /// A statement is not in the form this version writes.
    #[error("a roster signature is damaged or from a newer Hearth")]
    Malformed,
    /// A device's public key is not 32 bytes of hex.
    #[error("a device key on the roster is not a valid key")]
    BadKey,
}

fn message(context: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut out = context.to_vec();
    for part in parts {
        // Length-prefixed, so no two different statements share bytes.
        out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

fn admission_message(
    subject: &[u8; 32],
    person: PersonId,
    role: Admit,
    sponsor: &[u8; 32],
    at: Millis,
) -> Vec<u8> {
    message(
        ADMISSION_CONTEXT,
        &[
            subject,
            person.as_bytes(),
            &[role.byte()],
            sponsor,
            &at.to_be_bytes(),
        ],
    )
}

fn self_message(device: &Device, key: &[u8; 32]) -> Vec<u8> {
    message(
        SELF_CONTEXT,
        &[
            key,
            device.person.as_bytes(),
            device.age_recipient.as_deref().unwrap_or("").as_bytes(),
        ],
    )
}

fn removal_message(subject: &[u8; 32], by: &[u8; 32], at: Millis) -> Vec<u8> {
    message(REMOVAL_CONTEXT, &[subject, by, &at.to_be_bytes()])
}

/// Reads a device's hex public key.
pub fn parse_key(hex: &str) -> Result<[u8; 32], RosterError> {
    HEXLOWER
        .decode(hex.to_ascii_lowercase().as_bytes())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or(RosterError::BadKey)
}

fn public_key(signer: &Ed25519KeyPair) -> [u8; 32] {
    let mut key = [0u8; 32];
    key.copy_from_slice(signer.public_key().as_ref());
    key
}

fn signature_holds(key: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, key)
        .verify(message, signature)
        .is_ok()
}

/// A sponsor's signed admission of the device with key `subject` as `person`, in the
/// form stored in [`Device::admission`].
pub fn admit(
    sponsor: &Ed25519KeyPair,
    subject: &[u8; 32],
    person: PersonId,
    role: Admit,
    at: Millis,
) -> String {
    let sponsor_key = public_key(sponsor);
    let signature = sponsor.sign(&admission_message(subject, person, role, &sponsor_key, at));
    format!(
        "{}:{}:{at}:{}",
        role.tag(),
        HEXLOWER.encode(&sponsor_key),
        BASE64URL_NOPAD.encode(signature.as_ref())
    )
}

/// The device's own signature over its entry, stored in [`Device::self_sig`]. Made
/// again whenever the person or the recipient changes.
pub fn self_sign(signer: &Ed25519KeyPair, device: &Device) -> String {
    let signature = signer.sign(&self_message(device, &public_key(signer)));
    BASE64URL_NOPAD.encode(signature.as_ref())
}

/// A signed removal of the device with key `subject`, stored in [`Device::removal`].
pub fn remove(remover: &Ed25519KeyPair, subject: &[u8; 32], at: Millis) -> String {
    let by = public_key(remover);
    let signature = remover.sign(&removal_message(subject, &by, at));
    format!(
        "{}:{at}:{}",
        HEXLOWER.encode(&by),
        BASE64URL_NOPAD.encode(signature.as_ref())
    )
}

/// A parsed admission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// As whom.
    pub role: Admit,
    /// The signing device's key.
    pub sponsor: [u8; 32],
    /// When it was signed.
    pub at: Millis,
    signature: Vec<u8>,
}

impl Admission {
    /// Reads an admission as stored.
    pub fn parse(text: &str) -> Result<Admission, RosterError> {
        let mut parts = text.split(':');
        let (Some(role), Some(sponsor), Some(at), Some(signature), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(RosterError::Malformed);
        };
        Ok(Admission {
            role: Admit::from_tag(role).ok_or(RosterError::Malformed)?,
            sponsor: parse_key(sponsor).map_err(|_| RosterError::Malformed)?,
            at: at.parse().map_err(|_| RosterError::Malformed)?,
            signature: BASE64URL_NOPAD
                .decode(signature.as_bytes())
                .map_err(|_| RosterError::Malformed)?,
        })
    }

    fn holds(&self, subject: &[u8; 32], person: PersonId) -> bool {
        let message = admission_message(subject, person, self.role, &self.sponsor, self.at);
        signature_holds(&self.sponsor, &message, &self.signature)
    }
}

struct Removal {
    by: [u8; 32],
    at: Millis,
    signature: Vec<u8>,
}

impl Removal {
    fn parse(text: &str) -> Option<Removal> {
        let mut parts = text.split(':');
        let (Some(by), Some(at), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        Some(Removal {
            by: parse_key(by).ok()?,
            at: at.parse().ok()?,
            signature: BASE64URL_NOPAD.decode(signature.as_bytes()).ok()?,
        })
    }
}

/// Whether `device`'s own signature holds over its key, person and recipient: what the
/// inviting device checks before it writes a joiner's entry.
pub fn self_signature_holds(device: &Device) -> bool {
    let Ok(key) = parse_key(&device.public_key) else {
        return false;
    };
    device
        .self_sig
        .as_deref()
        .and_then(|s| BASE64URL_NOPAD.decode(s.as_bytes()).ok())
        .is_some_and(|sig| signature_holds(&key, &self_message(device, &key), &sig))
}

/// The entry's admission, if `sponsor` signed it for this entry's key and person:
/// what a joining device checks in the entry the inviting device sends back.
pub fn admission_by(device: &Device, sponsor: &[u8; 32]) -> Option<Admission> {
    let key = parse_key(&device.public_key).ok()?;
    Admission::parse(device.admission.as_deref()?)
        .ok()
        .filter(|a| a.sponsor == *sponsor && a.holds(&key, device.person))
}

/// One entry whose own signatures hold, waiting to be vouched for.
struct Candidate {
    device: Device,
    key: [u8; 32],
    admission: Admission,
}

/// Checks an entry's own statements: key, id, self-signature and admission signature.
fn check_entry(device: &Device) -> Result<Candidate, Refusal> {
    let key = parse_key(&device.public_key).map_err(|_| Refusal::BadKey)?;
    if DeviceId::from_public_key(&key).to_string() != device.id {
        return Err(Refusal::BadKey);
    }
    let self_sig = device
        .self_sig
        .as_deref()
        .and_then(|s| BASE64URL_NOPAD.decode(s.as_bytes()).ok())
        .ok_or(Refusal::BadSelfSignature)?;
    if !signature_holds(&key, &self_message(device, &key), &self_sig) {
        return Err(Refusal::BadSelfSignature);
    }
    let admission = device
        .admission
        .as_deref()
        .and_then(|a| Admission::parse(a).ok())
        .filter(|a| a.holds(&key, device.person))
        .ok_or(Refusal::BadAdmission)?;
    if admission.role == Admit::Founder && admission.sponsor != key {
        return Err(Refusal::BadAdmission);
    }
    Ok(Candidate {
        device: device.clone(),
        key,
        admission,
    })
}

/// The roster as the device with key `me_key`, of person `me`, trusts it.
///
/// `entries` may hold several copies of one device's entry: the household document's,
/// then the copy this person's devices kept when they last verified it. The first copy
/// whose signatures hold is used, so a partner who overwrites a field of an entry
/// (which breaks its signature) cannot make this person's devices drop each other; a
/// copy that fails is still reported. Removals are read from every copy.
pub fn verify(entries: &[Device], me_key: &[u8; 32], me: PersonId) -> Verified {
    let mut refused = Vec::new();
    let mut candidates: BTreeMap<[u8; 32], Candidate> = BTreeMap::new();
    let mut removals: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in entries {
        if let Some(removal) = &entry.removal {
            removals
                .entry(entry.id.clone())
                .or_default()
                .insert(removal.clone());
        }
        match check_entry(entry) {
            Ok(candidate) => {
                candidates.entry(candidate.key).or_insert(candidate);
            }
            Err(reason) => refused.push(Refused {
                device_id: entry.id.clone(),
                person: entry.person,
                added_by: entry.added_by.clone(),
                reason,
            }),
        }
    }
    // Trusted keys and their person. This device trusts itself, whatever its entry says.
    let mut trusted: BTreeMap<[u8; 32], PersonId> = BTreeMap::from([(*me_key, me)]);
    let mut partner: Option<PersonId> = None;
    loop {
        // Every edge that would trust one more device: (whether it runs forwards,
        // admission time, key to trust, its person, whether it is a partner edge).
        let mut edges: Vec<(bool, Millis, [u8; 32], PersonId, bool)> = Vec::new();
        for candidate in candidates.values() {
            let admission = &candidate.admission;
            let person = candidate.device.person;
            let (forwards, new_key, new_person, sponsor_person) =
                match (trusted.get(&candidate.key), trusted.get(&admission.sponsor)) {
                    // Forwards: a trusted sponsor vouches for the device it admitted.
                    (None, Some(&sponsor_person)) => (true, candidate.key, person, sponsor_person),
                    // Backwards: the sponsor of a trusted device is trusted, as the
                    // person its own entry names.
                    (Some(&trusted_person), None) if trusted_person == person => {
                        let Some(sponsor) = candidates.get(&admission.sponsor) else {
                            continue;
                        };
                        (
                            false,
                            sponsor.key,
                            sponsor.device.person,
                            sponsor.device.person,
                        )
                    }
                    _ => continue,
                };
            let edge = match admission.role {
                Admit::Founder => None,
                Admit::OwnDevice => (sponsor_person == person).then_some(false),
                // A partner edge joins this device's person to one other person.
                Admit::Partner => {
                    let other = match (sponsor_person == me, person == me) {
                        (true, false) => Some(person),
                        (false, true) => Some(sponsor_person),
                        _ => None,
                    };
                    other
                        .filter(|o| partner.is_none_or(|p| p == *o))
                        .map(|_| true)
                }
            };
            if let Some(is_partner) = edge {
                edges.push((forwards, admission.at, new_key, new_person, is_partner));
            }
        }
        if edges.is_empty() {
            break;
        }
        // Own-device edges first. The partner is chosen once, and never by order: the
        // admission through which this person joined comes first (only this person's
        // own devices could sign another partner admission), then the earliest.
        let own: Vec<_> = edges.iter().filter(|e| !e.4).collect();
        if !own.is_empty() {
            for &(_, _, key, person, _) in own {
                trusted.insert(key, person);
            }
            continue;
        }
        edges.sort();
        if partner.is_none() {
            // The device a partner edge brings in is always the other person's.
            let (_, _, key, person, _) = edges[0];
            partner = Some(person);
            trusted.insert(key, person);
            continue;
        }
        for (_, _, key, person, _) in edges {
            trusted.insert(key, person);
        }
    }
    let mut devices = Vec::new();
    for candidate in candidates.values() {
        if trusted.get(&candidate.key) == Some(&candidate.device.person) {
            let mut device = candidate.device.clone();
            device.revoked_at = None;
            devices.push(device);
        } else {
            refused.push(Refused {
                device_id: candidate.device.id.clone(),
                person: candidate.device.person,
                added_by: candidate.device.added_by.clone(),
                reason: Refusal::NotVouched,
            });
        }
    }
    let ignored_removals = apply_removals(&mut devices, &trusted, &removals);
    refused.sort_by(|a, b| a.device_id.cmp(&b.device_id));
    Verified {
        devices,
        partner,
        refused,
        ignored_removals,
    }
}

/// Sets `revoked_at` on every trusted device whose removal is signed by a device of the
/// same person that was not itself removed before. Removals are taken in order of time
/// (then id), so two devices removing each other leave the earlier removal standing.
fn apply_removals(
    devices: &mut [Device],
    trusted: &BTreeMap<[u8; 32], PersonId>,
    texts: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<IgnoredRemoval> {
    let mut ignored = Vec::new();
    let mut removals: Vec<(Millis, String, usize, [u8; 32])> = Vec::new();
    for (index, device) in devices.iter().enumerate() {
        let Ok(key) = parse_key(&device.public_key) else {
            continue;
        };
        for text in texts.get(&device.id).into_iter().flatten() {
            let valid = Removal::parse(text).filter(|r| {
                signature_holds(&r.by, &removal_message(&key, &r.by, r.at), &r.signature)
                    && trusted.get(&r.by) == Some(&device.person)
            });
            match valid {
                Some(removal) => {
                    removals.push((removal.at, device.id.clone(), index, removal.by));
                }
                None => ignored.push(IgnoredRemoval {
                    device_id: device.id.clone(),
                    reason: "it is not signed by a device of the same person",
                }),
            }
        }
    }
    removals.sort();
    let mut removed: BTreeSet<[u8; 32]> = BTreeSet::new();
    for (at, id, index, by) in removals {
        if removed.contains(&by) {
            ignored.push(IgnoredRemoval {
                device_id: id,
                reason: "the device that signed it was removed first",
            });
            continue;
        }
        if let Some(device) = devices.get_mut(index) {
            if let Ok(key) = parse_key(&device.public_key) {
                removed.insert(key);
            }
            device.revoked_at = Some(device.revoked_at.map_or(at, |r| r.min(at)));
        }
    }
    ignored
}

/// A founding device's entry, signed: what `hearth init` writes.
pub fn founder_entry(
    signer: &Ed25519KeyPair,
    person: PersonId,
    name: &str,
    age_recipient: Option<String>,
    now: Millis,
) -> Device {
    let key = public_key(signer);
    let mut device = Device {
        id: DeviceId::from_public_key(&key).to_string(),
        person,
        name: name.to_string(),
        public_key: HEXLOWER.encode(&key),
        age_recipient,
        added_by: None,
        added_at: now,
        revoked_at: None,
        admission: Some(admit(signer, &key, person, Admit::Founder, now)),
        self_sig: None,
        removal: None,
    };
    device.self_sig = Some(self_sign(signer, &device));
    device
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
