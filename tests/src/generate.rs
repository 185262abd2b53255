//! A seeded generator of realistic household data for two partners over months or years.
//!
//! This module owns the *shape* of believable data: daily check-ins whose battery and
//! signs drift through rough patches and longer lingering stretches, about forty ledger
//! items across domains with mixed owners, about five done entries and one moment a day,
//! weekly acknowledgments and handoffs that get accepted, declined, countered or
//! withdrawn, and a monthly reflection each. It must not reach around the typed API: every
//! record is written through [`Docs`], so validation runs on all of it, and each partner
//! writes through their own `Docs` (own Automerge actor), so the household document ends
//! up with the two-writer history a real one has.
//!
//! Everything is a pure function of the seed, the options and the start time: no clock,
//! no thread RNG. The same seed gives the same ids, times and contents, which the
//! benchmark (comparable figures), the insights tests (known rough patches) and the CLI
//! demo rely on.
//!
//! The generator first plans each day as a list of [`Op`]s in time order, then
//! [`Household::apply`] writes them. Callers that need to write through some other path
//! (for example the control API) can drive [`Generator`] themselves and translate the ops.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use automerge::ActorId;
use chrono::NaiveDate;
use hearth_core::doc::{DocError, Docs};
use hearth_core::identity::DeviceId;
use hearth_core::model::{
    AckKind, Acknowledgment, Answer, Basic, BasicLevel, BodySign, BurnoutSign, Cadence, CheckIn,
    Device, Domain, DoneEntry, Handoff, HandoffState, ItemStatus, Labour, LedgerItem, Millis,
    Moment, MomentKind, Owners, Person, PersonId, Reflection, Stage, Target, TargetKind,
    Visibility, When,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

/// One day in milliseconds.
pub const DAY_MS: Millis = 86_400_000;
/// 2020-01-06T00:00:00Z, a Monday: the default first day of generated data.
pub const DEFAULT_START_MS: Millis = 1_578_268_800_000;

/// Problems while generating.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// The typed API refused a generated record. The generator only plans records that
    /// should be valid, so this points at a bug in the generator or in the API.
    #[error("day {day}: writing a {what} failed: {source}; the generator planned something the document refused, which is a bug in one of them")]
    Write {
        /// Days since the start.
        day: u32,
        /// The kind of operation.
        what: &'static str,
        /// The document's error.
        #[source]
        source: Box<DocError>,
    },
    /// Merging the partners' household documents failed.
    #[error("merging the partners' household documents failed: {0}; this is a bug in Automerge or in the document layout")]
    Merge(#[from] automerge::AutomergeError),
    /// The options make no sense.
    #[error("{0}; pass a positive number of years and a UTC offset within ±14 hours")]
    Options(String),
}

/// Which partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Who {
    /// The partner who founded the household. In generated data this partner carries
    /// more of the invisible stages, so balance insights have something to find.
    A,
    /// The partner who joined.
    B,
}

impl Who {
    /// The other partner.
    pub fn other(self) -> Who {
        match self {
            Who::A => Who::B,
            Who::B => Who::A,
        }
    }

    fn index(self) -> usize {
        match self {
            Who::A => 0,
            Who::B => 1,
        }
    }
}

/// A two-person household: each partner's device with its own documents.
#[derive(Debug, Clone)]
pub struct Household {
    /// Partner A's device (founder).
    pub a: Docs,
    /// Partner B's device.
    pub b: Docs,
    /// The two people, A then B.
    pub people: [Person; 2],
    /// One device each, A's then B's.
    pub devices: [Device; 2],
}

impl Household {
    /// A household of two people with one device each, everything derived from `seed`.
    ///
    /// A founds it and writes both people and both devices, as the inviting daemon does
    /// at pairing; B's device then receives the household document by merge.
    pub fn new(seed: u64, start_ms: Millis) -> Result<Household, GenerateError> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x4845_4152_5448_0001);
        let people = [
            Person {
                id: uuid(&mut rng),
                name: "Alex".into(),
                joined_at: start_ms,
            },
            Person {
                id: uuid(&mut rng),
                name: "Sam".into(),
                joined_at: start_ms + 60_000,
            },
        ];
        let device =
            |rng: &mut ChaCha8Rng, person: &Person, name: &str, added_by: Option<String>| {
                let public_key: [u8; 32] = rng.gen();
                Device {
                    id: DeviceId::from_public_key(&public_key).to_canonical(),
                    person: person.id,
                    name: name.into(),
                    public_key: public_key.iter().map(|b| format!("{b:02x}")).collect(),
                    age_recipient: None,
                    added_by,
                    added_at: person.joined_at,
                    revoked_at: None,
                    admission: None,
                    self_sig: None,
                    removal: None,
                }
            };
        let device_a = device(&mut rng, &people[0], "laptop", None);
        let device_b = device(&mut rng, &people[1], "phone", Some(device_a.id.clone()));
        let actor_a = ActorId::from(rng.gen::<[u8; 16]>().as_slice());
        let actor_b = ActorId::from(rng.gen::<[u8; 16]>().as_slice());

        let mut a = Docs::new(people[0].id, actor_a);
        let setup = |source| GenerateError::Write {
            day: 0,
            what: "roster entry",
            source: Box::new(source),
        };
        a.add_person(&people[0], start_ms).map_err(setup)?;
        a.put_device(&device_a, start_ms).map_err(setup)?;
        a.add_person(&people[1], people[1].joined_at)
            .map_err(setup)?;
        a.put_device(&device_b, people[1].joined_at)
            .map_err(setup)?;
        let mut b = Docs::new(people[1].id, actor_b);
        b.household
            .automerge_mut()
            .merge(a.household.automerge_mut())?;
        Ok(Household {
            a,
            b,
            people,
            devices: [device_a, device_b],
        })
    }

    /// The person id of a partner.
    pub fn person(&self, who: Who) -> PersonId {
        self.people[who.index()].id
    }

    /// A partner's documents.
    pub fn docs(&self, who: Who) -> &Docs {
        match who {
            Who::A => &self.a,
            Who::B => &self.b,
        }
    }

    /// A partner's documents, for writing.
    pub fn docs_mut(&mut self, who: Who) -> &mut Docs {
        match who {
            Who::A => &mut self.a,
            Who::B => &mut self.b,
        }
    }

    fn who(&self, person: PersonId) -> Who {
        if person == self.people[1].id {
            Who::B
        } else {
            Who::A
        }
    }

    /// Brings both household documents up to date with each other, as sync would.
    pub fn sync(&mut self) -> Result<(), GenerateError> {
        let (a, b) = (&mut self.a.household, &mut self.b.household);
        a.automerge_mut().merge(b.automerge_mut())?;
        b.automerge_mut().merge(a.automerge_mut())?;
        Ok(())
    }

    /// Writes one op through its author's documents.
    pub fn apply(&mut self, op: &Op) -> Result<(), DocError> {
        let who = self.who(op.author());
        apply(self.docs_mut(who), op)
    }
}

/// A change to a ledger item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemEdit {
    /// A new title.
    Title(String),
    /// A new status.
    Status(ItemStatus),
    /// A new owner for one stage.
    Owner(Stage, Option<PersonId>),
    /// The author agrees to the item's "good enough" standard.
    Agree,
}

/// One write, as a partner would make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A daily check-in.
    CheckIn(CheckIn),
    /// A reflection.
    Reflection(Reflection),
    /// A new ledger item.
    AddItem(LedgerItem),
    /// An edit to a ledger item.
    EditItem {
        /// The item.
        id: Uuid,
        /// Who edits it.
        by: PersonId,
        /// When.
        at: Millis,
        /// What changes.
        edit: ItemEdit,
    },
    /// Something done.
    Done(DoneEntry),
    /// An acknowledgment.
    Ack(Acknowledgment),
    /// A handoff proposal.
    Propose(Handoff),
    /// An answer to a handoff.
    Answer {
        /// The handoff.
        id: Uuid,
        /// Who answers.
        by: PersonId,
        /// The answer.
        state: HandoffState,
        /// The counter-proposal, for [`HandoffState::Countered`].
        counter: Option<String>,
        /// When.
        at: Millis,
    },
    /// A moment of connection.
    Moment(Moment),
}

impl Op {
    /// Whose device writes it.
    pub fn author(&self) -> PersonId {
        match self {
            Op::CheckIn(c) => c.author,
            Op::Reflection(r) => r.author,
            Op::AddItem(i) => i.created_by,
            Op::EditItem { by, .. } | Op::Answer { by, .. } => *by,
            Op::Done(d) => d.by,
            Op::Ack(a) => a.from,
            Op::Propose(h) => h.from,
            Op::Moment(m) => m.started_by,
        }
    }

    /// When it is written.
    pub fn at(&self) -> Millis {
        match self {
            Op::CheckIn(c) => c.when.at,
            Op::Reflection(r) => r.when.at,
            Op::AddItem(i) => i.created_at,
            Op::EditItem { at, .. } | Op::Answer { at, .. } => *at,
            Op::Done(d) => d.when.at,
            Op::Ack(a) => a.when.at,
            Op::Propose(h) => h.when.at,
            Op::Moment(m) => m.when.at,
        }
    }

    /// A short name for errors and counts.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::CheckIn(_) => "check-in",
            Op::Reflection(_) => "reflection",
            Op::AddItem(_) => "ledger item",
            Op::EditItem { .. } => "ledger edit",
            Op::Done(_) => "done entry",
            Op::Ack(_) => "acknowledgment",
            Op::Propose(_) => "handoff",
            Op::Answer { .. } => "handoff answer",
            Op::Moment(_) => "moment",
        }
    }
}

/// Writes `op` through `docs`, with the op's own time as the commit time.
pub fn apply(docs: &mut Docs, op: &Op) -> Result<(), DocError> {
    let now = op.at();
    match op {
        Op::CheckIn(c) => docs.add_checkin(c, now),
        Op::Reflection(r) => docs.add_reflection(r, now),
        Op::AddItem(i) => docs.add_ledger_item(i, now),
        Op::EditItem { id, by, edit, .. } => {
            let by = *by;
            docs.update_ledger_item(*id, now, |item| match edit {
                ItemEdit::Title(title) => item.title = title.clone(),
                ItemEdit::Status(status) => item.status = *status,
                ItemEdit::Owner(stage, owner) => item.owners.set(*stage, *owner),
                ItemEdit::Agree => {
                    item.agreed_by.insert(by);
                    item.agreed_at = Some(now);
                }
            })
            .map(|_| ())
        }
        Op::Done(d) => docs.add_done(d, now),
        Op::Ack(a) => docs.add_ack(a, now),
        Op::Propose(h) => docs.propose_handoff(h, now),
        Op::Answer {
            id,
            by,
            state,
            counter,
            ..
        } => docs
            .answer_handoff(*id, *state, *by, counter.clone(), now)
            .map(|_| ()),
        Op::Moment(m) => docs.add_moment(m, now),
    }
}

/// How much data to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// How long a history, in years (fractions allowed).
    pub years: f64,
    /// The seed every choice derives from.
    pub seed: u64,
    /// The first day: Unix milliseconds of its 00:00 UTC.
    pub start_ms: Millis,
    /// Both partners' UTC offset in minutes.
    pub utc_offset_min: i32,
}

impl Options {
    /// `years` of data from [`DEFAULT_START_MS`] in UTC+1.
    pub fn new(years: f64, seed: u64) -> Options {
        Options {
            years,
            seed,
            start_ms: DEFAULT_START_MS,
            utc_offset_min: 60,
        }
    }

    /// Number of days covered.
    pub fn days(&self) -> u32 {
        (self.years * 365.25)
            .round()
            .clamp(0.0, f64::from(u32::MAX)) as u32
    }
}

/// A stretch in which one or both partners were strained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    /// Who was strained.
    pub who: Vec<PersonId>,
    /// First local date.
    pub from: NaiveDate,
    /// Last local date.
    pub to: NaiveDate,
    /// `false`: a rough patch with unmet basics that lifts with rest. `true`: burnout
    /// that lingers even though basics are logged as met.
    pub lingering: bool,
}

/// What was generated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Days covered.
    pub days: u32,
    /// Ops written, by kind.
    pub counts: BTreeMap<&'static str, u64>,
    /// The strained stretches that were planned, oldest first.
    pub patches: Vec<Patch>,
    /// The local date of the last day.
    pub last_date: Option<NaiveDate>,
}

impl Summary {
    /// Total ops written.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// Generates `opts.years` of data into `household`, syncing the partners' household
/// documents at the end of each day.
pub fn generate(household: &mut Household, opts: &Options) -> Result<Summary, GenerateError> {
    let people = [household.person(Who::A), household.person(Who::B)];
    let mut generator = Generator::new(people, opts)?;
    let mut summary = Summary {
        days: generator.days,
        patches: generator.patches(),
        ..Summary::default()
    };
    while let Some((day, ops)) = generator.next_day() {
        for op in &ops {
            household.apply(op).map_err(|source| GenerateError::Write {
                day,
                what: op.kind(),
                source: Box::new(source),
            })?;
            *summary.counts.entry(op.kind()).or_default() += 1;
        }
        household.sync()?;
    }
    summary.last_date = generator.last_date();
    Ok(summary)
}

/// A static description of a kind of responsibility.
struct ItemTemplate {
    title: &'static str,
    alt_title: &'static str,
    domain: Domain,
    labour: Labour,
    invisible: bool,
    cadence: Cadence,
    minutes_per_week: u32,
    weight: u8,
    good_enough: &'static str,
}

macro_rules! items {
    ($( $title:literal / $alt:literal, $domain:ident, $labour:ident, $inv:literal, $cadence:ident, $min:literal, $w:literal, $good:literal; )+) => {
        &[$(ItemTemplate {
            title: $title,
            alt_title: $alt,
            domain: Domain::$domain,
            labour: Labour::$labour,
            invisible: $inv,
            cadence: Cadence::$cadence,
            minutes_per_week: $min,
            weight: $w,
            good_enough: $good,
        }),+]
    };
}

/// Forty-two responsibilities a household of two might list.
const ITEMS: &[ItemTemplate] = items![
    "Cook dinner" / "Cook dinner on weekdays", Household, Physical, false, Daily, 300, 2, "Something warm, not fancy";
    "Wash up after dinner" / "Dishes and wiping the counters", Household, Physical, false, Daily, 120, 1, "Sink empty before bed";
    "Plan the week's meals" / "Plan meals and the shopping list", Household, Cognitive, true, Weekly, 45, 2, "Five dinners sketched";
    "Grocery shopping" / "Big weekly shop", Logistics, Physical, false, Weekly, 90, 2, "The list, not every aisle";
    "Notice we are running low" / "Keep track of what runs out", Household, Cognitive, true, Daily, 30, 1, "Nothing essential runs out";
    "Laundry" / "Laundry: wash, dry, fold", Household, Physical, false, Weekly, 120, 2, "Clean clothes for the week";
    "Tidy the living room" / "Evening tidy", Household, Physical, false, Daily, 70, 1, "Floor clear, cushions back";
    "Clean the bathroom" / "Bathroom deep clean", Household, Physical, false, Weekly, 45, 2, "Sink, toilet, shower";
    "Hoover the flat" / "Hoovering", Household, Physical, false, Weekly, 40, 1, "Main rooms";
    "Take the bins out" / "Bins and recycling", Household, Physical, false, Weekly, 15, 1, "Out by Tuesday night";
    "Water the plants" / "Plants", Household, Physical, false, Weekly, 15, 1, "Nothing wilting";
    "Change the bed sheets" / "Bed sheets and towels", Household, Physical, false, Weekly, 30, 1, "Every two weeks is fine";
    "Pay the bills" / "Bills and direct debits", Finances, Cognitive, true, Monthly, 20, 2, "Nothing overdue";
    "Track the budget" / "Monthly budget check", Finances, Cognitive, true, Monthly, 30, 2, "Know where we stand";
    "Sort taxes and paperwork" / "Tax return and paperwork", Finances, Cognitive, true, Occasional, 30, 3, "Filed on time";
    "Renew insurance" / "Compare and renew insurance", Finances, Cognitive, true, Occasional, 10, 2, "No lapse in cover";
    "School run" / "Morning school run", Parenting, Physical, false, Daily, 150, 2, "On time most days";
    "Pack the kids' bags" / "School bags and lunches", Parenting, Physical, false, Daily, 70, 1, "Lunch, water, homework";
    "Keep track of school events" / "School calendar and letters", Parenting, Cognitive, true, Weekly, 30, 2, "No missed trips or forms";
    "Bedtime routine" / "Bath, story, bed", Parenting, Physical, false, Daily, 210, 2, "Lights out by eight";
    "Homework help" / "Homework and reading", Parenting, Cognitive, false, Daily, 100, 2, "Reading done";
    "Book doctor and dentist visits" / "Health appointments", Logistics, Cognitive, true, Occasional, 15, 2, "Check-ups once a year";
    "Car upkeep" / "Car: tyres, MOT, service", Logistics, Physical, false, Occasional, 20, 2, "Legal and safe";
    "Arrange childcare" / "Babysitters and holiday clubs", Logistics, Cognitive, true, Monthly, 40, 3, "Covered before we need it";
    "Plan holidays" / "Plan trips away", Logistics, Cognitive, true, Occasional, 30, 2, "One break a year";
    "Home repairs" / "Fix what breaks", Household, Physical, false, Occasional, 30, 2, "Safe and working";
    "Remember birthdays" / "Birthdays and cards", Social, Emotional, true, Monthly, 20, 2, "Family never forgotten";
    "Buy presents" / "Presents for family and friends", Social, Cognitive, true, Occasional, 30, 2, "Thoughtful, not expensive";
    "Keep in touch with family" / "Call the parents", Social, Emotional, true, Weekly, 40, 2, "A call each week";
    "Plan time with friends" / "Organise seeing friends", Social, Cognitive, true, Monthly, 20, 1, "Once a month";
    "Reply to the group chats" / "Family group chat", Social, Emotional, true, Daily, 35, 1, "Nobody left hanging";
    "Check in on how the kids feel" / "Kids' worries and moods", Emotional, Emotional, true, Daily, 60, 3, "Each child heard each day";
    "Keep the peace at family visits" / "Smooth family visits", Emotional, Emotional, true, Occasional, 30, 3, "Nobody storms off";
    "Notice when the other is struggling" / "Notice the other's stress", Emotional, Emotional, true, Daily, 20, 3, "Ask, don't guess";
    "Plan date nights" / "Date night planning", Relationship, Cognitive, true, Monthly, 20, 2, "Twice a month, even at home";
    "Weekly check-in talk" / "Sunday talk", Relationship, Emotional, false, Weekly, 30, 2, "Half an hour, phones away";
    "Walk the dog" / "Dog walks", Household, Physical, false, Daily, 210, 2, "Twice a day";
    "Vet and pet supplies" / "Pet food and vet", Household, Cognitive, true, Monthly, 15, 1, "Food never runs out";
    "Manage subscriptions" / "Subscriptions and renewals", Finances, Cognitive, true, Monthly, 10, 1, "Cancel what we don't use";
    "Sort the post" / "Post and letters", Logistics, Cognitive, true, Weekly, 15, 1, "Opened within the week";
    "Garden" / "Garden and balcony", Household, Physical, false, Weekly, 60, 1, "Tidy enough to sit in";
    "Declutter" / "Seasonal declutter", Other, Physical, false, Occasional, 20, 1, "One bag out each season";
];

/// How many items exist by the end: a few are added along the way.
const TARGET_ITEMS: usize = 40;
/// How many are listed in the first two weeks.
const INITIAL_ITEMS: usize = 30;

const CHECKIN_NOTES: &[&str] = &[
    "Long day at work.",
    "Slept badly, kids up twice.",
    "Good walk at lunch.",
    "Felt snappy all evening.",
    "Quiet day, nice.",
    "Too many meetings.",
    "Headache since the afternoon.",
    "We laughed a lot at dinner.",
    "Could not switch off.",
    "Weekend felt short.",
    "Got some time alone, helped.",
    "Everything feels like a chore.",
];
const ASKS: &[&str] = &[
    "Could you take bedtime tonight?",
    "Can we have a quiet evening?",
    "A hug would help.",
    "Could you handle the school email?",
    "Can we talk tomorrow, not tonight?",
];
const UNLISTED: &[&str] = &[
    "Remembered the permission slip",
    "Booked the boiler service",
    "Found the lost shoe",
    "Sorted the broken washing machine",
    "Researched summer camps",
    "Calmed things down with my sister",
    "Rebooked the cancelled appointment",
    "Wrote the thank-you cards",
];
const MOMENT_NOTES: &[&str] = &[
    "Coffee in the garden",
    "Silly dance in the kitchen",
    "Held hands on the walk",
    "Long talk after the kids slept",
    "Watched the rain together",
];
const ACK_NOTES: &[&str] = &[
    "Thank you, I noticed.",
    "That made my day easier.",
    "Sorry I snapped earlier.",
    "I see how much you carry.",
];
const COUNTERS: &[&str] = &[
    "I can take it from next month",
    "Could we swap it for the bins?",
    "Half each, alternate weeks?",
];

/// The generator's view of one ledger item: enough to plan valid ops.
#[derive(Debug, Clone)]
struct ItemState {
    id: Uuid,
    template: usize,
    owners: Owners,
    status: ItemStatus,
    /// The day the item was created; others can refer to it from the next day on, once
    /// the day's sync has carried it over.
    created_day: u32,
    /// Index of the partner who listed it.
    creator: usize,
    /// A handoff is open on it; no second one and no retiring until it is answered.
    handoff_open: bool,
    paused_until: Option<u32>,
    retitled: bool,
}

/// A planned strained stretch, in days.
#[derive(Debug, Clone)]
struct PlannedPatch {
    who: [bool; 2],
    start: u32,
    len: u32,
    lingering: bool,
}

/// A record that can be acknowledged, with the day it was written.
#[derive(Debug, Clone, Copy)]
struct Ackable {
    target: Target,
    day: u32,
}

#[derive(Debug, Clone)]
struct OpenHandoff {
    handoff: Handoff,
    answer_day: u32,
}

/// Plans the ops of each day in turn.
///
/// The generator keeps its own model of what exists (items, owners, open handoffs, recent
/// records) and assumes every op it plans is written before the next day is planned. It
/// only refers to records from earlier days, which the end-of-day sync has made visible
/// to both partners.
#[derive(Debug)]
pub struct Generator {
    rng: ChaCha8Rng,
    people: [PersonId; 2],
    days: u32,
    day: u32,
    start_ms: Millis,
    offset_min: i32,
    strain: [f64; 2],
    patches: Vec<PlannedPatch>,
    items: Vec<ItemState>,
    /// Which day each not-yet-listed template gets added.
    later_items: VecDeque<(u32, usize, usize)>,
    /// Recent records by each partner that the other might acknowledge.
    recent: [VecDeque<Ackable>; 2],
    open_handoffs: Vec<OpenHandoff>,
    /// Day of the week (0–6) each partner writes acknowledgments.
    ack_day: [u32; 2],
}

impl Generator {
    /// A generator for the two people (A then B).
    pub fn new(people: [PersonId; 2], opts: &Options) -> Result<Generator, GenerateError> {
        if !(opts.years.is_finite() && opts.years > 0.0) {
            return Err(GenerateError::Options(format!(
                "{} is not a usable number of years",
                opts.years
            )));
        }
        if opts.utc_offset_min.abs() > 14 * 60 {
            return Err(GenerateError::Options(format!(
                "a UTC offset of {} minutes does not exist",
                opts.utc_offset_min
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let days = opts.days().max(1);
        let patches = plan_patches(&mut rng, days);

        // Shuffle the templates, list the first thirty in the first two weeks and spread
        // the rest over the whole span.
        let mut order: Vec<usize> = (0..ITEMS.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.gen_range(0..=i));
        }
        let mut later: Vec<(u32, usize, usize)> = order
            .iter()
            .take(TARGET_ITEMS)
            .enumerate()
            .map(|(n, &template)| {
                let day = if n < INITIAL_ITEMS {
                    (n as u32 * 14 / INITIAL_ITEMS as u32).min(days - 1)
                } else {
                    rng.gen_range(0..days)
                };
                let creator = usize::from(rng.gen_bool(0.4));
                (day, template, creator)
            })
            .collect();
        later.sort_by_key(|(day, template, _)| (*day, *template));

        Ok(Generator {
            people,
            days,
            day: 0,
            start_ms: opts.start_ms,
            offset_min: opts.utc_offset_min,
            strain: [0.2, 0.12],
            patches,
            items: Vec::new(),
            later_items: later.into(),
            recent: [VecDeque::new(), VecDeque::new()],
            open_handoffs: Vec::new(),
            ack_day: [5, 2],
            rng,
        })
    }

    /// The strained stretches this generator will play out.
    pub fn patches(&self) -> Vec<Patch> {
        self.patches
            .iter()
            .map(|p| Patch {
                who: (0..2)
                    .filter(|i| p.who[*i])
                    .map(|i| self.people[i])
                    .collect(),
                from: self.date(p.start),
                to: self.date(p.start + p.len - 1),
                lingering: p.lingering,
            })
            .collect()
    }

    /// The local date of the last generated day, once at least one day is planned.
    pub fn last_date(&self) -> Option<NaiveDate> {
        self.day.checked_sub(1).map(|d| self.date(d))
    }

    fn date(&self, day: u32) -> NaiveDate {
        When::from_utc(self.at(day, 12 * 60), self.offset_min).date
    }

    /// UTC milliseconds of local minute `minute` of `day`.
    fn at(&self, day: u32, minute: i64) -> Millis {
        self.start_ms + i64::from(day) * DAY_MS + (minute - i64::from(self.offset_min)) * 60_000
    }

    fn when(&mut self, day: u32, from_min: i64, to_min: i64) -> When {
        let minute = self.rng.gen_range(from_min..to_min);
        let second = self.rng.gen_range(0..60_000);
        When::from_utc(self.at(day, minute) + second, self.offset_min)
    }

    /// Plans the next day, in time order, or `None` after the last one.
    pub fn next_day(&mut self) -> Option<(u32, Vec<Op>)> {
        if self.day >= self.days {
            return None;
        }
        let day = self.day;
        self.day += 1;
        self.update_strain(day);
        let mut ops = Vec::new();
        self.add_items(day, &mut ops);
        self.edit_items(day, &mut ops);
        for who in [Who::A, Who::B] {
            ops.push(Op::CheckIn(self.checkin(day, who)));
            if day % 30 == 13 + 5 * who.index() as u32 {
                ops.push(Op::Reflection(self.reflection(day, who)));
            }
        }
        self.done_entries(day, &mut ops);
        self.moments(day, &mut ops);
        self.acks(day, &mut ops);
        self.handoffs(day, &mut ops);
        // A stable sort keeps an item's creation ahead of anything written at the same
        // millisecond.
        ops.sort_by_key(Op::at);
        for op in &ops {
            self.remember(day, op);
        }
        Some((day, ops))
    }

    fn person(&self, who: Who) -> PersonId {
        self.people[who.index()]
    }

    fn patch_target(&self, day: u32, i: usize) -> Option<&PlannedPatch> {
        self.patches
            .iter()
            .filter(|p| p.who[i] && day >= p.start && day < p.start + p.len)
            .max_by_key(|p| p.lingering)
    }

    fn update_strain(&mut self, day: u32) {
        for i in 0..2 {
            let baseline = [0.2, 0.12][i];
            let (target, rate) = match self.patch_target(day, i) {
                Some(p) if p.lingering => (0.8, 0.12),
                Some(_) => (0.6, 0.25),
                // Recovery after lingering burnout is slower than after a rough patch.
                None if self.strain[i] > 0.5 => (baseline, 0.06),
                None => (baseline, 0.15),
            };
            let noise = normal(&mut self.rng) * 0.03;
            self.strain[i] =
                (self.strain[i] + (target - self.strain[i]) * rate + noise).clamp(0.0, 1.0);
        }
    }

    fn lingering(&self, day: u32, i: usize) -> bool {
        self.patch_target(day, i).is_some_and(|p| p.lingering)
    }

    fn checkin(&mut self, day: u32, who: Who) -> CheckIn {
        let i = who.index();
        let s = self.strain[i];
        let lingering = self.lingering(day, i);
        let when = self.when(day, 20 * 60, 23 * 60);
        let battery = (78.0 - 55.0 * s + 7.0 * normal(&mut self.rng))
            .round()
            .clamp(0.0, 100.0) as u8;
        let mut signs = BTreeMap::new();
        for (sign, weight) in [
            (BurnoutSign::Dread, 0.9),
            (BurnoutSign::Numb, 1.0),
            (BurnoutSign::Irritation, 1.1),
            (BurnoutSign::Warmth, 0.9),
            (BurnoutSign::Relief, 0.7),
        ] {
            // Some evenings a sign is skipped rather than rated.
            if self.rng.gen_bool(0.08) {
                continue;
            }
            let rating = (4.0 * s * weight + 0.6 * normal(&mut self.rng))
                .round()
                .clamp(0.0, 4.0);
            signs.insert(sign, rating as u8);
        }
        let mut body = BTreeSet::new();
        for sign in BodySign::ALL {
            if self.rng.gen_bool((0.02 + 0.25 * s).min(1.0)) {
                body.insert(*sign);
            }
        }
        // In a rough patch the basics slip; lingering burnout shows up with the basics
        // met, which is what tells the two apart.
        let met_p = if lingering {
            0.8
        } else {
            (0.92 - 0.9 * s).clamp(0.1, 0.95)
        };
        let mut basics = BTreeMap::new();
        for basic in Basic::ALL {
            let level = if self.rng.gen_bool(met_p) {
                BasicLevel::Met
            } else if self.rng.gen_bool(0.6) {
                BasicLevel::Partly
            } else {
                BasicLevel::No
            };
            basics.insert(*basic, level);
        }
        let note = self
            .rng
            .gen_bool(0.3)
            .then(|| pick(&mut self.rng, CHECKIN_NOTES).to_string());
        let ask = self
            .rng
            .gen_bool(0.03 + 0.15 * s)
            .then(|| pick(&mut self.rng, ASKS).to_string());
        let visibility = if self.rng.gen_bool(0.1) {
            Visibility::Private
        } else {
            Visibility::Shared
        };
        CheckIn {
            id: uuid(&mut self.rng),
            author: self.person(who),
            when,
            battery,
            signs,
            body,
            basics,
            note,
            ask,
            visibility,
            kept_to_self: BTreeSet::new(),
        }
    }

    fn reflection(&mut self, day: u32, who: Who) -> Reflection {
        let i = who.index();
        let s = self.strain[i];
        let when = self.when(day, 21 * 60, 23 * 60);
        let mut answer = |p_yes: f64| {
            if self.rng.gen_bool(p_yes) {
                Answer::Yes
            } else if self.rng.gen_bool(0.7) {
                Answer::Unsure
            } else {
                Answer::No
            }
        };
        let energy = answer(0.85 - 0.3 * s);
        let safe = answer(0.92);
        let aligned = answer(0.85);
        Reflection {
            id: uuid(&mut self.rng),
            author: self.person(who),
            when,
            energy,
            safe,
            aligned,
            note: None,
            visibility: if self.rng.gen_bool(0.3) {
                Visibility::Private
            } else {
                Visibility::Shared
            },
        }
    }

    fn add_items(&mut self, day: u32, ops: &mut Vec<Op>) {
        while self.later_items.front().is_some_and(|(d, _, _)| *d == day) {
            let Some((_, template, creator)) = self.later_items.pop_front() else {
                break;
            };
            let t = &ITEMS[template];
            let created_by = self.people[creator];
            // Partner A tends to hold the invisible stages: that is the imbalance the
            // balance insight should surface.
            let mut owners = Owners::default();
            for stage in Stage::ALL {
                let p_a = if stage.is_invisible() { 0.7 } else { 0.5 };
                let owner = if self.rng.gen_bool(p_a) { 0 } else { 1 };
                owners.set(*stage, Some(self.people[owner]));
            }
            let created = self.when(day, 9 * 60, 20 * 60);
            let created_at = created.at;
            let item = LedgerItem {
                id: uuid(&mut self.rng),
                title: t.title.into(),
                domain: t.domain,
                labour: t.labour,
                invisible: t.invisible,
                owners: owners.clone(),
                cadence: Some(t.cadence),
                minutes_per_week: Some(t.minutes_per_week),
                weight: t.weight,
                good_enough: t.good_enough.into(),
                status: ItemStatus::Active,
                agreed_by: BTreeSet::from([created_by]),
                agreed_at: Some(created_at),
                created_by,
                created_at,
                created_utc_offset_min: created.utc_offset_min,
                paused_until: None,
            };
            self.items.push(ItemState {
                id: item.id,
                template,
                owners,
                status: ItemStatus::Active,
                created_day: day,
                creator,
                handoff_open: false,
                paused_until: None,
                retitled: false,
            });
            ops.push(Op::AddItem(item));
        }
    }

    /// Items both partners' documents already hold.
    fn settled(&self, day: u32) -> impl Iterator<Item = usize> + '_ {
        self.items
            .iter()
            .enumerate()
            .filter(move |(_, it)| it.created_day < day)
            .map(|(n, _)| n)
    }

    fn edit_items(&mut self, day: u32, ops: &mut Vec<Op>) {
        let settled: Vec<usize> = self.settled(day).collect();
        // The partner who did not create an item agrees to its standard a few days on.
        for &n in &settled {
            if self.items[n].created_day + 3 == day {
                let by = self.people[1 - self.items[n].creator];
                let at = self.when(day, 8 * 60, 20 * 60).at;
                ops.push(Op::EditItem {
                    id: self.items[n].id,
                    by,
                    at,
                    edit: ItemEdit::Agree,
                });
            }
        }
        // Resume paused items.
        for &n in &settled {
            if self.items[n].paused_until == Some(day) {
                self.items[n].paused_until = None;
                self.items[n].status = ItemStatus::Active;
                let edit = self.edit(day, n, ItemEdit::Status(ItemStatus::Active));
                ops.push(edit);
            }
        }
        let active: Vec<usize> = settled
            .iter()
            .copied()
            .filter(|&n| self.items[n].status == ItemStatus::Active && !self.items[n].handoff_open)
            .collect();
        if active.is_empty() {
            return;
        }
        // About every six weeks someone rewords an item.
        if self.rng.gen_bool(1.0 / 45.0) {
            let n = active[self.rng.gen_range(0..active.len())];
            let t = &ITEMS[self.items[n].template];
            let title = if self.items[n].retitled {
                t.title
            } else {
                t.alt_title
            };
            self.items[n].retitled = !self.items[n].retitled;
            let edit = self.edit(day, n, ItemEdit::Title(title.into()));
            ops.push(edit);
        }
        // A pause for a few weeks, a few times a year.
        if self.rng.gen_bool(1.0 / 120.0) {
            let n = active[self.rng.gen_range(0..active.len())];
            self.items[n].status = ItemStatus::Paused;
            self.items[n].paused_until = Some(day + self.rng.gen_range(14..35));
            let edit = self.edit(day, n, ItemEdit::Status(ItemStatus::Paused));
            ops.push(edit);
        }
        // Now and then something stops being a responsibility at all, but never so many
        // that the ledger empties.
        let retired = self
            .items
            .iter()
            .filter(|it| it.status == ItemStatus::Retired)
            .count();
        if retired < 6 && self.rng.gen_bool(1.0 / 400.0) {
            let n = active[self.rng.gen_range(0..active.len())];
            self.items[n].status = ItemStatus::Retired;
            let edit = self.edit(day, n, ItemEdit::Status(ItemStatus::Retired));
            ops.push(edit);
        }
        // Owners shift without a handoff too, for example when one partner starts a new job.
        if self.rng.gen_bool(1.0 / 60.0) {
            let n = active[self.rng.gen_range(0..active.len())];
            let stage = Stage::ALL[self.rng.gen_range(0..Stage::ALL.len())];
            let owner = self.people[self.rng.gen_range(0..2)];
            self.items[n].owners.set(stage, Some(owner));
            let edit = self.edit(day, n, ItemEdit::Owner(stage, Some(owner)));
            ops.push(edit);
        }
    }

    fn edit(&mut self, day: u32, n: usize, edit: ItemEdit) -> Op {
        let by = self.people[self.rng.gen_range(0..2)];
        let at = self.when(day, 8 * 60, 20 * 60).at;
        Op::EditItem {
            id: self.items[n].id,
            by,
            at,
            edit,
        }
    }

    fn done_entries(&mut self, day: u32, ops: &mut Vec<Op>) {
        let doable: Vec<(usize, f64)> = self
            .settled(day)
            .filter(|&n| self.items[n].status == ItemStatus::Active)
            .map(|n| {
                let weight = match ITEMS[self.items[n].template].cadence {
                    Cadence::Daily => 7.0,
                    Cadence::Weekly => 1.0,
                    Cadence::Monthly => 0.25,
                    Cadence::Occasional => 0.1,
                };
                (n, weight)
            })
            .collect();
        let total: f64 = doable.iter().map(|(_, w)| w).sum();
        // Three to seven a day, five on average.
        let count = 3 + (0..4).filter(|_| self.rng.gen_bool(0.5)).count();
        for _ in 0..count {
            let when = self.when(day, 7 * 60, 22 * 60);
            let listed = total > 0.0 && self.rng.gen_bool(0.85);
            let entry = if listed {
                let mut x = self.rng.gen_range(0.0..total);
                let mut chosen = doable[doable.len() - 1].0;
                for (n, w) in &doable {
                    if x < *w {
                        chosen = *n;
                        break;
                    }
                    x -= w;
                }
                let item = &self.items[chosen];
                let t = &ITEMS[item.template];
                let doer = item.owners.do_.unwrap_or(self.people[0]);
                let by = if self.rng.gen_bool(0.8) {
                    doer
                } else {
                    self.other(doer)
                };
                let per_time = f64::from(t.minutes_per_week)
                    * match t.cadence {
                        Cadence::Daily => 1.0 / 7.0,
                        Cadence::Weekly => 1.0,
                        Cadence::Monthly => 4.0,
                        Cadence::Occasional => 8.0,
                    };
                let minutes = (per_time * (1.0 + 0.3 * normal(&mut self.rng)))
                    .round()
                    .clamp(1.0, 600.0) as u32;
                DoneEntry {
                    id: uuid(&mut self.rng),
                    item: Some(item.id),
                    label: None,
                    by,
                    when,
                    minutes: self.rng.gen_bool(0.7).then_some(minutes),
                    note: None,
                }
            } else {
                // Unlisted invisible work, mostly by A.
                let by = self.people[usize::from(self.rng.gen_bool(0.3))];
                DoneEntry {
                    id: uuid(&mut self.rng),
                    item: None,
                    label: Some(pick(&mut self.rng, UNLISTED).to_string()),
                    by,
                    when,
                    minutes: Some(self.rng.gen_range(5..60)),
                    note: self
                        .rng
                        .gen_bool(0.2)
                        .then(|| "Nobody asked, it just needed doing".to_string()),
                }
            };
            ops.push(Op::Done(entry));
        }
    }

    fn other(&self, person: PersonId) -> PersonId {
        if person == self.people[0] {
            self.people[1]
        } else {
            self.people[0]
        }
    }

    fn moments(&mut self, day: u32, ops: &mut Vec<Op>) {
        // About one a day, fewer when both are strained.
        let both = (self.strain[0] + self.strain[1]) / 2.0;
        let p_none = (0.2 + 0.5 * both).min(0.9);
        let count = if self.rng.gen_bool(p_none) {
            0
        } else if self.rng.gen_bool(0.65) {
            1
        } else {
            2
        };
        for _ in 0..count {
            // The less strained partner starts more of them.
            let p_b = (0.4 + 0.5 * (self.strain[0] - self.strain[1])).clamp(0.1, 0.9);
            let started_by = self.people[usize::from(self.rng.gen_bool(p_b))];
            let kind = MomentKind::ALL[self.rng.gen_range(0..MomentKind::ALL.len())];
            let when = self.when(day, 7 * 60, 23 * 60);
            ops.push(Op::Moment(Moment {
                id: uuid(&mut self.rng),
                kind,
                started_by,
                when,
                note: self
                    .rng
                    .gen_bool(0.2)
                    .then(|| pick(&mut self.rng, MOMENT_NOTES).to_string()),
            }));
        }
    }

    fn acks(&mut self, day: u32, ops: &mut Vec<Op>) {
        for who in [Who::A, Who::B] {
            let i = who.index();
            if day % 7 != self.ack_day[i]
                || !self.rng.gen_bool((0.9 - 0.4 * self.strain[i]).max(0.2))
            {
                continue;
            }
            let count = if self.rng.gen_bool(0.25) { 2 } else { 1 };
            for _ in 0..count {
                // Something the partner wrote on an earlier day.
                let partner = who.other().index();
                let candidates: Vec<Ackable> = self.recent[partner]
                    .iter()
                    .filter(|a| a.day < day)
                    .copied()
                    .collect();
                let target = if candidates.is_empty() || self.rng.gen_bool(0.1) {
                    let held: Vec<Uuid> = self
                        .settled(day)
                        .map(|n| &self.items[n])
                        .filter(|it| it.owners.do_ == Some(self.people[partner]))
                        .map(|it| it.id)
                        .collect();
                    match held.is_empty() {
                        true => continue,
                        false => Target {
                            kind: TargetKind::Item,
                            id: held[self.rng.gen_range(0..held.len())],
                        },
                    }
                } else {
                    candidates[self.rng.gen_range(0..candidates.len())].target
                };
                let kind = match self.rng.gen_range(0..10) {
                    0..=6 => AckKind::Thanks,
                    7 | 8 => AckKind::Seen,
                    _ => AckKind::Repair,
                };
                let when = self.when(day, 19 * 60, 23 * 60);
                ops.push(Op::Ack(Acknowledgment {
                    id: uuid(&mut self.rng),
                    from: self.person(who),
                    to: self.people[partner],
                    target,
                    kind,
                    when,
                    note: self
                        .rng
                        .gen_bool(0.4)
                        .then(|| pick(&mut self.rng, ACK_NOTES).to_string()),
                }));
            }
        }
    }

    fn handoffs(&mut self, day: u32, ops: &mut Vec<Op>) {
        // Answer the ones that are due.
        let due: Vec<OpenHandoff> = {
            let (due, open) = self
                .open_handoffs
                .drain(..)
                .partition(|h| h.answer_day == day);
            self.open_handoffs = open;
            due
        };
        for open in due {
            let h = open.handoff;
            let to_i = usize::from(h.to == self.people[1]);
            let s = self.strain[to_i];
            let roll = self.rng.gen_range(0.0..1.0);
            let (by, state, counter) = if roll < 0.08 {
                (h.from, HandoffState::Withdrawn, None)
            } else if roll < 0.18 {
                let counter = pick(&mut self.rng, COUNTERS).to_string();
                (h.to, HandoffState::Countered, Some(counter))
            } else if roll < 0.18 + 0.2 + 0.4 * s {
                (h.to, HandoffState::Declined, None)
            } else {
                (h.to, HandoffState::Accepted, None)
            };
            if let Some(item) = self.items.iter_mut().find(|it| it.id == h.item) {
                item.handoff_open = false;
                if state == HandoffState::Accepted {
                    item.owners.set(h.stage, Some(h.to));
                }
            }
            let at = self.when(day, 8 * 60, 22 * 60).at;
            ops.push(Op::Answer {
                id: h.id,
                by,
                state,
                counter,
                at,
            });
        }
        // One proposal a week, usually from whoever is more strained.
        if day % 7 != 6 {
            return;
        }
        let from_i = if self.rng.gen_bool(0.7) {
            usize::from(self.strain[1] > self.strain[0])
        } else {
            self.rng.gen_range(0..2)
        };
        let from = self.people[from_i];
        let items = &self.items;
        let options: Vec<(usize, Stage)> = self
            .settled(day)
            .filter(|&n| items[n].status == ItemStatus::Active && !items[n].handoff_open)
            .flat_map(|n| {
                Stage::ALL
                    .iter()
                    .filter(move |s| items[n].owners.get(**s) == Some(from))
                    .map(move |s| (n, *s))
            })
            .collect();
        if options.is_empty() {
            return;
        }
        let (n, stage) = options[self.rng.gen_range(0..options.len())];
        self.items[n].handoff_open = true;
        let when = self.when(day, 9 * 60, 21 * 60);
        let handoff = Handoff {
            id: uuid(&mut self.rng),
            item: self.items[n].id,
            stage,
            from,
            to: self.other(from),
            when,
            note: self
                .rng
                .gen_bool(0.5)
                .then(|| "I'm stretched thin, could you take this?".to_string()),
            state: HandoffState::Open,
            answered_by: None,
            answered_at: None,
            counter: None,
        };
        // Answered one to four days later; a handoff planned past the end stays open.
        let answer_day = day + self.rng.gen_range(1..5);
        self.open_handoffs.push(OpenHandoff {
            handoff: handoff.clone(),
            answer_day,
        });
        ops.push(Op::Propose(handoff));
    }

    /// Keeps recent shared records as acknowledgment targets for the partner.
    fn remember(&mut self, day: u32, op: &Op) {
        let target = match op {
            Op::Done(d) => Some((d.by, TargetKind::Done, d.id)),
            Op::Moment(m) => Some((m.started_by, TargetKind::Moment, m.id)),
            Op::CheckIn(c) if c.visibility == Visibility::Shared => {
                Some((c.author, TargetKind::CheckIn, c.id))
            }
            _ => None,
        };
        if let Some((author, kind, id)) = target {
            let i = usize::from(author == self.people[1]);
            let recent = &mut self.recent[i];
            recent.push_back(Ackable {
                target: Target { kind, id },
                day,
            });
            while recent.front().is_some_and(|a| a.day + 7 < day) {
                recent.pop_front();
            }
        }
    }
}

/// Rough patches every two to four months and a lingering stretch every year and a half
/// or so, each for one partner or, sometimes, both.
fn plan_patches(rng: &mut ChaCha8Rng, days: u32) -> Vec<PlannedPatch> {
    let mut patches = Vec::new();
    let mut day = rng.gen_range(30..90);
    while day < days {
        let lingering = rng.gen_bool(0.2);
        let len = if lingering {
            rng.gen_range(42..70)
        } else {
            rng.gen_range(7..21)
        };
        let who = match rng.gen_range(0..4) {
            0 => [true, true],
            1 => [false, true],
            _ => [true, false],
        };
        patches.push(PlannedPatch {
            who,
            start: day,
            len: len.min(days - day),
            lingering,
        });
        day += len + rng.gen_range(45..120);
    }
    patches
}

/// A deterministic UUID (version 4 layout) from the generator's RNG.
fn uuid(rng: &mut ChaCha8Rng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.gen()).into_uuid()
}

fn pick<'a>(rng: &mut ChaCha8Rng, options: &[&'a str]) -> &'a str {
    options[rng.gen_range(0..options.len())]
}

/// Roughly standard normal: the sum of three uniforms on [-1, 1) has variance 1.
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    (0..3).map(|_| rng.gen_range(-1.0..1.0)).sum()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use hearth_core::doc::Collection;

    fn small() -> (Household, Summary) {
        let opts = Options::new(0.25, 7);
        let mut hh = Household::new(7, opts.start_ms).unwrap();
        let summary = generate(&mut hh, &opts).unwrap();
        (hh, summary)
    }

    #[test]
    fn same_seed_gives_the_same_documents() {
        let (x, _) = small();
        let (y, _) = small();
        assert_eq!(x.a.household.heads(), y.a.household.heads());
        assert_eq!(x.b.private.heads(), y.b.private.heads());
    }

    #[test]
    fn partners_end_each_run_in_sync() {
        let (hh, _) = small();
        assert_eq!(hh.a.household.heads(), hh.b.household.heads());
        assert_eq!(hh.a.ledger_items(), hh.b.ledger_items());
    }

    #[test]
    fn volumes_match_the_brief() {
        let (hh, summary) = small();
        let days = f64::from(summary.days);
        let per_day = |kind: &str| summary.counts.get(kind).copied().unwrap_or(0) as f64 / days;
        assert_eq!(summary.counts["check-in"], 2 * u64::from(summary.days));
        assert!((4.0..6.0).contains(&per_day("done entry")), "{summary:?}");
        assert!((0.6..1.4).contains(&per_day("moment")), "{summary:?}");
        assert!(summary.counts["acknowledgment"] >= u64::from(summary.days) / 7);
        assert!(summary.counts["handoff"] >= u64::from(summary.days) / 7 - 1);
        let items = hh.a.ledger_items().len();
        assert!((30..=40).contains(&items), "{items} items");
        // About a tenth of check-ins are private, and they stay out of the household.
        let private =
            hh.a.private.count(Collection::CheckIns) + hh.b.private.count(Collection::CheckIns);
        let shared = hh.a.household.count(Collection::CheckIns);
        assert_eq!(private + shared, 2 * summary.days as usize);
        assert!(
            private > 0 && private < shared / 4,
            "{private} private, {shared} shared"
        );
    }

    #[test]
    fn handoffs_get_every_kind_of_answer_over_a_year() {
        let opts = Options::new(1.0, 11);
        let mut hh = Household::new(11, opts.start_ms).unwrap();
        let summary = generate(&mut hh, &opts).unwrap();
        let states: BTreeSet<HandoffState> = hh.a.handoffs().iter().map(|h| h.state).collect();
        for state in [HandoffState::Accepted, HandoffState::Declined] {
            assert!(states.contains(&state), "{states:?}");
        }
        assert!(!summary.patches.is_empty());
        assert!(hh.a.ledger_items().len() == TARGET_ITEMS);
    }

    #[test]
    fn rough_patches_show_in_battery() {
        let opts = Options::new(1.0, 3);
        let mut hh = Household::new(3, opts.start_ms).unwrap();
        let summary = generate(&mut hh, &opts).unwrap();
        let a = hh.person(Who::A);
        let patch = summary
            .patches
            .iter()
            .find(|p| p.who.contains(&a) && (p.to - p.from).num_days() >= 6)
            .unwrap();
        let mean = |from: NaiveDate, to: NaiveDate| {
            let c = hh.a.checkins_between(a, from, to);
            c.iter().map(|c| f64::from(c.battery)).sum::<f64>() / c.len() as f64
        };
        // Compare the second half of the patch with the fortnight before it starts.
        let mid = patch.from + chrono::Days::new(((patch.to - patch.from).num_days() / 2) as u64);
        let during = mean(mid, patch.to);
        let before = mean(
            patch.from - chrono::Days::new(14),
            patch.from - chrono::Days::new(1),
        );
        assert!(during + 10.0 < before, "during {during}, before {before}");
    }
}
