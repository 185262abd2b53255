//! Turns control calls into reads and writes of the documents.
//!
//! Everything here runs on the document owner's thread (see [`crate::actor`]) with
//! `&mut Docs`; it does no IO. A write returns the record it created and the documents it
//! touched, and the owner makes those durable before anyone hears about it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use hearth_core::doc::{Collection, DocError, DocKind, Docs, Sealable, SealedEntry};
use hearth_core::insights::SAFETY_SUPPORT;
use hearth_core::model::{
    Acknowledgment, Basic, BasicLevel, CheckIn, Device, DoneEntry, Handoff, HandoffState,
    ItemStatus, LedgerItem, Millis, Moment, Owners, Person, PersonId, Reflection, Target,
    TargetKind, ValidationError, Visibility, When,
};
use hearth_core::ops;
use serde_json::{json, Value};
use uuid::Uuid;

use hearth_api::{
    listed_by_default, ApiError, At, DocCall, ErrorCode, LogParams, PersonRef, RosterCall,
    RECORD_KINDS,
};

pub mod bundle;

/// What a handled call did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The result to send back.
    pub value: Value,
    /// Documents written, with the record kinds that changed in each.
    pub touched: BTreeMap<DocKind, BTreeSet<&'static str>>,
}

impl Outcome {
    fn read(value: Value) -> Outcome {
        Outcome {
            value,
            touched: BTreeMap::new(),
        }
    }

    fn wrote(value: Value, doc: DocKind, kind: &'static str) -> Outcome {
        let mut touched = BTreeMap::new();
        touched.insert(doc, BTreeSet::from([kind]));
        Outcome { value, touched }
    }
}

/// Maps document errors to the control API's structured errors.
pub fn api_error(e: DocError) -> ApiError {
    match e {
        DocError::Invalid(v) => invalid(v),
        DocError::NotFound { .. } => ApiError::new(
            ErrorCode::NotFound,
            e.to_string(),
            "`hearth log` and `hearth ledger list` show ids; a few characters are enough",
        ),
        DocError::Ambiguous { .. } => ApiError::new(
            ErrorCode::Ambiguous,
            e.to_string(),
            "type more characters of the id",
        ),
        other => ApiError::new(
            ErrorCode::Internal,
            other.to_string(),
            "nothing was changed; if this keeps happening, run `hearth status` and report it",
        ),
    }
}

fn invalid(v: ValidationError) -> ApiError {
    ApiError::new(
        ErrorCode::Invalid,
        v.to_string(),
        "nothing was changed; fix the value and try again (`--help` lists the allowed ones)",
    )
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Resolves `me`, `partner`, a name or an id prefix to a person.
pub fn resolve_person(docs: &Docs, who: &str) -> Result<PersonId, ApiError> {
    let people = docs.people();
    let wanted = who.trim().to_lowercase();
    if wanted == "me" {
        return Ok(docs.me);
    }
    if wanted == "partner" {
        return people
            .iter()
            .find(|p| p.id != docs.me)
            .map(|p| p.id)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::NotFound,
                    "no partner has joined this household yet",
                    "pair your partner's device with `hearth pair invite`",
                )
            });
    }
    let matches: Vec<&Person> = people
        .iter()
        .filter(|p| p.name.to_lowercase() == wanted || p.id.to_string().starts_with(&wanted))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.id),
        [] => Err(ApiError::new(
            ErrorCode::NotFound,
            format!("nobody called `{who}` is in this household"),
            "use `me`, `partner`, or a name shown by `hearth status`",
        )),
        _ => Err(ApiError::new(
            ErrorCode::Ambiguous,
            format!("`{who}` matches more than one person"),
            "use `me`, `partner`, or the person's id",
        )),
    }
}

fn person_or(docs: &Docs, who: &Option<PersonRef>, default: &str) -> Result<PersonId, ApiError> {
    resolve_person(docs, who.as_deref().unwrap_or(default))
}

/// The entry's time, refused if it lies in the future: `--at` is checked by the CLI too,
/// but a JSON client or a modified one reaches this directly.
fn when(at: &At, now: Millis) -> Result<When, ApiError> {
    ops::entry_when(at.at, at.utc_offset_min, now).map_err(ops_error)
}

fn ops_error(e: ops::OpsError) -> ApiError {
    ApiError::new(ErrorCode::Invalid, e.to_string(), e.hint())
}

fn new_id() -> Uuid {
    Uuid::new_v4()
}

fn resolve(docs: &Docs, coll: Collection, prefix: &str) -> Result<Uuid, ApiError> {
    docs.resolve(coll, prefix).map_err(api_error)
}

fn name_of(docs: &Docs, id: PersonId) -> String {
    docs.people()
        .into_iter()
        .find(|p| p.id == id)
        .map(|p| p.name)
        .unwrap_or_else(|| "someone".into())
}

/// Handles one call against the documents.
pub fn handle(docs: &mut Docs, call: DocCall, now: Millis) -> Result<Outcome, ApiError> {
    match call {
        DocCall::CheckinAdd(p) => {
            let mut checkin = CheckIn {
                id: new_id(),
                author: docs.me,
                when: when(&p.at, now)?,
                battery: p.battery,
                signs: p.signs,
                body: p.body,
                basics: p.basics,
                note: ops::optional_text(p.note),
                ask: ops::optional_text(p.ask),
                visibility: p.visibility.unwrap_or(Visibility::Shared),
                kept_to_self: BTreeSet::new(),
            };
            if !p.share_safety && checkin.visibility != Visibility::Private {
                checkin.keep_own_answers();
            }
            let kept = !checkin.kept_to_self.is_empty();
            // Support goes to the one who gave the answer, in the answer to their own
            // write: it never travels to the partner.
            let unsafe_now = checkin.basics.get(&Basic::Safety) == Some(&BasicLevel::No);
            let support = |value: &mut Value| {
                if unsafe_now {
                    value["support"] = Value::String(SAFETY_SUPPORT.to_string());
                }
            };
            if checkin.visibility == Visibility::RevealTogether {
                let mut outcome = add_sealed(docs, &checkin, now)?;
                support(&mut outcome.value);
                return Ok(outcome);
            }
            docs.add_checkin(&checkin, now).map_err(api_error)?;
            let doc = docs.doc_kind_for(checkin.visibility);
            let mut value = to_json(&checkin);
            support(&mut value);
            let mut outcome = Outcome::wrote(value, doc, "checkins");
            if kept {
                // The kept answers went into the private document.
                outcome
                    .touched
                    .entry(docs.private.kind())
                    .or_default()
                    .insert("checkins");
            }
            Ok(outcome)
        }
        DocCall::ReflectAdd(p) => {
            let reflection = Reflection {
                id: new_id(),
                author: docs.me,
                when: when(&p.at, now)?,
                energy: p.energy,
                safe: p.safe,
                aligned: p.aligned,
                note: ops::optional_text(p.note),
                visibility: p.visibility.unwrap_or(Visibility::Private),
            };
            if reflection.visibility == Visibility::RevealTogether {
                return add_sealed(docs, &reflection, now);
            }
            docs.add_reflection(&reflection, now).map_err(api_error)?;
            let doc = docs.doc_kind_for(reflection.visibility);
            Ok(Outcome::wrote(to_json(&reflection), doc, "reflections"))
        }
        DocCall::LedgerAdd(p) => {
            let default_owner = person_or(docs, &p.owner, "me")?;
            let mut owners = Owners::all(default_owner);
            for (stage, who) in &p.owners {
                owners.set(*stage, Some(resolve_person(docs, who)?));
            }
            let item = LedgerItem {
                id: new_id(),
                title: p.title.trim().to_string(),
                domain: p.domain,
                labour: p.labour,
                invisible: p.invisible,
                owners,
                cadence: p.cadence,
                minutes_per_week: p.minutes_per_week,
                weight: p.weight,
                good_enough: p.good_enough.unwrap_or_default(),
                status: ItemStatus::Active,
                agreed_by: BTreeSet::from([docs.me]),
                agreed_at: Some(p.at.at.unwrap_or(now)),
                created_by: docs.me,
                created_at: p.at.at.unwrap_or(now),
                created_utc_offset_min: p.at.utc_offset_min,
                paused_until: None,
            };
            let (item, offered) = docs
                .add_ledger_item_offering(
                    &item,
                    &mut std::iter::repeat_with(new_id),
                    when(&p.at, now)?,
                    now,
                )
                .map_err(api_error)?;
            Ok(item_with_offers(&item, &offered))
        }
        DocCall::LedgerList { all } => {
            let mut items: Vec<LedgerItem> = docs
                .ledger_items()
                .into_iter()
                .filter(|i| all || listed_by_default(i.status))
                .collect();
            items.sort_by(|a, b| (a.domain, &a.title).cmp(&(b.domain, &b.title)));
            Ok(Outcome::read(to_json(&items)))
        }
        DocCall::LedgerShow { id } => {
            let id = resolve(docs, Collection::Ledger, &id)?;
            let item = docs.ledger_item(id).map_err(api_error)?;
            let done: Vec<DoneEntry> = docs
                .done_entries()
                .into_iter()
                .filter(|d| d.item == Some(id))
                .collect();
            let handoffs: Vec<Handoff> = docs
                .handoffs()
                .into_iter()
                .filter(|h| h.item == id)
                .collect();
            let acks: Vec<Acknowledgment> = docs
                .acks()
                .into_iter()
                .filter(|a| a.target.kind == TargetKind::Item && a.target.id == id)
                .collect();
            Ok(Outcome::read(
                json!({ "item": item, "done": done, "handoffs": handoffs, "acks": acks }),
            ))
        }
        DocCall::LedgerDone(p) => {
            let item = match &p.item {
                Some(prefix) => Some(resolve(docs, Collection::Ledger, prefix)?),
                None => None,
            };
            let done = DoneEntry {
                id: new_id(),
                item,
                label: ops::optional_text(p.label),
                by: person_or(docs, &p.by, "me")?,
                when: when(&p.at, now)?,
                minutes: p.minutes,
                note: ops::optional_text(p.note),
            };
            docs.add_done(&done, now).map_err(api_error)?;
            let mut value = to_json(&done);
            // The item's title, so the answer can say what was done rather than an id.
            if let Some(item) = done.item.and_then(|i| docs.ledger_item(i).ok()) {
                value["item_title"] = Value::String(item.title);
            }
            Ok(Outcome::wrote(value, DocKind::Household, "done"))
        }
        DocCall::LedgerAck(p) => {
            let coll = match p.target_kind {
                TargetKind::Item => Collection::Ledger,
                TargetKind::Done => Collection::Done,
                TargetKind::CheckIn => Collection::CheckIns,
                TargetKind::Moment => Collection::Moments,
            };
            let target = resolve(docs, coll, &p.target)?;
            let ack = Acknowledgment {
                id: new_id(),
                from: docs.me,
                to: person_or(docs, &p.to, "partner")?,
                target: Target {
                    kind: p.target_kind,
                    id: target,
                },
                kind: p.kind,
                when: when(&p.at, now)?,
                note: ops::optional_text(p.note),
            };
            docs.add_ack(&ack, now).map_err(api_error)?;
            Ok(Outcome::wrote(to_json(&ack), DocKind::Household, "acks"))
        }
        DocCall::LedgerHandoff(p) => {
            let item = resolve(docs, Collection::Ledger, &p.item)?;
            let handoff = Handoff {
                id: new_id(),
                item,
                stage: p.stage,
                from: docs.me,
                to: person_or(docs, &p.to, "partner")?,
                when: when(&p.at, now)?,
                note: ops::optional_text(p.note),
                state: HandoffState::Open,
                answered_by: None,
                answered_at: None,
                counter: None,
            };
            docs.propose_handoff(&handoff, now).map_err(api_error)?;
            Ok(Outcome::wrote(
                to_json(&handoff),
                DocKind::Household,
                "handoffs",
            ))
        }
        DocCall::LedgerAnswer(p) => {
            let id = resolve(docs, Collection::Handoffs, &p.handoff)?;
            let me = docs.me;
            let at = p.at.at.unwrap_or(now);
            let handoff = docs
                .answer_handoff(id, p.answer, me, p.counter, at)
                .map_err(|e| match e {
                    // The generic hint ("fix the value") does not help here: say where
                    // the handoff stands and what can be done instead.
                    DocError::Invalid(v) => ApiError::new(
                        ErrorCode::Invalid,
                        v.to_string(),
                        "nothing was changed; `hearth ledger show ITEM` shows who holds each stage and every handoff's state, and `hearth ledger handoff ITEM --stage STAGE` offers a stage anew",
                    ),
                    other => api_error(other),
                })?;
            let mut outcome = Outcome::wrote(to_json(&handoff), DocKind::Household, "handoffs");
            if p.answer == HandoffState::Accepted {
                outcome
                    .touched
                    .entry(DocKind::Household)
                    .or_default()
                    .insert("ledger");
            }
            Ok(outcome)
        }
        DocCall::LedgerEdit(p) => {
            let id = resolve(docs, Collection::Ledger, &p.id)?;
            let mut owners = Vec::new();
            for (stage, who) in &p.owners {
                owners.push((*stage, resolve_person(docs, who)?));
            }
            let edit = hearth_core::doc::ItemEdit {
                title: p.title.filter(|t| !t.trim().is_empty()),
                owners,
                cadence: p.cadence,
                weight: p.weight,
                minutes_per_week: p.minutes_per_week,
                good_enough: p.good_enough,
            };
            let me = docs.me;
            let (item, offered) = docs
                .edit_ledger_item(
                    id,
                    &edit,
                    me,
                    &mut std::iter::repeat_with(new_id),
                    when(&p.at, now)?,
                    now,
                )
                .map_err(api_error)?;
            Ok(item_with_offers(&item, &offered))
        }
        DocCall::LedgerPause { id, until } => {
            let id = resolve(docs, Collection::Ledger, &id)?;
            let item = docs.pause_ledger_item(id, until, now).map_err(api_error)?;
            Ok(Outcome::wrote(to_json(&item), DocKind::Household, "ledger"))
        }
        DocCall::LedgerResume { id } => {
            let id = resolve(docs, Collection::Ledger, &id)?;
            let item = docs.resume_ledger_item(id, now).map_err(api_error)?;
            Ok(Outcome::wrote(to_json(&item), DocKind::Household, "ledger"))
        }
        DocCall::LedgerAgree { id, at } => {
            let id = resolve(docs, Collection::Ledger, &id)?;
            let me = docs.me;
            let (item, everyone) = docs
                .agree_ledger_item(id, me, at.at.unwrap_or(now), now)
                .map_err(api_error)?;
            let mut value = to_json(&item);
            value["agreed_by_everyone"] = Value::Bool(everyone);
            Ok(Outcome::wrote(value, DocKind::Household, "ledger"))
        }
        DocCall::LedgerRetire { id, at } => {
            let id = resolve(docs, Collection::Ledger, &id)?;
            let item = docs
                .update_ledger_item(id, at.at.unwrap_or(now), |i| i.status = ItemStatus::Retired)
                .map_err(api_error)?;
            Ok(Outcome::wrote(to_json(&item), DocKind::Household, "ledger"))
        }
        DocCall::MomentAdd(p) => {
            let moment = Moment {
                id: new_id(),
                kind: p.kind,
                started_by: person_or(docs, &p.started_by, "me")?,
                when: when(&p.at, now)?,
                note: ops::optional_text(p.note),
            };
            docs.add_moment(&moment, now).map_err(api_error)?;
            Ok(Outcome::wrote(
                to_json(&moment),
                DocKind::Household,
                "moments",
            ))
        }
        DocCall::Log(p) => log(docs, &p, now).map(Outcome::read),
        DocCall::Export => Ok(Outcome::read(export(docs))),
        DocCall::Import { data } => import(docs, &data, now),
        DocCall::RoguePut {
            collection,
            key,
            fields,
        } => rogue::put(docs, &collection, &key, &fields, now),
        DocCall::RogueDelete { collection, key } => rogue::delete(docs, &collection, &key, now),
        DocCall::Insights {
            weeks,
            include_private,
            utc_offset_min,
        } => insights(docs, weeks, include_private, utc_offset_min, now).map(Outcome::read),
        DocCall::Today {
            utc_offset_min,
            mark_seen,
        } => {
            let today = When::from_utc(now, utc_offset_min).date;
            let view = hearth_core::today::for_you(docs, today, docs.for_you_seen_at());
            let mut value = to_json(&view);
            value["names"] = json!(docs
                .people()
                .into_iter()
                .map(|p| (p.id.to_string(), p.name))
                .collect::<BTreeMap<_, _>>());
            if !mark_seen {
                return Ok(Outcome::read(value));
            }
            let before = docs.private.heads();
            docs.set_for_you_seen_at(now, now).map_err(api_error)?;
            if docs.private.heads() == before {
                return Ok(Outcome::read(value));
            }
            Ok(Outcome {
                value,
                touched: BTreeMap::from([(docs.private.kind(), BTreeSet::new())]),
            })
        }
        DocCall::Together { utc_offset_min } => {
            let today = When::from_utc(now, utc_offset_min).date;
            Ok(Outcome::read(to_json(&hearth_core::together::together(
                docs, today,
            ))))
        }
        DocCall::Reply { ask, text, at } => {
            let checkin = resolve(docs, Collection::CheckIns, &ask)?;
            let ack = hearth_core::today::reply(docs, new_id(), checkin, &text, when(&at, now)?)
                .map_err(api_error)?;
            docs.add_ack(&ack, now).map_err(api_error)?;
            Ok(Outcome::wrote(to_json(&ack), DocKind::Household, "acks"))
        }
    }
}

/// A written ledger item, with the handoffs it offered to the partner (if any).
fn item_with_offers(item: &LedgerItem, offered: &[Handoff]) -> Outcome {
    let mut value = to_json(item);
    let mut kinds = BTreeSet::from(["ledger"]);
    if !offered.is_empty() {
        value["offered"] = to_json(&offered);
        kinds.insert("handoffs");
    }
    Outcome {
        value,
        touched: BTreeMap::from([(DocKind::Household, kinds)]),
    }
}

/// What a modified client can do to the household document: raw writes with no checks.
/// Only for tests that play the attacker, behind `HEARTH_TEST_ROGUE=1`.
pub(crate) mod rogue {
    use super::*;
    use automerge::transaction::{CommitOptions, Transactable};
    use automerge::{ObjType, ReadDoc, ScalarValue};

    fn allowed() -> Result<(), ApiError> {
        if std::env::var_os("HEARTH_TEST_ROGUE").is_some_and(|v| v == "1") {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::Invalid,
                "raw writes are for tests that play a rogue device",
                "nothing was changed; start hearthd with HEARTH_TEST_ROGUE=1 in a test",
            ))
        }
    }

    fn collection(docs: &Docs, name: &str) -> Result<automerge::ObjId, ApiError> {
        match docs.household.automerge().get(automerge::ROOT, name) {
            Ok(Some((automerge::Value::Object(ObjType::Map), id))) => Ok(id),
            _ => Err(ApiError::new(
                ErrorCode::NotFound,
                format!("no collection `{name}`"),
                "name one of the household's collections",
            )),
        }
    }

    fn scalar(value: &Value) -> ScalarValue {
        match value {
            Value::Bool(b) => ScalarValue::Boolean(*b),
            Value::Number(n) => n
                .as_i64()
                .map(ScalarValue::Int)
                .unwrap_or_else(|| ScalarValue::F64(n.as_f64().unwrap_or(0.0))),
            Value::String(s) => ScalarValue::Str(s.as_str().into()),
            Value::Null => ScalarValue::Null,
            other => ScalarValue::Str(other.to_string().into()),
        }
    }

    pub(super) fn put(
        docs: &mut Docs,
        name: &str,
        key: &str,
        fields: &serde_json::Map<String, Value>,
        now: Millis,
    ) -> Result<Outcome, ApiError> {
        allowed()?;
        let coll = collection(docs, name)?;
        // `$actor_key` (hex): write under an actor id that claims another device's key,
        // as a client that tries to pass its change off as someone else's would.
        let own_actor = docs.household.automerge().get_actor().clone();
        if let Some(hex) = fields.get("$actor_key").and_then(Value::as_str) {
            let key = hearth_core::roster::parse_key(hex)
                .map_err(|_| internal_error("`$actor_key` is not a device key"))?;
            docs.household
                .automerge_mut()
                .set_actor(hearth_core::provenance::actor_for(
                    &hearth_core::identity::DeviceId::from_public_key(&key),
                    rand::random(),
                ));
        }
        let written = docs.household.automerge_mut().transact_with(
            |_| CommitOptions::default().with_time(now / 1000),
            |tx| -> Result<(), automerge::AutomergeError> {
                // `$value`: one scalar in place of the record, as compact records are.
                if let Some(value) = fields.get("$value") {
                    tx.put(&coll, key, scalar(value))?;
                    return Ok(());
                }
                // `$append`: text added to the scalar already there, as publishing a
                // sealed answer's key does.
                if let Some(tail) = fields.get("$append").and_then(Value::as_str) {
                    let current = match tx.get(&coll, key)? {
                        Some((automerge::Value::Scalar(s), _)) => match s.as_ref() {
                            ScalarValue::Str(text) => text.to_string(),
                            _ => String::new(),
                        },
                        _ => String::new(),
                    };
                    tx.put(&coll, key, format!("{current}{tail}"))?;
                    return Ok(());
                }
                let obj = match tx.get(&coll, key)? {
                    Some((automerge::Value::Object(ObjType::Map), id)) => id,
                    _ => tx.put_object(&coll, key, ObjType::Map)?,
                };
                for (field, value) in fields.iter().filter(|(f, _)| !f.starts_with('$')) {
                    tx.put(&obj, field.as_str(), scalar(value))?;
                }
                Ok(())
            },
        );
        docs.household.automerge_mut().set_actor(own_actor);
        written.map_err(|f| internal_error(&f.error.to_string()))?;
        Ok(Outcome::wrote(Value::Null, DocKind::Household, "rogue"))
    }

    /// Whether this daemon plays a rogue device: it then applies whatever peers send
    /// without checking who wrote it, and so passes forged changes on, as a modified
    /// client could.
    pub(crate) fn relays_unchecked() -> bool {
        static ROGUE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *ROGUE.get_or_init(|| allowed().is_ok())
    }

    pub(super) fn delete(
        docs: &mut Docs,
        name: &str,
        key: &str,
        now: Millis,
    ) -> Result<Outcome, ApiError> {
        allowed()?;
        let coll = collection(docs, name)?;
        docs.household
            .automerge_mut()
            .transact_with(
                |_| CommitOptions::default().with_time(now / 1000),
                |tx| tx.delete(&coll, key),
            )
            .map_err(|f| internal_error(&f.error.to_string()))?;
        Ok(Outcome::wrote(Value::Null, DocKind::Household, "rogue"))
    }

    fn internal_error(message: &str) -> ApiError {
        ApiError::new(
            ErrorCode::Internal,
            format!("the raw write failed: {message}"),
            "nothing was changed",
        )
    }
}

/// Writes an answer sealed until the partner answers the same day, under a key made for
/// it alone. The answer says whether it waits, or opens at once because the partner's
/// answer is already here (the owner publishes the key in this same batch).
fn add_sealed<R: Sealable>(docs: &mut Docs, record: &R, now: Millis) -> Result<Outcome, ApiError> {
    // From the operating system's random source: nothing but this key opens the answer.
    let key = age::x25519::Identity::generate();
    docs.add_sealed(record, &key, now).map_err(api_error)?;
    let kind = R::COLLECTION.key();
    let mut value = to_json(record);
    let opens_now = docs.reveals_due().iter().any(|(_, id)| *id == record.id());
    value["waiting_for_partner"] = Value::Bool(!opens_now);
    let mut touched = BTreeMap::new();
    touched.insert(DocKind::Household, BTreeSet::from([kind]));
    touched.insert(docs.private.kind(), BTreeSet::from([kind]));
    Ok(Outcome { value, touched })
}

fn insights(
    docs: &Docs,
    weeks: Option<u32>,
    include_private: bool,
    utc_offset_min: i32,
    now: Millis,
) -> Result<Value, ApiError> {
    use hearth_core::insights::{compute, InsightInputs, Params};
    let today = When::from_utc(now, utc_offset_min).date;
    let mut params = Params::default();
    if let Some(weeks) = weeks {
        params.weeks = weeks;
    }
    let invalid = |e: hearth_core::insights::InsightsError| {
        ApiError::new(ErrorCode::Invalid, e.to_string(), "try a smaller --weeks")
    };
    params.validate().map_err(invalid)?;
    let since = today - chrono::Duration::days(i64::from(params.history_days()));
    let inputs = InsightInputs::from_docs_since(docs, include_private, since);
    let report = compute(&inputs, today, &params).map_err(invalid)?;
    Ok(to_json(&report))
}

/// One timeline entry.
fn entry(
    kind: &'static str,
    id: Uuid,
    when: &When,
    person: PersonId,
    summary: String,
    record: Value,
    docs: &Docs,
) -> Value {
    json!({
        "kind": kind,
        "id": id,
        "at": when.at,
        "date": when.date,
        "utc_offset_min": when.utc_offset_min,
        "person": name_of(docs, person),
        "person_id": person,
        "summary": summary,
        "record": record,
    })
}

fn log(docs: &Docs, p: &LogParams, now: Millis) -> Result<Value, ApiError> {
    for kind in &p.kinds {
        if !RECORD_KINDS.contains(&kind.as_str()) {
            return Err(ApiError::new(
                ErrorCode::Invalid,
                format!("`{kind}` is not a record kind"),
                format!("use one of: {}", RECORD_KINDS.join(", ")),
            ));
        }
    }
    let person = match &p.person {
        Some(who) => Some(resolve_person(docs, who)?),
        None => None,
    };
    let wants = |kind: &str| p.kinds.is_empty() || p.kinds.iter().any(|k| k == kind);
    let in_range = |date: NaiveDate| {
        p.from.is_none_or(|from| date >= from) && p.to.is_none_or(|to| date <= to)
    };
    let by = |id: PersonId| person.is_none_or(|p| p == id);
    let mut entries: Vec<(Millis, Value)> = Vec::new();
    // Answers still sealed: this person's own read as theirs with a note that they
    // wait, the partner's show only that they exist.
    let sealed = docs.sealed();
    let waiting: BTreeSet<Uuid> = sealed
        .iter()
        .filter(|e| e.author == docs.me)
        .map(|e| e.id)
        .collect();
    let partner_name = docs
        .people()
        .into_iter()
        .find(|x| x.id != docs.me)
        .map(|x| x.name)
        .unwrap_or_else(|| "your partner".into());
    // This person's answers that opened a day ago or more while the partner's answer
    // for that day is still sealed here: said plainly, without guessing why.
    let theirs_late: BTreeMap<Uuid, NaiveDate> = docs
        .waiting_for_theirs(now)
        .into_iter()
        .map(|w| (w.id, w.date))
        .collect();
    let tag = |id: Uuid, v: Visibility| {
        if waiting.contains(&id) {
            format!(" (sealed until {partner_name} answers the same day)")
        } else if let Some(date) = theirs_late.get(&id) {
            format!(
                "{} · still waiting for {partner_name}'s answer from {} to open",
                visibility_tag(v),
                date.format("%A %-d %B")
            )
        } else {
            visibility_tag(v).to_string()
        }
    };
    // The same, for scripts: on each of this person's reveal-together answers.
    let mark_late = |record: &mut Value, author: PersonId, id: Uuid, v: Visibility| {
        if author == docs.me && v == Visibility::RevealTogether {
            record["waiting_for_theirs"] = Value::Bool(theirs_late.contains_key(&id));
        }
    };
    for e in sealed.iter().filter(|e| e.author != docs.me) {
        let kind = e.collection.key();
        if wants(kind) && by(e.author) && in_range(e.date) {
            let when = When {
                at: e.at,
                date: e.date,
                utc_offset_min: 0,
            };
            let summary = format!("sealed: opens once you have answered for {} too", e.date);
            entries.push((
                e.at,
                entry(kind, e.id, &when, e.author, summary, sealed_json(e), docs),
            ));
        }
    }
    let items: BTreeMap<Uuid, String> = docs
        .ledger_items()
        .into_iter()
        .map(|i| (i.id, i.title))
        .collect();
    if wants("checkins") {
        for c in docs.checkins() {
            if by(c.author) && in_range(c.when.date) {
                // The ask is for the partner, so it shows where they look, not only in JSON.
                let ask = c
                    .ask
                    .as_deref()
                    .map(|a| format!(" · asks: “{a}”"))
                    .unwrap_or_default();
                let summary = format!("battery {}%{}{ask}", c.battery, tag(c.id, c.visibility));
                let mut e = entry(
                    "checkins",
                    c.id,
                    &c.when,
                    c.author,
                    summary,
                    to_json(&c),
                    docs,
                );
                mark_late(&mut e, c.author, c.id, c.visibility);
                entries.push((c.when.at, e));
            }
        }
    }
    if wants("reflections") {
        for r in docs.reflections() {
            if by(r.author) && in_range(r.when.date) {
                let summary = format!(
                    "more energy: {}, safe: {}, aligned: {}{}",
                    r.energy,
                    r.safe,
                    r.aligned,
                    tag(r.id, r.visibility)
                );
                let mut e = entry(
                    "reflections",
                    r.id,
                    &r.when,
                    r.author,
                    summary,
                    to_json(&r),
                    docs,
                );
                mark_late(&mut e, r.author, r.id, r.visibility);
                entries.push((r.when.at, e));
            }
        }
    }
    if wants("done") {
        for d in docs.done_entries() {
            if by(d.by) && in_range(d.when.date) {
                let what = d
                    .item
                    .and_then(|i| items.get(&i).cloned())
                    .or_else(|| d.label.clone())
                    .unwrap_or_default();
                entries.push((
                    d.when.at,
                    entry(
                        "done",
                        d.id,
                        &d.when,
                        d.by,
                        format!("did {what}"),
                        to_json(&d),
                        docs,
                    ),
                ));
            }
        }
    }
    if wants("acks") {
        for a in docs.acks() {
            if by(a.from) && in_range(a.when.date) {
                let summary = format!("{} to {}", a.kind, name_of(docs, a.to));
                entries.push((
                    a.when.at,
                    entry("acks", a.id, &a.when, a.from, summary, to_json(&a), docs),
                ));
            }
        }
    }
    if wants("handoffs") {
        for h in docs.handoffs() {
            if by(h.from) && in_range(h.when.date) {
                let what = items.get(&h.item).cloned().unwrap_or_default();
                let summary = format!("offered {} of {what} ({})", h.stage, h.state);
                entries.push((
                    h.when.at,
                    entry(
                        "handoffs",
                        h.id,
                        &h.when,
                        h.from,
                        summary,
                        to_json(&h),
                        docs,
                    ),
                ));
            }
        }
    }
    if wants("moments") {
        for m in docs.moments() {
            if by(m.started_by) && in_range(m.when.date) {
                entries.push((
                    m.when.at,
                    entry(
                        "moments",
                        m.id,
                        &m.when,
                        m.started_by,
                        format!("a {} moment", m.kind),
                        to_json(&m),
                        docs,
                    ),
                ));
            }
        }
    }
    if wants("ledger") {
        for i in docs.ledger_items() {
            let w = i.created();
            if by(i.created_by) && in_range(w.date) {
                let summary = format!("added {}", i.title);
                entries.push((
                    i.created_at,
                    entry("ledger", i.id, &w, i.created_by, summary, to_json(&i), docs),
                ));
            }
        }
    }
    entries.sort_by_key(|(at, _)| *at);
    if let Some(limit) = p.limit {
        let skip = entries.len().saturating_sub(limit);
        entries.drain(..skip);
    }
    Ok(Value::Array(entries.into_iter().map(|(_, v)| v).collect()))
}

/// An answer this device cannot read yet: that it exists, by whom and when, nothing more.
fn sealed_json(e: &SealedEntry) -> Value {
    json!({
        "id": e.id,
        "kind": e.collection.key(),
        "author": e.author,
        "date": e.date,
        "at": e.at,
        "visibility": Visibility::RevealTogether,
        "sealed": true,
    })
}

fn visibility_tag(v: Visibility) -> &'static str {
    match v {
        Visibility::Private => " (private)",
        Visibility::Shared => "",
        Visibility::RevealTogether => " (revealed together)",
    }
}

/// The export format's name and version.
pub const EXPORT_FORMAT: &str = "hearth-export";
/// Bumped when the export shape changes incompatibly.
pub const EXPORT_VERSION: u64 = 1;

fn export(docs: &Docs) -> Value {
    let reflections = docs.reflections();
    json!({
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "records": {
            "people": docs.people(),
            "devices": docs.devices(),
            "checkins": docs.checkins(),
            "reflections": reflections,
            "ledger": docs.ledger_items(),
            "done": docs.done_entries(),
            "acks": docs.acks(),
            "handoffs": docs.handoffs(),
            "moments": docs.moments(),
            // The partner's answers still sealed: only that they exist. This person's
            // own are among `checkins` and `reflections`, readable.
            "sealed": docs
                .sealed()
                .iter()
                .filter(|e| e.author != docs.me)
                .map(sealed_json)
                .collect::<Vec<_>>(),
        }
    })
}

fn import_error(message: impl Into<String>) -> ApiError {
    ApiError::new(
        ErrorCode::Invalid,
        message,
        "nothing was imported; the file should come from `hearth export`",
    )
}

fn records<T: serde::de::DeserializeOwned>(data: &Value, kind: &str) -> Result<Vec<T>, ApiError> {
    match data.get("records").and_then(|r| r.get(kind)) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| import_error(format!("the `{kind}` records could not be read: {e}"))),
    }
}

/// Imports a `hearth export` file, all or nothing. Records already present with the same
/// content are skipped; a record whose id exists with different content is a conflict and
/// stops the import before anything is written.
///
/// Only this person's own records come in: a new record whose author (`author`, `by`,
/// `from`, `started_by`, a handoff's `answered_by`) is someone else, or a new person
/// record other than this person's, refuses the whole import. Another person's records
/// reach this device from their own devices, where their authorship can be proven.
fn import(docs: &mut Docs, data: &Value, now: Millis) -> Result<Outcome, ApiError> {
    if data.get("format").and_then(Value::as_str) != Some(EXPORT_FORMAT) {
        return Err(import_error("this file is not a Hearth export"));
    }
    let version = data.get("version").and_then(Value::as_u64).unwrap_or(0);
    if version != EXPORT_VERSION {
        return Err(import_error(format!(
            "this export has version {version}, and this Hearth reads version {EXPORT_VERSION}"
        )));
    }
    let people: Vec<Person> = records(data, "people")?;
    // Answers a check-in's author kept to themselves (`kept_to_self`) go only to the
    // author's own devices: into another person's household they come without them.
    let checkins: Vec<CheckIn> = records::<CheckIn>(data, "checkins")?
        .into_iter()
        .map(|c| {
            if c.author == docs.me {
                c
            } else {
                c.split_own().0
            }
        })
        .collect();
    let reflections: Vec<Reflection> = records(data, "reflections")?;
    let ledger: Vec<LedgerItem> = records(data, "ledger")?;
    let done: Vec<DoneEntry> = records(data, "done")?;
    let acks: Vec<Acknowledgment> = records(data, "acks")?;
    let handoffs: Vec<Handoff> = records(data, "handoffs")?;
    let moments: Vec<Moment> = records(data, "moments")?;

    // Work on a copy, so that a failure half way leaves the real documents untouched.
    let mut scratch = docs.clone();
    let mut conflicts = Vec::new();
    let mut foreign = Vec::new();
    let mut added = 0usize;
    let mut touched: BTreeMap<DocKind, BTreeSet<&'static str>> = BTreeMap::new();
    let me = docs.me;

    // `$authors` names the people a record speaks for. A record that would be written
    // is checked against them before it is written, and one that speaks for anyone
    // else is set aside: the import is then refused whole and the scratch copy dropped.
    macro_rules! merge {
        ($list:expr, $coll:expr, $existing:expr, $authors:expr, $add:expr, $doc:expr) => {
            for record in &$list {
                match $existing(&scratch, record) {
                    Some(current) if current == *record => {}
                    Some(_) => conflicts.push(format!("{} {}", $coll.key(), record.id)),
                    None if $authors(record).into_iter().any(|p: PersonId| p != me) => {
                        foreign.push(format!("{} {}", $coll.key(), record.id));
                    }
                    None => {
                        $add(&mut scratch, record).map_err(|e: DocError| {
                            import_error(format!("{} {}: {}", $coll.key(), record.id, e))
                        })?;
                        touched
                            .entry($doc(&scratch, record))
                            .or_default()
                            .insert($coll.key());
                        added += 1;
                    }
                }
            }
        };
    }

    merge!(
        people,
        Collection::People,
        |d: &Docs, r: &Person| d.people().into_iter().find(|p| p.id == r.id),
        |r: &Person| [r.id],
        |d: &mut Docs, r: &Person| d.add_person(r, now),
        household
    );
    merge!(
        ledger,
        Collection::Ledger,
        |d: &Docs, r: &LedgerItem| d.ledger_item(r.id).ok(),
        // Ledger items are the household's: either person may add them.
        |_: &LedgerItem| -> [PersonId; 0] { [] },
        |d: &mut Docs, r: &LedgerItem| {
            r.validate()?;
            d.household.put(r, now)
        },
        household
    );
    merge!(
        checkins,
        Collection::CheckIns,
        |d: &Docs, r: &CheckIn| stored::<CheckIn>(d, &r.id.to_string())
            .map(|c| d.with_own(c))
            .or_else(|| sealed_here(d, r)),
        |r: &CheckIn| [r.author],
        |d: &mut Docs, r: &CheckIn| {
            if r.visibility == Visibility::Private && r.author != d.me {
                // Another person's private entry cannot be in this device's export.
                return Err(DocError::from(ValidationError::Invalid {
                    field: "visibility",
                    reason: "a private check-in of someone else cannot be imported here".into(),
                }));
            }
            if r.visibility == Visibility::RevealTogether {
                return import_answer(d, r, now);
            }
            d.add_checkin(r, now)
        },
        |d: &Docs, r: &CheckIn| d.doc_kind_for(r.visibility)
    );
    merge!(
        reflections,
        Collection::Reflections,
        |d: &Docs, r: &Reflection| stored(d, &r.id.to_string()).or_else(|| sealed_here(d, r)),
        |r: &Reflection| [r.author],
        |d: &mut Docs, r: &Reflection| {
            if r.visibility == Visibility::Private && r.author != d.me {
                return Err(DocError::from(ValidationError::Invalid {
                    field: "visibility",
                    reason: "a private reflection of someone else cannot be imported here".into(),
                }));
            }
            if r.visibility == Visibility::RevealTogether {
                return import_answer(d, r, now);
            }
            d.add_reflection(r, now)
        },
        |d: &Docs, r: &Reflection| d.doc_kind_for(r.visibility)
    );
    merge!(
        done,
        Collection::Done,
        |d: &Docs, r: &DoneEntry| d
            .household
            .get::<DoneEntry>(&r.id.to_string())
            .ok()
            .flatten(),
        |r: &DoneEntry| [r.by],
        |d: &mut Docs, r: &DoneEntry| d.add_done(r, now),
        household
    );
    merge!(
        moments,
        Collection::Moments,
        |d: &Docs, r: &Moment| d.household.get::<Moment>(&r.id.to_string()).ok().flatten(),
        |r: &Moment| [r.started_by],
        |d: &mut Docs, r: &Moment| d.add_moment(r, now),
        household
    );
    merge!(
        handoffs,
        Collection::Handoffs,
        |d: &Docs, r: &Handoff| d.household.get::<Handoff>(&r.id.to_string()).ok().flatten(),
        // An answer to a handoff is the answerer's, so it counts as theirs too.
        |r: &Handoff| std::iter::once(r.from).chain(r.answered_by),
        |d: &mut Docs, r: &Handoff| {
            r.validate()?;
            if d.ledger_item(r.item).is_err() {
                return Err(DocError::from(ValidationError::UnknownReference {
                    field: "item",
                    id: r.item.to_string(),
                }));
            }
            d.household.put(r, now)
        },
        household
    );
    merge!(
        acks,
        Collection::Acks,
        |d: &Docs, r: &Acknowledgment| d
            .household
            .get::<Acknowledgment>(&r.id.to_string())
            .ok()
            .flatten(),
        |r: &Acknowledgment| [r.from],
        |d: &mut Docs, r: &Acknowledgment| d.add_ack(r, now),
        household
    );

    if !foreign.is_empty() {
        let shown: Vec<&str> = foreign.iter().take(5).map(String::as_str).collect();
        let more = match foreign.len() - shown.len() {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        return Err(ApiError::new(
            ErrorCode::Invalid,
            format!(
                "{} record(s) in the file were written by someone else, and an import brings in only your own: {}{more}",
                foreign.len(),
                shown.join(", ")
            ),
            "nothing was imported; take those records out of the file and import it again. Your partner's entries reach you from their own devices when you sync",
        ));
    }
    if !conflicts.is_empty() {
        let shown: Vec<&String> = conflicts.iter().take(5).collect();
        return Err(ApiError::new(
            ErrorCode::Invalid,
            format!(
                "{} record(s) in the file have the same id as different records here: {}",
                conflicts.len(),
                shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ),
            "nothing was imported; this file may come from another household, or the records were edited since it was exported",
        ));
    }
    // This person's own reveal-together answers keep their new keys in the private
    // document, and their kept answers (`kept_to_self`) go there too, so it must be made
    // durable with the household.
    let sealed_own = checkins.iter().any(|c| {
        c.author == me && (c.visibility == Visibility::RevealTogether || !c.kept_to_self.is_empty())
    }) || reflections
        .iter()
        .any(|r| r.visibility == Visibility::RevealTogether && r.author == me);
    if sealed_own && touched.contains_key(&DocKind::Household) {
        touched.entry(scratch.private.kind()).or_default();
    }
    *docs = scratch;
    Ok(Outcome {
        value: json!({ "imported": added }),
        touched,
    })
}

fn household<T>(_: &Docs, _: &T) -> DocKind {
    DocKind::Household
}

/// An answer that is here sealed, unreadable to this device, counts as already here:
/// an import must never overwrite it with text from a file.
/// One record by its key, from whichever of the two documents holds it. A keyed read,
/// so checking a whole import file for conflicts stays linear.
fn stored<R: hearth_core::doc::Record>(docs: &Docs, key: &str) -> Option<R> {
    docs.household
        .get::<R>(key)
        .ok()
        .flatten()
        .or_else(|| docs.private.get::<R>(key).ok().flatten())
}

fn sealed_here<R: Sealable + Clone>(docs: &Docs, record: &R) -> Option<R> {
    docs.household
        .contains(R::COLLECTION, &record.key())
        .then(|| record.clone())
}

/// Imports one of this person's reveal-together answers: it is sealed again under a
/// fresh key, and opens by the usual rule. Another person's answer never gets here
/// ([`import`] refuses it first); should it, it is refused again rather than written.
fn import_answer<R: Sealable>(docs: &mut Docs, record: &R, now: Millis) -> Result<(), DocError> {
    if record.author() != docs.me {
        return Err(DocError::from(ValidationError::Invalid {
            field: "author",
            reason: "an import brings in only your own answers".into(),
        }));
    }
    docs.add_sealed(record, &age::x25519::Identity::generate(), now)
}

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
fn device_key(id: &str) -> String {
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

fn device_summary(
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

fn partner_names(docs: &Docs) -> Vec<String> {
    docs.people()
        .into_iter()
        .filter(|p| p.id != docs.me)
        .map(|p| p.name)
        .collect()
}

/// Refuses pausing or leaving when there is nobody to share with, or sharing has ended.
fn require_sharing(docs: &Docs, what: &str) -> Result<(), ApiError> {
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
                json!({ "paused": true, "since": pause.since, "until": pause.until, "with": partner_names(docs) }),
                DocKind::Household,
                "people",
            ))
        }
        RosterCall::Resume => {
            let recorded = docs.pause_of(docs.me);
            let was_active = recorded.is_some_and(|p| p.active_at(now));
            if recorded.is_none() {
                return Ok(Outcome::read(json!({ "resumed": false })));
            }
            docs.set_pause(docs.me, None, now).map_err(api_error)?;
            tracing::info!("sharing with the partner's devices resumed");
            Ok(Outcome::wrote(
                json!({ "resumed": was_active, "with": partner_names(docs) }),
                DocKind::Household,
                "people",
            ))
        }
        RosterCall::Leave { confirm } => {
            if let Some(at) = docs.left_at(docs.me) {
                return Ok(Outcome::read(
                    json!({ "left": true, "already": true, "at": at }),
                ));
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
                json!({ "left": true, "already": false, "at": now, "with": partner_names(docs) }),
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
