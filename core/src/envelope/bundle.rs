//! Offline bundles: document changes sealed with age to the partner's devices and signed
//! with this device's Ed25519 key, so they can travel on a USB stick or through a cloud
//! folder that must not read them.
//!
//! This module owns the bundle's byte format, its signature and encryption, the choice of
//! what to put in it (the changes the partner's devices lack, as far as this device
//! knows), and the checks an imported bundle must pass before it may touch a document:
//! the signature, the signer's place on the roster, the recipient and the history it
//! builds on. It is sans-IO: no files, no clock (the creation time comes in), and the
//! daemon decides which documents go in. Only the household document ever goes into a
//! bundle for the partner; a person's private document is theirs alone.
//!
//! # Format (version 1)
//!
//! ```text
//! offset  size  field
//! 0       8     magic  b"HRTHBNDL"
//! 8       1     format version, currently 1
//! 9       32    the signing device's Ed25519 public key
//! 41      8     n: length of the ciphertext, u64 big-endian
//! 49      n     age v1 ciphertext (binary), to every recipient
//! 49+n    64    Ed25519 signature over SIGNING_CONTEXT || bytes[0 .. 49+n]
//! ```
//!
//! The signature covers the ciphertext rather than the plaintext, so a bundle can be
//! checked (and a tampered one refused) before any decryption, and so a device that is
//! not a recipient still learns who made it. The signer is named by its public key; its
//! device id is derived from it, and the roster decides whether it is trusted.
//!
//! The plaintext, once opened:
//!
//! ```text
//! u8     payload version, 1
//! i64    created at, Unix milliseconds, big-endian
//! u16    number of documents
//! per document:
//!   u16 + bytes   document id (UTF-8), e.g. "household"
//!   u32 + 32*k    the exporter's heads of it
//!   u64 + bytes   Automerge data: a saved document or changes, for `load_incremental`
//! ```

use std::collections::{BTreeSet, HashSet};

use automerge::{Automerge, ChangeHash, ObjType, ReadDoc, Value};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use thiserror::Error;

use crate::doc::{Doc, Docs};
use crate::identity::DeviceId;
use crate::model::{Device, Millis};

/// The first bytes of every bundle.
pub const MAGIC: &[u8; 8] = b"HRTHBNDL";
/// The bundle format this code writes and reads.
const VERSION: u8 = 1;
/// The payload format inside the encryption.
const PAYLOAD_VERSION: u8 = 2;
/// Bundles from before signed heads: they carry none, so their changes cannot be proven.
const PAYLOAD_VERSION_UNSIGNED: u8 = 1;
/// Most signed heads per document in a bundle.
const MAX_PROOFS: usize = 256;
/// Magic, version, signer key and ciphertext length.
const HEADER_LEN: usize = MAGIC.len() + 1 + 32 + 8;
const SIGNATURE_LEN: usize = 64;
/// Prefixed to what is signed, so a bundle signature can never be mistaken for (or
/// replayed as) a signature the device key makes for anything else.
const SIGNING_CONTEXT: &[u8] = b"hearth bundle v1 signature\0";
/// Bounds that keep a hostile payload from asking for absurd allocations.
const MAX_DOCS: usize = 16;
const MAX_HEADS: usize = 4096;
/// Changes up to this size go in as they are, without comparing them to the whole
/// document saved.
const SMALL_DELTA: usize = 32 * 1024;

/// Problems making, checking, opening or merging a bundle.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The bytes are not a bundle at all.
    #[error("this file is not a Hearth bundle; bundles are made by `hearth bundle export`")]
    NotABundle,
    /// A bundle from a newer (or unknown) format version.
    #[error("this bundle uses format version {found}, but this Hearth reads version {VERSION}; update Hearth on this device and import it again")]
    UnsupportedVersion {
        /// The version byte found.
        found: u8,
    },
    /// The file is cut short or its lengths do not add up.
    #[error("this bundle is damaged or cut short ({reason}); nothing was imported — copy it again, or export a fresh one on the other device")]
    Damaged {
        /// What did not add up.
        reason: String,
    },
    /// The signature does not match the contents.
    #[error("this bundle's signature does not match its contents: it was changed after it was signed, or damaged on the way; nothing was imported — export a fresh one on the other device")]
    Tampered,
    /// The signing device is not on this household's roster.
    #[error("this bundle was signed by device {device}, which is not on this household's roster; nothing was imported — import only bundles made on your partner's paired devices")]
    SignerUnknown {
        /// The signer's device id, short form.
        device: String,
    },
    /// The signing device was removed from the household.
    #[error("this bundle was signed by device {device}, which was removed from this household; nothing was imported — its bundles are no longer accepted")]
    SignerRevoked {
        /// The signer's device id, short form.
        device: String,
    },
    /// This device is not among the bundle's recipients.
    #[error("this bundle was sealed for other devices, not this one; nothing was imported — export it on your partner's device after this device has synced with it once (its key is then on their roster)")]
    WrongRecipient,
    /// The signed, decrypted contents could not be parsed.
    #[error("this bundle's contents could not be read ({reason}); nothing was imported — it may come from a newer Hearth, so update both devices")]
    Malformed {
        /// What was wrong.
        reason: String,
    },
    /// There is nobody to seal the bundle for.
    #[error("{0}")]
    NoRecipients(String),
    /// age refused to encrypt.
    #[error(
        "the bundle could not be encrypted ({reason}); this is a bug in Hearth, please report it"
    )]
    Encrypt {
        /// What age reported.
        reason: String,
    },
    /// The changes build on history this device does not have.
    #[error("this bundle builds on {missing} change(s) this device does not have yet; nothing was imported — ask for a complete bundle (`hearth bundle export --all`)")]
    MissingHistory {
        /// How many changes it depends on that are missing.
        missing: usize,
    },
    /// The bundle carries a document this device does not share.
    #[error("this bundle carries the document `{doc}`, which this device does not share; nothing was imported")]
    ForeignDocument {
        /// The document id.
        doc: String,
    },
    /// Automerge refused the changes.
    #[error("the changes in this bundle could not be merged ({reason}); nothing was imported")]
    Merge {
        /// What Automerge reported.
        reason: String,
    },
}

/// One document's changes in a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleDoc {
    /// The document id, as on the wire and on disk.
    pub doc_id: String,
    /// The exporter's heads of the document when it made the bundle.
    pub heads: Vec<ChangeHash>,
    /// A saved document or a run of changes; either loads with `load_incremental`.
    pub data: Vec<u8>,
    /// Signed heads of the devices that wrote the changes (`crate::provenance`), so the
    /// importing device can prove each author without trusting the exporter.
    pub proofs: Vec<Vec<u8>>,
}

/// What a bundle carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// When it was made, Unix milliseconds.
    pub created_at: Millis,
    /// The documents' changes.
    pub docs: Vec<BundleDoc>,
}

impl Bundle {
    fn encode(&self) -> Result<Vec<u8>, BundleError> {
        let too_big = |what: &str| BundleError::Encrypt {
            reason: format!("too many {what} for one bundle"),
        };
        let size: usize = self
            .docs
            .iter()
            .map(|d| d.doc_id.len() + d.heads.len() * 32 + d.data.len() + 16)
            .sum();
        let mut out = Vec::with_capacity(size + 16);
        out.push(PAYLOAD_VERSION);
        out.extend_from_slice(&self.created_at.to_be_bytes());
        let count = u16::try_from(self.docs.len()).map_err(|_| too_big("documents"))?;
        out.extend_from_slice(&count.to_be_bytes());
        for doc in &self.docs {
            let id_len = u16::try_from(doc.doc_id.len()).map_err(|_| too_big("id bytes"))?;
            out.extend_from_slice(&id_len.to_be_bytes());
            out.extend_from_slice(doc.doc_id.as_bytes());
            let heads = u32::try_from(doc.heads.len()).map_err(|_| too_big("heads"))?;
            out.extend_from_slice(&heads.to_be_bytes());
            for head in &doc.heads {
                out.extend_from_slice(head.as_ref());
            }
            out.extend_from_slice(&(doc.data.len() as u64).to_be_bytes());
            out.extend_from_slice(&doc.data);
            let proofs = u16::try_from(doc.proofs.len()).map_err(|_| too_big("signed heads"))?;
            out.extend_from_slice(&proofs.to_be_bytes());
            for proof in &doc.proofs {
                let len = u16::try_from(proof.len()).map_err(|_| too_big("signed head bytes"))?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(proof);
            }
        }
        Ok(out)
    }

    fn decode(bytes: &[u8]) -> Result<Bundle, BundleError> {
        let mut r = Reader { bytes, at: 0 };
        let version = r.u8()?;
        if version != PAYLOAD_VERSION && version != PAYLOAD_VERSION_UNSIGNED {
            return Err(BundleError::Malformed {
                reason: format!("payload version {version}"),
            });
        }
        let created_at = i64::from_be_bytes(r.array::<8>()?);
        let count = usize::from(u16::from_be_bytes(r.array::<2>()?));
        if count > MAX_DOCS {
            return Err(BundleError::Malformed {
                reason: format!("{count} documents"),
            });
        }
        let mut docs = Vec::with_capacity(count);
        for _ in 0..count {
            let id_len = usize::from(u16::from_be_bytes(r.array::<2>()?));
            let doc_id = String::from_utf8(r.take(id_len)?.to_vec()).map_err(|_| {
                BundleError::Malformed {
                    reason: "a document id is not text".into(),
                }
            })?;
            let head_count = u32::from_be_bytes(r.array::<4>()?) as usize;
            if head_count > MAX_HEADS {
                return Err(BundleError::Malformed {
                    reason: format!("{head_count} heads"),
                });
            }
            let mut heads = Vec::with_capacity(head_count);
            for _ in 0..head_count {
                heads.push(ChangeHash(r.array::<32>()?));
            }
            let len = usize::try_from(u64::from_be_bytes(r.array::<8>()?)).map_err(|_| {
                BundleError::Malformed {
                    reason: "a length does not fit in memory".into(),
                }
            })?;
            let data = r.take(len)?.to_vec();
            let mut proofs = Vec::new();
            if version == PAYLOAD_VERSION {
                let count = usize::from(u16::from_be_bytes(r.array::<2>()?));
                if count > MAX_PROOFS {
                    return Err(BundleError::Malformed {
                        reason: format!("{count} signed heads"),
                    });
                }
                for _ in 0..count {
                    let len = usize::from(u16::from_be_bytes(r.array::<2>()?));
                    proofs.push(r.take(len)?.to_vec());
                }
            }
            docs.push(BundleDoc {
                doc_id,
                heads,
                data,
                proofs,
            });
        }
        if r.at != bytes.len() {
            return Err(BundleError::Malformed {
                reason: "bytes after the last document".into(),
            });
        }
        Ok(Bundle { created_at, docs })
    }
}

/// A bounds-checked cursor over the payload.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BundleError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| BundleError::Malformed {
                reason: "it ends too early".into(),
            })?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, BundleError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], BundleError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}

/// Encrypts `bundle` to every one of `recipients` and signs the result with `signer`.
pub fn seal(
    bundle: &Bundle,
    recipients: &[age::x25519::Recipient],
    signer: &Ed25519KeyPair,
) -> Result<Vec<u8>, BundleError> {
    if recipients.is_empty() {
        return Err(BundleError::NoRecipients(
            "a bundle needs at least one device to be sealed for".into(),
        ));
    }
    let plain = bundle.encode()?;
    let ciphertext = super::encrypt_to(recipients.iter().map(|r| r as &dyn age::Recipient), &plain)
        .map_err(|e| BundleError::Encrypt {
            reason: e.to_string(),
        })?;
    let mut out = Vec::with_capacity(HEADER_LEN + ciphertext.len() + SIGNATURE_LEN);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(signer.public_key().as_ref());
    out.extend_from_slice(&(ciphertext.len() as u64).to_be_bytes());
    out.extend_from_slice(&ciphertext);
    let signature = signer.sign(&signed_message(&out));
    out.extend_from_slice(signature.as_ref());
    Ok(out)
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNING_CONTEXT.len() + body.len());
    message.extend_from_slice(SIGNING_CONTEXT);
    message.extend_from_slice(body);
    message
}

/// A bundle whose signature checked out against the key it names. Whether that key
/// is trusted is the roster's call: see [`Signed::check_signer`].
#[derive(Debug)]
pub struct Signed<'a> {
    signer: [u8; 32],
    ciphertext: &'a [u8],
}

/// Checks a bundle's framing and signature, without decrypting it.
pub fn verify(bytes: &[u8]) -> Result<Signed<'_>, BundleError> {
    let magic_len = bytes.len().min(MAGIC.len());
    if bytes[..magic_len] != MAGIC[..magic_len] {
        return Err(BundleError::NotABundle);
    }
    if bytes.len() < HEADER_LEN + SIGNATURE_LEN {
        return Err(BundleError::Damaged {
            reason: format!("{} bytes is shorter than any bundle", bytes.len()),
        });
    }
    let version = bytes[MAGIC.len()];
    if version != VERSION {
        return Err(BundleError::UnsupportedVersion { found: version });
    }
    let mut signer = [0u8; 32];
    signer.copy_from_slice(&bytes[MAGIC.len() + 1..MAGIC.len() + 33]);
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[MAGIC.len() + 33..HEADER_LEN]);
    let len = u64::from_be_bytes(len);
    let expected = usize::try_from(len)
        .ok()
        .and_then(|n| n.checked_add(HEADER_LEN + SIGNATURE_LEN));
    if expected != Some(bytes.len()) {
        return Err(BundleError::Damaged {
            reason: format!(
                "it says it holds {len} bytes of ciphertext, but the file is {} bytes",
                bytes.len()
            ),
        });
    }
    let body_end = bytes.len() - SIGNATURE_LEN;
    let signature = &bytes[body_end..];
    UnparsedPublicKey::new(&ED25519, signer)
        .verify(&signed_message(&bytes[..body_end]), signature)
        .map_err(|_| BundleError::Tampered)?;
    Ok(Signed {
        signer,
        ciphertext: &bytes[HEADER_LEN..body_end],
    })
}

impl Signed<'_> {
    /// The signing device's public key.
    pub fn signer_key(&self) -> [u8; 32] {
        self.signer
    }

    /// The signing device's id.
    pub fn signer(&self) -> DeviceId {
        DeviceId::from_public_key(&self.signer)
    }

    /// The signer's roster entry, if the roster trusts it: on the roster with this very
    /// key, and not removed.
    pub fn check_signer<'d>(&self, roster: &'d [Device]) -> Result<&'d Device, BundleError> {
        let id = self.signer();
        let key = data_encoding::HEXLOWER.encode(&self.signer);
        let device = roster
            .iter()
            .find(|d| d.id == id.to_string() && d.public_key.eq_ignore_ascii_case(&key))
            .ok_or_else(|| BundleError::SignerUnknown { device: id.short() })?;
        if device.revoked_at.is_some() {
            return Err(BundleError::SignerRevoked { device: id.short() });
        }
        Ok(device)
    }

    /// Decrypts the bundle with this device's identity.
    pub fn open(&self, identity: &age::x25519::Identity) -> Result<Bundle, BundleError> {
        use std::io::Read;
        let damaged = |reason: String| BundleError::Malformed { reason };
        let decryptor =
            age::Decryptor::new_buffered(self.ciphertext).map_err(|e| damaged(e.to_string()))?;
        let mut reader = decryptor
            .decrypt(std::iter::once(identity as &dyn age::Identity))
            .map_err(|e| match e {
                age::DecryptError::NoMatchingKeys => BundleError::WrongRecipient,
                other => damaged(other.to_string()),
            })?;
        let mut plain = Vec::with_capacity(self.ciphertext.len());
        reader
            .read_to_end(&mut plain)
            .map_err(|e| damaged(e.to_string()))?;
        Bundle::decode(&plain)
    }
}

/// The heads of the history that every one of `known` holds: the changes that are
/// ancestors of each device's known heads. A head this document lacks is ignored, which
/// only makes the bundle larger, never incomplete.
pub fn known_to_all(am: &Automerge, known: &[Vec<ChangeHash>]) -> Vec<ChangeHash> {
    let present = |h: &ChangeHash| am.get_change_meta_by_hash(h).is_some();
    let sets: Vec<Vec<ChangeHash>> = known
        .iter()
        .map(|heads| heads.iter().copied().filter(present).collect())
        .collect();
    match sets.as_slice() {
        [] => Vec::new(),
        [one] => one.clone(),
        _ => {
            // Everything missing from at least one device, then the heads of the rest.
            let missing: HashSet<ChangeHash> = sets
                .iter()
                .flat_map(|heads| am.get_changes_meta(heads).into_iter().map(|c| c.hash))
                .collect();
            let all = am.get_changes_meta(&[]);
            let common: Vec<_> = all.iter().filter(|c| !missing.contains(&c.hash)).collect();
            let deps: HashSet<ChangeHash> =
                common.iter().flat_map(|c| c.deps.iter().copied()).collect();
            let mut heads: Vec<ChangeHash> = common
                .iter()
                .map(|c| c.hash)
                .filter(|h| !deps.contains(h))
                .collect();
            heads.sort_unstable();
            heads
        }
    }
}

/// What a device that holds `since` lacks: the changes after it, or the whole document
/// when `since` is empty or when, for a long run of changes, the compressed document is
/// the smaller of the two.
///
/// **Why compare:** changes after some heads are written one by one, each compressed on
/// its own, while a saved document compresses all columns together; for a long run of
/// small changes on a small document, the whole document can be the smaller file.
///
/// The flag says whether the result is the whole document.
pub fn changes_after(doc: &Doc, since: &[ChangeHash]) -> (BundleDoc, bool) {
    let am = doc.automerge();
    let (data, complete) = if since.is_empty() {
        (am.save(), true)
    } else {
        let delta = am.save_after(since);
        // Saving a years-long document takes a while on the owner's thread; a small
        // run of changes is never worth that comparison.
        if delta.len() <= SMALL_DELTA {
            (delta, false)
        } else {
            let whole = am.save();
            if delta.len() <= whole.len() {
                (delta, false)
            } else {
                (whole, true)
            }
        }
    };
    let doc = BundleDoc {
        doc_id: doc.kind().doc_id(),
        heads: am.get_heads(),
        data,
        proofs: doc
            .proofs()
            .settled()
            .map(crate::provenance::HeadProof::encode)
            .collect(),
    };
    (doc, complete)
}

/// The age recipients of one roster device. A device's entry may have been written by
/// two devices at once (the inviter at pairing, without the key, and the device itself
/// at its own start, with it); every concurrent version is read, so the key is found
/// whichever of them Automerge shows.
pub fn recipients_of(docs: &Docs, device_id: &str) -> Vec<age::x25519::Recipient> {
    let am = docs.household.automerge();
    let Ok(Some((Value::Object(ObjType::Map), devices))) = am.get(automerge::ROOT, "devices")
    else {
        return Vec::new();
    };
    let mut found = BTreeSet::new();
    for (value, obj) in am.get_all(&devices, device_id).unwrap_or_default() {
        if !matches!(value, Value::Object(ObjType::Map)) {
            continue;
        }
        for (field, _) in am.get_all(&obj, "age_recipient").unwrap_or_default() {
            if let Value::Scalar(s) = field {
                if let automerge::ScalarValue::Str(text) = s.as_ref() {
                    found.insert(text.to_string());
                }
            }
        }
    }
    found
        .into_iter()
        .filter_map(|text| text.parse::<age::x25519::Recipient>().ok())
        .collect()
}

/// Merges one document's changes from a bundle into `doc`, all or nothing. Returns how
/// many changes were new here; importing the same bundle twice merges nothing the
/// second time.
pub fn merge(doc: &mut Doc, incoming: &BundleDoc) -> Result<usize, BundleError> {
    if incoming.doc_id != doc.kind().doc_id() {
        return Err(BundleError::ForeignDocument {
            doc: incoming.doc_id.clone(),
        });
    }
    let before = doc.heads();
    // Work on a copy: a bundle that fails half way must leave the document untouched.
    let mut scratch = doc.automerge().clone();
    scratch
        .load_incremental(&incoming.data)
        .map_err(|e| BundleError::Merge {
            reason: e.to_string(),
        })?;
    // Changes whose dependencies are missing wait in Automerge's queue, invisible and
    // never saved; refuse them rather than pretend they were merged.
    let missing = scratch.get_missing_deps(&[]);
    if !missing.is_empty() {
        return Err(BundleError::MissingHistory {
            missing: missing.len(),
        });
    }
    let new = scratch.get_changes_meta(&before).len();
    if new > 0 {
        *doc.automerge_mut() = scratch;
    }
    Ok(new)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::doc::DocKind;
    use crate::model::{Moment, MomentKind, Person, When};
    use automerge::ActorId;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn signer() -> Ed25519KeyPair {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&crate::test_rng()).unwrap();
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    fn device_for(key: &Ed25519KeyPair, person: Uuid, revoked: bool) -> Device {
        let public: [u8; 32] = key.public_key().as_ref().try_into().unwrap();
        Device {
            id: DeviceId::from_public_key(&public).to_string(),
            person,
            name: "laptop".into(),
            public_key: data_encoding::HEXLOWER.encode(&public),
            age_recipient: None,
            added_by: None,
            added_at: 0,
            revoked_at: revoked.then_some(5),
            admission: None,
            self_sig: None,
            removal: None,
        }
    }

    fn sample() -> Bundle {
        Bundle {
            created_at: 1_700_000_000_000,
            docs: vec![BundleDoc {
                doc_id: "household".into(),
                heads: vec![ChangeHash([7; 32])],
                data: b"not really automerge".to_vec(),
                proofs: vec![vec![1; 137]],
            }],
        }
    }

    #[test]
    fn a_recipient_opens_what_the_signer_sealed() {
        let key = signer();
        let bo = age::x25519::Identity::generate();
        let bo2 = age::x25519::Identity::generate();
        let bytes = seal(&sample(), &[bo.to_public(), bo2.to_public()], &key).unwrap();
        for identity in [&bo, &bo2] {
            let signed = verify(&bytes).unwrap();
            assert_eq!(signed.signer_key().as_slice(), key.public_key().as_ref());
            assert_eq!(signed.open(identity).unwrap(), sample());
        }
    }

    #[test]
    fn each_failure_has_its_own_error() {
        let key = signer();
        let bo = age::x25519::Identity::generate();
        let bytes = seal(&sample(), &[bo.to_public()], &key).unwrap();

        // A flipped byte anywhere in the signed part, or in the signature, is tampering.
        for at in [HEADER_LEN + 3, bytes.len() / 2, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x20;
            assert!(matches!(verify(&bad), Err(BundleError::Tampered)), "{at}");
        }
        // Cut short.
        assert!(matches!(
            verify(&bytes[..bytes.len() - 10]),
            Err(BundleError::Damaged { .. })
        ));
        assert!(matches!(verify(b"HRTH"), Err(BundleError::Damaged { .. })));
        assert!(matches!(
            verify(b"PK\x03\x04 a zip"),
            Err(BundleError::NotABundle)
        ));
        let mut newer = bytes.clone();
        newer[8] = 9;
        assert!(matches!(
            verify(&newer),
            Err(BundleError::UnsupportedVersion { found: 9 })
        ));
        // Not for this device.
        let stranger = age::x25519::Identity::generate();
        assert!(matches!(
            verify(&bytes).unwrap().open(&stranger),
            Err(BundleError::WrongRecipient)
        ));
        // The roster decides whether the signer is trusted.
        let signed = verify(&bytes).unwrap();
        let person = Uuid::from_u128(1);
        assert!(matches!(
            signed.check_signer(&[device_for(&signer(), person, false)]),
            Err(BundleError::SignerUnknown { .. })
        ));
        assert!(matches!(
            signed.check_signer(&[device_for(&key, person, true)]),
            Err(BundleError::SignerRevoked { .. })
        ));
        assert!(signed
            .check_signer(&[device_for(&key, person, false)])
            .is_ok());
        // Someone else re-signing a copy with their own key is just an unknown signer.
        let mut resigned = bytes[..bytes.len() - SIGNATURE_LEN].to_vec();
        let other = signer();
        resigned[9..41].copy_from_slice(other.public_key().as_ref());
        let sig = other.sign(&signed_message(&resigned));
        resigned.extend_from_slice(sig.as_ref());
        assert!(matches!(
            verify(&resigned)
                .unwrap()
                .check_signer(&[device_for(&key, person, false)]),
            Err(BundleError::SignerUnknown { .. })
        ));
    }

    fn docs(person: u128, actor: u8) -> Docs {
        Docs::new(Uuid::from_u128(person), ActorId::from(vec![actor; 16]))
    }

    fn moment(docs: &mut Docs, n: u128) {
        let me = docs.me;
        docs.add_moment(
            &Moment {
                id: Uuid::from_u128(n),
                kind: MomentKind::Laugh,
                started_by: me,
                when: When::from_utc(n as i64 * 1000, 0),
                note: Some(format!("moment {n}")),
            },
            1,
        )
        .unwrap();
    }

    fn household_pair() -> (Docs, Docs) {
        let mut a = docs(1, 1);
        for (n, name) in [(1, "Ada"), (2, "Bo")] {
            a.add_person(
                &Person {
                    id: Uuid::from_u128(n),
                    name: name.into(),
                    joined_at: 0,
                },
                0,
            )
            .unwrap();
        }
        let mut b = docs(2, 2);
        merge(&mut b.household, &changes_after(&a.household, &[]).0).unwrap();
        (a, b)
    }

    #[test]
    fn changes_after_known_heads_carry_only_what_is_new_and_merge_once() {
        let (mut a, mut b) = household_pair();
        for n in 0..300 {
            moment(&mut a, n);
        }
        merge(&mut b.household, &changes_after(&a.household, &[]).0).unwrap();
        let known = b.household.heads();
        for n in 1000..1010 {
            moment(&mut a, n);
        }
        let since = known_to_all(a.household.automerge(), &[known]);
        let (delta, complete) = changes_after(&a.household, &since);
        assert!(!complete);
        let (full, complete) = changes_after(&a.household, &[]);
        assert!(complete);
        assert!(delta.data.len() < full.data.len());
        assert_eq!(merge(&mut b.household, &delta).unwrap(), 10);
        assert_eq!(b.household.heads(), a.household.heads());
        // Twice is harmless.
        assert_eq!(merge(&mut b.household, &delta).unwrap(), 0);
        assert_eq!(b.household.heads(), a.household.heads());
    }

    #[test]
    fn a_long_run_of_changes_travels_as_the_smaller_whole_document() {
        let (mut a, mut b) = household_pair();
        let known = b.household.heads();
        for n in 0..1500 {
            moment(&mut a, n);
        }
        let (doc, complete) = changes_after(&a.household, &known);
        assert!(complete);
        assert!(doc.data.len() < a.household.automerge().save_after(&known).len());
        merge(&mut b.household, &doc).unwrap();
        assert_eq!(b.household.heads(), a.household.heads());
    }

    #[test]
    fn a_delta_on_history_this_device_lacks_changes_nothing() {
        let (mut a, mut b) = household_pair();
        moment(&mut a, 1);
        let middle = a.household.heads();
        moment(&mut a, 2);
        let (delta, _) = changes_after(&a.household, &middle);
        let before = b.household.heads();
        assert!(matches!(
            merge(&mut b.household, &delta),
            Err(BundleError::MissingHistory { .. })
        ));
        assert_eq!(b.household.heads(), before);
        assert!(matches!(
            merge(&mut b.private, &delta),
            Err(BundleError::ForeignDocument { .. })
        ));
        let garbage = BundleDoc {
            data: b"\x85\x6f\x4a\x83 garbage".to_vec(),
            ..delta
        };
        // Automerge may refuse it or skip it; either way nothing changes.
        assert!(!matches!(merge(&mut b.household, &garbage), Ok(n) if n > 0));
        assert_eq!(b.household.heads(), before);
    }

    #[test]
    fn known_to_all_is_what_every_device_holds() {
        let (mut a, mut b) = household_pair();
        let base = a.household.heads();
        moment(&mut a, 1);
        let a1 = a.household.heads();
        moment(&mut b, 2);
        merge(&mut a.household, &changes_after(&b.household, &base).0).unwrap();
        // One device knows a1, the other knows base plus b's moment: common is base.
        let b1 = b.household.heads();
        let common = known_to_all(a.household.automerge(), &[a1.clone(), b1]);
        assert_eq!(common, base);
        assert_eq!(
            known_to_all(a.household.automerge(), std::slice::from_ref(&a1)),
            a1
        );
        // A head this document never saw counts for nothing.
        assert_eq!(
            known_to_all(a.household.automerge(), &[vec![ChangeHash([9; 32])]]),
            Vec::<ChangeHash>::new()
        );
        let _ = DocKind::Household;
    }

    #[test]
    fn recipients_are_found_in_every_concurrent_version_of_a_device() {
        let (mut a, mut b) = household_pair();
        let key = signer();
        let bo = age::x25519::Identity::generate();
        let mut own = device_for(&key, Uuid::from_u128(2), false);
        own.age_recipient = Some(bo.to_public().to_string());
        // Bo writes his own entry with his key; Ada, pairing him, writes it without.
        b.put_device(&own, 1).unwrap();
        let mut seen_by_inviter = own.clone();
        seen_by_inviter.age_recipient = None;
        a.put_device(&seen_by_inviter, 1).unwrap();
        a.household
            .automerge_mut()
            .merge(&mut b.household.automerge().clone())
            .unwrap();
        let found = recipients_of(&a, &own.id);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].to_string(), bo.to_public().to_string());
        assert!(recipients_of(&a, "nobody").is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn payload_round_trips(
            created_at in any::<i64>(),
            docs in proptest::collection::vec(
                ("[a-z-]{0,20}", proptest::collection::vec(any::<[u8; 32]>(), 0..4), proptest::collection::vec(any::<u8>(), 0..256)),
                0..4,
            ),
        ) {
            let bundle = Bundle {
                created_at,
                docs: docs
                    .into_iter()
                    .map(|(doc_id, heads, data)| BundleDoc {
                        doc_id,
                        heads: heads.into_iter().map(ChangeHash).collect(),
                        data,
                        proofs: Vec::new(),
                    })
                    .collect(),
            };
            prop_assert_eq!(Bundle::decode(&bundle.encode().unwrap()).unwrap(), bundle);
        }

        #[test]
        fn garbage_payloads_never_panic(garbage in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Bundle::decode(&garbage);
        }

        #[test]
        fn garbage_files_never_panic(garbage in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = verify(&garbage);
            let mut framed = MAGIC.to_vec();
            framed.push(VERSION);
            framed.extend_from_slice(&garbage);
            let _ = verify(&framed);
        }
    }
}
