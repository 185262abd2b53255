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
    listed_by_default, ApiError, At, DocCall, DoneSaved, EntrySaved, ErrorCode, ExportDocument,
    ExportRecords, Imported, ItemHistory, ItemSaved, Left, LogEntry, LogParams, LogRecord, Paused,
    PersonRef, Resumed, RosterCall, SealedMarker, Today, RECORD_KINDS,
};

pub mod bundle;
mod log;
pub(crate) mod rogue;
mod roster;
mod transfer;

use log::*;
pub use roster::*;
pub use transfer::*;

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

/// Resolves `me`, `partner`, a name or an id prefix to a person (`ops::resolve_person`).
pub fn resolve_person(docs: &Docs, who: &str) -> Result<PersonId, ApiError> {
    ops::resolve_person(&docs.people(), docs.me, who).map_err(ops_error)
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
    let code = match e {
        ops::OpsError::NoPartnerYet | ops::OpsError::NoSuchPerson { .. } => ErrorCode::NotFound,
        ops::OpsError::AmbiguousPerson { .. } => ErrorCode::Ambiguous,
        _ => ErrorCode::Invalid,
    };
    ApiError::new(code, e.to_string(), e.hint())
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
            let support = unsafe_now.then(|| SAFETY_SUPPORT.to_string());
            if checkin.visibility == Visibility::RevealTogether {
                return add_sealed(docs, &checkin, support, now);
            }
            docs.add_checkin(&checkin, now).map_err(api_error)?;
            let doc = docs.doc_kind_for(checkin.visibility);
            let saved = EntrySaved {
                record: &checkin,
                support,
                waiting_for_partner: None,
            };
            let mut outcome = Outcome::wrote(to_json(&saved), doc, "checkins");
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
                return add_sealed(docs, &reflection, None, now);
            }
            docs.add_reflection(&reflection, now).map_err(api_error)?;
            let doc = docs.doc_kind_for(reflection.visibility);
            let saved = EntrySaved::plain(&reflection);
            Ok(Outcome::wrote(to_json(&saved), doc, "reflections"))
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
            Ok(Outcome::read(to_json(&ItemHistory {
                acks,
                done,
                handoffs,
                item,
            })))
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
            // The item's title, so the answer can say what was done rather than an id.
            let item_title = done
                .item
                .and_then(|i| docs.ledger_item(i).ok())
                .map(|item| item.title);
            let saved = DoneSaved { done, item_title };
            Ok(Outcome::wrote(to_json(&saved), DocKind::Household, "done"))
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
            let saved = ItemSaved::plain(item);
            Ok(Outcome::wrote(
                to_json(&saved),
                DocKind::Household,
                "ledger",
            ))
        }
        DocCall::LedgerResume { id } => {
            let id = resolve(docs, Collection::Ledger, &id)?;
            let item = docs.resume_ledger_item(id, now).map_err(api_error)?;
            let saved = ItemSaved::plain(item);
            Ok(Outcome::wrote(
                to_json(&saved),
                DocKind::Household,
                "ledger",
            ))
        }
        DocCall::LedgerAgree { id, at } => {
            let id = resolve(docs, Collection::Ledger, &id)?;
            let me = docs.me;
            let (item, everyone) = docs
                .agree_ledger_item(id, me, at.at.unwrap_or(now), now)
                .map_err(api_error)?;
            let saved = ItemSaved {
                agreed_by_everyone: Some(everyone),
                ..ItemSaved::plain(item)
            };
            Ok(Outcome::wrote(
                to_json(&saved),
                DocKind::Household,
                "ledger",
            ))
        }
        DocCall::LedgerRetire { id, at } => {
            let id = resolve(docs, Collection::Ledger, &id)?;
            let item = docs
                .update_ledger_item(id, at.at.unwrap_or(now), |i| i.status = ItemStatus::Retired)
                .map_err(api_error)?;
            let saved = ItemSaved::plain(item);
            Ok(Outcome::wrote(
                to_json(&saved),
                DocKind::Household,
                "ledger",
            ))
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
            let names = docs
                .people()
                .into_iter()
                .map(|p| (p.id.to_string(), p.name))
                .collect();
            let value = to_json(&Today { view, names });
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
    let mut kinds = BTreeSet::from(["ledger"]);
    if !offered.is_empty() {
        kinds.insert("handoffs");
    }
    let saved = ItemSaved {
        offered: offered.to_vec(),
        ..ItemSaved::plain(item.clone())
    };
    Outcome {
        value: to_json(&saved),
        touched: BTreeMap::from([(DocKind::Household, kinds)]),
    }
}

/// Writes an answer sealed until the partner answers the same day, under a key made for
/// it alone. The answer says whether it waits, or opens at once because the partner's
/// answer is already here (the owner publishes the key in this same batch).
fn add_sealed<R: Sealable>(
    docs: &mut Docs,
    record: &R,
    support: Option<String>,
    now: Millis,
) -> Result<Outcome, ApiError> {
    // From the operating system's random source: nothing but this key opens the answer.
    let key = age::x25519::Identity::generate();
    docs.add_sealed(record, &key, now).map_err(api_error)?;
    let kind = R::COLLECTION.key();
    let opens_now = docs.reveals_due().iter().any(|(_, id)| *id == record.id());
    let value = to_json(&EntrySaved {
        record,
        support,
        waiting_for_partner: Some(!opens_now),
    });
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
