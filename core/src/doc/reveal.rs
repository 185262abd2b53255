//! Answers revealed together: check-ins and reflections that the household document
//! holds sealed until both partners have answered the same day.
//!
//! This module owns the sealed value format, the one-time keys kept in the author's
//! private document, the rule for when a key is due, and publishing it. It must not make
//! keys itself: the caller hands in a fresh age identity per answer, so `core` stays free
//! of hidden randomness. It reads no clock.
//!
//! # How an answer is sealed
//!
//! The author's device encrypts the record's JSON with age to a fresh X25519 identity
//! made for this one answer, and writes two values under the record's id, in the
//! record's own collection:
//!
//! ```text
//! household:  s1 ␟ date ␟ person ␟ at ␟ base64(age ciphertext)            (sealed)
//!             s1 ␟ date ␟ person ␟ at ␟ base64(age ciphertext) ␟ AGE-SECRET-KEY-1…  (revealed)
//! private:    k1 ␟ date ␟ person ␟ AGE-SECRET-KEY-1…
//! ```
//!
//! The private document syncs only to the author's own devices, so until the key is
//! published the partner's devices hold the ciphertext and nothing that opens it. The
//! date, the author and the time stay readable: they are what lets the partner see that
//! an answer waits for theirs, and what lets the author's daemon decide when to reveal.
//!
//! **Why the record's own collection:** the collections are made by the genesis change,
//! and a collection added later by two devices apart would fork, one hiding the other.
//!
//! # Padding
//!
//! Before sealing, the record's JSON is padded to one of a few sizes: 256 bytes, 1 KiB,
//! 4 KiB, 16 KiB, then whole multiples of 16 KiB. The padding is one `0x80` byte and then
//! zeros, which JSON text never ends with. So the length of the ciphertext tells the
//! partner which bucket the note fell in, not how long it is. (age's header also carries
//! a random "grease" stanza of up to a few hundred bytes, so even answers in one bucket
//! differ in length by chance, never by content.) An answer sealed before
//! padding came in is the bare JSON object, ending in `}`, and opens as it is.
//!
//! # When a key is published
//!
//! A key is due once the partner's answer of the same kind and the same local date is in
//! the household document: shared, sealed or already revealed. "The partner" is the
//! other person on this device's verified roster (`roster::Verified::partner`), never
//! whoever a record names: an answer under any other person id, made up or merely
//! written into the document, opens nothing. Without a verified partner, nothing is due.
//! A private answer does not count, since nobody else can see it. Reflections ask the
//! same three questions every time, so their "prompt" is the day too. Any of the author's
//! devices that holds the key publishes it by rewriting the sealed value with the key
//! appended, and notes the time beside the key in the private document:
//!
//! ```text
//! private:    k1 ␟ date ␟ person ␟ AGE-SECRET-KEY-1… ␟ published_at
//! ```
//!
//! That time is what lets the author see, a day later, that the partner's answer for the
//! same day is still sealed ([`Docs::waiting_for_theirs`]): their device may be off, or
//! their key has not been sent yet.
//!
//! **Why racing reveals are harmless:** two of the author's devices that publish at once
//! both write the same value to the same key. Automerge keeps both as a conflict, and
//! whichever wins reads the same.

use std::collections::BTreeSet;

use age::secrecy::ExposeSecret;
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ReadDoc, ScalarValue, Value};
use serde_json::Value as Json;
use uuid::Uuid;

use super::{
    compact_body, decode_parts, split_compact, Collection, Doc, DocError, Docs, Fields, Record, SEP,
};
use crate::model::{
    CheckIn, Millis, OwnParts, PersonId, Reflection, ValidationError, Visibility, When,
};

/// The first characters of a sealed answer in the household document.
pub const SEALED_TAG: &str = "s1\u{1f}";
/// The first characters of an answer's one-time key in the author's private document.
pub const KEY_TAG: &str = "k1\u{1f}";

/// The collections whose records may be revealed together.
const SEALABLE: [Collection; 2] = [Collection::CheckIns, Collection::Reflections];

/// The sizes a sealed plaintext is padded to, smallest first. Larger plaintexts are
/// padded to a whole multiple of the last one.
const PAD_BUCKETS: [usize; 4] = [256, 1024, 4096, 16 * 1024];
/// The byte that ends a plaintext before its padding zeros.
const PAD_MARK: u8 = 0x80;

/// How long after this person's key was published a partner's answer that is still
/// sealed is pointed out: a day.
pub const WAITING_NOTICE_AFTER: Millis = 24 * 60 * 60 * 1000;

/// A record that may be kept sealed until the partner answers: check-ins and reflections.
pub trait Sealable: Record {
    /// Who wrote it.
    fn author(&self) -> PersonId;
    /// When it was written.
    fn when(&self) -> When;
    /// Who may read it.
    fn visibility(&self) -> Visibility;
    /// Checks the record against the model's rules.
    fn check(&self) -> Result<(), ValidationError>;
    /// Its id.
    fn id(&self) -> Uuid;
    /// What may be sealed for the partner, and what the author keeps to themselves
    /// (see [`CheckIn::split_own`]).
    fn split_own(&self) -> (Self, Option<OwnParts>)
    where
        Self: Sized;
}

impl Sealable for CheckIn {
    fn author(&self) -> PersonId {
        self.author
    }
    fn when(&self) -> When {
        self.when
    }
    fn visibility(&self) -> Visibility {
        self.visibility
    }
    fn check(&self) -> Result<(), ValidationError> {
        self.validate()
    }
    fn id(&self) -> Uuid {
        self.id
    }
    fn split_own(&self) -> (CheckIn, Option<OwnParts>) {
        CheckIn::split_own(self)
    }
}

impl Sealable for Reflection {
    fn author(&self) -> PersonId {
        self.author
    }
    fn when(&self) -> When {
        self.when
    }
    fn visibility(&self) -> Visibility {
        self.visibility
    }
    fn check(&self) -> Result<(), ValidationError> {
        self.validate()
    }
    fn id(&self) -> Uuid {
        self.id
    }
    fn split_own(&self) -> (Reflection, Option<OwnParts>) {
        (self.clone(), None)
    }
}

/// An answer that this device cannot read yet, described without its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedEntry {
    /// `checkins` or `reflections`.
    pub collection: Collection,
    /// The record's id.
    pub id: Uuid,
    /// Who wrote it.
    pub author: PersonId,
    /// The author's local date.
    pub date: chrono::NaiveDate,
    /// When it was written, Unix milliseconds.
    pub at: Millis,
}

/// One of this person's answers whose key was published at least a day ago
/// ([`WAITING_NOTICE_AFTER`]), while the partner's answer of the same kind and day is
/// still sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingForTheirs {
    /// `checkins` or `reflections`.
    pub collection: Collection,
    /// The id of this person's answer.
    pub id: Uuid,
    /// The local date both answers are for.
    pub date: chrono::NaiveDate,
    /// When this person's key was published, Unix milliseconds.
    pub published_at: Millis,
}

/// A sealed value, split into its parts.
pub(crate) struct SealedValue<'a> {
    pub(crate) date: &'a str,
    pub(crate) person: &'a str,
    pub(crate) at: Millis,
    pub(crate) ciphertext: &'a str,
    pub(crate) key: Option<&'a str>,
}

/// Splits a sealed value; `None` when `text` is not one.
pub(crate) fn split_sealed(text: &str) -> Option<SealedValue<'_>> {
    let rest = text.strip_prefix(SEALED_TAG)?;
    let mut parts = rest.split(SEP);
    let value = SealedValue {
        date: parts.next()?,
        person: parts.next()?,
        at: parts.next()?.parse().ok()?,
        ciphertext: parts.next()?,
        key: parts.next(),
    };
    if parts.next().is_some() {
        return None;
    }
    Some(value)
}

/// A key value in the author's private document, split into its parts.
struct KeyValue<'a> {
    date: &'a str,
    person: &'a str,
    secret: &'a str,
    /// When the key was published; `None` before it was, or when it was published by a
    /// version that did not note the time.
    published_at: Option<Millis>,
}

/// Splits a key value; `None` when `text` is not one.
fn split_key(text: &str) -> Option<KeyValue<'_>> {
    let rest = text.strip_prefix(KEY_TAG)?;
    let mut parts = rest.split(SEP);
    let value = KeyValue {
        date: parts.next()?,
        person: parts.next()?,
        secret: parts.next()?,
        published_at: match parts.next() {
            Some(at) => Some(at.parse().ok()?),
            None => None,
        },
    };
    if parts.next().is_some() {
        return None;
    }
    Some(value)
}

/// The length `len` bytes of plaintext are padded to: the smallest bucket that holds
/// them and the mark.
fn padded_len(len: usize) -> usize {
    let need = len.saturating_add(1);
    let largest = PAD_BUCKETS[PAD_BUCKETS.len() - 1];
    PAD_BUCKETS
        .iter()
        .copied()
        .find(|bucket| need <= *bucket)
        .unwrap_or_else(|| need.div_ceil(largest).saturating_mul(largest))
}

/// `plain`, then the mark, then zeros up to its bucket.
fn pad(plain: &[u8]) -> Vec<u8> {
    let len = padded_len(plain.len());
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(plain);
    out.push(PAD_MARK);
    out.resize(len, 0);
    out
}

/// The plaintext inside `padded`. Bytes that are neither an answer sealed before padding
/// came in (bare JSON, ending in `}`) nor correctly padded are refused, never guessed at.
fn unpad(padded: &[u8]) -> Result<&[u8], &'static str> {
    if padded.last() == Some(&b'}') {
        return Ok(padded);
    }
    let largest = PAD_BUCKETS[PAD_BUCKETS.len() - 1];
    let len = padded.len();
    if !(PAD_BUCKETS.contains(&len) || (len > largest && len.is_multiple_of(largest))) {
        return Err("its padding is not one of the sizes Hearth uses");
    }
    let end = padded
        .iter()
        .rposition(|b| *b != 0)
        .ok_or("it holds nothing but padding")?;
    if padded.get(end) != Some(&PAD_MARK) {
        return Err("its padding is damaged");
    }
    Ok(padded.get(..end).unwrap_or_default())
}

fn seal_error<R: Record>(action: &'static str, reason: impl Into<String>) -> DocError {
    DocError::Seal {
        kind: R::COLLECTION.key(),
        action,
        reason: reason.into(),
    }
}

/// Opens a sealed value with `secret`.
fn open_with<R: Record>(key: &str, sealed: &SealedValue<'_>, secret: &str) -> Result<R, DocError> {
    let identity: age::x25519::Identity = secret
        .parse()
        .map_err(|_| seal_error::<R>("opened", "the key is not an age key"))?;
    let ciphertext = data_encoding::BASE64
        .decode(sealed.ciphertext.as_bytes())
        .map_err(|e| seal_error::<R>("opened", e.to_string()))?;
    let padded = crate::envelope::decrypt_with([&identity as &dyn age::Identity], &ciphertext)
        .map_err(|_| seal_error::<R>("opened", "the key does not open it"))?;
    let plain = unpad(&padded).map_err(|reason| seal_error::<R>("opened", reason))?;
    let json = std::str::from_utf8(plain)
        .map_err(|_| seal_error::<R>("opened", "the answer is not text"))?;
    decode_parts::<R>(key, sealed.date, sealed.person, json)
}

/// Whether `secret` opens the sealed value's ciphertext. The rules of
/// [`crate::authority`] refuse a published key that does not, so a key is judged by
/// what it opens, never by what it claims.
pub(crate) fn key_opens(sealed: &SealedValue<'_>, secret: &str) -> bool {
    let Ok(identity) = secret.parse::<age::x25519::Identity>() else {
        return false;
    };
    let Ok(ciphertext) = data_encoding::BASE64.decode(sealed.ciphertext.as_bytes()) else {
        return false;
    };
    crate::envelope::decrypt_with([&identity as &dyn age::Identity], &ciphertext).is_ok()
}

/// Opens a sealed value whose key was published; `Ok(None)` while it is still sealed.
pub(super) fn open_published<R: Record>(key: &str, text: &str) -> Result<Option<R>, DocError> {
    let Some(sealed) = split_sealed(text) else {
        return Ok(None);
    };
    match sealed.key {
        Some(secret) => open_with::<R>(key, &sealed, secret).map(Some),
        None => Ok(None),
    }
}

/// The date and person of any stored answer: compact, sealed or written field by field.
fn date_and_person(
    am: &automerge::Automerge,
    item: &automerge::iter::MapRangeItem<'_>,
) -> Option<(String, String)> {
    match &item.value {
        automerge::ValueRef::Scalar(automerge::ScalarValueRef::Str(text)) => {
            let text: &str = text.as_ref();
            if let Some(sealed) = split_sealed(text) {
                Some((sealed.date.to_string(), sealed.person.to_string()))
            } else {
                split_compact(text).map(|(d, p, _)| (d.to_string(), p.to_string()))
            }
        }
        automerge::ValueRef::Object(automerge::ObjType::Map) => {
            let obj = item.id();
            let fields = Fields::Map { am, obj: &obj };
            Some((fields.str("date")?, fields.str("author")?))
        }
        _ => None,
    }
}

impl Doc {
    /// The text stored at `key` in `coll`, if it is a string.
    pub(super) fn text_at(&self, coll: Collection, key: &str) -> Option<String> {
        let coll = self.collection(coll).ok()?;
        match self.am.get(&coll, key).ok().flatten() {
            Some((Value::Scalar(s), _)) => match s.as_ref() {
                ScalarValue::Str(text) => Some(text.to_string()),
                _ => None,
            },
            _ => None,
        }
    }

    /// Writes one string value in one change.
    pub(super) fn put_text(
        &mut self,
        coll: Collection,
        key: &str,
        text: &str,
        now: Millis,
    ) -> Result<(), DocError> {
        let coll = self.collection(coll)?;
        self.am
            .transact_with(
                |_| CommitOptions::default().with_time(now / 1000),
                |tx| tx.put(&coll, key, text),
            )
            .map_err(|f| DocError::Automerge(f.error))?;
        Ok(())
    }

    /// Every value in `coll` that starts with `tag`, with its key.
    fn tagged(&self, coll: Collection, tag: &str) -> Vec<(String, String)> {
        let Ok(obj) = self.collection(coll) else {
            return Vec::new();
        };
        self.am
            .map_range(&obj, ..)
            .filter_map(|item| match &item.value {
                automerge::ValueRef::Scalar(automerge::ScalarValueRef::Str(text))
                    if text.starts_with(tag) =>
                {
                    Some((item.key.to_string(), text.to_string()))
                }
                _ => None,
            })
            .collect()
    }

    /// The people who answered in `coll` on each of `dates`, as `(date, person)`.
    fn answered_on(&self, coll: Collection, dates: &BTreeSet<&str>) -> BTreeSet<(String, String)> {
        let Ok(obj) = self.collection(coll) else {
            return BTreeSet::new();
        };
        self.am
            .map_range(&obj, ..)
            .filter_map(|item| date_and_person(&self.am, &item))
            .filter(|(date, _)| dates.contains(date.as_str()))
            .collect()
    }
}

/// A key this device holds for one of its person's answers that is still sealed.
struct Pending {
    collection: Collection,
    id: String,
    date: String,
    secret: String,
    sealed: String,
}

impl Docs {
    /// Writes an answer sealed until the partner answers the same day: the household
    /// document gets it encrypted to `key`, and this person's private document gets `key`.
    ///
    /// `key` must be a fresh identity made for this one answer.
    pub fn add_sealed<R: Sealable>(
        &mut self,
        record: &R,
        key: &age::x25519::Identity,
        now: Millis,
    ) -> Result<(), DocError> {
        record.check()?;
        self.require_person("author", record.author())?;
        if record.visibility() != Visibility::RevealTogether {
            return Err(ValidationError::Invalid {
                field: "visibility",
                reason: "only a reveal-together answer is sealed".into(),
            }
            .into());
        }
        if record.author() != self.me {
            return Err(ValidationError::Invalid {
                field: "author",
                reason: "only the author's own devices can seal an answer, since they keep its key"
                    .into(),
            }
            .into());
        }
        let coll = R::COLLECTION;
        let id = record.key();
        if self.household.contains(coll, &id) || self.private.contains(coll, &id) {
            return Err(ValidationError::Invalid {
                field: "id",
                reason: "an answer with this id is already here".into(),
            }
            .into());
        }
        let (record, own) = record.split_own();
        let record = &record;
        let fields = match serde_json::to_value(record) {
            Ok(Json::Object(fields)) => fields,
            _ => return Err(seal_error::<R>("sealed", "it could not be written as JSON")),
        };
        let body = compact_body::<R>(fields)?;
        let recipient = key.to_public();
        let ciphertext =
            crate::envelope::encrypt_to([&recipient as &dyn age::Recipient], &pad(body.as_bytes()))
                .map_err(|e| seal_error::<R>("sealed", e.to_string()))?;
        let when = record.when();
        let (date, person) = (when.date, record.author());
        let secret = key.to_string();
        if let Some(own) = own {
            self.put_own(person, record.id(), &own, now)?;
        }
        // The key goes first: should the household write fail, what is left is a key
        // for nothing, never a sealed answer that nobody can open.
        self.private.put_text(
            coll,
            &id,
            &format!(
                "{KEY_TAG}{date}{SEP}{person}{SEP}{}",
                secret.expose_secret()
            ),
            now,
        )?;
        let sealed = format!(
            "{SEALED_TAG}{date}{SEP}{person}{SEP}{}{SEP}{}",
            when.at,
            data_encoding::BASE64.encode(&ciphertext)
        );
        self.household.put_text(coll, &id, &sealed, now)
    }

    /// Answers in the household document that are still sealed, oldest first, without
    /// their contents. This person's own are among them: [`Docs::checkins`] and
    /// [`Docs::reflections`] open those with the keys this device holds.
    pub fn sealed(&self) -> Vec<SealedEntry> {
        let mut out = Vec::new();
        for coll in SEALABLE {
            for (id, text) in self.household.tagged(coll, SEALED_TAG) {
                let Some(sealed) = split_sealed(&text) else {
                    continue;
                };
                if sealed.key.is_some() {
                    continue;
                }
                let (Ok(id), Ok(author), Ok(date)) = (
                    Uuid::parse_str(&id),
                    Uuid::parse_str(sealed.person),
                    sealed.date.parse::<chrono::NaiveDate>(),
                ) else {
                    continue;
                };
                out.push(SealedEntry {
                    collection: coll,
                    id,
                    author,
                    date,
                    at: sealed.at,
                });
            }
        }
        out.sort_by_key(|e| (e.at, e.id));
        out
    }

    /// Keys this device holds for its person's answers that are still sealed.
    fn pending(&self, coll: Collection) -> Vec<Pending> {
        let me = self.me.to_string();
        self.private
            .tagged(coll, KEY_TAG)
            .into_iter()
            .filter_map(|(id, text)| {
                let KeyValue {
                    date,
                    person,
                    secret,
                    ..
                } = split_key(&text)?;
                if person != me {
                    return None;
                }
                let sealed = self.household.text_at(coll, &id)?;
                // Already revealed, or not here yet: nothing to open or publish.
                if split_sealed(&sealed)?.key.is_some() {
                    return None;
                }
                Some(Pending {
                    collection: coll,
                    id,
                    date: date.to_string(),
                    secret: secret.to_string(),
                    sealed,
                })
            })
            .collect()
    }

    /// This person's own answers that are still sealed for the partner, opened with the
    /// keys this device holds.
    pub fn own_sealed<R: Sealable>(&self) -> Vec<R> {
        self.pending(R::COLLECTION)
            .into_iter()
            .filter_map(|p| {
                let sealed = split_sealed(&p.sealed)?;
                match open_with::<R>(&p.id, &sealed, &p.secret) {
                    Ok(record) => Some(record),
                    Err(e) => {
                        tracing::warn!(kind = R::COLLECTION.key(), error = %e, "could not open an answer of our own");
                        None
                    }
                }
            })
            .collect()
    }

    /// This person's sealed answers whose partner's answer is now here, so their key is
    /// due. Each is `(collection, id)`.
    pub fn reveals_due(&self) -> Vec<(Collection, Uuid)> {
        self.due()
            .into_iter()
            .filter_map(|p| Uuid::parse_str(&p.id).ok().map(|id| (p.collection, id)))
            .collect()
    }

    /// The other person on this device's verified roster: the only one whose answer
    /// opens this person's.
    ///
    /// Before a device key is set nothing is verified (documents used without a device,
    /// as in `core`'s own tests; the daemon always sets one). Then, as with
    /// [`Docs::people`], the household's one other person record stands in, and with
    /// more than one there is no partner.
    fn verified_partner(&self) -> Option<PersonId> {
        match self.verified_roster() {
            Some(verified) => verified.partner.filter(|p| *p != self.me),
            None => {
                let others: Vec<PersonId> = self
                    .people()
                    .into_iter()
                    .map(|p| p.id)
                    .filter(|id| *id != self.me)
                    .collect();
                match others.as_slice() {
                    [one] => Some(*one),
                    _ => None,
                }
            }
        }
    }

    fn due(&self) -> Vec<Pending> {
        // Whoever a record names is not proof of anything: only the partner the roster's
        // signatures hold up counts, so an answer under a made-up person id opens nothing.
        let Some(partner) = self.verified_partner() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for coll in SEALABLE {
            let pending = self.pending(coll);
            if pending.is_empty() {
                continue;
            }
            let dates: BTreeSet<&str> = pending.iter().map(|p| p.date.as_str()).collect();
            let answered: BTreeSet<String> = self
                .household
                .answered_on(coll, &dates)
                .into_iter()
                .filter(|(_, person)| Uuid::parse_str(person).ok() == Some(partner))
                .map(|(date, _)| date)
                .collect();
            out.extend(pending.into_iter().filter(|p| answered.contains(&p.date)));
        }
        out
    }

    /// Publishes the key of every answer of this person whose partner's answer is now
    /// here, so both open on every device. Returns what it revealed.
    ///
    /// Each publication also notes its time beside the key in the private document, so
    /// both documents change when anything is returned.
    pub fn publish_reveals(&mut self, now: Millis) -> Result<Vec<(Collection, Uuid)>, DocError> {
        let mut revealed = Vec::new();
        let me = self.me;
        for p in self.due() {
            let opened = format!("{}{SEP}{}", p.sealed, p.secret);
            self.household.put_text(p.collection, &p.id, &opened, now)?;
            let noted = format!("{KEY_TAG}{}{SEP}{me}{SEP}{}{SEP}{now}", p.date, p.secret);
            self.private.put_text(p.collection, &p.id, &noted, now)?;
            if let Ok(id) = Uuid::parse_str(&p.id) {
                revealed.push((p.collection, id));
            }
        }
        Ok(revealed)
    }

    /// This person's answers whose key was published at least a day before `now`
    /// ([`WAITING_NOTICE_AFTER`]) while the partner's answer of the same kind and day is
    /// still sealed here, oldest first.
    pub fn waiting_for_theirs(&self, now: Millis) -> Vec<WaitingForTheirs> {
        let Some(partner) = self.verified_partner() else {
            return Vec::new();
        };
        let me = self.me.to_string();
        let mut out = Vec::new();
        for coll in SEALABLE {
            // The days on which the partner's answer is here and still sealed.
            let theirs_sealed: BTreeSet<String> = self
                .household
                .tagged(coll, SEALED_TAG)
                .iter()
                .filter_map(|(_, text)| {
                    let sealed = split_sealed(text)?;
                    (sealed.key.is_none() && Uuid::parse_str(sealed.person).ok() == Some(partner))
                        .then(|| sealed.date.to_string())
                })
                .collect();
            if theirs_sealed.is_empty() {
                continue;
            }
            for (id, text) in self.private.tagged(coll, KEY_TAG) {
                let Some(key) = split_key(&text) else {
                    continue;
                };
                let Some(published_at) = key.published_at else {
                    continue;
                };
                if key.person != me
                    || !theirs_sealed.contains(key.date)
                    || now.saturating_sub(published_at) < WAITING_NOTICE_AFTER
                {
                    continue;
                }
                // Only while this person's own answer is open in the household document.
                let open = self
                    .household
                    .text_at(coll, &id)
                    .is_some_and(|t| split_sealed(&t).is_some_and(|s| s.key.is_some()));
                let (Ok(id), Ok(date)) = (Uuid::parse_str(&id), key.date.parse()) else {
                    continue;
                };
                if open {
                    out.push(WaitingForTheirs {
                        collection: coll,
                        id,
                        date,
                        published_at,
                    });
                }
            }
        }
        out.sort_by_key(|w| (w.published_at, w.id));
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::doc::DocKind;
    use crate::model::*;
    use std::collections::{BTreeMap, BTreeSet};

    const NOTE_A: &str = "ada's-secret-note";
    const NOTE_B: &str = "bo's-secret-note";

    use crate::doc::tests::{actor, person};

    /// Ada's two devices and Bo's one, with the household merged everywhere and each
    /// device's roster verified from its own key.
    struct World {
        ada1: Docs,
        ada2: Docs,
        bo: Docs,
    }

    fn keypair() -> ring::signature::Ed25519KeyPair {
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&crate::test_rng()).unwrap();
        ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    fn public(key: &ring::signature::Ed25519KeyPair) -> [u8; 32] {
        use ring::signature::KeyPair;
        key.public_key().as_ref().try_into().unwrap()
    }

    /// The roster entry of `subject`, admitted by `sponsor` as `role`, signed by itself.
    fn admitted(
        subject: &ring::signature::Ed25519KeyPair,
        sponsor: &ring::signature::Ed25519KeyPair,
        person: PersonId,
        role: crate::roster::Admit,
    ) -> Device {
        let key = public(subject);
        let mut device = Device {
            id: crate::identity::DeviceId::from_public_key(&key).to_string(),
            person,
            name: "a device".into(),
            public_key: data_encoding::HEXLOWER.encode(&key),
            age_recipient: None,
            added_by: Some(
                crate::identity::DeviceId::from_public_key(&public(sponsor)).to_string(),
            ),
            added_at: 1,
            revoked_at: None,
            admission: Some(crate::roster::admit(sponsor, &key, person, role, 1)),
            self_sig: None,
            removal: None,
        };
        device.self_sig = Some(crate::roster::self_sign(subject, &device));
        device
    }

    fn merge(into: &mut Doc, from: &Doc) {
        into.automerge_mut()
            .merge(&mut from.automerge().clone())
            .unwrap();
    }

    impl World {
        fn new() -> World {
            let a = person("Ada", 1);
            let b = person("Bo", 2);
            let mut ada1 = Docs::new(a.id, actor(1));
            ada1.add_person(&a, 1).unwrap();
            ada1.add_person(&b, 1).unwrap();
            let (k1, k2, kb) = (keypair(), keypair(), keypair());
            use crate::roster::{founder_entry, Admit};
            for device in [
                founder_entry(&k1, a.id, "laptop", None, 1),
                admitted(&k2, &k1, a.id, Admit::OwnDevice),
                admitted(&kb, &k1, b.id, Admit::Partner),
            ] {
                ada1.put_device(&device, 1).unwrap();
            }
            let mut ada2 = Docs::new(a.id, actor(2));
            let mut bo = Docs::new(b.id, actor(3));
            merge(&mut ada2.household, &ada1.household);
            merge(&mut bo.household, &ada1.household);
            ada1.set_device_key(public(&k1));
            ada2.set_device_key(public(&k2));
            bo.set_device_key(public(&kb));
            let w = World { ada1, ada2, bo };
            assert_eq!(w.ada1.verified_roster().unwrap().partner, Some(b.id));
            assert_eq!(w.bo.verified_roster().unwrap().partner, Some(a.id));
            w
        }

        /// Every device verifies its roster again, as the daemon does after a change.
        fn refresh(&mut self) {
            for docs in [&mut self.ada1, &mut self.ada2, &mut self.bo] {
                docs.refresh_roster();
            }
        }

        /// Everyone's household meets; Ada's private document syncs between her devices.
        fn sync_all(&mut self) {
            for _ in 0..2 {
                let (h1, h2, hb) = (
                    self.ada1.household.clone(),
                    self.ada2.household.clone(),
                    self.bo.household.clone(),
                );
                for h in [&h1, &h2, &hb] {
                    merge(&mut self.ada1.household, h);
                    merge(&mut self.ada2.household, h);
                    merge(&mut self.bo.household, h);
                }
                let (p1, p2) = (self.ada1.private.clone(), self.ada2.private.clone());
                merge(&mut self.ada1.private, &p2);
                merge(&mut self.ada2.private, &p1);
            }
            self.refresh();
        }

        fn a(&self) -> PersonId {
            self.ada1.me
        }

        fn b(&self) -> PersonId {
            self.bo.me
        }
    }

    fn checkin(author: PersonId, n: u128, day: i64, note: &str, visibility: Visibility) -> CheckIn {
        CheckIn {
            id: Uuid::from_u128(n),
            author,
            when: When::from_utc(1_700_000_000_000 + day * 86_400_000, 0),
            battery: 35,
            signs: BTreeMap::from([(BurnoutSign::Warmth, 3)]),
            body: BTreeSet::new(),
            basics: BTreeMap::new(),
            note: Some(note.into()),
            ask: None,
            visibility,
            kept_to_self: Default::default(),
        }
    }

    fn contains_bytes(doc: &Doc, needle: &str) -> bool {
        let bytes = doc.automerge().save_nocompress();
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    fn notes(docs: &Docs) -> Vec<String> {
        let mut out: Vec<String> = docs.checkins().into_iter().filter_map(|c| c.note).collect();
        out.sort();
        out
    }

    #[test]
    fn a_sealed_answer_is_ciphertext_for_the_partner_until_both_answered() {
        let mut w = World::new();
        let a = w.a();
        let mine = checkin(a, 10, 0, NOTE_A, Visibility::RevealTogether);
        w.ada1
            .add_sealed(&mine, &age::x25519::Identity::generate(), 5)
            .unwrap();
        // The author reads her own answer; the plain text is in neither document's bytes.
        assert_eq!(notes(&w.ada1), vec![NOTE_A]);
        assert!(!contains_bytes(&w.ada1.household, NOTE_A));
        assert!(!contains_bytes(&w.ada1.private, NOTE_A));
        w.sync_all();

        // Bo holds the sealed value and nothing that opens it.
        assert!(w.bo.checkins().is_empty());
        assert!(!contains_bytes(&w.bo.household, NOTE_A));
        assert!(
            w.bo.private.automerge().get_heads()
                == Doc::new(DocKind::Private(w.b()), actor(9)).heads()
        );
        let sealed = w.bo.sealed();
        assert_eq!(sealed.len(), 1);
        assert_eq!((sealed[0].author, sealed[0].id), (a, mine.id));
        assert!(w
            .bo
            .household
            .get::<CheckIn>(&mine.id.to_string())
            .unwrap()
            .is_none());
        assert!(w.ada1.reveals_due().is_empty());
        assert!(w.ada1.publish_reveals(6).unwrap().is_empty());

        // A private answer from Bo does not count: Ada cannot see it.
        w.bo.add_checkin(&checkin(w.b(), 20, 0, "bo-private", Visibility::Private), 7)
            .unwrap();
        w.sync_all();
        assert!(w.ada1.reveals_due().is_empty());

        // Bo answers the same day, sealed too. His device can publish at once: Ada's
        // answer is there.
        let his = checkin(w.b(), 21, 0, NOTE_B, Visibility::RevealTogether);
        w.bo.add_sealed(&his, &age::x25519::Identity::generate(), 8)
            .unwrap();
        assert_eq!(
            w.bo.publish_reveals(8).unwrap(),
            vec![(Collection::CheckIns, his.id)]
        );
        w.sync_all();
        // Ada now reads Bo's, and Bo still cannot read Ada's until her daemon publishes.
        assert_eq!(notes(&w.ada1), vec![NOTE_A, NOTE_B]);
        assert_eq!(notes(&w.bo), vec![NOTE_B, "bo-private"]);
        assert_eq!(
            w.ada1.publish_reveals(9).unwrap(),
            vec![(Collection::CheckIns, mine.id)]
        );
        w.sync_all();
        assert_eq!(notes(&w.bo), vec![NOTE_A, NOTE_B, "bo-private"]);
        assert!(w.bo.sealed().is_empty());
        // Opened answers read like any other: through the filters insights use too.
        let day = mine.when.date;
        assert_eq!(
            w.bo.household
                .filter::<CheckIn>(|f| f.str("date") == Some(day.to_string()))
                .len(),
            2
        );
        assert_eq!(
            w.bo.household.get::<CheckIn>(&mine.id.to_string()).unwrap(),
            Some(mine)
        );
    }

    #[test]
    fn an_author_who_never_answers_keeps_the_other_sealed() {
        let mut w = World::new();
        let b = w.b();
        w.bo.add_sealed(
            &checkin(b, 30, 0, NOTE_B, Visibility::RevealTogether),
            &age::x25519::Identity::generate(),
            1,
        )
        .unwrap();
        // Ada answers, but on another day, and shares a reflection the same day: neither
        // is an answer to the same prompt.
        w.ada1
            .add_checkin(&checkin(w.a(), 31, 1, "other day", Visibility::Shared), 2)
            .unwrap();
        w.ada1
            .add_reflection(
                &Reflection {
                    id: Uuid::from_u128(32),
                    author: w.a(),
                    when: When::from_utc(1_700_000_000_000, 0),
                    energy: Answer::Yes,
                    safe: Answer::Yes,
                    aligned: Answer::Yes,
                    note: None,
                    visibility: Visibility::Shared,
                },
                2,
            )
            .unwrap();
        w.sync_all();
        assert!(w.bo.publish_reveals(3).unwrap().is_empty());
        w.sync_all();
        assert_eq!(notes(&w.ada1), vec!["other day"]);
        assert_eq!(w.ada1.sealed().len(), 1);
        assert!(!contains_bytes(&w.ada1.household, NOTE_B));
    }

    #[test]
    fn two_of_the_authors_devices_revealing_at_once_is_harmless() {
        let mut w = World::new();
        let a = w.a();
        let mine = checkin(a, 40, 0, NOTE_A, Visibility::RevealTogether);
        w.ada1
            .add_sealed(&mine, &age::x25519::Identity::generate(), 1)
            .unwrap();
        w.sync_all();
        // Her second device got the key with her private document and reads the answer.
        assert_eq!(notes(&w.ada2), vec![NOTE_A]);
        w.bo.add_checkin(&checkin(w.b(), 41, 0, NOTE_B, Visibility::Shared), 2)
            .unwrap();
        w.sync_all();
        // Both of Ada's devices see Bo's answer and publish before hearing of each other.
        assert_eq!(w.ada1.publish_reveals(3).unwrap().len(), 1);
        assert_eq!(w.ada2.publish_reveals(3).unwrap().len(), 1);
        w.sync_all();
        for docs in [&w.ada1, &w.ada2, &w.bo] {
            assert_eq!(notes(docs), vec![NOTE_A, NOTE_B]);
            assert!(docs.sealed().is_empty());
            assert!(docs.reveals_due().is_empty());
        }
        assert_eq!(w.ada1.household.heads(), w.bo.household.heads());
        // The two publications are a conflict of equal values, not two different answers.
        let coll = w.bo.household.collection(Collection::CheckIns).unwrap();
        let all =
            w.bo.household
                .automerge()
                .get_all(&coll, mine.id.to_string().as_str())
                .unwrap();
        assert_eq!(all.len(), 2);
        let texts: BTreeSet<String> = all.iter().map(|(v, _)| v.to_string()).collect();
        assert_eq!(texts.len(), 1);
        // Nothing more is due afterwards, so no device keeps rewriting it.
        assert!(w.ada1.publish_reveals(4).unwrap().is_empty());
    }

    #[test]
    fn a_second_device_without_the_key_yet_waits_for_it() {
        let mut w = World::new();
        let a = w.a();
        w.ada1
            .add_sealed(
                &checkin(a, 50, 0, NOTE_A, Visibility::RevealTogether),
                &age::x25519::Identity::generate(),
                1,
            )
            .unwrap();
        // Only the household reaches the second device.
        let h = w.ada1.household.clone();
        merge(&mut w.ada2.household, &h);
        merge(&mut w.bo.household, &h);
        w.bo.add_checkin(&checkin(w.b(), 51, 0, NOTE_B, Visibility::Shared), 2)
            .unwrap();
        let hb = w.bo.household.clone();
        merge(&mut w.ada2.household, &hb);
        assert!(w.ada2.publish_reveals(3).unwrap().is_empty());
        assert_eq!(w.ada2.sealed().len(), 1);
    }

    #[test]
    fn only_reveal_together_answers_of_this_person_are_sealed() {
        let mut w = World::new();
        let key = age::x25519::Identity::generate();
        let shared = checkin(w.a(), 60, 0, NOTE_A, Visibility::Shared);
        assert!(w.ada1.add_sealed(&shared, &key, 1).is_err());
        let bos = checkin(w.b(), 61, 0, NOTE_B, Visibility::RevealTogether);
        assert!(w.ada1.add_sealed(&bos, &key, 1).is_err());
        // The ordinary write path points at the sealed one instead of writing plain text.
        let mine = checkin(w.a(), 62, 0, NOTE_A, Visibility::RevealTogether);
        assert!(w.ada1.add_checkin(&mine, 1).is_err());
        w.ada1.add_sealed(&mine, &key, 1).unwrap();
        assert!(w.ada1.add_sealed(&mine, &key, 1).is_err());
    }

    #[test]
    fn a_wrong_published_key_is_reported_not_trusted() {
        let mut w = World::new();
        let mine = checkin(w.a(), 70, 0, NOTE_A, Visibility::RevealTogether);
        w.ada1
            .add_sealed(&mine, &age::x25519::Identity::generate(), 1)
            .unwrap();
        let id = mine.id.to_string();
        let sealed = w.ada1.household.text_at(Collection::CheckIns, &id).unwrap();
        let other = age::x25519::Identity::generate();
        let forged = format!("{sealed}{SEP}{}", other.to_string().expose_secret());
        w.ada1
            .household
            .put_text(Collection::CheckIns, &id, &forged, 2)
            .unwrap();
        assert!(matches!(
            w.ada1.household.get::<CheckIn>(&id),
            Err(DocError::Seal { .. })
        ));
        // Whole reads skip it with a warning instead of failing.
        assert!(w.ada1.household.all::<CheckIn>().is_empty());
    }

    /// The length of the encrypted payload of the sealed value stored under `id`: the
    /// age file after its header. The header's length is the same for every answer but
    /// for age's random "grease" stanza, which has nothing to do with the content.
    fn sealed_len(docs: &Docs, id: Uuid) -> usize {
        let text = docs
            .household
            .text_at(Collection::CheckIns, &id.to_string())
            .unwrap();
        let age_file = data_encoding::BASE64
            .decode(split_sealed(&text).unwrap().ciphertext.as_bytes())
            .unwrap();
        let mac_line = age_file.windows(5).position(|w| w == b"\n--- ").unwrap() + 1;
        let header_end = mac_line
            + age_file[mac_line..]
                .iter()
                .position(|b| *b == b'\n')
                .unwrap();
        age_file.len() - header_end - 1
    }

    #[test]
    fn an_answer_under_a_person_the_roster_does_not_hold_opens_nothing() {
        let mut w = World::new();
        let mine = checkin(w.a(), 80, 0, NOTE_A, Visibility::RevealTogether);
        w.ada1
            .add_sealed(&mine, &age::x25519::Identity::generate(), 1)
            .unwrap();
        w.sync_all();
        // Bo's modified client writes answers for that day under a person id nobody
        // vouches for: one shared, one sealed, and a person record to go with them.
        let stranger = person("Someone", 99);
        w.bo.add_person(&stranger, 2).unwrap();
        w.bo.household
            .put(
                &checkin(stranger.id, 81, 0, "made up", Visibility::Shared),
                2,
            )
            .unwrap();
        let fake_sealed = format!(
            "{SEALED_TAG}{}{SEP}{}{SEP}2{SEP}AAAA",
            mine.when.date, stranger.id
        );
        w.bo.household
            .put_text(
                Collection::CheckIns,
                &Uuid::from_u128(82).to_string(),
                &fake_sealed,
                2,
            )
            .unwrap();
        w.sync_all();
        assert!(w.ada1.reveals_due().is_empty());
        assert!(w.ada1.publish_reveals(3).unwrap().is_empty());
        w.sync_all();
        assert!(!contains_bytes(&w.bo.household, NOTE_A));
        assert!(w.bo.sealed().iter().any(|e| e.id == mine.id));

        // Bo's own answer, the verified partner's, does open it.
        w.bo.add_checkin(&checkin(w.b(), 83, 0, NOTE_B, Visibility::Shared), 4)
            .unwrap();
        w.sync_all();
        assert_eq!(w.ada1.reveals_due(), vec![(Collection::CheckIns, mine.id)]);
    }

    #[test]
    fn without_a_verified_partner_nothing_is_due() {
        let a = person("Ada", 1);
        let b = person("Bo", 2);
        // Ada's device has its key and its own signed entry, and Bo has a person record
        // and an answer, but no device of his is vouched for: he is not her partner.
        let mut ada = Docs::new(a.id, actor(1));
        ada.add_person(&a, 1).unwrap();
        ada.add_person(&b, 1).unwrap();
        let key = keypair();
        ada.put_device(
            &crate::roster::founder_entry(&key, a.id, "laptop", None, 1),
            1,
        )
        .unwrap();
        ada.set_device_key(public(&key));
        assert_eq!(ada.verified_roster().unwrap().partner, None);
        ada.add_sealed(
            &checkin(a.id, 90, 0, NOTE_A, Visibility::RevealTogether),
            &age::x25519::Identity::generate(),
            2,
        )
        .unwrap();
        ada.household
            .put(&checkin(b.id, 91, 0, NOTE_B, Visibility::Shared), 3)
            .unwrap();
        ada.refresh_roster();
        assert!(ada.reveals_due().is_empty());
        assert!(ada.publish_reveals(4).unwrap().is_empty());
    }

    #[test]
    fn notes_of_very_different_lengths_in_one_bucket_seal_to_the_same_length() {
        let mut w = World::new();
        let a = w.a();
        let key = || age::x25519::Identity::generate();
        let short = checkin(a, 100, 0, &"s".repeat(1_100), Visibility::RevealTogether);
        let long = checkin(a, 101, 1, &"l".repeat(3_000), Visibility::RevealTogether);
        let tiny = checkin(a, 102, 2, "t", Visibility::RevealTogether);
        let tiny2 = checkin(a, 103, 3, &"u".repeat(60), Visibility::RevealTogether);
        for c in [&short, &long, &tiny, &tiny2] {
            w.ada1.add_sealed(c, &key(), 1).unwrap();
        }
        // 1,100 and 3,000 characters both fall in the 4 KiB bucket.
        assert_eq!(sealed_len(&w.ada1, short.id), sealed_len(&w.ada1, long.id));
        assert_eq!(sealed_len(&w.ada1, tiny.id), sealed_len(&w.ada1, tiny2.id));
        assert!(sealed_len(&w.ada1, tiny.id) < sealed_len(&w.ada1, short.id));
        // And each still opens to its own note.
        let mut own: Vec<usize> = w
            .ada1
            .own_sealed::<CheckIn>()
            .iter()
            .map(|c| c.note.as_deref().unwrap().len())
            .collect();
        own.sort();
        assert_eq!(own, vec![1, 60, 1_100, 3_000]);
    }

    #[test]
    fn padding_goes_to_fixed_buckets_and_bad_padding_is_refused() {
        for (len, padded) in [
            (0, 256),
            (255, 256),
            (256, 1024),
            (1023, 1024),
            (4095, 4096),
            (16_383, 16_384),
            (16_384, 32_768),
            (40_000, 49_152),
        ] {
            let p = pad(&vec![b'x'; len]);
            assert_eq!(p.len(), padded, "{len}");
            assert_eq!(unpad(&p).unwrap().len(), len);
        }
        // A plaintext that ends in the mark's byte value keeps it.
        let ends_in_mark = "\u{100}".as_bytes();
        assert_eq!(ends_in_mark.last(), Some(&PAD_MARK));
        assert_eq!(unpad(&pad(ends_in_mark)).unwrap(), ends_in_mark);
        // Answers sealed before padding: bare JSON.
        assert_eq!(unpad(b"{\"a\":1}").unwrap(), b"{\"a\":1}");
        let mut no_mark = pad(b"{}");
        no_mark[2] = 0;
        let mut wrong_mark = pad(b"x");
        wrong_mark[1] = 0x7f;
        for bad in [
            Vec::new(),
            vec![0; 256],
            no_mark,
            wrong_mark,
            pad(b"x")[..255].to_vec(),
            vec![b'x'; 300],
            {
                let mut odd = b"x".to_vec();
                odd.push(PAD_MARK);
                odd.resize(300, 0);
                odd
            },
        ] {
            assert!(unpad(&bad).is_err(), "{:?}", bad.len());
        }
    }

    #[test]
    fn a_partners_badly_padded_answer_is_reported_not_opened() {
        let mut w = World::new();
        let b = w.b();
        // Bo's modified client seals bytes with damaged padding and publishes the key.
        let key = age::x25519::Identity::generate();
        let mut padded = pad(b"{\"battery\":35}");
        let last = padded.len() - 1;
        padded[last] = 7;
        let ciphertext =
            crate::envelope::encrypt_to([&key.to_public() as &dyn age::Recipient], &padded)
                .unwrap();
        let value = format!(
            "{SEALED_TAG}2023-11-14{SEP}{b}{SEP}5{SEP}{}{SEP}{}",
            data_encoding::BASE64.encode(&ciphertext),
            key.to_string().expose_secret()
        );
        let id = Uuid::from_u128(110).to_string();
        w.bo.household
            .put_text(Collection::CheckIns, &id, &value, 5)
            .unwrap();
        w.sync_all();
        match w.ada1.household.get::<CheckIn>(&id) {
            Err(DocError::Seal { action, reason, .. }) => {
                assert_eq!(action, "opened");
                assert!(reason.contains("padding"), "{reason}");
            }
            other => panic!("not refused: {other:?}"),
        }
        assert!(w.ada1.checkins().is_empty());
    }

    #[test]
    fn an_answer_sealed_before_padding_still_opens() {
        let mut w = World::new();
        let a = w.a();
        let mine = checkin(a, 120, 0, NOTE_A, Visibility::RevealTogether);
        let fields = match serde_json::to_value(&mine).unwrap() {
            Json::Object(fields) => fields,
            _ => unreachable!(),
        };
        let body = compact_body::<CheckIn>(fields).unwrap();
        let key = age::x25519::Identity::generate();
        let ciphertext =
            crate::envelope::encrypt_to([&key.to_public() as &dyn age::Recipient], body.as_bytes())
                .unwrap();
        let value = format!(
            "{SEALED_TAG}{}{SEP}{a}{SEP}{}{SEP}{}{SEP}{}",
            mine.when.date,
            mine.when.at,
            data_encoding::BASE64.encode(&ciphertext),
            key.to_string().expose_secret()
        );
        w.ada1
            .household
            .put_text(Collection::CheckIns, &mine.id.to_string(), &value, 2)
            .unwrap();
        assert_eq!(
            w.ada1
                .household
                .get::<CheckIn>(&mine.id.to_string())
                .unwrap(),
            Some(mine)
        );
    }

    #[test]
    fn a_day_after_publishing_the_author_sees_that_theirs_is_still_sealed() {
        const DAY: Millis = WAITING_NOTICE_AFTER;
        let mut w = World::new();
        let (a, b) = (w.a(), w.b());
        let hers = checkin(a, 130, 0, NOTE_A, Visibility::RevealTogether);
        w.ada1
            .add_sealed(&hers, &age::x25519::Identity::generate(), 1)
            .unwrap();
        w.sync_all();
        // Bo answers the same day while Ada's devices are away: his key is due at once.
        let his = checkin(b, 131, 0, NOTE_B, Visibility::RevealTogether);
        w.bo.add_sealed(&his, &age::x25519::Identity::generate(), 1_000)
            .unwrap();
        assert_eq!(w.bo.publish_reveals(1_000).unwrap().len(), 1);
        assert!(w.bo.waiting_for_theirs(1_000 + DAY - 1).is_empty());
        let waiting = w.bo.waiting_for_theirs(1_000 + DAY);
        assert_eq!(
            waiting,
            vec![WaitingForTheirs {
                collection: Collection::CheckIns,
                id: his.id,
                date: his.when.date,
                published_at: 1_000,
            }]
        );
        // Ada waits for nothing: her answer is the one still sealed.
        w.sync_all();
        assert!(w.ada1.waiting_for_theirs(1_000 + 2 * DAY).is_empty());
        // Once her device publishes, Bo no longer waits.
        assert_eq!(w.ada1.publish_reveals(1_000 + 2 * DAY).unwrap().len(), 1);
        w.sync_all();
        assert!(w.bo.waiting_for_theirs(1_000 + 3 * DAY).is_empty());
        assert_eq!(notes(&w.bo), vec![NOTE_A, NOTE_B]);
    }
}
