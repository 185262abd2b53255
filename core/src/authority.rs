//! Who may write what: the rules every received change must pass before it is applied.
//!
//! This module owns one pure function, [`check_changes`]. It is handed the document as it
//! stands, which document it is, and a batch of changes, each with the person its
//! (already proven) author device belongs to. It answers which changes to apply and why
//! the others are refused. It does no IO, reads no clock and applies nothing: proving
//! authors, holding refused changes and reporting them belong to the callers (sync,
//! bundles, import).
//!
//! # The rules
//!
//! | what | who may create it | who may change or delete it |
//! |---|---|---|
//! | check-ins, reflections, moments, done entries, acknowledgments | their author (the person in the value's header) | their author |
//! | sealed answers | their author | nobody, except appending the published key, which must open the ciphertext first seen |
//! | a person's record | either person (pairing writes the partner's) | that person |
//! | a person's pause and leave markers | that person | that person |
//! | roster entries | either person (their signature chains are checked in [`crate::roster`]) | the person the entry names |
//! | ledger items | either person | either person |
//! | handoffs | either person | either person; `item`, `stage`, `from` and `to` are fixed at creation; the answer (`state`, `answered_by`, `answered_at`, `counter`) only by the person it was offered to, except that the proposer may withdraw it and accept a counter; `answered_by` names whoever answers; an answered handoff is never deleted or replaced whole |
//!
//! Anything else is refused: a write at the document root, an unknown collection, a
//! collection deleted or replaced, a key that is not a record id, a value that does not
//! parse. A private document is written only by its own person.
//!
//! **Create or change:** an Automerge put or delete names the values it overwrites in its
//! `pred`. An op with an empty `pred` creates, even when a concurrent value exists: two
//! honest devices may create the same key at once (both partners write both people's
//! records while pairing). An op with an empty `pred` on a key whose value was already
//! in its causal past is a forged conflict, and is judged as a change of that value.
//!
//! **Why structure and not content:** a value is checked only for what decides who owns
//! it (its tag, header and that its JSON is an object). A record a newer Hearth writes
//! with a field this version does not know must not be refused here: reads skip what
//! they cannot decode, while a refusal would hold back every change built on it.

use std::collections::{BTreeMap, HashMap, HashSet};

use automerge::legacy::{Key, ObjectId, OpId, OpType};
use automerge::{ActorId, Automerge, Change, ChangeHash, ObjId, ObjType, ReadDoc, ScalarValue};
use uuid::Uuid;

use crate::doc::{
    genesis_actor, key_opens, split_compact, split_sealed, Collection, DocKind, COMPACT_TAG,
    SEALED_TAG, SHARING_LEFT_AT, SHARING_PAUSE,
};
use crate::model::{HandoffState, Pause, PersonId};

#[cfg(test)]
mod tests;

/// A change to check, with the person its (already proven) author device belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Authored<'a> {
    /// The change as received.
    pub change: &'a Change,
    /// The person whose device wrote it.
    pub person: PersonId,
}

/// The verdict over a batch: indexes into the input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Changes that may be applied, in the order they can be applied.
    pub accepted: Vec<usize>,
    /// Changes that must not be applied, with the reason, in input order.
    pub refused: Vec<(usize, Breach)>,
}

impl Verdict {
    /// Whether every change in the batch passed.
    pub fn all_accepted(&self) -> bool {
        self.refused.is_empty()
    }
}

/// Why a change is refused. The messages name no content: no names, notes or keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Breach {
    /// A private document holds only its own person's changes.
    #[error("it writes to the private document of someone else")]
    NotTheirDocument,
    /// A personal record must carry its author as its person.
    #[error("it writes a {kind} in the other person's name")]
    WritesAsOther {
        /// The kind of record.
        kind: &'static str,
    },
    /// A personal record is changed or deleted by someone other than its author.
    #[error("it changes or deletes a {kind} written by the other person")]
    ChangesOthers {
        /// The kind of record.
        kind: &'static str,
    },
    /// A sealed answer is written once; only its key may be appended.
    #[error("it rewrites a {kind} sealed until both partners answer; only publishing its key is allowed")]
    RewritesSealed {
        /// `check-in` or `reflection`.
        kind: &'static str,
    },
    /// A published key must open the ciphertext first seen.
    #[error("it publishes a key that does not open the sealed {kind}")]
    KeyDoesNotOpen {
        /// `check-in` or `reflection`.
        kind: &'static str,
    },
    /// A person's record is changed by someone else.
    #[error("it changes or deletes the other person's record")]
    ChangesOtherPerson,
    /// A pause or leave marker is set or cleared by someone else.
    #[error("it sets or clears the other person's pause or leave")]
    ChangesOthersMarker,
    /// A roster entry is changed or removed by someone other than its person.
    #[error("it changes or removes a device of the other person")]
    ChangesOthersDevice,
    /// A handoff's answer comes from someone it was not offered to.
    #[error("it answers a handoff in a way only the person it was offered to may")]
    AnswersForOther,
    /// Who or what a handoff is between is fixed when it is proposed.
    #[error("it changes who or what a handoff is between")]
    ChangesHandoffTerms,
    /// Deleting or replacing a whole answered handoff would erase its answer.
    #[error("it deletes or replaces a handoff that was already answered")]
    RemovesAnswer,
    /// Records live in the collections the genesis change made; nothing else is written.
    #[error("it writes outside the record collections")]
    OutsideCollections,
    /// A collection is deleted or replaced.
    #[error("it deletes or replaces a whole collection")]
    ReplacesCollection,
    /// A key that is not a record id.
    #[error("it writes a key that is not a record id among the {kind}s")]
    UnknownKey {
        /// The kind of record.
        kind: &'static str,
    },
    /// A value that does not have the shape of its record.
    #[error("it writes a {kind} that cannot be read")]
    Malformed {
        /// The kind of record.
        kind: &'static str,
    },
    /// The change refers to data that neither the document nor the batch holds.
    #[error("it refers to data this device does not hold")]
    Unresolved,
    /// It builds on a change that was refused.
    #[error("it builds on a change that was refused")]
    DependsOnRefused,
}

/// Checks a batch of changes against the rules (see the module docs).
///
/// `doc` is the document as it is before the batch; `kind` says which document it is.
/// `changes` may arrive in any order: they are judged in causal order, each against the
/// document plus the changes accepted before it. A refused change is refused whole, and
/// every change that depends on it is refused with [`Breach::DependsOnRefused`]. Changes
/// `doc` already holds are accepted as they are. Changes whose dependencies are neither in
/// `doc` nor in the batch are checked against what is known.
pub fn check_changes(doc: &Automerge, kind: DocKind, changes: &[Authored<'_>]) -> Verdict {
    let hashes: Vec<ChangeHash> = changes.iter().map(|a| a.change.hash()).collect();
    let mut first: HashMap<ChangeHash, usize> = HashMap::with_capacity(changes.len());
    for (i, h) in hashes.iter().enumerate() {
        first.entry(*h).or_insert(i);
    }
    // Kahn's algorithm over the dependencies inside the batch; ties go in input order.
    let mut waiting = vec![0usize; changes.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); changes.len()];
    let mut known = vec![false; changes.len()];
    for (i, a) in changes.iter().enumerate() {
        if first[&hashes[i]] != i {
            continue;
        }
        known[i] = doc.get_change_meta_by_hash(&hashes[i]).is_some();
        if known[i] {
            continue;
        }
        for dep in a.change.deps() {
            if let Some(&d) = first.get(dep) {
                if d != i {
                    waiting[i] += 1;
                    dependents[d].push(i);
                }
            }
        }
    }
    let mut ready: std::collections::BTreeSet<usize> = (0..changes.len())
        .filter(|&i| first[&hashes[i]] == i && waiting[i] == 0)
        .collect();
    let mut outcome: Vec<Option<Result<(), Breach>>> = vec![None; changes.len()];
    let mut judge = Judge::new(doc, &first, changes);
    let mut order: Vec<usize> = Vec::with_capacity(changes.len());
    while let Some(i) = ready.pop_first() {
        order.push(i);
        let result = if known[i] {
            Ok(())
        } else if changes[i].change.deps().iter().any(|d| {
            first
                .get(d)
                .is_some_and(|&j| matches!(outcome[j], Some(Err(_))))
        }) {
            Err(Breach::DependsOnRefused)
        } else {
            match kind {
                DocKind::Private(owner) if owner != changes[i].person => {
                    Err(Breach::NotTheirDocument)
                }
                DocKind::Private(_) => Ok(()),
                DocKind::Household => judge.change(i),
            }
        };
        outcome[i] = Some(result);
        for &j in &dependents[i] {
            waiting[j] -= 1;
            if waiting[j] == 0 {
                ready.insert(j);
            }
        }
    }
    let mut verdict = Verdict::default();
    for (i, h) in hashes.iter().enumerate() {
        if first[h] == i && outcome[i].is_none() {
            // Unreachable in a hash graph; refusing is the safe answer all the same.
            outcome[i] = Some(Err(Breach::Unresolved));
            order.push(i);
        }
    }
    for (i, h) in hashes.iter().enumerate() {
        let f = first[h];
        if f != i {
            // A duplicate shares the verdict of its first copy, and comes after it.
            outcome[i] = outcome[f].clone();
            order.push(i);
        }
    }
    for i in order {
        match &outcome[i] {
            Some(Ok(())) => verdict.accepted.push(i),
            Some(Err(b)) => verdict.refused.push((i, b.clone())),
            None => verdict.refused.push((i, Breach::Unresolved)),
        }
    }
    verdict.refused.sort_by_key(|(i, _)| *i);
    verdict
}

/// An op's id: its counter and its actor.
type OpKey = (u64, ActorId);

/// Where an object sits in a Hearth document.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    Root,
    Collection(Collection),
    /// A record's map: collection and key.
    Record(Collection, String),
    /// An object inside a record's field (text, list or nested map), at any depth:
    /// collection, key, field, and the record's map.
    Inside(Collection, String, String, OpKey),
    /// Anything else: a map at the root that is not a genesis collection, and what is
    /// in it.
    Unknown,
}

/// What an op wrote, as far as the rules care.
#[derive(Debug, Clone, PartialEq)]
enum Written {
    Str(String),
    Int(i64),
    Object(ObjType),
    Deleted,
    Other,
}

impl Written {
    fn of(action: &OpType) -> Written {
        match action {
            OpType::Put(ScalarValue::Str(s)) => Written::Str(s.to_string()),
            OpType::Put(ScalarValue::Int(v)) => Written::Int(*v),
            OpType::Put(ScalarValue::Uint(v)) => {
                i64::try_from(*v).map_or(Written::Other, Written::Int)
            }
            OpType::Make(t) => Written::Object(*t),
            OpType::Delete => Written::Deleted,
            _ => Written::Other,
        }
    }

    fn from_value(value: &automerge::Value<'_>) -> Written {
        match value {
            automerge::Value::Object(t) => Written::Object(*t),
            automerge::Value::Scalar(s) => match s.as_ref() {
                ScalarValue::Str(s) => Written::Str(s.to_string()),
                ScalarValue::Int(v) => Written::Int(*v),
                ScalarValue::Uint(v) => i64::try_from(*v).map_or(Written::Other, Written::Int),
                _ => Written::Other,
            },
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Written::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// What accepted changes of the batch added to what the document knows. A change's own
/// effects are kept in a layer of their own until it is accepted.
#[derive(Debug, Default)]
struct Layer {
    /// Objects made, with their place.
    places: HashMap<OpKey, Place>,
    /// Values written at the collection and record levels, with the change that wrote them.
    values: HashMap<OpKey, (Written, usize)>,
    /// The latest value of each record field written, by record object.
    fields: HashMap<(OpKey, String), Written>,
    /// Values written at each record key of a collection.
    slots: HashMap<(Collection, String), Vec<OpKey>>,
    /// Ops overwritten by an op of the batch.
    overwritten: HashSet<OpKey>,
}

impl Layer {
    fn absorb(&mut self, other: Layer) {
        self.places.extend(other.places);
        self.values.extend(other.values);
        self.fields.extend(other.fields);
        for (slot, ops) in other.slots {
            self.slots.entry(slot).or_default().extend(ops);
        }
        self.overwritten.extend(other.overwritten);
    }
}

/// A handoff field written by the change under judgement, checked once the whole change
/// is read (a change may write `state` before `to`).
struct AnswerWrite {
    field: String,
    new: Written,
    overwritten: Vec<Written>,
}

struct Judge<'a> {
    doc: &'a Automerge,
    changes: &'a [Authored<'a>],
    index: &'a HashMap<ChangeHash, usize>,
    /// The genesis change's actor, which made the collections.
    genesis: ActorId,
    /// The collections' object ids, read from the document when first needed: most
    /// changes touch one collection, and a read per collection per call adds up when
    /// changes come one at a time.
    collection_ids: [std::cell::OnceCell<Option<ObjId>>; 9],
    /// Places of document objects looked up so far.
    doc_places: HashMap<OpKey, Place>,
    batch: Layer,
}

impl<'a> Judge<'a> {
    fn new(
        doc: &'a Automerge,
        index: &'a HashMap<ChangeHash, usize>,
        changes: &'a [Authored<'a>],
    ) -> Judge<'a> {
        Judge {
            doc,
            changes,
            index,
            genesis: genesis_actor(DocKind::Household),
            collection_ids: Default::default(),
            doc_places: HashMap::new(),
            batch: Layer::default(),
        }
    }

    /// Judges one household change; on success its effects join what is known.
    fn change(&mut self, i: usize) -> Result<(), Breach> {
        let authored = self.changes[i];
        let expanded = authored.change.decode();
        let person = authored.person;
        let actor = expanded.actor_id.clone();
        let start = expanded.start_op.get();
        let mut pending = Layer::default();
        let mut answers: BTreeMap<OpKey, Vec<AnswerWrite>> = BTreeMap::new();
        for (n, op) in expanded.operations.iter().enumerate() {
            let id: OpKey = (start + n as u64, actor.clone());
            let place = self.place_of(&op.obj, &pending)?;
            let obj_key = match &op.obj {
                ObjectId::Root => None,
                ObjectId::Id(OpId(c, a)) => Some((*c, a.clone())),
            };
            let new = Written::of(&op.action);
            let preds: Vec<OpKey> = op.pred.iter().map(|p| (p.0, p.1.clone())).collect();
            match place {
                Place::Root => {
                    return Err(match &op.key {
                        Key::Map(k) if Collection::ALL.iter().any(|c| c.key() == k.as_str()) => {
                            Breach::ReplacesCollection
                        }
                        _ => Breach::OutsideCollections,
                    })
                }
                Place::Unknown => return Err(Breach::OutsideCollections),
                Place::Collection(coll) => {
                    let Key::Map(key) = &op.key else {
                        return Err(Breach::Malformed { kind: kind(coll) });
                    };
                    self.record_op(
                        i,
                        person,
                        coll,
                        key.as_str(),
                        &id,
                        &new,
                        &preds,
                        &mut pending,
                    )?;
                }
                Place::Record(coll, key) => {
                    let Key::Map(field) = &op.key else {
                        return Err(Breach::Malformed { kind: kind(coll) });
                    };
                    let Some(obj) = obj_key else {
                        return Err(Breach::OutsideCollections);
                    };
                    let made_now = pending.places.contains_key(&obj);
                    self.field_op(
                        person,
                        coll,
                        &key,
                        &obj,
                        field.as_str(),
                        &new,
                        &preds,
                        made_now,
                        &pending,
                        &mut answers,
                    )?;
                    for p in &preds {
                        pending.overwritten.insert(p.clone());
                    }
                    if matches!(new, Written::Str(_) | Written::Int(_) | Written::Deleted) {
                        pending
                            .fields
                            .insert((obj.clone(), field.to_string()), new.clone());
                    }
                    pending.values.insert(id.clone(), (new.clone(), i));
                    if let Written::Object(_) = new {
                        pending.places.insert(
                            id.clone(),
                            Place::Inside(coll, key, field.to_string(), obj.clone()),
                        );
                    }
                }
                Place::Inside(coll, key, field, record) => {
                    let made_now = pending.places.contains_key(&record);
                    match coll {
                        Collection::Ledger => {}
                        Collection::People if made_now => {}
                        Collection::People => {
                            if parse_person(&key) != Some(person) {
                                return Err(Breach::ChangesOtherPerson);
                            }
                        }
                        Collection::Devices if made_now => {}
                        Collection::Devices => {
                            if self.owner_of_entry(&record, &pending) != Some(person) {
                                return Err(Breach::ChangesOthersDevice);
                            }
                        }
                        Collection::Handoffs if made_now && !is_answer_field(&field) => {}
                        Collection::Handoffs => return Err(Breach::ChangesHandoffTerms),
                        _ => return Err(Breach::Malformed { kind: kind(coll) }),
                    }
                    if let Written::Object(_) = new {
                        pending
                            .places
                            .insert(id.clone(), Place::Inside(coll, key, field, record));
                    }
                }
            }
        }
        for (record, writes) in &answers {
            self.check_answers(person, record, writes, &pending)?;
        }
        self.batch.absorb(pending);
        Ok(())
    }

    /// An op on a collection map: creating, replacing or deleting the record at `key`.
    #[allow(clippy::too_many_arguments)]
    fn record_op(
        &mut self,
        i: usize,
        person: PersonId,
        coll: Collection,
        key: &str,
        id: &OpKey,
        new: &Written,
        preds: &[OpKey],
        pending: &mut Layer,
    ) -> Result<(), Breach> {
        let what = kind(coll);
        if coll != Collection::Devices && Uuid::parse_str(key).is_err() {
            return Err(Breach::UnknownKey { kind: what });
        }
        // What this op overwrites: its preds, and for an op with none, any value already
        // at the key (a forged conflict, or a concurrent create; see below).
        let mut overwritten: Vec<(OpKey, Written)> = Vec::new();
        for p in preds {
            let value = self
                .value_of(p, coll, key, pending)
                .ok_or(Breach::Unresolved)?;
            overwritten.push((p.clone(), value));
        }
        if preds.is_empty() {
            for (op, value) in self.values_at(coll, key, pending) {
                let prior = match coll {
                    // Two people never create one compact record id, nor do two devices
                    // a sealed one: any value already there is judged, whatever its causal
                    // order, so a second sealed value can never hide the first.
                    c if is_compact(c) => true,
                    // People and roster entries are created by both sides while pairing,
                    // concurrently: only a value in the change's causal past is overwritten.
                    _ => self.precedes(&op, i, pending),
                };
                if prior {
                    overwritten.push((op, value));
                }
            }
        }
        if is_compact(coll) {
            self.compact_op(person, coll, new, &overwritten)?;
        } else {
            match new {
                Written::Object(ObjType::Map) | Written::Deleted => {}
                _ => return Err(Breach::Malformed { kind: what }),
            }
            for (op, old) in &overwritten {
                match coll {
                    Collection::People if parse_person(key) != Some(person) => {
                        return Err(Breach::ChangesOtherPerson);
                    }
                    Collection::Devices => {
                        let owner = match old {
                            Written::Object(_) => self.owner_of_entry(op, pending),
                            _ => None,
                        };
                        if owner != Some(person) {
                            return Err(Breach::ChangesOthersDevice);
                        }
                    }
                    Collection::Handoffs => {
                        let open = match old {
                            Written::Object(_) => self
                                .read_field(op, "state", pending)
                                .is_none_or(|w| w.as_str() == Some(HandoffState::Open.key())),
                            _ => true,
                        };
                        if !open {
                            return Err(Breach::RemovesAnswer);
                        }
                    }
                    _ => {}
                }
            }
        }
        for (op, _) in &overwritten {
            pending.overwritten.insert(op.clone());
        }
        if !matches!(new, Written::Deleted) {
            pending.values.insert(id.clone(), (new.clone(), i));
            pending
                .slots
                .entry((coll, key.to_string()))
                .or_default()
                .push(id.clone());
        }
        if let Written::Object(_) = new {
            pending
                .places
                .insert(id.clone(), Place::Record(coll, key.to_string()));
        }
        Ok(())
    }

    /// A value in a collection of records stored as one value each.
    fn compact_op(
        &self,
        person: PersonId,
        coll: Collection,
        new: &Written,
        overwritten: &[(OpKey, Written)],
    ) -> Result<(), Breach> {
        let what = kind(coll);
        let sealable = matches!(coll, Collection::CheckIns | Collection::Reflections);
        let parsed = match new {
            Written::Deleted => None,
            Written::Str(text) => {
                Some(parse_value(text, sealable).ok_or(Breach::Malformed { kind: what })?)
            }
            _ => return Err(Breach::Malformed { kind: what }),
        };
        if let Some(value) = &parsed {
            if value.person() != Some(person) {
                return Err(Breach::WritesAsOther { kind: what });
            }
        }
        for (_, old) in overwritten {
            let Some(old) = old.as_str().and_then(|t| parse_value(t, sealable)) else {
                // A value this version cannot read (an old record written field by
                // field, or garbage): nobody can show it is theirs.
                return Err(Breach::ChangesOthers { kind: what });
            };
            if old.person() != Some(person) {
                return Err(Breach::ChangesOthers { kind: what });
            }
            if let Parsed::Sealed { sealed, .. } = old {
                // Written once: the only change is the same sealed text with its key.
                match &parsed {
                    Some(Parsed::Sealed { sealed: now, .. }) if *now == sealed => {}
                    _ => return Err(Breach::RewritesSealed { kind: what }),
                }
            }
        }
        if let Some(Parsed::Sealed { key: Some(_), .. }) = &parsed {
            let opens = match new.as_str().and_then(split_sealed) {
                Some(value) => value.key.is_some_and(|k| key_opens(&value, k)),
                None => false,
            };
            if !opens {
                return Err(Breach::KeyDoesNotOpen { kind: what });
            }
        }
        Ok(())
    }

    /// An op on a record's map: one field of a person, device, ledger item or handoff.
    #[allow(clippy::too_many_arguments)]
    fn field_op(
        &self,
        person: PersonId,
        coll: Collection,
        key: &str,
        obj: &OpKey,
        field: &str,
        new: &Written,
        preds: &[OpKey],
        made_now: bool,
        pending: &Layer,
        answers: &mut BTreeMap<OpKey, Vec<AnswerWrite>>,
    ) -> Result<(), Breach> {
        match coll {
            Collection::People => {
                let owner = parse_person(key);
                if field == SHARING_PAUSE || field == SHARING_LEFT_AT {
                    if owner != Some(person) {
                        return Err(Breach::ChangesOthersMarker);
                    }
                    let readable = match (field, new) {
                        (_, Written::Deleted) => true,
                        (SHARING_PAUSE, Written::Str(json)) => {
                            serde_json::from_str::<Pause>(json).is_ok()
                        }
                        (SHARING_LEFT_AT, Written::Int(_)) => true,
                        _ => false,
                    };
                    if !readable {
                        return Err(Breach::Malformed { kind: "person" });
                    }
                } else if !made_now && owner != Some(person) {
                    return Err(Breach::ChangesOtherPerson);
                }
            }
            Collection::Devices => {
                if !made_now && self.owner_of_entry(obj, pending) != Some(person) {
                    return Err(Breach::ChangesOthersDevice);
                }
            }
            Collection::Ledger => {}
            Collection::Handoffs => {
                if is_answer_field(field) {
                    let mut overwritten = Vec::new();
                    for p in preds {
                        overwritten.push(
                            self.field_value_of(p, obj, field, pending)
                                .ok_or(Breach::Unresolved)?,
                        );
                    }
                    let open_at_creation = made_now
                        && field == "state"
                        && new.as_str() == Some(HandoffState::Open.key());
                    if !open_at_creation {
                        answers.entry(obj.clone()).or_default().push(AnswerWrite {
                            field: field.to_string(),
                            new: new.clone(),
                            overwritten,
                        });
                    }
                } else if !made_now && matches!(field, "item" | "stage" | "from" | "to") {
                    return Err(Breach::ChangesHandoffTerms);
                }
            }
            _ => return Err(Breach::Malformed { kind: kind(coll) }),
        }
        Ok(())
    }

    /// The answer a change gives to one handoff, judged once the change is read whole.
    fn check_answers(
        &self,
        person: PersonId,
        record: &OpKey,
        writes: &[AnswerWrite],
        pending: &Layer,
    ) -> Result<(), Breach> {
        let read = |field: &str| {
            self.read_field(record, field, pending)
                .and_then(|w| w.as_str().and_then(|s| Uuid::parse_str(s).ok()))
        };
        let (from, to) = (read("from"), read("to"));
        let as_to = to == Some(person);
        let as_from = from == Some(person);
        let allowed = |w: &AnswerWrite, as_to: bool| -> bool {
            match (w.field.as_str(), &w.new) {
                ("state", Written::Str(state)) => {
                    let state = state.parse::<HandoffState>().ok();
                    if as_to {
                        matches!(
                            state,
                            Some(
                                HandoffState::Accepted
                                    | HandoffState::Declined
                                    | HandoffState::Countered
                            )
                        )
                    } else {
                        // The proposer withdraws, or accepts the counter made to them.
                        state == Some(HandoffState::Withdrawn)
                            || (state == Some(HandoffState::Accepted)
                                && w.overwritten
                                    .iter()
                                    .any(|o| o.as_str() == Some(HandoffState::Countered.key())))
                    }
                }
                ("answered_by", Written::Str(by)) => Uuid::parse_str(by).ok() == Some(person),
                ("answered_at", Written::Int(_)) => true,
                ("counter", Written::Str(_) | Written::Deleted) => as_to,
                _ => false,
            }
        };
        let ok = |as_to: bool| writes.iter().all(|w| allowed(w, as_to));
        if (as_to && ok(true)) || (as_from && ok(false)) {
            Ok(())
        } else {
            Err(Breach::AnswersForOther)
        }
    }

    /// Where the object `obj` sits: made by the change, by the batch, or in the document.
    fn place_of(&mut self, obj: &ObjectId, pending: &Layer) -> Result<Place, Breach> {
        let key = match obj {
            ObjectId::Root => return Ok(Place::Root),
            ObjectId::Id(OpId(c, a)) => (*c, a.clone()),
        };
        if let Some(coll) = self.genesis_collection(&key) {
            return Ok(Place::Collection(coll));
        }
        if let Some(p) = pending
            .places
            .get(&key)
            .or_else(|| self.batch.places.get(&key))
        {
            return Ok(p.clone());
        }
        if let Some(p) = self.doc_places.get(&key) {
            return Ok(p.clone());
        }
        let place = self.doc_place(&key).ok_or(Breach::Unresolved)?;
        self.doc_places.insert(key, place.clone());
        Ok(place)
    }

    /// The object id of a collection in the document.
    fn collection_id(&self, coll: Collection) -> Option<&ObjId> {
        let slot = Collection::ALL.iter().position(|c| *c == coll)?;
        self.collection_ids[slot]
            .get_or_init(|| match self.doc.get(automerge::ROOT, coll.key()) {
                Ok(Some((automerge::Value::Object(ObjType::Map), id))) => Some(id),
                _ => None,
            })
            .as_ref()
    }

    /// The collection `key` is, when it is one the genesis change made: its ops follow
    /// the `schema` op, in the order of [`Collection::ALL`].
    fn genesis_collection(&self, key: &OpKey) -> Option<Collection> {
        if key.1 != self.genesis {
            return None;
        }
        let coll = *Collection::ALL.get(usize::try_from(key.0.checked_sub(2)?).ok()?)?;
        match self.collection_id(coll)? {
            ObjId::Id(c, a, _) if *c == key.0 && *a == key.1 => Some(coll),
            _ => None,
        }
    }

    /// The place of an object the document holds, from its path.
    fn doc_place(&self, key: &OpKey) -> Option<Place> {
        let (id, _) = self.doc.import(&format!("{}@{}", key.0, key.1)).ok()?;
        let path = self.doc.parents(&id).ok()?.path();
        let Some((_, automerge::Prop::Map(top))) = path.first() else {
            return Some(Place::Unknown);
        };
        let Some(coll) = Collection::ALL.into_iter().find(|c| c.key() == top) else {
            return Some(Place::Unknown);
        };
        let genesis = self.collection_id(coll)?;
        match path.get(1) {
            None if &id == genesis => Some(Place::Collection(coll)),
            // A map at the root under a collection's name that is not the genesis one.
            None => Some(Place::Unknown),
            Some((parent, automerge::Prop::Map(record))) if parent == genesis => {
                match path.get(2) {
                    None => Some(Place::Record(coll, record.clone())),
                    Some((ObjId::Id(c, a, _), automerge::Prop::Map(field))) => Some(Place::Inside(
                        coll,
                        record.clone(),
                        field.clone(),
                        (*c, a.clone()),
                    )),
                    Some(_) => Some(Place::Unknown),
                }
            }
            Some(_) => Some(Place::Unknown),
        }
    }

    /// The person a roster entry names, as the change sees it.
    fn owner_of_entry(&self, record: &OpKey, pending: &Layer) -> Option<PersonId> {
        self.read_field(record, "person", pending)
            .and_then(|w| w.as_str().and_then(|s| Uuid::parse_str(s).ok()))
    }

    /// Every value at a record key, in the batch and in the document, not yet overwritten.
    fn values_at(&self, coll: Collection, key: &str, pending: &Layer) -> Vec<(OpKey, Written)> {
        let mut out = Vec::new();
        let slot = (coll, key.to_string());
        let gone =
            |op: &OpKey| pending.overwritten.contains(op) || self.batch.overwritten.contains(op);
        for layer in [&self.batch, pending] {
            for op in layer.slots.get(&slot).into_iter().flatten() {
                if gone(op) {
                    continue;
                }
                if let Some((w, _)) = layer.values.get(op) {
                    out.push((op.clone(), w.clone()));
                }
            }
        }
        if let Some(coll_id) = self.collection_id(coll) {
            for (value, id) in self.doc.get_all(coll_id, key).unwrap_or_default() {
                if let ObjId::Id(c, a, _) = &id {
                    let op = (*c, a.clone());
                    if !gone(&op) {
                        out.push((op, Written::from_value(&value)));
                    }
                }
            }
        }
        out
    }

    /// The value an op wrote at a record key.
    fn value_of(
        &self,
        op: &OpKey,
        coll: Collection,
        key: &str,
        pending: &Layer,
    ) -> Option<Written> {
        if let Some((w, _)) = pending.values.get(op).or_else(|| self.batch.values.get(op)) {
            return Some(w.clone());
        }
        let coll_id = self.collection_id(coll)?;
        self.doc_value(op, coll_id, key)
    }

    /// The value an op wrote in a record's field.
    fn field_value_of(
        &self,
        op: &OpKey,
        record: &OpKey,
        field: &str,
        pending: &Layer,
    ) -> Option<Written> {
        if let Some((w, _)) = pending.values.get(op).or_else(|| self.batch.values.get(op)) {
            return Some(w.clone());
        }
        let (obj, _) = self
            .doc
            .import(&format!("{}@{}", record.0, record.1))
            .ok()?;
        self.doc_value(op, &obj, field)
    }

    /// The value a document op wrote: from the values at its key when it is still one of
    /// them, otherwise from the change that holds it.
    fn doc_value(&self, op: &OpKey, obj: &ObjId, key: &str) -> Option<Written> {
        for (value, id) in self.doc.get_all(obj, key).unwrap_or_default() {
            if matches!(&id, ObjId::Id(c, a, _) if *c == op.0 && *a == op.1) {
                return Some(Written::from_value(&value));
            }
        }
        // Overwritten since: rare (a concurrent write), so the slow way is fine.
        let id = self.doc.import_obj(&format!("{}@{}", op.0, op.1)).ok()?;
        let hash = self.doc.hash_for_opid(&id)?;
        let change = self.doc.get_change_by_hash(&hash)?;
        let expanded = change.decode();
        let n = usize::try_from(op.0.checked_sub(expanded.start_op.get())?).ok()?;
        expanded.operations.get(n).map(|o| Written::of(&o.action))
    }

    /// The value of a record's field as the change sees it: written by the change, by the
    /// batch, or in the document.
    fn read_field(&self, record: &OpKey, field: &str, pending: &Layer) -> Option<Written> {
        let k = (record.clone(), field.to_string());
        if let Some(w) = pending.fields.get(&k).or_else(|| self.batch.fields.get(&k)) {
            return Some(w.clone());
        }
        let (obj, _) = self
            .doc
            .import(&format!("{}@{}", record.0, record.1))
            .ok()?;
        let (value, _) = self.doc.get(&obj, field).ok()??;
        Some(Written::from_value(&value))
    }

    /// Whether the op `op` (in the document or the batch) is in the causal past of
    /// change `i`. Walks the dependency graph: only asked when a key is created where a
    /// value already is, which honest use meets only while pairing.
    fn precedes(&self, op: &OpKey, i: usize, pending: &Layer) -> bool {
        let target = match self.batch.values.get(op).or_else(|| pending.values.get(op)) {
            Some((_, j)) => self.changes[*j].change.hash(),
            None => {
                let Ok(id) = self.doc.import_obj(&format!("{}@{}", op.0, op.1)) else {
                    return false;
                };
                match self.doc.hash_for_opid(&id) {
                    Some(h) => h,
                    None => return false,
                }
            }
        };
        let mut stack: Vec<ChangeHash> = self.changes[i].change.deps().to_vec();
        let mut seen: HashSet<ChangeHash> = HashSet::new();
        while let Some(h) = stack.pop() {
            if h == target {
                return true;
            }
            if !seen.insert(h) {
                continue;
            }
            if let Some(&j) = self.index.get(&h) {
                stack.extend_from_slice(self.changes[j].change.deps());
            } else if let Some(meta) = self.doc.get_change_meta_by_hash(&h) {
                stack.extend(meta.deps);
            }
        }
        false
    }
}

/// A compact or sealed value, split as far as the rules need.
#[derive(Debug)]
enum Parsed {
    Compact {
        person: Option<PersonId>,
    },
    /// `sealed` is the text without the published key.
    Sealed {
        sealed: String,
        key: Option<String>,
    },
}

impl Parsed {
    fn person(&self) -> Option<PersonId> {
        match self {
            Parsed::Compact { person } => *person,
            Parsed::Sealed { sealed, .. } => {
                split_sealed(sealed).and_then(|s| Uuid::parse_str(s.person).ok())
            }
        }
    }
}

/// Parses a record value; `None` when it does not have a record's shape.
fn parse_value(text: &str, sealable: bool) -> Option<Parsed> {
    if text.starts_with(SEALED_TAG) {
        if !sealable {
            return None;
        }
        let value = split_sealed(text)?;
        value.date.parse::<chrono::NaiveDate>().ok()?;
        Uuid::parse_str(value.person).ok()?;
        let sealed = match value.key {
            // The key is the last part: everything before its separator is the sealed text.
            Some(key) => text.get(..text.len() - key.len() - 1)?.to_string(),
            None => text.to_string(),
        };
        return Some(Parsed::Sealed {
            sealed,
            key: value.key.map(str::to_string),
        });
    }
    if !text.starts_with(COMPACT_TAG) {
        return None;
    }
    let (date, person, json) = split_compact(text)?;
    date.parse::<chrono::NaiveDate>().ok()?;
    let person = Uuid::parse_str(person).ok()?;
    // Only that it is a JSON object: see the module docs for why not the record's type.
    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json).ok()?;
    Some(Parsed::Compact {
        person: Some(person),
    })
}

fn parse_person(key: &str) -> Option<PersonId> {
    Uuid::parse_str(key).ok()
}

fn is_compact(coll: Collection) -> bool {
    matches!(
        coll,
        Collection::CheckIns
            | Collection::Reflections
            | Collection::Done
            | Collection::Acks
            | Collection::Moments
    )
}

fn is_answer_field(field: &str) -> bool {
    matches!(field, "state" | "answered_by" | "answered_at" | "counter")
}

/// The record kind, in words, for messages.
fn kind(coll: Collection) -> &'static str {
    match coll {
        Collection::People => "person",
        Collection::Devices => "device",
        Collection::CheckIns => "check-in",
        Collection::Reflections => "reflection",
        Collection::Ledger => "ledger item",
        Collection::Done => "done entry",
        Collection::Acks => "acknowledgment",
        Collection::Handoffs => "handoff",
        Collection::Moments => "moment",
    }
}
