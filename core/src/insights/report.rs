//! The report's types: what `compute` returns and every renderer and the JSON API read.

use super::*;

/// A person as the report names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonInfo {
    /// Stable id.
    pub id: PersonId,
    /// Display name; "someone" when the record names a person the roster does not know.
    pub name: String,
}

/// One seven-day span of the weekly series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeekSpan {
    /// First day, inclusive.
    pub start: NaiveDate,
    /// Last day, inclusive.
    pub end: NaiveDate,
}

/// Which way a measure moved against the person's own baseline or earlier period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// Higher than before.
    Higher,
    /// About the same.
    Steady,
    /// Lower than before.
    Lower,
    /// Not enough data to say.
    Unknown,
}

/// Where a baseline comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BaselineSource {
    /// The median of the baseline period.
    Median,
    /// The weighted average of all earlier days, because the baseline period was sparse.
    Ewma,
    /// Not enough earlier data yet.
    None,
}

/// A person's usual level, from before the recent stretch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// First day of the baseline period.
    pub from: NaiveDate,
    /// Last day of the baseline period.
    pub to: NaiveDate,
    /// Check-in days in the period.
    pub days: u32,
    /// Median daily battery in the period.
    pub battery_median: Option<f64>,
    /// Median daily sign level in the period.
    pub signs_median: Option<f64>,
    /// Weighted average of the daily battery over every day before the recent stretch.
    pub battery_ewma: Option<f64>,
    /// Weighted average of the daily sign level over every day before the recent stretch.
    pub signs_ewma: Option<f64>,
    /// Which of the two the comparisons use.
    pub source: BaselineSource,
    /// The battery the comparisons use.
    pub battery: Option<f64>,
    /// The sign level the comparisons use.
    pub signs: Option<f64>,
}

/// Levels over one trend window, against the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowTrend {
    /// Length of the window in days, ending today.
    pub days: u32,
    /// Days with at least one check-in.
    pub checkin_days: u32,
    /// Mean daily battery, 0–100.
    pub battery: Option<f64>,
    /// Mean daily burnout-sign level, 0–4.
    pub signs: Option<f64>,
    /// Battery minus the baseline battery.
    pub battery_vs_baseline: Option<f64>,
    /// Sign level minus the baseline sign level.
    pub signs_vs_baseline: Option<f64>,
    /// Battery against the baseline.
    pub battery_change: Change,
    /// Sign level against the baseline.
    pub signs_change: Change,
}

/// One week of one person's series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeekPoint {
    /// Days with at least one check-in.
    pub days: u32,
    /// Mean daily battery.
    pub battery: Option<f64>,
    /// Mean daily sign level.
    pub signs: Option<f64>,
    /// Whether the week was elevated; only judged within the recent stretch, and only
    /// with enough days.
    pub elevated: Option<bool>,
    /// Whether rest, or all four basics, were logged as met on some day.
    pub rested: bool,
    /// Days on which some basic was logged as not met.
    pub basics_unmet_days: u32,
}

/// One person's levels over time, against their own baseline only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonTrend {
    /// Whose trend this is.
    pub person: PersonId,
    /// Check-ins counted, over all time read.
    pub checkins: u32,
    /// Private check-ins among them (only ever the caller's own).
    pub private_checkins: u32,
    /// The usual level.
    pub baseline: Baseline,
    /// One entry per window in [`Params::windows_days`].
    pub windows: Vec<WindowTrend>,
    /// One entry per week of [`Insights::weeks`], oldest first.
    pub weekly: Vec<WeekPoint>,
    /// The weeks of the recent stretch ([`Params::recent_weeks`]), oldest first, each
    /// judged elevated or not where it has enough days.
    pub recent: Vec<WeekPoint>,
    /// For the last seven days, how many days each basic was logged as not met.
    pub basics_unmet_last_week: BTreeMap<Basic, u32>,
    /// Body signs noted in the recent stretch, and on how many check-ins.
    pub body_signs_recent: BTreeMap<BodySign, u32>,
    /// Check-ins in the recent stretch that noted any body sign.
    pub body_checkins_recent: u32,
    /// Of those, the ones on which sleep or rest was logged as partly met or not met.
    pub body_with_short_rest: u32,
}

/// The band a split of load falls in. It describes the split, not the people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Band {
    /// Up to 60/40.
    Balanced,
    /// Up to 70/30.
    Leaning,
    /// Beyond 70/30.
    Heavy,
}

impl Band {
    /// The stable key.
    pub fn key(self) -> &'static str {
        match self {
            Band::Balanced => "balanced",
            Band::Leaning => "leaning",
            Band::Heavy => "heavy",
        }
    }
}

/// One person's part of a load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    /// Who.
    pub person: PersonId,
    /// Weighted load units: an item's weight (1–3) for every stage the person holds.
    pub load: u32,
    /// Whole percent; the percents of one [`Shares`] always sum to exactly 100.
    pub pct: u32,
}

/// How one load splits between the people, in household order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shares {
    /// Total assigned load units.
    pub load: u32,
    /// True when nothing is assigned; `shares` then carry zero load and zero percent.
    pub no_load: bool,
    /// Each person's part, in household order.
    pub shares: Vec<Share>,
    /// The band, when there is load and at least two people to share it.
    pub band: Option<Band>,
}

/// A domain's split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainShares {
    /// The domain.
    pub domain: Domain,
    /// Active items in it.
    pub items: u32,
    /// The split.
    pub shares: Shares,
}

/// A stage's split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageShares {
    /// The stage.
    pub stage: Stage,
    /// The split.
    pub shares: Shares,
}

/// The split at the end of one week of the balance trend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalancePoint {
    /// The last day of the week.
    pub end: NaiveDate,
    /// The overall split then.
    pub overall: Shares,
    /// The split of the invisible stages then.
    pub invisible_stages: Shares,
}

/// Which way the split moved over the trend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BalanceDirection {
    /// About the same.
    Steady,
    /// Closer to even.
    EveningOut,
    /// Further from even.
    MoreUneven,
    /// Not enough to say.
    Unknown,
}

/// One person's invisible work in the recent stretch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvisibleWork {
    /// Who did it.
    pub person: PersonId,
    /// Done entries that were invisible work: invisible items, or unlisted work.
    pub done: u32,
    /// How many of them nobody has acknowledged.
    pub unacknowledged: u32,
    /// Minutes logged on them, where given.
    pub minutes: u32,
}

/// Handoffs proposed in the recent stretch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffCounts {
    /// Still open.
    pub open: u32,
    /// Accepted.
    pub accepted: u32,
    /// Declined.
    pub declined: u32,
    /// Countered.
    pub countered: u32,
    /// Withdrawn.
    pub withdrawn: u32,
}

/// Who holds what. Never a ranking: people are listed in household order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// Active ledger items.
    pub active_items: u32,
    /// Load units of stages nobody holds.
    pub unassigned_load: u32,
    /// All stages of all active items.
    pub overall: Shares,
    /// Noticing and following up, the stages nobody sees.
    pub invisible_stages: Shares,
    /// Per domain that has active items, in the domain order of the model.
    pub by_domain: Vec<DomainShares>,
    /// Per stage, in the order notice, plan, do, follow-up.
    pub by_stage: Vec<StageShares>,
    /// The split at the end of each of the recent weeks, oldest first. Earlier splits
    /// are estimated by undoing the handoffs accepted since.
    pub trend: Vec<BalancePoint>,
    /// Which way the overall split moved over the trend.
    pub direction: BalanceDirection,
    /// Invisible work done in the recent stretch, per person.
    pub invisible_work: Vec<InvisibleWork>,
    /// Handoffs proposed in the recent stretch.
    pub handoffs: HandoffCounts,
}

/// A count for one person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonCount {
    /// Who.
    pub person: PersonId,
    /// How many.
    pub n: u32,
}

/// One week of counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountWeek {
    /// All of them.
    pub total: u32,
    /// Per person, in household order.
    pub by: Vec<PersonCount>,
}

/// Counts over a period of whole weeks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodCount {
    /// Length in weeks.
    pub weeks: u32,
    /// All of them.
    pub total: u32,
    /// Mean per week.
    pub per_week: f64,
    /// Per person, in household order, with whole percents that sum to 100 (all zero
    /// when there were none).
    pub by: Vec<CountShare>,
}

/// A count for one person. No percentage: beside a person, a share of moments or
/// thank-yous reads as a score, so the renderers say it in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountShare {
    /// Who.
    pub person: PersonId,
    /// How many.
    pub n: u32,
}

/// Something counted per week: moments (by who started them) or acknowledgments (by
/// who gave them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeeklyCounts {
    /// One entry per week of [`Insights::weeks`], oldest first.
    pub weekly: Vec<CountWeek>,
    /// The recent stretch.
    pub recent: PeriodCount,
    /// The stretch of the same length just before it.
    pub earlier: PeriodCount,
    /// Recent against earlier.
    pub trend: Change,
}

/// Small moments of connection and acknowledgments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    /// Moments, by who started them.
    pub moments: WeeklyCounts,
    /// Acknowledgments, by who gave them.
    pub acknowledgments: WeeklyCounts,
}

/// A person's latest reflection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReflectionSummary {
    /// Whose.
    pub person: PersonId,
    /// Its local date.
    pub date: NaiveDate,
    /// If you had more energy, would you want to work on this together?
    pub energy: Answer,
    /// Do you feel emotionally safe with your partner? Only in the viewer's own reflection: another
    /// person's answer here is theirs, and is `null`.
    pub safe: Option<Answer>,
    /// Are the two of you aligned on what you want?
    pub aligned: Answer,
    /// "Yes" to all three. For another person's reflection, only the two answers shown
    /// count, so this never gives their answer on feeling safe away.
    pub all_yes: bool,
    /// Whether it is a private reflection (only ever the caller's own).
    pub private: bool,
}

/// The kinds of signal, in the order they are shown: the state of each person first,
/// then connection, then who holds what, then reflections, then missing data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignalKey {
    /// Some basic (sleep, food, safety, rest) was not met in the last week.
    BasicsFirst,
    /// Body signs came up often lately: what the body may be asking for.
    BodySigns,
    /// Both partners are worn down in the same week.
    BothDepleted,
    /// Signs stayed up for most of the recent weeks, even with rest.
    Lingering,
    /// A harder stretch: lifting, or not yet long or rested enough to call lingering.
    RoughPatch,
    /// Fewer moments of connection than before.
    FewerMoments,
    /// No moments at all lately, where there used to be some.
    NobodyStarting,
    /// Fewer acknowledgments than before.
    FewerAcks,
    /// The load is split beyond 70/30.
    BalanceHeavy,
    /// The load is split beyond 60/40.
    BalanceLeaning,
    /// Invisible work that nobody has acknowledged.
    UnacknowledgedInvisibleWork,
    /// Handoffs were declined more than accepted.
    HandoffsDeclined,
    /// "Yes" to all three reflection questions.
    ReflectionPointsToBurnout,
    /// Mixed reflection answers.
    ReflectionMixed,
    /// The partner shared a reflection; what it points to is theirs to say.
    ReflectionShared,
    /// Too little data to say.
    NotEnoughData,
}

impl SignalKey {
    /// The stable key.
    pub fn key(self) -> &'static str {
        match self {
            SignalKey::BasicsFirst => "basics-first",
            SignalKey::BodySigns => "body-signs",
            SignalKey::BothDepleted => "both-depleted",
            SignalKey::Lingering => "lingering",
            SignalKey::RoughPatch => "rough-patch",
            SignalKey::FewerMoments => "fewer-moments",
            SignalKey::NobodyStarting => "nobody-starting",
            SignalKey::FewerAcks => "fewer-acks",
            SignalKey::BalanceHeavy => "balance-heavy",
            SignalKey::BalanceLeaning => "balance-leaning",
            SignalKey::UnacknowledgedInvisibleWork => "unacknowledged-invisible-work",
            SignalKey::HandoffsDeclined => "handoffs-declined",
            SignalKey::ReflectionPointsToBurnout => "reflection-points-to-burnout",
            SignalKey::ReflectionMixed => "reflection-mixed",
            SignalKey::ReflectionShared => "reflection-shared",
            SignalKey::NotEnoughData => "not-enough-data",
        }
    }

    /// A short plain title for headings.
    pub fn title(self) -> &'static str {
        match self {
            SignalKey::BasicsFirst => "Basics first",
            SignalKey::BodySigns => "What the body may be asking for",
            SignalKey::BothDepleted => "Both running low",
            SignalKey::Lingering => "Lingering",
            SignalKey::RoughPatch => "A rough patch",
            SignalKey::FewerMoments => "Fewer moments",
            SignalKey::NobodyStarting => "Moments have paused",
            SignalKey::FewerAcks => "Fewer thank-yous",
            SignalKey::BalanceHeavy => "Load sits heavily on one side",
            SignalKey::BalanceLeaning => "Load leans to one side",
            SignalKey::UnacknowledgedInvisibleWork => "Unseen work",
            SignalKey::HandoffsDeclined => "Handoffs declined",
            SignalKey::ReflectionPointsToBurnout => "Reflection: tired, not apart",
            SignalKey::ReflectionMixed => "Reflection: worth a talk",
            SignalKey::ReflectionShared => "Reflection shared",
            SignalKey::NotEnoughData => "Not enough yet",
        }
    }
}

/// The counts a signal rests on, so a reader can judge how much to trust it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Basis {
    /// Check-in days.
    pub checkin_days: u32,
    /// Weeks looked at.
    pub weeks: u32,
    /// Active ledger items.
    pub items: u32,
    /// Done entries.
    pub done: u32,
    /// Moments.
    pub moments: u32,
    /// Acknowledgments.
    pub acks: u32,
    /// Handoffs.
    pub handoffs: u32,
    /// Reflections.
    pub reflections: u32,
}

/// Something worth noticing, with why. A signal, never a verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signal {
    /// What kind.
    pub key: SignalKey,
    /// About whom, or `null` for the couple.
    pub person: Option<PersonId>,
    /// One plain line on why it shows, without the person's name (renderers add it).
    pub why: String,
    /// What it rests on.
    pub rests_on: Basis,
}

/// The steps of recovery, in their order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Restore sleep, food, safety and rest.
    Basics,
    /// Small moments of connection.
    Moments,
    /// Look at who holds what and propose a handoff.
    WhoHoldsWhat,
    /// Agree on "good enough".
    GoodEnough,
    /// Support beyond the couple.
    Support,
    /// Nothing calls for a change: keep what works.
    KeepGoing,
    /// Too little data: a few check-ins, whenever it suits.
    CheckIn,
}

impl Step {
    /// The stable key.
    pub fn key(self) -> &'static str {
        match self {
            Step::Basics => "basics",
            Step::Moments => "moments",
            Step::WhoHoldsWhat => "who-holds-what",
            Step::GoodEnough => "good-enough",
            Step::Support => "support",
            Step::KeepGoing => "keep-going",
            Step::CheckIn => "check-in",
        }
    }
}

/// A concrete next step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestion {
    /// Which step of recovery.
    pub step: Step,
    /// What to try, in plain words.
    pub text: String,
    /// The signals that led to it.
    pub because: Vec<SignalKey>,
}

/// How much data the report rests on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSummary {
    /// Check-ins read.
    pub checkins: u32,
    /// Private check-ins and reflections among what was read (only the caller's own).
    pub private_entries: u32,
    /// Reflections read.
    pub reflections: u32,
    /// Ledger items, whatever their status.
    pub items: u32,
    /// Done entries read.
    pub done: u32,
    /// Acknowledgments read.
    pub acks: u32,
    /// Handoffs read.
    pub handoffs: u32,
    /// Moments read.
    pub moments: u32,
    /// Records dated too far after today, left out.
    pub future_dated: u32,
}

/// The insights report. See the module docs for the JSON shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Insights {
    /// The JSON shape's version, [`SCHEMA`].
    pub schema: u32,
    /// The day the report was computed for.
    pub today: NaiveDate,
    /// The one-line note that this is not medical advice.
    pub note: String,
    /// The parameters used.
    pub params: Params,
    /// Everyone in the household, in household order (by joining time).
    pub people: Vec<PersonInfo>,
    /// The weeks of every weekly series, oldest first.
    pub weeks: Vec<WeekSpan>,
    /// One per person, in household order.
    pub trends: Vec<PersonTrend>,
    /// Who holds what.
    pub balance: Balance,
    /// Moments and acknowledgments.
    pub connection: Connection,
    /// Each person's latest reflection, if recent enough.
    pub reflections: Vec<ReflectionSummary>,
    /// What is worth noticing, in display order.
    pub signals: Vec<Signal>,
    /// The next steps the signals call for, in the order of recovery, the first one
    /// to start with. Support beyond the couple is never left out when it is called for.
    pub suggestions: Vec<Suggestion>,
    /// The whole order of recovery, each step with where the couple stands on it.
    pub recovery: Vec<RecoveryStage>,
    /// How much data this rests on.
    pub data: DataSummary,
}

/// Where the couple stands on one step of the order of recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StageState {
    /// The first step something calls for: start here.
    Now,
    /// Something calls for it too, after the one to start with.
    Also,
    /// Nothing calls for it yet; it comes later in the order.
    Later,
    /// Nothing calls for it, and it comes before where the couple is now.
    Steady,
}

impl StageState {
    /// The stable key.
    pub fn key(self) -> &'static str {
        match self {
            StageState::Now => "now",
            StageState::Also => "also",
            StageState::Later => "later",
            StageState::Steady => "steady",
        }
    }
}

/// One step of the order of recovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryStage {
    /// Which step.
    pub step: Step,
    /// Where the couple stands on it.
    pub state: StageState,
}

impl Step {
    /// The order of recovery: basics, small moments, who holds what, good enough,
    /// support beyond the couple.
    pub const ORDER: [Step; 5] = [
        Step::Basics,
        Step::Moments,
        Step::WhoHoldsWhat,
        Step::GoodEnough,
        Step::Support,
    ];

    /// A short plain name for the step.
    pub fn title(self) -> &'static str {
        match self {
            Step::Basics => "the basics",
            Step::Moments => "small moments",
            Step::WhoHoldsWhat => "who holds what",
            Step::GoodEnough => "good enough",
            Step::Support => "support beyond the two of you",
            Step::KeepGoing => "keep going",
            Step::CheckIn => "a check-in now and then",
        }
    }
}

impl Insights {
    /// A person's display name, or "someone" for an id the roster does not know.
    pub fn name_of(&self, person: PersonId) -> &str {
        self.people
            .iter()
            .find(|p| p.id == person)
            .map_or("someone", |p| p.name.as_str())
    }
}
