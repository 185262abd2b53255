//! Offline bundles: `bundle.export` and `bundle.import`.
//!
//! The choices around a bundle live here: which devices it is sealed for (the partner's
//! live devices whose age key the roster knows), where it starts (the heads this device
//! last shared with all of them, which the caller looks up in its sync states), and what
//! an imported one must pass before it is merged (see [`crate::envelope::bundle`] for the
//! format and the checks themselves). No file IO: the CLI reads and writes the file, and
//! the bundle travels base64 in the control call. Only the household document ever goes
//! in a bundle: a person's private document is never sealed for the partner.
//!
//! A pause does not stop bundles: carrying one is a deliberate act on both ends. After
//! either partner has left (`hearth leave`), bundles are neither made nor accepted.

use std::collections::BTreeSet;

use automerge::ChangeHash;
use ring::signature::Ed25519KeyPair;
use serde::{Deserialize, Serialize};

use super::{Touched, Written};
use crate::doc::{DocError, DocKind, Docs};
use crate::envelope::bundle::{self, Bundle, BundleError};
use crate::identity::DeviceId;
use crate::model::{Device, Millis, PersonId};
use crate::provenance::Admission;

/// A device named in a bundle's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleDevice {
    /// Its id.
    pub device_id: String,
    /// Its name.
    pub name: String,
    /// Its person's name; empty when unknown.
    pub person: String,
    /// Its person's id.
    pub person_id: PersonId,
}

/// The answer to `bundle.export`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleExported {
    /// The bundle file's bytes, base64.
    pub bundle: String,
    /// The bundle's size in bytes.
    pub bytes: u64,
    /// The size of the changes inside, before sealing.
    pub data_bytes: u64,
    /// Whether it holds everything, not only what the partner's devices lack.
    pub complete: bool,
    /// The partner's devices that can open it.
    pub sealed_for: Vec<BundleDevice>,
    /// The partner's devices whose key this device does not know yet.
    pub not_readable_by: Vec<BundleDevice>,
}

/// The answer to `bundle.import`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleImported {
    /// How many changes were new here.
    pub new_changes: u64,
    /// The device that made and signed it.
    pub signer: BundleDevice,
    /// When it was made, Unix ms.
    pub created_at: Millis,
    /// Whether this device now holds everything the bundle's sender held.
    pub up_to_date: bool,
}

/// Why a bundle was not made or not taken in. Every one leaves the documents as they
/// were.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleOpError {
    /// The bundle itself failed a check, or could not be sealed.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// No partner's device is on the roster.
    #[error("there is no partner's device to make a bundle for")]
    NoPartnerDevice,
    /// None of the partner's devices has shared its age key yet.
    #[error("none of your partner's devices has told this one its encryption key yet: a device shares it when it first syncs")]
    NoKnownKey,
    /// Someone in the household has left.
    #[error("{} ended sharing in this household (`hearth leave`), so bundles are neither made nor accepted any more", if *.by_me { "you" } else { "your partner" })]
    SharingEnded {
        /// Whether it was this person who left.
        by_me: bool,
    },
    /// The bundle was signed by this very device.
    #[error("this bundle was made on this very device; it is meant for your partner's devices")]
    MadeHere,
    /// Some of its changes have no proven author allowed to make them.
    #[error("this bundle was not imported: {changes} of its changes could not be shown to come from someone allowed to make them ({reasons})")]
    Forged {
        /// How many changes were held or refused.
        changes: usize,
        /// Plain reasons, never content.
        reasons: String,
    },
}

impl BundleOpError {
    /// What to do next, for an API error's hint.
    pub fn hint(&self) -> &'static str {
        match self {
            BundleOpError::Bundle(BundleError::Tampered | BundleError::Damaged { .. }) => {
                "bundles can travel through untrusted places, and this one did not arrive intact; ask for a fresh `hearth bundle export`"
            }
            BundleOpError::Bundle(
                BundleError::SignerUnknown { .. } | BundleError::SignerRevoked { .. },
            ) => {
                "only bundles signed by your partner's paired devices are accepted; `hearth devices list` shows them"
            }
            BundleOpError::Bundle(BundleError::WrongRecipient) => {
                "bundles are sealed to the devices the exporting device knew of; let the two devices sync once, then export again"
            }
            BundleOpError::Bundle(BundleError::MissingHistory { .. }) => {
                "a complete bundle (`hearth bundle export --all`) carries everything"
            }
            BundleOpError::Bundle(
                BundleError::NotABundle | BundleError::UnsupportedVersion { .. },
            ) => "check that this is the file `hearth bundle export` wrote",
            BundleOpError::Bundle(_) => "nothing was changed",
            BundleOpError::NoPartnerDevice => {
                "pair your partner's device first with `hearth pair invite`"
            }
            BundleOpError::NoKnownKey => {
                "let the two devices sync once on the same network (`hearth sync`), then export again"
            }
            BundleOpError::SharingEnded { .. } => {
                "everything already shared stays on both sides; `hearth export` still writes your own copy"
            }
            BundleOpError::MadeHere => "import it on your partner's device",
            BundleOpError::Forged { .. } => {
                "nothing was changed; ask for a new bundle made with `hearth bundle export` on your partner's own device"
            }
        }
    }

    /// Whether this is Hearth's fault rather than the bundle's or the household's.
    pub fn is_internal(&self) -> bool {
        matches!(self, BundleOpError::Bundle(BundleError::Encrypt { .. }))
    }
}

/// What `export` needs beyond the documents.
pub struct ExportContext<'a> {
    /// This device's key, which signs the bundle.
    pub signer: &'a Ed25519KeyPair,
    /// The heads of a document this device last shared with a device, if it ever did.
    pub known_heads: &'a dyn Fn(&DeviceId, &str) -> Option<Vec<ChangeHash>>,
}

fn sharing_ended(docs: &Docs, people: &[PersonId]) -> Result<(), BundleOpError> {
    match people.iter().find(|p| docs.left_at(**p).is_some()) {
        Some(person) => Err(BundleOpError::SharingEnded {
            by_me: *person == docs.me,
        }),
        None => Ok(()),
    }
}

fn bundle_device(docs: &Docs, device: &Device) -> BundleDevice {
    let person = docs
        .people()
        .into_iter()
        .find(|p| p.id == device.person)
        .map(|p| p.name)
        .unwrap_or_default();
    BundleDevice {
        device_id: device.id.clone(),
        name: device.name.clone(),
        person,
        person_id: device.person,
    }
}

/// Seals the household changes the partner's devices lack (all of them with `all`),
/// signed by this device. Reads only; nothing is written.
pub fn export(
    docs: &Docs,
    ctx: &ExportContext<'_>,
    all: bool,
    now: Millis,
) -> Result<BundleExported, BundleOpError> {
    let partners: Vec<Device> = docs
        .devices()
        .into_iter()
        .filter(|d| d.person != docs.me && d.revoked_at.is_none())
        .collect();
    if partners.is_empty() {
        return Err(BundleOpError::NoPartnerDevice);
    }
    let people: BTreeSet<PersonId> = partners.iter().map(|d| d.person).collect();
    let mut involved: Vec<PersonId> = people.into_iter().collect();
    involved.push(docs.me);
    sharing_ended(docs, &involved)?;

    let mut recipients = Vec::new();
    let mut sealed_for = Vec::new();
    let mut unreadable = Vec::new();
    for device in &partners {
        let found = bundle::recipients_of(docs, &device.id);
        if found.is_empty() {
            unreadable.push(device);
        } else {
            recipients.extend(found);
            sealed_for.push(device);
        }
    }
    if sealed_for.is_empty() {
        return Err(BundleOpError::NoKnownKey);
    }
    // Start after what every device it is sealed for already holds, as far as this
    // device knows; a device it never synced with gets everything.
    let since = if all {
        Vec::new()
    } else {
        let known: Option<Vec<Vec<ChangeHash>>> = sealed_for
            .iter()
            .map(|d| {
                let id: DeviceId = d.id.parse().ok()?;
                (ctx.known_heads)(&id, &DocKind::Household.doc_id())
            })
            .collect();
        known
            .map(|known| bundle::known_to_all(docs.household.automerge(), &known))
            .unwrap_or_default()
    };
    let (doc, complete) = bundle::changes_after(&docs.household, &since);
    let changes = doc.data.len();
    let contents = Bundle {
        created_at: now,
        docs: vec![doc],
    };
    let bytes = bundle::seal(&contents, &recipients, ctx.signer)?;
    Ok(BundleExported {
        bundle: data_encoding::BASE64.encode(&bytes),
        bytes: bytes.len() as u64,
        data_bytes: changes as u64,
        complete,
        sealed_for: sealed_for.iter().map(|d| bundle_device(docs, d)).collect(),
        not_readable_by: unreadable.iter().map(|d| bundle_device(docs, d)).collect(),
    })
}

/// The refusal of a bundle that carries changes whose author could not be proven, or
/// that touch what is not their author's. Counts and plain reasons, never content.
fn forged(admission: &Admission) -> BundleOpError {
    let mut why: Vec<String> = admission.refused_because.iter().cloned().collect();
    why.extend(admission.held_because.iter().map(|h| h.to_string()));
    BundleOpError::Forged {
        changes: admission.held + admission.refused,
        reasons: why.join("; "),
    }
}

/// Checks a bundle (base64 as it travels: signature, signer on the roster and not
/// removed, sealed for this device, every change's author proven and allowed) and
/// merges its household changes, all or nothing: on any refusal `docs` is as it was.
pub fn import(
    docs: &mut Docs,
    identity: &age::x25519::Identity,
    me_device: &str,
    encoded: &str,
) -> Result<Written<BundleImported>, BundleOpError> {
    let bytes = data_encoding::BASE64
        .decode(encoded.trim().as_bytes())
        .map_err(|_| BundleError::NotABundle)?;
    let signed = bundle::verify(&bytes)?;
    let roster = docs.devices();
    let signer = signed.check_signer(&roster)?.clone();
    if signer.id == me_device {
        return Err(BundleOpError::MadeHere);
    }
    sharing_ended(docs, &[signer.person, docs.me])?;
    let contents = signed.open(identity)?;
    let household = DocKind::Household.doc_id();
    if let Some(other) = contents.docs.iter().find(|d| d.doc_id != household) {
        return Err(BundleError::ForeignDocument {
            doc: other.doc_id.clone(),
        }
        .into());
    }
    // One document per bundle today. Each change must have a proven author who may
    // write it, as over sync; one that does not refuses the whole bundle, and the
    // household is left as it was.
    let mut new_changes = 0;
    let mut scratch = docs.clone();
    for doc in &contents.docs {
        let admission = scratch
            .admit_all_or_nothing(&doc.doc_id, &[doc.data.as_slice()], &doc.proofs)
            .map_err(|e| match e {
                DocError::Proof(_) => BundleError::Malformed {
                    reason: "a signed head in it does not hold".into(),
                },
                other => BundleError::Merge {
                    reason: other.to_string(),
                },
            })?;
        if admission.held > 0 || admission.refused > 0 {
            tracing::warn!(held = admission.held, refused = admission.refused, reasons = ?admission.refused_because, "refused a bundle whose changes could not all be proven and allowed");
            return Err(forged(&admission));
        }
        new_changes += admission.applied;
    }
    let up_to_date = contents.docs.iter().all(|d| {
        d.heads.iter().all(|h| {
            scratch
                .household
                .automerge()
                .get_change_meta_by_hash(h)
                .is_some()
        })
    });
    let answer = BundleImported {
        new_changes: new_changes as u64,
        signer: bundle_device(docs, &signer),
        created_at: contents.created_at,
        up_to_date,
    };
    let mut touched = Touched::new();
    if new_changes > 0 {
        *docs = scratch;
        touched.insert(DocKind::Household, BTreeSet::new());
    }
    Ok(Written {
        record: answer,
        touched,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! The refusals, each leaving the documents as they were. A bundle that merges
    //! needs a signed roster and signed heads, which only real devices make:
    //! `tests/tests/bundles.rs` runs that path between daemons.

    use super::*;
    use crate::doc::tests::docs_pair;
    use crate::ops::records::{self, EntryTime, NewMoment};
    use crate::ops::CountingFresh;
    use ring::signature::KeyPair;

    const NOW: Millis = 1_767_225_600_000;

    fn key() -> Ed25519KeyPair {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&crate::test_rng()).unwrap();
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    /// `person`'s device with key `key`, and (when given) the age key it shared.
    fn device(
        key: &Ed25519KeyPair,
        person: PersonId,
        age: Option<&age::x25519::Identity>,
    ) -> Device {
        let public: [u8; 32] = key.public_key().as_ref().try_into().unwrap();
        let mut device = Device::unsigned(
            DeviceId::from_public_key(&public).to_string(),
            person,
            "laptop".into(),
            data_encoding::HEXLOWER.encode(&public),
        );
        device.age_recipient = age.map(|a| a.to_public().to_string());
        device
    }

    /// Ada's and Bo's documents, each device on the roster with its age key, and one
    /// moment of Ada's that Bo does not have yet.
    struct Household {
        ada: Docs,
        bo: Docs,
        ada_key: Ed25519KeyPair,
        ada_device: String,
        bo_age: age::x25519::Identity,
        bo_device: String,
    }

    fn household() -> Household {
        let (mut ada, mut bo, ada_id, bo_id) = docs_pair();
        let (ada_key, bo_key) = (key(), key());
        let (ada_age, bo_age) = (
            age::x25519::Identity::generate(),
            age::x25519::Identity::generate(),
        );
        let ada_dev = device(&ada_key, ada_id, Some(&ada_age));
        let bo_dev = device(&bo_key, bo_id, Some(&bo_age));
        ada.put_device(&ada_dev, NOW).unwrap();
        ada.put_device(&bo_dev, NOW).unwrap();
        // Bo knows the roster, not the moment.
        bo.household
            .automerge_mut()
            .merge(&mut ada.household.automerge().clone())
            .unwrap();
        let moment = NewMoment {
            kind: crate::model::MomentKind::Laugh,
            started_by: None,
            note: Some("the soup story".into()),
            at: EntryTime::default(),
        };
        records::add_moment(&mut ada, moment, &mut CountingFresh(0), NOW).unwrap();
        Household {
            ada,
            bo,
            ada_key,
            ada_device: ada_dev.id,
            bo_age,
            bo_device: bo_dev.id,
        }
    }

    fn nothing_known(_: &DeviceId, _: &str) -> Option<Vec<ChangeHash>> {
        None
    }

    fn export_all(h: &Household) -> Result<BundleExported, BundleOpError> {
        let ctx = ExportContext {
            signer: &h.ada_key,
            known_heads: &nothing_known,
        };
        export(&h.ada, &ctx, false, NOW)
    }

    #[test]
    fn a_bundle_is_sealed_for_the_partners_devices_that_shared_their_key() {
        let h = household();
        let exported = export_all(&h).unwrap();
        assert!(
            exported.complete,
            "a device never synced with gets everything"
        );
        assert_eq!(exported.sealed_for.len(), 1);
        assert_eq!(exported.sealed_for[0].device_id, h.bo_device);
        assert_eq!(exported.sealed_for[0].person, "Bo");
        assert!(exported.not_readable_by.is_empty());
        let bytes = data_encoding::BASE64
            .decode(exported.bundle.as_bytes())
            .unwrap();
        assert_eq!(bytes.len() as u64, exported.bytes);
        let opened = bundle::verify(&bytes).unwrap().open(&h.bo_age).unwrap();
        assert_eq!(opened.docs.len(), 1, "only the household document travels");
        assert_eq!(opened.docs[0].doc_id, DocKind::Household.doc_id());
    }

    #[test]
    fn no_partner_device_or_no_known_key_or_a_leaving_makes_no_bundle() {
        let (ada, _, _, _) = docs_pair();
        let ctx = ExportContext {
            signer: &key(),
            known_heads: &nothing_known,
        };
        assert!(matches!(
            export(&ada, &ctx, false, NOW),
            Err(BundleOpError::NoPartnerDevice)
        ));

        let (mut ada, _, _, bo_id) = docs_pair();
        ada.put_device(&device(&key(), bo_id, None), NOW).unwrap();
        let err = export(&ada, &ctx, false, NOW).unwrap_err();
        assert!(matches!(err, BundleOpError::NoKnownKey));
        assert!(err.hint().contains("sync once"));

        let mut h = household();
        let me = h.ada.me;
        h.ada.set_left(me, NOW, NOW).unwrap();
        let err = export_all(&h).unwrap_err();
        assert!(matches!(err, BundleOpError::SharingEnded { by_me: true }));
        assert!(err.to_string().starts_with("you ended sharing"));
    }

    #[test]
    fn a_bundle_whose_changes_have_no_proven_author_is_refused_whole() {
        // The roster here is not signed, so no change in the bundle has an author this
        // device can prove: a modified client's bundle looks the same.
        let mut h = household();
        let exported = export_all(&h).unwrap();
        let before = h.bo.household.heads();
        let err = import(&mut h.bo, &h.bo_age, &h.bo_device, &exported.bundle).unwrap_err();
        assert!(
            matches!(err, BundleOpError::Forged { changes, .. } if changes > 0),
            "{err}"
        );
        assert!(err.hint().starts_with("nothing was changed"));
        assert_eq!(h.bo.household.heads(), before);
        assert!(h.bo.moments().is_empty());
    }

    #[test]
    fn a_bundle_made_here_or_not_a_bundle_at_all_is_refused() {
        let mut h = household();
        let exported = export_all(&h).unwrap();
        let before = h.ada.household.heads();
        let me_device = h.ada_device.clone();
        let err = import(&mut h.ada, &h.bo_age, &me_device, &exported.bundle).unwrap_err();
        assert!(matches!(err, BundleOpError::MadeHere));
        let err = import(&mut h.ada, &h.bo_age, &me_device, "not base64 at all!").unwrap_err();
        assert!(matches!(
            err,
            BundleOpError::Bundle(BundleError::NotABundle)
        ));
        assert_eq!(
            err.hint(),
            "check that this is the file `hearth bundle export` wrote"
        );
        assert!(!err.is_internal());
        assert_eq!(h.ada.household.heads(), before);
        // A device that is not this one's partner's cannot open it either.
        let stranger = age::x25519::Identity::generate();
        let err = import(&mut h.bo, &stranger, &h.bo_device, &exported.bundle).unwrap_err();
        assert!(matches!(
            err,
            BundleOpError::Bundle(BundleError::WrongRecipient)
        ));
    }
}
