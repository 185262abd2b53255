//! Connection: moments per week and who starts them, acknowledgments per week and who
//! gives them, and how the recent stretch compares with the one before.

use std::collections::BTreeMap;

use crate::model::PersonId;

use super::{
    round2, week_of, Calendar, Change, Connection, CountShare, CountWeek, InsightInputs, Params,
    PeriodCount, PersonCount, WeeklyCounts,
};

pub(super) fn connection(
    inputs: &InsightInputs,
    ids: &[PersonId],
    cal: &Calendar,
    params: &Params,
) -> Connection {
    let moments: Vec<(chrono::NaiveDate, PersonId)> = inputs
        .moments
        .iter()
        .map(|m| (m.when.date, m.started_by))
        .collect();
    let acks: Vec<(chrono::NaiveDate, PersonId)> = inputs
        .acks
        .iter()
        // A reply to an ask is an answer, not a thank-you.
        .filter(|a| a.kind != crate::model::AckKind::Reply)
        .map(|a| (a.when.date, a.from))
        .collect();
    Connection {
        moments: weekly_counts(&moments, ids, cal, params),
        acknowledgments: weekly_counts(&acks, ids, cal, params),
    }
}

/// Counts dated events per week and per person, for the series and for the recent and
/// earlier stretches.
fn weekly_counts(
    events: &[(chrono::NaiveDate, PersonId)],
    ids: &[PersonId],
    cal: &Calendar,
    params: &Params,
) -> WeeklyCounts {
    let weeks = params.weeks as usize;
    let recent_weeks = params.recent_weeks;
    let mut series: Vec<BTreeMap<PersonId, u32>> = vec![BTreeMap::new(); weeks];
    let mut recent: BTreeMap<PersonId, u32> = BTreeMap::new();
    let mut earlier: BTreeMap<PersonId, u32> = BTreeMap::new();
    for (date, who) in events {
        let Some(age) = cal.age(*date) else {
            continue;
        };
        let week = week_of(age);
        if let Some(slot) = series.get_mut(week as usize) {
            *slot.entry(*who).or_insert(0) += 1;
        }
        if week < recent_weeks {
            *recent.entry(*who).or_insert(0) += 1;
        } else if week < recent_weeks.saturating_mul(2) {
            *earlier.entry(*who).or_insert(0) += 1;
        }
    }
    let people = |counts: &BTreeMap<PersonId, u32>| -> Vec<PersonId> {
        let mut people = ids.to_vec();
        people.extend(counts.keys().filter(|p| !ids.contains(p)));
        people
    };
    let weekly = series
        .iter()
        .rev()
        .map(|counts| CountWeek {
            total: counts.values().fold(0u32, |a, n| a.saturating_add(*n)),
            by: people(counts)
                .into_iter()
                .map(|person| PersonCount {
                    person,
                    n: counts.get(&person).copied().unwrap_or(0),
                })
                .collect(),
        })
        .collect();
    let period = |counts: &BTreeMap<PersonId, u32>| -> PeriodCount {
        let people = people(counts);
        let ns: Vec<u32> = people
            .iter()
            .map(|p| counts.get(p).copied().unwrap_or(0))
            .collect();
        let total = ns.iter().fold(0u32, |a, n| a.saturating_add(*n));
        PeriodCount {
            weeks: recent_weeks,
            total,
            per_week: round2(f64::from(total) / f64::from(recent_weeks.max(1))),
            by: people
                .into_iter()
                .zip(ns)
                .map(|(person, n)| CountShare { person, n })
                .collect(),
        }
    };
    let recent = period(&recent);
    let earlier = period(&earlier);
    let trend = if earlier.total < params.min_connection_baseline {
        Change::Unknown
    } else {
        let ratio = f64::from(recent.total) / f64::from(earlier.total);
        if ratio < 1.0 - params.rate_steady {
            Change::Lower
        } else if ratio > 1.0 + params.rate_steady {
            Change::Higher
        } else {
            Change::Steady
        }
    };
    WeeklyCounts {
        weekly,
        recent,
        earlier,
        trend,
    }
}
