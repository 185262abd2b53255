//! Turns control calls into reads and writes of the documents.
//!
//! Everything here runs on the document owner's thread (see [`crate::actor`]) with
//! `&mut Docs`; it does no IO. Each write decodes its params, calls one
//! [`hearth_core::ops`] function, which decides everything, and encodes the answer: the
//! record it created and the documents it touched, which the owner makes durable before
//! anyone hears about it. New ids and sealing keys come from [`OsFresh`].

use std::collections::{BTreeMap, BTreeSet};

use hearth_core::doc::{DocError, DocKind, Docs};
use hearth_core::model::{LedgerItem, Millis, ValidationError, When};
use hearth_core::ops::records::{self, RecordError};
use hearth_core::ops::roster::RosterOpError;
use hearth_core::ops::transfer::{self, ImportError};
use hearth_core::ops::{self, name_of, Touched, Written};
use serde_json::{json, Value};
use uuid::Uuid;

use hearth_api::{
    ApiError, DocCall, EntrySaved, ErrorCode, Imported, ItemSaved, RosterCall, Today,
};

pub mod bundle;
pub(crate) mod rogue;
mod roster;

pub use roster::*;

/// What a handled call did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The result to send back.
    pub value: Value,
    /// Documents written, with the record kinds that changed in each.
    pub touched: BTreeMap<DocKind, BTreeSet<&'static str>>,
}

impl Outcome {
    /// A read: its answer, nothing written.
    fn read<T: serde::Serialize>(answer: &T) -> Result<Outcome, ApiError> {
        Outcome::of(answer, Touched::new())
    }

    fn wrote(value: Value, doc: DocKind, kind: &'static str) -> Outcome {
        let mut touched = BTreeMap::new();
        touched.insert(doc, BTreeSet::from([kind]));
        Outcome { value, touched }
    }

    /// An answer and the documents its call changed. Encoding Hearth's own answer types
    /// fails only on a bug, which the caller is told of rather than sent `null`.
    fn of<T: serde::Serialize>(answer: &T, touched: Touched) -> Result<Outcome, ApiError> {
        Ok(Outcome {
            value: hearth_api::encode_answer(answer)?,
            touched,
        })
    }

    /// A write whose answer is the record as written.
    fn written<T: serde::Serialize>(written: Written<T>) -> Result<Outcome, ApiError> {
        Outcome::of(&written.record, written.touched)
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

fn ops_error(e: ops::OpsError) -> ApiError {
    let code = match e {
        ops::OpsError::NoPartnerYet | ops::OpsError::NoSuchPerson { .. } => ErrorCode::NotFound,
        ops::OpsError::AmbiguousPerson { .. } => ErrorCode::Ambiguous,
        _ => ErrorCode::Invalid,
    };
    ApiError::new(code, e.to_string(), e.hint())
}

fn record_error(e: RecordError) -> ApiError {
    match e {
        RecordError::Rule(e) => ops_error(e),
        RecordError::Doc(e) => api_error(e),
        RecordError::AnswerRefused(v) => {
            ApiError::new(ErrorCode::Invalid, v.to_string(), RecordError::ANSWER_HINT)
        }
        other => ApiError::internal(other.to_string()),
    }
}

fn log_error(e: ops::log::LogError) -> ApiError {
    match e {
        ops::log::LogError::Rule(e) => ops_error(e),
        other => ApiError::new(ErrorCode::Invalid, other.to_string(), other.hint()),
    }
}

fn import_error(e: ImportError) -> ApiError {
    ApiError::new(ErrorCode::Invalid, e.to_string(), e.hint())
}

fn roster_error(e: RosterOpError) -> ApiError {
    let code = match e {
        RosterOpError::Doc(e) => return api_error(e),
        RosterOpError::NoSuchDevice { .. } => ErrorCode::NotFound,
        RosterOpError::AmbiguousDevice { .. } => ErrorCode::Ambiguous,
        _ => ErrorCode::Invalid,
    };
    let hint = e.hint().unwrap_or("nothing was changed");
    ApiError::new(code, e.to_string(), hint)
}

/// The daemon's source of new ids and sealing keys: the operating system's.
pub(crate) struct OsFresh;

impl ops::Fresh for OsFresh {
    fn id(&mut self) -> Uuid {
        Uuid::new_v4()
    }

    fn sealing_key(&mut self) -> age::x25519::Identity {
        // From the operating system's random source: nothing but this key opens the answer.
        age::x25519::Identity::generate()
    }
}

/// Handles one call against the documents.
pub fn handle(docs: &mut Docs, call: DocCall, now: Millis) -> Result<Outcome, ApiError> {
    let fresh = &mut OsFresh;
    match call {
        DocCall::CheckinAdd(request) => {
            let written = records::add_checkin(docs, request, fresh, now).map_err(record_error)?;
            // Support goes to the one who gave the answer, in the answer to their own
            // write: it never travels to the partner.
            let support = records::safety_support(&written.record.entry).map(str::to_string);
            entry_outcome(written, support)
        }
        DocCall::ReflectAdd(request) => {
            let written =
                records::add_reflection(docs, request, fresh, now).map_err(record_error)?;
            entry_outcome(written, None)
        }
        DocCall::LedgerAdd(request) => {
            let written =
                records::add_ledger_item(docs, request, fresh, now).map_err(record_error)?;
            item_with_offers(written)
        }
        DocCall::LedgerList { all } => Outcome::read(&ops::log::ledger_list(docs, all)),
        DocCall::LedgerShow { id } => {
            let history = records::ledger_item_history(docs, &id).map_err(record_error)?;
            Outcome::read(&history)
        }
        DocCall::LedgerDone(request) => {
            let written = records::add_done(docs, request, fresh, now).map_err(record_error)?;
            Outcome::written(written)
        }
        DocCall::LedgerAck(request) => {
            let written = records::add_ack(docs, request, fresh, now).map_err(record_error)?;
            Outcome::written(written)
        }
        DocCall::LedgerHandoff(request) => {
            let written =
                records::propose_handoff(docs, request, fresh, now).map_err(record_error)?;
            Outcome::written(written)
        }
        DocCall::LedgerAnswer(request) => {
            let written = records::answer_handoff(docs, request, now).map_err(record_error)?;
            Outcome::written(written)
        }
        DocCall::LedgerEdit(request) => {
            let written =
                records::edit_ledger_item(docs, request, fresh, now).map_err(record_error)?;
            item_with_offers(written)
        }
        DocCall::LedgerPause { id, until } => {
            let written =
                records::pause_ledger_item(docs, &id, until, now).map_err(record_error)?;
            item_outcome(written)
        }
        DocCall::LedgerResume { id } => {
            let written = records::resume_ledger_item(docs, &id, now).map_err(record_error)?;
            item_outcome(written)
        }
        DocCall::LedgerAgree { id, at } => {
            let written = records::agree_ledger_item(docs, &id, at, now).map_err(record_error)?;
            let (item, everyone) = written.record;
            let saved = ItemSaved {
                agreed_by_everyone: Some(everyone),
                ..ItemSaved::plain(item)
            };
            Outcome::of(&saved, written.touched)
        }
        DocCall::LedgerRetire { id, at } => {
            let written = records::retire_ledger_item(docs, &id, at, now).map_err(record_error)?;
            item_outcome(written)
        }
        DocCall::MomentAdd(request) => {
            let written = records::add_moment(docs, request, fresh, now).map_err(record_error)?;
            Outcome::written(written)
        }
        DocCall::Log(query) => {
            let entries = ops::log::timeline(docs, &query, now).map_err(log_error)?;
            Outcome::read(&entries)
        }
        DocCall::Export => Outcome::read(&transfer::export(docs)),
        DocCall::Import { data } => {
            let written = transfer::import(docs, &data, fresh, now).map_err(import_error)?;
            let imported = Imported {
                imported: written.record as u64,
            };
            Outcome::of(&imported, written.touched)
        }
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
        } => insights(docs, weeks, include_private, utc_offset_min, now),
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
            let answer = Today { view, names };
            let touched = if mark_seen {
                records::mark_for_you_seen(docs, now).map_err(record_error)?
            } else {
                Touched::new()
            };
            Outcome::of(&answer, touched)
        }
        DocCall::Together { utc_offset_min } => {
            let today = When::from_utc(now, utc_offset_min).date;
            Outcome::read(&hearth_core::together::together(docs, today))
        }
        DocCall::Reply { ask, text, at } => {
            let written =
                records::reply(docs, &ask, &text, at, fresh, now).map_err(record_error)?;
            Outcome::written(written)
        }
    }
}

/// A check-in or reflection as written: the record, the support its safety answer
/// calls for (only ever in the answer to its author), and for a reveal-together one
/// whether it waits for the partner.
fn entry_outcome<T: serde::Serialize>(
    written: Written<records::Entry<T>>,
    support: Option<String>,
) -> Result<Outcome, ApiError> {
    let saved = EntrySaved {
        record: &written.record.entry,
        support,
        waiting_for_partner: written.record.waiting_for_partner,
    };
    Outcome::of(&saved, written.touched)
}

/// A ledger item as written.
fn item_outcome(written: Written<LedgerItem>) -> Result<Outcome, ApiError> {
    Outcome::of(&ItemSaved::plain(written.record), written.touched)
}

/// A written ledger item, with the handoffs it offered to the partner (if any).
fn item_with_offers(written: Written<records::ItemWithOffers>) -> Result<Outcome, ApiError> {
    let saved = ItemSaved {
        offered: written.record.offered,
        ..ItemSaved::plain(written.record.item)
    };
    Outcome::of(&saved, written.touched)
}

fn insights(
    docs: &Docs,
    weeks: Option<u32>,
    include_private: bool,
    utc_offset_min: i32,
    now: Millis,
) -> Result<Outcome, ApiError> {
    let today = When::from_utc(now, utc_offset_min).date;
    let report = hearth_core::insights::report(docs, include_private, weeks, today)
        .map_err(|e| ApiError::new(ErrorCode::Invalid, e.to_string(), "try a smaller --weeks"))?;
    Outcome::read(&report)
}
