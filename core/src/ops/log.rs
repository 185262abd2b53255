//! `log`: the timeline of entries, filtered by kind, person and dates, with what is
//! sealed here shown only as its marker. The answer's types live here too, so the daemon
//! that builds them and a client that reads them (through `hearth-api`) share one
//! definition.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{name_of, resolve_person, OpsError};
use crate::doc::{Docs, SealedEntry};
use crate::model::{
    Acknowledgment, CheckIn, DoneEntry, Handoff, ItemStatus, LedgerItem, Millis, Moment, PersonId,
    Reflection, Visibility, When,
};

/// The record kinds (collection keys) `log --kind` accepts and events name.
pub const RECORD_KINDS: &[&str] = &[
    "checkins",
    "reflections",
    "ledger",
    "done",
    "acks",
    "handoffs",
    "moments",
];

/// Whether `ledger list` shows an item of this status without `--all`.
pub fn listed_by_default(status: ItemStatus) -> bool {
    status != ItemStatus::Retired
}

/// The ledger as `ledger list` shows it: by domain, then title; retired items only with
/// `all`.
pub fn ledger_list(docs: &Docs, all: bool) -> Vec<LedgerItem> {
    let mut items: Vec<LedgerItem> = docs
        .ledger_items()
        .into_iter()
        .filter(|i| all || listed_by_default(i.status))
        .collect();
    items.sort_by(|a, b| (a.domain, &a.title).cmp(&(b.domain, &b.title)));
    items
}

/// What `log` asks for; every filter is optional. This is the control call's params.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LogQuery {
    /// Only this person's entries: `me`, `partner`, a name or an id prefix.
    #[serde(default)]
    pub person: Option<String>,
    /// Only these record kinds (collection keys: `checkins`, `moments`, ...).
    #[serde(default)]
    pub kinds: Vec<String>,
    /// From this local date, inclusive.
    #[serde(default)]
    pub from: Option<NaiveDate>,
    /// To this local date, inclusive.
    #[serde(default)]
    pub to: Option<NaiveDate>,
    /// At most this many entries, newest kept.
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Why a `log` query was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// A kind that is not a collection key.
    #[error("`{kind}` is not a record kind")]
    NotARecordKind {
        /// What was asked for.
        kind: String,
    },
    /// The person could not be found.
    #[error(transparent)]
    Rule(#[from] OpsError),
}

impl LogError {
    /// What to do next, for an API error's hint.
    pub fn hint(&self) -> String {
        match self {
            LogError::NotARecordKind { .. } => {
                format!("use one of: {}", RECORD_KINDS.join(", "))
            }
            LogError::Rule(e) => e.hint().to_string(),
        }
    }
}

/// An answer this device cannot read yet, in `log` and `export`: that it exists, by
/// whom and when, nothing more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedMarker {
    /// The entry's id.
    pub id: Uuid,
    /// Its collection (`checkins` or `reflections`).
    pub kind: String,
    /// Who wrote it.
    pub author: PersonId,
    /// The author's local date.
    pub date: NaiveDate,
    /// When it was written, Unix ms.
    pub at: Millis,
    /// Always reveal-together.
    pub visibility: Visibility,
    /// Always true.
    pub sealed: bool,
}

impl SealedMarker {
    /// The marker of a sealed answer.
    pub fn of(e: &SealedEntry) -> SealedMarker {
        SealedMarker {
            id: e.id,
            kind: e.collection.key().to_string(),
            author: e.author,
            date: e.date,
            at: e.at,
            visibility: Visibility::RevealTogether,
            sealed: true,
        }
    }
}

/// The record inside a `log` entry: the model record of the entry's kind, or the
/// marker of a sealed answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum LogRecord {
    /// A partner's answer still sealed.
    Sealed(SealedMarker),
    /// `checkins`.
    CheckIn(CheckIn),
    /// `reflections`.
    Reflection(Reflection),
    /// `done`.
    Done(DoneEntry),
    /// `acks`.
    Ack(Acknowledgment),
    /// `handoffs`.
    Handoff(Handoff),
    /// `moments`.
    Moment(Moment),
    /// `ledger`.
    Item(LedgerItem),
}

/// One entry of the timeline (`log`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    /// When it happened, Unix ms.
    pub at: Millis,
    /// The author's local date.
    pub date: NaiveDate,
    /// The record's id.
    pub id: Uuid,
    /// Its collection: `checkins`, `moments`, ... (see [`RECORD_KINDS`]).
    pub kind: String,
    /// The name of the person it is about.
    pub person: String,
    /// That person's id, so a client can say "you".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person_id: Option<PersonId>,
    /// The record itself.
    pub record: LogRecord,
    /// One line about it, in plain words.
    pub summary: String,
    /// The author's UTC offset then, in minutes.
    pub utc_offset_min: i32,
    /// On this person's own reveal-together answers: whether the partner's answer for
    /// that day is overdue, so this one has opened while theirs is still sealed here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for_theirs: Option<bool>,
}

/// How a `log` entry reads off the wire before its record is typed by its kind: the
/// kind says which model type the record is, so no guessing between look-alikes.
#[derive(Deserialize)]
struct LogEntryWire {
    at: Millis,
    date: NaiveDate,
    id: Uuid,
    kind: String,
    person: String,
    #[serde(default)]
    person_id: Option<PersonId>,
    record: serde_json::Value,
    summary: String,
    #[serde(default)]
    utc_offset_min: i32,
    #[serde(default)]
    waiting_for_theirs: Option<bool>,
}

impl LogRecord {
    /// Reads a record of the collection `kind`.
    fn from_kind(kind: &str, value: serde_json::Value) -> Result<LogRecord, String> {
        use serde_json::from_value;
        let sealed = value.get("sealed").and_then(serde_json::Value::as_bool) == Some(true);
        let record = match kind {
            _ if sealed => from_value(value).map(LogRecord::Sealed),
            "checkins" => from_value(value).map(LogRecord::CheckIn),
            "reflections" => from_value(value).map(LogRecord::Reflection),
            "done" => from_value(value).map(LogRecord::Done),
            "acks" => from_value(value).map(LogRecord::Ack),
            "handoffs" => from_value(value).map(LogRecord::Handoff),
            "moments" => from_value(value).map(LogRecord::Moment),
            "ledger" => from_value(value).map(LogRecord::Item),
            other => return Err(format!("`{other}` is not a record kind")),
        };
        record.map_err(|e| format!("a `{kind}` record does not read: {e}"))
    }
}

impl<'de> Deserialize<'de> for LogEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<LogEntry, D::Error> {
        let wire = LogEntryWire::deserialize(deserializer)?;
        let record =
            LogRecord::from_kind(&wire.kind, wire.record).map_err(serde::de::Error::custom)?;
        Ok(LogEntry {
            at: wire.at,
            date: wire.date,
            id: wire.id,
            kind: wire.kind,
            person: wire.person,
            person_id: wire.person_id,
            record,
            summary: wire.summary,
            utc_offset_min: wire.utc_offset_min,
            waiting_for_theirs: wire.waiting_for_theirs,
        })
    }
}

/// One timeline entry.
fn entry(
    kind: &'static str,
    id: Uuid,
    when: &When,
    person: PersonId,
    summary: String,
    record: LogRecord,
    docs: &Docs,
) -> LogEntry {
    LogEntry {
        at: when.at,
        date: when.date,
        id,
        kind: kind.to_string(),
        person: name_of(docs, person),
        person_id: Some(person),
        record,
        summary,
        utc_offset_min: when.utc_offset_min,
        waiting_for_theirs: None,
    }
}

/// The words after a summary that say who can read the entry.
fn visibility_tag(v: Visibility) -> &'static str {
    match v {
        Visibility::Private => " (private)",
        Visibility::Shared => "",
        Visibility::RevealTogether => " (revealed together)",
    }
}

/// The timeline `q` asks for, oldest first; `now` decides which of this person's
/// reveal-together answers are still waiting for the partner's.
pub fn timeline(docs: &Docs, q: &LogQuery, now: Millis) -> Result<Vec<LogEntry>, LogError> {
    if let Some(kind) = q.kinds.iter().find(|k| !RECORD_KINDS.contains(&k.as_str())) {
        return Err(LogError::NotARecordKind { kind: kind.clone() });
    }
    let person = match &q.person {
        Some(who) => Some(resolve_person(&docs.people(), docs.me, who)?),
        None => None,
    };
    let wants = |kind: &str| q.kinds.is_empty() || q.kinds.iter().any(|k| k == kind);
    let in_range = |date: NaiveDate| {
        q.from.is_none_or(|from| date >= from) && q.to.is_none_or(|to| date <= to)
    };
    let by = |id: PersonId| person.is_none_or(|p| p == id);
    let mut entries: Vec<(Millis, LogEntry)> = Vec::new();
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
    let mark_late = |entry: &mut LogEntry, author: PersonId, id: Uuid, v: Visibility| {
        if author == docs.me && v == Visibility::RevealTogether {
            entry.waiting_for_theirs = Some(theirs_late.contains_key(&id));
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
                entry(
                    kind,
                    e.id,
                    &when,
                    e.author,
                    summary,
                    LogRecord::Sealed(SealedMarker::of(e)),
                    docs,
                ),
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
                    LogRecord::CheckIn(c.clone()),
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
                    LogRecord::Reflection(r.clone()),
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
                        LogRecord::Done(d.clone()),
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
                    entry(
                        "acks",
                        a.id,
                        &a.when,
                        a.from,
                        summary,
                        LogRecord::Ack(a.clone()),
                        docs,
                    ),
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
                        LogRecord::Handoff(h.clone()),
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
                        LogRecord::Moment(m.clone()),
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
                    entry(
                        "ledger",
                        i.id,
                        &w,
                        i.created_by,
                        summary,
                        LogRecord::Item(i.clone()),
                        docs,
                    ),
                ));
            }
        }
    }
    entries.sort_by_key(|(at, _)| *at);
    if let Some(limit) = q.limit {
        let skip = entries.len().saturating_sub(limit);
        entries.drain(..skip);
    }
    Ok(entries.into_iter().map(|(_, e)| e).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::doc::tests::docs_pair;
    use crate::ops::records::{self, EntryTime, NewCheckin, NewMoment};
    use crate::ops::CountingFresh;

    const NOW: Millis = 1_767_225_600_000;
    const HOUR: Millis = 3_600_000;

    fn checkin(battery: u8, visibility: Visibility, hours_ago: i64) -> NewCheckin {
        NewCheckin {
            battery,
            visibility: Some(visibility),
            at: EntryTime {
                at: Some(NOW - hours_ago * HOUR),
                utc_offset_min: 60,
            },
            ..NewCheckin::default()
        }
    }

    fn moment(hours_ago: i64) -> NewMoment {
        NewMoment {
            kind: crate::model::MomentKind::Laugh,
            started_by: None,
            note: None,
            at: EntryTime {
                at: Some(NOW - hours_ago * HOUR),
                utc_offset_min: 0,
            },
        }
    }

    fn merge_into(to: &mut Docs, from: &Docs) {
        to.household
            .automerge_mut()
            .merge(&mut from.household.automerge().clone())
            .unwrap();
    }

    /// Ada: a shared check-in 5 h ago, a moment 3 h ago. Bo: a moment 4 h ago and a
    /// reveal-together check-in 1 h ago, still sealed on Ada's side.
    fn household() -> (Docs, PersonId, PersonId) {
        let (mut ada, mut bo, ada_id, bo_id) = docs_pair();
        let fresh = &mut CountingFresh(0);
        records::add_checkin(&mut ada, checkin(60, Visibility::Shared, 5), fresh, NOW).unwrap();
        records::add_moment(&mut ada, moment(3), fresh, NOW).unwrap();
        records::add_moment(&mut bo, moment(4), fresh, NOW).unwrap();
        records::add_checkin(
            &mut bo,
            checkin(30, Visibility::RevealTogether, 1),
            fresh,
            NOW,
        )
        .unwrap();
        merge_into(&mut ada, &bo);
        (ada, ada_id, bo_id)
    }

    fn query() -> LogQuery {
        LogQuery::default()
    }

    #[test]
    fn the_timeline_is_oldest_first_and_a_limit_keeps_the_newest() {
        let (ada, ada_id, bo_id) = household();
        let all = timeline(&ada, &query(), NOW).unwrap();
        let kinds: Vec<(&str, Option<PersonId>)> =
            all.iter().map(|e| (e.kind.as_str(), e.person_id)).collect();
        assert_eq!(
            kinds,
            [
                ("checkins", Some(ada_id)),
                ("moments", Some(bo_id)),
                ("moments", Some(ada_id)),
                ("checkins", Some(bo_id)),
            ]
        );
        assert_eq!(all[0].summary, "battery 60%");
        assert_eq!(all[0].person, "Ada");
        assert_eq!(all[0].utc_offset_min, 60);
        assert_eq!(all[1].summary, "a laugh moment");
        let newest = timeline(
            &ada,
            &LogQuery {
                limit: Some(2),
                ..query()
            },
            NOW,
        )
        .unwrap();
        assert_eq!(newest, all[2..]);
    }

    #[test]
    fn the_partners_sealed_answer_shows_only_that_it_exists() {
        let (ada, _, bo_id) = household();
        let all = timeline(&ada, &query(), NOW).unwrap();
        let sealed = all.last().unwrap();
        assert_eq!(sealed.person_id, Some(bo_id));
        let LogRecord::Sealed(marker) = &sealed.record else {
            panic!("the partner's reveal-together answer is readable: {sealed:?}");
        };
        assert!(marker.sealed);
        assert_eq!(marker.kind, "checkins");
        assert!(sealed
            .summary
            .starts_with("sealed: opens once you have answered"));
        let json = serde_json::to_string(sealed).unwrap();
        assert!(!json.contains("battery"), "{json}");
    }

    #[test]
    fn filters_by_kind_person_and_date() {
        let (ada, ada_id, bo_id) = household();
        let moments = LogQuery {
            kinds: vec!["moments".into()],
            ..query()
        };
        let found = timeline(&ada, &moments, NOW).unwrap();
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|e| e.kind == "moments"));
        let partner = LogQuery {
            person: Some("partner".into()),
            ..query()
        };
        let found = timeline(&ada, &partner, NOW).unwrap();
        assert!(found.iter().all(|e| e.person_id == Some(bo_id)));
        assert_eq!(found.len(), 2);
        let me = LogQuery {
            person: Some("ada".into()),
            to: Some(When::from_utc(NOW - 5 * HOUR, 60).date),
            ..query()
        };
        assert!(timeline(&ada, &me, NOW)
            .unwrap()
            .iter()
            .all(|e| e.person_id == Some(ada_id)));
        let tomorrow = When::from_utc(NOW + 24 * HOUR, 0).date;
        let later = LogQuery {
            from: Some(tomorrow),
            ..query()
        };
        assert!(timeline(&ada, &later, NOW).unwrap().is_empty());
    }

    #[test]
    fn an_unknown_kind_or_person_is_refused_with_what_to_use() {
        let (ada, _, _) = household();
        let err = timeline(
            &ada,
            &LogQuery {
                kinds: vec!["moments".into(), "diary".into()],
                ..query()
            },
            NOW,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "`diary` is not a record kind");
        assert!(err.hint().starts_with("use one of: checkins, reflections"));
        let err = timeline(
            &ada,
            &LogQuery {
                person: Some("Cy".into()),
                ..query()
            },
            NOW,
        )
        .unwrap_err();
        assert_eq!(
            err,
            LogError::Rule(OpsError::NoSuchPerson { who: "Cy".into() })
        );
    }

    #[test]
    fn an_entry_reads_back_typed_by_its_kind() {
        let (ada, _, _) = household();
        for entry in timeline(&ada, &query(), NOW).unwrap() {
            let json = serde_json::to_value(&entry).unwrap();
            let back: LogEntry = serde_json::from_value(json).unwrap();
            assert_eq!(back, entry);
        }
    }

    #[test]
    fn retired_items_are_listed_only_when_asked() {
        assert!(listed_by_default(ItemStatus::Active));
        assert!(listed_by_default(ItemStatus::Paused));
        assert!(!listed_by_default(ItemStatus::Retired));
    }
}
