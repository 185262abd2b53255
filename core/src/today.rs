//! "For you": what waits for one person today, and the rules of a reply to an ask.
//!
//! This module owns the pure view behind `hearth today` (the partner's open asks,
//! handoffs waiting for this person's answer, thank-yous and repairs received since they
//! last looked, and whether they checked in today) and the record a reply to an ask
//! becomes. It reads no clock: `today` and `since` come in as arguments, and it decides
//! nothing about who may read what beyond what the documents already hold.

use automerge::transaction::Transactable;
use automerge::ReadDoc;
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::doc::{DocError, Docs};
use crate::model::{
    AckKind, Acknowledgment, Handoff, HandoffState, ItemStatus, LedgerItem, Millis, PersonId,
    Target, TargetKind, ValidationError, When,
};

/// How many days an ask stays open without a reply: after a week it has most likely
/// been met or moved on, and an old ask would read as a reproach.
pub const ASK_OPEN_DAYS: u64 = 7;

/// One ask of the partner's that this person has not replied to yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenAsk {
    /// The check-in that carries it; `hearth reply` takes this id or a prefix.
    pub checkin: Uuid,
    /// Who asked.
    pub from: PersonId,
    /// The asker's local date.
    pub date: NaiveDate,
    /// When, Unix milliseconds.
    pub at: Millis,
    /// The ask.
    pub ask: String,
}

/// What waits for one person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForYou {
    /// Whose view this is.
    pub person: PersonId,
    /// The local date it is for.
    pub today: NaiveDate,
    /// The partner's asks of the last [`ASK_OPEN_DAYS`] days without a reply from this
    /// person, oldest first.
    pub asks: Vec<OpenAsk>,
    /// Handoffs offered to this person and not answered yet, oldest first.
    pub handoffs: Vec<Handoff>,
    /// Thank-yous, "I see this" and repairs to this person since `since`, oldest first.
    pub received: Vec<Acknowledgment>,
    /// Replies to this person's own asks since `since`, oldest first.
    pub replies: Vec<Acknowledgment>,
    /// Since when `received` and `replies` count: when this person last looked, or
    /// `null` for everything.
    pub since: Option<Millis>,
    /// Whether this person has checked in today (any visibility).
    pub checked_in_today: bool,
    /// Paused items whose "until" day has come: time to look at them again.
    pub paused_due: Vec<LedgerItem>,
}

/// The key, at the root of this person's private document, of when they last looked at
/// "for you". It syncs to their own devices only, so "since you last looked" holds
/// across them. A scalar at the root, not a collection, so the genesis change stays the
/// same everywhere.
const SEEN_AT: &str = "for_you_seen_at";

impl Docs {
    /// When this person last looked at "for you", if ever.
    pub fn for_you_seen_at(&self) -> Option<Millis> {
        match self.private.automerge().get(automerge::ROOT, SEEN_AT) {
            Ok(Some((automerge::Value::Scalar(s), _))) => match s.as_ref() {
                automerge::ScalarValue::Int(at) => Some(*at),
                _ => None,
            },
            _ => None,
        }
    }

    /// Records that this person looked at "for you" at `at`. Never moves backwards, so
    /// a device with a slow clock does not bring old thank-yous back as new.
    pub fn set_for_you_seen_at(&mut self, at: Millis, now: Millis) -> Result<(), DocError> {
        if self.for_you_seen_at().is_some_and(|seen| seen >= at) {
            return Ok(());
        }
        self.private
            .automerge_mut()
            .transact_with(
                |_| automerge::transaction::CommitOptions::default().with_time(now / 1000),
                |tx| tx.put(automerge::ROOT, SEEN_AT, at),
            )
            .map_err(|f| DocError::Automerge(f.error))?;
        Ok(())
    }
}

/// Builds the view for `docs.me` on the local date `today`; acknowledgments count from
/// `since` (exclusive) when given.
pub fn for_you(docs: &Docs, today: NaiveDate, since: Option<Millis>) -> ForYou {
    let me = docs.me;
    let oldest = today
        .checked_sub_days(Days::new(ASK_OPEN_DAYS - 1))
        .unwrap_or(today);
    let acks = docs.acks();
    let replied = |checkin: Uuid| {
        acks.iter().any(|a| {
            a.from == me
                && a.kind == AckKind::Reply
                && a.target.kind == TargetKind::CheckIn
                && a.target.id == checkin
        })
    };
    let checkins = docs.checkins();
    let mut asks: Vec<OpenAsk> = checkins
        .iter()
        .filter(|c| c.author != me && c.when.date >= oldest && c.when.date <= today)
        .filter_map(|c| {
            let ask = c.ask.as_deref()?.trim();
            (!ask.is_empty() && !replied(c.id)).then(|| OpenAsk {
                checkin: c.id,
                from: c.author,
                date: c.when.date,
                at: c.when.at,
                ask: ask.to_string(),
            })
        })
        .collect();
    asks.sort_by_key(|a| (a.at, a.checkin));
    let mut handoffs: Vec<Handoff> = docs
        .handoffs()
        .into_iter()
        .filter(|h| h.to == me && h.state == HandoffState::Open)
        .collect();
    handoffs.sort_by_key(|h| (h.when.at, h.id));
    let fresh =
        |a: &&Acknowledgment| a.to == me && a.from != me && since.is_none_or(|s| a.when.at > s);
    let mut received: Vec<Acknowledgment> = acks
        .iter()
        .filter(fresh)
        .filter(|a| a.kind != AckKind::Reply)
        .cloned()
        .collect();
    received.sort_by_key(|a| (a.when.at, a.id));
    let mut replies: Vec<Acknowledgment> = acks
        .iter()
        .filter(fresh)
        .filter(|a| a.kind == AckKind::Reply)
        .cloned()
        .collect();
    replies.sort_by_key(|a| (a.when.at, a.id));
    let checked_in_today = checkins
        .iter()
        .any(|c| c.author == me && c.when.date == today);
    let paused_due: Vec<LedgerItem> = docs
        .ledger_items()
        .into_iter()
        .filter(|i| i.status == ItemStatus::Paused && i.paused_until.is_some_and(|d| d <= today))
        .collect();
    ForYou {
        person: me,
        today,
        asks,
        handoffs,
        received,
        replies,
        since,
        checked_in_today,
        paused_due,
    }
}

/// A reply from `docs.me` to the ask on the partner's check-in `checkin`, as the
/// acknowledgment it is stored as (kind `reply`, the text as its note). It travels and
/// syncs like any acknowledgment.
pub fn reply(
    docs: &Docs,
    id: Uuid,
    checkin: Uuid,
    text: &str,
    when: When,
) -> Result<Acknowledgment, DocError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ValidationError::Invalid {
            field: "reply",
            reason: "a reply needs a few words, such as \"I'll take bedtime\"".into(),
        }
        .into());
    }
    let Some(asked) = docs.checkins().into_iter().find(|c| c.id == checkin) else {
        return Err(DocError::NotFound {
            kind: "checkins",
            prefix: checkin.to_string(),
        });
    };
    if asked.author == docs.me || asked.ask.is_none() {
        return Err(ValidationError::Invalid {
            field: "ask",
            reason: "only an ask your partner made can be replied to; `hearth today` lists them"
                .into(),
        }
        .into());
    }
    Ok(Acknowledgment {
        id,
        from: docs.me,
        to: asked.author,
        target: Target {
            kind: TargetKind::CheckIn,
            id: checkin,
        },
        kind: AckKind::Reply,
        when,
        note: Some(text.to_string()),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use automerge::ActorId;

    use super::*;
    use crate::model::{CheckIn, Person, Visibility};

    fn docs_pair() -> (Docs, Docs) {
        let a = Person {
            id: Uuid::from_u128(1),
            name: "Ada".into(),
            joined_at: 0,
        };
        let b = Person {
            id: Uuid::from_u128(2),
            name: "Bo".into(),
            joined_at: 0,
        };
        let mut da = Docs::new(a.id, ActorId::from([1u8; 16].as_slice()));
        da.add_person(&a, 1).unwrap();
        da.add_person(&b, 1).unwrap();
        let mut db = Docs::new(b.id, ActorId::from([2u8; 16].as_slice()));
        db.household
            .automerge_mut()
            .merge(&mut da.household.automerge().clone())
            .unwrap();
        (da, db)
    }

    fn sync(a: &mut Docs, b: &mut Docs) {
        let mut ca = a.household.automerge().clone();
        let mut cb = b.household.automerge().clone();
        a.household.automerge_mut().merge(&mut cb).unwrap();
        b.household.automerge_mut().merge(&mut ca).unwrap();
    }

    const DAY: Millis = 86_400_000;
    const T0: Millis = 1_773_100_800_000;

    fn checkin(author: PersonId, n: u128, at: Millis, ask: Option<&str>) -> CheckIn {
        CheckIn {
            id: Uuid::from_u128(n),
            author,
            when: When::from_utc(at, 0),
            battery: 30,
            signs: BTreeMap::new(),
            body: BTreeSet::new(),
            basics: BTreeMap::new(),
            note: None,
            ask: ask.map(String::from),
            visibility: Visibility::Shared,
            kept_to_self: BTreeSet::new(),
        }
    }

    #[test]
    fn an_ask_waits_until_it_is_replied_to_and_the_reply_reaches_the_asker() {
        let (mut da, mut db) = docs_pair();
        let (ada, bo) = (da.me, db.me);
        da.add_checkin(
            &checkin(ada, 10, T0, Some("Could you take bedtime tonight?")),
            1,
        )
        .unwrap();
        // An ask older than a week has gone quiet.
        da.add_checkin(&checkin(ada, 11, T0 - 9 * DAY, Some("old")), 1)
            .unwrap();
        sync(&mut da, &mut db);
        let today = When::from_utc(T0, 0).date;
        let view = for_you(&db, today, None);
        assert_eq!(view.asks.len(), 1);
        assert_eq!(view.asks[0].ask, "Could you take bedtime tonight?");
        assert!(!view.checked_in_today);

        let answer = reply(
            &db,
            Uuid::from_u128(20),
            view.asks[0].checkin,
            " I'll take bedtime ",
            When::from_utc(T0 + 1000, 0),
        )
        .unwrap();
        assert_eq!(answer.to, ada);
        db.add_ack(&answer, 2).unwrap();
        assert!(for_you(&db, today, None).asks.is_empty());
        sync(&mut da, &mut db);
        let mine = for_you(&da, today, None);
        assert_eq!(mine.replies.len(), 1);
        assert_eq!(mine.replies[0].note.as_deref(), Some("I'll take bedtime"));
        assert!(mine.received.is_empty());
        assert!(mine.checked_in_today);
        // Once looked at, it is not new any more.
        assert!(for_you(&da, today, Some(T0 + 1000)).replies.is_empty());

        // Nobody replies to their own ask, or to a check-in without one.
        assert!(reply(
            &da,
            Uuid::from_u128(21),
            Uuid::from_u128(10),
            "x",
            answer.when
        )
        .is_err());
        db.add_checkin(&checkin(bo, 12, T0, None), 1).unwrap();
        sync(&mut da, &mut db);
        assert!(reply(
            &da,
            Uuid::from_u128(22),
            Uuid::from_u128(12),
            "x",
            answer.when
        )
        .is_err());
        assert!(reply(
            &db,
            Uuid::from_u128(23),
            Uuid::from_u128(10),
            "  ",
            answer.when
        )
        .is_err());
    }
}
