//! The domain model: every record a household keeps, its stable keys and its validation.
//!
//! These are plain data types. They know nothing of Automerge (see [`crate::doc`]) or of
//! storage. Enum values serialize to the stable keys of DESIGN.md §1, which the CLI flags,
//! the JSON output and the documents all share, so a key must never be renamed.
//!
//! Times are Unix milliseconds (UTC) plus the author's local date and UTC offset, so that
//! insights can group by the day the person lived, whatever time zone they were in.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The schema version written into every document. New fields are optional so that a
/// document written by an older daemon still loads.
pub const SCHEMA_VERSION: u64 = 1;

/// Upper bound on titles and display names, in characters.
pub const MAX_TITLE_CHARS: usize = 120;
/// Upper bound on free-text notes, in characters.
pub const MAX_NOTE_CHARS: usize = 4000;

/// Unix time in milliseconds.
pub type Millis = i64;
/// A person in the household.
pub type PersonId = Uuid;

/// A problem with a record, naming the field and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// A number is outside its allowed range.
    #[error("{field} must be between {min} and {max}, but was {value}")]
    OutOfRange {
        /// The field's stable name.
        field: &'static str,
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
        /// The value given.
        value: i64,
    },
    /// A required text field is empty.
    #[error("{field} cannot be empty; please write a few words")]
    Empty {
        /// The field's stable name.
        field: &'static str,
    },
    /// A text field is too long.
    #[error("{field} is {len} characters long; please keep it under {max}")]
    TooLong {
        /// The field's stable name.
        field: &'static str,
        /// Allowed length in characters.
        max: usize,
        /// Actual length in characters.
        len: usize,
    },
    /// A value is not one of the closed set of keys.
    #[error("`{value}` is not a known {field}; use one of: {allowed}")]
    UnknownKey {
        /// The field's stable name.
        field: &'static str,
        /// The value given.
        value: String,
        /// The allowed keys, comma separated.
        allowed: String,
    },
    /// A reference points at a record that does not exist.
    #[error("{field} points at {id}, which does not exist here; check the id with `hearth log` or `hearth ledger list`")]
    UnknownReference {
        /// The field's stable name.
        field: &'static str,
        /// The missing id.
        id: String,
    },
    /// A record breaks a rule that involves several fields.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field's stable name.
        field: &'static str,
        /// What is wrong, in plain words.
        reason: String,
    },
}

/// Declares a closed enum whose serialized form is a stable key.
macro_rules! stable_keys {
    ($(#[$meta:meta])* $name:ident, $field:literal { $($(#[$vmeta:meta])* $variant:ident => $key:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $key)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable key.
            pub fn key(self) -> &'static str {
                match self { $($name::$variant => $key),+ }
            }

            /// The allowed keys, comma separated, for error messages and help text.
            pub fn allowed() -> String {
                [$($key),+].join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.key())
            }
        }

        impl FromStr for $name {
            type Err = ValidationError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let wanted = s.trim().to_ascii_lowercase();
                match wanted.as_str() {
                    $($key => Ok($name::$variant),)+
                    _ => Err(ValidationError::UnknownKey {
                        field: $field,
                        value: s.to_string(),
                        allowed: Self::allowed(),
                    }),
                }
            }
        }
    };
}

stable_keys!(
    /// Burnout signs, each rated 0–4.
    BurnoutSign, "burnout sign" {
        /// Dread of time together.
        Dread => "dread",
        /// Numbness in conversation.
        Numb => "numb",
        /// Irritation at small things.
        Irritation => "irritation",
        /// Warmth or curiosity is hard to reach.
        Warmth => "warmth",
        /// Wishing for relief elsewhere.
        Relief => "relief",
    }
);

stable_keys!(
    /// Body signs, each a flag.
    BodySign, "body sign" {
        /// Poor concentration.
        Concentration => "concentration",
        /// Fatigue.
        Fatigue => "fatigue",
        /// Decisions feel hard.
        Decisions => "decisions",
        /// Digestion trouble.
        Digestion => "digestion",
        /// Aches or tension.
        Aches => "aches",
        /// Sensitivity to light or noise.
        Sensitivity => "sensitivity",
        /// Clumsiness.
        Clumsiness => "clumsiness",
        /// Forgetfulness.
        Forgetfulness => "forgetfulness",
        /// Sleeping too little or too much.
        Sleep => "sleep",
        /// Numbness.
        Numbness => "numbness",
        /// Getting sick often.
        Sickness => "sickness",
        /// Hair loss.
        HairLoss => "hair-loss",
    }
);

stable_keys!(
    /// The basics that recovery starts with.
    Basic, "basic" {
        /// Sleep.
        Sleep => "sleep",
        /// Food.
        Food => "food",
        /// Feeling safe.
        Safety => "safety",
        /// Rest.
        Rest => "rest",
    }
);

stable_keys!(
    /// How well a basic was met.
    BasicLevel, "basics level" {
        /// Met.
        Met => "met",
        /// Partly met.
        Partly => "partly",
        /// Not met.
        No => "no",
    }
);

stable_keys!(
    /// The answers of a check-in that stay the author's own unless they share them for
    /// that entry (THREAT-MODEL.md P8): whether they feel safe, and their wish for relief
    /// elsewhere. Either can put someone at risk when the partner reads it.
    OwnAnswer, "own answer" {
        /// The `safety` basic.
        Safety => "safety",
        /// The `relief` burnout sign.
        Relief => "relief",
    }
);

stable_keys!(
    /// Where a check-in or reflection lives and who may read it.
    Visibility, "visibility" {
        /// Only the author's own devices.
        Private => "private",
        /// Both partners.
        Shared => "shared",
        /// Sealed until the partner answers the same day or prompt.
        RevealTogether => "reveal-together",
    }
);

stable_keys!(
    /// A reflection answer.
    Answer, "answer" {
        /// Yes.
        Yes => "yes",
        /// No.
        No => "no",
        /// Not sure.
        Unsure => "unsure",
    }
);

stable_keys!(
    /// The stages every responsibility passes through.
    Stage, "stage" {
        /// Noticing that it needs doing.
        Notice => "notice",
        /// Planning it.
        Plan => "plan",
        /// Doing it.
        Do => "do",
        /// Following up afterwards.
        FollowUp => "follow-up",
    }
);

impl Stage {
    /// Noticing and following up are the stages nobody sees.
    pub fn is_invisible(self) -> bool {
        matches!(self, Stage::Notice | Stage::FollowUp)
    }
}

stable_keys!(
    /// Areas of household life.
    Domain, "domain" {
        /// Household.
        Household => "household",
        /// Logistics.
        Logistics => "logistics",
        /// Finances.
        Finances => "finances",
        /// Parenting.
        Parenting => "parenting",
        /// Social life.
        Social => "social",
        /// Emotional upkeep.
        Emotional => "emotional",
        /// Relationship upkeep.
        Relationship => "relationship",
        /// Anything else.
        Other => "other",
    }
);

stable_keys!(
    /// The kind of effort a responsibility takes.
    Labour, "labour type" {
        /// Physical.
        Physical => "physical",
        /// Cognitive.
        Cognitive => "cognitive",
        /// Emotional.
        Emotional => "emotional",
    }
);

stable_keys!(
    /// How often a responsibility comes round.
    Cadence, "cadence" {
        /// Every day.
        Daily => "daily",
        /// Every week.
        Weekly => "weekly",
        /// Every month.
        Monthly => "monthly",
        /// Now and then.
        Occasional => "occasional",
    }
);

stable_keys!(
    /// Whether a responsibility is current.
    ItemStatus, "status" {
        /// Active.
        Active => "active",
        /// Paused for now.
        Paused => "paused",
        /// No longer carried.
        Retired => "retired",
    }
);

stable_keys!(
    /// What an acknowledgment says.
    AckKind, "acknowledgment kind" {
        /// Thank you.
        Thanks => "thanks",
        /// I see this.
        Seen => "seen",
        /// Making things right.
        Repair => "repair",
        /// An answer to the partner's ask on a check-in (`hearth reply`).
        Reply => "reply",
    }
);

stable_keys!(
    /// What an acknowledgment points at.
    TargetKind, "target kind" {
        /// A ledger item.
        Item => "item",
        /// A done entry.
        Done => "done",
        /// A check-in.
        CheckIn => "checkin",
        /// A moment.
        Moment => "moment",
    }
);

stable_keys!(
    /// Where a handoff stands.
    HandoffState, "handoff state" {
        /// Waiting for an answer.
        Open => "open",
        /// Accepted: the stage moved.
        Accepted => "accepted",
        /// Declined.
        Declined => "declined",
        /// Answered with a counter-proposal.
        Countered => "countered",
        /// Withdrawn by the proposer.
        Withdrawn => "withdrawn",
    }
);

stable_keys!(
    /// Kinds of small moments of connection.
    MomentKind, "moment kind" {
        /// A glance.
        Glance => "glance",
        /// A laugh.
        Laugh => "laugh",
        /// A touch.
        Touch => "touch",
        /// Quiet time together.
        Quiet => "quiet",
        /// A talk.
        Talk => "talk",
        /// Something else.
        Other => "other",
    }
);

/// When something happened: the instant and the author's local calendar day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct When {
    /// Unix milliseconds, UTC.
    pub at: Millis,
    /// The author's local date, `YYYY-MM-DD`.
    pub date: chrono::NaiveDate,
    /// The author's UTC offset in minutes at that moment.
    #[serde(default)]
    pub utc_offset_min: i32,
}

impl When {
    /// Builds a `When` from a UTC instant and the author's UTC offset.
    pub fn from_utc(at: Millis, utc_offset_min: i32) -> When {
        // Both numbers may come from a partner's device as written: saturate, so an
        // absurd one gives an absurd date, never an overflow.
        let local_ms = at.saturating_add(i64::from(utc_offset_min).saturating_mul(60_000));
        let date = chrono::DateTime::from_timestamp_millis(local_ms)
            .map(|t| t.date_naive())
            .unwrap_or_default();
        When {
            at,
            date,
            utc_offset_min,
        }
    }
}

/// A person in the household.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// Stable id.
    pub id: PersonId,
    /// Display name, chosen by the person.
    pub name: String,
    /// When the person joined the household.
    pub joined_at: Millis,
}

/// A device on the roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// The device id: base32 of the SHA-256 of its public key.
    pub id: String,
    /// Whose device this is.
    pub person: PersonId,
    /// A friendly device name ("laptop").
    pub name: String,
    /// The Ed25519 public key, hex.
    pub public_key: String,
    /// The device's age recipient, for bundles sealed to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_recipient: Option<String>,
    /// The device that added this one to the roster; `None` for the founding device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_by: Option<String>,
    /// When it was added.
    pub added_at: Millis,
    /// When it was removed, if it was. Only a verified [`Device::removal`] counts; this
    /// field is what the verified roster reports (see `roster::verify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Millis>,
    /// Who admitted the device and as whom, signed (`roster::admit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<String>,
    /// The device's own signature over its key, person, name and recipient
    /// (`roster::self_sign`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_sig: Option<String>,
    /// A signed removal by a device of the same person (`roster::remove`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removal: Option<String>,
}

/// A check-in: how one person is doing today.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckIn {
    /// Stable id.
    pub id: Uuid,
    /// Who wrote it.
    pub author: PersonId,
    /// When.
    #[serde(flatten)]
    pub when: When,
    /// Energy left, 0–100.
    pub battery: u8,
    /// Burnout signs rated 0–4; signs not rated are absent.
    #[serde(default)]
    pub signs: BTreeMap<BurnoutSign, u8>,
    /// Body signs that were present.
    #[serde(default)]
    pub body: BTreeSet<BodySign>,
    /// Basics and how well each was met.
    #[serde(default)]
    pub basics: BTreeMap<Basic, BasicLevel>,
    /// Optional note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Optional ask for the partner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask: Option<String>,
    /// Who may read it.
    pub visibility: Visibility,
    /// The answers of a shared or reveal-together check-in that stay on the author's own
    /// devices (see [`OwnAnswer`]). Only the author's devices ever see this list: what
    /// goes into the household document has neither these answers nor the list.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub kept_to_self: BTreeSet<OwnAnswer>,
}

/// The answers a check-in's author kept to their own devices, stored in their private
/// document next to the shared check-in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnParts {
    /// The `safety` basic, when it was answered and kept.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub basics: BTreeMap<Basic, BasicLevel>,
    /// The `relief` sign, when it was rated and kept.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub signs: BTreeMap<BurnoutSign, u8>,
}

/// A reflection: three questions that help tell running on empty apart from growing
/// apart (the words are the ones `hearth reflect` asks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reflection {
    /// Stable id.
    pub id: Uuid,
    /// Who wrote it.
    pub author: PersonId,
    /// When.
    #[serde(flatten)]
    pub when: When,
    /// If you had more energy, would you want to work on this together?
    pub energy: Answer,
    /// Do you feel emotionally safe with your partner?
    pub safe: Answer,
    /// Are the two of you aligned on what you want?
    pub aligned: Answer,
    /// Optional note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Who may read it.
    pub visibility: Visibility,
}

impl Reflection {
    /// "Yes" to all three points to burnout rather than incompatibility.
    pub fn all_yes(&self) -> bool {
        [self.energy, self.safe, self.aligned]
            .iter()
            .all(|a| *a == Answer::Yes)
    }
}

/// Who holds each stage of a responsibility.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owners {
    /// Who notices it needs doing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<PersonId>,
    /// Who plans it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PersonId>,
    /// Who does it.
    #[serde(default, rename = "do", skip_serializing_if = "Option::is_none")]
    pub do_: Option<PersonId>,
    /// Who follows up.
    #[serde(default, rename = "follow-up", skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<PersonId>,
}

impl Owners {
    /// The owner of one stage.
    pub fn get(&self, stage: Stage) -> Option<PersonId> {
        match stage {
            Stage::Notice => self.notice,
            Stage::Plan => self.plan,
            Stage::Do => self.do_,
            Stage::FollowUp => self.follow_up,
        }
    }

    /// Sets the owner of one stage.
    pub fn set(&mut self, stage: Stage, owner: Option<PersonId>) {
        match stage {
            Stage::Notice => self.notice = owner,
            Stage::Plan => self.plan = owner,
            Stage::Do => self.do_ = owner,
            Stage::FollowUp => self.follow_up = owner,
        }
    }

    /// Every owner the same person.
    pub fn all(owner: PersonId) -> Owners {
        Owners {
            notice: Some(owner),
            plan: Some(owner),
            do_: Some(owner),
            follow_up: Some(owner),
        }
    }
}

/// A responsibility the household carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerItem {
    /// Stable id.
    pub id: Uuid,
    /// What it is. Both partners may edit it; edits merge as text.
    pub title: String,
    /// Area of life.
    pub domain: Domain,
    /// Kind of effort.
    pub labour: Labour,
    /// Whether the work is easy to see.
    #[serde(default)]
    pub invisible: bool,
    /// Who holds each stage.
    #[serde(default)]
    pub owners: Owners,
    /// How often it comes round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cadence: Option<Cadence>,
    /// Rough minutes per week.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes_per_week: Option<u32>,
    /// How heavy it feels, 1–3.
    pub weight: u8,
    /// The "good enough" standard both agreed. Edits merge as text.
    #[serde(default)]
    pub good_enough: String,
    /// Whether it is current.
    pub status: ItemStatus,
    /// Who agreed to the standard.
    #[serde(default)]
    pub agreed_by: BTreeSet<PersonId>,
    /// When they last agreed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreed_at: Option<Millis>,
    /// Who added it.
    pub created_by: PersonId,
    /// When it was added.
    pub created_at: Millis,
    /// The adder's UTC offset in minutes then, so `log` shows the creation in their
    /// local time. Items added before this field existed read as UTC.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub created_utc_offset_min: i32,
    /// For a paused item ("do less for now"), the day it is meant to come back, if one
    /// was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_until: Option<chrono::NaiveDate>,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// Someone did a listed item, or a piece of unlisted invisible work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneEntry {
    /// Stable id.
    pub id: Uuid,
    /// The ledger item, when it is a listed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<Uuid>,
    /// A short label, for unlisted work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Who did it.
    pub by: PersonId,
    /// When.
    #[serde(flatten)]
    pub when: When,
    /// Roughly how long it took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u32>,
    /// Optional note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What an acknowledgment points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The kind of record.
    pub kind: TargetKind,
    /// Its id.
    pub id: Uuid,
}

/// "I see this."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgment {
    /// Stable id.
    pub id: Uuid,
    /// Who says it.
    pub from: PersonId,
    /// To whom.
    pub to: PersonId,
    /// What it is about.
    pub target: Target,
    /// What it says.
    pub kind: AckKind,
    /// When.
    #[serde(flatten)]
    pub when: When,
    /// Optional note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A proposal to move one stage of an item to the other partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    /// Stable id.
    pub id: Uuid,
    /// The item.
    pub item: Uuid,
    /// The stage to move.
    pub stage: Stage,
    /// Who proposes it.
    pub from: PersonId,
    /// Who would take the stage.
    pub to: PersonId,
    /// When it was proposed.
    #[serde(flatten)]
    pub when: When,
    /// Optional note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Where it stands.
    pub state: HandoffState,
    /// Who answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<PersonId>,
    /// When it was answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<Millis>,
    /// The counter-proposal, when countered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counter: Option<String>,
}

/// A small moment of connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moment {
    /// Stable id.
    pub id: Uuid,
    /// What kind.
    pub kind: MomentKind,
    /// Who started it.
    pub started_by: PersonId,
    /// When.
    #[serde(flatten)]
    pub when: When,
    /// Optional note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn check_range(field: &'static str, value: i64, min: i64, max: i64) -> Result<(), ValidationError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ValidationError::OutOfRange {
            field,
            min,
            max,
            value,
        })
    }
}

/// Checks a required, bounded, single-line text such as a title or a name.
pub fn check_title(field: &'static str, text: &str) -> Result<(), ValidationError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(ValidationError::Empty { field });
    }
    let len = trimmed.chars().count();
    if len > MAX_TITLE_CHARS {
        return Err(ValidationError::TooLong {
            field,
            max: MAX_TITLE_CHARS,
            len,
        });
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ValidationError::Invalid {
            field,
            reason: "it must be a single line without control characters".into(),
        });
    }
    Ok(())
}

fn check_note(field: &'static str, note: &Option<String>) -> Result<(), ValidationError> {
    if let Some(text) = note {
        let len = text.chars().count();
        if len > MAX_NOTE_CHARS {
            return Err(ValidationError::TooLong {
                field,
                max: MAX_NOTE_CHARS,
                len,
            });
        }
    }
    Ok(())
}

impl CheckIn {
    /// Checks ranges and lengths.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_range("battery", i64::from(self.battery), 0, 100)?;
        for rating in self.signs.values() {
            check_range("sign rating", i64::from(*rating), 0, 4)?;
        }
        check_note("note", &self.note)?;
        check_note("ask", &self.ask)
    }

    /// Whether the entry carries this answer at all.
    pub fn has(&self, answer: OwnAnswer) -> bool {
        match answer {
            OwnAnswer::Safety => self.basics.contains_key(&Basic::Safety),
            OwnAnswer::Relief => self.signs.contains_key(&BurnoutSign::Relief),
        }
    }

    /// Keeps every answer of [`OwnAnswer`] that the entry carries to the author: the
    /// default for a shared entry, unless the author chose to share them.
    pub fn keep_own_answers(&mut self) {
        self.kept_to_self = OwnAnswer::ALL
            .iter()
            .copied()
            .filter(|a| self.has(*a))
            .collect();
    }

    /// Splits the entry into what may be shared and what stays with the author: the
    /// answers listed in `kept_to_self` go to the second part, and the first carries
    /// neither them nor the list. A private entry keeps everything in the first part.
    pub fn split_own(&self) -> (CheckIn, Option<OwnParts>) {
        let mut shared = self.clone();
        shared.kept_to_self.clear();
        if self.visibility == Visibility::Private {
            return (shared, None);
        }
        let mut own = OwnParts::default();
        for answer in &self.kept_to_self {
            match answer {
                OwnAnswer::Safety => {
                    if let Some(level) = shared.basics.remove(&Basic::Safety) {
                        own.basics.insert(Basic::Safety, level);
                    }
                }
                OwnAnswer::Relief => {
                    if let Some(rating) = shared.signs.remove(&BurnoutSign::Relief) {
                        own.signs.insert(BurnoutSign::Relief, rating);
                    }
                }
            }
        }
        let own = (!own.basics.is_empty() || !own.signs.is_empty()).then_some(own);
        (shared, own)
    }

    /// Puts the author's own answers back into the entry, for the author's own view.
    pub fn merge_own(&mut self, own: OwnParts) {
        for (basic, level) in own.basics {
            if basic == Basic::Safety {
                self.kept_to_self.insert(OwnAnswer::Safety);
            }
            self.basics.insert(basic, level);
        }
        for (sign, rating) in own.signs {
            if sign == BurnoutSign::Relief {
                self.kept_to_self.insert(OwnAnswer::Relief);
            }
            self.signs.insert(sign, rating);
        }
    }
}

impl Reflection {
    /// Checks lengths.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_note("note", &self.note)
    }
}

impl LedgerItem {
    /// When it was added, with the adder's local date.
    pub fn created(&self) -> When {
        When::from_utc(self.created_at, self.created_utc_offset_min)
    }

    /// Checks the title, weight, minutes and standard.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_title("title", &self.title)?;
        check_range("weight", i64::from(self.weight), 1, 3)?;
        if let Some(minutes) = self.minutes_per_week {
            check_range("minutes per week", i64::from(minutes), 0, 7 * 24 * 60)?;
        }
        check_note("good enough", &Some(self.good_enough.clone()))
    }
}

impl DoneEntry {
    /// A done entry names an item or carries a label for unlisted work.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match (&self.item, &self.label) {
            (None, None) => {
                return Err(ValidationError::Invalid {
                    field: "item",
                    reason: "name a ledger item, or give a label for unlisted work".into(),
                })
            }
            (_, Some(label)) => check_title("label", label)?,
            _ => {}
        }
        if let Some(minutes) = self.minutes {
            check_range("minutes", i64::from(minutes), 0, 24 * 60)?;
        }
        check_note("note", &self.note)
    }
}

impl Acknowledgment {
    /// Checks lengths.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_note("note", &self.note)
    }
}

impl Handoff {
    /// A handoff goes to someone else.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.from == self.to {
            return Err(ValidationError::Invalid {
                field: "to",
                reason: "a handoff moves a stage to the other partner".into(),
            });
        }
        check_note("note", &self.note)?;
        check_note("counter", &self.counter)
    }
}

impl Moment {
    /// Checks lengths.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_note("note", &self.note)
    }
}

impl Person {
    /// Checks the display name.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_title("name", &self.name)
    }
}

impl Device {
    /// A roster entry as first written, before anyone admits, signs or removes it.
    pub fn unsigned(id: String, person: PersonId, name: String, public_key: String) -> Device {
        Device {
            id,
            person,
            name,
            public_key,
            age_recipient: None,
            added_by: None,
            added_at: 0,
            revoked_at: None,
            admission: None,
            self_sig: None,
            removal: None,
        }
    }

    /// Checks the device name.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_title("device name", &self.name)
    }
}

/// A person's pause of sharing with the partner (`hearth pause`).
///
/// It lives beside the person's record in the household document (see
/// `Docs::set_pause`), so the partner's devices learn of it through sync before it takes
/// effect. Only the pausing person's devices act on it: they hold their sessions with the
/// other person's devices. The partner's devices only show it, which is what lets a
/// resume travel back to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// When the pause began.
    pub since: Millis,
    /// When it ends by itself; `None` until `hearth resume`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Millis>,
}

impl Pause {
    /// Whether the pause holds at `now`.
    pub fn active_at(&self, now: Millis) -> bool {
        self.since <= now && self.until.is_none_or(|until| now < until)
    }

    /// Checks that a pause with an end ends after it begins.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self.until {
            Some(until) if until <= self.since => Err(ValidationError::Invalid {
                field: "until",
                reason: "a pause must end after it begins".into(),
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn when() -> When {
        When::from_utc(1_700_000_000_000, 60)
    }

    fn checkin() -> CheckIn {
        CheckIn {
            id: Uuid::nil(),
            author: Uuid::nil(),
            when: when(),
            battery: 50,
            signs: BTreeMap::new(),
            body: BTreeSet::new(),
            basics: BTreeMap::new(),
            note: None,
            ask: None,
            visibility: Visibility::Shared,
            kept_to_self: Default::default(),
        }
    }

    #[test]
    fn stable_keys_round_trip_through_json_and_text() {
        for stage in Stage::ALL {
            let json = serde_json::to_string(stage).unwrap();
            assert_eq!(json, format!("\"{}\"", stage.key()));
            assert_eq!(stage.key().parse::<Stage>().unwrap(), *stage);
        }
        assert_eq!("hair-loss".parse::<BodySign>().unwrap(), BodySign::HairLoss);
        assert_eq!("Follow-Up".parse::<Stage>().unwrap(), Stage::FollowUp);
    }

    #[test]
    fn unknown_key_lists_the_allowed_ones() {
        let err = "grumpy".parse::<BurnoutSign>().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("grumpy"), "{msg}");
        assert!(
            msg.contains("dread, numb, irritation, warmth, relief"),
            "{msg}"
        );
    }

    #[test]
    fn battery_over_100_names_the_field_and_range() {
        let mut c = checkin();
        c.battery = 101;
        let err = c.validate().unwrap_err();
        assert_eq!(
            err,
            ValidationError::OutOfRange {
                field: "battery",
                min: 0,
                max: 100,
                value: 101
            }
        );
        assert_eq!(
            err.to_string(),
            "battery must be between 0 and 100, but was 101"
        );
    }

    #[test]
    fn sign_rating_over_4_is_refused() {
        let mut c = checkin();
        c.signs.insert(BurnoutSign::Dread, 5);
        assert!(matches!(
            c.validate(),
            Err(ValidationError::OutOfRange {
                field: "sign rating",
                max: 4,
                ..
            })
        ));
    }

    #[test]
    fn long_note_is_refused_with_the_limit() {
        let mut c = checkin();
        c.ask = Some("x".repeat(MAX_NOTE_CHARS + 1));
        let err = c.validate().unwrap_err();
        assert!(err.to_string().contains("ask is 4001 characters"), "{err}");
    }

    #[test]
    fn titles_must_be_present_bounded_and_single_line() {
        assert_eq!(
            check_title("title", "   "),
            Err(ValidationError::Empty { field: "title" })
        );
        assert!(matches!(
            check_title("title", &"a".repeat(MAX_TITLE_CHARS + 1)),
            Err(ValidationError::TooLong { .. })
        ));
        assert!(matches!(
            check_title("title", "a\nb"),
            Err(ValidationError::Invalid { .. })
        ));
        assert!(check_title("title", "Bins out on Tuesday").is_ok());
    }

    #[test]
    fn ledger_weight_is_one_to_three() {
        let item = LedgerItem {
            id: Uuid::nil(),
            title: "Bins".into(),
            domain: Domain::Household,
            labour: Labour::Physical,
            invisible: false,
            owners: Owners::default(),
            cadence: None,
            minutes_per_week: None,
            weight: 4,
            good_enough: String::new(),
            status: ItemStatus::Active,
            agreed_by: BTreeSet::new(),
            agreed_at: None,
            created_by: Uuid::nil(),
            created_at: 0,
            created_utc_offset_min: 0,
            paused_until: None,
        };
        assert!(matches!(
            item.validate(),
            Err(ValidationError::OutOfRange {
                field: "weight",
                ..
            })
        ));
    }

    #[test]
    fn done_entry_needs_an_item_or_a_label() {
        let done = DoneEntry {
            id: Uuid::nil(),
            item: None,
            label: None,
            by: Uuid::nil(),
            when: when(),
            minutes: None,
            note: None,
        };
        assert!(matches!(
            done.validate(),
            Err(ValidationError::Invalid { field: "item", .. })
        ));
    }

    #[test]
    fn handoff_to_oneself_is_refused() {
        let h = Handoff {
            id: Uuid::nil(),
            item: Uuid::nil(),
            stage: Stage::Plan,
            from: Uuid::nil(),
            to: Uuid::nil(),
            when: when(),
            note: None,
            state: HandoffState::Open,
            answered_by: None,
            answered_at: None,
            counter: None,
        };
        assert!(h.validate().is_err());
    }

    #[test]
    fn local_date_follows_the_utc_offset() {
        // 2023-11-14T22:13:20Z is already the 15th in UTC+2.
        let w = When::from_utc(1_700_000_000_000, 120);
        assert_eq!(w.date.to_string(), "2023-11-15");
        let w = When::from_utc(1_700_000_000_000, -600);
        assert_eq!(w.date.to_string(), "2023-11-14");
    }

    #[test]
    fn an_absurd_time_from_a_partners_record_gives_a_date_not_an_overflow() {
        // A modified client can write any time and offset into the household (a ledger
        // item's `created_at` and `created_utc_offset_min`, read by `log`).
        for (at, offset) in [(i64::MAX, i32::MAX), (i64::MIN, i32::MIN), (0, i32::MAX)] {
            let w = When::from_utc(at, offset);
            assert_eq!((w.at, w.utc_offset_min), (at, offset));
        }
    }

    #[test]
    fn checkin_json_uses_stable_keys_and_flattened_time() {
        let mut c = checkin();
        c.signs.insert(BurnoutSign::Warmth, 2);
        c.body.insert(BodySign::HairLoss);
        c.basics.insert(Basic::Sleep, BasicLevel::Partly);
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["signs"]["warmth"], 2);
        assert_eq!(v["body"][0], "hair-loss");
        assert_eq!(v["basics"]["sleep"], "partly");
        assert_eq!(v["date"], "2023-11-14");
        let back: CheckIn = serde_json::from_value(v).unwrap();
        assert_eq!(back, c);
    }
}
