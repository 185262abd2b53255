//! The entries and the ledger: each request's record built (defaults, trimmed texts,
//! people resolved, the entry time checked), written, and the documents it touched
//! named.
//!
//! Who may write what stays with [`Docs`] and [`crate::authority`]; this module decides
//! only what a request means. New ids and sealing keys come from the caller's [`Fresh`].
//!
//! The request types (`NewCheckin`, ..., with [`EntryTime`]) are also the control API's
//! params, as `hearth-api` re-exports them: their serde shape is the wire format, so a
//! field's name, order or default here is a protocol change.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{
    entry_when, optional_text, person_or, resolve_person, Fresh, OpsError, Touched, Written,
};
use crate::doc::{Collection, DocError, DocKind, Docs, ItemEdit, Sealable};
use crate::insights::SAFETY_SUPPORT;
use crate::model::{
    AckKind, Acknowledgment, Answer, Basic, BasicLevel, BodySign, BurnoutSign, Cadence, CheckIn,
    Domain, DoneEntry, Handoff, HandoffState, ItemStatus, Labour, LedgerItem, Millis, Moment,
    MomentKind, Owners, Reflection, Stage, Target, TargetKind, ValidationError, Visibility, When,
};

/// Why a write of an entry or a ledger change was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// A value or a person named in the request breaks a rule of [`super`].
    #[error(transparent)]
    Rule(#[from] OpsError),
    /// The documents refused the record, or the id named none.
    #[error(transparent)]
    Doc(#[from] DocError),
    /// A handoff cannot take this answer where it stands (already answered, not
    /// addressed to this person, ...).
    #[error(transparent)]
    AnswerRefused(ValidationError),
}

impl RecordError {
    /// What to do after [`RecordError::AnswerRefused`]: the generic "fix the value" does
    /// not help there, so it says where to see the handoff and how to offer anew.
    pub const ANSWER_HINT: &'static str = "nothing was changed; `hearth ledger show ITEM` shows who holds each stage and every handoff's state, and `hearth ledger handoff ITEM --stage STAGE` offers a stage anew";
}

/// When an entry happened, as a request gives it: from `--at` for back-filling, or from
/// the client's clock. On the wire its two fields sit flat among the request's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryTime {
    /// Unix ms; `None` for now, by the daemon's clock.
    #[serde(default)]
    pub at: Option<Millis>,
    /// The author's UTC offset in minutes.
    #[serde(default)]
    pub utc_offset_min: i32,
}

impl EntryTime {
    /// The entry's time, checked: not in the future, a real offset.
    pub fn when(&self, now: Millis) -> Result<When, OpsError> {
        entry_when(self.at, self.utc_offset_min, now)
    }

    /// The instant alone, for answers and agreements, which record when they were given
    /// but carry no date of their own; checked like an entry's time.
    pub fn instant(&self, now: Millis) -> Result<Millis, OpsError> {
        Ok(self.when(now)?.at)
    }
}

/// A reveal-together or plain entry as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry<T> {
    /// The entry.
    pub entry: T,
    /// For a reveal-together answer: whether it waits for the partner's answer (`false`
    /// when theirs is already here and both open in this batch). `None` otherwise.
    pub waiting_for_partner: Option<bool>,
}

/// `checkin.add`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NewCheckin {
    /// Energy left, 0–100.
    pub battery: u8,
    /// Burnout signs rated 0–4.
    #[serde(default)]
    pub signs: BTreeMap<BurnoutSign, u8>,
    /// Body signs present.
    #[serde(default)]
    pub body: BTreeSet<BodySign>,
    /// Basics and how well they were met.
    #[serde(default)]
    pub basics: BTreeMap<Basic, BasicLevel>,
    /// Optional note.
    #[serde(default)]
    pub note: Option<String>,
    /// Optional ask for the partner.
    #[serde(default)]
    pub ask: Option<String>,
    /// Who may read it; shared when absent.
    #[serde(default)]
    pub visibility: Option<Visibility>,
    /// Whether the `safety` basic and the `relief` sign go to the partner with a shared
    /// or reveal-together entry. By default they stay on the author's own devices.
    #[serde(default)]
    pub share_safety: bool,
    /// When.
    #[serde(default, flatten)]
    pub at: EntryTime,
}

/// Records a check-in. The `safety` basic and `relief` sign stay in the author's
/// private document unless the request shares them.
pub fn add_checkin(
    docs: &mut Docs,
    request: NewCheckin,
    fresh: &mut dyn Fresh,
    now: Millis,
) -> Result<Written<Entry<CheckIn>>, RecordError> {
    let mut checkin = CheckIn {
        id: fresh.id(),
        author: docs.me,
        when: request.at.when(now)?,
        battery: request.battery,
        signs: request.signs,
        body: request.body,
        basics: request.basics,
        note: optional_text(request.note),
        ask: optional_text(request.ask),
        visibility: request.visibility.unwrap_or(Visibility::Shared),
        kept_to_self: BTreeSet::new(),
    };
    if !request.share_safety && checkin.visibility != Visibility::Private {
        checkin.keep_own_answers();
    }
    if checkin.visibility == Visibility::RevealTogether {
        return add_sealed(docs, checkin, fresh, now);
    }
    let kept = !checkin.kept_to_self.is_empty();
    docs.add_checkin(&checkin, now)?;
    let doc = docs.doc_kind_for(checkin.visibility);
    let mut written = Written::one(plain(checkin), doc, "checkins");
    if kept {
        // The kept answers went into the private document.
        written
            .touched
            .entry(docs.private.kind())
            .or_default()
            .insert("checkins");
    }
    Ok(written)
}

/// The support line for the one who just said they do not feel safe. It goes in the
/// answer to their own write only: it never travels to the partner.
pub fn safety_support(checkin: &CheckIn) -> Option<&'static str> {
    (checkin.basics.get(&Basic::Safety) == Some(&BasicLevel::No)).then_some(SAFETY_SUPPORT)
}

/// `reflect.add`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewReflection {
    /// If you had more energy, would you want to work on this together?
    pub energy: Answer,
    /// Do you feel emotionally safe with your partner?
    pub safe: Answer,
    /// Are the two of you aligned on what you want?
    pub aligned: Answer,
    /// Optional note.
    #[serde(default)]
    pub note: Option<String>,
    /// Who may read it; private when absent.
    #[serde(default)]
    pub visibility: Option<Visibility>,
    /// When.
    #[serde(default, flatten)]
    pub at: EntryTime,
}

/// Records a reflection.
pub fn add_reflection(
    docs: &mut Docs,
    request: NewReflection,
    fresh: &mut dyn Fresh,
    now: Millis,
) -> Result<Written<Entry<Reflection>>, RecordError> {
    let reflection = Reflection {
        id: fresh.id(),
        author: docs.me,
        when: request.at.when(now)?,
        energy: request.energy,
        safe: request.safe,
        aligned: request.aligned,
        note: optional_text(request.note),
        visibility: request.visibility.unwrap_or(Visibility::Private),
    };
    if reflection.visibility == Visibility::RevealTogether {
        return add_sealed(docs, reflection, fresh, now);
    }
    docs.add_reflection(&reflection, now)?;
    let doc = docs.doc_kind_for(reflection.visibility);
    Ok(Written::one(plain(reflection), doc, "reflections"))
}

fn plain<T>(entry: T) -> Entry<T> {
    Entry {
        entry,
        waiting_for_partner: None,
    }
}

/// Writes an answer sealed until the partner answers the same day, under a key made for
/// it alone. It waits, or opens at once because the partner's answer is already here
/// (the owner then publishes the key in this same batch).
fn add_sealed<R: Sealable>(
    docs: &mut Docs,
    record: R,
    fresh: &mut dyn Fresh,
    now: Millis,
) -> Result<Written<Entry<R>>, RecordError> {
    docs.add_sealed(&record, &fresh.sealing_key(), now)?;
    let kind = R::COLLECTION.key();
    let opens_now = docs.reveals_due().iter().any(|(_, id)| *id == record.id());
    Ok(Written {
        record: Entry {
            entry: record,
            waiting_for_partner: Some(!opens_now),
        },
        touched: BTreeMap::from([
            (DocKind::Household, BTreeSet::from([kind])),
            (docs.private.kind(), BTreeSet::from([kind])),
        ]),
    })
}

/// A ledger item as written, with the stages it offered to the partner as handoffs
/// rather than assigned.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemWithOffers {
    /// The item.
    pub item: LedgerItem,
    /// The handoffs offered.
    pub offered: Vec<Handoff>,
}

impl ItemWithOffers {
    fn written(item: LedgerItem, offered: Vec<Handoff>) -> Written<ItemWithOffers> {
        let mut kinds = BTreeSet::from(["ledger"]);
        if !offered.is_empty() {
            kinds.insert("handoffs");
        }
        Written {
            record: ItemWithOffers { item, offered },
            touched: BTreeMap::from([(DocKind::Household, kinds)]),
        }
    }
}

/// `ledger.add`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewLedgerItem {
    /// What it is.
    pub title: String,
    /// Area of life.
    pub domain: Domain,
    /// Kind of effort; [`Self::DEFAULT_LABOUR`] when absent.
    #[serde(default = "default_labour")]
    pub labour: Labour,
    /// Invisible work.
    #[serde(default)]
    pub invisible: bool,
    /// Owner per stage (a person as `resolve_person` reads it); the rest go to `owner`.
    #[serde(default)]
    pub owners: BTreeMap<Stage, String>,
    /// The owner of every other stage; `me` when absent.
    #[serde(default)]
    pub owner: Option<String>,
    /// How often.
    #[serde(default)]
    pub cadence: Option<Cadence>,
    /// Rough minutes per week.
    #[serde(default)]
    pub minutes_per_week: Option<u32>,
    /// 1–3; [`Self::DEFAULT_WEIGHT`] when absent.
    #[serde(default = "default_weight")]
    pub weight: u8,
    /// The agreed "good enough" standard.
    #[serde(default)]
    pub good_enough: Option<String>,
    /// When.
    #[serde(default, flatten)]
    pub at: EntryTime,
}

impl NewLedgerItem {
    /// The kind of effort when the request names none.
    pub const DEFAULT_LABOUR: Labour = Labour::Physical;
    /// The weight when the request gives none.
    pub const DEFAULT_WEIGHT: u8 = 2;
}

fn default_labour() -> Labour {
    NewLedgerItem::DEFAULT_LABOUR
}

fn default_weight() -> u8 {
    NewLedgerItem::DEFAULT_WEIGHT
}

/// Adds a ledger item, agreed by its author. Stages put on the partner are offered to
/// them as handoffs.
pub fn add_ledger_item(
    docs: &mut Docs,
    request: NewLedgerItem,
    fresh: &mut dyn Fresh,
    now: Millis,
) -> Result<Written<ItemWithOffers>, RecordError> {
    let mut owners = Owners::all(person_or(docs, request.owner.as_deref(), "me")?);
    for (stage, who) in &request.owners {
        owners.set(*stage, Some(resolve_person(&docs.people(), docs.me, who)?));
    }
    let created_at = request.at.instant(now)?;
    let item = LedgerItem {
        id: fresh.id(),
        title: request.title.trim().to_string(),
        domain: request.domain,
        labour: request.labour,
        invisible: request.invisible,
        owners,
        cadence: request.cadence,
        minutes_per_week: request.minutes_per_week,
        weight: request.weight,
        good_enough: request.good_enough.unwrap_or_default(),
        status: ItemStatus::Active,
        agreed_by: BTreeSet::from([docs.me]),
        agreed_at: Some(created_at),
        created_by: docs.me,
        created_at,
        created_utc_offset_min: request.at.utc_offset_min,
        paused_until: None,
    };
    let when = request.at.when(now)?;
    let (item, offered) = docs.add_ledger_item_offering(
        &item,
        &mut std::iter::repeat_with(|| fresh.id()),
        when,
        now,
    )?;
    Ok(ItemWithOffers::written(item, offered))
}

/// `ledger.edit`: fields left out stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LedgerEdit {
    /// The item's id or prefix.
    pub id: String,
    /// A new title; a blank one is ignored.
    #[serde(default)]
    pub title: Option<String>,
    /// Who should hold which stage.
    #[serde(default)]
    pub owners: BTreeMap<Stage, String>,
    /// A new cadence.
    #[serde(default)]
    pub cadence: Option<Cadence>,
    /// A new weight, 1–3.
    #[serde(default)]
    pub weight: Option<u8>,
    /// New rough minutes per week.
    #[serde(default)]
    pub minutes_per_week: Option<u32>,
    /// A new "good enough" standard.
    #[serde(default)]
    pub good_enough: Option<String>,
    /// When.
    #[serde(default, flatten)]
    pub at: EntryTime,
}

/// Edits a ledger item; stages put on the partner are offered to them as handoffs.
pub fn edit_ledger_item(
    docs: &mut Docs,
    request: LedgerEdit,
    fresh: &mut dyn Fresh,
    now: Millis,
) -> Result<Written<ItemWithOffers>, RecordError> {
    let id = docs.resolve(Collection::Ledger, &request.id)?;
    let mut owners = Vec::new();
    for (stage, who) in &request.owners {
        owners.push((*stage, resolve_person(&docs.people(), docs.me, who)?));
    }
    let edit = ItemEdit {
        title: request.title.filter(|t| !t.trim().is_empty()),
        owners,
        cadence: request.cadence,
        weight: request.weight,
        minutes_per_week: request.minutes_per_week,
        good_enough: request.good_enough,
    };
    let me = docs.me;
    let when = request.at.when(now)?;
    let (item, offered) = docs.edit_ledger_item(
        id,
        &edit,
        me,
        &mut std::iter::repeat_with(|| fresh.id()),
        when,
        now,
    )?;
    Ok(ItemWithOffers::written(item, offered))
}

/// A done entry as written, with the title of the item it was for, so the answer can
/// say what was done rather than an id. It is the answer to `ledger.done` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// The entry.
    #[serde(flatten)]
    pub done: DoneEntry,
    /// The item's title, when it names one that is here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_title: Option<String>,
}

/// `ledger.done`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NewDone {
    /// The item's id or prefix; absent for unlisted work.
    #[serde(default)]
    pub item: Option<String>,
    /// A label for unlisted work.
    #[serde(default)]
    pub label: Option<String>,
    /// Who did it; `me` when absent.
    #[serde(default)]
    pub by: Option<String>,
    /// Minutes it took.
    #[serde(default)]
    pub minutes: Option<u32>,
    /// Optional note.
    #[serde(default)]
    pub note: Option<String>,
    /// When.
    #[serde(default, flatten)]
    pub at: EntryTime,
}

/// Records that something was done.
pub fn add_done(
    docs: &mut Docs,
    request: NewDone,
    fresh: &mut dyn Fresh,
    now: Millis,
) -> Result<Written<Done>, RecordError> {
    let item = match &request.item {
        Some(prefix) => Some(docs.resolve(Collection::Ledger, prefix)?),
        None => None,
    };
    let done = DoneEntry {
        id: fresh.id(),
        item,
        label: optional_text(request.label),
        by: person_or(docs, request.by.as_deref(), "me")?,
        when: request.at.when(now)?,
        minutes: request.minutes,
        note: optional_text(request.note),
    };
    docs.add_done(&done, now)?;
    let item_title = done
        .item
        .and_then(|i| docs.ledger_item(i).ok())
        .map(|i| i.title);
    Ok(Written::one(
        Done { done, item_title },
        DocKind::Household,
        "done",
    ))
}

/// `ledger.ack`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewAck {
    /// What kind of record it points at.
    pub target_kind: TargetKind,
    /// Its id or prefix.
    pub target: String,
    /// What it says; [`Self::DEFAULT_KIND`] when absent.
    #[serde(default = "default_ack_kind")]
    pub kind: AckKind,
    /// To whom; the partner when absent.
    #[serde(default)]
    pub to: Option<String>,
    /// Optional note.
    #[serde(default)]
    pub note: Option<String>,
    /// When.
    #[serde(default, flatten)]
    pub at: EntryTime,
}

impl NewAck {
    /// What an acknowledgment says when the request does not say.
    pub const DEFAULT_KIND: AckKind = AckKind::Seen;
}

fn default_ack_kind() -> AckKind {
    NewAck::DEFAULT_KIND
}

/// Acknowledges an item, a done entry, a check-in or a moment.
pub fn add_ack(
    docs: &mut Docs,
    request: NewAck,
    fresh: &mut dyn Fresh,
    now: Millis,
) -> Result<Written<Acknowledgment>, RecordError> {
    let coll = match request.target_kind {
        TargetKind::Item => Collection::Ledger,
        TargetKind::Done => Collection::Done,
        TargetKind::CheckIn => Collection::CheckIns,
        TargetKind::Moment => Collection::Moments,
    };
    let target = docs.resolve(coll, &request.target)?;
    let ack = Acknowledgment {
        id: fresh.id(),
        from: docs.me,
        to: person_or(docs, request.to.as_deref(), "partner")?,
        target: Target {
            kind: request.target_kind,
            id: target,
        },
        kind: request.kind,
        when: request.at.when(now)?,
        note: optional_text(request.note),
    };
    docs.add_ack(&ack, now)?;
    Ok(Written::one(ack, DocKind::Household, "acks"))
}

/// `ledger.handoff`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewHandoff {
    /// The item's id or prefix.
    pub item: String,
    /// The stage to move.
    pub stage: Stage,
    /// To whom; the partner when absent.
    #[serde(default)]
    pub to: Option<String>,
    /// Optional note.
    #[serde(default)]
    pub note: Option<String>,
    /// When.
    #[serde(default, flatten)]
    pub at: EntryTime,
}

/// Offers one stage of an item to someone.
pub fn propose_handoff(
    docs: &mut Docs,
    request: NewHandoff,
    fresh: &mut dyn Fresh,
    now: Millis,
) -> Result<Written<Handoff>, RecordError> {
    let item = docs.resolve(Collection::Ledger, &request.item)?;
    let handoff = Handoff {
        id: fresh.id(),
        item,
        stage: request.stage,
        from: docs.me,
        to: person_or(docs, request.to.as_deref(), "partner")?,
        when: request.at.when(now)?,
        note: optional_text(request.note),
        state: HandoffState::Open,
        answered_by: None,
        answered_at: None,
        counter: None,
    };
    docs.propose_handoff(&handoff, now)?;
    Ok(Written::one(handoff, DocKind::Household, "handoffs"))
}

/// `ledger.answer`: accept, decline, counter or withdraw a handoff.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HandoffAnswer {
    /// The handoff's id or prefix.
    pub handoff: String,
    /// The answer.
    pub answer: HandoffState,
    /// The counter-proposal, when countering.
    #[serde(default)]
    pub counter: Option<String>,
    /// When it was given.
    #[serde(default, flatten)]
    pub at: EntryTime,
}

/// Answers a handoff. An accepted one moves the stage, so the item changes too.
pub fn answer_handoff(
    docs: &mut Docs,
    request: HandoffAnswer,
    now: Millis,
) -> Result<Written<Handoff>, RecordError> {
    let id = docs.resolve(Collection::Handoffs, &request.handoff)?;
    let me = docs.me;
    let answer = request.answer;
    let handoff = docs
        .answer_handoff(id, answer, me, request.counter, request.at.instant(now)?)
        .map_err(|e| match e {
            DocError::Invalid(v) => RecordError::AnswerRefused(v),
            other => RecordError::Doc(other),
        })?;
    let mut written = Written::one(handoff, DocKind::Household, "handoffs");
    if answer == HandoffState::Accepted {
        written
            .touched
            .entry(DocKind::Household)
            .or_default()
            .insert("ledger");
    }
    Ok(written)
}

/// Pauses an item ("do less for now"), optionally until a date.
pub fn pause_ledger_item(
    docs: &mut Docs,
    id: &str,
    until: Option<chrono::NaiveDate>,
    now: Millis,
) -> Result<Written<LedgerItem>, RecordError> {
    let id = docs.resolve(Collection::Ledger, id)?;
    let item = docs.pause_ledger_item(id, until, now)?;
    Ok(Written::one(item, DocKind::Household, "ledger"))
}

/// Brings a paused or retired item back.
pub fn resume_ledger_item(
    docs: &mut Docs,
    id: &str,
    now: Millis,
) -> Result<Written<LedgerItem>, RecordError> {
    let id = docs.resolve(Collection::Ledger, id)?;
    let item = docs.resume_ledger_item(id, now)?;
    Ok(Written::one(item, DocKind::Household, "ledger"))
}

/// Agrees with an item as it stands; the answer says whether everyone now has.
pub fn agree_ledger_item(
    docs: &mut Docs,
    id: &str,
    at: EntryTime,
    now: Millis,
) -> Result<Written<(LedgerItem, bool)>, RecordError> {
    let id = docs.resolve(Collection::Ledger, id)?;
    let me = docs.me;
    let agreed = docs.agree_ledger_item(id, me, at.instant(now)?, now)?;
    Ok(Written::one(agreed, DocKind::Household, "ledger"))
}

/// Retires an item.
pub fn retire_ledger_item(
    docs: &mut Docs,
    id: &str,
    at: EntryTime,
    now: Millis,
) -> Result<Written<LedgerItem>, RecordError> {
    let id = docs.resolve(Collection::Ledger, id)?;
    let item = docs.update_ledger_item(id, at.instant(now)?, |i| i.status = ItemStatus::Retired)?;
    Ok(Written::one(item, DocKind::Household, "ledger"))
}

/// One ledger item with everything that happened to it: the answer to `ledger.show` on
/// the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemHistory {
    /// The item.
    pub item: LedgerItem,
    /// What was done for it.
    pub done: Vec<DoneEntry>,
    /// Its stages offered.
    pub handoffs: Vec<Handoff>,
    /// Thanks and notes on it.
    pub acks: Vec<Acknowledgment>,
}

/// `ledger.show`: reads only.
pub fn ledger_item_history(docs: &Docs, id: &str) -> Result<ItemHistory, RecordError> {
    let id = docs.resolve(Collection::Ledger, id)?;
    let item = docs.ledger_item(id)?;
    let done = docs
        .done_entries()
        .into_iter()
        .filter(|d| d.item == Some(id))
        .collect();
    let handoffs = docs
        .handoffs()
        .into_iter()
        .filter(|h| h.item == id)
        .collect();
    let acks = docs
        .acks()
        .into_iter()
        .filter(|a| a.target.kind == TargetKind::Item && a.target.id == id)
        .collect();
    Ok(ItemHistory {
        item,
        done,
        handoffs,
        acks,
    })
}

/// `moment.add`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewMoment {
    /// What kind.
    pub kind: MomentKind,
    /// Who started it; `me` when absent.
    #[serde(default)]
    pub started_by: Option<String>,
    /// Optional note.
    #[serde(default)]
    pub note: Option<String>,
    /// When.
    #[serde(default, flatten)]
    pub at: EntryTime,
}

/// Records a moment of connection.
pub fn add_moment(
    docs: &mut Docs,
    request: NewMoment,
    fresh: &mut dyn Fresh,
    now: Millis,
) -> Result<Written<Moment>, RecordError> {
    let moment = Moment {
        id: fresh.id(),
        kind: request.kind,
        started_by: person_or(docs, request.started_by.as_deref(), "me")?,
        when: request.at.when(now)?,
        note: optional_text(request.note),
    };
    docs.add_moment(&moment, now)?;
    Ok(Written::one(moment, DocKind::Household, "moments"))
}

/// `reply`: answers the partner's ask on one of their check-ins, as an acknowledgment
/// of kind `reply` (see [`crate::today::reply`]).
pub fn reply(
    docs: &mut Docs,
    ask: &str,
    text: &str,
    at: EntryTime,
    fresh: &mut dyn Fresh,
    now: Millis,
) -> Result<Written<Acknowledgment>, RecordError> {
    let checkin = docs.resolve(Collection::CheckIns, ask)?;
    let when = at.when(now)?;
    let ack = crate::today::reply(docs, fresh.id(), checkin, text, when)?;
    docs.add_ack(&ack, now)?;
    Ok(Written::one(ack, DocKind::Household, "acks"))
}

/// Records that this person has looked at "for you" now. Touches their private
/// document only when the marker moved (it never moves back).
pub fn mark_for_you_seen(docs: &mut Docs, now: Millis) -> Result<Touched, RecordError> {
    let before = docs.private.heads();
    docs.set_for_you_seen_at(now, now)?;
    if docs.private.heads() == before {
        return Ok(Touched::new());
    }
    Ok(BTreeMap::from([(docs.private.kind(), BTreeSet::new())]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
