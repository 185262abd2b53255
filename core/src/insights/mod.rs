//! Insights: what the records say about how a couple is doing, and what to try first.
//!
//! This module owns the pure computation from records to an [`Insights`] report, and the
//! renderers that turn a report into terminal text, Markdown or one self-contained HTML
//! file ([`render_terminal`], [`render_markdown`], [`render_html`]). It must not read the
//! clock, touch files or decide who may see what: `today` is an argument, and the caller
//! (the daemon) decides which records go in, for example whether the caller's own private
//! check-ins are included ([`InsightInputs::from_docs`]).
//!
//! # What it computes
//!
//! Everything is measured against a person's *own* usual level and never against the
//! partner's. Days are the author's local dates ([`crate::model::When::date`]), so a
//! check-in written at 23:30 in another time zone still lands on the day it was lived.
//! Weeks are the seven-day spans ending `today`, `today - 7`, and so on, so "the last four
//! weeks" always means the last 28 days, whatever the weekday.
//!
//! * **Trend** ([`PersonTrend`]): battery and burnout-sign level over each window in
//!   [`Params::windows_days`] (7, 28 and 90 days), next to the person's baseline. The
//!   baseline is the median of the daily values in the [`Params::baseline_days`] (28) days
//!   *before* the recent stretch of [`Params::recent_weeks`] (4) weeks, so that a long
//!   rise is not hidden by comparing it with itself; an exponentially weighted average
//!   ([`Params::ewma_alpha`] per logged day) over all earlier days stands in when that
//!   period has too few check-ins (gaps in logging).
//! * **Elevated week:** a week with at least [`Params::min_days_per_week`] check-in days
//!   whose sign level rose by [`Params::sign_rise`] or whose battery fell by
//!   [`Params::battery_drop`] against the baseline, or that is high in absolute terms
//!   ([`Params::signs_high`], [`Params::battery_low`]) so that someone whose usual is
//!   already depleted is not missed.
//! * **Signals** ([`Signal`], [`SignalKey`]): lingering, rough patch, both depleted,
//!   basics first, balance, unacknowledged invisible work, fewer moments and
//!   acknowledgments, declined handoffs, reflections, and "not enough data yet". Each
//!   carries a one-line plain *why* and the counts it rests on. They come out in the
//!   order of [`SignalKey`]'s declaration, then in household order of the person.
//! * **Balance** ([`Balance`]): each person's share of the weighted load of active
//!   ledger items, overall, per domain, per stage and for the invisible stages (notice
//!   and follow-up), as a band and a four-week trend. Shares are listed in household
//!   order, never sorted by size.
//! * **Connection** ([`Connection`]): moments per week, who starts them, and the trend;
//!   acknowledgments likewise.
//! * **Suggestions** ([`Suggestion`]): every next step the signals call for, in the order
//!   of recovery — basics, small moments, who holds what, good enough, support beyond the
//!   couple — and that whole order with where the couple stands ([`RecoveryStage`]).
//! * **Safety answers** are counted only for [`InsightInputs::viewer`], the person
//!   reading the report: another person's are never shown, nor advised on.
//!
//! # JSON shape
//!
//! [`Insights`] serializes to one object whose top-level keys are stable:
//! `schema`, `today`, `note`, `params`, `people`, `weeks`, `trends`, `balance`,
//! `connection`, `reflections`, `signals`, `suggestions`, `recovery`, `data`. Keys inside are the
//! field names documented on each type; enums serialize to the kebab-case keys listed on
//! them. Numbers that may be unknown are `null` rather than guessed. New fields may be
//! added; none is renamed or removed without bumping [`SCHEMA`].

mod balance;
mod connection;
mod render;
mod report;
mod signals;
mod suggest;
mod trend;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::doc::{Doc, DocKind, Docs, Fields};
use crate::model::{
    Acknowledgment, Answer, Basic, BodySign, CheckIn, Domain, DoneEntry, Handoff, LedgerItem,
    Moment, Person, PersonId, Reflection, Stage, Visibility,
};

pub use render::{render_html, render_markdown, render_terminal};
pub use report::*;

/// The version of the report's JSON shape.
pub const SCHEMA: u32 = 1;

/// The one-line note every insights view carries.
pub const NOT_MEDICAL_ADVICE: &str =
    "Hearth shows patterns, not diagnoses. It is not medical advice.";

/// What the author of a check-in reads at once when they log `safety` as not met. It is
/// only ever shown to the person who gave the answer, never to their partner.
pub const SAFETY_SUPPORT: &str = "Feeling safe comes before anything else in Hearth. If you can, reach out today to someone you trust, or to a local helpline or support service: talking to them is confidential, and they are there for exactly this. If you are in danger right now, call your local emergency number.";

/// Problems with the parameters of an insights run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum InsightsError {
    /// A parameter is outside the range that makes sense.
    #[error("the insights setting `{name}` must be between {min} and {max}, but was {value}; leave it out to use the default")]
    ParamOutOfRange {
        /// The parameter's field name in [`Params`].
        name: &'static str,
        /// Smallest allowed value.
        min: f64,
        /// Largest allowed value.
        max: f64,
        /// The value given.
        value: f64,
    },
    /// Two parameters contradict each other.
    #[error("the insights settings disagree: {reason}; leave them out to use the defaults")]
    ParamsDisagree {
        /// What is wrong, in plain words.
        reason: &'static str,
    },
}

/// Every threshold and window the insights use, with the defaults documented per field.
///
/// The report carries the parameters it was computed with, so a reader can always see
/// what "elevated" or "leaning" meant for that report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Params {
    /// Trend windows in days, shortest first. Default `[7, 28, 90]`.
    pub windows_days: Vec<u32>,
    /// How many weeks the weekly series cover, for sparklines and charts. Default 12.
    pub weeks: u32,
    /// The recent stretch, in weeks, that lingering and the trends look at. The
    /// baseline is taken from before it. Default 4.
    pub recent_weeks: u32,
    /// How many days before the recent stretch make up the baseline. Default 28.
    pub baseline_days: u32,
    /// Weight of the newest logged day in the exponentially weighted average
    /// (0 < alpha ≤ 1). Default 0.2: a day's weight halves after about three logged days,
    /// and the last two weeks of logging carry most of it.
    pub ewma_alpha: f64,
    /// Logged days a baseline needs before it counts. Default 7.
    pub min_baseline_days: u32,
    /// Check-in days a week needs before it can count as elevated or not. Default 2.
    pub min_days_per_week: u32,
    /// Check-in days within the recent stretch below which a person's patterns are
    /// reported as "not enough yet". Default 4.
    pub min_recent_days: u32,
    /// Rise of the weekly sign level (0–4 scale) over the baseline that makes a week
    /// elevated. Default 0.75.
    pub sign_rise: f64,
    /// Drop of the weekly battery (0–100) under the baseline that makes a week elevated.
    /// Default 15.
    pub battery_drop: f64,
    /// Weekly sign level at or above which a week is elevated whatever the baseline.
    /// Default 2.0 ("often", on the 0–4 scale).
    pub signs_high: f64,
    /// Weekly battery at or below which a week is elevated whatever the baseline.
    /// Default 30.
    pub battery_low: f64,
    /// Battery change against the baseline that still counts as steady. Default 5.
    pub battery_steady: f64,
    /// Sign-level change against the baseline that still counts as steady. Default 0.25.
    pub signs_steady: f64,
    /// Elevated weeks, out of the recent stretch, that make a rise lingering. Default 3.
    pub lingering_weeks: u32,
    /// The largest share, in percent, that is still balanced. Default 60 (60/40).
    pub balanced_max_pct: u32,
    /// The largest share, in percent, that is leaning rather than heavy. Default 70.
    pub leaning_max_pct: u32,
    /// Change of the largest share, in percentage points over the trend, that counts as
    /// a change of direction. Default 5.
    pub balance_trend_pct: u32,
    /// Active ledger items needed before balance signals are given. Default 3.
    pub min_active_items: u32,
    /// Moments or acknowledgments in the earlier period needed before a drop is
    /// reported. Default 4.
    pub min_connection_baseline: u32,
    /// Recent rate below this fraction of the earlier rate is "fewer". Default 0.5.
    pub fewer_ratio: f64,
    /// Relative change of a rate that still counts as steady in a trend. Default 0.25.
    pub rate_steady: f64,
    /// Pieces of unacknowledged invisible work, per person and recent stretch, before it
    /// is raised as a signal. Default 3.
    pub min_unacknowledged: u32,
    /// Declined handoffs in the recent stretch, also outnumbering accepted ones, before
    /// it is raised. Default 2.
    pub min_declined_handoffs: u32,
    /// Check-ins in the recent stretch on which one body sign came up before it is
    /// raised as a body signal. Default 3.
    pub min_body_checkins: u32,
    /// How old, in days, the latest reflection may be and still count. Default 90.
    pub reflection_max_age_days: u32,
    /// Records dated up to this many days after `today` count as today: a partner a few
    /// time zones ahead may already be on tomorrow. Later dates are ignored. Default 1.
    pub future_tolerance_days: u32,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            windows_days: vec![7, 28, 90],
            weeks: 12,
            recent_weeks: 4,
            baseline_days: 28,
            ewma_alpha: 0.2,
            min_baseline_days: 7,
            min_days_per_week: 2,
            min_recent_days: 4,
            sign_rise: 0.75,
            battery_drop: 15.0,
            signs_high: 2.0,
            battery_low: 30.0,
            battery_steady: 5.0,
            signs_steady: 0.25,
            lingering_weeks: 3,
            balanced_max_pct: 60,
            leaning_max_pct: 70,
            balance_trend_pct: 5,
            min_active_items: 3,
            min_connection_baseline: 4,
            fewer_ratio: 0.5,
            rate_steady: 0.25,
            min_unacknowledged: 3,
            min_declined_handoffs: 2,
            min_body_checkins: 3,
            reflection_max_age_days: 90,
            future_tolerance_days: 1,
        }
    }
}

/// The longest span, in days, any window or series may cover (ten years).
pub const MAX_SPAN_DAYS: u32 = 3660;

impl Params {
    /// Checks that every parameter is in a range that makes sense.
    pub fn validate(&self) -> Result<(), InsightsError> {
        let range = |name: &'static str, value: f64, min: f64, max: f64| {
            if value.is_finite() && (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(InsightsError::ParamOutOfRange {
                    name,
                    min,
                    max,
                    value,
                })
            }
        };
        let span = f64::from(MAX_SPAN_DAYS);
        if self.windows_days.is_empty() {
            return Err(InsightsError::ParamsDisagree {
                reason: "at least one trend window is needed",
            });
        }
        for w in &self.windows_days {
            range("windows_days", f64::from(*w), 1.0, span)?;
        }
        range(
            "weeks",
            f64::from(self.weeks),
            1.0,
            f64::from(MAX_SPAN_DAYS / 7),
        )?;
        range("recent_weeks", f64::from(self.recent_weeks), 1.0, 52.0)?;
        range("baseline_days", f64::from(self.baseline_days), 7.0, 365.0)?;
        if !(self.ewma_alpha > 0.0 && self.ewma_alpha <= 1.0) {
            return Err(InsightsError::ParamOutOfRange {
                name: "ewma_alpha",
                min: 0.0,
                max: 1.0,
                value: self.ewma_alpha,
            });
        }
        range(
            "min_baseline_days",
            f64::from(self.min_baseline_days),
            1.0,
            365.0,
        )?;
        range(
            "min_days_per_week",
            f64::from(self.min_days_per_week),
            1.0,
            7.0,
        )?;
        range(
            "min_recent_days",
            f64::from(self.min_recent_days),
            1.0,
            365.0,
        )?;
        range("sign_rise", self.sign_rise, 0.0, 4.0)?;
        range("battery_drop", self.battery_drop, 0.0, 100.0)?;
        range("signs_high", self.signs_high, 0.0, 4.0)?;
        range("battery_low", self.battery_low, 0.0, 100.0)?;
        range("battery_steady", self.battery_steady, 0.0, 100.0)?;
        range("signs_steady", self.signs_steady, 0.0, 4.0)?;
        range(
            "lingering_weeks",
            f64::from(self.lingering_weeks),
            1.0,
            f64::from(self.recent_weeks),
        )?;
        range(
            "balanced_max_pct",
            f64::from(self.balanced_max_pct),
            50.0,
            100.0,
        )?;
        range(
            "leaning_max_pct",
            f64::from(self.leaning_max_pct),
            50.0,
            100.0,
        )?;
        if self.leaning_max_pct < self.balanced_max_pct {
            return Err(InsightsError::ParamsDisagree {
                reason: "leaning_max_pct must be at least balanced_max_pct",
            });
        }
        range(
            "balance_trend_pct",
            f64::from(self.balance_trend_pct),
            1.0,
            100.0,
        )?;
        range("fewer_ratio", self.fewer_ratio, 0.0, 1.0)?;
        range(
            "min_body_checkins",
            f64::from(self.min_body_checkins),
            1.0,
            365.0,
        )?;
        range("rate_steady", self.rate_steady, 0.0, 1.0)?;
        range(
            "reflection_max_age_days",
            f64::from(self.reflection_max_age_days),
            1.0,
            span,
        )?;
        range(
            "future_tolerance_days",
            f64::from(self.future_tolerance_days),
            0.0,
            2.0,
        )?;
        Ok(())
    }

    /// How many days of history, counting back from today, the report can use. Records
    /// older than this change nothing but the long-run average, so a caller may leave
    /// them out ([`InsightInputs::from_docs_since`]).
    pub fn history_days(&self) -> u32 {
        let windows = self.windows_days.iter().copied().max().unwrap_or(0);
        let recent = self.recent_weeks.saturating_mul(7);
        let baseline = recent.saturating_add(self.baseline_days);
        let connection = recent.saturating_mul(2);
        let series = self.weeks.saturating_mul(7);
        // A year before the baseline gives the average time to settle.
        let ewma = baseline.saturating_add(365);
        [
            windows,
            baseline,
            connection,
            series,
            ewma,
            self.reflection_max_age_days,
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
        .min(MAX_SPAN_DAYS * 2)
    }
}

/// The records insights are computed from. Plain data: build it by hand in tests, or
/// from the documents with [`InsightInputs::from_docs`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InsightInputs {
    /// Everyone in the household.
    pub people: Vec<Person>,
    /// Check-ins, in any order.
    pub checkins: Vec<CheckIn>,
    /// Reflections, in any order.
    pub reflections: Vec<Reflection>,
    /// Ledger items, whatever their status.
    pub items: Vec<LedgerItem>,
    /// Done entries.
    pub done: Vec<DoneEntry>,
    /// Acknowledgments.
    pub acks: Vec<Acknowledgment>,
    /// Handoffs.
    pub handoffs: Vec<Handoff>,
    /// Moments of connection.
    pub moments: Vec<Moment>,
    /// Who is reading the report. Only their own safety answers count (THREAT-MODEL.md
    /// P8): another person's `safety` basic and reflection answer on feeling safe are
    /// left out, even when shared, so the report never shows them to the partner nor
    /// gives the partner advice about them. `None` leaves out everyone's.
    pub viewer: Option<PersonId>,
}

impl InsightInputs {
    /// Everything this device can read that insights use.
    ///
    /// Shared records always come in. Private check-ins and reflections come in only when
    /// `include_private` is set, and then only those of the device's own person
    /// (`docs.me`): a private document never holds anyone else's, and this checks it
    /// again rather than trusting it.
    pub fn from_docs(docs: &Docs, include_private: bool) -> InsightInputs {
        Self::read(docs, include_private, None)
    }

    /// Like [`InsightInputs::from_docs`], but leaves out dated records before `since`,
    /// which keeps a report over a long history fast. Pass
    /// `today - params.history_days()` to lose nothing the report shows.
    pub fn from_docs_since(docs: &Docs, include_private: bool, since: NaiveDate) -> InsightInputs {
        Self::read(docs, include_private, Some(since))
    }

    fn read(docs: &Docs, include_private: bool, since: Option<NaiveDate>) -> InsightInputs {
        let since = since.map(|d| d.to_string());
        // Dates are stored as `YYYY-MM-DD`, so comparing the text compares the dates.
        let keep = |f: &Fields<'_>| match &since {
            Some(since) => f.str("date").is_some_and(|d| d.as_str() >= since.as_str()),
            None => true,
        };
        let household = &docs.household;
        let mut checkins: Vec<CheckIn> = household
            .filter::<CheckIn>(keep)
            .into_iter()
            .filter(|c| c.visibility != Visibility::Private)
            .map(|c| docs.with_own(c))
            .collect();
        let mut reflections: Vec<Reflection> = household
            .filter::<Reflection>(keep)
            .into_iter()
            .filter(|r| r.visibility != Visibility::Private)
            .collect();
        if include_private && own_private(&docs.private, docs.me) {
            checkins.extend(
                docs.private
                    .filter::<CheckIn>(keep)
                    .into_iter()
                    .filter(|c| c.author == docs.me),
            );
            reflections.extend(
                docs.private
                    .filter::<Reflection>(keep)
                    .into_iter()
                    .filter(|r| r.author == docs.me),
            );
        }
        InsightInputs {
            people: docs.people(),
            checkins,
            reflections,
            items: docs.ledger_items(),
            done: household.filter(keep),
            acks: household.filter(keep),
            handoffs: household.filter(keep),
            moments: household.filter(keep),
            viewer: Some(docs.me),
        }
    }
}

/// The check-ins and reflections as the viewer may read them: another person's answers
/// on feeling safe are taken out (see [`InsightInputs::viewer`]).
fn viewer_view(inputs: &InsightInputs) -> (Vec<CheckIn>, Vec<Reflection>) {
    let own = |author: PersonId| inputs.viewer == Some(author);
    let checkins = inputs
        .checkins
        .iter()
        .map(|c| {
            let mut c = c.clone();
            if !own(c.author) {
                c.basics.remove(&Basic::Safety);
            }
            c
        })
        .collect();
    (checkins, inputs.reflections.clone())
}

fn own_private(doc: &Doc, me: PersonId) -> bool {
    doc.kind() == DocKind::Private(me)
}

/// The report `hearth insights` asks for: `weeks` of weekly series (the default when
/// absent), from the documents read as far back as the parameters need, for `today`.
pub fn report(
    docs: &Docs,
    include_private: bool,
    weeks: Option<u32>,
    today: NaiveDate,
) -> Result<Insights, InsightsError> {
    let mut params = Params::default();
    if let Some(weeks) = weeks {
        params.weeks = weeks;
    }
    params.validate()?;
    let since = today - chrono::Duration::days(i64::from(params.history_days()));
    let inputs = InsightInputs::from_docs_since(docs, include_private, since);
    compute(&inputs, today, &params)
}

/// Computes the report for `today` (the caller's local date).
pub fn compute(
    inputs: &InsightInputs,
    today: NaiveDate,
    params: &Params,
) -> Result<Insights, InsightsError> {
    params.validate()?;
    let cal = Calendar::new(today, params);
    let people = household_order(inputs);
    let ids: Vec<PersonId> = people.iter().map(|p| p.id).collect();

    let (checkins, _) = viewer_view(inputs);
    let trends: Vec<PersonTrend> = ids
        .iter()
        .map(|id| trend::person_trend(*id, &checkins, &cal, params))
        .collect();
    let balance = balance::balance(inputs, &ids, &cal, params);
    let connection = connection::connection(inputs, &ids, &cal, params);
    let reflections =
        signals::latest_reflections(&inputs.reflections, &ids, inputs.viewer, &cal, params);
    let signals = signals::signals(&signals::Context {
        ids: &ids,
        trends: &trends,
        balance: &balance,
        connection: &connection,
        reflections: &reflections,
        params,
    });
    let suggestions = suggest::suggestions(&signals, &trends, &reflections);
    let recovery = suggest::recovery(&suggestions);

    let private_entries = inputs
        .checkins
        .iter()
        .filter(|c| c.visibility == Visibility::Private)
        .count()
        + inputs
            .reflections
            .iter()
            .filter(|r| r.visibility == Visibility::Private)
            .count();
    let future_dated = inputs
        .checkins
        .iter()
        .map(|c| c.when.date)
        .chain(inputs.done.iter().map(|d| d.when.date))
        .chain(inputs.moments.iter().map(|m| m.when.date))
        .chain(inputs.acks.iter().map(|a| a.when.date))
        .chain(inputs.reflections.iter().map(|r| r.when.date))
        .chain(inputs.handoffs.iter().map(|h| h.when.date))
        .filter(|d| cal.age(*d).is_none())
        .count();
    let data = DataSummary {
        checkins: count(inputs.checkins.len()),
        private_entries: count(private_entries),
        reflections: count(inputs.reflections.len()),
        items: count(inputs.items.len()),
        done: count(inputs.done.len()),
        acks: count(inputs.acks.len()),
        handoffs: count(inputs.handoffs.len()),
        moments: count(inputs.moments.len()),
        future_dated: count(future_dated),
    };

    Ok(Insights {
        schema: SCHEMA,
        today,
        note: NOT_MEDICAL_ADVICE.to_string(),
        params: params.clone(),
        people,
        weeks: cal.weeks(params.weeks),
        trends,
        balance,
        connection,
        reflections,
        signals,
        suggestions,
        recovery,
        data,
    })
}

/// Known people by joining time, then anyone the records name whom the roster does not
/// know (a roster that has not synced yet), by id.
fn household_order(inputs: &InsightInputs) -> Vec<PersonInfo> {
    let mut known: Vec<&Person> = inputs.people.iter().collect();
    known.sort_by_key(|p| (p.joined_at, p.id));
    let mut out: Vec<PersonInfo> = Vec::new();
    for p in known {
        if !out.iter().any(|o| o.id == p.id) {
            out.push(PersonInfo {
                id: p.id,
                name: p.name.clone(),
            });
        }
    }
    let mut unknown: Vec<PersonId> = inputs
        .checkins
        .iter()
        .map(|c| c.author)
        .chain(inputs.moments.iter().map(|m| m.started_by))
        .chain(inputs.done.iter().map(|d| d.by))
        .chain(inputs.reflections.iter().map(|r| r.author))
        .filter(|id| !out.iter().any(|o| o.id == *id))
        .collect();
    unknown.sort();
    unknown.dedup();
    out.extend(unknown.into_iter().map(|id| PersonInfo {
        id,
        name: "someone".to_string(),
    }));
    out
}

/// Saturating conversion for counts that are shown, never used for indexing.
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Rounds to one decimal place, so reports are stable and readable.
fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Rounds to two decimal places.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Turns local dates into ages in days before `today`, and ages into weeks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Calendar {
    today: NaiveDate,
    tolerance: i64,
    recent_weeks: u32,
}

impl Calendar {
    fn new(today: NaiveDate, params: &Params) -> Calendar {
        Calendar {
            today,
            tolerance: i64::from(params.future_tolerance_days),
            recent_weeks: params.recent_weeks,
        }
    }

    /// Days before today (0 = today), or `None` for a date too far in the future. A date
    /// within the tolerance after today counts as today.
    fn age(&self, date: NaiveDate) -> Option<u32> {
        let days = self.today.signed_duration_since(date).num_days();
        if days < -self.tolerance {
            return None;
        }
        Some(u32::try_from(days.max(0)).unwrap_or(u32::MAX))
    }

    /// The date `days` before today, saturating at the calendar's start.
    fn back(&self, days: u32) -> NaiveDate {
        self.today
            .checked_sub_days(Days::new(u64::from(days)))
            .unwrap_or(NaiveDate::MIN)
    }

    /// The last `n` weeks, oldest first.
    fn weeks(&self, n: u32) -> Vec<WeekSpan> {
        (0..n)
            .rev()
            .map(|k| WeekSpan {
                start: self.back(k.saturating_mul(7).saturating_add(6)),
                end: self.back(k.saturating_mul(7)),
            })
            .collect()
    }

    /// Length of the recent stretch in days.
    fn recent_days(&self) -> u32 {
        self.recent_weeks.saturating_mul(7)
    }
}

/// Shared helpers for the submodules.
fn week_of(age: u32) -> u32 {
    age / 7
}
