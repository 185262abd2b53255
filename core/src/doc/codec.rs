//! The Automerge codec: Hearth's layout of records in a document (collections keyed by
//! id, compact values for records never edited, maps written field by field for the
//! rest), the genesis change, and reading and writing records in place.

use std::collections::BTreeSet;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, ChangeHash, ObjId, ObjType, ReadDoc, ScalarValue, Value};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map as JsonMap, Number, Value as Json};
use uuid::Uuid;

use crate::model::{
    Acknowledgment, CheckIn, Device, DoneEntry, Handoff, LedgerItem, Millis, Moment, Person,
    PersonId, Reflection, ValidationError, SCHEMA_VERSION,
};
use crate::provenance::ProofBook;

use super::*;

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
/// [`crate::model::OwnAnswer`]): `o1`, then the JSON of [`crate::model::OwnParts`]. The value lives in
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
pub(super) const TEXT_FIELDS: &[&str] = &["title", "good_enough"];

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
pub(super) const SIDE_FIELDS: &[&str] = &[SHARING_PAUSE, SHARING_LEFT_AT];

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
    pub(super) am: Automerge,
    pub(super) kind: DocKind,
    /// Signed heads kept beside the document (see [`crate::provenance`]).
    pub(super) proofs: ProofBook,
    /// Received changes not applied until their author is proven.
    pub(super) held: Vec<automerge::Change>,
    /// Received changes refused for breaking the authorship rules, so that what builds
    /// on them is refused too.
    pub(super) refused: BTreeSet<ChangeHash>,
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

    pub(super) fn collection(&self, coll: Collection) -> Result<ObjId, DocError> {
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

pub(super) fn scalar_str<'a>(scalar: &'a automerge::ScalarValueRef<'a>) -> Option<&'a str> {
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
pub(super) fn compact_body<R: Record>(
    mut fields: JsonMap<String, Json>,
) -> Result<String, DocError> {
    for redundant in ["id", "date", R::PERSON_FIELD] {
        fields.remove(redundant);
    }
    serde_json::to_string(&fields).map_err(|e| DocError::Decode {
        kind: R::COLLECTION.key(),
        reason: crate::json_error_kind(&e),
    })
}

pub(super) fn decode_compact<R: Record>(key: &str, text: &str) -> Result<R, DocError> {
    let (date, person, json) = split_compact(text).ok_or_else(|| DocError::Decode {
        kind: R::COLLECTION.key(),
        reason: "not a record value",
    })?;
    decode_parts::<R>(key, date, person, json)
}

/// Rebuilds a record from its key, the date and person of its header, and its JSON.
pub(super) fn decode_parts<R: Record>(
    key: &str,
    date: &str,
    person: &str,
    json: &str,
) -> Result<R, DocError> {
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

pub(super) fn collection_id(am: &Automerge, coll: Collection) -> Result<ObjId, DocError> {
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
pub(super) fn genesis(kind: DocKind) -> Automerge {
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

pub(super) fn decode<R: Record>(am: &Automerge, obj: &ObjId) -> Result<R, DocError> {
    let json = read_map(am, obj);
    serde_json::from_value(json).map_err(|e| DocError::Decode {
        kind: R::COLLECTION.key(),
        reason: crate::json_error_kind(&e),
    })
}

pub(super) fn read_value(am: &Automerge, value: Value<'_>, id: ObjId) -> Json {
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

pub(super) fn read_map(am: &Automerge, obj: &ObjId) -> Json {
    let mut map = JsonMap::new();
    for item in am.map_range(obj, ..) {
        let v = read_value(am, item.value.clone().into_value(), item.id());
        map.insert(item.key.to_string(), v);
    }
    Json::Object(map)
}

pub(super) fn scalar_to_json(s: &ScalarValue) -> Json {
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

pub(super) fn json_to_scalar(v: &Json) -> Option<ScalarValue> {
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
pub(super) fn write_map<T: Transactable + ReadDoc>(
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
pub(super) fn read_list_in_tx<T: ReadDoc>(tx: &T, value: &Value<'_>, id: &ObjId) -> Option<Json> {
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
