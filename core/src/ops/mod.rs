//! The rules a write must pass whoever sends it: the CLI, a script speaking JSON to the
//! control socket, or a modified client. They live here, not in the CLI, so the daemon
//! applies them to every request.
//!
//! Pure: the current time, new ids and sealing keys come in as arguments ([`Fresh`]),
//! so core reads no clock and no OS random source. Each use case is one function over
//! [`Docs`] that returns what it wrote and which documents it touched; the daemon turns
//! that into an answer and makes the touched documents durable.
//!
//! - the rules on values and people: here;
//! - [`records`]: the entries and the ledger, built from a request and written;
//! - [`roster`]: devices, pausing, leaving and pairing's roster merge;
//! - [`transfer`]: `export` and `import`;
//! - [`log`]: the timeline, and the ledger's default listing;
//! - [`bundle`]: offline bundles, made and taken in.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::doc::{DocKind, Docs};
use crate::model::{Millis, Person, PersonId, When};

pub mod bundle;
pub mod log;
pub mod records;
pub mod roster;
pub mod transfer;

/// Where a write's new ids and sealing keys come from. The daemon draws them from the
/// operating system; tests from a seeded generator.
pub trait Fresh {
    /// A new record id.
    fn id(&mut self) -> Uuid;
    /// A new key for one reveal-together answer: nothing but it opens the answer.
    fn sealing_key(&mut self) -> age::x25519::Identity;
}

/// The documents a write changed, with the record kinds (collection keys) that changed
/// in each. The owner makes exactly these durable before anyone hears of the write.
pub type Touched = BTreeMap<DocKind, BTreeSet<&'static str>>;

/// What a write produced, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Written<T> {
    /// The record as written (or the use case's answer).
    pub record: T,
    /// The documents it changed.
    pub touched: Touched,
}

impl<T> Written<T> {
    /// A record of kind `kind` written into `doc`.
    pub fn one(record: T, doc: DocKind, kind: &'static str) -> Written<T> {
        Written {
            record,
            touched: BTreeMap::from([(doc, BTreeSet::from([kind]))]),
        }
    }

    /// An answer that wrote nothing.
    pub fn nothing(record: T) -> Written<T> {
        Written {
            record,
            touched: Touched::new(),
        }
    }
}

/// How far in the future an entry's time may point; a few minutes absorb clock skew
/// between the device that wrote the request and the daemon.
pub const FUTURE_SLACK_MS: i64 = 5 * 60 * 1000;

/// The widest UTC offsets in use on Earth: UTC−12:00 to UTC+14:00.
pub const UTC_OFFSET_MIN_RANGE: std::ops::RangeInclusive<i32> = -12 * 60..=14 * 60;

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpsError {
    /// The entry's time lies in the future.
    #[error(
        "that time is in the future; an entry's time is for filling in a moment that already \
         happened (leave it out to mean now)"
    )]
    InTheFuture,
    /// The UTC offset is not one any place uses.
    #[error(
        "a UTC offset of {minutes} minutes is not one any place uses; give one between \
         -720 and 840 minutes (UTC−12:00 to UTC+14:00)"
    )]
    NoSuchOffset {
        /// The offset given.
        minutes: i32,
    },
    /// A text that must say something was empty.
    #[error("the {field} is empty; write a few words")]
    Empty {
        /// Which text.
        field: &'static str,
    },
    /// `partner` was asked for before a partner joined.
    #[error("no partner has joined this household yet")]
    NoPartnerYet,
    /// Nobody in the household has that name or id.
    #[error("nobody called `{who}` is in this household")]
    NoSuchPerson {
        /// What was asked for.
        who: String,
    },
    /// Several people match.
    #[error("`{who}` matches more than one person")]
    AmbiguousPerson {
        /// What was asked for.
        who: String,
    },
}

impl OpsError {
    /// What to do next, for an API error's hint.
    pub fn hint(&self) -> &'static str {
        match self {
            OpsError::InTheFuture => "leave the time out to mean now, or give a past one",
            OpsError::NoSuchOffset { .. } => "send the offset in minutes east of UTC",
            OpsError::Empty { .. } => "write a few words",
            OpsError::NoPartnerYet => "pair your partner's device with `hearth pair invite`",
            OpsError::NoSuchPerson { .. } => {
                "use `me`, `partner`, or a name shown by `hearth status`"
            }
            OpsError::AmbiguousPerson { .. } => "use `me`, `partner`, or the person's id",
        }
    }
}

/// When an entry happened: `at` (Unix ms, `None` for now) in the author's UTC offset.
/// Refuses a time more than [`FUTURE_SLACK_MS`] ahead of `now`, and an offset no place
/// uses.
pub fn entry_when(at: Option<Millis>, utc_offset_min: i32, now: Millis) -> Result<When, OpsError> {
    if !UTC_OFFSET_MIN_RANGE.contains(&utc_offset_min) {
        return Err(OpsError::NoSuchOffset {
            minutes: utc_offset_min,
        });
    }
    let at = at.unwrap_or(now);
    if at > now.saturating_add(FUTURE_SLACK_MS) {
        return Err(OpsError::InTheFuture);
    }
    Ok(When::from_utc(at, utc_offset_min))
}

/// An optional free text as it is kept: trimmed, and absent when nothing is left.
pub fn optional_text(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}

/// A text that must say something (a title), trimmed.
pub fn required_text(text: &str, field: &'static str) -> Result<String, OpsError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(OpsError::Empty { field });
    }
    Ok(trimmed.to_string())
}

/// The person `who` names, or `default` (`me`, `partner`, ...) when the request left it
/// out.
pub fn person_or(docs: &Docs, who: Option<&str>, default: &str) -> Result<PersonId, OpsError> {
    let who = who.unwrap_or(default);
    // `me` needs no look at the roster, and it is what nearly every write names.
    if names_me(who) {
        return Ok(docs.me);
    }
    resolve_person(&docs.people(), docs.me, who)
}

/// Whether `who` is `me`, in any case and with spaces around.
fn names_me(who: &str) -> bool {
    who.trim().eq_ignore_ascii_case("me")
}

/// The name people see for `id`, or "someone" for a person not on the roster.
pub fn name_of(docs: &Docs, id: PersonId) -> String {
    docs.people()
        .into_iter()
        .find(|p| p.id == id)
        .map(|p| p.name)
        .unwrap_or_else(|| "someone".into())
}

/// The person `who` names: `me`, `partner`, a display name (any case) or an id prefix,
/// among `people`, where `me` is the asking person.
pub fn resolve_person(people: &[Person], me: PersonId, who: &str) -> Result<PersonId, OpsError> {
    if names_me(who) {
        return Ok(me);
    }
    let wanted = who.trim().to_lowercase();
    if wanted == "partner" {
        return people
            .iter()
            .find(|p| p.id != me)
            .map(|p| p.id)
            .ok_or(OpsError::NoPartnerYet);
    }
    let matches: Vec<&Person> = people
        .iter()
        .filter(|p| p.name.to_lowercase() == wanted || p.id.to_string().starts_with(&wanted))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.id),
        [] => Err(OpsError::NoSuchPerson { who: who.into() }),
        _ => Err(OpsError::AmbiguousPerson { who: who.into() }),
    }
}

/// A [`Fresh`] for tests: ids counted up from 1000, keys from the OS (a key's value never
/// matters to a test, only that it is new).
#[cfg(test)]
pub(crate) struct CountingFresh(pub u128);

#[cfg(test)]
impl Fresh for CountingFresh {
    fn id(&mut self) -> Uuid {
        self.0 += 1;
        Uuid::from_u128(1000 + self.0)
    }

    fn sealing_key(&mut self) -> age::x25519::Identity {
        age::x25519::Identity::generate()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NOW: Millis = 1_767_225_600_000;

    #[test]
    fn an_entry_may_be_now_or_past_but_not_ahead_beyond_the_slack() {
        assert_eq!(entry_when(None, 60, NOW).unwrap().at, NOW);
        assert_eq!(entry_when(Some(NOW - 1), 0, NOW).unwrap().at, NOW - 1);
        assert!(entry_when(Some(NOW + FUTURE_SLACK_MS), 0, NOW).is_ok());
        assert_eq!(
            entry_when(Some(NOW + FUTURE_SLACK_MS + 1), 0, NOW),
            Err(OpsError::InTheFuture)
        );
        assert_eq!(
            entry_when(Some(i64::MAX), 0, NOW),
            Err(OpsError::InTheFuture)
        );
    }

    #[test]
    fn the_local_date_follows_the_offset_and_offsets_are_real_ones() {
        // 20:30 UTC is already the next day at +05:00.
        let evening = NOW + (20 * 60 + 30) * 60_000 - 24 * 3_600_000;
        let when = entry_when(Some(evening), 300, NOW).unwrap();
        assert_eq!(when.date.to_string(), "2026-01-01");
        for minutes in [-721, 841, i32::MIN, i32::MAX] {
            assert_eq!(
                entry_when(None, minutes, NOW),
                Err(OpsError::NoSuchOffset { minutes })
            );
        }
        assert!(entry_when(None, -720, NOW).is_ok() && entry_when(None, 840, NOW).is_ok());
    }

    #[test]
    fn texts_are_trimmed_and_blank_ones_dropped() {
        assert_eq!(
            optional_text(Some("  long week \n".into())),
            Some("long week".into())
        );
        assert_eq!(optional_text(Some(" \t ".into())), None);
        assert_eq!(optional_text(None), None);
        assert_eq!(required_text("  Bins ", "title").unwrap(), "Bins");
        assert_eq!(
            required_text("   ", "title"),
            Err(OpsError::Empty { field: "title" })
        );
    }

    #[test]
    fn people_are_found_by_me_partner_name_or_id_prefix() {
        let person = |n: u128, name: &str| Person {
            id: uuid::Uuid::from_u128(n),
            name: name.into(),
            joined_at: 0,
        };
        let ada = person(0xada0_0000_0000_0000_0000_0000_0000_0001, "Ada");
        let bo = person(0xb000_0000_0000_0000_0000_0000_0000_0002, "Bo");
        let alone = [ada.clone()];
        assert_eq!(resolve_person(&alone, ada.id, " ME "), Ok(ada.id));
        assert_eq!(
            resolve_person(&alone, ada.id, "partner"),
            Err(OpsError::NoPartnerYet)
        );
        let both = [ada.clone(), bo.clone()];
        assert_eq!(resolve_person(&both, ada.id, "partner"), Ok(bo.id));
        assert_eq!(resolve_person(&both, ada.id, "bo"), Ok(bo.id));
        assert_eq!(resolve_person(&both, ada.id, "ada0"), Ok(ada.id));
        assert_eq!(
            resolve_person(&both, ada.id, "Cy"),
            Err(OpsError::NoSuchPerson { who: "Cy".into() })
        );
        let twins = [ada.clone(), person(3, "ada")];
        assert_eq!(
            resolve_person(&twins, ada.id, "Ada"),
            Err(OpsError::AmbiguousPerson { who: "Ada".into() })
        );
    }
}
