//! The Automerge documents and the typed API over them.
//!
//! A device holds two documents: the household document, which every device on the
//! roster shares, and the private document of the person who owns the device, which only
//! that person's devices share. Both have the same layout:
//!
//! ```text
//! ROOT { schema: 1, people: {uuid: {..}}, devices: {id: {..}}, checkins: {uuid: {..}},
//!        reflections, ledger, done, acks, handoffs, moments }
//! ```
//!
//! Records live in maps keyed by UUID, so concurrent inserts never collide. Each record is
//! a map of fields written one by one, so concurrent edits to different fields of the same
//! record both survive, and edits to the same field resolve by Automerge's deterministic
//! rule. Text that both partners edit (`title`, `good_enough`) is an Automerge text object
//! and merges character by character.
//!
//! **Why a genesis change:** the collection maps must exist before anything is written,
//! but if two devices each created `checkins` on their own, Automerge would keep one of the
//! two maps and hide the other's records. So every document starts with the same
//! deterministic change (fixed actor, fixed time), which has the same hash everywhere and
//! merges as one.
//!
//! Writes touch only the record they change. Reads go record by record: a query filters on
//! one or two scalar fields read in place and builds only the records it returns.
//!
//! This module does no IO and reads no clock: commit times come in as arguments.

use std::collections::BTreeSet;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, ChangeHash, ObjId, ObjType, ReadDoc, ScalarValue, Value};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map as JsonMap, Number, Value as Json};
use uuid::Uuid;

use crate::model::{
    Acknowledgment, CheckIn, Device, DoneEntry, Handoff, HandoffState, ItemStatus, LedgerItem,
    Millis, Moment, OwnParts, Pause, Person, PersonId, Reflection, Stage, TargetKind,
    ValidationError, Visibility, When, SCHEMA_VERSION,
};
use crate::provenance::ProofBook;
use crate::roster;

mod admit;
mod reveal;
pub(crate) use reveal::{key_opens, split_sealed};
pub use reveal::{
    Sealable, SealedEntry, WaitingForTheirs, KEY_TAG, SEALED_TAG, WAITING_NOTICE_AFTER,
};

/// Problems reading or writing a document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DocError {
    /// The record breaks a rule of the model.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// No record matches the id or prefix.
    #[error("no {kind} has an id starting with `{prefix}`; `hearth log` and `hearth ledger list` show the ids")]
    NotFound {
        /// The kind of record looked for.
        kind: &'static str,
        /// The id or prefix given.
        prefix: String,
    },
    /// A prefix matches several records.
    #[error("`{prefix}` matches {count} {kind} records; type a few more characters of the id")]
    Ambiguous {
        /// The kind of record looked for.
        kind: &'static str,
        /// The prefix given.
        prefix: String,
        /// How many records it matched.
        count: usize,
    },
    /// The bytes are not an Automerge document.
    #[error(
        "the document could not be read ({0}); it will be restored from a partner's device by sync"
    )]
    Corrupt(String),
    /// The document has the wrong shape for a Hearth document.
    #[error("the document is missing its `{0}` collection; it was not written by Hearth")]
    MissingCollection(&'static str),
    /// A record could not be encoded or decoded.
    #[error("a {kind} record could not be read ({reason}); it may come from a newer Hearth — please update")]
    Decode {
        /// The kind of record.
        kind: &'static str,
        /// What went wrong, in fixed words: never serde's message, which quotes the
        /// offending value (an entry's content or a name) and would reach the logs.
        reason: &'static str,
    },
    /// A document id that is not one of this device's.
    #[error("that document is not one this device keeps; nothing was changed")]
    NotMine,
    /// A signed head could not be read or does not hold.
    #[error(transparent)]
    Proof(#[from] crate::provenance::ProofError),
    /// Automerge refused an operation.
    #[error("the document refused a change ({0}); nothing was written")]
    Automerge(#[from] automerge::AutomergeError),
    /// An answer to be revealed together could not be sealed, or a published key does not
    /// open it.
    #[error("a {kind} kept sealed until both partners answer could not be {action} ({reason}); nothing was changed — if this keeps happening, report it")]
    Seal {
        /// The kind of record.
        kind: &'static str,
        /// `sealed` or `opened`.
        action: &'static str,
        /// What went wrong. Never contains the answer.
        reason: String,
    },
}

/// The record collections, each a map at the document root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Collection {
    /// People in the household.
    People,
    /// The device roster.
    Devices,
    /// Check-ins.
    CheckIns,
    /// Reflections.
    Reflections,
    /// Ledger items.
    Ledger,
    /// Done entries.
    Done,
    /// Acknowledgments.
    Acks,
    /// Handoffs.
    Handoffs,
    /// Moments.
    Moments,
}

impl Collection {
    /// Every collection, in a fixed order.
    pub const ALL: [Collection; 9] = [
        Collection::People,
        Collection::Devices,
        Collection::CheckIns,
        Collection::Reflections,
        Collection::Ledger,
        Collection::Done,
        Collection::Acks,
        Collection::Handoffs,
        Collection::Moments,
    ];

    /// The key at the document root; also the record kind in events and errors.
    pub fn key(self) -> &'static str {
        match self {
            Collection::People => "people",
            Collection::Devices => "devices",
            Collection::CheckIns => "checkins",
            Collection::Reflections => "reflections",
            Collection::Ledger => "ledger",
            Collection::Done => "done",
            Collection::Acks => "acks",
            Collection::Handoffs => "handoffs",
            Collection::Moments => "moments",
        }
    }
}

/// A record type stored in one collection.
pub trait Record: Serialize + DeserializeOwned {
    /// Where records of this type live.
    const COLLECTION: Collection;
    /// Its key in the collection map.
    fn key(&self) -> String;
    /// For records that are never edited after they are written: the local date and the
    /// person, which queries filter on. Such a record is stored as one compact value
    /// instead of a map of fields (see [`COMPACT_TAG`]).
    fn compact_header(&self) -> Option<(String, PersonId)> {
        None
    }
    /// The name of the person field that a compact header carries.
    const PERSON_FIELD: &'static str = "";
}

/// The first characters of a record stored as one value: `h1`, then the local date,
/// the person and the record's JSON, separated by the ASCII unit separator.
///
/// **Why:** Automerge's load cost grows with the number of operations, and a check-in
/// written field by field costs a dozen of them. Check-ins, reflections, done entries,
/// acknowledgments and moments are never edited, so nothing merges inside them; one
/// value each cuts a ten-year document's operations several times over. The date and
/// person in front let queries filter without parsing the JSON.
pub const COMPACT_TAG: &str = "h1\u{1f}";
pub(crate) const SEP: char = '\u{1f}';

/// The first characters of the answers a check-in's author kept to themselves (see
/// [`crate::model::OwnAnswer`]): `o1`, then the JSON of [`OwnParts`]. The value lives in
/// the author's private document, in the `checkins` collection, under [`own_key`].
///
/// **Why a separate value:** the household document syncs to the partner's devices, so
/// what the author keeps must never be written there, not even sealed. The private
/// document syncs only to the author's own devices, which put the two back together.
pub const OWN_TAG: &str = "o1\u{1f}";

/// The key of a check-in's kept answers in the private document. It starts with a letter
/// that is not a hex digit, so an id prefix never matches it.
pub fn own_key(id: Uuid) -> String {
    format!("own:{id}")
}

macro_rules! uuid_record {
    ($ty:ty, $coll:expr) => {
        impl Record for $ty {
            const COLLECTION: Collection = $coll;
            fn key(&self) -> String {
                self.id.to_string()
            }
        }
    };
}

macro_rules! compact_record {
    ($ty:ty, $coll:expr, $person:ident) => {
        impl Record for $ty {
            const COLLECTION: Collection = $coll;
            fn key(&self) -> String {
                self.id.to_string()
            }
            fn compact_header(&self) -> Option<(String, PersonId)> {
                Some((self.when.date.to_string(), self.$person))
            }
            const PERSON_FIELD: &'static str = stringify!($person);
        }
    };
}

uuid_record!(Person, Collection::People);
uuid_record!(LedgerItem, Collection::Ledger);
uuid_record!(Handoff, Collection::Handoffs);
compact_record!(CheckIn, Collection::CheckIns, author);
compact_record!(Reflection, Collection::Reflections, author);
compact_record!(DoneEntry, Collection::Done, by);
compact_record!(Acknowledgment, Collection::Acks, from);
compact_record!(Moment, Collection::Moments, started_by);

impl Record for Device {
    const COLLECTION: Collection = Collection::Devices;
    fn key(&self) -> String {
        self.id.clone()
    }
}

/// Fields written as collaborative text rather than as last-writer-wins strings.
const TEXT_FIELDS: &[&str] = &["title", "good_enough"];

/// A person's pause (a [`Pause`] as JSON text), beside the person's record.
pub(crate) const SHARING_PAUSE: &str = "sharing_pause";
/// When a person ended sharing (`hearth leave`), beside the person's record.
pub(crate) const SHARING_LEFT_AT: &str = "sharing_left_at";
/// Fields that sit in a record's map but belong to sharing rather than to the record.
///
/// **Why beside the record:** the pause and the leaving must travel in the household
/// document (the partner learns of them by sync), and a new collection would change the
/// genesis change every replica shares. They are written only by [`Docs::set_pause`] and
/// [`Docs::set_left`]; a rewrite of the record with [`Doc::put`] leaves them alone, and a
/// record's own type never sees them. Each is one value, so a pause and a resume made at
/// once on two devices settle as one or the other, never as a mix.
const SIDE_FIELDS: &[&str] = &[SHARING_PAUSE, SHARING_LEFT_AT];

/// Which document this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DocKind {
    /// Shared by every device on the roster.
    Household,
    /// Shared only by one person's devices.
    Private(PersonId),
}

impl DocKind {
    /// The document id used on the wire and on disk.
    pub fn doc_id(&self) -> String {
        match self {
            DocKind::Household => "household".to_string(),
            DocKind::Private(person) => format!("private-{person}"),
        }
    }

    /// Parses a document id.
    pub fn from_doc_id(id: &str) -> Option<DocKind> {
        if id == "household" {
            return Some(DocKind::Household);
        }
        id.strip_prefix("private-")
            .and_then(|p| Uuid::parse_str(p).ok())
            .map(DocKind::Private)
    }
}

/// One Automerge document with Hearth's layout.
#[derive(Debug, Clone)]
pub struct Doc {
    am: Automerge,
    kind: DocKind,
    /// Signed heads kept beside the document (see [`crate::provenance`]).
    proofs: ProofBook,
    /// Received changes not applied until their author is proven.
    held: Vec<automerge::Change>,
    /// Received changes refused for breaking the authorship rules, so that what builds
    /// on them is refused too.
    refused: BTreeSet<ChangeHash>,
}

impl Doc {
    fn wrap(kind: DocKind, am: Automerge) -> Doc {
        Doc {
            am,
            kind,
            proofs: ProofBook::default(),
            held: Vec::new(),
            refused: BTreeSet::new(),
        }
    }

    /// A fresh document holding only the genesis change, writing as `actor` from here on.
    pub fn new(kind: DocKind, actor: ActorId) -> Doc {
        let mut am = genesis(kind);
        am.set_actor(actor);
        Doc::wrap(kind, am)
    }

    /// Wraps a loaded Automerge document, adding the genesis change if it lacks one.
    pub fn from_automerge(kind: DocKind, mut am: Automerge, actor: ActorId) -> Doc {
        let mut base = genesis(kind);
        // Merging the genesis is a no-op when it is already there (same hash).
        let _ = am.merge(&mut base);
        am.set_actor(actor);
        Doc::wrap(kind, am)
    }

    /// Loads a document from saved bytes.
    pub fn load(kind: DocKind, bytes: &[u8], actor: ActorId) -> Result<Doc, DocError> {
        let am = Automerge::load(bytes).map_err(|e| DocError::Corrupt(e.to_string()))?;
        Ok(Doc::from_automerge(kind, am, actor))
    }

    /// Which document this is.
    pub fn kind(&self) -> DocKind {
        self.kind
    }

    /// The underlying Automerge document, for sync and storage.
    pub fn automerge(&self) -> &Automerge {
        &self.am
    }

    /// Mutable access for sync, which applies remote changes.
    pub fn automerge_mut(&mut self) -> &mut Automerge {
        &mut self.am
    }

    /// Current heads.
    pub fn heads(&self) -> Vec<ChangeHash> {
        self.am.get_heads()
    }

    /// The schema version recorded in the document.
    pub fn schema(&self) -> u64 {
        match self.am.get(automerge::ROOT, "schema") {
            Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
                ScalarValue::Uint(v) => *v,
                ScalarValue::Int(v) => u64::try_from(*v).unwrap_or(0),
                _ => 0,
            },
            _ => 0,
        }
    }

    fn collection(&self, coll: Collection) -> Result<ObjId, DocError> {
        collection_id(&self.am, coll)
    }

    /// Writes a record, creating it or updating only the fields that changed.
    pub fn put<R: Record>(&mut self, record: &R, now: Millis) -> Result<(), DocError> {
        let value = serde_json::to_value(record).map_err(|e| DocError::Decode {
            kind: R::COLLECTION.key(),
            reason: crate::json_error_kind(&e),
        })?;
        let Json::Object(fields) = value else {
            return Err(DocError::Decode {
                kind: R::COLLECTION.key(),
                reason: "a record must be a JSON object",
            });
        };
        let coll = self.collection(R::COLLECTION)?;
        let key = record.key();
        if let Some((date, person)) = record.compact_header() {
            let json = compact_body::<R>(fields)?;
            let value = format!("{COMPACT_TAG}{date}{SEP}{person}{SEP}{json}");
            let unchanged = matches!(
                self.am.get(&coll, key.as_str())?,
                Some((Value::Scalar(old), _)) if matches!(old.as_ref(), ScalarValue::Str(s) if s.as_str() == value)
            );
            if unchanged {
                return Ok(());
            }
            self.am
                .transact_with(
                    |_| CommitOptions::default().with_time(now / 1000),
                    |tx| tx.put(&coll, key.as_str(), value.as_str()),
                )
                .map_err(|f| DocError::Automerge(f.error))?;
            return Ok(());
        }
        self.am
            .transact_with(
                |_| CommitOptions::default().with_time(now / 1000),
                |tx| -> Result<(), automerge::AutomergeError> {
                    let obj = match tx.get(&coll, key.as_str())? {
                        Some((Value::Object(ObjType::Map), id)) => id,
                        _ => tx.put_object(&coll, key.as_str(), ObjType::Map)?,
                    };
                    write_map(tx, &obj, &fields, true)
                },
            )
            .map_err(|f| DocError::Automerge(f.error))?;
        Ok(())
    }

    /// Reads one record by its exact key.
    pub fn get<R: Record>(&self, key: &str) -> Result<Option<R>, DocError> {
        let coll = self.collection(R::COLLECTION)?;
        match self.am.get(&coll, key)? {
            Some((Value::Object(ObjType::Map), obj)) => decode::<R>(&self.am, &obj).map(Some),
            Some((Value::Scalar(s), _)) => match s.as_ref() {
                // A sealed answer reads as absent until its key is published.
                ScalarValue::Str(text) if text.starts_with(SEALED_TAG) => {
                    reveal::open_published::<R>(key, text)
                }
                ScalarValue::Str(text) => decode_compact::<R>(key, text).map(Some),
                _ => Ok(None),
            },
            _ => Ok(None),
        }
    }

    /// Whether a record with this exact key exists.
    pub fn contains(&self, coll: Collection, key: &str) -> bool {
        self.collection(coll)
            .ok()
            .and_then(|c| self.am.get(&c, key).ok().flatten())
            .is_some()
    }

    /// Number of records in a collection.
    pub fn count(&self, coll: Collection) -> usize {
        self.collection(coll)
            .map(|c| self.am.length(&c))
            .unwrap_or(0)
    }

    /// Every record of a type. Records that cannot be decoded (for example from a newer
    /// schema) are skipped with a warning rather than failing the whole read.
    pub fn all<R: Record>(&self) -> Vec<R> {
        self.filter::<R>(|_| true)
    }

    /// Records whose scalar fields pass `keep`, building only those.
    pub fn filter<R: Record>(&self, keep: impl Fn(&Fields<'_>) -> bool) -> Vec<R> {
        let Ok(coll) = self.collection(R::COLLECTION) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in self.am.map_range(&coll, ..) {
            let decoded = match &item.value {
                automerge::ValueRef::Object(ObjType::Map) => {
                    let obj = item.id();
                    let fields = Fields::Map {
                        am: &self.am,
                        obj: &obj,
                    };
                    if !keep(&fields) {
                        continue;
                    }
                    decode::<R>(&self.am, &obj)
                }
                automerge::ValueRef::Scalar(scalar) => {
                    let Some(text) = scalar_str(scalar) else {
                        continue;
                    };
                    if let Some(sealed) = reveal::split_sealed(text) {
                        // Sealed answers are left out until their key is published;
                        // `Docs::sealed` lists them without their contents.
                        if sealed.key.is_none()
                            || !keep(&Fields::Compact {
                                date: sealed.date,
                                person: sealed.person,
                            })
                        {
                            continue;
                        }
                        match reveal::open_published::<R>(&item.key, text) {
                            Ok(Some(record)) => Ok(record),
                            Ok(None) => continue,
                            Err(e) => Err(e),
                        }
                    } else {
                        let Some((date, person, _)) = split_compact(text) else {
                            continue;
                        };
                        if !keep(&Fields::Compact { date, person }) {
                            continue;
                        }
                        decode_compact::<R>(&item.key, text)
                    }
                }
                _ => continue,
            };
            match decoded {
                Ok(record) => out.push(record),
                Err(e) => {
                    tracing::warn!(kind = R::COLLECTION.key(), error = %e, "skipping a record that could not be read")
                }
            }
        }
        out
    }

    /// Every concurrent value of one string field of a map-stored record. Automerge
    /// keeps them all after concurrent writes; an ordinary read shows only one.
    pub fn field_conflicts(&self, coll: Collection, key: &str, field: &str) -> Vec<String> {
        let Ok(coll) = self.collection(coll) else {
            return Vec::new();
        };
        let Ok(Some((Value::Object(ObjType::Map), obj))) = self.am.get(&coll, key) else {
            return Vec::new();
        };
        self.am
            .get_all(&obj, field)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(value, _)| match value {
                Value::Scalar(s) => match s.as_ref() {
                    ScalarValue::Str(s) => Some(s.to_string()),
                    _ => None,
                },
                Value::Object(_) => None,
            })
            .collect()
    }

    /// Keys in a collection that start with `prefix`.
    pub fn keys_with_prefix(&self, coll: Collection, prefix: &str) -> Vec<String> {
        let Ok(obj) = self.collection(coll) else {
            return Vec::new();
        };
        let prefix = prefix.to_ascii_lowercase();
        self.am
            .keys(&obj)
            .filter(|k| k.to_ascii_lowercase().starts_with(&prefix))
            .collect()
    }
}

/// Reads scalar fields of one record in place, for filtering without building it.
///
/// A record stored compactly (see [`COMPACT_TAG`]) answers only `date`, and its person
/// under whichever name the record uses (`author`, `by`, `from`, `started_by`).
pub enum Fields<'a> {
    /// A record stored as a map of fields.
    Map {
        /// The document.
        am: &'a Automerge,
        /// The record's map.
        obj: &'a ObjId,
    },
    /// A record stored as one value.
    Compact {
        /// The local date, `YYYY-MM-DD`.
        date: &'a str,
        /// The person, as a UUID string.
        person: &'a str,
    },
}

impl Fields<'_> {
    /// A string field, if present.
    pub fn str(&self, field: &str) -> Option<String> {
        match self {
            Fields::Compact { date, person } => match field {
                "date" => Some((*date).to_string()),
                "author" | "by" | "from" | "started_by" => Some((*person).to_string()),
                _ => None,
            },
            Fields::Map { am, obj } => match am.get(*obj, field).ok().flatten() {
                Some((Value::Scalar(s), _)) => match s.as_ref() {
                    ScalarValue::Str(s) => Some(s.to_string()),
                    _ => None,
                },
                Some((Value::Object(ObjType::Text), id)) => am.text(&id).ok(),
                _ => None,
            },
        }
    }

    /// An integer field, if present (map-stored records only).
    pub fn int(&self, field: &str) -> Option<i64> {
        let Fields::Map { am, obj } = self else {
            return None;
        };
        match am.get(*obj, field).ok().flatten() {
            Some((Value::Scalar(s), _)) => match s.as_ref() {
                ScalarValue::Int(v) => Some(*v),
                ScalarValue::Uint(v) => i64::try_from(*v).ok(),
                _ => None,
            },
            _ => None,
        }
    }
}

fn scalar_str<'a>(scalar: &'a automerge::ScalarValueRef<'a>) -> Option<&'a str> {
    match scalar {
        automerge::ScalarValueRef::Str(s) => Some(s.as_ref()),
        _ => None,
    }
}

/// Splits a compact record into date, person and JSON.
pub(crate) fn split_compact(text: &str) -> Option<(&str, &str, &str)> {
    let rest = text.strip_prefix(COMPACT_TAG)?;
    let mut parts = rest.splitn(3, SEP);
    Some((parts.next()?, parts.next()?, parts.next()?))
}

/// The JSON a compact record stores: its fields without the id, date and person.
///
/// The key, the header and the JSON would otherwise all carry the id, date and person;
/// on disk and at load every byte counts tens of thousands of times.
fn compact_body<R: Record>(mut fields: JsonMap<String, Json>) -> Result<String, DocError> {
    for redundant in ["id", "date", R::PERSON_FIELD] {
        fields.remove(redundant);
    }
    serde_json::to_string(&fields).map_err(|e| DocError::Decode {
        kind: R::COLLECTION.key(),
        reason: crate::json_error_kind(&e),
    })
}

fn decode_compact<R: Record>(key: &str, text: &str) -> Result<R, DocError> {
    let (date, person, json) = split_compact(text).ok_or_else(|| DocError::Decode {
        kind: R::COLLECTION.key(),
        reason: "not a record value",
    })?;
    decode_parts::<R>(key, date, person, json)
}

/// Rebuilds a record from its key, the date and person of its header, and its JSON.
fn decode_parts<R: Record>(key: &str, date: &str, person: &str, json: &str) -> Result<R, DocError> {
    let bad = |e: serde_json::Error| DocError::Decode {
        kind: R::COLLECTION.key(),
        reason: crate::json_error_kind(&e),
    };
    let mut fields: JsonMap<String, Json> = serde_json::from_str(json).map_err(bad)?;
    fields.insert("id".into(), Json::String(key.to_string()));
    fields.insert("date".into(), Json::String(date.to_string()));
    fields.insert(R::PERSON_FIELD.into(), Json::String(person.to_string()));
    serde_json::from_value(Json::Object(fields)).map_err(bad)
}

fn collection_id(am: &Automerge, coll: Collection) -> Result<ObjId, DocError> {
    match am.get(automerge::ROOT, coll.key()) {
        Ok(Some((Value::Object(ObjType::Map), id))) => Ok(id),
        _ => Err(DocError::MissingCollection(coll.key())),
    }
}

/// The fixed actor of a document's genesis change. Its first op writes `schema`; the
/// next ones make the collections, in the order of [`Collection::ALL`].
pub(crate) fn genesis_actor(kind: DocKind) -> ActorId {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("hearth-genesis:{}", kind.doc_id()).as_bytes(),
    );
    ActorId::from(&digest.as_ref()[..16])
}

/// The deterministic first change every replica of a document shares.
fn genesis(kind: DocKind) -> Automerge {
    let mut am = Automerge::new().with_actor(genesis_actor(kind));
    let result = am.transact_with(
        |_| CommitOptions::default().with_time(0),
        |tx| -> Result<(), automerge::AutomergeError> {
            tx.put(automerge::ROOT, "schema", SCHEMA_VERSION)?;
            for coll in Collection::ALL {
                tx.put_object(automerge::ROOT, coll.key(), ObjType::Map)?;
            }
            Ok(())
        },
    );
    // Writing fixed keys into an empty document cannot fail; if it ever did, the
    // document would report MissingCollection on first use rather than panic here.
    if let Err(f) = result {
        tracing::error!(error = %f.error, "could not create the genesis change");
    }
    am
}

fn decode<R: Record>(am: &Automerge, obj: &ObjId) -> Result<R, DocError> {
    let json = read_map(am, obj);
    serde_json::from_value(json).map_err(|e| DocError::Decode {
        kind: R::COLLECTION.key(),
        reason: crate::json_error_kind(&e),
    })
}

fn read_value(am: &Automerge, value: Value<'_>, id: ObjId) -> Json {
    match value {
        Value::Object(ObjType::Map) | Value::Object(ObjType::Table) => read_map(am, &id),
        Value::Object(ObjType::List) => Json::Array(
            am.list_range(&id, ..)
                .map(|item| read_value(am, item.value.clone().into_value(), item.id()))
                .collect(),
        ),
        Value::Object(ObjType::Text) => Json::String(am.text(&id).unwrap_or_default()),
        Value::Scalar(s) => scalar_to_json(s.as_ref()),
    }
}

fn read_map(am: &Automerge, obj: &ObjId) -> Json {
    let mut map = JsonMap::new();
    for item in am.map_range(obj, ..) {
        let v = read_value(am, item.value.clone().into_value(), item.id());
        map.insert(item.key.to_string(), v);
    }
    Json::Object(map)
}

fn scalar_to_json(s: &ScalarValue) -> Json {
    match s {
        ScalarValue::Str(s) => Json::String(s.to_string()),
        ScalarValue::Int(i) | ScalarValue::Timestamp(i) => Json::Number((*i).into()),
        ScalarValue::Uint(u) => Json::Number((*u).into()),
        ScalarValue::Counter(c) => Json::Number(i64::from(c).into()),
        ScalarValue::F64(f) => Number::from_f64(*f).map_or(Json::Null, Json::Number),
        ScalarValue::Boolean(b) => Json::Bool(*b),
        ScalarValue::Bytes(_) | ScalarValue::Unknown { .. } | ScalarValue::Null => Json::Null,
    }
}

fn json_to_scalar(v: &Json) -> Option<ScalarValue> {
    match v {
        Json::Bool(b) => Some(ScalarValue::Boolean(*b)),
        Json::Number(n) => n
            .as_i64()
            .map(ScalarValue::Int)
            .or_else(|| n.as_u64().map(ScalarValue::Uint))
            .or_else(|| n.as_f64().map(ScalarValue::F64)),
        Json::String(s) => Some(ScalarValue::Str(s.as_str().into())),
        Json::Null | Json::Array(_) | Json::Object(_) => None,
    }
}

/// Writes `fields` into the map `obj`, touching only what differs. At the top level of a
/// record, the fields in [`TEXT_FIELDS`] become collaborative text.
fn write_map<T: Transactable + ReadDoc>(
    tx: &mut T,
    obj: &ObjId,
    fields: &JsonMap<String, Json>,
    record_level: bool,
) -> Result<(), automerge::AutomergeError> {
    let stale: Vec<String> = tx
        .keys(obj)
        .filter(|k| fields.get(k).is_none_or(Json::is_null))
        .filter(|k| !(record_level && SIDE_FIELDS.contains(&k.as_str())))
        .collect();
    for key in stale {
        tx.delete(obj, key.as_str())?;
    }
    for (key, value) in fields {
        let key = key.as_str();
        let current = tx.get(obj, key)?;
        match value {
            Json::Null => {}
            Json::Object(inner) => {
                let child = match current {
                    Some((Value::Object(ObjType::Map), id)) => id,
                    _ => tx.put_object(obj, key, ObjType::Map)?,
                };
                write_map(tx, &child, inner, false)?;
            }
            Json::Array(items) => {
                let same = match &current {
                    Some((v, id)) => {
                        let doc_value = read_list_in_tx(tx, v, id);
                        doc_value.as_ref() == Some(value)
                    }
                    None => false,
                };
                if !same {
                    let list = tx.put_object(obj, key, ObjType::List)?;
                    for (i, item) in items.iter().enumerate() {
                        if let Some(s) = json_to_scalar(item) {
                            tx.insert(&list, i, s)?;
                        }
                    }
                }
            }
            Json::String(text) if record_level && TEXT_FIELDS.contains(&key) => match current {
                Some((Value::Object(ObjType::Text), id)) => tx.update_text(&id, text)?,
                _ => {
                    let id = tx.put_object(obj, key, ObjType::Text)?;
                    tx.splice_text(&id, 0, 0, text)?;
                }
            },
            scalar => {
                let Some(new) = json_to_scalar(scalar) else {
                    continue;
                };
                let unchanged =
                    matches!(&current, Some((Value::Scalar(old), _)) if old.as_ref() == &new);
                if !unchanged {
                    tx.put(obj, key, new)?;
                }
            }
        }
    }
    Ok(())
}

/// Lists in records hold only scalars (sets of keys), so comparing them is cheap.
fn read_list_in_tx<T: ReadDoc>(tx: &T, value: &Value<'_>, id: &ObjId) -> Option<Json> {
    match value {
        Value::Object(ObjType::List) => Some(Json::Array(
            tx.list_range(id, ..)
                .map(|item| match item.value.into_value() {
                    Value::Scalar(s) => scalar_to_json(s.as_ref()),
                    Value::Object(_) => Json::Null,
                })
                .collect(),
        )),
        _ => None,
    }
}

/// What `hearth ledger edit` changes; fields left `None` stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemEdit {
    /// A new title.
    pub title: Option<String>,
    /// Who should hold which stage.
    pub owners: Vec<(Stage, PersonId)>,
    /// A new cadence.
    pub cadence: Option<crate::model::Cadence>,
    /// A new weight, 1–3.
    pub weight: Option<u8>,
    /// New rough minutes per week.
    pub minutes_per_week: Option<u32>,
    /// A new "good enough" standard.
    pub good_enough: Option<String>,
}

/// The pair of documents one device holds, with the typed API the daemon calls.
#[derive(Debug, Clone)]
pub struct Docs {
    /// The household document.
    pub household: Doc,
    /// This device's person's private document.
    pub private: Doc,
    /// Whose device this is.
    pub me: PersonId,
    /// How this device judges the roster.
    pub roster: RosterView,
}

/// The roster as this device verified it (see [`crate::roster`]). Until a device key
/// is set, nothing is verified and the roster reads as written: only tests and tools
/// that build documents by hand see that.
#[derive(Debug, Clone, Default)]
pub struct RosterView {
    key: Option<[u8; 32]>,
    verified: Option<roster::Verified>,
    /// What the last verification was made from: most household writes leave the
    /// roster alone, and checking signatures again for them would slow every write.
    made_from: Option<RosterInputs>,
}

/// What one verification was made from: the household's entries, the kept copies and
/// the distrusted devices.
type RosterInputs = (Vec<Device>, Vec<Device>, Vec<(String, Millis)>);

/// The root key prefix, in a person's private document, of a partner's device that
/// this person's devices no longer trust (`hearth devices remove` of a partner's
/// device). One scalar per device, so concurrent removals on two devices never
/// conflict.
const DISTRUST_PREFIX: &str = "distrust:";
/// The root key prefix, in a person's private document, of the copy of a roster entry
/// this person's devices verified. A partner can overwrite fields of an entry in the
/// household document, which breaks its signatures; the kept copy still verifies, so
/// that cannot make this person's devices drop each other.
const KEPT_PREFIX: &str = "roster:";

/// A record resolved from a short id prefix.
pub type ResolvedId = Uuid;

impl Docs {
    /// Fresh documents for a new household founded by `me`.
    pub fn new(me: PersonId, actor: ActorId) -> Docs {
        Docs {
            household: Doc::new(DocKind::Household, actor.clone()),
            private: Doc::new(DocKind::Private(me), actor),
            me,
            roster: RosterView::default(),
        }
    }

    /// Both documents of `me`, as loaded.
    pub fn from_parts(household: Doc, private: Doc, me: PersonId) -> Docs {
        Docs {
            household,
            private,
            me,
            roster: RosterView::default(),
        }
    }

    /// Sets this device's public key and verifies the roster from it. From then on
    /// [`Docs::devices`] and [`Docs::people`] give only what the signatures hold up.
    pub fn set_device_key(&mut self, key: [u8; 32]) {
        self.roster.key = Some(key);
        self.roster.made_from = None;
        self.refresh_roster();
    }

    /// Verifies the roster again; call after the household document changed.
    pub fn refresh_roster(&mut self) {
        let Some(key) = self.roster.key else {
            return;
        };
        let inputs = (
            self.roster_entries(),
            self.kept_entries(),
            self.distrusted(),
        );
        if self.roster.made_from.as_ref() == Some(&inputs) {
            return;
        }
        let entries: Vec<Device> = inputs.0.iter().chain(&inputs.1).cloned().collect();
        let mut verified = roster::verify(&entries, &key, self.me);
        // This person's own word about the partner's devices: removed for us.
        for (device, at) in inputs.2.iter().cloned() {
            if let Some(entry) = verified
                .devices
                .iter_mut()
                .find(|d| d.id == device && d.person != self.me)
            {
                entry.revoked_at = Some(entry.revoked_at.map_or(at, |r| r.min(at)));
            }
        }
        self.roster.verified = Some(verified);
        self.roster.made_from = Some(inputs);
    }

    /// The roster as verified, once a device key is set.
    pub fn verified_roster(&self) -> Option<&roster::Verified> {
        self.roster.verified.as_ref()
    }

    /// Every device entry as written in the household document, trusted or not.
    pub fn roster_entries(&self) -> Vec<Device> {
        self.household.all()
    }

    /// The copies of roster entries this person's devices kept.
    fn kept_entries(&self) -> Vec<Device> {
        let am = &self.private.am;
        am.keys(automerge::ROOT)
            .filter(|key| key.starts_with(KEPT_PREFIX))
            .filter_map(|key| match am.get(automerge::ROOT, key.as_str()).ok()?? {
                (Value::Scalar(v), _) => match v.as_ref() {
                    ScalarValue::Str(json) => serde_json::from_str(json).ok(),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    /// Keeps a copy, in the private document, of every trusted entry whose household
    /// version verifies and differs from the copy kept so far. Returns whether anything
    /// was written.
    pub fn keep_verified_entries(&mut self, now: Millis) -> Result<bool, DocError> {
        // The entries the last verification read, not read again.
        let (Some(verified), Some((household, kept, _))) =
            (&self.roster.verified, &self.roster.made_from)
        else {
            return Ok(false);
        };
        let mut copies = Vec::new();
        for device in &verified.devices {
            let Some(written) = household.iter().find(|d| d.id == device.id) else {
                continue;
            };
            // Only a household version that is itself the verified one is kept.
            let same = |a: &Device, b: &Device| {
                a.public_key == b.public_key
                    && a.person == b.person
                    && a.admission == b.admission
                    && a.self_sig == b.self_sig
                    && a.age_recipient == b.age_recipient
            };
            if !same(written, device) || !roster::self_signature_holds(written) {
                continue;
            }
            let mut copy = written.clone();
            copy.revoked_at = None;
            if kept.contains(&copy) {
                continue;
            }
            let json = serde_json::to_string(&copy).map_err(|e| DocError::Decode {
                kind: Collection::Devices.key(),
                reason: crate::json_error_kind(&e),
            })?;
            copies.push((format!("{KEPT_PREFIX}{}", copy.id), json));
        }
        if copies.is_empty() {
            return Ok(false);
        }
        self.private
            .am
            .transact_with(
                |_| CommitOptions::default().with_time(now / 1000),
                |tx| -> Result<(), automerge::AutomergeError> {
                    for (key, json) in &copies {
                        tx.put(automerge::ROOT, key.as_str(), json.as_str())?;
                    }
                    Ok(())
                },
            )
            .map_err(|f| DocError::Automerge(f.error))?;
        self.refresh_roster();
        Ok(true)
    }

    /// Records that this person's devices stop trusting a partner's device.
    pub fn distrust(&mut self, device: &str, now: Millis) -> Result<(), DocError> {
        let key = format!("{DISTRUST_PREFIX}{device}");
        self.private
            .am
            .transact_with(
                |_| CommitOptions::default().with_time(now / 1000),
                |tx| tx.put(automerge::ROOT, key.as_str(), now),
            )
            .map_err(|f| DocError::Automerge(f.error))?;
        self.refresh_roster();
        Ok(())
    }

    /// The partner's devices this person no longer trusts, with when.
    pub fn distrusted(&self) -> Vec<(String, Millis)> {
        let am = &self.private.am;
        am.keys(automerge::ROOT)
            .filter_map(|key| {
                let device = key.strip_prefix(DISTRUST_PREFIX)?.to_string();
                let at = match am.get(automerge::ROOT, key.as_str()).ok()?? {
                    (Value::Scalar(v), _) => match v.as_ref() {
                        ScalarValue::Int(at) => *at,
                        _ => return None,
                    },
                    _ => return None,
                };
                Some((device, at))
            })
            .collect()
    }

    /// The document with this id, if this device holds it.
    pub fn by_id_mut(&mut self, doc_id: &str) -> Option<&mut Doc> {
        if doc_id == self.household.kind.doc_id() {
            Some(&mut self.household)
        } else if doc_id == self.private.kind.doc_id() {
            Some(&mut self.private)
        } else {
            None
        }
    }

    fn doc_for(&mut self, visibility: Visibility) -> Result<&mut Doc, DocError> {
        match visibility {
            Visibility::Private => Ok(&mut self.private),
            Visibility::Shared => Ok(&mut self.household),
            // The one-time key has to come from the caller: see `Docs::add_sealed`.
            Visibility::RevealTogether => Err(ValidationError::Invalid {
                field: "visibility",
                reason: "a reveal-together answer is sealed with a one-time key; write it with `Docs::add_sealed`".into(),
            }
            .into()),
        }
    }

    /// Resolves a full id or a short prefix to one record, as git does with hashes.
    pub fn resolve(&self, coll: Collection, prefix: &str) -> Result<ResolvedId, DocError> {
        let kind = coll.key();
        let prefix = prefix.trim();
        if prefix.is_empty() {
            return Err(DocError::NotFound {
                kind,
                prefix: prefix.into(),
            });
        }
        let mut keys: BTreeSet<String> = self
            .household
            .keys_with_prefix(coll, prefix)
            .into_iter()
            .collect();
        if matches!(coll, Collection::CheckIns | Collection::Reflections) {
            keys.extend(self.private.keys_with_prefix(coll, prefix));
        }
        let mut iter = keys.iter();
        match (iter.next(), iter.next()) {
            (None, _) => Err(DocError::NotFound {
                kind,
                prefix: prefix.into(),
            }),
            (Some(one), None) => Uuid::parse_str(one).map_err(|_| DocError::NotFound {
                kind,
                prefix: prefix.into(),
            }),
            (Some(_), Some(_)) => Err(DocError::Ambiguous {
                kind,
                prefix: prefix.into(),
                count: keys.len(),
            }),
        }
    }

    /// Adds a person to the household.
    pub fn add_person(&mut self, person: &Person, now: Millis) -> Result<(), DocError> {
        person.validate()?;
        self.household.put(person, now)
    }

    /// Everyone in the household: once the roster is verified, only this person and
    /// the partner its signatures lead to, whatever other person records say.
    pub fn people(&self) -> Vec<Person> {
        let people: Vec<Person> = self.household.all();
        match &self.roster.verified {
            Some(verified) => {
                let known = verified.people(self.me);
                people
                    .into_iter()
                    .filter(|p| known.contains(&p.id))
                    .collect()
            }
            None => people,
        }
    }

    /// Adds or updates a device on the roster.
    pub fn put_device(&mut self, device: &Device, now: Millis) -> Result<(), DocError> {
        device.validate()?;
        if !self
            .household
            .contains(Collection::People, &device.person.to_string())
        {
            return Err(ValidationError::UnknownReference {
                field: "person",
                id: device.person.to_string(),
            }
            .into());
        }
        self.household.put(device, now)
    }

    /// The roster: once verified, only trusted entries, with removals as verified.
    pub fn devices(&self) -> Vec<Device> {
        match &self.roster.verified {
            Some(verified) => verified.devices.clone(),
            None => self.household.all(),
        }
    }

    /// The map of `person`'s record in the household document.
    fn person_obj(&self, person: PersonId) -> Option<ObjId> {
        let people = self.household.collection(Collection::People).ok()?;
        match self.household.am.get(&people, person.to_string()).ok()? {
            Some((Value::Object(ObjType::Map), id)) => Some(id),
            _ => None,
        }
    }

    fn side_field(&self, person: PersonId, field: &str) -> Option<ScalarValue> {
        let obj = self.person_obj(person)?;
        match self.household.am.get(&obj, field).ok()? {
            Some((Value::Scalar(s), _)) => Some(s.into_owned()),
            _ => None,
        }
    }

    fn put_side_field(
        &mut self,
        person: PersonId,
        field: &'static str,
        value: Option<ScalarValue>,
        now: Millis,
    ) -> Result<(), DocError> {
        let obj = self
            .person_obj(person)
            .ok_or_else(|| ValidationError::UnknownReference {
                field: "person",
                id: person.to_string(),
            })?;
        let current = self.side_field(person, field);
        if current == value {
            return Ok(());
        }
        self.household
            .am
            .transact_with(
                |_| CommitOptions::default().with_time(now / 1000),
                |tx| match value {
                    Some(v) => tx.put(&obj, field, v),
                    None => tx.delete(&obj, field),
                },
            )
            .map_err(|f| DocError::Automerge(f.error))?;
        Ok(())
    }

    /// `person`'s pause of sharing, if one is recorded (it may have ended by itself;
    /// see [`Pause::active_at`]).
    pub fn pause_of(&self, person: PersonId) -> Option<Pause> {
        match self.side_field(person, SHARING_PAUSE)? {
            ScalarValue::Str(text) => serde_json::from_str(text.as_str()).ok(),
            _ => None,
        }
    }

    /// Records `person`'s pause of sharing, or clears it with `None`.
    pub fn set_pause(
        &mut self,
        person: PersonId,
        pause: Option<&Pause>,
        now: Millis,
    ) -> Result<(), DocError> {
        let value = match pause {
            Some(pause) => {
                pause.validate()?;
                let text = serde_json::to_string(pause).map_err(|e| DocError::Decode {
                    kind: Collection::People.key(),
                    reason: crate::json_error_kind(&e),
                })?;
                Some(ScalarValue::Str(text.into()))
            }
            None => None,
        };
        self.put_side_field(person, SHARING_PAUSE, value, now)
    }

    /// When `person` ended sharing with `hearth leave`, if they did.
    pub fn left_at(&self, person: PersonId) -> Option<Millis> {
        match self.side_field(person, SHARING_LEFT_AT)? {
            ScalarValue::Int(v) => Some(v),
            ScalarValue::Uint(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Records that `person` ended sharing at `at`. Leaving is for good: an earlier
    /// record stays, and a pause ends with it.
    pub fn set_left(&mut self, person: PersonId, at: Millis, now: Millis) -> Result<(), DocError> {
        let at = self.left_at(person).map_or(at, |earlier| earlier.min(at));
        self.put_side_field(person, SHARING_LEFT_AT, Some(ScalarValue::Int(at)), now)?;
        self.set_pause(person, None, now)
    }

    fn require_person(&self, field: &'static str, person: PersonId) -> Result<(), DocError> {
        if self
            .household
            .contains(Collection::People, &person.to_string())
        {
            Ok(())
        } else {
            Err(ValidationError::UnknownReference {
                field,
                id: person.to_string(),
            }
            .into())
        }
    }

    /// Records a check-in in the document its visibility calls for. The answers listed
    /// in its `kept_to_self` go to this person's private document instead, and the
    /// household copy carries neither them nor the list.
    pub fn add_checkin(&mut self, checkin: &CheckIn, now: Millis) -> Result<(), DocError> {
        checkin.validate()?;
        self.require_person("author", checkin.author)?;
        let (shared, own) = checkin.split_own();
        if let Some(own) = own {
            // The kept answers go first: should the household write fail, what is left
            // is a private note for nothing, never an answer in the shared document.
            self.put_own(checkin.author, checkin.id, &own, now)?;
        }
        self.doc_for(shared.visibility)?.put(&shared, now)
    }

    /// Writes the answers the author keeps to themselves into their private document.
    fn put_own(
        &mut self,
        author: PersonId,
        id: Uuid,
        own: &OwnParts,
        now: Millis,
    ) -> Result<(), DocError> {
        if author != self.me || self.private.kind != DocKind::Private(author) {
            return Err(ValidationError::Invalid {
                field: "kept_to_self",
                reason: "only the author's own devices can keep answers to the author".into(),
            }
            .into());
        }
        let json = serde_json::to_string(own).map_err(|e| DocError::Decode {
            kind: "checkins",
            reason: crate::json_error_kind(&e),
        })?;
        self.private.put_text(
            Collection::CheckIns,
            &own_key(id),
            &format!("{OWN_TAG}{json}"),
            now,
        )
    }

    /// The check-in as its reader may see it: with the answers its author kept to
    /// themselves put back when this device is one of the author's.
    pub fn with_own(&self, mut checkin: CheckIn) -> CheckIn {
        if checkin.author != self.me
            || checkin.visibility == Visibility::Private
            || self.private.kind != DocKind::Private(checkin.author)
        {
            return checkin;
        }
        let Some(text) = self
            .private
            .text_at(Collection::CheckIns, &own_key(checkin.id))
        else {
            return checkin;
        };
        let Some(json) = text.strip_prefix(OWN_TAG) else {
            return checkin;
        };
        match serde_json::from_str::<OwnParts>(json) {
            Ok(own) => checkin.merge_own(own),
            // The parser's message can quote the value, which is an answer: log none of it.
            Err(_) => tracing::warn!("could not read the answers a check-in's author kept"),
        }
        checkin
    }

    /// Records a reflection in the document its visibility calls for.
    pub fn add_reflection(&mut self, reflection: &Reflection, now: Millis) -> Result<(), DocError> {
        reflection.validate()?;
        self.require_person("author", reflection.author)?;
        self.doc_for(reflection.visibility)?.put(reflection, now)
    }

    /// A person's check-ins whose local date falls in `from..=to`, from both documents,
    /// oldest first.
    pub fn checkins_between(
        &self,
        person: PersonId,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Vec<CheckIn> {
        let author = person.to_string();
        let (from_date, to_date) = (from, to);
        let (from, to) = (from.to_string(), to.to_string());
        let keep = |f: &Fields<'_>| {
            f.str("author").as_deref() == Some(author.as_str())
                && f.str("date").is_some_and(|d| d >= from && d <= to)
        };
        let mut out = self.household.filter::<CheckIn>(keep);
        if self.private.kind == DocKind::Private(person) {
            out.extend(self.private.filter::<CheckIn>(keep));
            out.extend(
                self.own_sealed::<CheckIn>()
                    .into_iter()
                    .filter(|c| c.when.date >= from_date && c.when.date <= to_date),
            );
        }
        let mut out: Vec<CheckIn> = out.into_iter().map(|c| self.with_own(c)).collect();
        out.sort_by_key(|c| (c.when.at, c.id));
        out
    }

    /// Every check-in this device can read: shared, revealed, its person's private
    /// ones, and its person's own answers still sealed for the partner.
    pub fn checkins(&self) -> Vec<CheckIn> {
        let mut out = self.household.all::<CheckIn>();
        out.extend(self.private.all::<CheckIn>());
        out.extend(self.own_sealed::<CheckIn>());
        let mut out: Vec<CheckIn> = out.into_iter().map(|c| self.with_own(c)).collect();
        out.sort_by_key(|c| (c.when.at, c.id));
        out
    }

    /// Every reflection this device can read, as [`Docs::checkins`] does.
    pub fn reflections(&self) -> Vec<Reflection> {
        let mut out = self.household.all::<Reflection>();
        out.extend(self.private.all::<Reflection>());
        out.extend(self.own_sealed::<Reflection>());
        out.sort_by_key(|r| (r.when.at, r.id));
        out
    }

    /// Adds a ledger item.
    pub fn add_ledger_item(&mut self, item: &LedgerItem, now: Millis) -> Result<(), DocError> {
        item.validate()?;
        self.require_person("created by", item.created_by)?;
        self.household.put(item, now)
    }

    /// One ledger item.
    pub fn ledger_item(&self, id: Uuid) -> Result<LedgerItem, DocError> {
        self.household
            .get::<LedgerItem>(&id.to_string())?
            .ok_or(DocError::NotFound {
                kind: "ledger",
                prefix: id.to_string(),
            })
    }

    /// Every ledger item.
    pub fn ledger_items(&self) -> Vec<LedgerItem> {
        self.household.all()
    }

    /// Changes a ledger item and writes back only the fields that changed.
    pub fn update_ledger_item(
        &mut self,
        id: Uuid,
        now: Millis,
        change: impl FnOnce(&mut LedgerItem),
    ) -> Result<LedgerItem, DocError> {
        let mut item = self.ledger_item(id)?;
        change(&mut item);
        item.validate()?;
        self.household.put(&item, now)?;
        Ok(item)
    }

    /// Pauses an item, "do less for now": a paused item carries no load in the
    /// balance, and comes back with [`Docs::resume_ledger_item`].
    pub fn pause_ledger_item(
        &mut self,
        id: Uuid,
        until: Option<chrono::NaiveDate>,
        now: Millis,
    ) -> Result<LedgerItem, DocError> {
        let item = self.ledger_item(id)?;
        if item.status == ItemStatus::Retired {
            return Err(ValidationError::Invalid {
                field: "item",
                reason: "this item is retired, so there is nothing to pause".into(),
            }
            .into());
        }
        self.update_ledger_item(id, now, |item| {
            item.status = ItemStatus::Paused;
            item.paused_until = until;
        })
    }

    /// Brings a paused or retired item back as active.
    pub fn resume_ledger_item(&mut self, id: Uuid, now: Millis) -> Result<LedgerItem, DocError> {
        self.update_ledger_item(id, now, |item| {
            item.status = ItemStatus::Active;
            item.paused_until = None;
        })
    }

    /// Edits an item. Stages put on someone other than `by` are offered to them as open
    /// handoffs (ids from `handoff_ids`) rather than assigned; stages `by` takes on are
    /// set at once. Any edit changes what was agreed, so the agreement starts again
    /// with `by` alone.
    #[allow(clippy::too_many_arguments)]
    pub fn edit_ledger_item(
        &mut self,
        id: Uuid,
        edit: &ItemEdit,
        by: PersonId,
        handoff_ids: &mut dyn Iterator<Item = Uuid>,
        when: When,
        now: Millis,
    ) -> Result<(LedgerItem, Vec<Handoff>), DocError> {
        let mut offers = Vec::new();
        for (stage, owner) in &edit.owners {
            self.require_person("owner", *owner)?;
            if *owner != by {
                offers.push((*stage, *owner));
            }
        }
        let item = self.update_ledger_item(id, now, |item| {
            if let Some(title) = &edit.title {
                item.title = title.trim().to_string();
            }
            if let Some(cadence) = edit.cadence {
                item.cadence = Some(cadence);
            }
            if let Some(weight) = edit.weight {
                item.weight = weight;
            }
            if let Some(minutes) = edit.minutes_per_week {
                item.minutes_per_week = Some(minutes);
            }
            if let Some(good_enough) = &edit.good_enough {
                item.good_enough = good_enough.trim().to_string();
            }
            for (stage, owner) in &edit.owners {
                if *owner == by {
                    item.owners.set(*stage, Some(by));
                }
            }
            item.agreed_by = std::collections::BTreeSet::from([by]);
            item.agreed_at = Some(when.at);
        })?;
        let handoffs = self.offer_stages(id, by, offers, handoff_ids, when, now)?;
        Ok((item, handoffs))
    }

    /// Offers each `(stage, to)` of `item` from `from` as an open handoff, with ids from
    /// `handoff_ids`: a stage is put on someone else only as a proposal they answer.
    fn offer_stages(
        &mut self,
        item: Uuid,
        from: PersonId,
        offers: Vec<(Stage, PersonId)>,
        handoff_ids: &mut dyn Iterator<Item = Uuid>,
        when: When,
        now: Millis,
    ) -> Result<Vec<Handoff>, DocError> {
        let mut handoffs = Vec::new();
        for ((stage, to), id) in offers.into_iter().zip(handoff_ids) {
            let handoff = Handoff {
                id,
                item,
                stage,
                from,
                to,
                when,
                note: None,
                state: HandoffState::Open,
                answered_by: None,
                answered_at: None,
                counter: None,
            };
            self.propose_handoff(&handoff, now)?;
            handoffs.push(handoff);
        }
        Ok(handoffs)
    }

    /// Records that `by` agrees with an item as it stands, its "good enough" standard
    /// included. It counts as agreed once everyone in the household has.
    pub fn agree_ledger_item(
        &mut self,
        id: Uuid,
        by: PersonId,
        at: Millis,
        now: Millis,
    ) -> Result<(LedgerItem, bool), DocError> {
        self.require_person("agreed by", by)?;
        let item = self.update_ledger_item(id, now, |item| {
            item.agreed_by.insert(by);
            item.agreed_at = Some(at);
        })?;
        let everyone = self.people().iter().all(|p| item.agreed_by.contains(&p.id));
        Ok((item, everyone))
    }

    /// Records that someone did an item or a piece of unlisted work.
    pub fn add_done(&mut self, done: &DoneEntry, now: Millis) -> Result<(), DocError> {
        done.validate()?;
        self.require_person("by", done.by)?;
        if let Some(item) = done.item {
            if !self
                .household
                .contains(Collection::Ledger, &item.to_string())
            {
                return Err(ValidationError::UnknownReference {
                    field: "item",
                    id: item.to_string(),
                }
                .into());
            }
        }
        self.household.put(done, now)
    }

    /// Records an acknowledgment, which must point at a record that exists here.
    pub fn add_ack(&mut self, ack: &Acknowledgment, now: Millis) -> Result<(), DocError> {
        ack.validate()?;
        self.require_person("from", ack.from)?;
        self.require_person("to", ack.to)?;
        let key = ack.target.id.to_string();
        let exists = match ack.target.kind {
            TargetKind::Item => self.household.contains(Collection::Ledger, &key),
            TargetKind::Done => self.household.contains(Collection::Done, &key),
            TargetKind::Moment => self.household.contains(Collection::Moments, &key),
            // An acknowledgment lives in the household document, so it may only point at
            // a check-in the partner can read too.
            TargetKind::CheckIn => self.household.contains(Collection::CheckIns, &key),
        };
        if !exists {
            return Err(ValidationError::UnknownReference {
                field: "target",
                id: key,
            }
            .into());
        }
        self.household.put(ack, now)
    }

    /// Proposes a handoff of one stage of an active item.
    pub fn propose_handoff(&mut self, handoff: &Handoff, now: Millis) -> Result<(), DocError> {
        handoff.validate()?;
        self.require_person("from", handoff.from)?;
        self.require_person("to", handoff.to)?;
        let item = self
            .household
            .get::<LedgerItem>(&handoff.item.to_string())?
            .ok_or_else(|| ValidationError::UnknownReference {
                field: "item",
                id: handoff.item.to_string(),
            })?;
        if item.status == ItemStatus::Retired {
            return Err(ValidationError::Invalid {
                field: "item",
                reason: "this item is retired; bring it back before handing it off".into(),
            }
            .into());
        }
        self.household.put(handoff, now)
    }

    /// Adds an item, offering to other people the stages its creator would put on them.
    ///
    /// Putting a stage on the partner is a proposal, not an assignment: each stage of
    /// `item.owners` held by someone other than `item.created_by` starts with the
    /// creator, and an open handoff (ids from `handoff_ids`, in stage order) offers it to
    /// that person, who accepts, declines or counters it. Returns the item as written and
    /// the handoffs.
    pub fn add_ledger_item_offering(
        &mut self,
        item: &LedgerItem,
        handoff_ids: &mut dyn Iterator<Item = Uuid>,
        when: When,
        now: Millis,
    ) -> Result<(LedgerItem, Vec<Handoff>), DocError> {
        let mut kept = item.clone();
        let mut offers = Vec::new();
        for stage in Stage::ALL {
            if let Some(owner) = item.owners.get(*stage) {
                if owner != item.created_by {
                    self.require_person("owner", owner)?;
                    kept.owners.set(*stage, Some(item.created_by));
                    offers.push((*stage, owner));
                }
            }
        }
        self.add_ledger_item(&kept, now)?;
        let handoffs =
            self.offer_stages(kept.id, item.created_by, offers, handoff_ids, when, now)?;
        Ok((kept, handoffs))
    }

    /// One handoff.
    pub fn handoff(&self, id: Uuid) -> Result<Handoff, DocError> {
        self.household
            .get::<Handoff>(&id.to_string())?
            .map(|h| self.settle_handoff(h))
            .ok_or(DocError::NotFound {
                kind: "handoffs",
                prefix: id.to_string(),
            })
    }

    /// Every handoff.
    pub fn handoffs(&self) -> Vec<Handoff> {
        self.household
            .all::<Handoff>()
            .into_iter()
            .map(|h| self.settle_handoff(h))
            .collect()
    }

    /// Accepting moves the stage in the same change; a concurrent decline or withdraw
    /// does not move it back. So when answers raced, an accept among them wins: the
    /// handoff reads as accepted, which is what the ledger already shows.
    fn settle_handoff(&self, mut handoff: Handoff) -> Handoff {
        if handoff.state != HandoffState::Accepted {
            let answers = self.household.field_conflicts(
                Collection::Handoffs,
                &handoff.id.to_string(),
                "state",
            );
            if answers.len() > 1 && answers.iter().any(|a| a == HandoffState::Accepted.key()) {
                handoff.state = HandoffState::Accepted;
                handoff.answered_by = Some(handoff.to);
                handoff.counter = None;
            }
        }
        handoff
    }

    /// Answers an open handoff. Accepting moves the stage to the person it was offered to.
    pub fn answer_handoff(
        &mut self,
        id: Uuid,
        answer: HandoffState,
        by: PersonId,
        counter: Option<String>,
        now: Millis,
    ) -> Result<Handoff, DocError> {
        let mut handoff = self.handoff(id)?;
        // A counter goes back to the one who proposed: they may accept it. The counter is
        // in words, so accepting it records the agreement and moves no stage by itself.
        let counter_accepted = handoff.state == HandoffState::Countered
            && answer == HandoffState::Accepted
            && by == handoff.from;
        if counter_accepted {
            handoff.state = HandoffState::Accepted;
            handoff.answered_by = Some(by);
            handoff.answered_at = Some(now);
            handoff.validate()?;
            self.household.put(&handoff, now)?;
            return Ok(handoff);
        }
        if handoff.state != HandoffState::Open {
            return Err(ValidationError::Invalid {
                field: "handoff",
                reason: format!("it was already {}", handoff.state),
            }
            .into());
        }
        let allowed = match answer {
            HandoffState::Withdrawn => by == handoff.from,
            HandoffState::Accepted | HandoffState::Declined | HandoffState::Countered => {
                by == handoff.to
            }
            HandoffState::Open => false,
        };
        if !allowed {
            return Err(ValidationError::Invalid {
                field: "handoff",
                reason: "only the person it was offered to can answer it, and only the proposer can withdraw it".into(),
            }
            .into());
        }
        handoff.state = answer;
        handoff.answered_by = Some(by);
        handoff.answered_at = Some(now);
        handoff.counter = counter;
        handoff.validate()?;
        if answer == HandoffState::Accepted {
            let (stage, to) = (handoff.stage, handoff.to);
            self.update_ledger_item(handoff.item, now, |item| item.owners.set(stage, Some(to)))?;
        }
        self.household.put(&handoff, now)?;
        Ok(handoff)
    }

    /// Records a moment of connection.
    pub fn add_moment(&mut self, moment: &Moment, now: Millis) -> Result<(), DocError> {
        moment.validate()?;
        self.require_person("started by", moment.started_by)?;
        self.household.put(moment, now)
    }

    /// Every moment.
    pub fn moments(&self) -> Vec<Moment> {
        let mut out = self.household.all::<Moment>();
        out.sort_by_key(|m| (m.when.at, m.id));
        out
    }

    /// Every done entry.
    pub fn done_entries(&self) -> Vec<DoneEntry> {
        let mut out = self.household.all::<DoneEntry>();
        out.sort_by_key(|d| (d.when.at, d.id));
        out
    }

    /// Every acknowledgment.
    pub fn acks(&self) -> Vec<Acknowledgment> {
        let mut out = self.household.all::<Acknowledgment>();
        out.sort_by_key(|a| (a.when.at, a.id));
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use crate::model::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// A person for tests: id `n`, joined at 0.
    pub(crate) fn person(name: &str, n: u128) -> Person {
        Person {
            id: Uuid::from_u128(n),
            name: name.into(),
            joined_at: 0,
        }
    }

    /// An actor id for tests, all bytes `n`.
    pub(crate) fn actor(n: u8) -> ActorId {
        ActorId::from(vec![n; 16])
    }

    /// Ada's device (actor 1) and Bo's (actor 2), after Ada's device wrote both people.
    pub(crate) fn docs_pair() -> (Docs, Docs, PersonId, PersonId) {
        let a = person("Ada", 1);
        let b = person("Bo", 2);
        let mut da = Docs::new(a.id, actor(1));
        da.add_person(&a, 1000).unwrap();
        da.add_person(&b, 1000).unwrap();
        let mut db = Docs::new(b.id, actor(2));
        db.household
            .automerge_mut()
            .merge(&mut da.household.automerge().clone())
            .unwrap();
        (da, db, a.id, b.id)
    }

    /// An active ledger item `n` made by `by`.
    pub(crate) fn item(by: PersonId, n: u128) -> LedgerItem {
        LedgerItem {
            id: Uuid::from_u128(n),
            title: "Plan the week's meals".into(),
            domain: Domain::Household,
            labour: Labour::Cognitive,
            invisible: true,
            owners: Owners::all(by),
            cadence: Some(Cadence::Weekly),
            minutes_per_week: Some(45),
            weight: 2,
            good_enough: "Five dinners sketched".into(),
            status: ItemStatus::Active,
            agreed_by: BTreeSet::new(),
            agreed_at: None,
            created_by: by,
            created_at: 1000,
            created_utc_offset_min: 0,
            paused_until: None,
        }
    }

    fn sync(a: &mut Doc, b: &mut Doc) {
        let mut ca = a.automerge().clone();
        let mut cb = b.automerge().clone();
        a.automerge_mut().merge(&mut cb).unwrap();
        b.automerge_mut().merge(&mut ca).unwrap();
    }

    #[test]
    fn genesis_is_identical_everywhere_so_collections_never_fork() {
        let (mut da, mut db, a, b) = docs_pair();
        let c1 = checkin(a, 10, Visibility::Shared);
        let c2 = checkin(b, 11, Visibility::Shared);
        da.add_checkin(&c1, 2000).unwrap();
        db.add_checkin(&c2, 2000).unwrap();
        sync(&mut da.household, &mut db.household);
        assert_eq!(da.checkins().len(), 2);
        assert_eq!(db.checkins().len(), 2);
        // Two independently created empty docs also merge without losing a collection.
        let mut x = Doc::new(DocKind::Household, actor(7));
        let y = Doc::new(DocKind::Household, actor(8));
        assert_eq!(x.heads(), y.heads());
        x.automerge_mut().merge(&mut y.automerge().clone()).unwrap();
        assert_eq!(x.schema(), SCHEMA_VERSION);
    }

    fn checkin(author: PersonId, n: u128, visibility: Visibility) -> CheckIn {
        CheckIn {
            id: Uuid::from_u128(n),
            author,
            when: When::from_utc(1_700_000_000_000 + n as i64 * 86_400_000, 0),
            battery: 40,
            signs: BTreeMap::from([(BurnoutSign::Dread, 2)]),
            body: BTreeSet::from([BodySign::Fatigue]),
            basics: BTreeMap::from([(Basic::Sleep, BasicLevel::Partly)]),
            note: Some("long week".into()),
            ask: None,
            visibility,
            kept_to_self: Default::default(),
        }
    }

    #[test]
    fn records_round_trip_and_private_ones_stay_out_of_the_household() {
        let (mut da, _db, a, _) = docs_pair();
        let shared = checkin(a, 10, Visibility::Shared);
        let private = checkin(a, 11, Visibility::Private);
        da.add_checkin(&shared, 1).unwrap();
        da.add_checkin(&private, 1).unwrap();
        assert_eq!(
            da.household.get::<CheckIn>(&shared.id.to_string()).unwrap(),
            Some(shared.clone())
        );
        assert!(!da
            .household
            .contains(Collection::CheckIns, &private.id.to_string()));
        assert_eq!(da.checkins(), vec![shared, private]);
    }

    #[test]
    fn kept_answers_stay_in_the_private_document_and_come_back_for_the_author() {
        let (mut da, mut db, a, _) = docs_pair();
        let mut c = checkin(a, 12, Visibility::Shared);
        c.basics.insert(Basic::Safety, BasicLevel::No);
        c.signs.insert(BurnoutSign::Relief, 3);
        c.keep_own_answers();
        assert_eq!(
            c.kept_to_self,
            BTreeSet::from([OwnAnswer::Safety, OwnAnswer::Relief])
        );
        da.add_checkin(&c, 1).unwrap();
        // The household copy has neither the answers nor the list of them.
        let shared = da
            .household
            .get::<CheckIn>(&c.id.to_string())
            .unwrap()
            .unwrap();
        assert!(!shared.basics.contains_key(&Basic::Safety));
        assert!(!shared.signs.contains_key(&BurnoutSign::Relief));
        assert!(shared.kept_to_self.is_empty());
        assert_eq!(shared.basics.get(&Basic::Sleep), Some(&BasicLevel::Partly));
        let household =
            String::from_utf8_lossy(&da.household.automerge().clone().save_nocompress())
                .to_string();
        assert!(!household.contains("safety") && !household.contains("relief"));
        // The author reads it whole, from every read path.
        assert_eq!(da.checkins(), vec![c.clone()]);
        assert_eq!(
            da.checkins_between(a, c.when.date, c.when.date),
            vec![c.clone()]
        );
        // The partner's device, after sync, reads the shared part only.
        sync(&mut da.household, &mut db.household);
        assert_eq!(db.checkins(), vec![shared.clone()]);
        // Shared by choice: nothing is kept.
        let mut open = checkin(a, 13, Visibility::Shared);
        open.basics.insert(Basic::Safety, BasicLevel::Met);
        da.add_checkin(&open, 1).unwrap();
        sync(&mut da.household, &mut db.household);
        assert!(db
            .checkins()
            .iter()
            .any(|x| x.id == open.id && x.basics.contains_key(&Basic::Safety)));
        // Nobody keeps answers for someone else.
        let mut theirs = checkin(db.me, 14, Visibility::Shared);
        theirs.basics.insert(Basic::Safety, BasicLevel::No);
        theirs.keep_own_answers();
        assert!(da.add_checkin(&theirs, 1).is_err());
    }

    #[test]
    fn checkins_between_filters_by_person_and_local_date() {
        let (mut da, _db, a, b) = docs_pair();
        for n in 0..10 {
            da.add_checkin(&checkin(a, n, Visibility::Shared), 1)
                .unwrap();
            da.add_checkin(&checkin(b, 100 + n, Visibility::Shared), 1)
                .unwrap();
        }
        let first = checkin(a, 2, Visibility::Shared).when.date;
        let last = checkin(a, 4, Visibility::Shared).when.date;
        let got = da.checkins_between(a, first, last);
        assert_eq!(
            got.iter().map(|c| c.id.as_u128()).collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
    }

    #[test]
    fn unknown_author_and_missing_references_are_refused() {
        let (mut da, _db, a, _) = docs_pair();
        let stranger = Uuid::from_u128(99);
        let err = da
            .add_checkin(&checkin(stranger, 1, Visibility::Shared), 1)
            .unwrap_err();
        assert!(err.to_string().contains("author points at"), "{err}");
        let ack = Acknowledgment {
            id: Uuid::from_u128(5),
            from: a,
            to: a,
            target: Target {
                kind: TargetKind::Item,
                id: Uuid::from_u128(404),
            },
            kind: AckKind::Thanks,
            when: When::from_utc(0, 0),
            note: None,
        };
        assert!(matches!(
            da.add_ack(&ack, 1),
            Err(DocError::Invalid(ValidationError::UnknownReference {
                field: "target",
                ..
            }))
        ));
        assert_eq!(da.household.count(Collection::Acks), 0);
    }

    #[test]
    fn prefixes_resolve_like_git() {
        let (mut da, _db, a, _) = docs_pair();
        let mut i1 = item(a, 0xabc1 << 112);
        i1.title = "one".into();
        let mut i2 = item(a, 0xabc2 << 112);
        i2.title = "two".into();
        da.add_ledger_item(&i1, 1).unwrap();
        da.add_ledger_item(&i2, 1).unwrap();
        assert_eq!(da.resolve(Collection::Ledger, "abc1").unwrap(), i1.id);
        assert!(matches!(
            da.resolve(Collection::Ledger, "abc"),
            Err(DocError::Ambiguous { count: 2, .. })
        ));
        assert!(matches!(
            da.resolve(Collection::Ledger, "ffff"),
            Err(DocError::NotFound { .. })
        ));
    }

    #[test]
    fn concurrent_edits_to_one_item_merge_deterministically() {
        let (mut da, mut db, a, b) = docs_pair();
        let it = item(a, 42);
        da.add_ledger_item(&it, 1).unwrap();
        sync(&mut da.household, &mut db.household);
        da.update_ledger_item(it.id, 2, |i| {
            i.title = "Plan the week's meals together".into();
            i.owners.plan = Some(b);
        })
        .unwrap();
        db.update_ledger_item(it.id, 2, |i| {
            i.title = "Plan the week's dinners".into();
            i.status = ItemStatus::Paused;
            i.owners.plan = Some(a);
        })
        .unwrap();
        sync(&mut da.household, &mut db.household);
        let left = da.ledger_item(it.id).unwrap();
        let right = db.ledger_item(it.id).unwrap();
        assert_eq!(left, right);
        // Text edits merge rather than one overwriting the other.
        assert_eq!(left.title, "Plan the week's dinners together");
        assert_eq!(left.status, ItemStatus::Paused);
        assert_eq!(da.household.heads(), db.household.heads());
    }

    #[test]
    fn the_proposer_can_accept_a_counter_and_a_new_item_offers_the_partners_stages() {
        let (mut da, mut db, a, b) = docs_pair();
        // Ada adds an item meaning Bo to plan it: the plan stage is offered, not given.
        let mut it = item(a, 50);
        it.owners.set(Stage::Plan, Some(b));
        let mut ids = (60u128..).map(Uuid::from_u128);
        let (kept, offered) = da
            .add_ledger_item_offering(&it, &mut ids, When::from_utc(0, 0), 1)
            .unwrap();
        assert_eq!(kept.owners.plan, Some(a));
        assert_eq!(offered.len(), 1);
        assert_eq!((offered[0].stage, offered[0].to), (Stage::Plan, b));
        assert_eq!(offered[0].state, HandoffState::Open);
        sync(&mut da.household, &mut db.household);
        // Bo counters; Ada, who proposed, accepts the counter; nobody else can.
        let h = offered[0].id;
        db.answer_handoff(
            h,
            HandoffState::Countered,
            b,
            Some("I plan, you shop".into()),
            2,
        )
        .unwrap();
        sync(&mut da.household, &mut db.household);
        assert!(db
            .answer_handoff(h, HandoffState::Accepted, b, None, 3)
            .is_err());
        let done = da
            .answer_handoff(h, HandoffState::Accepted, a, None, 3)
            .unwrap();
        assert_eq!(done.state, HandoffState::Accepted);
        assert_eq!(done.answered_by, Some(a));
        assert_eq!(done.counter.as_deref(), Some("I plan, you shop"));
        // Words move no stage by themselves.
        assert_eq!(da.ledger_item(it.id).unwrap().owners.plan, Some(a));

        // An edit that puts a stage on Bo offers it; one Ada takes is hers at once; the
        // agreement starts again with her alone.
        da.agree_ledger_item(it.id, b, 4, 4).unwrap();
        let edit = ItemEdit {
            good_enough: Some("Signed by Friday".into()),
            owners: vec![(Stage::Do, b), (Stage::FollowUp, a)],
            ..ItemEdit::default()
        };
        let (edited, offered) = da
            .edit_ledger_item(it.id, &edit, a, &mut ids, When::from_utc(5, 0), 5)
            .unwrap();
        assert_eq!(edited.good_enough, "Signed by Friday");
        assert_eq!(edited.owners.do_, Some(a));
        assert_eq!(edited.owners.follow_up, Some(a));
        assert_eq!(edited.agreed_by, BTreeSet::from([a]));
        assert_eq!((offered[0].stage, offered[0].to), (Stage::Do, b));
        // Paused items carry no load until resumed.
        let paused = da.pause_ledger_item(it.id, None, 6).unwrap();
        assert_eq!(paused.status, ItemStatus::Paused);
        assert_eq!(
            da.resume_ledger_item(it.id, 7).unwrap().status,
            ItemStatus::Active
        );
    }

    #[test]
    fn accepting_a_handoff_moves_the_stage() {
        let (mut da, mut db, a, b) = docs_pair();
        let it = item(a, 42);
        da.add_ledger_item(&it, 1).unwrap();
        let h = Handoff {
            id: Uuid::from_u128(7),
            item: it.id,
            stage: Stage::FollowUp,
            from: a,
            to: b,
            when: When::from_utc(0, 0),
            note: None,
            state: HandoffState::Open,
            answered_by: None,
            answered_at: None,
            counter: None,
        };
        da.propose_handoff(&h, 1).unwrap();
        sync(&mut da.household, &mut db.household);
        // Only the person it was offered to can accept.
        assert!(da
            .answer_handoff(h.id, HandoffState::Accepted, a, None, 2)
            .is_err());
        db.answer_handoff(h.id, HandoffState::Accepted, b, None, 2)
            .unwrap();
        assert_eq!(db.ledger_item(it.id).unwrap().owners.follow_up, Some(b));
        let bad = Handoff {
            id: Uuid::from_u128(8),
            item: Uuid::from_u128(404),
            ..h
        };
        assert!(matches!(
            db.propose_handoff(&bad, 3),
            Err(DocError::Invalid(ValidationError::UnknownReference {
                field: "item",
                ..
            }))
        ));
    }

    #[test]
    fn removing_an_optional_field_deletes_it() {
        let (mut da, _db, a, _) = docs_pair();
        let mut it = item(a, 1);
        da.add_ledger_item(&it, 1).unwrap();
        it.minutes_per_week = None;
        da.household.put(&it, 2).unwrap();
        assert_eq!(da.ledger_item(it.id).unwrap().minutes_per_week, None);
    }

    #[test]
    fn a_pause_travels_beside_the_person_and_survives_a_rewrite_of_the_record() {
        let (mut da, mut db, a, b) = docs_pair();
        assert_eq!(db.pause_of(a), None);
        let pause = Pause {
            since: 5_000,
            until: Some(9_000),
        };
        da.set_pause(a, Some(&pause), 5_000).unwrap();
        // Rewriting the person (as an import or a rename would) keeps the pause.
        let ada = da.people().into_iter().find(|p| p.id == a).unwrap();
        da.household.put(&ada, 6_000).unwrap();
        assert_eq!(da.pause_of(a), Some(pause));
        assert_eq!(da.people().len(), 2, "the side field is not a record");
        sync(&mut da.household, &mut db.household);
        assert_eq!(db.pause_of(a), Some(pause));
        assert_eq!(db.pause_of(b), None);
        assert!(pause.active_at(8_999) && !pause.active_at(9_000) && !pause.active_at(4_999));
        // Resume clears it everywhere.
        da.set_pause(a, None, 7_000).unwrap();
        sync(&mut da.household, &mut db.household);
        assert_eq!(db.pause_of(a), None);
        let backwards = Pause {
            since: 10,
            until: Some(10),
        };
        assert!(da.set_pause(a, Some(&backwards), 7_000).is_err());
        assert!(da.set_pause(Uuid::from_u128(99), None, 7_000).is_err());
    }

    #[test]
    fn leaving_is_kept_from_the_earliest_record_and_ends_a_pause() {
        let (mut da, mut db, a, _) = docs_pair();
        da.set_pause(
            a,
            Some(&Pause {
                since: 1,
                until: None,
            }),
            1,
        )
        .unwrap();
        sync(&mut da.household, &mut db.household);
        db.set_left(a, 300, 300).unwrap();
        da.set_left(a, 200, 200).unwrap();
        sync(&mut da.household, &mut db.household);
        // Both wrote; whichever value wins, a later call never moves it forward.
        let left = da.left_at(a).unwrap();
        assert!(left == 200 || left == 300);
        da.set_left(a, 900, 900).unwrap();
        assert_eq!(da.left_at(a), Some(left));
        assert_eq!(da.pause_of(a), None);
        assert_eq!(db.left_at(a), Some(left));
    }
}
