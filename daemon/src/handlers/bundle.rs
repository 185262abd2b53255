//! Offline bundles on the document owner's side: `bundle.export` and `bundle.import`.
//!
//! This module owns the choices around a bundle: which devices it is sealed for (the
//! partner's live devices whose age key the roster knows), where it starts (the heads
//! this device last shared with all of them, from the sync states), and what an imported
//! one must pass before it is merged (see [`hearth_core::envelope::bundle`] for the
//! format and the checks themselves). It runs on the owner's thread like the other
//! handlers, and it does no file IO: the CLI reads and writes the file, and the bundle
//! travels base64 in the control call. It only ever puts the household document in a
//! bundle: a person's private document is never sealed for the partner.
//!
//! A pause does not stop bundles: carrying one is a deliberate act on both ends. After
//! either partner has left (`hearth leave`), bundles are neither made nor accepted.

use std::collections::BTreeSet;

use automerge::ChangeHash;
use hearth_core::doc::{DocKind, Docs};
use hearth_core::envelope::bundle::{self, Bundle, BundleError};
use hearth_core::identity::DeviceId;
use hearth_core::model::{Device, Millis, PersonId};
use ring::signature::Ed25519KeyPair;
use serde_json::Value;

use super::Outcome;
use hearth_api::{ApiError, BundleDevice, BundleExported, BundleImported, ErrorCode};

/// What `bundle.export` needs beyond the documents.
pub struct ExportContext<'a> {
    /// This device's key, which signs the bundle.
    pub signer: &'a Ed25519KeyPair,
    /// The heads of a document this device last shared with a device, if it ever did.
    pub known_heads: &'a dyn Fn(&DeviceId, &str) -> Option<Vec<ChangeHash>>,
}

/// The control API's view of a bundle problem. Every one leaves the documents as they
/// were, which the hints say.
pub fn bundle_error(e: BundleError) -> ApiError {
    let hint = match &e {
        BundleError::Tampered | BundleError::Damaged { .. } => {
            "bundles can travel through untrusted places, and this one did not arrive intact; ask for a fresh `hearth bundle export`"
        }
        BundleError::SignerUnknown { .. } | BundleError::SignerRevoked { .. } => {
            "only bundles signed by your partner's paired devices are accepted; `hearth devices list` shows them"
        }
        BundleError::WrongRecipient => {
            "bundles are sealed to the devices the exporting device knew of; let the two devices sync once, then export again"
        }
        BundleError::MissingHistory { .. } => {
            "a complete bundle (`hearth bundle export --all`) carries everything"
        }
        BundleError::NotABundle | BundleError::UnsupportedVersion { .. } => {
            "check that this is the file `hearth bundle export` wrote"
        }
        _ => "nothing was changed",
    };
    let code = match e {
        BundleError::Encrypt { .. } => ErrorCode::Internal,
        _ => ErrorCode::Invalid,
    };
    ApiError::new(code, e.to_string(), hint)
}

fn sharing_ended(docs: &Docs, people: &[PersonId]) -> Result<(), ApiError> {
    if let Some(person) = people.iter().find(|p| docs.left_at(**p).is_some()) {
        let who = if *person == docs.me {
            "you"
        } else {
            "your partner"
        };
        return Err(ApiError::new(
            ErrorCode::Invalid,
            format!("{who} ended sharing in this household (`hearth leave`), so bundles are neither made nor accepted any more"),
            "everything already shared stays on both sides; `hearth export` still writes your own copy",
        ));
    }
    Ok(())
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
) -> Result<Value, ApiError> {
    let partners: Vec<Device> = docs
        .devices()
        .into_iter()
        .filter(|d| d.person != docs.me && d.revoked_at.is_none())
        .collect();
    if partners.is_empty() {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "there is no partner's device to make a bundle for",
            "pair your partner's device first with `hearth pair invite`",
        ));
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
        return Err(ApiError::new(
            ErrorCode::Invalid,
            BundleError::NoRecipients(
                "none of your partner's devices has told this one its encryption key yet: a device shares it when it first syncs".into(),
            )
            .to_string(),
            "let the two devices sync once on the same network (`hearth sync`), then export again",
        ));
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
    let bytes = bundle::seal(&contents, &recipients, ctx.signer).map_err(bundle_error)?;
    hearth_api::encode_answer(&BundleExported {
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
fn forged_bundle(admission: &hearth_core::provenance::Admission) -> ApiError {
    let mut why: Vec<String> = admission.refused_because.iter().cloned().collect();
    why.extend(admission.held_because.iter().map(|h| h.to_string()));
    ApiError::new(
        ErrorCode::Invalid,
        format!(
            "this bundle was not imported: {} of its changes could not be shown to come from someone allowed to make them ({})",
            admission.held + admission.refused,
            why.join("; ")
        ),
        "nothing was changed; ask for a new bundle made with `hearth bundle export` on your partner's own device",
    )
}

/// Checks a bundle (signature, signer on the roster and not removed, sealed for this
/// device) and merges its household changes, all or nothing.
pub fn import(
    docs: &mut Docs,
    identity: &age::x25519::Identity,
    me_device: &str,
    encoded: &str,
) -> Result<Outcome, ApiError> {
    let bytes = data_encoding::BASE64
        .decode(encoded.trim().as_bytes())
        .map_err(|_| bundle_error(BundleError::NotABundle))?;
    let signed = bundle::verify(&bytes).map_err(bundle_error)?;
    let roster = docs.devices();
    let signer = signed.check_signer(&roster).map_err(bundle_error)?.clone();
    if signer.id == me_device {
        return Err(ApiError::new(
            ErrorCode::Invalid,
            "this bundle was made on this very device; it is meant for your partner's devices",
            "import it on your partner's device",
        ));
    }
    sharing_ended(docs, &[signer.person, docs.me])?;
    let contents = signed.open(identity).map_err(bundle_error)?;
    let household = DocKind::Household.doc_id();
    if let Some(other) = contents.docs.iter().find(|d| d.doc_id != household) {
        return Err(bundle_error(BundleError::ForeignDocument {
            doc: other.doc_id.clone(),
        }));
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
                hearth_core::doc::DocError::Proof(_) => bundle_error(BundleError::Malformed {
                    reason: "a signed head in it does not hold".into(),
                }),
                other => bundle_error(BundleError::Merge {
                    reason: other.to_string(),
                }),
            })?;
        if admission.held > 0 || admission.refused > 0 {
            tracing::warn!(held = admission.held, refused = admission.refused, reasons = ?admission.refused_because, "refused a bundle whose changes could not all be proven and allowed");
            return Err(forged_bundle(&admission));
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
    let mut outcome = Outcome {
        value: hearth_api::encode_answer(&BundleImported {
            new_changes: new_changes as u64,
            signer: bundle_device(docs, &signer),
            created_at: contents.created_at,
            up_to_date,
        })?,
        ..Outcome::default()
    };
    if new_changes > 0 {
        *docs = scratch;
        outcome.touched.insert(DocKind::Household, BTreeSet::new());
    }
    Ok(outcome)
}
