//! One person's levels over time: daily values, trend windows, the baseline, the weekly
//! series and which recent weeks were elevated.
//!
//! Everything here looks at one person's check-ins only. Nothing compares a person with
//! anyone else.

use std::collections::BTreeMap;

use crate::model::{Basic, BasicLevel, CheckIn, PersonId, Visibility};

use super::{
    round1, round2, week_of, Baseline, BaselineSource, Calendar, Change, Params, PersonTrend,
    WeekPoint, WindowTrend,
};

/// One day's values, from all of that day's check-ins.
#[derive(Debug, Clone)]
struct Day {
    /// Days before today.
    age: u32,
    battery: f64,
    signs: Option<f64>,
    rested: bool,
    unmet: [bool; 4],
}

#[derive(Debug, Default)]
struct DayAcc {
    battery_sum: f64,
    battery_n: u32,
    signs_sum: f64,
    signs_n: u32,
    rested: bool,
    unmet: [bool; 4],
}

fn basic_index(basic: Basic) -> usize {
    match basic {
        Basic::Sleep => 0,
        Basic::Food => 1,
        Basic::Safety => 2,
        Basic::Rest => 3,
    }
}

/// The mean of a check-in's rated signs on the 0–4 scale, or `None` if none was rated.
/// Ratings above 4 (which validation refuses) are read as 4 rather than trusted.
fn sign_level(checkin: &CheckIn) -> Option<f64> {
    if checkin.signs.is_empty() {
        return None;
    }
    let sum: u32 = checkin.signs.values().map(|r| u32::from((*r).min(4))).sum();
    Some(f64::from(sum) / checkin.signs.len() as f64)
}

/// Sleep or rest logged as partly met or not met on this check-in.
fn short_rest(checkin: &CheckIn) -> bool {
    [Basic::Sleep, Basic::Rest].iter().any(|b| {
        matches!(
            checkin.basics.get(b),
            Some(BasicLevel::Partly | BasicLevel::No)
        )
    })
}

/// Rest met, or every basic met, on this check-in.
fn rested(checkin: &CheckIn) -> bool {
    let met = |b: Basic| checkin.basics.get(&b) == Some(&BasicLevel::Met);
    met(Basic::Rest) || Basic::ALL.iter().all(|b| met(*b))
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    // An even count averages the two middle values.
    Some(if values.len() & 1 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}

/// Exponentially weighted average, oldest value first.
fn ewma(values: impl Iterator<Item = f64>, alpha: f64) -> Option<f64> {
    values.fold(None, |acc, v| {
        Some(match acc {
            None => v,
            Some(prev) => alpha * v + (1.0 - alpha) * prev,
        })
    })
}

fn change(delta: Option<f64>, steady: f64) -> Change {
    match delta {
        None => Change::Unknown,
        Some(d) if d.abs() <= steady => Change::Steady,
        Some(d) if d > 0.0 => Change::Higher,
        Some(_) => Change::Lower,
    }
}

/// Computes one person's trend from every check-in (other authors are skipped).
pub(super) fn person_trend(
    person: PersonId,
    checkins: &[CheckIn],
    cal: &Calendar,
    params: &Params,
) -> PersonTrend {
    let recent_days = cal.recent_days();
    let mut by_age: BTreeMap<u32, DayAcc> = BTreeMap::new();
    let mut total = 0u32;
    let mut private = 0u32;
    let mut body = BTreeMap::new();
    let (mut body_checkins, mut body_short_rest) = (0u32, 0u32);
    for c in checkins.iter().filter(|c| c.author == person) {
        let Some(age) = cal.age(c.when.date) else {
            continue;
        };
        total = total.saturating_add(1);
        if c.visibility == Visibility::Private {
            private = private.saturating_add(1);
        }
        if age < recent_days {
            for sign in &c.body {
                *body.entry(*sign).or_insert(0u32) += 1;
            }
            if !c.body.is_empty() {
                body_checkins = body_checkins.saturating_add(1);
                if short_rest(c) {
                    body_short_rest = body_short_rest.saturating_add(1);
                }
            }
        }
        let acc = by_age.entry(age).or_default();
        acc.battery_sum += f64::from(c.battery.min(100));
        acc.battery_n += 1;
        if let Some(level) = sign_level(c) {
            acc.signs_sum += level;
            acc.signs_n += 1;
        }
        acc.rested |= rested(c);
        for (basic, level) in &c.basics {
            if *level == BasicLevel::No {
                acc.unmet[basic_index(*basic)] = true;
            }
        }
    }
    let days: Vec<Day> = by_age
        .into_iter()
        .map(|(age, a)| Day {
            age,
            battery: a.battery_sum / f64::from(a.battery_n.max(1)),
            signs: (a.signs_n > 0).then(|| a.signs_sum / f64::from(a.signs_n)),
            rested: a.rested,
            unmet: a.unmet,
        })
        .collect();

    let baseline = baseline(&days, cal, params);
    let windows = params
        .windows_days
        .iter()
        .map(|w| window(&days, *w, &baseline, params))
        .collect();

    let series_weeks = params.weeks.max(params.recent_weeks);
    let mut weeks: Vec<WeekPoint> = (0..series_weeks).map(|_| empty_week()).collect();
    fill_weeks(&mut weeks, &days);
    for (k, week) in weeks.iter_mut().enumerate() {
        if k < params.recent_weeks as usize {
            week.elevated = elevated(week, &baseline, params);
        }
    }
    // Weeks were built newest first; the report lists them oldest first.
    let recent: Vec<WeekPoint> = weeks
        .iter()
        .take(params.recent_weeks as usize)
        .rev()
        .cloned()
        .collect();
    let weekly: Vec<WeekPoint> = weeks
        .iter()
        .take(params.weeks as usize)
        .rev()
        .cloned()
        .collect();

    let mut basics_unmet_last_week = BTreeMap::new();
    for day in days.iter().take_while(|d| d.age < 7) {
        for basic in Basic::ALL {
            if day.unmet[basic_index(*basic)] {
                *basics_unmet_last_week.entry(*basic).or_insert(0u32) += 1;
            }
        }
    }

    PersonTrend {
        person,
        checkins: total,
        private_checkins: private,
        baseline,
        windows,
        weekly,
        recent,
        basics_unmet_last_week,
        body_signs_recent: body,
        body_checkins_recent: body_checkins,
        body_with_short_rest: body_short_rest,
    }
}

fn empty_week() -> WeekPoint {
    WeekPoint {
        days: 0,
        battery: None,
        signs: None,
        elevated: None,
        rested: false,
        basics_unmet_days: 0,
    }
}

/// Fills weeks (newest first) with the mean of their days.
fn fill_weeks(weeks: &mut [WeekPoint], days: &[Day]) {
    let mut sums = vec![(0.0f64, 0u32, 0.0f64, 0u32); weeks.len()];
    for day in days {
        let k = week_of(day.age) as usize;
        let (Some(week), Some(sum)) = (weeks.get_mut(k), sums.get_mut(k)) else {
            // Days are sorted by age, so every later day is older still.
            break;
        };
        week.days += 1;
        week.rested |= day.rested;
        if day.unmet.iter().any(|u| *u) {
            week.basics_unmet_days += 1;
        }
        sum.0 += day.battery;
        sum.1 += 1;
        if let Some(s) = day.signs {
            sum.2 += s;
            sum.3 += 1;
        }
    }
    for (week, (bs, bn, ss, sn)) in weeks.iter_mut().zip(sums) {
        week.battery = (bn > 0).then(|| round1(bs / f64::from(bn)));
        week.signs = (sn > 0).then(|| round2(ss / f64::from(sn)));
    }
}

/// Whether a week is elevated, or `None` with too few days to say.
fn elevated(week: &WeekPoint, base: &Baseline, params: &Params) -> Option<bool> {
    if week.days < params.min_days_per_week {
        return None;
    }
    let battery = week.battery?;
    let high = battery <= params.battery_low || week.signs.is_some_and(|s| s >= params.signs_high);
    Some(high || above_usual(week, base, params))
}

/// Whether a week is heavier than the person's own usual level, as opposed to only
/// high on the fixed scale. Signals word the two differently.
pub(super) fn above_usual(week: &WeekPoint, base: &Baseline, params: &Params) -> bool {
    let signs_up = week
        .signs
        .zip(base.signs)
        .is_some_and(|(s, usual)| s >= usual + params.sign_rise);
    let battery_down = week
        .battery
        .zip(base.battery)
        .is_some_and(|(b, usual)| b <= usual - params.battery_drop);
    signs_up || battery_down
}

fn baseline(days: &[Day], cal: &Calendar, params: &Params) -> Baseline {
    let start = cal.recent_days();
    let end = start.saturating_add(params.baseline_days);
    let period: Vec<&Day> = days
        .iter()
        .filter(|d| d.age >= start && d.age < end)
        .collect();
    let battery_period: Vec<f64> = period.iter().map(|d| d.battery).collect();
    let signs_period: Vec<f64> = period.iter().filter_map(|d| d.signs).collect();
    // Everything before the recent stretch, oldest first.
    let earlier = || days.iter().rev().filter(|d| d.age >= start);
    let battery_earlier = earlier().count();
    let signs_earlier = earlier().filter(|d| d.signs.is_some()).count();
    let battery_ewma = ewma(earlier().map(|d| d.battery), params.ewma_alpha);
    let signs_ewma = ewma(earlier().filter_map(|d| d.signs), params.ewma_alpha);

    let enough = |n: usize| n >= params.min_baseline_days as usize;
    let battery_median = median(battery_period.clone());
    let signs_median = median(signs_period.clone());
    let source = if enough(battery_period.len()) {
        BaselineSource::Median
    } else if enough(battery_earlier) {
        BaselineSource::Ewma
    } else {
        BaselineSource::None
    };
    let (battery, signs) = match source {
        BaselineSource::Median => (
            battery_median,
            signs_median.filter(|_| enough(signs_period.len())),
        ),
        BaselineSource::Ewma => (battery_ewma, signs_ewma.filter(|_| enough(signs_earlier))),
        BaselineSource::None => (None, None),
    };
    Baseline {
        from: cal.back(end.saturating_sub(1)),
        to: cal.back(start),
        days: super::count(period.len()),
        battery_median: battery_median.map(round1),
        signs_median: signs_median.map(round2),
        battery_ewma: battery_ewma.map(round1),
        signs_ewma: signs_ewma.map(round2),
        source,
        battery: battery.map(round1),
        signs: signs.map(round2),
    }
}

fn window(days: &[Day], len: u32, base: &Baseline, params: &Params) -> WindowTrend {
    let inside = || days.iter().take_while(|d| d.age < len);
    let battery = mean(inside().map(|d| d.battery)).map(round1);
    let signs = mean(inside().filter_map(|d| d.signs)).map(round2);
    let battery_vs = battery.zip(base.battery).map(|(b, u)| round1(b - u));
    let signs_vs = signs.zip(base.signs).map(|(s, u)| round2(s - u));
    WindowTrend {
        days: len,
        checkin_days: super::count(inside().count()),
        battery,
        signs,
        battery_vs_baseline: battery_vs,
        signs_vs_baseline: signs_vs,
        battery_change: change(battery_vs, params.battery_steady),
        signs_change: change(signs_vs, params.signs_steady),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }

    #[test]
    fn ewma_leans_towards_recent_values() {
        let e = ewma([0.0, 0.0, 0.0, 100.0].into_iter(), 0.2).unwrap();
        assert!((e - 20.0).abs() < 1e-9, "{e}");
        assert_eq!(ewma(std::iter::empty(), 0.2), None);
    }

    #[test]
    fn change_has_a_steady_band() {
        assert_eq!(change(Some(4.0), 5.0), Change::Steady);
        assert_eq!(change(Some(-6.0), 5.0), Change::Lower);
        assert_eq!(change(Some(6.0), 5.0), Change::Higher);
        assert_eq!(change(None, 5.0), Change::Unknown);
    }
}
